import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import RuEmbed

/// The int8 linear layer of `--precision int8` against an f32 reference computed in Double.
@Suite struct Int8LinearTests {
    typealias T = TestSupport

    func gelu(_ x: Double) -> Double { 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }

    @Test(arguments: [LinearEpilogue.none, .geluErf, .accumulate])
    func matchesF32WithinTheQuantisationBound(epilogue: LinearEpilogue) {
        var random = T.Random(seed: 41)
        let m = 37, k = 96, n = 80
        // Activations with an offset and an outlier column, as LayerNorm outputs have.
        var x = random.vectors(m, k).map { $0 * 2 + 0.3 }
        for r in 0..<m { x[r * k + 5] *= 6 }
        let w = random.vectors(n, k).map { $0 * 0.2 }
        let b = random.vectors(1, n)
        let initial = random.vectors(m, n)
        let layer = w.withUnsafeBufferPointer { wp in
            b.withUnsafeBufferPointer { bp in
                Int8LinearLayer(weights: wp.baseAddress!, bias: bp.baseAddress!, inputSize: k, outputSize: n, epilogue: epilogue)
            }
        }
        var y = epilogue == .accumulate ? initial : [Float](repeating: .nan, count: m * n)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { layer.run(rows: m, input: xp.baseAddress!, output: $0.baseAddress!) }
        }
        var worstShare = 0.0   // the largest error as a share of its bound
        for r in 0..<m {
            for j in 0..<n {
                var exact = Double(b[j])
                for i in 0..<k { exact += Double(x[r * k + i]) * Double(w[j * k + i]) }
                let bound = Double(x.withUnsafeBufferPointer { layer.errorBound(input: $0.baseAddress! + r * k, output: j) })
                var expected = exact
                var allowed = bound
                switch epilogue {
                case .none: break
                case .geluErf: expected = gelu(exact); allowed = bound * 1.13  // |GELU'| ≤ 1.13
                case .accumulate: expected += Double(initial[r * n + j])
                case .geluTanh: Issue.record("not a case of this test")
                }
                let error = abs(Double(y[r * n + j]) - expected)
                #expect(error <= allowed + 1e-4, "row \(r) output \(j): error \(error), bound \(allowed)")
                worstShare = max(worstShare, error / allowed)
            }
        }
        // The products are really int8: errors of the size the quantisation makes, not zero.
        #expect(worstShare > 0.01)
    }

    @Test func quantisedProductIsCloseToF32ForEveryRow() {
        var random = T.Random(seed: 42)
        let m = 64, k = 256, n = 128
        let x = random.vectors(m, k), w = random.vectors(n, k)
        let layer = w.withUnsafeBufferPointer { Int8LinearLayer(weights: $0.baseAddress!, bias: nil, inputSize: k, outputSize: n) }
        var y = [Float](repeating: 0, count: m * n)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { layer.run(rows: m, input: xp.baseAddress!, output: $0.baseAddress!) } }
        for r in 0..<m {
            var dot = 0.0, na = 0.0, nb = 0.0
            for j in 0..<n {
                var exact = 0.0
                for i in 0..<k { exact += Double(x[r * k + i]) * Double(w[j * k + i]) }
                dot += exact * Double(y[r * n + j]); na += exact * exact; nb += Double(y[r * n + j] * y[r * n + j])
            }
            #expect(dot / (na * nb).squareRoot() > 0.999, "row \(r)")
        }
    }
}
