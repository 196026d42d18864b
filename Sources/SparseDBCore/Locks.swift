import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
///
/// Under ThreadSanitizer the lock also tells TSan that it synchronises (`ThreadSanitizer` below):
/// on Linux a contended `Mutex` waits on a futex inside the toolchain's uninstrumented
/// Synchronization library, so without this every contended lock was reported as a data race
/// between two accesses under it (RELIABILITY.md §6).
public final class Locked<Value>: Sendable {
    @usableFromInline let mutex: Mutex<Value>
    /// TSan's annotation functions when this process runs under ThreadSanitizer, else nil: read
    /// once per lock from the process-wide `ThreadSanitizer.hooks`, so that outside TSan a
    /// `withLock` pays a nil check of a field of `self` (the optimiser merges the two checks into
    /// one branch and hoists the load out of loops); a global `let` would cost a call to its
    /// lazy initialiser's accessor on every access from another module.
    @usableFromInline let tsan: ThreadSanitizer?

    public init(_ value: sending Value) {
        mutex = Mutex(value)
        tsan = ThreadSanitizer.hooks
    }

    /// Runs `body` with exclusive access to the value.
    @inlinable
    public func withLock<R>(_ body: (inout sending Value) throws -> sending R) rethrows -> sending R {
        try mutex.withLock { value in
            // The lock's identity for TSan is this object's address: stable while the lock
            // lives, and TSan forgets the synchronisation state of memory when it is freed.
            if let tsan { tsan.acquire(Unmanaged.passUnretained(self).toOpaque()) }
            defer { if let tsan { tsan.release(Unmanaged.passUnretained(self).toOpaque()) } }
            return try body(&value)
        }
    }
}

/// ThreadSanitizer's annotation API, found at run time (internal: `Locked` is its only user).
///
/// `__tsan_acquire(addr)` and `__tsan_release(addr)` tell TSan about a synchronisation it cannot
/// see: everything a thread did before `release(a)` happens before what another thread does
/// after a later `acquire(a)`. They exist only in a process built with `-sanitize=thread` (the
/// TSan runtime is linked into the executable), so `dlsym` finds them exactly then: no build
/// flag, no unsafe flag, and the same source in every build. `Locked` calls `acquire` right
/// after taking its mutex and `release` right before giving it back.
@usableFromInline final class ThreadSanitizer: Sendable {
    @usableFromInline typealias Annotation = @convention(c) (UnsafeMutableRawPointer?) -> Void

    // Immutable C function pointers (`@convention(c)` values are not `Sendable` to the
    // compiler, but TSan's API is made to be called from any thread).
    @usableFromInline nonisolated(unsafe) let acquireFunction: Annotation
    @usableFromInline nonisolated(unsafe) let releaseFunction: Annotation

    private init(acquire: Annotation, release: Annotation) {
        acquireFunction = acquire
        releaseFunction = release
    }

    /// The annotation functions, or nil when this process does not run under ThreadSanitizer.
    /// Looked up once per process (a static `let` initialises lazily and thread-safely).
    static let hooks: ThreadSanitizer? = {
        #if os(Linux)
        let everywhere: UnsafeMutableRawPointer? = nil  // RTLD_DEFAULT: all loaded objects
        #else
        let everywhere = UnsafeMutableRawPointer(bitPattern: -2)  // RTLD_DEFAULT on Darwin
        #endif
        guard let a = dlsym(everywhere, "__tsan_acquire"), let r = dlsym(everywhere, "__tsan_release") else {
            return nil
        }
        return ThreadSanitizer(
            acquire: unsafeBitCast(a, to: Annotation.self), release: unsafeBitCast(r, to: Annotation.self))
    }()

    /// Tells TSan that the caller has just taken the lock identified by `lock`.
    @inlinable func acquire(_ lock: UnsafeMutableRawPointer) { acquireFunction(lock) }
    /// Tells TSan that the caller is about to give back the lock identified by `lock`.
    @inlinable func release(_ lock: UnsafeMutableRawPointer) { releaseFunction(lock) }
}
