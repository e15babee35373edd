import RuCore
/// A token of a piece: its id and the range of the piece's scalars it covers.
package struct ModelToken: Equatable {
    package var id: UInt32
    package var lower: Int32
    package var upper: Int32
}

/// Per-thread scratch state of the models: word cache, buffers and counters. A struct
/// passed `inout`, so the hot loops touch plain local memory (class properties would cost a
/// dynamic exclusivity check on every access).
package struct ModelWorkspace {
    var cache = WordCache()
    var bytes: [UInt8] = []
    var symbolIDs: [UInt32] = []
    var symbolLowers: [Int32] = []
    var symbolUppers: [Int32] = []
    var pairRanks: [UInt32] = []
    var mergedIDs: [UInt32] = []
    var nextSymbol: [Int32] = []
    var previousSymbol: [Int32] = []
    /// Unigram: best path score ending at each byte.
    var scores: [Double] = []
    /// Characters a BPE without `unk_token` dropped (the Rust library drops them silently).
    package var droppedUnknown = 0
    package init() {}
}

/// A model turns one piece (a word) into tokens.
package protocol TokenModel: Sendable {
    func tokenize(_ piece: UnsafeBufferPointer<UInt32>, into out: inout [ModelToken], workspace: inout ModelWorkspace)
    /// Token id → token bytes (UTF-8), for every id of the model's vocabulary.
    var tokenBytes: [[UInt8]] { get }
    var vocabulary: ByteKeyTable { get }
    var unknownTokenID: UInt32? { get }
}

enum Models {
    static func make(_ json: JSONValue) throws -> TokenModel {
        // Files from before the "type" tag: a model with merges is a BPE.
        let inferred: String? = json["merges"] != nil ? "BPE" : json["max_input_chars_per_word"] != nil ? "WordPiece" : nil
        let c = try ComponentJSON(json, family: "model", defaultType: inferred)
        switch c.type {
        case "BPE": return try BPEModel(c)
        case "WordPiece": return try WordPieceModel(c)
        case "Unigram": return try UnigramModel(c)
        default: throw c.unsupportedType(supported: "BPE, WordPiece, Unigram")
        }
    }

    /// Reads "vocab": {token: id} with the keys as bytes.
    static func vocabulary(_ c: ComponentJSON) throws -> (ByteKeyTable, [[UInt8]]) {
        guard case .object(let pairs)? = c.value("vocab") else { throw RuEmbedError("\(c.place): \"vocab\" must be an object") }
        var table = ByteKeyTable(capacity: pairs.count)
        var maxID = -1
        var entries: [(key: [UInt8], id: Int)] = []
        entries.reserveCapacity(pairs.count)
        // The table by id has a slot up to the largest id: bounded by the entries listed.
        let idLimit = ConfigValues.tokenIDLimit(entries: pairs.count)
        for (key, value) in pairs {
            guard let id = ConfigValues.integer(value, 0...idLimit) else {
                throw RuEmbedError("\(c.place): vocab id of \(JSONValue.string(key).serialized): \(ConfigValues.notInteger(value, 0...idLimit))")
            }
            let bytes = Array(key.utf8)
            if table.insert(bytes, UInt32(id)) != nil {
                throw RuEmbedError("\(c.place): vocab has the token \(JSONValue.string(key).serialized) twice")
            }
            entries.append((bytes, id))
            maxID = max(maxID, id)
        }
        var tokens = [[UInt8]](repeating: [], count: maxID + 1)
        for e in entries { tokens[e.id] = e.key }
        return (table, tokens)
    }
}

/// An open-addressing table from a pair of ids to a UInt64 (rank and merged id).
struct PairTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private var mask: Int
    private static let empty = UInt64.max

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: PairTable.empty, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always)
    private static func slot(_ key: UInt64) -> Int {
        var h = key &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 32
        return Int(truncatingIfNeeded: h)
    }

    @inline(__always)
    func lookup(_ a: UInt32, _ b: UInt32) -> UInt64? {
        let key = UInt64(a) << 32 | UInt64(b)
        var i = PairTable.slot(key) & mask
        return keys.withUnsafeBufferPointer { keys in
            while true {
                let k = keys[i]
                if k == key { return values[i] }
                if k == PairTable.empty { return nil }
                i = (i + 1) & mask
            }
        }
    }

    mutating func insertOrReplace(_ a: UInt32, _ b: UInt32, _ value: UInt64) {
        let key = UInt64(a) << 32 | UInt64(b)
        var i = PairTable.slot(key) & mask
        while keys[i] != PairTable.empty && keys[i] != key { i = (i + 1) & mask }
        keys[i] = key
        values[i] = value
    }
}

/// A bounded cache from a word (its scalars) to its tokens, one per thread: Russian text
/// repeats its words, and a cached word skips the merge loop entirely.
struct WordCache {
    private var slots: [Int32]
    private var mask: Int
    private var keyStarts: [Int32] = []
    private var keyLengths: [Int32] = []
    private var keyArena: [UInt32] = []
    private var valueStarts: [Int32] = []
    private var valueCounts: [Int32] = []
    private var valueArena: [ModelToken] = []
    private let maxEntries: Int
    /// Words this long or longer are not cached (as in the Rust library).
    static let maxWordLength = 256

    init(maxEntries: Int = 1 << 16) {
        self.maxEntries = maxEntries
        slots = [Int32](repeating: 0, count: maxEntries * 2)
        mask = maxEntries * 2 - 1
    }

    @inline(__always)
    private static func hash(_ p: UnsafeBufferPointer<UInt32>) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for v in p { h = (h ^ UInt64(v)) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 31))
    }

    /// Appends the cached tokens of `word` to `out` and returns true, or returns false.
    @inline(__always)
    func lookup(_ word: UnsafeBufferPointer<UInt32>, into out: inout [ModelToken]) -> Bool {
        var i = WordCache.hash(word) & mask
        while true {
            let e = Int(slots[i])
            if e == 0 { return false }
            let k = e - 1
            if Int(keyLengths[k]) == word.count {
                let start = Int(keyStarts[k])
                let same = keyArena.withUnsafeBufferPointer { arena in
                    memcmp(arena.baseAddress! + start, word.baseAddress!, word.count * 4) == 0
                }
                if same {
                    let v = Int(valueStarts[k])
                    out.append(contentsOf: valueArena[v..<v + Int(valueCounts[k])])
                    return true
                }
            }
            i = (i + 1) & mask
        }
    }

    mutating func insert(_ word: UnsafeBufferPointer<UInt32>, _ tokens: ArraySlice<ModelToken>) {
        guard word.count < WordCache.maxWordLength else { return }
        if keyStarts.count >= maxEntries { clear() }
        var i = WordCache.hash(word) & mask
        while slots[i] != 0 { i = (i + 1) & mask }
        keyStarts.append(Int32(keyArena.count))
        keyLengths.append(Int32(word.count))
        keyArena.append(contentsOf: word)
        valueStarts.append(Int32(valueArena.count))
        valueCounts.append(Int32(tokens.count))
        valueArena.append(contentsOf: tokens)
        slots[i] = Int32(keyStarts.count)
    }

    private mutating func clear() {
        for k in slots.indices { slots[k] = 0 }
        keyStarts.removeAll(keepingCapacity: true)
        keyLengths.removeAll(keepingCapacity: true)
        keyArena.removeAll(keepingCapacity: true)
        valueStarts.removeAll(keepingCapacity: true)
        valueCounts.removeAll(keepingCapacity: true)
        valueArena.removeAll(keepingCapacity: true)
    }
}

#if canImport(Glibc)
import Glibc
#endif
