import RuCompute
import RuCore
import CKernels

/// Near-duplicate groups: the connected components of the graph whose edges are the pairs of
/// records with cosine ≥ a threshold (all pairs, exactly; union–find).
///
/// A component is transitive: a and c share a group when a~b and b~c, even if a·c is below the
/// threshold (leader clustering would split them, and its groups would depend on the order).
/// Groups are numbered by their first record in input order, and that first record is the
/// group's representative.
///
/// Pairs are screened by matrix products over tiles of records, then every pair the product
/// puts near or above the threshold is confirmed with one dot product, so the groups do not
/// depend on the product's rounding or the thread count. The work is quadratic in the records.
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
    }

    static let tile = 1024
    /// The screen keeps products this far below the threshold for the exact check.
    static let screenMargin: Float = 1e-4

    /// Groups `count` unit rows of `dim` floats at `points`.
    package static func group(points: UnsafePointer<Float>, count: Int, dim: Int, threshold: Float) -> Groups {
        var parent = Array(0..<count)
        func find(_ x: Int) -> Int {
            var r = x
            while parent[r] != r { r = parent[r] }
            var y = x
            while parent[y] != r { let next = parent[y]; parent[y] = r; y = next }
            return r
        }
        let matmuls = MatmulCache()
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: tile * tile)
        defer { scores.deallocate() }
        var edges = 0
        for ib in stride(from: 0, to: count, by: tile) {
            let m = min(tile, count - ib)
            for jb in stride(from: 0, through: ib, by: tile) {
                let n = min(tile, count - jb)
                matmuls.get(m: m, n: n, k: dim).run(a: points + ib * dim, b: points + jb * dim, c: scores)
                let ranges = Parallel.ranges(m)
                let found = UnsafeMutablePointer<[(Int, Int)]>.allocate(capacity: ranges.count)
                found.initialize(repeating: [], count: ranges.count)
                Parallel.forThreadRanges(ranges: ranges) { t, lo, hi in
                    var pairs: [(Int, Int)] = []
                    for r in lo..<hi {
                        let i = ib + r
                        let row = scores + r * n
                        for c in 0..<min(n, i - jb) where row[c] >= threshold - screenMargin {
                            let j = jb + c
                            if ck_dot(points + i * dim, points + j * dim, dim) >= threshold { pairs.append((j, i)) }
                        }
                    }
                    found[t] = pairs
                }
                for t in 0..<ranges.count {
                    for (j, i) in found[t] {
                        edges += 1
                        let (a, b) = (find(j), find(i))
                        // The smaller index is the root: a component's root is its first record.
                        if a < b { parent[b] = a } else if b < a { parent[a] = b }
                    }
                }
                found.deinitialize(count: ranges.count)
                found.deallocate()
            }
        }
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
