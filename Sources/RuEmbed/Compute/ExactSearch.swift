/// One search result: the score, the corpus position (0-based) and the corpus id.
public struct Neighbor: Sendable, Equatable {
    public var score: Float
    public var index: Int
    public var id: String
}

/// Exact top-k by cosine over a corpus that arrives in blocks.
///
/// The queries are held (normalised) in memory; each corpus block is normalised, multiplied
/// against all queries in one matmul, and every query keeps a bounded heap of its k best.
/// Memory is the queries, one block, one block of scores and the heaps — never the corpus.
/// Ties are broken by corpus order: an equal score never displaces an earlier document.
public final class ExactSearch {
    public let dim: Int
    public let k: Int
    public let queryCount: Int
    private let queries: [Float]
    private var heaps: [TopKHeap]
    private var scores = UnsafeMutableBufferPointer<Float>(start: nil, count: 0)
    private var matmuls: [Int: MatmulNT] = [:]
    public private(set) var corpusCount = 0

    /// `queries` holds `queryCount` rows of `dim` floats (not necessarily normalised).
    public init(queries: [Float], dim: Int, k: Int) {
        precondition(dim > 0 && k > 0 && queries.count % dim == 0)
        self.dim = dim
        self.k = k
        queryCount = queries.count / dim
        var normalized = queries
        normalized.withUnsafeMutableBufferPointer {
            VectorMath.normalizeRows($0.baseAddress!, count: queries.count / dim, dim: dim)
        }
        self.queries = normalized
        heaps = (0..<queries.count / dim).map { _ in TopKHeap(k: k) }
    }

    deinit { scores.deallocate() }

    /// Scores `count` corpus rows (row-major, normalised in place) against every query.
    public func add(block: UnsafeMutablePointer<Float>, count: Int, ids: [String]) {
        precondition(ids.count == count)
        guard count > 0 else { return }
        let base = corpusCount
        corpusCount += count
        guard queryCount > 0 else { return }
        VectorMath.normalizeRows(block, count: count, dim: dim)
        let matmul = matmuls[count] ?? {
            let m = MatmulNT(m: queryCount, n: count, k: dim)
            matmuls[count] = m
            return m
        }()
        if scores.count < queryCount * count {
            scores.deallocate()
            scores = .allocate(capacity: queryCount * count)
        }
        let scorePointer = UnsafePointer(scores.baseAddress!)
        queries.withUnsafeBufferPointer { q in
            matmul.run(a: q.baseAddress!, b: UnsafePointer(block), c: scores.baseAddress!)
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
