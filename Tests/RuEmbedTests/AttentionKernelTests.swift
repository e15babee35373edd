import Testing
#if canImport(Glibc)
import Glibc
#endif
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

/// The C attention kernel of short texts (four queries at a time, keys transposed, relative
/// terms) against softmax(q·kᵀ + c2p + p2c)·v computed in Double.
@Suite struct AttentionKernelTests {
    typealias T = TestSupport

    @Test(arguments: [(1, 64), (3, 64), (4, 64), (14, 64), (23, 64), (40, 16), (9, 24), (17, 40)])
    func matchesDoubleReference(n: Int, headDim: Int) {
        for relative in [false, true] {
            var random = T.Random(seed: UInt64(n * 1000 + headDim + (relative ? 7 : 0)))
            let heads = 2, hidden = heads * headDim, stride = 3 * hidden, span = 8
            let qkv = random.vectors(n, stride).map { $0 * 1.5 }
            let keys = random.vectors(2 * span, hidden), queries = random.vectors(2 * span, hidden)
            var out = [Float](repeating: .nan, count: n * hidden)
            var scratch = [Float](repeating: .nan, count: ck_attend_scratch(n, headDim))
            for h in 0..<heads {
                qkv.withUnsafeBufferPointer { x in
                    keys.withUnsafeBufferPointer { pk in
                        queries.withUnsafeBufferPointer { pq in
                            out.withUnsafeMutableBufferPointer { o in
                                let q = x.baseAddress! + h * headDim
                                ck_attend_one(q, q + hidden, q + 2 * hidden, stride, n, headDim,
                                              relative ? pk.baseAddress! + h * headDim : nil,
                                              relative ? pq.baseAddress! + h * headDim : nil,
                                              hidden, span, o.baseAddress! + h * headDim, hidden, &scratch)
                            }
                        }
                    }
                }
            }
            var worst = 0.0
            for h in 0..<heads {
                let base = h * headDim
                for i in 0..<n {
                    var scores = (0..<n).map { j -> Double in
                        var s = 0.0
                        for d in 0..<headDim { s += Double(qkv[i * stride + base + d]) * Double(qkv[j * stride + hidden + base + d]) }
                        if relative {
                            let r = min(max(i - j + span, 0), 2 * span - 1)
                            for d in 0..<headDim {
                                s += Double(qkv[i * stride + base + d]) * Double(keys[r * hidden + base + d])
                                s += Double(qkv[j * stride + hidden + base + d]) * Double(queries[r * hidden + base + d])
                            }
                        }
                        return s
                    }
                    let top = scores.max()!
                    scores = scores.map { exp($0 - top) }
                    let total = scores.reduce(0, +)
                    for d in 0..<headDim {
                        var expected = 0.0
                        for j in 0..<n { expected += scores[j] / total * Double(qkv[j * stride + 2 * hidden + base + d]) }
                        worst = max(worst, abs(Double(out[i * hidden + base + d]) - expected))
                    }
                }
            }
            #expect(worst < 2e-5, "n \(n), head_dim \(headDim), relative \(relative): max error \(worst)")
        }
    }

    /// The oneDNN path of long texts takes query rows in blocks when all heads' scores would
    /// exceed the budget (memory linear in the text): blocks of any size, a short last block
    /// included, give the one-block result, with and without relative terms, for a text that
    /// starts inside the packed batch.
    @Test func blockedLongAttentionEqualsOneBlock() {
        let heads = 3, headDim = 16, hidden = heads * headDim, stride = 3 * hidden, span = 8
        let offset = 5, n = 150, tokens = offset + n
        var random = T.Random(seed: 150)
        let qkv = random.vectors(tokens, stride).map { $0 * 1.5 }
        let keys = random.vectors(2 * span, hidden), queries = random.vectors(2 * span, hidden)
        for relative in [false, true] {
            func attend(budget: Int) -> [Float] {
                var out = [Float](repeating: .nan, count: tokens * hidden)
                qkv.withUnsafeBufferPointer { x in
                    keys.withUnsafeBufferPointer { pk in
                        queries.withUnsafeBufferPointer { pq in
                            out.withUnsafeMutableBufferPointer { o in
                                let terms = relative ? EncoderKernels.RelativeTerms(positionKeys: pk.baseAddress!, positionQueries: pq.baseAddress!, span: span) : nil
                                EncoderKernels.attendWithMatmul(text: (offset, n), hidden: hidden, heads: heads, qkv: x.baseAddress!,
                                                                context: o.baseAddress!, relative: terms, scoreBudget: budget)
                            }
                        }
                    }
                }
                return Array(out[(offset * hidden)...])
            }
            let whole = attend(budget: heads * n * n)
            #expect(whole.allSatisfy { $0.isFinite })
            for rowsPerBlock in [3, 64, n - 1] {
                let blocked = attend(budget: heads * n * rowsPerBlock)
                let worst = zip(whole, blocked).map { abs($0 - $1) }.max()!
                #expect(worst < 1e-5, "relative \(relative), \(rowsPerBlock) rows a block: max difference \(worst)")
            }
        }
    }
}
