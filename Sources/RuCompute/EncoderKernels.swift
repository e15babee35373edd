import RuCore
#if canImport(Glibc)
import Glibc
#endif
import CKernels

/// The hot loops (LayerNorm, attention, dot products) are C in CKernels, built for AVX-512,
/// AVX2 and baseline CPUs: Swift compiles its own loops for baseline x86-64 (SSE) only, and
/// the tests run the very code the release build runs.
///
/// The non-GEMM work of a transformer encoder over packed tokens (all texts of a batch one
/// after another, no padding), run on the OpenMP threads through `Parallel.forPieces`.
package enum EncoderKernels {
    /// In place: each row x ← (x − mean) / sqrt(var + eps) · weight + bias, as DebertaLayerNorm
    /// (biased variance, eps inside the square root).
    @_optimize(speed)
    package static func layerNorm(rows: Int, dim: Int, _ x: UnsafeMutablePointer<Float>,
                                 weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, eps: Float) {
        // A parallel region costs a barrier, and a barrier on a busy machine can cost a time
        // slice: small work (one short text) stays on the calling thread.
        guard rows * dim >= 1 << 16 else { return layerNormRows(0, rows, dim, x, weight, bias, eps) }
        Parallel.forPieces(rows, piece: 32) { _, lo, hi in layerNormRows(lo, hi, dim, x, weight, bias, eps) }
    }

    static func layerNormRows(_ lo: Int, _ hi: Int, _ dim: Int, _ x: UnsafeMutablePointer<Float>,
                              _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, _ eps: Float) {
        // In C (CKernels), built for AVX-512/AVX2: Swift's own loops compile to SSE here.
        ck_layer_norm(x + lo * dim, hi - lo, dim, weight, bias, eps)
    }

    /// DeBERTa's disentangled relative terms for one layer: position keys and queries for
    /// every row of the relative-embedding table (precomputed at load; they do not depend on
    /// the text), indexed by clamp(i − j + span, 0, 2·span − 1).
    package struct RelativeTerms {
        /// pos_proj(rel_embeddings): [2·span × hidden], or nil without c2p.
        package var positionKeys: UnsafePointer<Float>?
        /// pos_q_proj(rel_embeddings) / scale: [2·span × hidden], or nil without p2c.
        package var positionQueries: UnsafePointer<Float>?
        package var span: Int
        package init(positionKeys: UnsafePointer<Float>?, positionQueries: UnsafePointer<Float>?, span: Int) {
            self.positionKeys = positionKeys
            self.positionQueries = positionQueries
            self.span = span
        }
    }

    /// Self-attention of every (text, head) over the text's exact length.
    ///
    /// `qkv` is [tokens × 3·hidden]: Q (already scaled) in columns 0..<hidden, K next, V last,
    /// head h at columns h·headDim. Writes `context` [tokens × hidden].
    @_optimize(speed)
    package static func attention(tokens: Int, hidden: Int, heads: Int, texts: [(start: Int, count: Int)],
                                 qkv: UnsafePointer<Float>, context: UnsafeMutablePointer<Float>,
                                 relative: RelativeTerms?) {
        let headDim = hidden / heads
        // Long texts: the two products through oneDNN (full vector width), all heads at once.
        for text in texts where text.count >= matmulAttentionLength {
            attendWithMatmul(text: text, hidden: hidden, heads: heads, qkv: qkv, context: context, relative: relative)
        }
        let short = texts.filter { $0.count < matmulAttentionLength }
        let longest = short.map(\.count).max() ?? 0
        let jobs = short.count * heads
        let work = short.reduce(0) { $0 + $1.count * $1.count } * hidden
        // A text's heads at a time, handed to whichever thread is free (`forPieces`): the
        // texts' lengths differ, so fixed halves of the jobs would not cost the same. Fewer
        // texts than four a thread (one text at a time): a few heads a piece, so the other
        // thread is not left spinning through the attention (a 27-token text's is ~40 µs a
        // layer; 13 % of the one-at-a-time int8 run's samples were that thread waiting, Zen 5).
        // Tiny work stays on the calling thread: a region's fork and join cost more.
        let threads = Parallel.threads
        let piece = work < 1 << 16 ? max(jobs, 1)
            : short.count >= 4 * threads ? heads : max(1, jobs / (4 * threads))
        let scratchSize = max(ck_attend_scratch(longest, headDim), 1)
        let pieceThreads = Parallel.pieceThreads(jobs, piece: piece)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: pieceThreads * scratchSize)
        defer { scratch.deallocate() }
        Parallel.forPieces(jobs, piece: piece, threads: pieceThreads) { t, lo, hi in
            for job in lo..<hi {
                attendOne(text: short[job / heads], head: job % heads, hidden: hidden, headDim: headDim,
                          qkv: qkv, context: context, relative: relative, scratch: scratch + t * scratchSize)
            }
        }
    }

    /// From this many tokens on, a text's attention goes through oneDNN: below it, creating
    /// the two primitives of a new length costs more than the products.
    package static let matmulAttentionLength = 64

    /// The most attention scores held at once (floats) on the oneDNN path: a long text's query
    /// rows go through in blocks of this many scores over all heads. Holding every head's n × n
    /// scores took 4 GiB for an 8,192-token text through a bge-m3 shape (16 heads; 5.8 GiB peak
    /// against PyTorch's 2.2 GiB, bench/families, 2026-12-02); a block keeps the scores at 64 MiB
    /// whatever the length, so memory grows linearly with the text. Texts up to 1,182 tokens
    /// (12 heads) still take one block, as before.
    package static let attentionScoreBudget = 16 << 20

    static func attendWithMatmul(text: (start: Int, count: Int), hidden: Int, heads: Int,
                                 qkv: UnsafePointer<Float>, context: UnsafeMutablePointer<Float>,
                                 relative: RelativeTerms?, scoreBudget: Int = attentionScoreBudget) {
        let n = text.count, d = hidden / heads, stride = 3 * hidden
        let base = qkv + text.start * stride
        let blockRows = Swift.min(n, Swift.max(1, scoreBudget / (heads * n)))
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: heads * blockRows * n)
        defer { scores.deallocate() }
        var first = 0
        while first < n {
            let rows = Swift.min(blockRows, n - first)
            // scores[h][i][j] = Q[first + i, h] · K[j, h]  (Q already scaled)
            StridedBatchMatmul.shared(.init(batch: heads, m: rows, k: d, n: n,
                                            a: [d, stride, 1], b: [d, 1, stride], c: [rows * n, n, 1]))
                .run(a: base + first * stride, b: base + hidden, c: scores)
            Parallel.forRanges(heads * rows) { lo, hi in
                for row in lo..<hi {
                    scoreRow(scores + row * n, head: row / rows, i: first + row % rows, n: n, hidden: hidden, headDim: d,
                             base: base, relative: relative)
                }
            }
            // context[first + i, h] = Σ_j P[h][i][j] · V[j, h]
            StridedBatchMatmul.shared(.init(batch: heads, m: rows, k: n, n: d,
                                            a: [rows * n, n, 1], b: [d, stride, 1], c: [d, hidden, 1]))
                .run(a: scores, b: base + 2 * hidden, c: context + (text.start + first) * hidden)
            first += rows
        }
    }

    /// One row of attention scores: the relative terms added, then softmax, in place.
    @_optimize(speed)
    static func scoreRow(_ s: UnsafeMutablePointer<Float>, head h: Int, i: Int, n: Int, hidden: Int, headDim: Int,
                         base: UnsafePointer<Float>, relative: RelativeTerms?) {
        let stride = 3 * hidden
        if let relative {
            let q = base + i * stride + h * headDim
            for j in 0..<n {
                let r = Swift.min(Swift.max(i - j + relative.span, 0), 2 * relative.span - 1)
                if let pk = relative.positionKeys { s[j] += ck_dot(q, pk + r * hidden + h * headDim, headDim) }
                if let pq = relative.positionQueries { s[j] += ck_dot(base + hidden + j * stride + h * headDim, pq + r * hidden + h * headDim, headDim) }
            }
        }
        // In C: Swift's loop called libm's expf per score and compiled to SSE, and took most of
        // an 8,192-token text's attention time beside PyTorch's (bench/families).
        ck_softmax_row(s, n)
    }

    /// Attention of one head over one text.
    @_optimize(speed)
    static func attendOne(text: (start: Int, count: Int), head h: Int, hidden: Int, headDim: Int,
                          qkv: UnsafePointer<Float>, context: UnsafeMutablePointer<Float>,
                          relative: RelativeTerms?, scratch: UnsafeMutablePointer<Float>) {
        // In C (CKernels), built for AVX-512/AVX2: Swift's own loops compile to SSE here.
        let stride = 3 * hidden
        let q0 = qkv + text.start * stride + h * headDim
        let offset = h * headDim
        ck_attend_one(q0, q0 + hidden, q0 + 2 * hidden, stride, text.count, headDim,
                      relative?.positionKeys.map { $0 + offset }, relative?.positionQueries.map { $0 + offset },
                      hidden, relative.map { $0.span } ?? 0,
                      context + text.start * hidden + offset, hidden, scratch)
    }

    /// One vector per text from its token states (`states` [tokens × dim], texts packed):
    /// the pooling modes concatenated, skipping the first `skip` tokens of each text (the
    /// prompt, when the Pooling module excludes it) as sentence-transformers does.
    ///
    /// A text with no token left to pool (empty, or all prompt) has no vector: it gets zeros
    /// in every mode rather than a read outside its span. Callers refuse such records first
    /// (`SentenceTransformerModel.problem(with:skip:)`), so the zeros never reach a stream.
    @_optimize(speed)
    package static func pool(states: UnsafePointer<Float>, dim: Int, texts: [(start: Int, count: Int)],
                            modes: [PoolingMode], skip: Int, into out: UnsafeMutablePointer<Float>) {
        let width = dim * modes.count
        for (t, text) in texts.enumerated() {
            let first = text.start + Swift.min(skip, text.count)
            let end = text.start + text.count
            for (m, mode) in modes.enumerated() {
                let o = out + t * width + m * dim
                o.initialize(repeating: 0, count: dim)
                guard end > first else { continue }
                switch mode {
                case .cls:
                    // The first token after the prompt; the very first when the prompt fills the text.
                    let row = skip > 0 && text.count > skip ? text.start + skip : text.start
                    o.update(from: states + row * dim, count: dim)
                case .lastToken:
                    o.update(from: states + (end - 1) * dim, count: dim)
                case .max:
                    o.initialize(repeating: -Float.infinity, count: dim)
                    for r in first..<end { for j in 0..<dim { o[j] = Swift.max(o[j], states[r * dim + j]) } }
                case .mean, .meanSqrtLen:
                    for r in first..<end { for j in 0..<dim { o[j] += states[r * dim + j] } }
                    let n = Float(end - first)
                    let divisor = mode == .mean ? n : n.squareRoot()
                    for j in 0..<dim { o[j] /= divisor }
                case .weightedMean:
                    // Token i of the text weighs i + 1, counted from the text's first token
                    // even when the prompt is skipped (sentence-transformers keeps the positions).
                    var total: Float = 0
                    for r in first..<end {
                        let w = Float(r - text.start + 1)
                        total += w
                        for j in 0..<dim { o[j] += w * states[r * dim + j] }
                    }
                    for j in 0..<dim { o[j] /= total }
                }
            }
        }
    }
}

/// How token states become one vector (sentence-transformers' Pooling module).
package enum PoolingMode: String, Sendable, CaseIterable {
    case cls, max, mean, meanSqrtLen = "mean_sqrt_len_tokens", weightedMean = "weightedmean", lastToken = "lasttoken"
}
