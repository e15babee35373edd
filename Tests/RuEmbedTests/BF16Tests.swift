import Foundation
import Testing
import CKernels
@testable import RuCore
@testable import RuTokenizer
@testable import RuVectors
@testable import RuCompute
@testable import RuSearch
@testable import RuHub
@testable import RuEncoder
@testable import RuEmbed
@testable import RuCLI

/// `--precision bf16`: the layer against bf16 arithmetic done in Double, the encoder against
/// sentence-transformers' f32 vectors (the quality targets of docs/EMBED.md), and the fallback
/// to f32 with a warning where the CPU has no AVX512_BF16 (RU_EMBED_BF16=off stands in for
/// such a CPU, so the fallback is tested on every machine).
@Suite(.serialized) struct BF16Tests {
    typealias T = TestSupport

    /// A float rounded to bf16 as the kernel rounds (nearest, ties to even), back as Double.
    func bf16(_ x: Float) -> Double {
        var bits = x.bitPattern
        bits &+= 0x7fff &+ ((bits >> 16) & 1)
        return Double(Float(bitPattern: bits & 0xffff_0000))
    }

    func gelu(_ x: Double) -> Double { 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }

    /// 37 rows: the threads split the panels; 150 rows: the threads split the rows, 32-row
    /// chunks, the last one short (and a 4-row last tile). 96 × 80 leaves a 32-column last
    /// panel; 37 × 37 has an odd input count and a last panel of 5 real columns.
    @Test(.enabled(if: BF16LinearLayer.available),
          arguments: [LinearEpilogue.none, .geluErf, .geluTanh, .accumulate], [(37, 96, 80), (150, 96, 80), (5, 37, 37), (150, 37, 37)])
    func layerIsBF16ArithmeticWithF32Accumulation(epilogue: LinearEpilogue, shape: (rows: Int, inputs: Int, outputs: Int)) {
        for kernel in BF16LinearLayer.Kernel.allCases { checkLayer(kernel, epilogue, shape) }
    }

    func checkLayer(_ kernel: BF16LinearLayer.Kernel, _ epilogue: LinearEpilogue, _ shape: (rows: Int, inputs: Int, outputs: Int)) {
        var random = T.Random(seed: 43)
        let (m, k, n) = shape
        var x = random.vectors(m, k).map { $0 * 2 + 0.3 }
        for r in 0..<m { x[r * k + 5] *= 6 }
        let w = random.vectors(n, k).map { $0 * 0.2 }
        let b = random.vectors(1, n)
        let initial = random.vectors(m, n)
        let layer = w.withUnsafeBufferPointer { wp in
            b.withUnsafeBufferPointer { bp in
                BF16LinearLayer(weights: wp.baseAddress!, bias: bp.baseAddress!, inputSize: k, outputSize: n, epilogue: epilogue,
                                kernel: kernel)
            }
        }
        var y = epilogue == .accumulate ? initial : [Float](repeating: .nan, count: m * n)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { layer.run(rows: m, input: xp.baseAddress!, output: $0.baseAddress!) }
        }
        var largestRoundingEffect = 0.0
        for r in 0..<m {
            for j in 0..<n {
                // The products of the rounded operands, summed in Double: what the kernel
                // computes but for its f32 accumulation (k·2⁻²⁴ of Σ|products| at most).
                var rounded = Double(b[j]), exact = Double(b[j]), magnitude = abs(Double(b[j]))
                for i in 0..<k {
                    let p = bf16(x[r * k + i]) * bf16(w[j * k + i])
                    rounded += p
                    magnitude += abs(p)
                    exact += Double(x[r * k + i]) * Double(w[j * k + i])
                }
                largestRoundingEffect = max(largestRoundingEffect, abs(rounded - exact) / magnitude)
                let allowed = (Double(k) + 4) * 0x1p-24 * magnitude + 1e-6
                var expected = rounded, got = Double(y[r * n + j])
                switch epilogue {
                case .none: break
                case .geluErf: expected = gelu(rounded)
                case .geluTanh: expected = 0.5 * rounded * (1 + tanh(0.7978845608028654 * (rounded + 0.044715 * rounded * rounded * rounded)))
                case .accumulate: got -= Double(initial[r * n + j])
                }
                #expect(abs(got - expected) <= allowed, "\(kernel): row \(r), output \(j): \(got) vs \(expected)")
                // Rounding both operands to 8 significant bits moves a product by 2⁻⁸ of it at most.
                #expect(abs(rounded - exact) <= 0x1p-8 * magnitude)
            }
        }
        // The operands really were rounded: an f32 kernel would match `exact` to ~1e-7.
        #expect(largestRoundingEffect > 1e-4, "largest effect of bf16 rounding \(largestRoundingEffect)")
    }

    /// The packed weights are the same bits from the AVX-512 packing as from the portable loop:
    /// ties, NaNs, infinities, denormals and random bit patterns among ordinary weights, on
    /// shapes with partial 16-column groups, odd input counts and inputs past a 32-wide block.
    @Test func vectorPackingMatchesThePortableLoop() {
        var random = T.Random(seed: 53)
        for (n, k) in [(37, 37), (80, 96), (5, 1), (48, 33), (17, 64), (100, 31), (64, 63), (200, 770)] {
            let w: [Float] = random.vectors(n, k).enumerated().map { i, x in
                switch i % 11 {
                case 0: .nan
                case 1: -.infinity
                case 2: Float(bitPattern: UInt32(truncatingIfNeeded: i &* 2_654_435_761))
                case 3: 1e-40 * Float(i % 97)
                case 4: 1 + Float(i % 256) / 256 + 1 / 512 // a tie: rounds to even
                default: x
                }
            }
            let count = ck_bf16_packed_elements(n, k)
            var fast = [UInt16](repeating: 0x5555, count: count), portable = [UInt16](repeating: 0xaaaa, count: count)
            ck_bf16_pack(w, n, k, &fast)
            ck_bf16_pack_portable(w, n, k, &portable)
            #expect(fast == portable, "\(n) × \(k): \(zip(fast, portable).filter { $0 != $1 }.count) elements differ")
        }
    }

    /// The FMA kernel gives vdpbf16ps's bits where vdpbf16ps adds each lane's odd product, then
    /// its even one, each rounded once (Intel's SDM; the CPUs that prefer the FMA kernel), on
    /// every tile shape and epilogue: rows split or columns split, 8- and 4-row tiles, 1-3
    /// vectors wide, an odd input count.
    @Test(.enabled(if: BF16LinearLayer.available && ck_bf16_fma_preferred() != 0),
          arguments: [LinearEpilogue.none, .geluErf, .geluTanh, .accumulate])
    func fmaKernelGivesTheBitsOfVdpbf16ps(epilogue: LinearEpilogue) {
        var random = T.Random(seed: 47)
        for (m, k, n) in [(37, 96, 80), (150, 96, 80), (5, 37, 37), (150, 37, 37), (70, 771, 200), (3, 770, 48)] {
            let x = random.vectors(m, k).map { $0 * 2 + 0.3 }
            let w = random.vectors(n, k).map { $0 * 0.2 }
            let b = random.vectors(1, n)
            let initial = random.vectors(m, n)
            var outputs: [[Float]] = []
            for kernel in BF16LinearLayer.Kernel.allCases {
                let layer = w.withUnsafeBufferPointer { wp in
                    b.withUnsafeBufferPointer { bp in
                        BF16LinearLayer(weights: wp.baseAddress!, bias: bp.baseAddress!, inputSize: k, outputSize: n,
                                        epilogue: epilogue, kernel: kernel)
                    }
                }
                var y = initial
                x.withUnsafeBufferPointer { xp in
                    y.withUnsafeMutableBufferPointer { layer.run(rows: m, input: xp.baseAddress!, output: $0.baseAddress!) }
                }
                outputs.append(y)
            }
            let differing = zip(outputs[0], outputs[1]).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differing == 0, "\(m) × \(k) → \(n), \(epilogue): \(differing) outputs differ")
        }
    }

    @Test(.enabled(if: BF16LinearLayer.available), arguments: ModelFixtures.names)
    func bf16VectorsStayCloseToF32(_ name: String) throws {
        PrecisionChecks.expectClose(try PrecisionChecks.modelFixtureCosines(name, .bf16), "\(name) bf16",
                                    mean: 0.9999, min: 0.9995, below: 0.9999999)
    }

    /// Every output is one f32 sum over its inputs in order, whatever the split: vectors are the
    /// same bits alone, in a batch (rows split, 32-row chunks, the fused feed-forward pair) and
    /// on one thread.
    @Test(.enabled(if: BF16LinearLayer.available), arguments: ModelFixtures.names)
    func bf16VectorsDoNotDependOnBatchingOrThreads(_ name: String) throws {
        let d = try PrecisionChecks.batchingDifferences(name, .bf16, rowsToSplit: BF16LinearLayer.perThreadRows)
        #expect(d.alone == 0, "\(d.alone) of \(d.texts) vectors differ alone")
        #expect(d.serial == 0, "\(d.serial) of \(d.texts) vectors differ on one thread")
    }

    /// From the command line: the stream records bf16 and -v names the kernel where the CPU has
    /// AVX512_BF16; elsewhere (or with RU_EMBED_BF16=off) one warning, f32 vectors, and the
    /// stream records f32, the precision that ran.
    @Test func bf16PrecisionIsRecordedOrFallsBackToF32() throws {
        let name = "deberta-abs"
        let expected = try ModelFixtures.expected(name)
        let input = EmbedCLITests.lines(expected.texts)
        let f32 = try EmbedCLITests.vectors(EmbedCLITests.embed(["--model", ModelFixtures.folder(name)], stdin: input).stdout)
        for off in [false, true] {
            let r = try EmbedCLITests.embed(["--model", ModelFixtures.folder(name), "--precision", "bf16", "-v"], stdin: input,
                                            environment: off ? ["RU_EMBED_BF16": "off"] : [:])
            #expect(r.status == 0, "\(r.stderr)")
            let (_, rows, chunks) = try EmbedCLITests.vectors(r.stdout)
            #expect(rows.count == expected.texts.count)
            let runsBF16 = BF16LinearLayer.available && !off
            #expect(chunks[0].metadata["precision"]?.stringValue == (runsBF16 ? "bf16" : "f32"))
            #expect(r.stderr.contains("needs a CPU with AVX512_BF16") == !runsBF16, "\(r.stderr)")
            #expect(r.stderr.contains("(bf16: AVX512_BF16 ") == runsBF16, "\(r.stderr)")
            for (k, (g, w)) in zip(rows, expected.vectors["query"]!).enumerated() {
                #expect(cosine(g, w) >= 0.9995, "line \(k + 1)")
            }
            if !runsBF16 { #expect(rows == f32.rows, "the fallback is f32, bit for bit") }
        }
    }
}
