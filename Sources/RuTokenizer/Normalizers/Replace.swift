import RuCore
/// Replaces every non-overlapping match of a pattern, left to right. As in Rust's
/// `NormalizedString::replace`, every replacement scalar takes the alignment of the last
/// scalar of the match it replaces.
struct ReplaceNormalizer: Normalizer {
    let pattern: ReplacePattern
    let content: [UInt32]
    var keepsLettersAndSpaces: Bool { false }

    init(pattern: ReplacePattern, content: [UInt32]) {
        self.pattern = pattern
        self.content = content
    }

    init(_ c: ComponentJSON) throws {
        try c.allow(["pattern", "content"])
        guard let p = c.value("pattern") else { throw RuEmbedError("\(c.place): \"pattern\" is missing") }
        if let s = p["String"]?.stringValue {
            pattern = ReplacePattern(literal: UTF8Encoding.scalars(s))
        } else if let r = p["Regex"]?.stringValue {
            pattern = try ReplacePattern(regex: r, place: c.place)
        } else {
            throw RuEmbedError("\(c.place): \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}")
        }
        content = UTF8Encoding.scalars(try c.requiredString("content"))
    }

    func normalize(_ text: inout NormalizedText) {
        guard !text.isEmpty, !pattern.isEmpty else { return }
        var out = NormalizedText()
        var i = 0
        let n = text.count
        var runs: [Int32] = []
        text.scalars.withUnsafeBufferPointer { s in
            if pattern.needsRuns { ReplacePattern.runLengths(s, into: &runs) }
            while i < n {
                if let end = pattern.match(s, at: i, runs: runs), end > i {
                    let last = end - 1
                    for v in content { out.append(v, start: text.starts[last], end: text.ends[last]) }
                    i = end
                } else {
                    out.append(from: text, at: i)
                    i += 1
                }
            }
        }
        text = out
    }
}

/// A literal, or the small regular expressions converted SentencePiece tokenizers use
/// (" {2,}", "\A +| +\z", "\A▁"): alternatives of literal scalars where at most one carries
/// a quantifier (`*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`), optionally anchored with `\A` and
/// `\z`. The first alternative that matches wins (Oniguruma's order). Each attempt is O(1)
/// beyond the pattern's length (the run of the repeated scalar is precomputed), so no text
/// makes the matcher backtrack. Anything else is refused by name.
struct ReplacePattern: Sendable {
    struct Branch: Sendable {
        var atStart = false
        var atEnd = false
        var prefix: [UInt32] = []
        /// The repeated scalar and its bounds, if any.
        var repeated: UInt32? = nil
        var minCount = 1
        var maxCount = 1
        var suffix: [UInt32] = []
    }

    let branches: [Branch]

    var isEmpty: Bool { branches.isEmpty }
    var needsRuns: Bool { branches.contains { $0.repeated != nil } }

    init(literal: [UInt32]) {
        branches = literal.isEmpty ? [] : [Branch(prefix: literal)]
    }

    init(regex: String, place: String) throws {
        func fail(_ why: String) -> RuEmbedError {
            RuEmbedError("\(place): regex pattern \(JSONValue.string(regex).serialized) is not supported (\(why))")
        }
        let s = UTF8Encoding.scalars(regex)
        var branches: [Branch] = []
        var b = Branch()
        var atoms: [UInt32] = []
        var quantified: (index: Int, min: Int, max: Int)? = nil
        func finish() throws {
            guard !atoms.isEmpty else { throw fail("an alternative matches the empty string") }
            if let q = quantified {
                b.prefix = Array(atoms[..<q.index])
                b.repeated = atoms[q.index]
                b.minCount = q.min
                b.maxCount = q.max
                b.suffix = Array(atoms[(q.index + 1)...])
                if b.prefix.isEmpty && b.suffix.isEmpty && q.min == 0 { throw fail("an alternative matches the empty string") }
                if b.suffix.first == atoms[q.index] { throw fail("a repeated character followed by itself") }
            } else {
                b.prefix = atoms
            }
            branches.append(b)
            b = Branch()
            atoms = []
            quantified = nil
        }
        var i = 0
        while i < s.count {
            let c = s[i]
            switch c {
            case 0x7C: // |
                try finish()
                i += 1
            case 0x5C: // backslash
                guard i + 1 < s.count else { throw fail("a trailing backslash") }
                let e = s[i + 1]
                i += 2
                switch e {
                case 0x41: // \A
                    guard atoms.isEmpty && !b.atStart else { throw fail("\\A not at the start of an alternative") }
                    b.atStart = true
                case 0x7A: // \z
                    guard i == s.count || s[i] == 0x7C else { throw fail("\\z not at the end of an alternative") }
                    b.atEnd = true
                case 0x74: atoms.append(0x09)
                case 0x6E: atoms.append(0x0A)
                case 0x72: atoms.append(0x0D)
                default:
                    // An escaped punctuation character stands for itself; letters and digits
                    // are classes or references.
                    guard e < 0x80, !(0x30...0x39).contains(e), !(0x41...0x5A).contains(e), !(0x61...0x7A).contains(e) else {
                        throw fail("escape \\\(Unicode.Scalar(e).map { String(Character($0)) } ?? "?")")
                    }
                    atoms.append(e)
                }
            case 0x2A, 0x2B, 0x3F, 0x7B: // * + ? {
                guard !atoms.isEmpty else { throw fail("a quantifier with nothing before it") }
                guard quantified == nil else { throw fail("more than one quantifier in an alternative") }
                var lo = 0, hi = Int.max
                i += 1
                switch c {
                case 0x2A: lo = 0
                case 0x2B: lo = 1
                case 0x3F: lo = 0; hi = 1
                default:
                    func number() -> Int? {
                        var v = 0, digits = 0
                        while i < s.count, (0x30...0x39).contains(s[i]), digits < 6 { v = v * 10 + Int(s[i] - 0x30); i += 1; digits += 1 }
                        return digits > 0 ? v : nil
                    }
                    guard let n = number() else { throw fail("a malformed {n,m}") }
                    lo = n; hi = n
                    if i < s.count && s[i] == 0x2C { i += 1; hi = number() ?? Int.max }
                    guard i < s.count, s[i] == 0x7D, lo <= hi else { throw fail("a malformed {n,m}") }
                    i += 1
                }
                if i < s.count && (s[i] == 0x3F || s[i] == 0x2B) { throw fail("a lazy or possessive quantifier") }
                quantified = (atoms.count - 1, lo, hi)
            case 0x28, 0x29, 0x5B, 0x5D, 0x2E, 0x5E, 0x24, 0x7D: // ( ) [ ] . ^ $ }
                throw fail("groups, classes, '.', '^' and '$'")
            default:
                guard !b.atEnd else { throw fail("\\z not at the end of an alternative") }
                atoms.append(c)
                i += 1
            }
        }
        try finish()
        self.branches = branches
    }

    /// `runs[i]`: how many scalars from `i` on equal `s[i]`.
    static func runLengths(_ s: UnsafeBufferPointer<UInt32>, into runs: inout [Int32]) {
        runs = [Int32](repeating: 1, count: s.count)
        var i = s.count - 2
        while i >= 0 {
            if s[i] == s[i + 1] { runs[i] = runs[i + 1] + 1 }
            i -= 1
        }
    }

    /// The end of the match starting at `i`, or nil.
    @inline(__always)
    func match(_ s: UnsafeBufferPointer<UInt32>, at i: Int, runs: [Int32]) -> Int? {
        let n = s.count
        for b in branches {
            if b.atStart && i != 0 { continue }
            var p = i
            guard p + b.prefix.count <= n, s[p..<p + b.prefix.count].elementsEqual(b.prefix) else { continue }
            p += b.prefix.count
            if let c = b.repeated {
                let available = p < n && s[p] == c ? Int(runs[p]) : 0
                var count = min(available, b.maxCount)
                guard count >= b.minCount else { continue }
                // The suffix never starts with the repeated scalar, so only the longest run can
                // be followed by it; only `\z` with no suffix can want a shorter one.
                if b.atEnd && b.suffix.isEmpty {
                    count = n - p
                    guard count >= b.minCount && count <= min(available, b.maxCount) else { continue }
                }
                p += count
            }
            guard p + b.suffix.count <= n, s[p..<p + b.suffix.count].elementsEqual(b.suffix) else { continue }
            p += b.suffix.count
            if b.atEnd && p != n { continue }
            return p
        }
        return nil
    }
}
