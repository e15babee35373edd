/// Small vector kernels shared by the tools.
public enum VectorMath {
    /// Scales each of `count` rows of `dim` floats to unit L2 norm; an all-zero row stays
    /// zero (its cosine with anything is then 0, never NaN).
    public static func normalizeRows(_ rows: UnsafeMutablePointer<Float>, count: Int, dim: Int) {
        for r in 0..<count {
            let row = rows + r * dim
            let norm = l2Norm(UnsafePointer(row), dim: dim)
            if norm > 0 {
                let inv = Float(1 / norm)
                for j in 0..<dim { row[j] *= inv }
            }
        }
    }

    /// The L2 norm: 16 float lanes, summed in Double at the end (the lanes' partial sums of
    /// a few dozen products each lose nothing that matters at f32 output precision).
    public static func l2Norm(_ v: UnsafePointer<Float>, dim: Int) -> Double {
        var lanes = SIMD16<Float>()
        var j = 0
        while j + 16 <= dim {
            let x = UnsafeRawPointer(v + j).loadUnaligned(as: SIMD16<Float>.self)
            lanes += x * x
            j += 16
        }
        var sum = 0.0
        for l in 0..<16 { sum += Double(lanes[l]) }
        while j < dim {
            sum += Double(v[j]) * Double(v[j])
            j += 1
        }
        return sum.squareRoot()
    }

    /// The cosine of two vectors, accumulated in Double; 0 when either is all zeros.
    public static func cosine(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, dim: Int) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for j in 0..<dim {
            let x = Double(a[j]), y = Double(b[j])
            dot += x * y
            na += x * x
            nb += y * y
        }
        let denominator = (na * nb).squareRoot()
        return denominator > 0 ? dot / denominator : 0
    }
}
