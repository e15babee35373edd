import RuCore
/// A pre-tokenizer cuts the text pieces of a `PieceList` into smaller ones (words);
/// the model then tokenizes each piece on its own. Decided tokens pass through untouched.
package protocol PreTokenizer: Sendable {
    func preTokenize(_ list: inout PieceList)
    /// Always ends a piece between a letter and a following U+0020 (whatever comes after):
    /// what lets a long text be tokenized by a prefix (`Tokenizer.encode(utf8:...)`).
    var splitsAtSpaces: Bool { get }
    /// How far (in scalars) text after a position can change the pieces before it.
    var reach: Int { get }
}

extension PreTokenizer {
    package var splitsAtSpaces: Bool { false }
    package var reach: Int { 1 }
}

/// How the matches of a pattern become pieces (the Rust library's `SplitDelimiterBehavior`).
enum SplitBehavior: String {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"
}

/// A span of a piece, matched by the pattern or not.
struct MatchSpan {
    var lower: Int32
    var upper: Int32
    var isMatch: Bool
}

enum PreTokenizers {
    static func make(_ json: JSONValue) throws -> PreTokenizer {
        let c = try ComponentJSON(json, family: "pre_tokenizer")
        switch c.type {
        case "ByteLevel":
            try c.allow(["add_prefix_space", "trim_offsets", "use_regex"])
            return ByteLevelPreTokenizer(addPrefixSpace: try c.bool("add_prefix_space", default: true),
                                         useRegex: try c.bool("use_regex", default: true))
        case "Whitespace": try c.allow([]); return WhitespacePreTokenizer()
        case "WhitespaceSplit": try c.allow([]); return WhitespaceSplitPreTokenizer()
        case "BertPreTokenizer": try c.allow([]); return BertPreTokenizer()
        case "Punctuation":
            try c.allow(["behavior"])
            return CharacterSplitPreTokenizer(kind: .punctuation, behavior: try behavior(c, default: .isolated))
        case "Digits":
            try c.allow(["individual_digits"])
            let individual = try c.bool("individual_digits", default: false)
            return CharacterSplitPreTokenizer(kind: .digits, behavior: individual ? .isolated : .contiguous)
        case "Split":
            try c.allow(["pattern", "behavior", "invert"])
            return try SplitPreTokenizer(c, behavior: try behavior(c, default: nil))
        case "Metaspace":
            try c.allow(["replacement", "prepend_scheme", "split", "add_prefix_space", "str_rep"])
            return try MetaspacePreTokenizer(c)
        case "Sequence":
            try c.allow(["pretokenizers"])
            return SequencePreTokenizer(steps: try c.requiredArray("pretokenizers").map(make))
        default:
            throw c.unsupportedType(supported: "ByteLevel, Whitespace, WhitespaceSplit, Split, Punctuation, Digits, Metaspace, BertPreTokenizer, Sequence")
        }
    }

    static func behavior(_ c: ComponentJSON, default d: SplitBehavior?) throws -> SplitBehavior {
        guard let name = try c.string("behavior") else {
            if let d { return d }
            throw RuEmbedError("\(c.place): \"behavior\" is missing")
        }
        guard let b = SplitBehavior(rawValue: name) else {
            throw RuEmbedError("\(c.place): behavior \"\(name)\" is not supported")
        }
        return b
    }

    /// Re-cuts every text piece: `find` appends the spans of one piece (covering it, in
    /// order, in absolute positions of `list.text`), then `behavior` turns them into pieces.
    static func split(_ list: inout PieceList, behavior: SplitBehavior, invert: Bool = false,
                      find: (UnsafeBufferPointer<UInt32>, Range<Int>, inout [MatchSpan]) -> Void) {
        var out: [PieceList.Piece] = []
        out.reserveCapacity(list.pieces.count * 4)
        var spans: [MatchSpan] = []
        list.text.scalars.withUnsafeBufferPointer { text in
            for piece in list.pieces {
                guard piece.isText else { out.append(piece); continue }
                spans.removeAll(keepingCapacity: true)
                find(text, piece.range, &spans)
                if invert { for k in spans.indices { spans[k].isMatch.toggle() } }
                apply(behavior, spans, to: &out)
            }
        }
        list.pieces = out
    }

    static func apply(_ behavior: SplitBehavior, _ spans: [MatchSpan], to out: inout [PieceList.Piece]) {
        func piece(_ l: Int32, _ u: Int32) -> PieceList.Piece {
            PieceList.Piece(lower: l, upper: u, token: -1, originalStart: 0, originalEnd: 0)
        }
        var merged: [(Int32, Int32)] = []
        switch behavior {
        case .removed:
            for s in spans where !s.isMatch { merged.append((s.lower, s.upper)) }
        case .isolated:
            for s in spans { merged.append((s.lower, s.upper)) }
        case .mergedWithPrevious:
            var previousMatch = false
            for s in spans {
                if s.isMatch && !previousMatch && !merged.isEmpty {
                    merged[merged.count - 1].1 = s.upper
                } else {
                    merged.append((s.lower, s.upper))
                }
                previousMatch = s.isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            var reversed: [(Int32, Int32)] = []
            for s in spans.reversed() {
                if s.isMatch && !previousMatch && !reversed.isEmpty {
                    reversed[reversed.count - 1].0 = s.lower
                } else {
                    reversed.append((s.lower, s.upper))
                }
                previousMatch = s.isMatch
            }
            merged = reversed.reversed()
        case .contiguous:
            var previousMatch = false
            for (k, s) in spans.enumerated() {
                if k > 0 && s.isMatch == previousMatch {
                    merged[merged.count - 1].1 = s.upper
                } else {
                    merged.append((s.lower, s.upper))
                }
                previousMatch = s.isMatch
            }
        }
        for (l, u) in merged where l < u { out.append(piece(l, u)) }
    }

    /// Spans for a per-scalar predicate: every matching scalar is a match of its own.
    @inline(__always)
    static func scalarMatches(_ text: UnsafeBufferPointer<UInt32>, _ range: Range<Int>, _ spans: inout [MatchSpan],
                              _ isMatch: (UInt32) -> Bool) {
        var last = range.lowerBound
        for i in range where isMatch(text[i]) {
            if last < i { spans.append(MatchSpan(lower: Int32(last), upper: Int32(i), isMatch: false)) }
            spans.append(MatchSpan(lower: Int32(i), upper: Int32(i + 1), isMatch: true))
            last = i + 1
        }
        if last < range.upperBound { spans.append(MatchSpan(lower: Int32(last), upper: Int32(range.upperBound), isMatch: false)) }
    }

    /// Spans for a scanner that returns the end of the match starting at a position
    /// (or nil): matches tile the text left to right, gaps between them are non-matches.
    static func scannedMatches(_ text: UnsafeBufferPointer<UInt32>, _ range: Range<Int>, _ spans: inout [MatchSpan],
                               _ matchEnd: (Int) -> Int?) {
        var last = range.lowerBound
        var i = range.lowerBound
        while i < range.upperBound {
            if let end = matchEnd(i), end > i {
                if last < i { spans.append(MatchSpan(lower: Int32(last), upper: Int32(i), isMatch: false)) }
                spans.append(MatchSpan(lower: Int32(i), upper: Int32(end), isMatch: true))
                i = end
                last = end
            } else {
                i += 1
            }
        }
        if last < range.upperBound { spans.append(MatchSpan(lower: Int32(last), upper: Int32(range.upperBound), isMatch: false)) }
    }
}

struct SequencePreTokenizer: PreTokenizer {
    let steps: [PreTokenizer]
    // Each step only cuts pieces further: one step's boundaries survive the others.
    var splitsAtSpaces: Bool { steps.contains { $0.splitsAtSpaces } }
    var reach: Int { steps.map(\.reach).max() ?? 1 }
    func preTokenize(_ list: inout PieceList) {
        for step in steps { step.preTokenize(&list) }
    }
}
