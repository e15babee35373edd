import RuCore
import CKernels

/// Small vector kernels shared by the tools.
public enum VectorMath {
    /// Scales each of `count` rows of `dim` floats to unit L2 norm; an all-zero row stays
    /// zero (its cosine with anything is then 0, never NaN).
    public static func l2NormalizeRows(_ rows: UnsafeMutablePointer<Float>, count: Int, dim: Int) {
        ck_normalize_rows(rows, count, dim)
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

    /// The f32 dot product.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, dim: Int) -> Float {
        ck_dot(a, b, dim)
    }
}
