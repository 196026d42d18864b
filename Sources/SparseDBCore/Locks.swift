import Synchronization

/// A value behind a mutex, shared by reference: the one lock abstraction of SparseDB.
///
/// `Synchronization.Mutex` is non-copyable, so it must live inside a class to be shared; this is
/// that class. Everything guarded is reached only inside `withLock`, which is what makes the
/// type `Sendable` without `@unchecked`.
///
/// `public @inlinable` (in this non-product target) rather than `package`: Swift does not
/// inline or specialise a `package` generic across modules, and the unspecialised call looked
/// up `Mutex<Value>`'s metadata at run time on every lock — about 14% of a small query's
/// instructions (the posting cache takes a lock per query term).
public final class Locked<Value>: Sendable {
    @usableFromInline let mutex: Mutex<Value>

    public init(_ value: sending Value) { mutex = Mutex(value) }

    /// Runs `body` with exclusive access to the value.
    @inlinable
    public func withLock<R>(_ body: (inout sending Value) throws -> sending R) rethrows -> sending R {
        try mutex.withLock(body)
    }
}
