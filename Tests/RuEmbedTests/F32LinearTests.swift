import Foundation
import Testing
@testable import RuCore
@testable import RuCompute

/// The f32 linear layer (ru-embed's kernel on x86 CPUs with AVX2 or AVX-512, oneDNN elsewhere)
/// against the same product computed in Double, and the kernel against oneDNN.
@Suite struct F32LinearTests {
    typealias T = TestSupport

    func gelu(_ x: Double) -> Double { 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }
    func geluTanh(_ x: Double) -> Double { 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) }

    /// Shapes that reach every edge of both kernels' blocking. AVX2: rows not a multiple of the
    /// 6-row tile, more rows than one 144-row block (150, 301), inputs across several 256-input
    /// blocks and not a multiple of them (300, 600), outputs not a multiple of the 16-column
    /// panel (37, 312: a narrower last panel), fewer outputs than one panel (5). AVX-512: rows
    /// past one 128-row block (133, 150, 301), last tiles of 5–7 rows (the 8-row tile: 5, 13,
    /// 150, 301, 133) and of 1–4 (the 4-row tile: 1, 3, 20), inputs past one 768-input block
    /// (1000), panels not a multiple of the three a tile takes (37: 3 panels, the last of 5
    /// columns; 80: 5; 100: 7, the last of 4), panel ranges split between threads.
    static let shapes: [(rows: Int, inputs: Int, outputs: Int)] = [
        (1, 7, 5), (5, 37, 37), (13, 300, 312), (150, 96, 80), (301, 600, 48), (20, 256, 2304 / 8),
        (3, 100, 96), (133, 1000, 100),
    ]

    func layer(_ w: [Float], _ b: [Float], k: Int, n: Int, epilogue: LinearEpilogue, oneDNN: Bool) -> LinearLayer {
        F32LinearTests.backendLock.lock()
        defer { F32LinearTests.backendLock.unlock() }
        LinearLayer.forceOneDNN = oneDNN
        defer { LinearLayer.forceOneDNN = false }
        return w.withUnsafeBufferPointer { wp in
            b.withUnsafeBufferPointer { bp in
                LinearLayer(weights: wp.baseAddress!, bias: bp.baseAddress!, inputSize: k, outputSize: n, epilogue: epilogue)
            }
        }
    }

    func run(_ layer: LinearLayer, _ x: [Float], rows m: Int, initial: [Float]) -> [Float] {
        var y = layer.epilogue == .accumulate ? initial : [Float](repeating: .nan, count: m * layer.outputSize)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { layer.run(rows: m, input: xp.baseAddress!, output: $0.baseAddress!) }
        }
        return y
    }

    @Test(arguments: [LinearEpilogue.none, .geluErf, .geluTanh, .accumulate])
    func matchesTheProductInDouble(epilogue: LinearEpilogue) {
        var random = T.Random(seed: 52)
        for (m, k, n) in F32LinearTests.shapes {
            let x = random.vectors(m, k).map { $0 * 2 + 0.3 }
            let w = random.vectors(n, k).map { $0 * 0.2 }, b = random.vectors(1, n)
            let initial = random.vectors(m, n)
            for oneDNN in [false, true] {
                let y = run(layer(w, b, k: k, n: n, epilogue: epilogue, oneDNN: oneDNN), x, rows: m, initial: initial)
                var worst = 0.0
                for r in 0..<m {
                    for j in 0..<n {
                        var exact = Double(b[j])
                        var magnitude = abs(Double(b[j]))
                        for i in 0..<k {
                            exact += Double(x[r * k + i]) * Double(w[j * k + i])
                            magnitude += abs(Double(x[r * k + i]) * Double(w[j * k + i]))
                        }
                        switch epilogue {
                        case .none: break
                        case .geluErf: exact = gelu(exact)
                        case .geluTanh: exact = geluTanh(exact)
                        case .accumulate: exact += Double(initial[r * n + j]); magnitude += abs(Double(initial[r * n + j]))
                        }
                        // f32 summation of k products: a few ulps of the sum of magnitudes,
                        // plus the GELU approximations' 1e-6.
                        worst = max(worst, abs(Double(y[r * n + j]) - exact) / (magnitude * 1e-6 + 2e-6))
                    }
                }
                #expect(worst <= 1, "\(epilogue) \(m)×\(k)·\(k)×\(n), oneDNN \(oneDNN): error \(worst) of the allowance")
            }
        }
    }

    /// The kernel writes exactly the outputs' columns: a wider buffer's extra columns (as a
    /// caller's row stride would leave) are not touched, and every output is written.
    @Test func writesEveryOutputAndNothingElse() {
        var random = T.Random(seed: 53)
        let (m, k, n) = (17, 40, 37)
        let x = random.vectors(m, k), w = random.vectors(n, k), b = random.vectors(1, n)
        let l = layer(w, b, k: k, n: n, epilogue: .none, oneDNN: false)
        #expect(l.usesKernel == LinearLayer.kernelPreferred)
        var y = [Float](repeating: .nan, count: m * n + 64)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { l.run(rows: m, input: xp.baseAddress!, output: $0.baseAddress!) }
        }
        #expect(!y[..<(m * n)].contains { $0.isNaN })
        #expect(y[(m * n)...].allSatisfy { $0.isNaN })
    }

    /// The same outputs whatever the thread count (each thread takes whole column panels).
    @Test func sameOutputsOnOneThread() {
        var random = T.Random(seed: 54)
        let (m, k, n) = (40, 300, 200)
        let x = random.vectors(m, k), w = random.vectors(n, k), b = random.vectors(1, n)
        let l = layer(w, b, k: k, n: n, epilogue: .geluErf, oneDNN: false)
        guard l.usesKernel else { return } // oneDNN plans its split per thread count
        let all = run(l, x, rows: m, initial: [])
        let one = Parallel.serially { run(l, x, rows: m, initial: []) }
        #expect(all == one)
    }

    /// GELU of large inputs is the input (and of large negative ones, zero), never NaN: the
    /// erf approximation's sixteenth power overflowed past |x| ≈ 12.7 and an optimised build's
    /// reciprocal of infinity gave NaN, in the f32 kernel and the int8 dequantisation alike.
    @Test(arguments: [LinearEpilogue.geluErf, .geluTanh])
    func geluOfLargeInputsIsFinite(epilogue: LinearEpilogue) {
        let inputs: [Float] = [8, 12.7, 17.99, 18, 25, 50, 1000, 3e4, -8, -18, -50, -1000, -3e4, 0.5, -0.5, 0]
        let m = inputs.count
        // One input, weights 1 and 0: the pre-activation is the input itself, in every column.
        let (k, n) = (1, 20)
        let w = [Float](repeating: 1, count: n * k), b = [Float](repeating: 0, count: n)
        var outputs: [(String, [Float])] = []
        for oneDNN in [false, true] {
            outputs.append(("f32 oneDNN \(oneDNN)", run(layer(w, b, k: k, n: n, epilogue: epilogue, oneDNN: oneDNN), inputs, rows: m, initial: [])))
        }
        let int8 = w.withUnsafeBufferPointer { wp in
            b.withUnsafeBufferPointer { Int8LinearLayer(weights: wp.baseAddress!, bias: $0.baseAddress!, inputSize: k, outputSize: n, epilogue: epilogue) }
        }
        var y = [Float](repeating: .nan, count: m * n)
        inputs.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { int8.run(rows: m, input: xp.baseAddress!, output: $0.baseAddress!) } }
        outputs.append(("int8", y))
        for (name, y) in outputs {
            for (r, x) in inputs.enumerated() {
                let expected = epilogue == .geluErf ? gelu(Double(x)) : geluTanh(Double(x))
                for j in 0..<n {
                    let got = y[r * n + j]
                    // int8: the input quantised per row (one value: exact up to its scale).
                    #expect(got.isFinite && abs(Double(got) - expected) <= 1e-5 * max(1, abs(expected)) + (name == "int8" ? abs(Double(x)) / 100 : 0),
                            "\(name) \(epilogue) GELU(\(x)) = \(got), expected \(expected)")
                }
            }
        }
    }

    /// `forceOneDNN` is read when a layer is made: tests that set it take turns.
    static let backendLock = NSLock()
}
