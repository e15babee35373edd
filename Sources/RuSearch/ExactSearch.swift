import RuCompute
import RuCore
import RuVectors
import CKernels

/// One search result: the score, the corpus position (0-based) and the corpus id.
public struct Neighbor: Sendable, Equatable {
    /// The cosine of the query and the document.
    public var score: Float
    /// The document's position in the corpus, 0-based, over all blocks added.
    public var index: Int
    /// The document's id, as given to `add`.
    public var id: String
}

/// Exact top-k by cosine over a corpus that arrives in blocks.
///
/// The queries are held (normalised) in memory; each corpus block is normalised and scored
/// against all queries with one matrix product, and every query keeps a bounded heap of its k
/// best. Memory is the queries, one block, one block of scores and the heaps — never the
/// corpus. Ties are broken by corpus order: an equal score never displaces an earlier document.
///
/// `.int8Screened` (the default) is exact too, but ~4× less arithmetic: it scores the block
/// with an int8 × int8 product (VNNI), bounds each approximate score's error rigorously, and
/// computes the f32 cosine only for documents whose upper bound reaches the query's current
/// k-th best. With q = s_q·q̂ + e_q and c = s_c·ĉ + e_c (symmetric per-row int8, |e| ≤ s/2),
///     q·c − s_q·s_c·(q̂·ĉ) = s_c·(e_q·ĉ) + q·e_c,   so   |error| ≤ (s_q/2)·s_c·‖ĉ‖₁ + ‖q‖₁·(s_c/2).
/// No document that could enter the top k is skipped, so the result equals the f32 search.
public final class ExactSearch {
    /// How scores are computed; both give the same neighbours.
    public enum Method: Sendable {
        /// Every score from an f32 matrix product.
        case f32
        /// int8 screening with a rigorous error bound, f32 cosines for the candidates.
        case int8Screened
    }

    /// The width of the queries and of every corpus row.
    public let dim: Int
    /// Neighbours kept per query.
    public let k: Int
    /// The number of queries.
    public let queryCount: Int
    /// How the scores are computed.
    public let method: Method
    private let queries: [Float]
    private let queryCodes: [Int8]
    private let queryScales: [Float]
    private let queryL1: [Float]
    private var heaps: [TopKHeap]
    private var scores = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private var blockCodes: [Int8] = []
    private var blockScales: [Float] = []
    private var blockBounds: [Float] = []
    private var matmuls: [Int: MatmulNT] = [:]
    /// Corpus rows added so far.
    public private(set) var corpusCount = 0
    /// Documents scored in f32 by the int8 screen (for --verbose and the tests).
    package private(set) var exactScores = 0

    /// The screen's largest int8 code. oneDNN's s8·s8 matmul without VNNI (AVX2) shifts one
    /// side to u8 (+128) and adds pairs of products in saturating int16: with codes up to 127,
    /// 2·255·127 overflows it and the "rigorous" bound no longer held (on a Zen 3 the search
    /// missed true neighbours). With codes ≤ 63, 2·191·63 < 2^15: exact products, a bound
    /// twice as wide (more candidates rescored in f32), the results still exact.
    static let screenCodeMax: Int32 = ck_int8_has_vnni() != 0 ? 127 : 63

    /// `queries` holds `queryCount` rows of `dim` floats (not necessarily normalised).
    public init(queries: [Float], dim: Int, k: Int, method: Method = .int8Screened) {
        precondition(dim > 0 && k > 0 && queries.count % dim == 0)
        self.dim = dim
        self.k = k
        self.method = method
        let n = queries.count / dim
        queryCount = n
        var normalized = queries
        normalized.withUnsafeMutableBufferPointer {
            VectorMath.l2NormalizeRows($0.baseAddress!, count: n, dim: dim)
        }
        self.queries = normalized
        var codes = [Int8](repeating: 0, count: n * dim)
        var scales = [Float](repeating: 0, count: n)
        var l1 = [Float](repeating: 0, count: n)
        if method == .int8Screened {
            var bounds = [Float](repeating: 0, count: n)
            normalized.withUnsafeBufferPointer { q in
                ck_quantize_rows(q.baseAddress!, n, dim, &codes, &scales, &bounds, ExactSearch.screenCodeMax)
                for i in 0..<n { l1[i] = (0..<dim).reduce(0) { $0 + abs(q[i * dim + $1]) } }
            }
        }
        queryCodes = codes
        queryScales = scales
        queryL1 = l1
        heaps = (0..<n).map { _ in TopKHeap(k: k) }
    }

    deinit { scores.deallocate() }

    private func matmul(_ count: Int) -> MatmulNT {
        if let m = matmuls[count] { return m }
        let m = MatmulNT(m: queryCount, n: count, k: dim, precision: method == .f32 ? .f32 : .int8)
        matmuls[count] = m
        return m
    }

    /// Scores `count` corpus rows (row-major; normalised in place unless `normalized`)
    /// against every query.
    public func add(block: UnsafeMutablePointer<Float>, count: Int, ids: [String], normalized: Bool = false) {
        precondition(ids.count == count)
        guard count > 0 else { return }
        let base = corpusCount
        corpusCount += count
        guard queryCount > 0 else { return }
        let dim = self.dim
        if !normalized {
            Parallel.forRanges(count) { lo, hi in ck_normalize_rows(block + lo * dim, hi - lo, dim) }
        }
        if scores.count < 4 * queryCount * count {
            scores.deallocate()
            scores = .allocate(byteCount: 4 * queryCount * count, alignment: 64)
        }
        switch method {
        case .f32: addF32(block: block, count: count, ids: ids, base: base)
        case .int8Screened: addScreened(block: block, count: count, ids: ids, base: base)
        }
    }

    private func addF32(block: UnsafeMutablePointer<Float>, count: Int, ids: [String], base: Int) {
        let scorePointer = UnsafePointer(scores.baseAddress!.assumingMemoryBound(to: Float.self))
        queries.withUnsafeBufferPointer { q in
            matmul(count).run(a: q.baseAddress!, b: UnsafePointer(block), c: UnsafeMutablePointer(mutating: scorePointer))
        }
        heaps.withUnsafeMutableBufferPointer { heaps in
            let heapsPointer = heaps.baseAddress!
            Parallel.forRanges(queryCount) { lo, hi in
                for q in lo..<hi {
                    heapsPointer[q].offer(scorePointer + q * count, count: count, base: base, ids: ids)
                }
            }
        }
    }

    private func addScreened(block: UnsafeMutablePointer<Float>, count: Int, ids: [String], base: Int) {
        let dim = self.dim
        if blockCodes.count < count * dim { blockCodes = [Int8](repeating: 0, count: count * dim) }
        if blockScales.count < count {
            blockScales = [Float](repeating: 0, count: count)
            blockBounds = [Float](repeating: 0, count: count)
        }
        // Quantise the block: codes, scale s_c and the bound term s_c·‖ĉ‖₁ of every row.
        blockCodes.withUnsafeMutableBufferPointer { codes in
            blockScales.withUnsafeMutableBufferPointer { scales in
                blockBounds.withUnsafeMutableBufferPointer { bounds in
                    let (c, s, b) = (codes.baseAddress!, scales.baseAddress!, bounds.baseAddress!)
                    Parallel.forRanges(count) { lo, hi in
                        ck_quantize_rows(block + lo * dim, hi - lo, dim, c + lo * dim, s + lo, b + lo, ExactSearch.screenCodeMax)
                    }
                }
            }
        }
        let approx = UnsafePointer(scores.baseAddress!.assumingMemoryBound(to: Int32.self))
        queryCodes.withUnsafeBufferPointer { q in
            blockCodes.withUnsafeBufferPointer { c in
                matmul(count).run(a: q.baseAddress!, b: c.baseAddress!, c: UnsafeMutablePointer(mutating: approx))
            }
        }
        var exactCounts = [Int](repeating: 0, count: queryCount)
        blockScales.withUnsafeBufferPointer { scales in
            blockBounds.withUnsafeBufferPointer { bounds in
                queries.withUnsafeBufferPointer { queries in
                    queryScales.withUnsafeBufferPointer { queryScales in
                        queryL1.withUnsafeBufferPointer { queryL1 in
                            exactCounts.withUnsafeMutableBufferPointer { exactCounts in
                                heaps.withUnsafeMutableBufferPointer { heaps in
                                    let (heapsPointer, counted) = (heaps.baseAddress!, exactCounts.baseAddress!)
                                    let (sc, bc, qv, qs, ql) = (scales.baseAddress!, bounds.baseAddress!, queries.baseAddress!,
                                                                queryScales.baseAddress!, queryL1.baseAddress!)
                                    Parallel.forRanges(queryCount) { lo, hi in
                                        for q in lo..<hi {
                                            counted[q] = heapsPointer[q].offerScreened(
                                                approx: approx + q * count, count: count, base: base, ids: ids,
                                                query: qv + q * dim, queryScale: qs[q], queryL1: ql[q],
                                                docScales: sc, docBounds: bc, docs: UnsafePointer(block), dim: dim)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        exactScores += exactCounts.reduce(0, +)
    }

    /// The neighbours of every query, best first.
    public func results() -> [[Neighbor]] {
        heaps.map { $0.sorted() }
    }
}

/// A min-heap of the k best (score, index) seen so far; its root is the worst kept.
struct TopKHeap {
    let k: Int
    private(set) var items: [Neighbor] = []

    init(k: Int) {
        self.k = k
        items.reserveCapacity(min(k, 1024))
    }

    /// `a` ranks below `b`: a lower score, or the same score and a later document.
    @inline(__always) static func worse(_ a: Neighbor, _ b: Neighbor) -> Bool {
        a.score < b.score || (a.score == b.score && a.index > b.index)
    }

    mutating func offer(_ scores: UnsafePointer<Float>, count: Int, base: Int, ids: [String]) {
        var i = 0
        // Fill up to k first.
        while items.count < k && i < count {
            let s = scores[i]
            if !s.isNaN { push(Neighbor(score: s, index: base + i, id: ids[i])) }
            i += 1
        }
        guard i < count else { return }
        var threshold = items.isEmpty ? -Float.infinity : items[0].score
        while i < count {
            // Documents arrive in corpus order, so an equal score is never better.
            let s = scores[i]
            if s > threshold {
                items[0] = Neighbor(score: s, index: base + i, id: ids[i])
                siftDown(0)
                threshold = items[0].score
            }
            i += 1
        }
    }

    /// The int8 screen: a document is scored in f32 only when its approximate score plus its
    /// error bound reaches the current k-th best. Returns how many were scored in f32.
    mutating func offerScreened(approx: UnsafePointer<Int32>, count: Int, base: Int, ids: [String],
                                query: UnsafePointer<Float>, queryScale: Float, queryL1: Float,
                                docScales: UnsafePointer<Float>, docBounds: UnsafePointer<Float>,
                                docs: UnsafePointer<Float>, dim: Int) -> Int {
        var exact = 0
        // upper = s_c·(s_q·S + ‖q‖₁/2) + (s_q/2)·(s_c·‖ĉ‖₁) + margin; the margin covers the
        // float rounding of these few operations.
        let halfQueryScale = queryScale / 2, halfL1 = queryL1 / 2, margin: Float = 1e-5
        var threshold = items.count < k ? -Float.infinity : items[0].score
        // While the heap is not full (the first block), the k-th best lower bound of the block
        // is a threshold too: k of its documents score at least that. Without it every
        // document of the first block would be scored in f32.
        var floor = -Float.infinity
        if items.count < k && count >= k {
            floor = withUnsafeTemporaryAllocation(of: Float.self, capacity: k) { heap in
                ck_kth_lower_bound(approx, docScales, docBounds, count, queryScale, halfL1, halfQueryScale, margin, k, heap.baseAddress!)
            }
        }
        var i = 0
        while true {
            i = ck_next_candidate(approx, docScales, docBounds, i, count, queryScale, halfL1, halfQueryScale, margin,
                                  max(threshold, floor))
            if i == count { break }
            exact += 1
            let s = ck_dot(query, docs + i * dim, dim)
            if items.count < k {
                if !s.isNaN { push(Neighbor(score: s, index: base + i, id: ids[i])) }
                if items.count == k { threshold = items[0].score }
            } else if s > threshold {
                items[0] = Neighbor(score: s, index: base + i, id: ids[i])
                siftDown(0)
                threshold = items[0].score
            }
            i += 1
        }
        return exact
    }

    private mutating func push(_ n: Neighbor) {
        items.append(n)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard TopKHeap.worse(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        let n = items.count
        while true {
            let l = 2 * parent + 1, r = l + 1
            var worst = parent
            if l < n && TopKHeap.worse(items[l], items[worst]) { worst = l }
            if r < n && TopKHeap.worse(items[r], items[worst]) { worst = r }
            if worst == parent { return }
            items.swapAt(parent, worst)
            parent = worst
        }
    }

    func sorted() -> [Neighbor] {
        items.sorted { TopKHeap.worse($1, $0) }
    }
}
