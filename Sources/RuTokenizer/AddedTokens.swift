import RuCore
/// An entry of "added_tokens": text matched before the model sees it.
package struct AddedToken: Sendable {
    package var id: UInt32
    package var content: [UInt32]
    package var singleWord: Bool
    package var leftStrip: Bool
    package var rightStrip: Bool
    /// Matched in the normalized text (true) or in the raw text (false).
    package var normalized: Bool
    package var special: Bool
}

/// Finds added tokens in text: leftmost match first, the longest among those starting
/// there, matches never overlapping — the Rust library's Aho-Corasick `LeftmostLongest`
/// — then applies `single_word`, `lstrip` and `rstrip` as it does.
struct AddedTokenMatcher: Sendable {
    let tokens: [AddedToken]
    /// The pattern of each token as matched (normalized for normalized tokens).
    let patterns: [[UInt32]]
    /// Candidate tokens by first scalar, longest pattern first.
    private let byFirstScalar: [UInt32: [Int]]
    /// One bit per BMP scalar that begins some pattern: most text never reaches the dictionary.
    private let firstScalarBits: [UInt64]

    var isEmpty: Bool { tokens.isEmpty }

    init(tokens: [AddedToken], patterns: [[UInt32]]) {
        self.tokens = tokens
        self.patterns = patterns
        var index: [UInt32: [Int]] = [:]
        for (k, p) in patterns.enumerated() where !p.isEmpty { index[p[0], default: []].append(k) }
        for key in index.keys { index[key]!.sort { patterns[$0].count > patterns[$1].count } }
        byFirstScalar = index
        var bits = [UInt64](repeating: 0, count: 1024)
        for key in index.keys where key < 0x10000 { bits[Int(key >> 6)] |= 1 << UInt64(key & 63) }
        firstScalarBits = bits
    }

    @inline(__always)
    private func mayStartPattern(_ v: UInt32) -> Bool {
        v >= 0x10000 || firstScalarBits.withUnsafeBufferPointer { $0[Int(v >> 6)] >> UInt64(v & 63) & 1 != 0 }
    }

    struct Split {
        var lower: Int
        var upper: Int
        var token: Int   // index into tokens, or -1
    }

    /// Cuts `text[range]` into text and token splits. `skipSpecial` treats special tokens as text.
    func split(_ text: UnsafeBufferPointer<UInt32>, _ range: Range<Int>, skipSpecial: Bool, into out: inout [Split]) {
        out.removeAll(keepingCapacity: true)
        let lo = range.lowerBound, hi = range.upperBound
        var consumed = lo
        var i = lo
        while i < hi {
            guard mayStartPattern(text[i]), let candidates = byFirstScalar[text[i]] else { i += 1; continue }
            var matched = -1
            for k in candidates {
                let p = patterns[k]
                if i + p.count <= hi && (1..<p.count).allSatisfy({ text[i + $0] == p[$0] }) { matched = k; break }
            }
            guard matched >= 0 else { i += 1; continue }
            let token = tokens[matched]
            var start = i, stop = i + patterns[matched].count
            let matchEnd = stop
            i = matchEnd
            if skipSpecial && token.special { continue }
            if token.singleWord {
                let startsClear = start == lo || !UnicodeClasses.has(text[start - 1], .word)
                let stopsClear = stop == hi || !UnicodeClasses.has(text[stop], .word)
                if !startsClear || !stopsClear { continue }
            }
            if token.leftStrip {
                var s = start
                while s > lo && UnicodeClasses.isWhitespace(text[s - 1]) { s -= 1 }
                start = max(s, consumed)
            }
            if token.rightStrip {
                while stop < hi && UnicodeClasses.isWhitespace(text[stop]) { stop += 1 }
            }
            if consumed < start { out.append(Split(lower: consumed, upper: start, token: -1)) }
            out.append(Split(lower: start, upper: stop, token: matched))
            consumed = stop
        }
        if consumed < hi { out.append(Split(lower: consumed, upper: hi, token: -1)) }
    }
}
