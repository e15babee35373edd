#if canImport(Glibc)
import Glibc
#endif

/// A mutex around a value, on glibc's pthread_mutex, which ThreadSanitizer understands.
///
/// Why not `Synchronization.Mutex`: on Linux a contended Mutex is handed over with a
/// priority-inheritance futex (FUTEX_LOCK_PI / FUTEX_UNLOCK_PI); the kernel makes the waiter the
/// owner, and the waiter performs no atomic acquire in user space that TSan could see. Two
/// threads' accesses inside `withLock` then look unordered, and `make sanitize-thread` reported
/// them as races (the shared oneDNN primitive cache in LinearLayer, CI on 2026-12-01; ru-tok's
/// workspace pool before). Annotating the hand-over around a Mutex still left reports on the
/// guarded value's Swift access tracking, while TSan intercepts pthread_mutex_lock/unlock and
/// orders them exactly. The locks here are taken per batch or per layer call, never in a hot
/// inner loop, so the choice costs nothing measurable.
package final class Lock<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// Read and written only with `mutex` held.
    private let value: UnsafeMutablePointer<Value>

    package init(_ initial: Value) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        value = .allocate(capacity: 1)
        value.initialize(to: initial)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    package func withLock<Result, E: Error>(_ body: (inout Value) throws(E) -> Result) throws(E) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}
