#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization

/// Data-parallel loops on the same OpenMP threads oneDNN uses.
///
/// oneDNN (Debian's build) runs on libgomp, whose threads spin for a while after each
/// call. Work handed to a second pool (Dispatch) would fight those spinning threads for
/// the two cores, so loops go through libgomp's own entry point, found at run time.
/// Without libgomp (another oneDNN build or platform) Dispatch stands in.
public enum Parallel {
    private typealias GOMPParallel = @convention(c) (
        @convention(c) (UnsafeMutableRawPointer?) -> Void, UnsafeMutableRawPointer?, UInt32, UInt32) -> Void
    private typealias IntFunction = @convention(c) () -> Int32
    private typealias SetThreads = @convention(c) (Int32) -> Void

    private struct Entry: @unchecked Sendable {
        let parallel: GOMPParallel?
        let threadNumber: IntFunction?
        let setThreads: SetThreads?
        let maxThreads: IntFunction?
        let teamSize: IntFunction?
    }

    private static let entry: Entry = {
        // libgomp is in the process when it links oneDNN (RuEncoder): the dynamic loader
        // mapped it at start. A program without the encoder (only the tokenizer) has none,
        // and Dispatch stands in.
        let handle = dlopen(nil, RTLD_NOW)
        func find<T>(_ name: String, as: T.Type) -> T? {
            guard let symbol = dlsym(handle, name) else { return nil }
            return unsafeBitCast(symbol, to: T.self)
        }
        return Entry(parallel: find("GOMP_parallel", as: GOMPParallel.self),
                     threadNumber: find("omp_get_thread_num", as: IntFunction.self),
                     setThreads: find("omp_set_num_threads", as: SetThreads.self),
                     maxThreads: find("omp_get_max_threads", as: IntFunction.self),
                     teamSize: find("omp_get_num_threads", as: IntFunction.self))
    }()

    // Written under `serialLock`, read without it from any thread (loops ask for the count while
    // another thread loads a model: TSan reported the plain variables' race), hence atomics.
    private static let threadCountValue = Atomic<Int>(0)
    private static let serialDepthValue = Atomic<Int>(0)
    private static var threadCount: Int {
        get { threadCountValue.load(ordering: .relaxed) }
        set { threadCountValue.store(newValue, ordering: .relaxed) }
    }
    private static var serialDepth: Int {
        get { serialDepthValue.load(ordering: .relaxed) }
        set { serialDepthValue.store(newValue, ordering: .relaxed) }
    }

    /// The number of threads loops and oneDNN use now (1 inside `serially`).
    public static var threads: Int { serialDepth > 0 ? 1 : configuredThreads }

    /// The number of threads set (or the OpenMP default), whether or not inside `serially`.
    package static var configuredThreads: Int {
        if threadCount > 0 { return threadCount }
        if let maxThreads = entry.maxThreads { return Int(maxThreads()) }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Runs `body` with loops and oneDNN on the calling thread alone: no OpenMP thread is
    /// woken, so none spins afterwards on a core another thread of ours is using.
    /// While any thread is inside, every thread's loops run serially (the flag is process-wide:
    /// it only costs speed where a library user loads a model while another one computes).
    package static func serially<T>(_ body: () throws -> T) rethrows -> T {
        let configured = serialLock.withLock { _ in
            let configured = configuredThreads
            if threadCount == 0 { threadCount = configured } // OpenMP's own count reads 1 inside
            serialDepth += 1
            return configured
        }
        entry.setThreads?(1) // this thread's OpenMP count, for oneDNN
        defer {
            serialLock.withLock { _ in serialDepth -= 1 }
            entry.setThreads?(Int32(configured))
        }
        return try body()
    }
    private static let serialLock = Lock(())

    /// Gives the calling thread the configured count for oneDNN (OpenMP keeps the count per
    /// thread: a library user's own threads would otherwise run oneDNN at OpenMP's default,
    /// and f32 sums come out in another order than on the thread that set the count).
    package static func adoptThreadCount() {
        if serialDepth == 0, threadCount > 0 { entry.setThreads?(Int32(threadCount)) }
    }

    /// Sets the number of threads for oneDNN and for `forEach`; call before the first matmul.
    public static func setThreads(_ n: Int) {
        precondition(n > 0)
        threadCount = n
        entry.setThreads?(Int32(n))
    }

    // MARK: sharing the cores with other processes

    /// The state `share(explicitThreads:)` set up: nil until a tool calls it.
    private struct Sharing {
        /// The user's own count (--threads, OMP_NUM_THREADS): then nothing is shared out.
        var explicit: Int?
        var cores: Int
        var registry: CoreRegistry?
        var jobserver: Jobserver?
        var lastCheck = -Double.infinity
    }
    nonisolated(unsafe) private static var sharing: Sharing?

    /// Seconds between two looks at the registry: a census costs about a hundred system
    /// calls, nothing beside a batch, but `--batch-size 1` runs a batch every few ms.
    static let recheckInterval = 0.02

    /// Joins the cores' sharing out between the tools running now (`CoreShare`, `CoreRegistry`,
    /// `Jobserver`) and takes this process's share. Tools call it once at start, before the
    /// first matmul, then `rebalance()` between batches. An explicit `--threads N` (or
    /// OMP_NUM_THREADS) is used as it is; the process still registers, so others count it.
    package static func share(explicitThreads option: Int?, environment: [String: String] = currentEnvironment()) {
        let explicit = CoreShare.explicitThreads(option: option, environment: environment)
        if let option { setThreads(option) }
        var state = Sharing(explicit: explicit, cores: explicit ?? configuredThreads)
        state.registry = CoreRegistry(path: environment["RU_EMBED_REGISTRY"] ?? CoreRegistry.defaultPath(environment: environment))
        if explicit == nil, let flags = environment["MAKEFLAGS"], let auth = Jobserver.auth(makeflags: flags),
           let server = Jobserver(auth) {
            server.installExitHooks()
            state.jobserver = server
        }
        sharing = state
        rebalance(force: true)
    }

    /// Takes this process's share of the cores now (at most every `recheckInterval`): fewer
    /// threads when other tools started, more when they ended. Call between batches, from
    /// the thread that runs them, outside any parallel region.
    package static func rebalance(force: Bool = false) {
        guard var state = sharing, state.explicit == nil else { return }
        let now = monotonicNow()
        guard force || now - state.lastCheck >= recheckInterval else { return }
        state.lastCheck = now
        var n = state.cores
        if let registry = state.registry {
            let census = registry.census()
            n = CoreShare.threads(cores: state.cores, processes: census.processes, rank: census.rank)
        }
        if let server = state.jobserver {
            // make's job already holds one token; each thread beyond the first needs one more.
            n = 1 + server.hold(n - 1)
        }
        sharing = state
        serialLock.withLock { _ in
            guard serialDepth == 0, n != threadCount else { return }
            threadCount = n
            entry.setThreads?(Int32(n))
        }
    }

    /// The process's environment as a dictionary (no Foundation in the core library).
    package static func currentEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            p += 1
        }
        return result
    }

    private static func monotonicNow() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    private final class Job {
        let ranges: [Range<Int>]
        let body: (Int, Int, Int) -> Void
        init(ranges: [Range<Int>], body: @escaping (Int, Int, Int) -> Void) {
            self.ranges = ranges
            self.body = body
        }
    }

    /// Splits `0..<count` into one contiguous range per thread and runs
    /// `body(range.lowerBound, range.upperBound)` on each, returning when all are done.
    package static func forRanges(_ count: Int, _ body: @escaping (Int, Int) -> Void) {
        forThreadRanges(count) { _, lo, hi in body(lo, hi) }
    }

    /// The ranges `forThreadRanges(count)` hands out: thread t gets `ranges(count)[t]`
    /// (empty ranges are not run).
    package static func ranges(_ count: Int) -> [Range<Int>] {
        let n = max(1, min(threads, count))
        return (0..<n).map { me in count * me / n ..< count * (me + 1) / n }
    }

    /// As `forRanges`, also telling the body which thread (0..<threads) runs it, so it can
    /// use per-thread scratch.
    package static func forThreadRanges(_ count: Int, _ body: @escaping (_ thread: Int, _ lo: Int, _ hi: Int) -> Void) {
        forThreadRanges(ranges: ranges(count), body)
    }

    /// Runs `body(t, lo, hi)` over `0..<count` in pieces of `piece` items (the last may be
    /// shorter), each thread taking the next piece when it has finished one; t (0..<threads)
    /// indexes per-thread scratch. A piece's bounds never depend on the thread that takes it,
    /// nor (without `taperingTo`) on the thread count, so whatever a piece computes comes out
    /// the same on any thread count.
    ///
    /// Why not one fixed range per thread: on the 2-vCPU machines this project runs on, one
    /// vCPU is often slower than the other (a neighbour on the host). perf on the int8 batch
    /// workload (2026-12-03, AMD EPYC Zen 5) showed the main thread waiting in libgomp for 8 %
    /// of the run at the joins of fixed halves, the other thread 3 %; pieces handed out as the
    /// threads free up keep both busy to the last piece.
    ///
    /// `threads`: at most this many threads, t below it — a caller that sized per-thread
    /// scratch with `pieceThreads` passes that count, since `Parallel.threads` may change
    /// between the two calls (another thread entering or leaving `serially`).
    ///
    /// `taperingTo`: the last `threads × piece` items go in smaller pieces, about half of a
    /// thread's share of what is left each, in multiples of this size (at least this, at most
    /// `piece`), so the threads reach the join closer together: with 442 rows in 32-row pieces on
    /// two threads, one thread still had most of a piece to run when the other found none left.
    /// The bounds then depend on the thread count (never on which thread takes a piece): for
    /// work whose every item comes out the same however it is cut (the int8 and bf16 layers' rows).
    package static func forPieces(_ count: Int, piece: Int, taperingTo smallest: Int? = nil, threads limit: Int? = nil,
                                  _ body: @escaping (_ thread: Int, _ lo: Int, _ hi: Int) -> Void) {
        precondition(piece > 0 && (smallest ?? 1) > 0)
        let workers = limit ?? threads
        let bounds = pieceBounds(count, piece: piece, taperingTo: workers > 1 ? smallest : nil, threads: workers)
        let pieces = bounds.count - 1
        let n = min(workers, pieces)
        guard n > 1 else {
            for p in 0..<pieces { body(0, bounds[p], bounds[p + 1]) }
            return
        }
        let next = PieceCounter()
        forThreadRanges(ranges: Array(repeating: 0..<1, count: n)) { t, _, _ in
            while true {
                let p = next.value.add(1, ordering: .relaxed).oldValue
                if p >= pieces { break }
                body(t, bounds[p], bounds[p + 1])
            }
        }
    }

    /// The pieces' bounds for `forPieces`: 0, then each piece's end, the last `count`.
    package static func pieceBounds(_ count: Int, piece: Int, taperingTo smallest: Int?, threads: Int) -> [Int] {
        var bounds = [0]
        var position = 0
        let threads = max(1, threads)
        while position < count {
            let left = count - position
            var size = piece
            if let smallest, left <= threads * piece {
                let half = (left + 2 * threads - 1) / (2 * threads)
                size = min(piece, max(smallest, (half + smallest - 1) / smallest * smallest))
            }
            position = min(count, position + size)
            bounds.append(position)
        }
        return bounds
    }

    /// The next piece of `forPieces`; the region's join orders the pieces' writes before the caller's reads.
    private final class PieceCounter: Sendable {
        let value = Atomic<Int>(0)
    }

    /// The number of threads `forPieces(count, piece:)` would run on now: size per-thread
    /// scratch with it and pass it to `forPieces` as `threads:`.
    package static func pieceThreads(_ count: Int, piece: Int) -> Int {
        max(1, min(threads, (count + piece - 1) / piece))
    }

    /// Runs `body(t, ranges[t].lowerBound, ranges[t].upperBound)` for every range t, each on
    /// its own thread when OpenMP grants them (one per thread: the split that work prepared
    /// beforehand, as `ranges(count)` made it; t indexes per-thread scratch).
    package static func forThreadRanges(ranges: [Range<Int>], _ body: @escaping (_ thread: Int, _ lo: Int, _ hi: Int) -> Void) {
        let n = ranges.count
        if n <= 1 {
            if let r = ranges.first, !r.isEmpty { body(0, r.lowerBound, r.upperBound) }
            return
        }
        let job = Job(ranges: ranges, body: body)
        if let parallel = entry.parallel, let threadNumber = entry.threadNumber {
            let unmanaged = Unmanaged.passRetained(job)
            defer { unmanaged.release() }
            // The C trampoline reads the job back from the context pointer.
            let trampoline: @convention(c) (UnsafeMutableRawPointer?) -> Void = { context in
                // The region's fork and join, for ThreadSanitizer (libgomp's are invisible to it).
                ThreadSanitizer.acquire(context!)
                defer { ThreadSanitizer.release(context! + 1) }
                let job = Unmanaged<Job>.fromOpaque(context!).takeUnretainedValue()
                let me = Int(Parallel.entry.threadNumber!())
                // OpenMP may grant fewer threads than asked (inside another parallel region):
                // then a thread takes several ranges, one after another, so none is dropped.
                let team = max(1, Int(Parallel.entry.teamSize?() ?? Int32(job.ranges.count)))
                for index in stride(from: me, to: job.ranges.count, by: team) {
                    let r = job.ranges[index]
                    if !r.isEmpty { job.body(index, r.lowerBound, r.upperBound) }
                }
            }
            _ = threadNumber
            ThreadSanitizer.release(unmanaged.toOpaque())
            parallel(trampoline, unmanaged.toOpaque(), UInt32(n), 0)
            ThreadSanitizer.acquire(unmanaged.toOpaque() + 1)
        } else {
            // The callers' bodies write disjoint ranges through pointers: not Sendable by type,
            // safe by construction (each index runs once, on one thread).
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: n) { me in
                let r = ranges[me]
                if !r.isEmpty { body(me, r.lowerBound, r.upperBound) }
            }
        }
    }
}
