import CKernels
import RuCore
import RuVectors

/// Builds a graph index in memory (ru-index build and add) and writes it as an index file.
///
/// The graph is Vamana's (DiskANN): one layer, a fixed number of neighbour slots per node,
/// edges chosen by α-pruning, searches starting from one entry node near the centroid. Nodes
/// are inserted incrementally as in HNSW and ParlayANN: a beam search over the nodes already
/// placed finds a new node's candidates, α-pruning picks its neighbours, and the reverse edges
/// are added to those neighbours (re-pruned when their slots overflow).
///
/// Determinism whatever the thread count: nodes are inserted in batches whose bounds depend only
/// on how many nodes are placed. The searches of a batch run in parallel against the graph as
/// the previous batches left it (a batch's nodes do not see each other), each node's own row is
/// written by the thread that searched for it, and the reverse edges are grouped by target in
/// a fixed order and each target re-pruned by one thread. All distances are int8 dot products
/// (exact integers) times per-node scales, plus per-node offsets, the same on every thread.
///
/// Codes are of x − μ, μ the mean of the first `meanRows` vectors appended (format version 2):
/// embeddings share a large common direction, and a code of x spends its 255 levels on it. Any
/// fixed μ keeps the ranking exact (each node keeps b = μ·x), so a sample of the first rows does.
public final class GraphBuilder {
    public let dim: Int
    public let stride: Int
    public let parameters: IndexParameters
    /// Neighbour slots per node while building: R plus half as many again. A node's list
    /// grows past R with reverse edges and is pruned back to R only when these slots are full
    /// (DiskANN's slack), and finally when written. Pruning at every reverse edge that
    /// overflowed R slots re-pruned ~R lists of R per node placed: the build of 20,000 vectors
    /// took 226 s on 2 threads, almost all of it in those prunes.
    let width: Int
    public private(set) var count = 0
    var codes: [Int8] = []
    var scales: [Float] = []
    /// Per node b = μ·x (from the f32 row), and μ with |μ|²; nil until `meanRows` rows (or all
    /// of them) have come, which wait in `pending` meanwhile.
    var offsets: [Float] = []
    var mean: [Float]?
    var meanNorm2: Float = 0
    var pending: [Float] = []
    /// How many of the first vectors make μ: enough that its error is far below the spread of
    /// the vectors (8,192 of 41,639 text embeddings held 0.98 of the true top 10 by centred
    /// codes, as the exact mean did), few enough to hold while waiting (25 MB at 768-d).
    static let meanRows = 8192
    var neighbors: [UInt32] = []
    var vectors: [Float] = []
    var idBytes: [UInt8] = []
    var idOffsets: [UInt64] = [0]
    public var metadata = StreamMetadata()
    /// The running sum of the vectors (in order, in Double: the same whatever the thread
    /// count), for the entry node near the centroid.
    var centroid: [Double]
    var entry: Int = -1
    /// Nodes placed in the graph; those from `placed` to `count` are waiting in `insertAll`.
    public private(set) var placed = 0

    public init(dim: Int, parameters: IndexParameters) {
        precondition(dim > 0 && parameters.degree >= 1)
        self.dim = dim
        stride = IndexFormat.stride(dim)
        self.parameters = parameters
        width = parameters.degree + parameters.degree / 2
        centroid = [Double](repeating: 0, count: dim)
    }

    /// A builder holding a whole index file, to `add` to it. New nodes keep its parameters,
    /// except the seed, which orders the insertion of the nodes added.
    public init(from file: GraphIndexFile, seed: UInt64) throws {
        dim = file.dim
        stride = file.stride
        var p = file.parameters
        p.seed = seed
        parameters = p
        width = p.degree + p.degree / 2
        count = file.count
        placed = file.count
        entry = file.count > 0 ? file.entry : -1
        codes = Array(UnsafeBufferPointer(start: file.codes, count: file.count * file.stride))
        scales = Array(UnsafeBufferPointer(start: file.scales, count: file.count))
        // A version 1 file coded x itself: μ = 0 and no offsets keep its codes meaning the same.
        offsets = file.offsets.map { Array(UnsafeBufferPointer(start: $0, count: file.count)) } ?? [Float](repeating: 0, count: file.count)
        mean = file.mean.map { Array(UnsafeBufferPointer(start: $0, count: file.dim)) } ?? [Float](repeating: 0, count: file.dim)
        meanNorm2 = file.meanNorm2
        neighbors = [UInt32](repeating: UInt32.max, count: file.count * width)
        for i in 0..<file.count {
            for j in 0..<file.degree { neighbors[i * width + j] = file.neighbors[i * file.degree + j] }
        }
        if let v = file.vectors { vectors = Array(UnsafeBufferPointer(start: v, count: file.count * file.dim)) }
        for i in 0..<file.count {
            idBytes.append(contentsOf: try file.id(i).utf8)
            idOffsets.append(UInt64(idBytes.count))
        }
        // Neighbour numbers are trusted from here on: check them, as a search would.
        for (i, nb) in neighbors.enumerated() where nb != UInt32.max && Int(nb) >= count {
            throw RuEmbedError("\(file.name): corrupt index: node \(i / width) has neighbour \(nb) of \(count)")
        }
        metadata = file.metadata
        centroid = [Double](repeating: 0, count: dim)
    }

    /// Appends `n` rows (normalised f32) with their ids; they are placed by `insertAll`.
    public func append(rows: UnsafePointer<Float>, count n: Int, ids: [String]) {
        precondition(ids.count == n)
        let old = count
        codes += [Int8](repeating: 0, count: n * stride)
        scales += [Float](repeating: 0, count: n)
        offsets += [Float](repeating: 0, count: n)
        neighbors += [UInt32](repeating: UInt32.max, count: n * width)
        if mean == nil {
            pending.append(contentsOf: UnsafeBufferPointer(start: rows, count: n * dim))
        } else {
            quantize(rows, count: n, at: old)
        }
        if parameters.keepVectors { vectors.append(contentsOf: UnsafeBufferPointer(start: rows, count: n * dim)) }
        for i in 0..<n {
            let row = rows + i * dim
            for j in 0..<dim { centroid[j] += Double(row[j]) }
            idBytes.append(contentsOf: ids[i].utf8)
            idOffsets.append(UInt64(idBytes.count))
        }
        count += n
        if pending.count >= GraphBuilder.meanRows * dim { fixMean() }
    }

    /// Codes, scales and offsets of `n` rows (normalised f32) for nodes `at`…, centred by μ.
    private func quantize(_ rows: UnsafePointer<Float>, count n: Int, at: Int) {
        let dim = self.dim, stride = self.stride
        mean!.withUnsafeBufferPointer { m in
            codes.withUnsafeMutableBufferPointer { c in
                scales.withUnsafeMutableBufferPointer { s in
                    offsets.withUnsafeMutableBufferPointer { o in
                        let (mp, cp, sp, op) = (m.baseAddress!, c.baseAddress!, s.baseAddress!, o.baseAddress!)
                        Parallel.forRanges(n) { lo, hi in
                            withUnsafeTemporaryAllocation(of: Float.self, capacity: dim) { centred in
                                var bound: Float = 0
                                for i in lo..<hi {
                                    let row = rows + i * dim
                                    for j in 0..<dim { centred[j] = row[j] - mp[j] }
                                    ck_quantize_rows(centred.baseAddress!, 1, dim, cp + (at + i) * stride, sp + at + i, &bound, 127)
                                    op[at + i] = ck_dot(row, mp, dim)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Fixes μ as the mean of the rows waiting and codes them. They are every row so far (a
    /// builder from a file has its μ already), so their sum is the running `centroid` (in
    /// order, in Double: the same whatever the threads).
    func fixMean() {
        guard mean == nil else { return }
        let rows = pending.count / dim
        precondition(rows == count, "rows wait for μ only in a fresh build")
        let m = centroid.map { rows > 0 ? Float($0 / Double(rows)) : 0 }
        mean = m
        meanNorm2 = m.reduce(0) { $0 + $1 * $1 }
        if rows > 0 { pending.withUnsafeBufferPointer { quantize($0.baseAddress!, count: rows, at: count - rows) } }
        pending = []
    }

    /// Appends every vector of a stream (any dtype), normalised as ExactSearch normalises a
    /// corpus (f32 flagged normalised: as it is), so that re-ranked scores equal ru-knn's.
    public func append(_ records: VectorRecords) throws {
        guard try records.peek() else { return }
        if records.shape!.dim != dim {
            throw RuEmbedError("\(records.name) has \(records.shape!.dim)-d vectors, the index \(dim)-d")
        }
        let normalized = records.shape.map { $0.normalized && $0.dtype == .f32 } ?? false
        let dim = self.dim
        try records.forEachBlock(maxRows: 8192) { p, m, ids in
            if count + m >= Int(UInt32.max) { throw RuEmbedError("\(records.name): an index holds fewer than 2^32 − 1 vectors") }
            if !normalized { Parallel.forRanges(m) { lo, hi in ck_normalize_rows(p + lo * dim, hi - lo, dim) } }
            append(rows: p, count: m, ids: ids)
        }
    }

    /// The batch that follows `placed` nodes: small while the graph is small (a node sees only
    /// the graph as the previous batch left it), then a sixteenth of the graph, at most 1024.
    static func batchSize(placed: Int) -> Int { max(1, min(placed / 16, 1024)) }

    /// Places every appended node, in an order shuffled by the seed; `progress(done, total)`
    /// is called between batches.
    public func insertAll(progress: (Int, Int) -> Void = { _, _ in }) {
        fixMean()
        guard placed < count else { return }
        var order = Array(placed..<count)
        var random = SeededRandom(seed: parameters.seed)
        for i in Swift.stride(from: order.count - 1, to: 0, by: -1) {
            order.swapAt(i, random.below(i + 1))
        }
        var done = 0
        if entry < 0 {
            // The entry node: the one nearest the centroid (by its code), placed first, alone.
            let mean = centroid.map { Float($0 / Double(count)) }
            var best = placed, bestScore = -Float.infinity
            codes.withUnsafeBufferPointer { c in
                for i in placed..<count {
                    var s: Float = 0
                    let row = c.baseAddress! + i * stride
                    for j in 0..<dim { s += mean[j] * Float(row[j]) }
                    s *= scales[i]
                    if s > bestScore { bestScore = s; best = i }
                }
            }
            order.removeAll { $0 == best }
            order.insert(best, at: 0)
            entry = best
            done = 1
        }
        let total = order.count
        let efc = min(max(parameters.efConstruction, parameters.degree), max(1, count))
        let scratch = (0..<Parallel.threads).map { _ in SearchScratch(nodes: count, ef: efc, stride: stride) }
        while done < total {
            let size = min(GraphBuilder.batchSize(placed: placed + done), total - done)
            insertBatch(Array(order[done..<done + size]), scratch: scratch)
            done += size
            progress(done, total)
        }
        placed = count
    }

    private func insertBatch(_ batch: [Int], scratch: [SearchScratch]) {
        let degree = parameters.degree, alpha = parameters.alpha, entry = self.entry, width = self.width
        let efc = min(max(parameters.efConstruction, degree), max(1, count))
        let stride = self.stride
        // 1. Each new node's neighbours, from a search of the graph as it stands.
        let meanNorm2 = self.meanNorm2
        codes.withUnsafeBufferPointer { c in
            scales.withUnsafeBufferPointer { s in
                offsets.withUnsafeBufferPointer { o in
                    neighbors.withUnsafeMutableBufferPointer { nb in
                        let (cp, sp, op, np) = (c.baseAddress!, s.baseAddress!, o.baseAddress!, nb.baseAddress!)
                        let count = self.count
                        Parallel.forThreadRanges(batch.count) { t, lo, hi in
                            let sc = scratch[t]
                            var g = ck_graph(codes: cp, scales: sp, neighbors: np, count: count, dim: self.dim, stride: stride, degree: width,
                                             offsets: op, mean_norm2: meanNorm2)
                            var unused: UInt64 = 0
                            for b in lo..<hi {
                                let node = batch[b]
                                // The node's own code is its query: (x − μ)'s, as a search's is.
                                for j in 0..<stride { sc.code[j] = cp[node * stride + j] }
                                sc.codeScale = sp[node]
                                let m = sc.search(&g, entry: entry, ef: efc, distances: &unused) ?? 0
                                // From x·y − b_node + |μ|² to the cosines the pruning compares.
                                for i in 0..<m { sc.sims[i] += op[node] - meanNorm2 }
                                sc.ids.withUnsafeBufferPointer { ids in
                                    sc.sims.withUnsafeBufferPointer { sims in
                                        _ = ck_graph_prune(&g, ids.baseAddress!, sims.baseAddress!, m, degree, alpha, np + node * width)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        // 2. Reverse edges, grouped by target in batch order.
        var pairs: [(target: UInt32, source: UInt32)] = []
        pairs.reserveCapacity(batch.count * degree)
        for node in batch {
            for j in 0..<degree {
                let nb = neighbors[node * width + j]
                if nb == UInt32.max { break }
                pairs.append((nb, UInt32(node)))
            }
        }
        // A stable order: by target, then by the source's place in the pairs (its batch order).
        let indexed = pairs.enumerated().sorted { $0.element.target != $1.element.target ? $0.element.target < $1.element.target : $0.offset < $1.offset }
        var groups: [(target: Int, sources: Range<Int>)] = []
        var i = 0
        while i < indexed.count {
            var j = i
            while j < indexed.count && indexed[j].element.target == indexed[i].element.target { j += 1 }
            groups.append((Int(indexed[i].element.target), i..<j))
            i = j
        }
        let sources = indexed.map { $0.element.source }
        codes.withUnsafeBufferPointer { c in
            scales.withUnsafeBufferPointer { s in
              offsets.withUnsafeBufferPointer { o in
                neighbors.withUnsafeMutableBufferPointer { nb in
                    let (cp, sp, op, np) = (c.baseAddress!, s.baseAddress!, o.baseAddress!, nb.baseAddress!)
                    let count = self.count, dim = self.dim
                    Parallel.forRanges(groups.count) { lo, hi in
                        var cand: [UInt32] = []
                        for gi in lo..<hi {
                            let (target, range) = groups[gi]
                            let row = np + target * width
                            var used = 0
                            while used < width && row[used] != UInt32.max { used += 1 }
                            cand.removeAll(keepingCapacity: true)
                            for k in 0..<used { cand.append(row[k]) }
                            for k in range where !cand.contains(sources[k]) { cand.append(sources[k]) }
                            if cand.count <= width {
                                for (k, v) in cand.enumerated() { row[k] = v }
                            } else {
                                GraphBuilder.prune(target, cand, codes: cp, scales: sp, offsets: op, meanNorm2: meanNorm2, neighbors: np,
                                                   count: count, dim: dim, stride: stride, width: width, degree: degree, alpha: alpha)
                            }
                        }
                    }
                }
              }
            }
        }
    }

    /// Re-prunes node `target`'s row to `degree` neighbours from `cand`, ordered by their
    /// similarity to it (ties by number), with α.
    static func prune(_ target: Int, _ cand: [UInt32], codes cp: UnsafePointer<Int8>, scales sp: UnsafePointer<Float>,
                      offsets op: UnsafePointer<Float>, meanNorm2: Float, neighbors np: UnsafeMutablePointer<UInt32>,
                      count: Int, dim: Int, stride: Int, width: Int, degree: Int, alpha: Float) {
        var g = ck_graph(codes: cp, scales: sp, neighbors: np, count: count, dim: dim, stride: stride, degree: width,
                         offsets: op, mean_norm2: meanNorm2)
        let tc = cp + target * stride
        var scored = cand.map { v -> (UInt32, Float) in
            (v, sp[Int(v)] * sp[target] * Float(ck_dot_s8(tc, cp + Int(v) * stride, stride)) + op[Int(v)] + op[target] - meanNorm2)
        }
        scored.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        let ids = scored.map { $0.0 }, sims = scored.map { $0.1 }
        var out = [UInt32](repeating: UInt32.max, count: degree)
        let kept = out.withUnsafeMutableBufferPointer { ck_graph_prune(&g, ids, sims, ids.count, degree, alpha, $0.baseAddress!) }
        let row = np + target * width
        for k in 0..<width { row[k] = k < kept ? out[k] : UInt32.max }
    }

    /// Every row longer than R pruned to R (what the file holds), in parallel: each row by
    /// itself, so the result does not depend on the threads either.
    func finishRows() {
        let degree = parameters.degree, alpha = parameters.alpha, width = self.width
        let stride = self.stride, count = self.count, dim = self.dim, meanNorm2 = self.meanNorm2
        codes.withUnsafeBufferPointer { c in
            scales.withUnsafeBufferPointer { s in
                offsets.withUnsafeBufferPointer { o in
                    neighbors.withUnsafeMutableBufferPointer { nb in
                        let (cp, sp, op, np) = (c.baseAddress!, s.baseAddress!, o.baseAddress!, nb.baseAddress!)
                        Parallel.forRanges(count) { lo, hi in
                            for i in lo..<hi where np[i * width + degree] != UInt32.max {
                                var cand: [UInt32] = []
                                for k in 0..<width where np[i * width + k] != UInt32.max { cand.append(np[i * width + k]) }
                                GraphBuilder.prune(i, cand, codes: cp, scales: sp, offsets: op, meanNorm2: meanNorm2, neighbors: np,
                                                   count: count, dim: dim, stride: stride, width: width, degree: degree, alpha: alpha)
                            }
                        }
                    }
                }
            }
        }
    }

    /// The index file's bytes, written to `output` section by section.
    public func write(to output: ByteOutput) throws {
        let degree = parameters.degree
        fixMean()
        if count > 0 { finishRows() }
        // The rows as the file holds them: R slots each.
        var rows = [UInt32](repeating: UInt32.max, count: count * degree)
        for i in 0..<count { for k in 0..<degree { rows[i * degree + k] = neighbors[i * width + k] } }
        var metaText = ""
        JSONValue.object(metadata.object).write(to: &metaText)
        let meta = metadata.isEmpty ? [] : Array(metaText.utf8)
        let lengths = [count * stride, count * 4, count * degree * 4, (count + 1) * 8, idBytes.count,
                       parameters.keepVectors ? count * dim * 4 : 0, meta.count, count * 4, dim * 4]
        let mean = self.mean!
        var offsets: [Int] = []  // the sections' (self.offsets: the nodes')
        var end = IndexFormat.headerSize
        for l in lengths {
            let o = (end + IndexFormat.alignment - 1) / IndexFormat.alignment * IndexFormat.alignment
            offsets.append(o)
            end = o + l
        }
        // The sections' bytes (little-endian: the x86-64 and arm64 hosts this runs on).
        let crcs: [UInt32] = [
            codes.withUnsafeBytes { ck_crc32c(0, $0.baseAddress, lengths[0]) },
            scales.withUnsafeBytes { ck_crc32c(0, $0.baseAddress, lengths[1]) },
            rows.withUnsafeBytes { ck_crc32c(0, $0.baseAddress, lengths[2]) },
            idOffsets.withUnsafeBytes { ck_crc32c(0, $0.baseAddress, lengths[3]) },
            idBytes.withUnsafeBytes { ck_crc32c(0, $0.baseAddress, lengths[4]) },
            vectors.withUnsafeBytes { ck_crc32c(0, $0.baseAddress, lengths[5]) },
            meta.withUnsafeBytes { ck_crc32c(0, $0.baseAddress, lengths[6]) },
            self.offsets.withUnsafeBytes { ck_crc32c(0, $0.baseAddress, lengths[7]) },
            mean.withUnsafeBytes { ck_crc32c(0, $0.baseAddress, lengths[8]) },
        ]
        var header = [UInt8](repeating: 0, count: IndexFormat.headerSize)
        func put32(_ v: UInt32, _ at: Int) { withUnsafeBytes(of: v.littleEndian) { for i in 0..<4 { header[at + i] = $0[i] } } }
        func put64(_ v: UInt64, _ at: Int) { withUnsafeBytes(of: v.littleEndian) { for i in 0..<8 { header[at + i] = $0[i] } } }
        for i in 0..<8 { header[i] = IndexFormat.magic[i] }
        put32(IndexFormat.version, 8)
        put32(UInt32(IndexFormat.headerSize), 12)
        put64(UInt64(count), 16)
        put32(UInt32(dim), 24)
        put32(UInt32(stride), 28)
        put32(UInt32(degree), 32)
        put32(UInt32(max(entry, 0)), 36)
        put32(parameters.keepVectors ? 1 : 0, 40)
        put32(UInt32(parameters.efConstruction), 44)
        put32(parameters.alpha.bitPattern, 48)
        put64(parameters.seed, 56)
        for s in 0..<IndexFormat.sectionCount {
            put64(UInt64(offsets[s]), IndexFormat.sectionTable + s * 24)
            put64(UInt64(lengths[s]), IndexFormat.sectionTable + s * 24 + 8)
            put32(crcs[s], IndexFormat.sectionTable + s * 24 + 16)
        }
        put32(header.withUnsafeBytes { ck_crc32c(0, $0.baseAddress, IndexFormat.headerSize - 4) }, IndexFormat.headerSize - 4)
        try output.write(header)
        var at = IndexFormat.headerSize
        let zeros = [UInt8](repeating: 0, count: IndexFormat.alignment)
        func section(_ s: Int, _ bytes: UnsafeRawBufferPointer) throws {
            if offsets[s] > at { try output.write(Array(zeros.prefix(offsets[s] - at))) }
            if lengths[s] > 0 { try output.write(UnsafeRawBufferPointer(rebasing: bytes.prefix(lengths[s]))) }
            at = offsets[s] + lengths[s]
        }
        try codes.withUnsafeBytes { try section(0, $0) }
        try scales.withUnsafeBytes { try section(1, $0) }
        try rows.withUnsafeBytes { try section(2, $0) }
        try idOffsets.withUnsafeBytes { try section(3, $0) }
        try idBytes.withUnsafeBytes { try section(4, $0) }
        try vectors.withUnsafeBytes { try section(5, $0) }
        try meta.withUnsafeBytes { try section(6, $0) }
        try self.offsets.withUnsafeBytes { try section(7, $0) }
        try mean.withUnsafeBytes { try section(8, $0) }
    }
}
