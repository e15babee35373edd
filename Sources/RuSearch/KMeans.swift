import RuCompute
import RuCore
import CKernels
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// What spherical k-means found: unit centroids, every record's cluster and its cosine to it.
package struct KMeansResult: Sendable {
    /// `k` rows of `dim` floats, each of unit length (a zero row only if every member was zero).
    package var centroids: [Float]
    /// The cluster of every record, 0..<k, in input order.
    package var assignment: [Int32]
    /// The cosine of every record to its centroid.
    package var scores: [Float]
    /// The mean cosine to the assigned centroid after each iteration's assignment step.
    package var objectives: [Double]
    /// Records whose cosines to all centroids were computed, per iteration (the bounds skip the rest).
    package var recomputed: [Int]
    /// The largest distance a centroid moved in each update (what the bounds grow by).
    package var largestDrift: [Float] = []
    /// Empty clusters re-seeded, over all iterations.
    package var reseeded = 0
    /// Seconds spent seeding (k-means++), on the rounds over the seeding pool, training (the
    /// rounds) and assigning every record after a sampled training (for -v: where the time goes).
    package var seconds: (seeding: Double, poolRounds: Double, training: Double, assigning: Double) = (0, 0, 0, 0)
}

/// SplitMix64: a small seeded generator, the same numbers on every platform.
package struct SeededRandom: Sendable {
    private var state: UInt64
    package init(seed: UInt64) { state = seed }
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1), 53 bits.
    package mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    /// Uniform in 0..<n.
    package mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// `m` distinct indices of 0..<n drawn uniformly (partial Fisher–Yates), ascending.
    package mutating func sample(_ n: Int, _ m: Int) -> [Int] {
        if m >= n { return Array(0..<n) }
        var pool = Array(0..<n)
        for i in 0..<m { pool.swapAt(i, i + below(n - i)) }
        return pool[0..<m].sorted()
    }
}

/// Spherical k-means (cosine): records and centroids are unit vectors, a record goes to the
/// centroid with the highest dot product, a centroid is the normalised sum of its records.
///
/// - Seeding: greedy k-means++ (D² sampling, D² = 1 − cosine, several candidates a step)
///   from a seeded subset (the pool) of at most `seedingPool`·k training records. The k steps
///   run in sequence, each a pass over the pool: over 65,536 × 768 records that is 256 passes
///   over 200 MB (memory-bound, seconds), over 16·k records the pool stays in cache. The work
///   grows as k × pool, so for large k the pool shrinks to `seedingWork` / k records (at least
///   2·k): at k = 1,024, 16·k records took 5.4 s of seeding on 200,000 × 768 (Zen 3, 2 cores).
///   Then up to `poolRounds` k-means rounds on the pool (see `train`).
/// - Assignment: the cosines of a block of records to all centroids come from one int8 matrix
///   product screened to the exact f32 best (`Assigner`). Bounds in cosine form skip most
///   records after the first iterations: for unit x, |x·c′ − x·c| ≤ ‖c′ − c‖, so a record's
///   cosine to a centroid can only grow by how far that centroid moved. Every record's cosine
///   to its own centroid is recomputed exactly (one dot product, 1/k of a full row); when it
///   still beats the bound of every other centroid, the record keeps its cluster; when only a
///   few bounds fail, those centroids alone are compared by dot products (Elkan); otherwise
///   the whole row is recomputed in the next block product. On bench/cluster's 65,536 sampled
///   records, k = 256, the rounds after the first compared ~1,000–1,500, then 0 records with
///   every centroid.
/// - Update: the members of each cluster are summed in input order, one cluster per task, so
///   the sums (and everything after) do not depend on the thread count.
/// - An empty cluster is re-seeded with the record farthest from its centroid (lowest cosine,
///   ties by input order) whose own cluster keeps a member.
package enum SphericalKMeans {
    /// k-means++ draws its seeds from at most this many records per centroid (see above).
    package static let seedingPool = 16
    /// The pool's records × k at most, for large k (see above): 16·k up to k = 512.
    static let seedingWork = 1 << 22
    /// k-means rounds on the seeding pool before the training records (see `train`).
    static let poolRounds = 10
    /// Records per matrix product in the assignment step.
    package static let block = 2048
    /// Bounds are kept only with this margin: a matmul's cosine and a dot product's may differ
    /// in the last bits, and a record whose two best are that close is simply recomputed.
    static let margin: Float = 1e-5

    /// Clusters `count` unit rows of `dim` floats at `points` into `k` clusters.
    ///
    /// `sample`: train on this many records drawn with `seed` (nil or ≥ count: all), then
    /// assign every record to the trained centroids. `progress(iteration, mean cosine,
    /// records recomputed)` is called after each assignment step. ru-cluster does the same
    /// over streams with `ReservoirSample`, `train` and `Assigner` (the records it reads
    /// twice are not held).
    package static func cluster(points: UnsafePointer<Float>, count: Int, dim: Int, k: Int, iterations: Int,
                                seed: UInt64, sample: Int? = nil,
                                progress: ((Int, Double, Int) -> Void)? = nil) throws -> KMeansResult {
        guard count > 0 else { throw RuEmbedError("no records to cluster") }
        guard k >= 1 else { throw RuEmbedError.invalidArgument("k must be at least 1") }
        guard k <= count else { throw RuEmbedError("\(k) clusters asked for, but there are only \(count) records") }
        var reservoir = ReservoirSample(capacity: max(k, sample ?? count), dim: dim, seed: seed)
        try reservoir.offer(points, count: count)
        var result = try reservoir.rows.withRows { try train(points: $0, count: reservoir.rows.count, dim: dim, k: k,
                                                         iterations: iterations, seed: seed, progress: progress) }
        guard reservoir.rows.count < count else { return result }
        let clock = ContinuousClock(), started = clock.now
        var assignment = [Int32](repeating: 0, count: count), scores = [Float](repeating: 0, count: count)
        let assigner = Assigner(centroids: result.centroids, dim: dim, k: k)
        assignment.withUnsafeMutableBufferPointer { a in
            scores.withUnsafeMutableBufferPointer { s in
                assigner.assign(points, count: count, clusters: a.baseAddress!, scores: s.baseAddress!)
            }
        }
        result.assignment = assignment
        result.scores = scores
        result.seconds.assigning = seconds(since: started, clock)
        return result
    }

    static func seconds(since start: ContinuousClock.Instant, _ clock: ContinuousClock) -> Double {
        let d = (clock.now - start).components
        return Double(d.seconds) + Double(d.attoseconds) * 1e-18
    }

    /// Spherical k-means on `count` unit rows, all of them: greedy k-means++ seeds, then
    /// rounds of assignment and update until `iterations` or until no record changes cluster.
    /// The result's assignment and scores are those of these rows to the returned centroids.
    package static func train(points: UnsafePointer<Float>, count: Int, dim: Int, k: Int, iterations: Int,
                              seed: UInt64, screened: Bool = true, workspace: Workspace? = nil,
                              progress: ((Int, Double, Int) -> Void)? = nil) throws -> KMeansResult {
        guard count > 0 else { throw RuEmbedError("no records to cluster") }
        guard k >= 1 else { throw RuEmbedError.invalidArgument("k must be at least 1") }
        guard k <= count else { throw RuEmbedError("\(k) clusters asked for, but there are only \(count) records") }
        // Not the reservoir's generator: which records are drawn and which become seeds are
        // independent choices.
        var random = SeededRandom(seed: seed ^ 0x6B6D_6561_6E73_2B2B)
        let clock = ContinuousClock()
        var lap = clock.now
        func elapsed() -> Double {
            defer { lap = clock.now }
            return seconds(since: lap, clock)
        }
        var state = State(points: points, count: count, dim: dim, k: k, screened: screened, workspace: workspace)
        let (seeded, pool) = seeds(points: points, count: count, dim: dim, k: k, random: &random)
        state.centroids = seeded
        let seedingOnly = elapsed()
        if pool.count < count * dim && iterations > 0 {
            // Rounds on the seeding pool first: a centroid that starts as one record moves
            // ~0.8 in the first update, which defeats every bound, so the first two rounds over
            // all the records each compared every record with every centroid. Started from the
            // pool's centroids, the second round skips most records: on bench/cluster (65,536
            // sampled records, k = 256) training took 0.25–0.28 s after 0.05 s of pool rounds,
            // 0.62–0.66 s without them.
            state.centroids = pool.withUnsafeBufferPointer { p in
                var small = State(points: p.baseAddress!, count: pool.count / dim, dim: dim, k: k, screened: screened)
                small.centroids = seeded
                for round in 0..<poolRounds {
                    let (changed, _) = small.assign()
                    if round > 0 && changed == 0 { break }
                    _ = small.update()
                }
                return small.centroids
            }
        }
        var result = KMeansResult(centroids: [], assignment: [], scores: [], objectives: [], recomputed: [])
        result.seconds.poolRounds = elapsed()
        result.seconds.seeding = seedingOnly
        var converged = false
        for iteration in 0..<iterations {
            let (changed, recomputed) = state.assign()
            result.objectives.append(state.objective)
            result.recomputed.append(recomputed)
            progress?(iteration + 1, state.objective, recomputed)
            // Nothing moved: the update would give the same centroids again.
            if iteration > 0 && changed == 0 { converged = true; break }
            result.reseeded += state.update()
            result.largestDrift.append(state.drift.max() ?? 0)
        }
        // The last update moved the centroids: the rows to where they are now (the bounds
        // make this a fraction of a round).
        if !converged { _ = state.assign() }
        result.seconds.training = elapsed()
        result.centroids = state.centroids
        result.assignment = state.assignment
        result.scores = state.own
        return result
    }

    /// Greedy k-means++ seeds (see the type's notes): `k` rows copied from the records.
    ///
    /// Plain k-means++ draws one seed per step; with few records per cluster its last draws
    /// often land in a cluster that already has a seed (5 well-separated clusters in 16-d, 32
    /// pool records each: 2 runs in 8 ended with two seeds in one cluster and none in another,
    /// which k-means does not repair). As scikit-learn does, each step draws 2 + ⌊ln k⌋
    /// candidates and keeps the one that lowers the total D² most.
    static func seeds(points: UnsafePointer<Float>, count: Int, dim: Int, k: Int, random: inout SeededRandom) -> (centroids: [Float], pool: [Float]) {
        let pool = random.sample(count, min(count, max(k, min(seedingPool * k, max(2 * k, seedingWork / k)))))
        let m = pool.count
        var rows = [Float](repeating: 0, count: m * dim)
        rows.withUnsafeMutableBufferPointer { r in
            for (p, i) in pool.enumerated() { (r.baseAddress! + p * dim).update(from: points + i * dim, count: dim) }
        }
        let trials = 2 + Int(log(Double(k)))
        var centroids = [Float](repeating: 0, count: k * dim)
        // 1 − the best cosine to a chosen seed so far (the D² weight of spherical k-means).
        var weight = [Double](repeating: 1, count: m)
        var trial = [Double](repeating: 0, count: m * trials)
        var chosen = [Bool](repeating: false, count: m)
        rows.withUnsafeBufferPointer { r in
            centroids.withUnsafeMutableBufferPointer { c in
                weight.withUnsafeMutableBufferPointer { w in
                    trial.withUnsafeMutableBufferPointer { t in
                        let (rp, cp, wp, tp) = (r.baseAddress!, c.baseAddress!, w.baseAddress!, t.baseAddress!)
                        var pick = random.below(m)
                        for j in 0..<k {
                            chosen[pick] = true
                            (cp + j * dim).update(from: rp + pick * dim, count: dim)
                            if j == 0 {
                                let seed = cp
                                Parallel.forRanges(m) { lo, hi in
                                    for i in lo..<hi { wp[i] = max(0, 1 - Double(ck_dot(rp + i * dim, seed, dim))) }
                                }
                            }
                            if j == k - 1 { break }
                            // A sequential sum: the same total whatever the thread count.
                            var total = 0.0
                            for i in 0..<m where !chosen[i] { total += wp[i] }
                            guard total > 0 else {
                                // The rest coincide with seeds already chosen: any unchosen one will do.
                                pick = chosen.firstIndex(of: false)!
                                continue
                            }
                            var candidates: [Int] = []
                            for _ in 0..<trials {
                                var target = random.unit() * total
                                var found = -1
                                for i in 0..<m where !chosen[i] && wp[i] > 0 {
                                    found = i
                                    target -= wp[i]
                                    if target < 0 { break }
                                }
                                candidates.append(found)
                            }
                            let rows: [UnsafePointer<Float>?] = candidates.map { UnsafePointer(rp + $0 * dim) }
                            // 64 pool rows a piece, up to eight candidates a pass over them (ck_dots8).
                            Parallel.forPieces(m, piece: 64) { _, lo, hi in
                                withUnsafeTemporaryAllocation(of: Float.self, capacity: 64 * 8) { dots in
                                    rows.withUnsafeBufferPointer { c in
                                        for first in stride(from: 0, to: trials, by: 8) {
                                            let n = min(8, trials - first)
                                            ck_dots8(rp + lo * dim, hi - lo, c.baseAddress! + first, n, dim, dots.baseAddress!)
                                            for i in lo..<hi {
                                                for q in 0..<n {
                                                    tp[(first + q) * m + i] = min(wp[i], max(0, 1 - Double(dots[(i - lo) * n + q])))
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                            var best = 0, bestTotal = Double.infinity
                            for q in 0..<trials {
                                var sum = 0.0
                                for i in 0..<m { sum += tp[q * m + i] }
                                if sum < bestTotal { bestTotal = sum; best = q }
                            }
                            pick = candidates[best]
                            (wp).update(from: tp + best * m, count: m)
                        }
                    }
                }
            }
        }
        return (centroids, rows)
    }

    /// Memory for `train`'s bounds: a float per record and centroid, `boundsLimit` floats at
    /// most (67 MB on bench/cluster's 65,536-record sample at k = 256). ru-cluster makes it
    /// before reading, for the sample it will hold, and has its pages faulted in on the other
    /// core while it reads (`prefault`): first touching it in `train` took 0.02–0.07 s of the
    /// critical path on a quiet Zen 5 VM and ~0.3 s when the host was busy.
    package final class Workspace: @unchecked Sendable {
        /// Above this many floats the bounds are kept per group of centroids (see `State`).
        static let boundsLimit = 1 << 26
        let floats: Int
        let bounds: UnsafeMutablePointer<Float>
        private var faulting: DispatchGroup?

        /// Room for the bounds of `records` records at most, with `k` centroids.
        package convenience init(records: Int, k: Int) {
            let (product, overflow) = max(1, records).multipliedReportingOverflow(by: max(1, k))
            self.init(floats: overflow ? Self.boundsLimit : min(product, Self.boundsLimit))
        }

        init(floats: Int) {
            self.floats = max(1, floats)
            bounds = .allocate(capacity: self.floats)
        }

        deinit {
            faulting?.wait()
            bounds.deallocate()
        }

        /// Faults the pages in on another thread (`Prefault`), once.
        package func prefault() {
            guard faulting == nil else { return }
            faulting = Prefault.inBackground(UnsafeMutableRawPointer(bounds), bytes: floats * MemoryLayout<Float>.stride)
        }
    }

    /// The assignment state of one set of records: clusters, own cosines, bounds.
    struct State {
        let points: UnsafePointer<Float>
        let count: Int, dim: Int, k: Int
        var centroids: [Float] = []
        var assignment: [Int32]
        /// The cosine to the own centroid.
        var own: [Float]
        /// Per record and group of centroids, an upper bound on its best cosine to a centroid of
        /// the group other than its own (`groups` floats a record), in `bounds`.
        let other: UnsafeMutablePointer<Float>
        let bounds: Workspace
        /// Centroids are bounded in `groups` groups of consecutive centroids.
        let groups: Int
        /// How far each centroid moved in the last update (bounds grow by it).
        var drift: [Float]
        var objective = 0.0
        /// At first, and after a re-seeding, every record is recomputed: a re-seeded centroid jumps.
        var resetBounds = true
        /// Whether full rows are screened in int8 (`Assigner`).
        let screened: Bool

        init(points: UnsafePointer<Float>, count: Int, dim: Int, k: Int, screened: Bool = true,
             workspace: Workspace? = nil) {
            self.points = points
            self.screened = screened
            self.count = count
            self.dim = dim
            self.k = k
            assignment = [Int32](repeating: 0, count: count)
            own = [Float](repeating: -.infinity, count: count)
            // One bound per centroid (Elkan's) while they take at most 2^26 floats (256 MB),
            // fewer, wider groups beyond. One bound for all (Hamerly's) skipped nothing on
            // bench/cluster's data (50,000 × 768, k = 256): some centroid always moved by
            // 0.55–0.86 in a round, more than any record's gap between its best and second best.
            groups = max(1, min(k, Workspace.boundsLimit / count))
            let floats = count * groups
            bounds = workspace.flatMap { $0.floats >= floats ? $0 : nil } ?? Workspace(floats: floats)
            other = bounds.bounds
            other.update(repeating: .infinity, count: floats)
            drift = [Float](repeating: 0, count: k)
        }

        /// One assignment step against `centroids`; returns how many records changed cluster
        /// and how many were compared with every centroid.
        mutating func assign() -> (changed: Int, recomputed: Int) {
            let (count, dim, k, points) = (self.count, self.dim, self.k, self.points)
            let (other, bounds) = (self.other, self.bounds)
            // Each group's bounds grow by the largest move of its centroids.
            let groups = self.groups
            let gd = UnsafeMutablePointer<Float>.allocate(capacity: groups)
            gd.initialize(repeating: 0, count: groups)
            defer { gd.deallocate() }
            for j in 0..<k { gd[j * groups / k] = max(gd[j * groups / k], drift[j]) }
            let reset = resetBounds
            resetBounds = false
            var stale = [Bool](repeating: true, count: count)
            var moved = [UInt8](repeating: 0, count: count)
            // With a bound per centroid, a record whose bounds fail for a few centroids only is
            // compared with those few by dot products (Elkan), not with all of them by the
            // matrix product: in a round where some centroids jump, only they are looked at.
            let fewest = groups == k ? max(1, k / 8) : 0
            centroids.withUnsafeBufferPointer { c in
                assignment.withUnsafeMutableBufferPointer { a in
                    own.withUnsafeMutableBufferPointer { o in
                        withExtendedLifetime(bounds) { () -> Void in
                            let u = UnsafeMutableBufferPointer(start: other, count: count * groups)
                            stale.withUnsafeMutableBufferPointer { s in
                                moved.withUnsafeMutableBufferPointer { mv in
                                    let (cp, ap, op, up, sp, mp) = (c.baseAddress!, a.baseAddress!, o.baseAddress!, u.baseAddress!,
                                                                    s.baseAddress!, mv.baseAddress!)
                                    if reset { return }
                                    Parallel.forRanges(count) { lo, hi in
                                        for i in lo..<hi {
                                            let x = points + i * dim
                                            let j = Int(ap[i])
                                            let mine = ck_dot(x, cp + j * dim, dim)
                                            op[i] = mine
                                            let ub = up + i * groups
                                            let failing = ck_grow_bounds(ub, gd, groups, mine, margin)
                                            if failing == 0 {
                                                sp[i] = false
                                            } else if failing <= fewest {
                                                // groups == k: group g is centroid g.
                                                var best = j, bestScore = mine
                                                for g in 0..<groups where !(mine - margin >= ub[g] + margin) {
                                                    let v = ck_dot(x, cp + g * dim, dim)
                                                    ub[g] = v
                                                    if v > bestScore { bestScore = v; best = g }
                                                }
                                                if best != j {
                                                    ub[j] = mine
                                                    ub[best] = -.infinity
                                                    ap[i] = Int32(best)
                                                    op[i] = bestScore
                                                    mp[i] = 1
                                                }
                                                sp[i] = false
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            var changedByBounds = 0
            for m in moved { changedByBounds += Int(m) }
            let recompute = (0..<count).filter { stale[$0] }
            let changed = changedByBounds + (recompute.isEmpty ? 0 : assignAll(recompute))
            var sum = 0.0
            for v in own { sum += Double(v) }
            objective = sum / Double(count)
            return (changed, recompute.count)
        }

        /// Compares the records `indices` (ascending) with every centroid, a block per matrix
        /// product; returns how many changed cluster.
        private mutating func assignAll(_ indices: [Int]) -> Int {
            let (dim, k, points, groups) = (self.dim, self.k, self.points, self.groups)
            let (other, bounds) = (self.other, self.bounds)
            let scorer = centroids.withUnsafeBufferPointer { Assigner(centroids: $0.baseAddress!, dim: dim, k: k, screened: screened) }
            let moved = UnsafeMutablePointer<UInt8>.allocate(capacity: indices.count)
            moved.initialize(repeating: 0, count: indices.count)
            defer { moved.deallocate() }
            assignment.withUnsafeMutableBufferPointer { a in
                own.withUnsafeMutableBufferPointer { o in
                    withExtendedLifetime(bounds) { () -> Void in
                        let (ap, op, up) = (a.baseAddress!, o.baseAddress!, other)
                        // Record i (the p-th compared) goes to `best`; every group's best other
                        // than it becomes the group's bound.
                        let settle = { (p: Int, i: Int, best: Int, bestScore: Float, upper: UnsafePointer<Float>) in
                            if groups == k {
                                // A bound per centroid: the upper bounds as they are, the best's
                                // left out. (The loop below, one centroid a group, took 0.06 of
                                // the first round's 0.09 s on bench/cluster's 65,536 × 256.)
                                (up + i * groups).update(from: upper, count: k)
                                up[i * groups + best] = -.infinity
                            } else {
                                for g in 0..<groups {
                                    var top = -Float.infinity
                                    for j in g * k / groups..<(g + 1) * k / groups where j != best { top = max(top, upper[j]) }
                                    up[i * groups + g] = top
                                }
                            }
                            moved[p] = ap[i] == Int32(best) ? 0 : 1
                            ap[i] = Int32(best)
                            op[i] = bestScore
                        }
                        if indices.count == count {
                            // Every record (the first round, after a re-seeding): in place.
                            scorer.forEachRow(points, count: count) { i, best, score, upper in settle(i, i, best, score, upper) }
                            return
                        }
                        let rows = UnsafeMutablePointer<Float>.allocate(capacity: block * dim)
                        defer { rows.deallocate() }
                        indices.withUnsafeBufferPointer { ix in
                            let ixp = ix.baseAddress!
                            var start = 0
                            while start < indices.count {
                                let m = min(block, indices.count - start)
                                let base = start
                                Parallel.forRanges(m) { lo, hi in
                                    for r in lo..<hi { (rows + r * dim).update(from: points + ixp[base + r] * dim, count: dim) }
                                }
                                scorer.forEachRow(rows, count: m) { r, best, score, upper in
                                    settle(base + r, ixp[base + r], best, score, upper)
                                }
                                start += m
                            }
                        }
                    }
                }
            }
            var changed = 0
            for p in 0..<indices.count { changed += Int(moved[p]) }
            return changed
        }

        /// Moves every centroid to the normalised sum of its members (re-seeding empty ones);
        /// returns how many were re-seeded.
        mutating func update() -> Int {
            let (count, dim, k, points) = (self.count, self.dim, self.k, self.points)
            var sizes = [Int](repeating: 0, count: k)
            for a in assignment { sizes[Int(a)] += 1 }
            var reseeded = 0
            let empty = (0..<k).filter { sizes[$0] == 0 }
            if !empty.isEmpty {
                // Farthest first: lowest own cosine, ties by input order.
                let order = (0..<count).sorted { own[$0] < own[$1] || (own[$0] == own[$1] && $0 < $1) }
                var next = 0
                for j in empty {
                    while next < order.count && sizes[Int(assignment[order[next]])] <= 1 { next += 1 }
                    guard next < order.count else { break }
                    let i = order[next]
                    next += 1
                    sizes[Int(assignment[i])] -= 1
                    assignment[i] = Int32(j)
                    sizes[j] += 1
                    reseeded += 1
                }
                resetBounds = true
            }
            // Members grouped by cluster, in input order (a counting sort).
            var starts = [Int](repeating: 0, count: k + 1)
            for j in 0..<k { starts[j + 1] = starts[j] + sizes[j] }
            var fill = starts
            var members = [Int](repeating: 0, count: count)
            for i in 0..<count {
                let j = Int(assignment[i])
                members[fill[j]] = i
                fill[j] += 1
            }
            var next = [Float](repeating: 0, count: k * dim)
            centroids.withUnsafeBufferPointer { c in
                next.withUnsafeMutableBufferPointer { nb in
                    drift.withUnsafeMutableBufferPointer { d in
                        members.withUnsafeBufferPointer { mb in
                            starts.withUnsafeBufferPointer { sb in
                                let (cp, np, dp, mp, sp) = (c.baseAddress!, nb.baseAddress!, d.baseAddress!, mb.baseAddress!, sb.baseAddress!)
                                Parallel.forRanges(k) { lo, hi in
                                    for j in lo..<hi {
                                        let target = np + j * dim
                                        mp.withMemoryRebound(to: Int64.self, capacity: count) { members in
                                            ck_sum_rows(points, members + sp[j], sp[j + 1] - sp[j], dim, target)
                                        }
                                        if sp[j] == sp[j + 1] {
                                            // Empty and nothing to re-seed it with: it stays.
                                            target.update(from: cp + j * dim, count: dim)
                                        }
                                        ck_normalize_rows(target, 1, dim)
                                        var d2: Float = 0
                                        for t in 0..<dim { let e = target[t] - cp[j * dim + t]; d2 += e * e }
                                        dp[j] = d2.squareRoot()
                                    }
                                }
                            }
                        }
                    }
                }
            }
            centroids = next
            return reseeded
        }
    }
}
