import Synchronization

/// A value behind a mutex, shared by reference: the one lock abstraction of SparseDB.
///
/// `Synchronization.Mutex` is non-copyable, so it must live inside a class to be shared; this is
/// that class. Everything guarded is reached only inside `withLock`, which is what makes the
/// type `Sendable` without `@unchecked`.
package final class Locked<Value>: Sendable {
    private let mutex: Mutex<Value>

    package init(_ value: sending Value) { mutex = Mutex(value) }

    /// Runs `body` with exclusive access to the value.
    @inline(__always)
    package func withLock<R>(_ body: (inout sending Value) throws -> sending R) rethrows -> sending R {
        try mutex.withLock(body)
    }
}
