import RuCore
/// WordPiece: greedy longest match from the left; pieces after the first carry the
/// continuing-subword prefix ("##"). A word with any part not in the vocabulary, or longer
/// than `max_input_chars_per_word`, becomes one unknown token.
struct WordPieceModel: TokenModel {
    let vocabulary: ByteKeyTable
    let tokenBytes: [[UInt8]]
    let unknownTokenID: UInt32?
    let unknownID: UInt32
    let prefix: [UInt8]
    let maxInputChars: Int

    init(_ c: ComponentJSON) throws {
        try c.allow(["unk_token", "continuing_subword_prefix", "max_input_chars_per_word", "vocab"])
        (vocabulary, tokenBytes) = try Models.vocabulary(c)
        let unk = try c.string("unk_token") ?? "[UNK]"
        guard let id = vocabulary.lookup(unk) else {
            throw RuEmbedError("\(c.place): unk_token \(JSONValue.string(unk).serialized) is not in the vocabulary")
        }
        unknownID = id
        unknownTokenID = id
        prefix = Array((try c.string("continuing_subword_prefix") ?? "##").utf8)
        maxInputChars = try c.int("max_input_chars_per_word") ?? 100
    }

    func tokenize(_ piece: UnsafeBufferPointer<UInt32>, into out: inout [ModelToken], workspace w: inout ModelWorkspace) {
        let n = piece.count
        guard n > 0 else { return }
        if n > maxInputChars {
            out.append(ModelToken(id: unknownID, lower: 0, upper: Int32(n)))
            return
        }
        if w.cache.lookup(piece, into: &out) { return }
        let outStart = out.count
        // UTF-8 of the word, and where each scalar starts in it.
        var bytes: [UInt8] = []
        var scalarStarts: [Int] = []
        scalarStarts.reserveCapacity(n + 1)
        for v in piece {
            scalarStarts.append(bytes.count)
            UTF8Encoding.append(v, to: &bytes)
        }
        scalarStarts.append(bytes.count)
        var start = 0
        var failed = false
        bytes.withUnsafeBufferPointer { b in
            while start < n {
                var end = n
                var found: UInt32? = nil
                while start < end {
                    let from = scalarStarts[start], to = scalarStarts[end]
                    if start > 0 && !prefix.isEmpty {
                        found = lookupPrefixed(b, from, to)
                    } else {
                        found = vocabulary.lookup(b.baseAddress! + from, to - from)
                    }
                    if found != nil { break }
                    end -= 1
                }
                guard let id = found else { failed = true; return }
                out.append(ModelToken(id: id, lower: Int32(start), upper: Int32(end)))
                start = end
            }
        }
        if failed {
            out.removeSubrange(outStart...)
            out.append(ModelToken(id: unknownID, lower: 0, upper: Int32(n)))
        }
        w.cache.insert(piece, out[outStart...])
    }

    private func lookupPrefixed(_ b: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> UInt32? {
        let length = prefix.count + to - from
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: length) { key in
            for k in 0..<prefix.count { key[k] = prefix[k] }
            for k in from..<to { key[prefix.count + k - from] = b[k] }
            return vocabulary.lookup(key.baseAddress!, length)
        }
    }
}
