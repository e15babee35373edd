import RuCompute
import RuCore
import CKernels
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Rows of `dim` floats in one malloc'd block that grows by `realloc`.
///
/// Why not `[Float]`: appending 200,000 × 768 f32 records to an array (it doubles, copying and
/// faulting in fresh pages each time) took 1.61 s of ru-cluster's 3.5 s on bench/cluster (Zen 3,
/// 2 cores; page faults cost ~0.6 ms per MB on this VM). glibc serves a large block with mmap
/// and grows it with mremap, which moves the pages without copying or touching them.
/// Transparent huge pages (madvise) made a first touch slower here, not faster (0.85 s vs
/// 0.39 s for 615 MB), so they are not asked for.
package final class RowBuffer {
    package let dim: Int
    package private(set) var count = 0
    private var capacity = 0
    private var base: UnsafeMutablePointer<Float>?

    package init(dim: Int) {
        precondition(dim > 0)
        self.dim = dim
    }

    deinit {
        finishPrefault()
        free(base)
    }

    /// Room for `rows` rows in all (never shrinks).
    package func reserve(_ rows: Int) throws {
        guard rows > capacity else { return }
        finishPrefault() // realloc may move the block under it
        let (bytes, overflow) = rows.multipliedReportingOverflow(by: dim * MemoryLayout<Float>.stride)
        guard !overflow, let grown = realloc(base, bytes) else {
            throw RuEmbedError("out of memory holding \(rows) rows of \(dim) floats")
        }
        base = grown.assumingMemoryBound(to: Float.self)
        capacity = rows
    }

    /// Reserves `rows` rows and has another thread fault their pages in while this one goes on
    /// appending (madvise MADV_POPULATE_WRITE: the kernel maps the pages writable without
    /// changing what is in them, so appends may run meanwhile). Why: the first pass of
    /// ru-cluster fills a 200 MB sample (bench/cluster, 65,536 × 768) and its page faults were
    /// 10 % of the run's samples, on the reading thread, while the other core sat idle (Zen 5,
    /// 2 vCPUs). Best effort: a kernel without MADV_POPULATE_WRITE (before Linux 5.14) leaves
    /// the faults to the appends, as before.
    package func prefault(rows: Int) throws {
        guard rows > 0, prefaulting == nil else { return }
        try reserve(rows)
        prefaulting = Prefault.inBackground(UnsafeMutableRawPointer(base!), bytes: rows * dim * MemoryLayout<Float>.stride)
    }

    private var prefaulting: DispatchGroup?

    private func finishPrefault() {
        prefaulting?.wait()
        prefaulting = nil
    }

    /// Copies `rows` rows to the end.
    package func append(_ source: UnsafePointer<Float>, rows: Int) throws {
        guard rows > 0 else { return }
        if count + rows > capacity { try reserve(max(count + rows, capacity * 2, 1024)) }
        (base! + count * dim).update(from: source, count: rows * dim)
        count += rows
    }

    /// The row `i` (< count).
    package func row(_ i: Int) -> UnsafeMutablePointer<Float> {
        precondition(i >= 0 && i < count)
        return base! + i * dim
    }

    /// The rows, contiguous; a valid pointer even when there are none.
    package func withRows<R>(_ body: (UnsafeMutablePointer<Float>) throws -> R) throws -> R {
        if base == nil { try reserve(1) }
        return try body(base!)
    }
}

/// Pages faulted in on another thread while this one works on (`madvise(MADV_POPULATE_WRITE)`:
/// the kernel maps them writable without changing what is in them, so the owner may write to
/// them meanwhile). Fresh memory is the most variable cost of a run on the VMs this is measured
/// on: first touches of 300 MB took 0.12–0.65 s from one run to the next (Zen 5, 2 vCPUs).
package enum Prefault {
    /// One thread for every request, in order: two at once would take both cores from the
    /// reading thread they are meant to hide behind.
    private static let queue = DispatchQueue(label: "ru-embed.prefault")
    /// Bytes per madvise call (see `inBackground`).
    private static let piece = 4 << 20

    /// Starts faulting in the whole pages of `bytes` bytes at `start`; wait on the group before
    /// freeing or moving the block. Best effort: a kernel without MADV_POPULATE_WRITE (before
    /// Linux 5.14) leaves the faults to the first writes.
    package static func inBackground(_ start: UnsafeMutableRawPointer, bytes: Int) -> DispatchGroup? {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = (Int(bitPattern: start) + page - 1) / page * page
        let end = (Int(bitPattern: start) + bytes) / page * page
        guard end > first else { return nil }
        let group = DispatchGroup()
        queue.async(group: group) {
            // A piece at a time, from the end: madvise holds the address space's lock
            // (mmap_lock) for its whole range, and the reading thread's own mmap calls (a
            // larger buffer) wait for it; in one call, the reading thread sat blocked for the
            // whole 268 MB (1 s on a busy host, perf: no samples on it meanwhile). From the
            // end, because the owner writes from the start: the two fault different pages.
            var at = end
            while at > first {
                let piece = min(at - first, Self.piece)
                at -= piece
                _ = madvise(UnsafeMutableRawPointer(bitPattern: at), piece, MADV_POPULATE_WRITE)
            }
        }
        return group
    }
}

/// A uniform sample of at most `capacity` records of a stream read once, whatever its length
/// (reservoir sampling, Vitter's algorithm R): the first `capacity` records fill it, and record
/// t (0-based) after them replaces a random slot with probability capacity/(t+1). One random
/// number per record past the capacity; the same records for the same seed and input.
package struct ReservoirSample {
    package let capacity: Int
    /// The sampled rows, in slot order.
    package let rows: RowBuffer
    /// The input position (0-based over everything offered) of each slot's record.
    package private(set) var origins: [Int] = []
    /// Records offered so far.
    package private(set) var seen = 0
    private var random: SeededRandom

    package init(capacity: Int, dim: Int, seed: UInt64) {
        precondition(capacity >= 1)
        self.capacity = capacity
        rows = RowBuffer(dim: dim)
        random = SeededRandom(seed: seed)
    }

    /// Offers the next `count` records, in input order.
    package mutating func offer(_ block: UnsafePointer<Float>, count: Int) throws {
        var i = 0
        if seen < capacity {
            let take = min(count, capacity - seen)
            try rows.append(block, rows: take)
            origins.append(contentsOf: seen..<seen + take)
            seen += take
            i = take
        }
        let dim = rows.dim
        while i < count {
            let slot = random.below(seen + 1)
            if slot < capacity {
                rows.row(slot).update(from: block + i * dim, count: dim)
                origins[slot] = seen
            }
            seen += 1
            i += 1
        }
    }

    /// The slots ordered by input position: walking records in order, the next sampled one is
    /// `origins[order[p]]`.
    package var inputOrder: [Int] {
        origins.indices.sorted { origins[$0] < origins[$1] }
    }
}

extension SphericalKMeans {
    /// Finds each row's best centroid among fixed centroids, a block of rows at a time.
    ///
    /// Screened (the default), as ru-knn's exact search: one int8 matrix product
    /// (`Int8LinearLayer`) estimates the cosines of a block of rows to every centroid, with a
    /// rigorous bound B on each estimate's error; only the centroids whose estimate + B reaches
    /// the best estimate − B are scored in f32 (one dot product each), so the best is exactly
    /// the f32 best. Unscreened: every cosine from an f32 product (`LinearLayer`).
    /// On bench/cluster's data (Zen 3, AVX2, no VNNI: oneDNN 2.6's u8·s8 product ran at 289
    /// GOP/s at this shape, its f32 product at 127–133 GFLOP/s, 2 threads) a record had 1.06
    /// centroids scored in f32 on average; three runs each way (`--no-screen`): training took
    /// 0.29–0.37 s screened, 0.40–0.45 s unscreened, the second pass 0.67–0.77 s and 0.83–0.90 s,
    /// with the same clusters.
    package final class Assigner {
        package let dim: Int, k: Int
        private let centroids: UnsafeMutablePointer<Float>
        private let exact: LinearLayer?
        private let screen: Int8LinearLayer?
        /// Unscreened through oneDNN, whose f32 matmul is made per row count: a partial block is
        /// copied here and padded to a multiple of 256 rows (few shapes made; the rows past the
        /// records are finite). nil otherwise (the int8 layer pads its own codes).
        private let padded: UnsafeMutablePointer<Float>?
        private let products: UnsafeMutablePointer<Float>
        /// Per thread, k floats: the error bounds of a row, then its upper bounds.
        private var scratch: [UnsafeMutablePointer<Float>] = []
        /// Rows whose candidates were scored in f32, and the candidates (statistics).
        package private(set) var screenedRows = 0, candidates = 0
        /// Float rounding in the dequantised estimates, beyond the quantisation bound.
        static let roundingMargin: Float = 1e-5

        /// `centroids`: `k` unit rows of `dim` floats.
        package init(centroids: UnsafePointer<Float>, dim: Int, k: Int, screened: Bool = true) {
            self.dim = dim
            self.k = k
            self.centroids = .allocate(capacity: k * dim)
            self.centroids.update(from: centroids, count: k * dim)
            if screened {
                screen = Int8LinearLayer(weights: centroids, bias: nil, inputSize: dim, outputSize: k)
                exact = nil
            } else {
                exact = LinearLayer(weights: centroids, bias: nil, inputSize: dim, outputSize: k)
                screen = nil
            }
            if let exact, !exact.usesKernel {
                let rows = UnsafeMutablePointer<Float>.allocate(capacity: block * dim)
                rows.initialize(repeating: 0, count: block * dim)
                padded = rows
            } else {
                padded = nil
            }
            products = .allocate(capacity: block * k)
        }

        package convenience init(centroids: [Float], dim: Int, k: Int, screened: Bool = true) {
            precondition(centroids.count == k * dim)
            self.init(centroids: centroids.withUnsafeBufferPointer { $0.baseAddress! }, dim: dim, k: k, screened: screened)
        }

        deinit {
            centroids.deallocate()
            padded?.deallocate()
            products.deallocate()
            scratch.forEach { $0.deallocate() }
        }

        /// Calls `body(row, best, score, upper)` for each of the `count` rows, a block at a time,
        /// on every thread's share of the block (so `body` must be safe per row): `best` is the
        /// row's best centroid and `score` its f32 cosine (ties: the lower number); `upper`
        /// points to k upper bounds on the row's cosines to every centroid (valid only during the
        /// call).
        func forEachRow(_ points: UnsafePointer<Float>, count: Int,
                        _ body: @escaping (_ row: Int, _ best: Int, _ score: Float, _ upper: UnsafePointer<Float>) -> Void) {
            let (dim, k, centroids, products) = (self.dim, self.k, self.centroids, self.products)
            let ranges = Parallel.ranges(min(block, count))
            while scratch.count < ranges.count { scratch.append(.allocate(capacity: 2 * k)) }
            let scratch = self.scratch
            let screen = self.screen
            var start = 0
            var screened = 0, scored = 0
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: ranges.count)
            defer { counts.deallocate() }
            while start < count {
                let m = min(block, count - start)
                let rows = points + start * dim
                if let screen {
                    // It pads its own codes for oneDNN.
                    screen.run(rows: m, input: rows, output: products)
                } else if let padded, m < block {
                    padded.update(from: rows, count: m * dim)
                    exact!.run(rows: (m + 255) / 256 * 256, input: padded, output: products)
                } else {
                    exact!.run(rows: m, input: rows, output: products)
                }
                let base = start
                counts.initialize(repeating: 0, count: ranges.count)
                Parallel.forThreadRanges(ranges: Parallel.ranges(m)) { t, lo, hi in
                    for r in lo..<hi {
                        let x = rows + r * dim
                        let estimate = products + r * k
                        guard let screen else {
                            var best = 0, bestScore = estimate[0]
                            for j in 1..<max(1, k) where estimate[j] > bestScore { bestScore = estimate[j]; best = j }
                            body(base + r, best, bestScore, estimate)
                            continue
                        }
                        let bound = scratch[t], upper = scratch[t] + k
                        screen.errorBounds(input: x, into: bound)
                        let floor = ck_screen_bounds(estimate, bound, k, Assigner.roundingMargin, upper)
                        var best = -1, bestScore = -Float.infinity
                        for j in 0..<k where upper[j] >= floor {
                            let v = ck_dot(x, centroids + j * dim, dim)
                            upper[j] = v
                            if best < 0 || v > bestScore { bestScore = v; best = j }
                            counts[t] += 1
                        }
                        body(base + r, best, bestScore, upper)
                    }
                }
                for t in 0..<ranges.count { scored += counts[t] }
                screened += m
                start += m
            }
            if screen != nil {
                screenedRows += screened
                candidates += scored
            }
        }

        /// The best centroid of each of `count` unit rows and the cosine to it (ties: the lower
        /// cluster number).
        package func assign(_ points: UnsafePointer<Float>, count: Int,
                            clusters: UnsafeMutablePointer<Int32>, scores: UnsafeMutablePointer<Float>) {
            forEachRow(points, count: count) { i, best, score, _ in
                clusters[i] = Int32(best)
                scores[i] = score
            }
        }
    }
}
