import RuCore
/// Byte-pair encoding: a word starts as one symbol per character and the ranked merges
/// are applied, lowest rank first and leftmost first among equals, until none applies.
struct BPEModel: TokenModel {
    let vocabulary: ByteKeyTable
    let tokenBytes: [[UInt8]]
    /// (left id, right id) → rank << 32 | merged id.
    let merges: PairTable
    let unknownTokenID: UInt32?
    let fuseUnknown: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    let prefix: [UInt8]
    let suffix: [UInt8]
    /// Fast path without prefix or suffix: id of the token that is a single scalar < 0x800, or -1.
    let smallCharIDs: [Int32]
    /// `<0x00>` ... `<0xFF>`, when every one of them is in the vocabulary.
    let byteTokenIDs: [UInt32]?

    init(_ c: ComponentJSON) throws {
        try c.allow(["dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk",
                     "byte_fallback", "ignore_merges", "vocab", "merges"])
        if let dropout = c.value("dropout"), dropout != .number(0) {
            throw c.unsupported("dropout", dropout)
        }
        let (vocab, tokens) = try Models.vocabulary(c)
        vocabulary = vocab
        tokenBytes = tokens
        prefix = Array((try c.string("continuing_subword_prefix") ?? "").utf8)
        suffix = Array((try c.string("end_of_word_suffix") ?? "").utf8)
        fuseUnknown = try c.bool("fuse_unk", default: false)
        byteFallback = try c.bool("byte_fallback", default: false)
        ignoreMerges = try c.bool("ignore_merges", default: false)
        if let unk = try c.string("unk_token") {
            guard let id = vocabulary.lookup(unk) else {
                throw RuEmbedError("\(c.place): unk_token \(JSONValue.string(unk).serialized) is not in the vocabulary")
            }
            unknownTokenID = id
        } else {
            unknownTokenID = nil
        }

        let list = try c.requiredArray("merges")
        var merges = PairTable(capacity: list.count)
        for (rank, entry) in list.enumerated() {
            let a: String, b: String
            if let line = entry.stringValue {
                // The legacy form "a b": exactly one space, as the Rust library requires. Split
                // by scalars: as Characters, a space followed by a ZWJ or a combining mark is
                // one grapheme and no separator at all.
                let parts = line.unicodeScalars.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw RuEmbedError("\(c.place): merge \(rank + 1) \(entry.serialized) is not two tokens separated by one space") }
                a = String(String.UnicodeScalarView(parts[0])); b = String(String.UnicodeScalarView(parts[1]))
            } else if let pair = entry.arrayValue, pair.count == 2, let x = pair[0].stringValue, let y = pair[1].stringValue {
                a = x; b = y
            } else {
                throw RuEmbedError("\(c.place): merge \(rank + 1) must be \"a b\" or [\"a\", \"b\"]")
            }
            guard let aID = vocabulary.lookup(a) else { throw RuEmbedError("\(c.place): merge \(rank + 1): token \(JSONValue.string(a).serialized) is not in the vocabulary") }
            guard let bID = vocabulary.lookup(b) else { throw RuEmbedError("\(c.place): merge \(rank + 1): token \(JSONValue.string(b).serialized) is not in the vocabulary") }
            let merged = Array(a.utf8) + Array(b.utf8).dropFirst(prefix.count)
            guard let newID = vocabulary.lookup(merged) else {
                throw RuEmbedError("\(c.place): merge \(rank + 1): the merged token \(JSONValue.string(String(decoding: merged, as: UTF8.self)).serialized) is not in the vocabulary")
            }
            // A repeated pair keeps its last rank, as the Rust library's map does.
            merges.insertOrReplace(aID, bID, UInt64(rank) << 32 | UInt64(newID))
        }
        self.merges = merges

        var small = [Int32](repeating: -1, count: 0x800)
        for v in 0..<0x800 where !(0xD800...0xDFFF).contains(v) {
            var bytes: [UInt8] = []
            UTF8Encoding.append(UInt32(v), to: &bytes)
            if let id = vocabulary.lookup(bytes) { small[v] = Int32(id) }
        }
        smallCharIDs = small
        let byteIDs = (0..<256).map { vocab.lookup(BPEModel.byteTokenName($0)) }
        byteTokenIDs = byteIDs.allSatisfy { $0 != nil } ? byteIDs.map { $0! } : nil
    }

    /// Words with more symbols than this merge through a heap instead of scanning.
    static let heapThreshold = 48

    /// `<0x41>`: the name of a byte-fallback token.
    static func byteTokenName(_ b: Int) -> String {
        let hex = Array("0123456789ABCDEF")
        return "<0x\(hex[b >> 4])\(hex[b & 15])>"
    }

    /// The id of the symbol for scalar `v` at position `i` of an `n`-scalar word.
    @inline(__always)
    private func symbolID(_ v: UInt32, first: Bool, last: Bool, bytes: inout [UInt8]) -> UInt32? {
        let plain = (first || prefix.isEmpty) && (!last || suffix.isEmpty)
        if plain && v < 0x800 {
            let id = smallCharIDs.withUnsafeBufferPointer { $0[Int(v)] }
            return id < 0 ? nil : UInt32(id)
        }
        bytes.removeAll(keepingCapacity: true)
        if !first { bytes.append(contentsOf: prefix) }
        UTF8Encoding.append(v, to: &bytes)
        if last { bytes.append(contentsOf: suffix) }
        return bytes.withUnsafeBufferPointer { vocabulary.lookup($0.baseAddress!, $0.count) }
    }

    func tokenize(_ piece: UnsafeBufferPointer<UInt32>, into out: inout [ModelToken], workspace w: inout ModelWorkspace) {
        let n = piece.count
        guard n > 0 else { return }
        if n < WordCache.maxWordLength && w.cache.lookup(piece, into: &out) { return }
        let outStart = out.count
        let droppedBefore = w.droppedUnknown
        // A word that lost characters is not cached, so every occurrence is counted.
        defer { if n < WordCache.maxWordLength && w.droppedUnknown == droppedBefore { w.cache.insert(piece, out[outStart...]) } }

        if ignoreMerges {
            w.bytes.removeAll(keepingCapacity: true)
            for v in piece { UTF8Encoding.append(v, to: &w.bytes) }
            if let id = w.bytes.withUnsafeBufferPointer({ vocabulary.lookup($0.baseAddress!, $0.count) }) {
                out.append(ModelToken(id: id, lower: 0, upper: Int32(n)))
                return
            }
        }

        // Symbol positions count only the characters that made a symbol, as the Rust
        // library's do, and it counts them in UTF-8 bytes: after a dropped character later
        // offsets shift left by its byte length. Without drops, scalar positions are the same
        // thing, so bytes are only counted when something was dropped.
        if !makeSymbols(piece, countingBytes: false, &w) {
            _ = makeSymbols(piece, countingBytes: true, &w)
            merge(&w)
            convertByteRanges(piece, &w)
        } else {
            merge(&w)
        }
        for k in 0..<w.symbolIDs.count {
            out.append(ModelToken(id: w.symbolIDs[k], lower: w.symbolLowers[k], upper: w.symbolUppers[k]))
        }
    }

    /// Fills the workspace's symbols for `piece`. Returns false when a character was dropped
    /// while positions were counted in scalars (the caller then counts bytes instead).
    private func makeSymbols(_ piece: UnsafeBufferPointer<UInt32>, countingBytes: Bool, _ w: inout ModelWorkspace) -> Bool {
        let n = piece.count
        w.symbolIDs.removeAll(keepingCapacity: true)
        w.symbolLowers.removeAll(keepingCapacity: true)
        w.symbolUppers.removeAll(keepingCapacity: true)
        var cursor: Int32 = 0
        var pendingUnknown: (lower: Int32, upper: Int32)? = nil
        func flushUnknown() {
            if let u = pendingUnknown {
                w.symbolIDs.append(unknownTokenID!)
                w.symbolLowers.append(u.lower)
                w.symbolUppers.append(u.upper)
                pendingUnknown = nil
            }
        }
        var scratch: [UInt8] = []
        swap(&scratch, &w.bytes)
        defer { swap(&scratch, &w.bytes) }
        for i in 0..<n {
            let v = piece[i]
            let width: Int32 = countingBytes ? (v < 0x80 ? 1 : v < 0x800 ? 2 : v < 0x10000 ? 3 : 4) : 1
            if let id = symbolID(v, first: i == 0, last: i == n - 1, bytes: &scratch) {
                flushUnknown()
                w.symbolIDs.append(id)
                w.symbolLowers.append(cursor)
                w.symbolUppers.append(cursor + width)
                cursor += width
                continue
            }
            if byteFallback, let byteIDs = byteTokenIDs {
                // The bytes of the symbol as it was looked up, prefix and suffix included;
                // each byte token covers the whole character.
                scratch.removeAll(keepingCapacity: true)
                if i > 0 { scratch.append(contentsOf: prefix) }
                UTF8Encoding.append(v, to: &scratch)
                if i == n - 1 { scratch.append(contentsOf: suffix) }
                for b in scratch {
                    w.symbolIDs.append(byteIDs[Int(b)])
                    w.symbolLowers.append(cursor)
                    w.symbolUppers.append(cursor + width)
                }
                cursor += width
                continue
            }
            guard unknownTokenID != nil else {
                if !countingBytes { return false }
                w.droppedUnknown += 1
                continue
            }
            if fuseUnknown, let u = pendingUnknown {
                pendingUnknown = (u.lower, cursor + width)
            } else {
                flushUnknown()
                pendingUnknown = (cursor, cursor + width)
            }
            cursor += width
        }
        flushUnknown()
        return true
    }

    /// Turns symbol ranges counted in UTF-8 bytes of the piece back into scalar ranges.
    private func convertByteRanges(_ piece: UnsafeBufferPointer<UInt32>, _ w: inout ModelWorkspace) {
        var scalarAtByte: [Int32] = []
        for (i, v) in piece.enumerated() {
            let width = v < 0x80 ? 1 : v < 0x800 ? 2 : v < 0x10000 ? 3 : 4
            scalarAtByte.append(contentsOf: repeatElement(Int32(i), count: width))
        }
        for k in w.symbolIDs.indices {
            w.symbolLowers[k] = scalarAtByte[Int(w.symbolLowers[k])]
            w.symbolUppers[k] = scalarAtByte[Int(w.symbolUppers[k]) - 1] + 1
        }
    }

    /// Applies merges in rank order. Symbols form a linked list over fixed arrays (a merge
    /// unlinks its right half instead of shifting the arrays); the rank of every adjacent pair
    /// is kept and only the two pairs next to a merge are looked up again. The survivors are
    /// compacted to the front at the end.
    private func merge(_ w: inout ModelWorkspace) {
        let none = UInt32.max
        let count = w.symbolIDs.count
        guard count > 1 else { return }
        w.pairRanks.removeAll(keepingCapacity: true)
        w.mergedIDs.removeAll(keepingCapacity: true)
        w.nextSymbol.removeAll(keepingCapacity: true)
        w.previousSymbol.removeAll(keepingCapacity: true)
        for k in 0..<count {
            w.nextSymbol.append(Int32(k + 1))
            w.previousSymbol.append(Int32(k - 1))
            if k + 1 < count, let m = merges.lookup(w.symbolIDs[k], w.symbolIDs[k + 1]) {
                w.pairRanks.append(UInt32(m >> 32)); w.mergedIDs.append(UInt32(truncatingIfNeeded: m))
            } else {
                w.pairRanks.append(none); w.mergedIDs.append(0)
            }
        }
        let merges = self.merges
        w.symbolIDs.withUnsafeMutableBufferPointer { ids in
        w.symbolUppers.withUnsafeMutableBufferPointer { uppers in
        w.pairRanks.withUnsafeMutableBufferPointer { ranks in
        w.mergedIDs.withUnsafeMutableBufferPointer { results in
        w.nextSymbol.withUnsafeMutableBufferPointer { next in
        w.previousSymbol.withUnsafeMutableBufferPointer { previous in
            func refresh(_ k: Int) {
                let right = Int(next[k])
                if right < count, let m = merges.lookup(ids[k], ids[right]) {
                    ranks[k] = UInt32(m >> 32); results[k] = UInt32(truncatingIfNeeded: m)
                } else {
                    ranks[k] = none
                }
            }
            // Short words scan for the lowest rank; long ones (a run of thousands of symbols
            // would make the scan quadratic) keep the candidate pairs in a min-heap of
            // rank << 32 | position, skipping entries a merge has made stale.
            var heap: [UInt64] = []
            let useHeap = count > BPEModel.heapThreshold
            if useHeap {
                for k in 0..<count where ranks[k] != none { heap.append(UInt64(ranks[k]) << 32 | UInt64(k)) }
                heap.sort()  // a sorted array is a valid min-heap
            }
            func push(_ k: Int) {
                guard useHeap, ranks[k] != none else { return }
                heap.append(UInt64(ranks[k]) << 32 | UInt64(k))
                var i = heap.count - 1
                while i > 0 {
                    let parent = (i - 1) / 2
                    if heap[parent] <= heap[i] { break }
                    heap.swapAt(parent, i); i = parent
                }
            }
            func popMin() -> UInt64? {
                guard let top = heap.first else { return nil }
                let last = heap.removeLast()
                if !heap.isEmpty {
                    heap[0] = last
                    var i = 0
                    while true {
                        let l = 2 * i + 1, r = l + 1
                        var m = i
                        if l < heap.count && heap[l] < heap[m] { m = l }
                        if r < heap.count && heap[r] < heap[m] { m = r }
                        if m == i { break }
                        heap.swapAt(i, m); i = m
                    }
                }
                return top
            }
            while true {
                var at = -1
                if useHeap {
                    while let entry = popMin() {
                        let k = Int(entry & 0xFFFF_FFFF)
                        // Stale: the symbol was merged away, or its pair changed since.
                        if ids[k] != none && ranks[k] == UInt32(entry >> 32) { at = k; break }
                    }
                } else {
                    var best = none
                    var k = 0
                    while k < count {
                        if ranks[k] < best { best = ranks[k]; at = k }
                        k = Int(next[k])
                    }
                }
                if at < 0 { break }
                let right = Int(next[at])
                ids[at] = results[at]
                uppers[at] = uppers[right]
                next[at] = next[right]
                if Int(next[right]) < count { previous[Int(next[right])] = Int32(at) }
                ids[right] = none // unlinked
                ranks[right] = none
                refresh(at)
                push(at)
                if previous[at] >= 0 {
                    refresh(Int(previous[at]))
                    push(Int(previous[at]))
                }
            }
        }}}}}}
        // Compact the survivors.
        var kept = 0
        for k in 0..<count where w.symbolIDs[k] != none {
            w.symbolIDs[kept] = w.symbolIDs[k]
            w.symbolLowers[kept] = w.symbolLowers[k]
            w.symbolUppers[kept] = w.symbolUppers[k]
            kept += 1
        }
        w.symbolIDs.removeLast(count - kept)
        w.symbolLowers.removeLast(count - kept)
        w.symbolUppers.removeLast(count - kept)
    }
}
