import RuCore
/// SentencePiece's unigram model (XLM-R, multilingual-e5, bge-m3): the segmentation of a
/// piece whose summed piece scores are highest (Viterbi over the UTF-8 bytes), as the Rust
/// library's optimized encoder computes it.
///
/// Rust's rules that decide ties and unknowns, kept here: candidates ending at the same byte
/// are tried shortest piece first and replace the best only when strictly better; a
/// character no piece starts with costs the lowest score minus 10; neighbouring unknowns
/// fuse into one token; every token's id is then looked up by its text (so a repeated piece
/// takes its last id), and a text with no id becomes `<0xNN>` tokens (with `byte_fallback`,
/// when all of them exist) or the unknown token.
struct UnigramModel: TokenModel {
    let vocabulary: ByteKeyTable
    let tokenBytes: [[UInt8]]
    let unknownTokenID: UInt32?
    let byteFallback: Bool
    /// Score of every id.
    let scores: [Double]
    /// The score of an unknown character: the lowest piece score minus Rust's penalty.
    let unknownScore: Double
    let trie: PieceTrie
    /// `<0x00>` ... `<0xFF>` ids, or nil where a byte has no token.
    let byteTokenIDs: [UInt32?]

    static let unknownPenalty = 10.0

    init(_ c: ComponentJSON) throws {
        try c.allow(["unk_id", "vocab", "byte_fallback"])
        guard let list = c.value("vocab")?.arrayValue else { throw RuEmbedError("\(c.place): \"vocab\" must be an array of [piece, score]") }
        // The Rust library refuses an empty vocabulary (and has no lowest score to derive the unknown score from).
        guard !list.isEmpty else { throw RuEmbedError("\(c.place): \"vocab\" is empty") }
        var table = ByteKeyTable(capacity: list.count)
        var tokens: [[UInt8]] = []
        var scores: [Double] = []
        tokens.reserveCapacity(list.count)
        scores.reserveCapacity(list.count)
        var lowest = Double.infinity
        for (id, entry) in list.enumerated() {
            guard let pair = entry.arrayValue, pair.count == 2, let piece = pair[0].stringValue else {
                throw RuEmbedError("\(c.place): vocab entry \(id) must be [piece, score]")
            }
            guard let score = pair[1].numberValue, score.isFinite else {
                throw RuEmbedError("\(c.place): vocab entry \(id) \(JSONValue.string(piece).serialized): score \(pair[1].serialized) is not a finite number")
            }
            let bytes = Array(piece.utf8)
            // A piece listed twice maps to its last id, as the Rust library's map does.
            table.insert(bytes, UInt32(id))
            tokens.append(bytes)
            scores.append(score)
            lowest = min(lowest, score)
        }
        if let unk = c.value("unk_id") {
            guard let id = ConfigValues.integer(unk, 0...(list.count - 1)) else {
                throw RuEmbedError("\(c.place): \"unk_id\": \(ConfigValues.notInteger(unk, 0...(list.count - 1))) (the vocabulary has \(list.count) pieces)")
            }
            unknownTokenID = UInt32(id)
        } else {
            // Rust fails the whole encode at the first unknown character without one; every
            // converted SentencePiece model has one.
            throw RuEmbedError("\(c.place): \"unk_id\" null is not supported")
        }
        vocabulary = table
        tokenBytes = tokens
        self.scores = scores
        unknownScore = lowest - UnigramModel.unknownPenalty
        byteFallback = try c.bool("byte_fallback", default: false)
        byteTokenIDs = (0..<256).map { table.lookup(BPEModel.byteTokenName($0)) }
        var keys: [(key: [UInt8], id: UInt32)] = []
        keys.reserveCapacity(table.count)
        table.forEach { key, id in keys.append((Array(key), id)) }
        trie = PieceTrie(keys)
    }

    func tokenize(_ piece: UnsafeBufferPointer<UInt32>, into out: inout [ModelToken], workspace w: inout ModelWorkspace) {
        let n = piece.count
        guard n > 0 else { return }
        if n < WordCache.maxWordLength && w.cache.lookup(piece, into: &out) { return }
        let outStart = out.count
        defer { if n < WordCache.maxWordLength { w.cache.insert(piece, out[outStart...]) } }

        // UTF-8 of the piece, and for each byte position the scalar it starts (or -1).
        w.bytes.removeAll(keepingCapacity: true)
        w.symbolUppers.removeAll(keepingCapacity: true)
        for (k, v) in piece.enumerated() {
            let before = w.bytes.count
            UTF8Encoding.append(v, to: &w.bytes)
            w.symbolUppers.append(Int32(k))
            for _ in before + 1..<w.bytes.count { w.symbolUppers.append(-1) }
        }
        let size = w.bytes.count
        w.symbolUppers.append(Int32(n))
        // Best path ending at each byte: its score, where its last token starts (-1: none
        // yet) and the id of that token (the unknown id for an unknown character).
        w.scores.removeAll(keepingCapacity: true)
        w.scores.append(contentsOf: repeatElement(0, count: size + 1))
        w.symbolLowers.removeAll(keepingCapacity: true)
        w.symbolLowers.append(contentsOf: repeatElement(-1, count: size + 1))
        w.symbolIDs.removeAll(keepingCapacity: true)
        w.symbolIDs.append(contentsOf: repeatElement(0, count: size + 1))
        let unk = unknownTokenID ?? 0
        w.bytes.withUnsafeBufferPointer { bytes in
            w.scores.withUnsafeMutableBufferPointer { best in
                w.symbolLowers.withUnsafeMutableBufferPointer { from in
                    w.symbolIDs.withUnsafeMutableBufferPointer { ids in
                        scores.withUnsafeBufferPointer { scores in
                            var start = 0
                            while start < size {
                                let here = best[start]
                                let lead = bytes[start]
                                let charLength = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
                                var hasSingle = false
                                var node: Int32 = 0
                                var k = start
                                while k < size, let child = trie.child(node, bytes[k]) {
                                    node = child
                                    k += 1
                                    let id = trie.pieceIDs[Int(node)]
                                    guard id >= 0 else { continue }
                                    let candidate = scores[Int(id)] + here
                                    if from[k] < 0 || candidate > best[k] {
                                        best[k] = candidate
                                        from[k] = Int32(start)
                                        ids[k] = UInt32(id)
                                    }
                                    if k - start == charLength { hasSingle = true }
                                }
                                let end = min(start + charLength, size)
                                if !hasSingle {
                                    let candidate = unknownScore + here
                                    if from[end] < 0 || candidate > best[end] {
                                        best[end] = candidate
                                        from[end] = Int32(start)
                                        ids[end] = unk
                                    }
                                }
                                start = end
                            }
                        }
                    }
                }
            }
        }
        // Back from the end: the tokens in reverse, unknown runs fused.
        let reversedStart = out.count
        var end = size
        var unknownEnd = -1
        while end > 0 {
            let start = Int(w.symbolLowers[end])
            if w.symbolIDs[end] == unk {
                if unknownEnd < 0 { unknownEnd = end }
            } else {
                if unknownEnd >= 0 { emit(from: end, to: unknownEnd, w: &w, into: &out); unknownEnd = -1 }
                emit(from: start, to: end, w: &w, into: &out)
            }
            end = start
        }
        if unknownEnd >= 0 { emit(from: 0, to: unknownEnd, w: &w, into: &out) }
        out[reversedStart...].reverse()
    }

    /// Appends the token(s) of bytes `start..<end` (byte tokens in reverse, since the whole
    /// list is reversed afterwards).
    private func emit(from start: Int, to end: Int, w: inout ModelWorkspace, into out: inout [ModelToken]) {
        let lower = w.symbolUppers[start], upper = w.symbolUppers[end]
        let id = w.bytes.withUnsafeBufferPointer { vocabulary.lookup($0.baseAddress! + start, end - start) }
        if let id {
            out.append(ModelToken(id: id, lower: lower, upper: upper))
            return
        }
        if byteFallback && w.bytes[start..<end].allSatisfy({ byteTokenIDs[Int($0)] != nil }) {
            for b in w.bytes[start..<end].reversed() {
                out.append(ModelToken(id: byteTokenIDs[Int(b)]!, lower: lower, upper: upper))
            }
            return
        }
        out.append(ModelToken(id: unknownTokenID ?? 0, lower: lower, upper: upper))
    }
}

/// A byte trie over the pieces, laid out breadth-first so each node's children are one
/// sorted run of labels: a prefix search costs a short binary search per byte, and the
/// trie takes about 11 bytes a node (a hash of edges at half load would take 32).
struct PieceTrie: Sendable {
    private var labels: [UInt8] = [0]
    private var firstChild: [Int32] = [0]
    private var childCount: [UInt16] = [0]
    /// The id of the piece ending at each node, or -1.
    private(set) var pieceIDs: [Int32] = [-1]

    /// `keys` with their ids (distinct keys).
    init(_ keys: [(key: [UInt8], id: UInt32)]) {
        // The keys in one arena, sorted by index with memcmp: a 250k-piece vocabulary builds
        // in a fraction of a second (sorting the arrays themselves was most of the load).
        var arena: [UInt8] = []
        var starts: [Int] = [], lengths: [Int] = [], ids: [UInt32] = []
        arena.reserveCapacity(keys.reduce(0) { $0 + $1.key.count })
        for (key, id) in keys {
            starts.append(arena.count); lengths.append(key.count); ids.append(id)
            arena.append(contentsOf: key)
        }
        var order = Array(0..<keys.count)
        var ranges: [(lower: Int32, upper: Int32, depth: Int32)] = []
        arena.withUnsafeBufferPointer { arena in
            starts.withUnsafeBufferPointer { starts in
                lengths.withUnsafeBufferPointer { lengths in
                    let base = arena.baseAddress ?? UnsafePointer(bitPattern: 1)!
                    order.sort { x, y in
                        let n = min(lengths[x], lengths[y])
                        let c = n == 0 ? 0 : memcmp(base + starts[x], base + starts[y], n)
                        return c != 0 ? c < 0 : lengths[x] < lengths[y]
                    }
                    // Breadth first: (sorted range of keys, depth) of each node in node order.
                    ranges.append((0, Int32(order.count), 0))
                    var node = 0
                    while node < ranges.count {
                        var k = Int(ranges[node].lower)
                        let upper = Int(ranges[node].upper), depth = Int(ranges[node].depth)
                        // Keys ending here sort first in the range.
                        while k < upper && lengths[order[k]] == depth {
                            pieceIDs[node] = Int32(bitPattern: ids[order[k]])
                            k += 1
                        }
                        firstChild[node] = Int32(ranges.count)
                        var count = 0
                        while k < upper {
                            let label = base[starts[order[k]] + depth]
                            var end = k + 1
                            while end < upper && base[starts[order[end]] + depth] == label { end += 1 }
                            ranges.append((Int32(k), Int32(end), Int32(depth + 1)))
                            labels.append(label)
                            firstChild.append(0)
                            childCount.append(0)
                            pieceIDs.append(-1)
                            count += 1
                            k = end
                        }
                        childCount[node] = UInt16(count)
                        node += 1
                    }
                }
            }
        }
    }

    @inline(__always)
    func child(_ node: Int32, _ byte: UInt8) -> Int32? {
        var lo = Int(firstChild[Int(node)]), hi = lo + Int(childCount[Int(node)])
        return labels.withUnsafeBufferPointer { labels in
            while lo < hi {
                let mid = (lo + hi) >> 1
                let l = labels[mid]
                if l == byte { return Int32(mid) }
                if l < byte { lo = mid + 1 } else { hi = mid }
            }
            return nil
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
