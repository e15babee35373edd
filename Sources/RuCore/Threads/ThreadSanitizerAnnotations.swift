#if canImport(Glibc)
import Glibc
#endif

/// Tells ThreadSanitizer about synchronisation it cannot see: libgomp is not instrumented, so
/// the fork and join of an OpenMP parallel region (its futexes and spinning barriers) are
/// invisible, and every result a worker writes and the caller reads after the region would be
/// reported as a race. Parallel annotates the two edges GOMP_parallel really provides (caller
/// before the region → each worker; each worker → caller after it) and nothing more, so races
/// between workers are still reported.
///
/// The annotation functions exist only in a TSan build (`make sanitize`); elsewhere they are
/// not found and every call is a test of nil.
enum ThreadSanitizer {
    private typealias Annotate = @convention(c) (UnsafeRawPointer?) -> Void
    private struct Functions: @unchecked Sendable { let acquire: Annotate; let release: Annotate }

    private static let functions: Functions? = {
        let handle = dlopen(nil, RTLD_NOW)
        guard let acquire = dlsym(handle, "__tsan_acquire"), let release = dlsym(handle, "__tsan_release") else { return nil }
        return Functions(acquire: unsafeBitCast(acquire, to: Annotate.self), release: unsafeBitCast(release, to: Annotate.self))
    }()

    /// What happened in this thread before is visible to a thread that later calls `acquire`
    /// with the same address.
    @inline(__always) static func release(_ address: UnsafeRawPointer) { functions?.release(address) }
    @inline(__always) static func acquire(_ address: UnsafeRawPointer) { functions?.acquire(address) }
}
