import RuCore
/// SentencePiece's compiled normalization rules ("precompiled_charsmap", nmt_nfkc for XLM-R):
/// a darts-clone double-array trie from UTF-8 keys to offsets into a blob of NUL-terminated
/// replacement strings.
///
/// Applied as the Rust library applies it, quirks included: text is taken by extended
/// grapheme cluster; a cluster under 6 bytes is looked up whole and, when a key is a prefix
/// of it, the whole cluster becomes the replacement of the *shortest* such key; otherwise
/// each scalar is looked up alone. Alignments follow Rust's `NormalizedString::transform`:
/// a replacement's first scalar takes the alignment of the first scalar replaced, extra
/// scalars that of the previous one, and scalars removed are charged to the last scalar
/// written so far (which may belong to an earlier cluster).
struct PrecompiledNormalizer: Normalizer {
    let units: [UInt32]
    let strings: [UInt8]
    /// A cluster can join a letter to the space after it, so letters and spaces may change.
    var keepsLettersAndSpaces: Bool { false }

    init(_ c: ComponentJSON) throws {
        try c.allow(["precompiled_charsmap"])
        let encoded = try c.requiredString("precompiled_charsmap")
        guard let blob = Base64.decode(encoded) else {
            throw RuEmbedError("\(c.place): \"precompiled_charsmap\" is not valid base64")
        }
        try self.init(blob: blob, place: c.place)
    }

    init(blob: [UInt8], place: String) throws {
        func fail(_ what: String) -> RuEmbedError { RuEmbedError("\(place): precompiled_charsmap: \(what)") }
        guard blob.count >= 4 else { throw fail("\(blob.count) bytes, too short for the trie size") }
        let trieBytes = Int(blob[0]) | Int(blob[1]) << 8 | Int(blob[2]) << 16 | Int(blob[3]) << 24
        guard trieBytes >= 4, trieBytes % 4 == 0 else { throw fail("trie size \(trieBytes) is not a positive multiple of 4") }
        guard trieBytes <= blob.count - 4 else { throw fail("trie size \(trieBytes) runs past the end of the \(blob.count)-byte map (truncated?)") }
        var units = [UInt32](repeating: 0, count: trieBytes / 4)
        for k in units.indices {
            let p = 4 + 4 * k
            units[k] = UInt32(blob[p]) | UInt32(blob[p + 1]) << 8 | UInt32(blob[p + 2]) << 16 | UInt32(blob[p + 3]) << 24
        }
        self.units = units
        strings = Array(blob[(4 + trieBytes)...])
        try validate(fail)
    }

    // The darts-clone unit layout.
    @inline(__always) static func hasLeaf(_ u: UInt32) -> Bool { (u >> 8) & 1 == 1 }
    @inline(__always) static func value(_ u: UInt32) -> Int { Int(u & 0x7FFF_FFFF) }
    @inline(__always) static func label(_ u: UInt32) -> UInt32 { u & 0x8000_00FF }
    @inline(__always) static func offset(_ u: UInt32) -> Int { Int((u >> 10) << ((u & (1 << 9)) >> 6)) }

    /// Walks every unit a key can reach, so that every value a lookup can find names a UTF-8
    /// string inside the blob: a bad map fails here, once, by name. (Lookups still check
    /// their positions against the units.)
    private func validate(_ fail: (String) -> RuEmbedError) throws {
        // Whether the bytes from each offset up to the next NUL are valid UTF-8, for every
        // offset in one backward pass: decoding each leaf's string on its own made a map whose
        // leaves all point into one long NUL-free run quadratic (a 55 KB map took over 25 s).
        var scratch: [UInt32] = [], replaced = 0
        var validFrom = [Bool](repeating: true, count: strings.count + 1)
        for i in stride(from: strings.count - 1, through: 0, by: -1) where strings[i] != 0 {
            let b = strings[i]
            if b < 0x80 { validFrom[i] = validFrom[i + 1]; continue }
            let n = b < 0xC2 ? 0 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : b < 0xF5 ? 4 : 0
            validFrom[i] = n > 0 && i + n <= strings.count && validFrom[i + n]
                && strings[i..<i + n].withUnsafeBytes { TextDecoding.scalars($0, lossy: false, into: &scratch, replaced: &replaced) }
                && scratch.count == 1
        }
        var seen = [Bool](repeating: false, count: units.count)
        var stack = [PrecompiledNormalizer.offset(units[0])]
        while let base = stack.popLast() {
            for c in 0..<256 {
                let p = base ^ c
                guard p < units.count, PrecompiledNormalizer.label(units[p]) == UInt32(c) else { continue }
                // darts-clone shares suffixes (a DAWG), so a unit can be reached by several
                // keys: what follows it depends on the unit alone, so it is checked once. (A
                // cycle in a bad file is harmless: a lookup stops with its key.)
                guard !seen[p] else { continue }
                seen[p] = true
                let next = p ^ PrecompiledNormalizer.offset(units[p])
                if PrecompiledNormalizer.hasLeaf(units[p]) {
                    guard next < units.count else { throw fail("trie leaf at unit \(next) is past the \(units.count) units") }
                    let v = PrecompiledNormalizer.value(units[next])
                    guard v < strings.count else { throw fail("replacement offset \(v) is past the \(strings.count)-byte string blob") }
                    guard validFrom[v] else { throw fail("replacement at offset \(v) is not valid UTF-8") }
                }
                if next < units.count { stack.append(next) }
            }
        }
    }

    /// The replacement of the shortest key that is a prefix of `key` (a NUL byte ends the
    /// key, as in Rust), as scalars; nil when no key is.
    func replacement(_ key: UnsafeBufferPointer<UInt8>, into out: inout [UInt32]) -> Bool {
        units.withUnsafeBufferPointer { units in
            var pos = PrecompiledNormalizer.offset(units[0])
            for c in key {
                if c == 0 { return false }
                pos ^= Int(c)
                guard pos < units.count else { return false }
                let u = units[pos]
                guard PrecompiledNormalizer.label(u) == UInt32(c) else { return false }
                pos ^= PrecompiledNormalizer.offset(u)
                if PrecompiledNormalizer.hasLeaf(u) {
                    guard pos < units.count else { return false }
                    let v = PrecompiledNormalizer.value(units[pos])
                    out.removeAll(keepingCapacity: true)
                    strings.withUnsafeBufferPointer { s in
                        var i = v
                        while i < s.count && s[i] != 0 { i += 1 }
                        var replaced = 0
                        _ = TextDecoding.scalars(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: s[v..<i])), lossy: true, into: &out, replaced: &replaced)
                    }
                    return true
                }
            }
            return false
        }
    }

    func normalize(_ text: inout NormalizedText) {
        guard !text.isEmpty else { return }
        var newScalars: [UInt32] = []
        var changes: [Int] = []
        newScalars.reserveCapacity(text.count)
        changes.reserveCapacity(text.count)
        var key: [UInt8] = []
        var norm: [UInt32] = []
        var modified = false

        // Rust's `replace`: the new scalars, the extra ones marked as insertions, a shortfall
        // charged to the last scalar written.
        func replace(oldCount: Int) {
            newScalars.append(contentsOf: norm)
            changes.append(contentsOf: repeatElement(0, count: norm.count))
            let diff = norm.count - oldCount
            if diff > 0 {
                for k in changes.count - diff..<changes.count { changes[k] = 1 }
            } else if diff < 0, !changes.isEmpty {
                changes[changes.count - 1] += diff
            }
            modified = true
        }

        let scalars = text.scalars
        Graphemes.forEach(scalars) { cluster in
            key.removeAll(keepingCapacity: true)
            for i in cluster { UTF8Encoding.append(scalars[i], to: &key) }
            if key.count < 6 && key.withUnsafeBufferPointer({ replacement($0, into: &norm) }) {
                replace(oldCount: cluster.count)
                return
            }
            for i in cluster {
                key.removeAll(keepingCapacity: true)
                UTF8Encoding.append(scalars[i], to: &key)
                if key.withUnsafeBufferPointer({ replacement($0, into: &norm) }) {
                    replace(oldCount: 1)
                } else {
                    newScalars.append(scalars[i])
                    changes.append(0)
                }
            }
        }
        guard modified else { return }
        text.transform(newScalars, changes)
    }
}

extension NormalizedText {
    /// Rust's `NormalizedString::transform` over the whole text: `changes[k]` is 1 for an
    /// inserted scalar (aligned with the scalar consumed before it), 0 for one that replaces
    /// the next scalar, -n for one that replaces the next scalar and removes n more.
    /// Scalars never consumed are dropped.
    mutating func transform(_ newScalars: [UInt32], _ changes: [Int]) {
        var out = NormalizedText()
        out.scalars.reserveCapacity(newScalars.count)
        out.starts.reserveCapacity(newScalars.count)
        out.ends.reserveCapacity(newScalars.count)
        var consumed = 0
        for (v, change) in zip(newScalars, changes) {
            let k: Int
            if change > 0 {
                k = consumed - 1
            } else {
                k = consumed
                consumed += 1 - change
            }
            // (Rust aligns an insertion at the very start to (0, 0), and cannot consume past
            // the end; neither happens with the tables it builds, but stay inside.)
            let at = Swift.min(Swift.max(k, 0), count - 1)
            out.append(v, start: k < 0 ? starts[0] : starts[at], end: k < 0 ? starts[0] : ends[at])
        }
        self = out
    }
}

/// Extended grapheme clusters of a scalar array, as Rust's unicode-segmentation gives them.
enum Graphemes {
    /// Scalars between which a cluster boundary always falls (printable ASCII, Russian
    /// letters): runs of them need no segmentation.
    @inline(__always)
    static func isSimple(_ v: UInt32) -> Bool {
        (0x20...0x7E).contains(v) || (0x410...0x44F).contains(v) || v == 0x401 || v == 0x451
    }

    static func forEach(_ s: [UInt32], _ body: (Range<Int>) -> Void) {
        let n = s.count
        var i = 0
        while i < n {
            if isSimple(s[i]) && (i + 1 == n || isSimple(s[i + 1])) {
                body(i..<i + 1)
                i += 1
                continue
            }
            // Up to the next boundary between two simple scalars, segmented by Swift.
            var j = i + 1
            while j < n && !(isSimple(s[j - 1]) && isSimple(s[j])) { j += 1 }
            var view = String.UnicodeScalarView()
            for k in i..<j { view.append(Unicode.Scalar(s[k]) ?? "\u{FFFD}") }
            var at = i
            for character in String(view) {
                let size = character.unicodeScalars.count
                body(at..<at + size)
                at += size
            }
            i = j
        }
    }
}

/// Standard base64 with padding, strictly (what the Rust library's decoder accepts).
enum Base64 {
    static func decode(_ text: String) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 4 * 3)
        func sextet(_ c: UInt8) -> UInt32? {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): UInt32(c - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(c - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"): 62
            case UInt8(ascii: "/"): 63
            default: nil
            }
        }
        var i = 0
        while i < input.count {
            let last = i + 4 == input.count
            let pad = last ? (input[i + 3] == UInt8(ascii: "=") ? (input[i + 2] == UInt8(ascii: "=") ? 2 : 1) : 0) : 0
            var group: UInt32 = 0
            for k in 0..<4 {
                if k >= 4 - pad { group <<= 6; continue }
                guard let s = sextet(input[i + k]) else { return nil }
                group = group << 6 | s
            }
            out.append(UInt8(group >> 16))
            if pad < 2 { out.append(UInt8(group >> 8 & 0xFF)) }
            if pad < 1 { out.append(UInt8(group & 0xFF)) }
            // Bits below the last byte must be zero (canonical encoding).
            if pad == 1 && group & 0xFF != 0 || pad == 2 && group & 0xFFFF != 0 { return nil }
            i += 4
        }
        return out
    }
}
