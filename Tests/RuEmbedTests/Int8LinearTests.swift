import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import RuCore
@testable import RuTokenizer
@testable import RuVectors
@testable import RuCompute
@testable import RuSearch
@testable import RuHub
@testable import RuEncoder
@testable import RuEmbed
@testable import RuCLI

/// The int8 linear layer of `--precision int8` against an f32 reference computed in Double.
@Suite struct Int8LinearTests {
    typealias T = TestSupport

    func gelu(_ x: Double) -> Double { 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }

    /// 37 rows: the threads split the columns; 150 rows: the threads split the rows and run
    /// them in 32-row chunks, the last one short. 96 × 80 leaves a 32-column last panel;
    /// 37 × 37 has inputs that are not a multiple of 4 and a last panel of 5 real columns.
    @Test(arguments: [LinearEpilogue.none, .geluErf, .accumulate], [(37, 96, 80), (150, 96, 80), (5, 37, 37), (150, 37, 37)])
    func matchesF32WithinTheQuantisationBound(epilogue: LinearEpilogue, shape: (rows: Int, inputs: Int, outputs: Int)) {
        var random = T.Random(seed: 41)
        let (m, k, n) = shape
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
            let largest = x.withUnsafeBufferPointer { layer.maxErrorBound(input: $0.baseAddress! + r * k) }
            var largestSeen: Float = 0
            for j in 0..<n {
                largestSeen = max(largestSeen, x.withUnsafeBufferPointer { layer.errorBound(input: $0.baseAddress! + r * k, output: j) })
            }
            // maxErrorBound covers every output's bound (the near-duplicate screen relies on it),
            // without being far above the largest.
            #expect(largest >= largestSeen * (1 - 1e-6) && largest <= 2 * largestSeen, "row \(r): \(largest) vs \(largestSeen)")
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

    /// The fused feed-forward pair (GELU output quantised in the workspace) gives exactly what
    /// the two layers give run one after the other through memory.
    @Test(arguments: [37, 150, 301])
    func fusedFeedForwardEqualsTheTwoLayers(rows m: Int) {
        var random = T.Random(seed: 43)
        let k = 96, inner = 160, n = 80
        let x = random.vectors(m, k).map { $0 * 2 + 0.3 }
        let w1 = random.vectors(inner, k).map { $0 * 0.2 }, b1 = random.vectors(1, inner)
        let w2 = random.vectors(n, inner).map { $0 * 0.2 }, b2 = random.vectors(1, n)
        func layer(_ w: [Float], _ b: [Float], _ inSize: Int, _ outSize: Int, _ epilogue: LinearEpilogue) -> Int8LinearLayer {
            w.withUnsafeBufferPointer { wp in
                b.withUnsafeBufferPointer { bp in
                    Int8LinearLayer(weights: wp.baseAddress!, bias: bp.baseAddress!, inputSize: inSize, outputSize: outSize, epilogue: epilogue)
                }
            }
        }
        let first = layer(w1, b1, k, inner, .geluErf), second = layer(w2, b2, inner, n, .accumulate)
        let residual = random.vectors(m, n)
        var separate = residual, fused = residual
        var between = [Float](repeating: 0, count: m * inner)
        x.withUnsafeBufferPointer { xp in
            between.withUnsafeMutableBufferPointer { bp in
                first.run(rows: m, input: xp.baseAddress!, output: bp.baseAddress!)
                separate.withUnsafeMutableBufferPointer { second.run(rows: m, input: UnsafePointer(bp.baseAddress!), output: $0.baseAddress!) }
                fused.withUnsafeMutableBufferPointer {
                    runFeedForward(first, second, rows: m, input: xp.baseAddress!, between: bp.baseAddress!, output: $0.baseAddress!)
                }
            }
        }
        let differing = zip(fused, separate).filter { $0 != $1 }.count
        #expect(differing == 0, "\(differing) of \(fused.count) outputs differ")
        #expect(fused != residual)
    }

    /// Without AVX-512 VNNI the products come from oneDNN's int8 matmul and one sweep
    /// dequantises them: on the same codes (7-bit activations, what the oneDNN path uses) the
    /// same outputs as the kernel, bit for bit (int32 products are exact and the dequantisation
    /// is the same code). On a CPU without VNNI both layers use oneDNN and this only checks
    /// that the two runs agree; `matchesF32WithinTheQuantisationBound` checks the products.
    /// 3, 12 and 68 rows (the last of 32-row chunks: 4) end on the kernel's four-row tile.
    @Test(arguments: [(5, 96, 80), (37, 96, 80), (5, 37, 37), (150, 37, 37), (150, 37, 80), (150, 96, 37), (70, 256, 128),
                      (3, 96, 80), (12, 37, 80), (68, 256, 128)])
    func oneDNNFallbackGivesTheKernelsOutputs(shape: (rows: Int, inputs: Int, outputs: Int)) {
        var random = T.Random(seed: 44)
        let (m, k, n) = shape
        let x = random.vectors(m, k).map { $0 * 2 + 0.3 }
        let w = random.vectors(n, k).map { $0 * 0.2 }, b = random.vectors(1, n)
        let residual = random.vectors(m, n)
        for epilogue in [LinearEpilogue.none, .geluErf, .geluTanh, .accumulate] {
            func run(oneDNN: Bool) -> (usesKernel: Bool, y: [Float]) {
                Int8LinearTests.backendLock.lock()
                Int8LinearLayer.forceOneDNN = oneDNN
                let layer = w.withUnsafeBufferPointer { wp in
                    b.withUnsafeBufferPointer { bp in
                        Int8LinearLayer(weights: wp.baseAddress!, bias: bp.baseAddress!, inputSize: k, outputSize: n,
                                        epilogue: epilogue, activationCodeMax: 127)
                    }
                }
                Int8LinearLayer.forceOneDNN = false
                Int8LinearTests.backendLock.unlock()
                var y = epilogue == .accumulate ? residual : [Float](repeating: .nan, count: m * n)
                x.withUnsafeBufferPointer { xp in
                    y.withUnsafeMutableBufferPointer { layer.run(rows: m, input: xp.baseAddress!, output: $0.baseAddress!) }
                }
                return (layer.usesKernel, y)
            }
            let kernel = run(oneDNN: false), oneDNN = run(oneDNN: true)
            #expect(kernel.usesKernel == Int8LinearLayer.kernelAvailable)
            #expect(!oneDNN.usesKernel)
            #expect(!kernel.y.contains { $0.isNaN }, "every output written")
            let differing = zip(kernel.y, oneDNN.y).filter { $0 != $1 }.count
            #expect(differing == 0, "\(epilogue): \(differing) of \(kernel.y.count) outputs differ")
        }
    }

    /// `forceOneDNN` is read when a layer is made: tests that set it take turns.
    static let backendLock = NSLock()

    @Test func seriallyRunsOnOneThreadAndRestoresTheCount() {
        let configured = Parallel.configuredThreads
        let inside = Parallel.serially { (Parallel.threads, Parallel.configuredThreads) }
        #expect(inside.0 == 1)
        #expect(inside.1 == configured)
        // (Parallel.threads afterwards is not checked: tests loading models in parallel are
        // inside `serially` themselves at times.)
        #expect(Parallel.configuredThreads == configured)
    }
}
