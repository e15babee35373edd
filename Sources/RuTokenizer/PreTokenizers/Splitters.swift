import RuCore
/// `\w+|[^\w\s]+` with Rust regex's Unicode classes; whitespace is dropped.
struct WhitespacePreTokenizer: PreTokenizer {
    var splitsAtSpaces: Bool { true }
    func preTokenize(_ list: inout PieceList) {
        PreTokenizers.split(&list, behavior: .removed, invert: true) { text, range, spans in
            PreTokenizers.scannedMatches(text, range, &spans) { i in
                let f = UnicodeClasses.flags(text[i])
                if !f.isDisjoint(with: .word) {
                    var j = i + 1
                    while j < range.upperBound && !UnicodeClasses.flags(text[j]).isDisjoint(with: .word) { j += 1 }
                    return j
                }
                if f.contains(.whiteSpace) { return nil }
                var j = i + 1
                while j < range.upperBound {
                    let g = UnicodeClasses.flags(text[j])
                    if !g.isDisjoint(with: .word) || g.contains(.whiteSpace) { break }
                    j += 1
                }
                return j
            }
        }
    }
}

/// Splits on White_Space, dropping it.
struct WhitespaceSplitPreTokenizer: PreTokenizer {
    var splitsAtSpaces: Bool { true }
    func preTokenize(_ list: inout PieceList) {
        PreTokenizers.split(&list, behavior: .removed) { text, range, spans in
            PreTokenizers.scalarMatches(text, range, &spans) { UnicodeClasses.isWhitespace($0) }
        }
    }
}

/// BERT: split on whitespace (dropped), then every punctuation character on its own.
struct BertPreTokenizer: PreTokenizer {
    var splitsAtSpaces: Bool { true }
    func preTokenize(_ list: inout PieceList) {
        PreTokenizers.split(&list, behavior: .removed) { text, range, spans in
            PreTokenizers.scalarMatches(text, range, &spans) { UnicodeClasses.isWhitespace($0) }
        }
        PreTokenizers.split(&list, behavior: .isolated) { text, range, spans in
            PreTokenizers.scalarMatches(text, range, &spans) { UnicodeClasses.has($0, [.punctuation, .asciiPunctuation]) }
        }
    }
}

/// Punctuation (ASCII punctuation or P*) and Digits (N*) splitting.
struct CharacterSplitPreTokenizer: PreTokenizer {
    enum Kind { case punctuation, digits }
    let kind: Kind
    let behavior: SplitBehavior

    func preTokenize(_ list: inout PieceList) {
        let flags: ScalarFlags = kind == .punctuation ? [.punctuation, .asciiPunctuation] : .number
        PreTokenizers.split(&list, behavior: behavior) { text, range, spans in
            PreTokenizers.scalarMatches(text, range, &spans) { UnicodeClasses.has($0, flags) }
        }
    }
}

/// Split on a literal string, or on the GPT-2 pattern given as a regex. Other regexes
/// would need a regex engine with Oniguruma's semantics and are refused by name.
struct SplitPreTokenizer: PreTokenizer {
    enum Pattern { case literal([UInt32]), gpt2 }
    let pattern: Pattern
    let behavior: SplitBehavior
    let invert: Bool

    /// The GPT-2 pattern never matches across a letter followed by a space; isolated or
    /// removed matches keep that cut.
    var splitsAtSpaces: Bool {
        if case .gpt2 = pattern { return !invert && (behavior == .isolated || behavior == .removed) }
        return false
    }
    var reach: Int {
        if case .literal(let needle) = pattern { return max(needle.count, 1) }
        return 1
    }

    init(_ c: ComponentJSON, behavior: SplitBehavior) throws {
        guard let p = c.value("pattern") else { throw RuEmbedError("\(c.place): \"pattern\" is missing") }
        if let s = p["String"]?.stringValue {
            pattern = .literal(UTF8Encoding.scalars(s))
        } else if let r = p["Regex"]?.stringValue {
            guard r == GPT2Pattern.source else {
                throw RuEmbedError("\(c.place): regex pattern \(JSONValue.string(r).serialized) is not supported (only literal String patterns and the GPT-2 pattern)")
            }
            pattern = .gpt2
        } else {
            throw RuEmbedError("\(c.place): \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}")
        }
        self.behavior = behavior
        invert = try c.bool("invert", default: false)
    }

    func preTokenize(_ list: inout PieceList) {
        switch pattern {
        case .gpt2:
            PreTokenizers.split(&list, behavior: behavior, invert: invert) { text, range, spans in
                var i = range.lowerBound
                while i < range.upperBound {
                    let j = GPT2Pattern.matchEnd(UnsafeBufferPointer(rebasing: text[..<range.upperBound]), i, range.upperBound)
                    spans.append(MatchSpan(lower: Int32(i), upper: Int32(j), isMatch: true))
                    i = j
                }
            }
        case .literal(let needle):
            PreTokenizers.split(&list, behavior: behavior, invert: invert) { text, range, spans in
                guard !needle.isEmpty else {
                    spans.append(MatchSpan(lower: Int32(range.lowerBound), upper: Int32(range.upperBound), isMatch: false))
                    return
                }
                PreTokenizers.scannedMatches(text, range, &spans) { i in
                    let end = i + needle.count
                    guard end <= range.upperBound else { return nil }
                    for k in 0..<needle.count where text[i + k] != needle[k] { return nil }
                    return end
                }
            }
        }
    }
}

/// SentencePiece-style: spaces become the replacement (▁), a ▁ is put in front
/// (always, only for the first piece of the text, or never), then the text is cut
/// before every ▁.
struct MetaspacePreTokenizer: PreTokenizer {
    enum Prepend: String { case always, first, never }
    let replacement: UInt32
    let prepend: Prepend
    /// Spaces become ▁ and pieces are cut before every ▁.
    var splitsAtSpaces: Bool { split }
    let split: Bool

    init(_ c: ComponentJSON) throws {
        let r = UTF8Encoding.scalars(try c.string("replacement") ?? "\u{2581}")
        guard r.count == 1 else { throw RuEmbedError("\(c.place): \"replacement\" must be one character") }
        replacement = r[0]
        prepend = Prepend(rawValue: try MetaspaceDecoder.prependScheme(c))!
        split = try c.bool("split", default: true)
    }

    func preTokenize(_ list: inout PieceList) {
        var out = PieceList()
        var scratch = NormalizedText()
        for piece in list.pieces {
            guard piece.isText else {
                out.appendToken(of: piece)
                continue
            }
            scratch = list.text.slice(piece.range)
            scratch.map { v, emit in emit(v == 0x20 ? replacement : v) }
            let wantsPrefix = prepend == .always || (prepend == .first && scratch.starts.first == 0)
            if wantsPrefix && scratch.scalars.first != replacement { scratch.prepend([replacement]) }
            out.appendText(scratch, 0..<scratch.count)
        }
        if split {
            let r = replacement
            PreTokenizers.split(&out, behavior: .mergedWithNext) { text, range, spans in
                PreTokenizers.scalarMatches(text, range, &spans) { $0 == r }
            }
        }
        list = out
    }
}
