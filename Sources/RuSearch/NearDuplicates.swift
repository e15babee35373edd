import RuCompute
import RuCore
import CKernels

/// Near-duplicate groups: the connected components of the graph whose edges are the pairs of
/// records with cosine ≥ a threshold (all such pairs, exactly; union–find).
///
/// A component is transitive: a and c share a group when a~b and b~c, even if a·c is below the
/// threshold (leader clustering would split them, and its groups would depend on the order).
/// Groups are numbered by their first record in input order, and that first record is the
/// group's representative.
///
/// Every candidate pair the products put near or above the threshold is confirmed with one f32
/// dot product, so the groups do not depend on the products' rounding or the thread count.
///
/// Small inputs compare all pairs (tiles of matrix products). Larger ones are partitioned
/// first, and the partition only decides which pairs need comparing, never which are found:
/// k-means (k ≈ records/512) gives every record a home centroid, the argmax of its products
/// with the centroids. Two unit records a (home A) and b (home B ≠ A) with cosine ≥ t are
/// within ε = √(2 − 2t) of each other, and the segment between them crosses the hyperplane
/// x·(c_A − c_B) = 0 that separates A's records from B's, so b lies within ε of it:
/// b·c_B − b·c_A ≤ ε‖c_A − c_B‖. Such a b is in A's halo. Each cluster's records are compared
/// with each other and with the halo records whose home is a later cluster (a pair straddling
/// A < B is met in A's turn, once). On bench/near-duplicates' embedding-like data (768-d,
/// t = 0.95) that is 12 % of all pairs at 200,000 records and 9 % at 1,000,000; when the halos
/// come to more than half of all pairs (low thresholds) the input is compared all pairs instead.
package enum NearDuplicates {
    package struct Groups: Sendable {
        /// The group of every record, numbered 0, 1, … by first appearance.
        package var group: [Int32]
        /// The index of every record's representative (its group's first record).
        package var representative: [Int]
        /// The cosine of every record to its representative.
        package var scores: [Float]
        /// Pairs at or above the threshold.
        package var edges: Int
        /// Pairs compared (by a product), and whether the input was partitioned.
        package var compared: Int = 0
        package var partitioned = false
    }

    static let tile = 1024
    /// The screen keeps products this far below the threshold for the exact check.
    static let screenMargin: Float = 1e-4
    /// Slack in the halo test for the rounding of the products with the centroids.
    static let haloMargin: Float = 1e-3
    /// Records per partition cluster (the k-means' k is records/this). Smaller clusters mean
    /// fewer pairs but smaller, slower products: on bench/near-duplicates at 200,000 records,
    /// 96 per cluster compared 8.0 % of the pairs in 67 s, 256 10.3 % in 51 s, 512 12.0 % in 44 s.
    static let recordsPerCluster = 512
    /// Fewer records than this are compared all pairs (the partition would not pay).
    package static let partitionMinimum = 16_384

    /// Groups `count` unit rows of `dim` floats at `points`. `partitionAbove` and
    /// `recordsPerCluster` are for tests.
    package static func group(points: UnsafePointer<Float>, count: Int, dim: Int, threshold: Float,
                              partitionAbove: Int = partitionMinimum, recordsPerCluster: Int = recordsPerCluster,
                              seed: UInt64 = 1) -> Groups {
        var links = Links(count: count)
        var compared = 0
        var partitioned = false
        if count >= partitionAbove, let partition = Partition(points: points, count: count, dim: dim, threshold: threshold,
                                                               recordsPerCluster: recordsPerCluster, seed: seed) {
            compared = partition.compare(&links, threshold: threshold)
            partitioned = true
        } else {
            compared = allPairs(points: points, count: count, dim: dim, threshold: threshold, into: &links)
        }
        var groups = links.groups(points: points, dim: dim)
        groups.compared = compared
        groups.partitioned = partitioned
        return groups
    }

    /// Union–find whose root is always the smallest index (a component's first record).
    struct Links {
        var parent: [Int]
        var edges = 0
        init(count: Int) { parent = Array(0..<count) }

        mutating func find(_ x: Int) -> Int {
            var r = x
            while parent[r] != r { r = parent[r] }
            var y = x
            while parent[y] != r { let next = parent[y]; parent[y] = r; y = next }
            return r
        }

        mutating func link(_ i: Int, _ j: Int) {
            edges += 1
            let (a, b) = (find(i), find(j))
            if a < b { parent[b] = a } else if b < a { parent[a] = b }
        }

        mutating func groups(points: UnsafePointer<Float>, dim: Int) -> Groups {
            let count = parent.count
            var number = [Int32](repeating: -1, count: count)
            var groups = Groups(group: [Int32](repeating: 0, count: count), representative: [Int](repeating: 0, count: count),
                                scores: [Float](repeating: 0, count: count), edges: edges)
            var next: Int32 = 0
            for i in 0..<count {
                let root = find(i)
                if number[root] < 0 { number[root] = next; next += 1 }
                groups.group[i] = number[root]
                groups.representative[i] = root
                groups.scores[i] = ck_dot(points + i * dim, points + root * dim, dim)
            }
            return groups
        }
    }

    /// Every pair, over tiles of matrix products; returns the pairs compared.
    static func allPairs(points: UnsafePointer<Float>, count: Int, dim: Int, threshold: Float, into links: inout Links) -> Int {
        let matmuls = MatmulCache()
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: tile * tile)
        defer { scores.deallocate() }
        for ib in stride(from: 0, to: count, by: tile) {
            let m = min(tile, count - ib)
            for jb in stride(from: 0, through: ib, by: tile) {
                let n = min(tile, count - jb)
                matmuls.get(m: m, n: n, k: dim).run(a: points + ib * dim, b: points + jb * dim, c: scores)
                let pairs = confirm(rows: m, cols: n, products: scores, threshold: threshold, dim: dim,
                                    floor: { _ in threshold - screenMargin }) { r, c in
                    let (i, j) = (ib + r, jb + c)
                    return j < i ? (points + i * dim, points + j * dim, i, j) : nil
                }
                for (i, j) in pairs { links.link(j, i) }
            }
        }
        return count * (count - 1) / 2
    }

    /// The entries of a rows × cols product at or above their row's `floor` (the threshold less
    /// the product's error) that `pair` maps to two records, confirmed with an f32 dot product;
    /// in row order, whatever the thread count.
    static func confirm(rows: Int, cols: Int, products: UnsafePointer<Float>, threshold: Float, dim: Int,
                        floor: @escaping (Int) -> Float,
                        pair: @escaping (Int, Int) -> (UnsafePointer<Float>, UnsafePointer<Float>, Int, Int)?) -> [(Int, Int)] {
        let ranges = Parallel.ranges(rows)
        let found = UnsafeMutablePointer<[(Int, Int)]>.allocate(capacity: ranges.count)
        found.initialize(repeating: [], count: ranges.count)
        defer { found.deinitialize(count: ranges.count); found.deallocate() }
        Parallel.forThreadRanges(ranges: ranges) { t, lo, hi in
            var pairs: [(Int, Int)] = []
            for r in lo..<hi {
                let row = products + r * cols, rowFloor = floor(r)
                for c in 0..<cols where row[c] >= rowFloor {
                    guard let (x, y, i, j) = pair(r, c) else { continue }
                    if ck_dot(x, y, dim) >= threshold { pairs.append((i, j)) }
                }
            }
            found[t] = pairs
        }
        return (0..<ranges.count).flatMap { found[$0] }
    }

    /// The k-means partition and every cluster's halo (see the type's notes).
    struct Partition {
        let points: UnsafePointer<Float>
        let count: Int, dim: Int
        /// Each cluster's records, and its halo: records whose home is a later cluster, in
        /// input order.
        var members: [[UInt32]]
        var halo: [[UInt32]]

        /// nil when the comparisons would come to more than half of all pairs.
        init?(points: UnsafePointer<Float>, count: Int, dim: Int, threshold: Float, recordsPerCluster: Int, seed: UInt64) {
            guard threshold > 0 else { return nil }
            self.points = points
            self.count = count
            self.dim = dim
            let k = max(2, min(4096, count / recordsPerCluster))
            let epsilon = (2 - 2 * threshold).squareRoot()
            // The partition only needs to be good enough to keep halos small: a sample of 32
            // records per cluster and 8 rounds.
            guard let centroids = try? Self.centroids(points: points, count: count, dim: dim, k: k, seed: seed) else { return nil }
            // ‖c_A − c_B‖ for every pair of centroids.
            let gram = UnsafeMutablePointer<Float>.allocate(capacity: k * k)
            defer { gram.deallocate() }
            centroids.withUnsafeBufferPointer { c in
                MatmulNT(m: k, n: k, k: dim).run(a: c.baseAddress!, b: c.baseAddress!, c: gram)
            }
            var norms = [Float](repeating: 0, count: k)
            for a in 0..<k { norms[a] = gram[a * k + a] }
            for a in 0..<k { for b in 0..<k { gram[a * k + b] = max(0, norms[a] + norms[b] - 2 * gram[a * k + b]).squareRoot() } }

            members = Array(repeating: [], count: k)
            halo = Array(repeating: [], count: k)
            let block = SphericalKMeans.block
            let products = UnsafeMutablePointer<Float>.allocate(capacity: block * k)
            defer { products.deallocate() }
            let matmuls = MatmulCache()
            for start in stride(from: 0, to: count, by: block) {
                let rows = min(block, count - start)
                centroids.withUnsafeBufferPointer { c in
                    matmuls.get(m: rows, n: k, k: dim).run(a: points + start * dim, b: c.baseAddress!, c: products)
                }
                let ranges = Parallel.ranges(rows)
                let found = UnsafeMutablePointer<(homes: [UInt32], halo: [(UInt32, UInt32)])>.allocate(capacity: ranges.count)
                found.initialize(repeating: ([], []), count: ranges.count)
                let distances = UnsafePointer(gram)
                Parallel.forThreadRanges(ranges: ranges) { t, lo, hi in
                    var homes: [UInt32] = [], entries: [(UInt32, UInt32)] = []
                    for r in lo..<hi {
                        let row = products + r * k
                        var home = 0
                        for a in 1..<k where row[a] > row[home] { home = a }
                        homes.append(UInt32(home))
                        let own = row[home], d = distances + home * k
                        for a in 0..<home where own - row[a] <= epsilon * d[a] + haloMargin {
                            entries.append((UInt32(a), UInt32(start + r)))
                        }
                    }
                    found[t] = (homes, entries)
                }
                var record = start
                for t in 0..<ranges.count {
                    for home in found[t].homes { members[Int(home)].append(UInt32(record)); record += 1 }
                    for (a, b) in found[t].halo { halo[Int(a)].append(b) }
                }
                found.deinitialize(count: ranges.count)
                found.deallocate()
            }
            var work = 0
            for a in 0..<k { work += members[a].count * (members[a].count - 1) / 2 + members[a].count * halo[a].count }
            if work > count * (count - 1) / 4 { return nil }
        }

        static func centroids(points: UnsafePointer<Float>, count: Int, dim: Int, k: Int, seed: UInt64) throws -> [Float] {
            var sample = ReservoirSample(capacity: max(k, 32 * k), dim: dim, seed: seed)
            try sample.offer(points, count: count)
            return try sample.rows.withRows { rows in
                try SphericalKMeans.train(points: rows, count: sample.rows.count, dim: dim, k: k, iterations: 8, seed: seed).centroids
            }
        }

        /// Compares each cluster's records with each other and with its halo; returns the
        /// pairs compared.
        ///
        /// The products are int8 (`Int8LinearLayer`, the cluster's records as its weights): a
        /// pair is confirmed in f32 when its estimate reaches the threshold less the estimate's
        /// rigorous error bound (the largest over the tile's records), so no pair is lost. On
        /// bench/near-duplicates at 200,000 records: 44 s with f32 products (oneDNN), 32 s so.
        func compare(_ links: inout Links, threshold: Float) -> Int {
            var compared = 0
            // Tiles of up to 1,024 rows (a cluster's records) and columns (its earlier records,
            // then its halo) gathered into contiguous blocks.
            let rowBuffer = UnsafeMutablePointer<Float>.allocate(capacity: tile * dim)
            let colBuffer = UnsafeMutablePointer<Float>.allocate(capacity: tile * dim)
            let estimates = UnsafeMutablePointer<Float>.allocate(capacity: tile * tile)
            defer { rowBuffer.deallocate(); colBuffer.deallocate(); estimates.deallocate() }
            let points = self.points, dim = self.dim
            func gather(_ records: ArraySlice<UInt32>, into buffer: UnsafeMutablePointer<Float>) {
                for (r, i) in records.enumerated() { (buffer + r * dim).update(from: points + Int(i) * dim, count: dim) }
            }
            for cluster in members.indices where !members[cluster].isEmpty {
                let own = members[cluster], m = own.count
                compared += m * (m - 1) / 2 + m * halo[cluster].count
                for rb in stride(from: 0, to: m, by: tile) {
                    let rows = own[rb..<min(m, rb + tile)]
                    gather(rows, into: rowBuffer)
                    let layer = Int8LinearLayer(weights: rowBuffer, bias: nil, inputSize: dim, outputSize: rows.count)
                    // The cluster's records up to this tile's last (each pair within once), then the halo.
                    let columns = Array(own[0..<rows.endIndex]) + halo[cluster]
                    for cb in stride(from: 0, to: columns.count, by: tile) {
                        let n = min(tile, columns.count - cb)
                        gather(columns[cb..<cb + n], into: colBuffer)
                        layer.run(rows: n, input: colBuffer, output: estimates)
                        let pairs = columns.withUnsafeBufferPointer { col in
                            let col = col.baseAddress!
                            return own.withUnsafeBufferPointer { row in
                                let row = row.baseAddress!
                                let input = UnsafePointer(colBuffer)
                                return NearDuplicates.confirm(rows: n, cols: rows.count, products: estimates, threshold: threshold, dim: dim,
                                                              floor: { c in threshold - layer.maxErrorBound(input: input + c * dim) - screenMargin }) { c, r in
                                    let position = cb + c
                                    guard position >= rows.endIndex || position < rb + r else { return nil }
                                    let (i, j) = (Int(row[rb + r]), Int(col[position]))
                                    return (points + i * dim, points + j * dim, i, j)
                                }
                            }
                        }
                        for (i, j) in pairs { links.link(i, j) }
                    }
                }
            }
            return compared
        }
    }
}

/// oneDNN matmul primitives by shape, made once each (a primitive takes milliseconds to make).
final class MatmulCache: @unchecked Sendable {
    private var made: [[Int]: MatmulNT] = [:]
    func get(m: Int, n: Int, k: Int) -> MatmulNT {
        if let p = made[[m, n, k]] { return p }
        let p = MatmulNT(m: m, n: n, k: k)
        made[[m, n, k]] = p
        return p
    }
}
