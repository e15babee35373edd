import RuCore
import RuVectors
import RuSearch
import RuCLI
#if canImport(Glibc)
import Glibc
#endif

/// The second pass's records, in input order, on their way to the output: a sampled record
/// comes with its cluster, the others are gathered into blocks, assigned a block at a time,
/// and every line is printed once its block is done.
///
/// With two threads or more, a block is assigned and its lines formatted on a thread of its
/// own (its loops on that thread alone) while the caller reads, normalises and writes: the
/// reading is sequential, so assigning in parallel on every thread left the other core idle
/// while the next block was read, and reading beside a parallel assignment oversubscribed the
/// cores (OpenMP's threads wait at each barrier for the one that was descheduled: 0.83–0.96 s
/// with a reading thread). On bench/cluster (Zen 3, 2 cores) the second pass took 0.51 s this way, 0.69–0.78 s
/// assigning each block on both threads between reads. The output is the same either way
/// (`--threads 1` assigns on the caller's thread).
final class AssignmentQueue {
    /// One block: the rows to assign and the lines waiting for them.
    private final class Slot {
        let rows: UnsafeMutablePointer<Float>
        var count = 0
        var clusters: [Int32], scores: [Float]
        /// Every record since the block before: its id, and its cluster and score, or cluster
        /// −1 and its row's place in `rows` as the score.
        var ids: [String] = [], lineClusters: [Int32] = [], lineScores: [Float] = []
        /// The records' lines, once assigned.
        var lines: ClusterLines
        init(rows capacity: Int, dim: Int, format: ClusterFormat) {
            lines = ClusterLines(format: format)
            rows = .allocate(capacity: capacity * dim)
            clusters = [Int32](repeating: 0, count: capacity)
            scores = [Float](repeating: 0, count: capacity)
        }
        deinit { rows.deallocate() }
    }

    private let assigner: SphericalKMeans.Assigner
    private let dim: Int, capacity: Int
    private let slots: [Slot]
    private var filling = 0
    private var worker: BackgroundWorker?
    /// Seconds the caller waited for a block's assignment (for -v).
    var waited: Double { waitedBefore + (worker?.waited ?? 0) }
    private var waitedBefore = 0.0
    /// When the caller last handed a block over, and how often in a row it then waited
    /// longer for an assignment than it took to fill the next block.
    private var lastRotation = monotonicSeconds(), slowRounds = 0
    /// Whether the blocks went back to the caller's thread (see `rotate`).
    private(set) var switchedToCaller = false

    init(assigner: SphericalKMeans.Assigner, dim: Int, format: ClusterFormat, background: Bool) throws {
        self.assigner = assigner
        self.dim = dim
        capacity = SphericalKMeans.block
        slots = [Slot(rows: capacity, dim: dim, format: format), Slot(rows: capacity, dim: dim, format: format)]
        if background {
            worker = try BackgroundWorker { [unowned self] slot in process(slots[slot]) }
        }
    }

    /// A record with its cluster known (sampled).
    func add(id: String, cluster: Int32, score: Float) {
        let slot = slots[filling]
        slot.ids.append(id)
        slot.lineClusters.append(cluster)
        slot.lineScores.append(score)
    }

    /// Records to assign: their ids and rows (consecutive; normalised as they are copied, on
    /// the caller's thread, which has less to do than the assigning one). A run at a time, not
    /// a record at a time: per record, the slot's reference counting alone was 6.5 % of the
    /// reading thread's samples in the second pass (perf, bench/cluster, Zen 5).
    func add(ids: ArraySlice<String>, rows: UnsafePointer<Float>) throws {
        var done = 0
        while done < ids.count {
            let slot = slots[filling]
            let take = min(ids.count - done, capacity - slot.count)
            (slot.rows + slot.count * dim).update(from: rows + done * dim, count: take * dim)
            VectorMath.l2NormalizeRows(slot.rows + slot.count * dim, count: take, dim: dim)
            let first = ids.startIndex + done
            slot.ids.append(contentsOf: ids[first..<first + take])
            slot.lineClusters.append(contentsOf: repeatElement(-1, count: take))
            for p in slot.count..<slot.count + take { slot.lineScores.append(Float(p)) }
            slot.count += take
            done += take
            if slot.count == capacity { try rotate() }
        }
    }

    /// Assigns and prints what is left, and stops the thread.
    func finish() throws {
        try rotate()
        worker?.wait(filling ^ 1)
        try print(filling ^ 1)
        stop()
    }

    /// Stops the thread (after an error too).
    func stop() {
        guard let worker else { return }
        worker.stop()
        waitedBefore += worker.waited
        self.worker = nil
    }

    /// Hands the filled slot over for assignment, prints the other one's lines (submitted
    /// before: the output stays in input order) and fills that one next.
    ///
    /// When the assignments are the slower side (many centroids: a record's products cost
    /// more than reading it), one thread assigning while the other reads leaves a core idle:
    /// after three blocks in a row whose assignment took longer than filling the next one,
    /// the thread stops and the caller assigns on every thread itself.
    private func rotate() throws {
        let full = filling
        filling ^= 1
        guard let worker else {
            process(slots[full])
            try print(filling)
            return
        }
        let filled = monotonicSeconds() - lastRotation
        worker.submit(full)
        let waitedNow = worker.wait(filling)
        try print(filling)
        slowRounds = waitedNow > filled ? slowRounds + 1 : 0
        if slowRounds >= 3 {
            // The block just submitted is assigned before the thread stops.
            stop()
            switchedToCaller = true
        }
        lastRotation = monotonicSeconds()
    }

    /// Writes slot `i`'s lines (made by `process`) and empties it.
    private func print(_ i: Int) throws {
        let slot = slots[i]
        try slot.lines.write()
        slot.ids.removeAll(keepingCapacity: true)
        slot.lineClusters.removeAll(keepingCapacity: true)
        slot.lineScores.removeAll(keepingCapacity: true)
        slot.count = 0
    }

    /// Assigns a slot's rows and formats its lines.
    private func process(_ slot: Slot) {
        if slot.count > 0 {
            slot.clusters.withUnsafeMutableBufferPointer { c in
                slot.scores.withUnsafeMutableBufferPointer { s in
                    assigner.assign(slot.rows, count: slot.count, clusters: c.baseAddress!, scores: s.baseAddress!)
                }
            }
        }
        for q in 0..<slot.ids.count {
            if slot.lineClusters[q] < 0 {
                let p = Int(slot.lineScores[q])
                slot.lines.append(id: slot.ids[q], cluster: slot.clusters[p], score: slot.scores[p])
            } else {
                slot.lines.append(id: slot.ids[q], cluster: slot.lineClusters[q], score: slot.lineScores[q])
            }
        }
    }
}
