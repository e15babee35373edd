import RuCore
/// Token strings by id, for the model's vocabulary and the added tokens together.
package struct TokenVocabulary: Sendable {
    /// UTF-8 of every token; empty where an id has no token.
    package let tokens: [[UInt8]]
    /// Leading and trailing byte-level spaces (Ġ) or White_Space of each token, for offset trimming.
    private let spaces: [UInt32]

    init(tokens: [[UInt8]]) {
        self.tokens = tokens
        var scalars: [UInt32] = []
        spaces = tokens.map { bytes in
            var replaced = 0
            _ = bytes.withUnsafeBytes { TextDecoding.scalars($0, lossy: true, into: &scalars, replaced: &replaced) }
            func isSpace(_ v: UInt32) -> Bool { v == 0x120 || UnicodeClasses.isWhitespace(v) }
            let lead = scalars.prefix(while: isSpace).count
            let trail = scalars.reversed().prefix(while: isSpace).count
            return UInt32(min(lead, 0xFFFF)) << 16 | UInt32(min(trail, 0xFFFF))
        }
    }

    package var count: Int { tokens.count }

    @inline(__always)
    func spaceCounts(_ id: UInt32) -> (Int, Int) {
        guard Int(id) < spaces.count else { return (0, 0) }
        let s = spaces[Int(id)]
        return (Int(s >> 16), Int(s & 0xFFFF))
    }

    package func token(_ id: UInt32) -> [UInt8]? {
        Int(id) < tokens.count && !tokens[Int(id)].isEmpty ? tokens[Int(id)] : nil
    }
}

/// Per-thread state for encoding: reuse one per thread, never share one between threads.
/// One thread uses a workspace at a time; it may move between threads (BatchEncoder's pool), hence
/// `@unchecked Sendable`.
package final class EncodeWorkspace: @unchecked Sendable {
    var model = ModelWorkspace()
    var pieces = PieceList()
    var splits: [AddedTokenMatcher.Split] = []
    var normalizedSplits: [AddedTokenMatcher.Split] = []
    var modelTokens: [ModelToken] = []
    /// Scalars of a part of a long text being checked (`Tokenizer.encode(utf8:...)`).
    var scratchScalars: [UInt32] = []
    /// Records cut to the maximum length.
    package var truncated = 0
    /// Texts tokenized by a prefix (`Tokenizer.encode(utf8:...)`), for tests.
    var prefixEncodes = 0
    package init() {}
    /// Characters dropped because a BPE without `unk_token` had no symbol for them.
    package var droppedUnknown: Int { model.droppedUnknown }
}

/// A Hugging Face tokenizer (`tokenizer.json`): added tokens, normalizer, pre-tokenizer,
/// model and post-processor, applied as the Rust `tokenizers` library applies them.
public final class Tokenizer: Sendable {
    package let model: TokenModel
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: PostProcessor?
    let decoder: TokenDecoder?
    let decoderProblem: String?
    let rawMatcher: AddedTokenMatcher
    let normalizedMatcher: AddedTokenMatcher
    package let addedTokens: [AddedToken]
    package let vocabulary: TokenVocabulary
    /// `truncation.max_length` of tokenizer.json, if truncation is on there.
    public let configuredMaxLength: Int?
    let truncateLeft: Bool
    private let specialIDs: Set<UInt32>
    /// Whether a long text cut to a maximum length may be tokenized by a prefix (see
    /// `encode(utf8:...)`), and how many scalars before a cut its effects may reach.
    let prefixSafe: Bool
    let prefixMargin: Int

    /// Parses the text of a `tokenizer.json`.
    public init(json: JSONValue) throws {
        guard case .object(let top) = json else { throw RuEmbedError("tokenizer.json is not a JSON object") }
        let known = ["version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer", "model", "post_processor", "decoder"]
        for (key, _) in top where !known.contains(key) { throw RuEmbedError("tokenizer.json: key \"\(key)\" is not supported") }
        guard let modelJSON = json["model"] else { throw RuEmbedError("tokenizer.json has no \"model\"") }
        model = try Models.make(modelJSON)
        normalizer = try json["normalizer"].flatMap { $0 == .null ? nil : try Normalizers.make($0) }
        preTokenizer = try json["pre_tokenizer"].flatMap { $0 == .null ? nil : try PreTokenizers.make($0) }

        var added: [AddedToken] = []
        let addedEntries = json["added_tokens"]?.arrayValue ?? []
        // The token table below has a slot for every id up to the largest: an id may leave
        // a gap after the vocabulary, but not ask for more slots than the file justifies.
        let idLimit = ConfigValues.tokenIDLimit(entries: model.tokenBytes.count + addedEntries.count)
        for entry in addedEntries {
            let c = try ComponentJSON(entry, family: "added token", defaultType: "AddedToken")
            try c.allow(["id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"])
            guard let id = try c.int("id", 0...idLimit) else { throw RuEmbedError("added token without \"id\"") }
            let special = try c.bool("special", default: false)
            added.append(AddedToken(id: UInt32(id), content: UTF8Encoding.scalars(try c.requiredString("content")),
                                    singleWord: try c.bool("single_word", default: false),
                                    leftStrip: try c.bool("lstrip", default: false), rightStrip: try c.bool("rstrip", default: false),
                                    normalized: try c.bool("normalized", default: !special), special: special))
        }
        addedTokens = added
        let raw = added.filter { !$0.normalized }
        rawMatcher = AddedTokenMatcher(tokens: raw, patterns: raw.map(\.content))
        let normalizedTokens = added.filter(\.normalized)
        let norm = normalizer
        let normalizedPatterns = normalizedTokens.map { token in
            var t = NormalizedText(scalars: token.content)
            norm?.normalize(&t)
            return t.scalars
        }
        normalizedMatcher = AddedTokenMatcher(tokens: normalizedTokens, patterns: normalizedPatterns)
        specialIDs = Set(added.filter(\.special).map(\.id))

        var tokens = model.tokenBytes
        for t in added {
            if Int(t.id) >= tokens.count { tokens += [[UInt8]](repeating: [], count: Int(t.id) + 1 - tokens.count) }
            tokens[Int(t.id)] = UTF8Encoding.bytes(t.content)
        }
        let vocab = TokenVocabulary(tokens: tokens)
        vocabulary = vocab
        postProcessor = try json["post_processor"].flatMap { $0 == .null ? nil : try PostProcessors.make($0, vocabulary: vocab) }

        if let d = json["decoder"], d != .null {
            do { decoder = try Decoders.make(d); decoderProblem = nil } catch let e as RuEmbedError { decoder = nil; decoderProblem = e.message }
        } else {
            decoder = nil; decoderProblem = nil
        }

        if let t = json["truncation"], t != .null {
            let c = try ComponentJSON(t, family: "truncation", defaultType: "truncation")
            try c.allow(["max_length", "strategy", "stride", "direction"])
            configuredMaxLength = try c.int("max_length")
            let direction = try c.string("direction") ?? "Right"
            guard direction == "Right" || direction == "Left" else { throw RuEmbedError("truncation: direction \"\(direction)\" is not supported") }
            truncateLeft = direction == "Left"
        } else {
            configuredMaxLength = nil
            truncateLeft = false
        }
        prefixSafe = !truncateLeft && (preTokenizer?.splitsAtSpaces ?? false) && (normalizer?.keepsLettersAndSpaces ?? true)
        let longestAdded = (rawMatcher.patterns + normalizedMatcher.patterns).map(\.count).max() ?? 0
        prefixMargin = 256 + 2 * longestAdded + 2 * (preTokenizer?.reach ?? 1)
    }

    /// Parses the bytes of a tokenizer.json. Throws `.invalidData` naming what is wrong.
    public convenience init(contentsOf bytes: [UInt8]) throws {
        let json: JSONValue
        do { json = try bytes.withUnsafeBytes { try JSONValue.parse($0) } } catch let e as JSONError {
            throw RuEmbedError("not valid JSON: \(e)")
        }
        try self.init(json: json)
    }

    /// Tokens the post-processor adds to one text.
    public var addedTokenCount: Int { postProcessor?.addedTokenCount ?? 0 }

    /// Whether `id` is a special added token (`decode` skips those).
    public func isSpecial(_ id: UInt32) -> Bool { specialIDs.contains(id) }

    /// Encodes the scalars of one text into `out`.
    ///
    /// - maxLength: the most tokens, special tokens included (nil: no limit); the text is
    ///   cut before the special tokens are added, so they are always there.
    /// - specialTokensAsText: special tokens written in the text are split as plain text.
    package func encode(_ text: UnsafeBufferPointer<UInt32>, maxLength: Int? = nil, specialTokensAsText: Bool = false,
                       workspace w: EncodeWorkspace, into out: inout Encoding) {
        tokenize(text, specialTokensAsText: specialTokensAsText, workspace: w, into: &out)
        finish(&out, maxLength: maxLength, workspace: w)
    }

    /// The tokens of the text before truncation and the post-processor.
    private func tokenize(_ text: UnsafeBufferPointer<UInt32>, specialTokensAsText: Bool, workspace w: EncodeWorkspace,
                          into out: inout Encoding) {
        out.removeAll()
        splitAndNormalize(text, specialTokensAsText: specialTokensAsText, workspace: w)
        preTokenizer?.preTokenize(&w.pieces)
        let list = w.pieces
        list.text.scalars.withUnsafeBufferPointer { scalars in
            for piece in list.pieces {
                if !piece.isText {
                    out.append(UInt32(piece.token), start: piece.originalStart, end: piece.originalEnd, matchedSpaces: piece.matchedSpaces)
                    continue
                }
                w.modelTokens.removeAll(keepingCapacity: true)
                model.tokenize(UnsafeBufferPointer(rebasing: scalars[piece.range]), into: &w.modelTokens, workspace: &w.model)
                let base = Int(piece.lower)
                for t in w.modelTokens {
                    out.append(t.id, start: list.text.starts[base + Int(t.lower)], end: list.text.ends[base + Int(t.upper) - 1])
                }
            }
        }
    }

    /// Truncation to `maxLength` (special tokens included), then the post-processor.
    private func finish(_ out: inout Encoding, maxLength: Int?, workspace w: EncodeWorkspace) {
        if let maxLength {
            let room = max(0, maxLength - addedTokenCount)
            if out.count > room {
                out.truncate(to: room, fromLeft: truncateLeft)
                w.truncated += 1
            }
        }
        postProcessor?.process(&out, vocabulary: vocabulary)
    }

    /// Encodes the UTF-8 `text` after the scalars `prompt` (offsets count the prompt's
    /// scalars first): the same tokens, offsets and truncation as decoding the whole text
    /// and calling `encode(_:maxLength:...)`, without holding the whole text as scalars
    /// when it will be cut to `maxLength` anyway. Returns false for invalid UTF-8 when not
    /// `lossy`; `replaced` counts the U+FFFD put in over the whole text.
    ///
    /// A long text (over `prefixBytes` × 2) is tokenized by a prefix that ends just before a
    /// space that follows a letter (P). Tokens are kept only up to an earlier letter + space
    /// cut B, at least `prefixMargin` scalars before P, and only when more than the room
    /// for text lies before B; else the prefix doubles. Why the tokens before B are those
    /// of the whole text: the pre-tokenizer ends a piece at every letter + space
    /// (`splitsAtSpaces`), so pieces before B are cut the same with or without the text after
    /// P; the normalizer acts within a few scalars and keeps letters and spaces
    /// (`keepsLettersAndSpaces`, so no Replace); an added token or a Split literal seen or
    /// missed at P changes the text within its length of P, inside the margin; the model
    /// tokenizes each piece alone. Truncation from the left, tokenizers without such a
    /// pre-tokenizer, and texts with no such cuts take the whole text.
    package func encode(utf8 text: UnsafeRawBufferPointer, prompt: [UInt32], lossy: Bool, replaced: inout Int,
                       maxLength: Int?, specialTokensAsText: Bool = false, workspace w: EncodeWorkspace,
                       scalars: inout [UInt32], into out: inout Encoding, prefixBytes: Int = Tokenizer.prefixBytes,
                       firstPrefix: Int? = nil) -> Bool {
        if let maxLength, prefixSafe, text.count > 2 * prefixBytes {
            let room = max(0, maxLength - addedTokenCount)
            // 64 bytes a token is ample for most text: one try, rarely a second. (Tests
            // start smaller, to cut near the last kept token and grow.)
            // (`room` comes from --max-length too: no product that can overflow.)
            let generous = room < text.count / 64 ? room * 64 : text.count
            var want = max(firstPrefix ?? max(prefixBytes, generous), 1)
            while want * 2 < text.count {
                let cut = Tokenizer.sequenceStart(text, at: want)
                var prefixReplaced = 0
                guard TextDecoding.scalars(UnsafeRawBufferPointer(rebasing: text[..<cut]), lossy: lossy, into: &w.scratchScalars,
                                           replaced: &prefixReplaced) else { return false }
                scalars.removeAll(keepingCapacity: true)
                scalars.append(contentsOf: prompt)
                scalars.append(contentsOf: w.scratchScalars)
                if let kept = stableTokens(scalars, after: prompt.count, room: room, specialTokensAsText: specialTokensAsText,
                                           workspace: w, into: &out) {
                    // The rest of the text is still checked (strict) or counted (lossy).
                    var restReplaced = 0
                    guard Tokenizer.scan(text, from: cut, lossy: lossy, replaced: &restReplaced, scratch: &w.scratchScalars) else { return false }
                    replaced += prefixReplaced + restReplaced
                    // More than `room` tokens lie before B: the whole text is cut too.
                    out.truncate(to: kept, fromLeft: false)
                    finish(&out, maxLength: maxLength, workspace: w)
                    w.prefixEncodes += 1
                    return true
                }
                want *= 2
            }
        }
        // The whole text: decoded in place, the prompt put in front (one copy of the scalars).
        guard TextDecoding.scalars(text, lossy: lossy, into: &scalars, replaced: &replaced) else { return false }
        if !prompt.isEmpty { scalars.insert(contentsOf: prompt, at: 0) }
        scalars.withUnsafeBufferPointer {
            encode($0, maxLength: maxLength, specialTokensAsText: specialTokensAsText, workspace: w, into: &out)
        }
        return true
    }

    /// Texts up to twice this many bytes are tokenized whole (tests pass less).
    package static let prefixBytes = 1 << 16

    /// Tokenizes `scalars` up to the last letter + space cut P and returns how many leading
    /// tokens end at or before an earlier cut B (≥ prefixMargin before P), when that is more
    /// than `room`; nil when the prefix is too short to tell.
    private func stableTokens(_ scalars: [UInt32], after promptCount: Int, room: Int, specialTokensAsText: Bool,
                              workspace w: EncodeWorkspace, into out: inout Encoding) -> Int? {
        func isCut(_ i: Int) -> Bool { i > promptCount && scalars[i] == 0x20 && Tokenizer.isPlainLetter(scalars[i - 1]) }
        guard var p = scalars.indices.last else { return nil }
        while p > promptCount && !isCut(p) { p -= 1 }
        guard p > promptCount else { return nil }
        var b = p - prefixMargin
        while b > promptCount && !isCut(b) { b -= 1 }
        guard b > promptCount else { return nil }
        scalars.withUnsafeBufferPointer {
            tokenize(UnsafeBufferPointer(rebasing: $0[..<p]), specialTokensAsText: specialTokensAsText, workspace: w, into: &out)
        }
        var kept = 0
        while kept < out.count && Int(out.ends[kept]) <= b { kept += 1 }
        return kept > room ? kept : nil
    }

    /// Letters that every supported normalizer keeps a letter and every supported
    /// pre-tokenizer ends a piece after when a space follows: ASCII letters and digits, and
    /// the Russian alphabet.
    @inline(__always)
    static func isPlainLetter(_ v: UInt32) -> Bool {
        switch v {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x401, 0x410...0x44F, 0x451: true
        default: false
        }
    }

    /// A position at or before `i` where a UTF-8 sequence (or an invalid byte) starts, so
    /// decoding both sides apart gives what decoding the whole gives, lossy counts included.
    static func sequenceStart(_ text: UnsafeRawBufferPointer, at i: Int) -> Int {
        var k = min(i, text.count)
        // At most 3 continuation bytes follow a lead byte; past that they are stray bytes,
        // each replaced on its own whichever side it lands.
        for _ in 0..<4 where k > 0 && k < text.count && text[k] & 0xC0 == 0x80 { k -= 1 }
        return k
    }

    /// Checks (strict) or counts the replacements in (lossy) `text[start...]`, a piece at a
    /// time, keeping nothing.
    static func scan(_ text: UnsafeRawBufferPointer, from start: Int, lossy: Bool, replaced: inout Int,
                     scratch: inout [UInt32]) -> Bool {
        var i = start
        while i < text.count {
            let end = i + (1 << 20) >= text.count ? text.count : max(sequenceStart(text, at: i + (1 << 20)), i + 1)
            guard TextDecoding.scalars(UnsafeRawBufferPointer(rebasing: text[i..<end]), lossy: lossy, into: &scratch,
                                       replaced: &replaced) else { return false }
            i = end
        }
        scratch = []
        return true
    }

    /// Convenience for tests and small jobs.
    public func encode(_ text: String, maxLength: Int? = nil, specialTokensAsText: Bool = false) -> Encoding {
        let scalars = UTF8Encoding.scalars(text)
        var out = Encoding()
        scalars.withUnsafeBufferPointer { encode($0, maxLength: maxLength, specialTokensAsText: specialTokensAsText, workspace: EncodeWorkspace(), into: &out) }
        return out
    }

    /// Added tokens out of the raw text, normalizer on the rest, then normalized added tokens:
    /// leaves the pieces in `w.pieces`.
    private func splitAndNormalize(_ text: UnsafeBufferPointer<UInt32>, specialTokensAsText: Bool, workspace w: EncodeWorkspace) {
        w.pieces.removeAll()
        let all = 0..<text.count
        if rawMatcher.isEmpty {
            w.splits.removeAll(keepingCapacity: true)
            if !all.isEmpty { w.splits.append(.init(lower: 0, upper: text.count, token: -1)) }
        } else {
            rawMatcher.split(text, all, skipSpecial: specialTokensAsText, into: &w.splits)
        }
        for split in w.splits {
            if split.token >= 0 {
                w.pieces.appendToken(rawMatcher.tokens[split.token].id, originalStart: Int32(split.lower), originalEnd: Int32(split.upper),
                                     matchedSpaces: Tokenizer.edgeSpaces(text, split.lower..<split.upper))
                continue
            }
            var normalized = NormalizedText(text, range: split.lower..<split.upper)
            normalizer?.normalize(&normalized)
            if normalizedMatcher.isEmpty {
                w.pieces.appendText(normalized, 0..<normalized.count)
                continue
            }
            normalized.scalars.withUnsafeBufferPointer { n in
                normalizedMatcher.split(n, 0..<n.count, skipSpecial: specialTokensAsText, into: &w.normalizedSplits)
            }
            for s in w.normalizedSplits {
                if s.token >= 0 {
                    normalized.scalars.withUnsafeBufferPointer { n in
                        w.pieces.appendToken(normalizedMatcher.tokens[s.token].id, originalStart: normalized.starts[s.lower], originalEnd: normalized.ends[s.upper - 1],
                                             matchedSpaces: Tokenizer.edgeSpaces(n, s.lower..<s.upper))
                    }
                } else {
                    w.pieces.appendText(normalized, s.lower..<s.upper)
                }
            }
        }
    }

    /// White_Space scalars at the start and the end of `text[range]`, packed lead << 16 | trail.
    static func edgeSpaces(_ text: UnsafeBufferPointer<UInt32>, _ range: Range<Int>) -> Int32 {
        var lead = 0, trail = 0
        while range.lowerBound + lead < range.upperBound && UnicodeClasses.isWhitespace(text[range.lowerBound + lead]) { lead += 1 }
        while range.upperBound - trail > range.lowerBound && UnicodeClasses.isWhitespace(text[range.upperBound - trail - 1]) { trail += 1 }
        return Int32(min(lead, 0x7FFF) << 16 | min(trail, 0xFFFF))
    }

    /// The token strings of `ids` (the model's or the added tokens'); unknown ids give "".
    public func tokenStrings(_ ids: [UInt32]) -> [String] {
        ids.map { String(decoding: vocabulary.token($0) ?? [], as: UTF8.self) }
    }

    /// Text back from ids, as Python's `tokenizer.decode(ids, skip_special_tokens=...)`.
    public func decode(_ ids: [UInt32], skipSpecialTokens: Bool = true) throws -> String {
        if let decoderProblem { throw RuEmbedError("cannot decode: \(decoderProblem)") }
        var tokens: [[UInt8]] = []
        for id in ids {
            guard let t = vocabulary.token(id) else { continue }
            if skipSpecialTokens && specialIDs.contains(id) { continue }
            tokens.append(t)
        }
        if let decoder { return decoder.decode(tokens) }
        return tokens.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
    }
}
