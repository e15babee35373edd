import CKernels
import RuCore
import RuVectors
#if canImport(Glibc)
import Glibc
#endif

/// Per-thread scratch of a graph search: the visited marks (one byte per node, a fresh epoch
/// per search instead of clearing, cleared once every 255 searches), the beam and the query's
/// code. Bytes rather than words: the marks are looked up at random for every neighbour of
/// every expanded node, and at a quarter of the size more of them stay in the core's L2 beside
/// the codes streaming through it (bench/ann 100,000, 2026-12-03 Zen 5: 0.35 s against 0.36–0.38 s
/// a run, three interleaved runs each).
final class SearchScratch {
    var visited: UnsafeMutablePointer<UInt8>
    let nodes: Int
    var epoch: UInt8 = 0
    var ids: [UInt32]
    var sims: [Float]
    var expanded: [UInt8]
    var code: [Int8]
    /// The scale of `code`.
    var codeScale: Float = 0
    /// The query less the index's mean (version 2), for quantising and re-scoring by codes.
    var centred: [Float] = []

    init(nodes: Int, ef: Int, stride: Int) {
        self.nodes = nodes
        // calloc: the pages of a large mark array are mapped on first touch, so a search that
        // visits a few thousand nodes of a million does not pay for zeroing a megabyte.
        visited = calloc(max(1, nodes), 1)!.assumingMemoryBound(to: UInt8.self)
        ids = [UInt32](repeating: 0, count: ef)
        sims = [Float](repeating: 0, count: ef)
        expanded = [UInt8](repeating: 0, count: ef)
        code = [Int8](repeating: 0, count: stride)
    }

    deinit { free(visited) }

    func nextEpoch() -> UInt8 {
        if epoch == UInt8.max {
            memset(visited, 0, nodes)
            epoch = 0
        }
        epoch += 1
        return epoch
    }

    /// Quantises a normalised f32 row into `code` (per-row symmetric int8, codes up to 127) and
    /// its scale into `codeScale`.
    func quantize(_ row: UnsafePointer<Float>, dim: Int) {
        var scale: Float = 0, bound: Float = 0
        code.withUnsafeMutableBufferPointer { ck_quantize_rows(row, 1, dim, $0.baseAddress!, &scale, &bound, 127) }
        codeScale = scale
    }

    /// `centred` = q − μ (q itself without a mean, version 1) and its code; returns q·μ − |μ|²,
    /// what turns the search's and the codes' scores ((q − μ)·(s·code) + b) into cosines.
    func centre(_ query: UnsafePointer<Float>, mean: UnsafePointer<Float>?, meanNorm2: Float, dim: Int) -> Float {
        if centred.count != dim { centred = [Float](repeating: 0, count: dim) }
        defer { centred.withUnsafeBufferPointer { quantize($0.baseAddress!, dim: dim) } }
        guard let mean else {
            for j in 0..<dim { centred[j] = query[j] }
            return 0
        }
        var qm: Float = 0
        for j in 0..<dim {
            centred[j] = query[j] - mean[j]
            qm += query[j] * mean[j]
        }
        return qm - meanNorm2
    }

    /// Beam search; the results stay in `ids`/`sims`, best first. Returns how many, or nil when
    /// the graph led to a node out of range (a corrupt file).
    func search(_ graph: inout ck_graph, entry: Int, ef: Int, distances: inout UInt64) -> Int? {
        var stats = ck_search_stats()
        var entryNode = UInt32(entry)
        let epoch = nextEpoch()
        let found = code.withUnsafeBufferPointer { code in
            ids.withUnsafeMutableBufferPointer { ids in
                sims.withUnsafeMutableBufferPointer { sims in
                    expanded.withUnsafeMutableBufferPointer { expanded in
                        ck_graph_search(&graph, code.baseAddress!, codeScale, &entryNode, 1, ef, visited, epoch,
                                        ids.baseAddress!, sims.baseAddress!, expanded.baseAddress!, &stats)
                    }
                }
            }
        }
        distances += stats.distances
        return stats.bad_node != 0 ? nil : found
    }
}

extension GraphIndexFile {
    /// The approximate k nearest nodes of each query (normalised f32 rows): a beam search of
    /// width `ef` (at least k) over the int8 codes, then the beam re-scored — with the f32
    /// vectors when the index keeps them (exact cosines, so the scores are the ones ru-knn's
    /// exact search prints), else with the f32 query against the int8 codes. `base` is added to
    /// the positions (shards searched as one). Ties: lower position first.
    public func search(queries: UnsafePointer<Float>, count n: Int, k: Int, ef: Int, base: Int = 0,
                       distances: inout UInt64) throws -> [[Neighbor]] {
        guard count > 0, n > 0 else { return [[Neighbor]](repeating: [], count: n) }
        // A beam wider than the graph holds every node anyway (and a huge --ef or -k must not
        // size the scratch).
        let width = min(max(ef, k), count)
        // Queries a few at a time to whichever thread is free: their costs differ (a query far
        // from the entry walks longer), and fixed halves left one thread waiting at the join.
        let piece = 16
        let threads = Parallel.pieceThreads(n, piece: piece)
        let scratch = (0..<threads).map { _ in SearchScratch(nodes: count, ef: width, stride: stride) }
        let rescoredPerThread = (0..<threads).map { _ in UnsafeMutableBufferPointer<Float>.allocate(capacity: width) }
        defer { rescoredPerThread.forEach { $0.deallocate() } }
        nonisolated(unsafe) var found = [[(node: Int, score: Float)]](repeating: [], count: n)
        nonisolated(unsafe) var perThread = [UInt64](repeating: 0, count: threads)
        nonisolated(unsafe) var corrupt = [Bool](repeating: false, count: threads)
        let dim = self.dim, entry = self.entry
        found.withUnsafeMutableBufferPointer { found in
            let out = found.baseAddress!
            Parallel.forPieces(n, piece: piece, threads: threads) { t, lo, hi in
                let s = scratch[t]
                var g = self.graph
                var local: UInt64 = 0
                let rescored = rescoredPerThread[t]
                for q in lo..<hi {
                    let query = queries + q * dim
                    // Version 2: the code of q − μ, whose error is far smaller than q's when the
                    // vectors share a large direction; the walk adds each node's offset b (one
                    // more float a node: 0.36–0.40 s against 0.36–0.40 without it, bench/ann's
                    // 100,000 at --ef 24, eight interleaved runs each, Zen 5).
                    let shift = s.centre(query, mean: self.mean, meanNorm2: self.meanNorm2, dim: dim)
                    guard let m = s.search(&g, entry: entry, ef: width, distances: &local) else { corrupt[t] = true; return }
                    if let vectors = self.vectors {
                        for i in 0..<m { rescored[i] = ck_dot(query, vectors + Int(s.ids[i]) * dim, dim) }
                    } else {
                        // Version 2: (q − μ)·code + b, plus q·μ − |μ|², estimates q·x with the smaller
                        // error of a centred query (docs/INDEX.md).
                        s.centred.withUnsafeBufferPointer { q in
                            s.ids.withUnsafeBufferPointer { ids in ck_graph_rerank_codes(&g, q.baseAddress!, ids.baseAddress!, m, rescored.baseAddress!) }
                        }
                        for i in 0..<m { rescored[i] += shift }
                    }
                    var hits = (0..<m).map { (node: Int(s.ids[$0]), score: rescored[$0]) }
                    hits.sort { $0.score != $1.score ? $0.score > $1.score : $0.node < $1.node }
                    out[q] = Array(hits.prefix(k))
                }
                perThread[t] += local
            }
        }
        if corrupt.contains(true) { throw RuEmbedError("\(name): corrupt index: a neighbour number is past the \(count) nodes") }
        distances += perThread.reduce(0, +)
        return try found.map { hits in
            try hits.map { Neighbor(score: $0.score, index: base + $0.node, id: try id($0.node)) }
        }
    }

    /// Exhaustive search over the stored vectors (the f32 ones when kept, else the codes
    /// dequantised) with ru-knn's exact search: with f32 vectors the result is what ru-knn
    /// prints for the source streams.
    public func exactSearch(_ search: ExactSearch) throws {
        let block = 8192
        var buffer = [Float](repeating: 0, count: vectors == nil ? block * dim : 0)
        var start = 0
        while start < count {
            let m = min(block, count - start)
            let ids = try (start..<start + m).map { try id($0) }
            if let vectors {
                search.add(block: UnsafeMutablePointer(mutating: vectors + start * dim), count: m, ids: ids, normalized: true)
            } else {
                buffer.withUnsafeMutableBufferPointer { b in
                    for i in 0..<m { dequantize(start + i, into: b.baseAddress! + i * dim) }
                    // Dequantised codes are not unit vectors: normalised as a stream's would be.
                    search.add(block: b.baseAddress!, count: m, ids: ids, normalized: false)
                }
            }
            start += m
        }
    }
}

/// Merges the neighbours of the same query from several shards into the best k: by score, then
/// position (the shards' positions offset so that they follow one another).
public func mergeNeighbors(_ lists: [[Neighbor]], k: Int) -> [Neighbor] {
    Array(lists.joined().sorted { $0.score != $1.score ? $0.score > $1.score : $0.index < $1.index }.prefix(k))
}
