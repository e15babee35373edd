import RuCompute
import RuCore
import RuVectors
/// Cosines of blocks of vectors against one fixed set, through one matmul per block.
package final class CrossScorer {
    package let dim: Int
    package let rightCount: Int
    private let right: [Float]
    private var matmuls: [Int: MatmulNT] = [:]
    private var scores: [Float] = []

    /// `right` holds rows of `dim` floats; they are normalised here.
    package init(right: [Float], dim: Int) {
        self.dim = dim
        rightCount = right.count / dim
        var normalized = right
        normalized.withUnsafeMutableBufferPointer { VectorMath.l2NormalizeRows($0.baseAddress!, count: right.count / dim, dim: dim) }
        self.right = normalized
    }

    /// The `count × rightCount` cosines of the rows of `left` (normalised in place).
    package func scores(_ left: inout [Float], count: Int) -> [Float] {
        left.withUnsafeMutableBufferPointer { VectorMath.l2NormalizeRows($0.baseAddress!, count: count, dim: dim) }
        let matmul = matmuls[count] ?? {
            let m = MatmulNT(m: count, n: rightCount, k: dim)
            matmuls[count] = m
            return m
        }()
        var scores = [Float](repeating: 0, count: count * rightCount)
        left.withUnsafeBufferPointer { l in
            right.withUnsafeBufferPointer { r in
                scores.withUnsafeMutableBufferPointer { s in
                    matmul.run(a: l.baseAddress!, b: r.baseAddress!, c: s.baseAddress!)
                }
            }
        }
        return scores
    }
}
