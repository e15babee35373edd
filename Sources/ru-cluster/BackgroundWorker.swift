import RuCore
import RuVectors
import RuSearch
import RuCLI
#if canImport(Glibc)
import Glibc
#endif

/// A thread that does the work on one of two slots while the caller fills the other: the
/// caller's part (reading a stream) is sequential, so without it the second core waits.
/// Slots are worked on in the order they are submitted (0, 1, 0, …); `work` runs with loops
/// on that thread alone (`Parallel.serially`), so the two threads keep to two cores.
final class BackgroundWorker: @unchecked Sendable {
    private let work: (Int) -> Void
    /// Where each slot's work stands. The worker takes a slot only when it is `submitted` and
    /// marks it `running` as it does: it once found the slot it had just finished still flagged
    /// as submitted (the caller had not yet waited on it) and worked on it again while the caller
    /// refilled it — a block of wrong clusters under load (bench/cluster, 2026-12-02).
    enum State { case idle, submitted, running, done }
    /// Guarded by `mutex`.
    private var state: [State] = [.idle, .idle], stopping = false
    /// How many times `work` ran per slot (tests).
    private(set) var runs = [0, 0]
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var thread: pthread_t?
    /// Seconds the caller spent in `wait` (for -v).
    private(set) var waited = 0.0

    /// Starts the thread; `work(slot)` is called on it for each submitted slot.
    init(work: @escaping (Int) -> Void) throws {
        self.work = work
        mutex.initialize(to: pthread_mutex_t())
        changed.initialize(to: pthread_cond_t())
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(&thread, nil, { context in
            Unmanaged<BackgroundWorker>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context)
        if status != 0 {
            Unmanaged<BackgroundWorker>.fromOpaque(context).release()
            throw RuEmbedError("cannot start a thread (error \(status))")
        }
        self.thread = thread
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
    }

    /// Hands `slot` over; the caller leaves it alone until `wait(slot)` returns.
    func submit(_ slot: Int) {
        pthread_mutex_lock(mutex)
        precondition(state[slot] == .idle, "slot \(slot) submitted twice")
        state[slot] = .submitted
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
    }

    /// Waits until the work on `slot` (if submitted) is done; the slot is the caller's again.
    /// Returns the seconds waited.
    @discardableResult
    func wait(_ slot: Int) -> Double {
        let start = monotonicSeconds()
        pthread_mutex_lock(mutex)
        while state[slot] == .submitted || state[slot] == .running { pthread_cond_wait(changed, mutex) }
        state[slot] = .idle
        pthread_mutex_unlock(mutex)
        let seconds = monotonicSeconds() - start
        waited += seconds
        return seconds
    }

    /// Finishes the work submitted and stops the thread (also after an error; idempotent).
    func stop() {
        guard let thread else { return }
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
        pthread_join(thread, nil)
        self.thread = nil
    }

    private func run() {
        var slot = 0
        while true {
            pthread_mutex_lock(mutex)
            while state[slot] != .submitted && !stopping { pthread_cond_wait(changed, mutex) }
            let stop = state[slot] != .submitted
            if !stop { state[slot] = .running }
            pthread_mutex_unlock(mutex)
            if stop { return }
            Parallel.serially { work(slot) }
            pthread_mutex_lock(mutex)
            runs[slot] += 1
            state[slot] = .done
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(mutex)
            slot ^= 1
        }
    }
}
