import RuCore
/// A post-processor adds the special tokens around an encoded text (`<s> … </s>`,
/// `[CLS] … [SEP]`) and may adjust offsets. Only single texts are encoded here.
package protocol PostProcessor: Sendable {
    /// How many tokens `process` adds to a single text (truncation leaves room for them).
    var addedTokenCount: Int { get }
    func process(_ encoding: inout Encoding, vocabulary: TokenVocabulary)
}

enum PostProcessors {
    static func make(_ json: JSONValue, vocabulary: TokenVocabulary) throws -> PostProcessor {
        let c = try ComponentJSON(json, family: "post_processor")
        switch c.type {
        case "RobertaProcessing":
            try c.allow(["sep", "cls", "trim_offsets", "add_prefix_space"])
            return WrapProcessor(cls: try token(c, "cls"), sep: try token(c, "sep"),
                                 trim: try c.bool("trim_offsets", default: true) ? ByteLevelTrim(addPrefixSpace: try c.bool("add_prefix_space", default: true)) : nil)
        case "BertProcessing":
            try c.allow(["sep", "cls"])
            return WrapProcessor(cls: try token(c, "cls"), sep: try token(c, "sep"), trim: nil)
        case "ByteLevel":
            try c.allow(["add_prefix_space", "trim_offsets", "use_regex"])
            return ByteLevelProcessor(trim: try c.bool("trim_offsets", default: true) ? ByteLevelTrim(addPrefixSpace: try c.bool("add_prefix_space", default: true)) : nil)
        case "TemplateProcessing":
            try c.allow(["single", "pair", "special_tokens"])
            return try TemplateProcessor(c)
        case "Sequence":
            try c.allow(["processors"])
            return SequenceProcessor(steps: try c.requiredArray("processors").map { try make($0, vocabulary: vocabulary) })
        default:
            throw c.unsupportedType(supported: "RobertaProcessing, BertProcessing, TemplateProcessing, ByteLevel, Sequence")
        }
    }

    /// ["<s>", 0]
    static func token(_ c: ComponentJSON, _ key: String) throws -> UInt32 {
        guard let pair = c.value(key)?.arrayValue, pair.count == 2, pair[0].stringValue != nil,
              let id = ConfigValues.integer(pair[1], 0...Int(UInt32.max)) else {
            throw RuEmbedError("\(c.place): \"\(key)\" must be [token, id] with a token id of 0...\(UInt32.max)")
        }
        return UInt32(id)
    }
}

/// The offset trimming of byte-level tokens: offsets leave out the spaces (Ġ) a token
/// begins or ends with, except the prefix space the pre-tokenizer itself added.
struct ByteLevelTrim {
    let addPrefixSpace: Bool

    func apply(_ e: inout Encoding, vocabulary: TokenVocabulary) {
        for i in 0..<e.count {
            let matched = e.matchedSpaces[i]
            let (lead, trail) = matched >= 0 ? (Int(matched >> 16), Int(matched & 0xFFFF)) : vocabulary.spaceCounts(e.ids[i])
            guard lead > 0 || trail > 0 else { continue }
            if lead > 0 {
                var leading = Int32(lead)
                let isFirst = i == 0 || e.starts[i] == 0
                if isFirst && addPrefixSpace && leading == 1 { leading = 0 }
                e.starts[i] = min(e.starts[i] + leading, e.ends[i])
            }
            if trail > 0 && e.ends[i] >= Int32(trail) {
                e.ends[i] = max(e.ends[i] - Int32(trail), e.starts[i])
            }
        }
    }
}

/// RoBERTa's `<s> A </s>` and BERT's `[CLS] A [SEP]`.
struct WrapProcessor: PostProcessor {
    let cls: UInt32
    let sep: UInt32
    let trim: ByteLevelTrim?
    var addedTokenCount: Int { 2 }

    func process(_ e: inout Encoding, vocabulary: TokenVocabulary) {
        trim?.apply(&e, vocabulary: vocabulary)
        var out = Encoding()
        out.append(cls, start: 0, end: 0, special: true)
        for i in 0..<e.count { out.append(e.ids[i], start: e.starts[i], end: e.ends[i], special: e.special[i], matchedSpaces: e.matchedSpaces[i]) }
        out.append(sep, start: 0, end: 0, special: true)
        e = out
    }
}

struct ByteLevelProcessor: PostProcessor {
    let trim: ByteLevelTrim?
    var addedTokenCount: Int { 0 }
    func process(_ e: inout Encoding, vocabulary: TokenVocabulary) {
        trim?.apply(&e, vocabulary: vocabulary)
    }
}

struct SequenceProcessor: PostProcessor {
    let steps: [PostProcessor]
    var addedTokenCount: Int { steps.reduce(0) { $0 + $1.addedTokenCount } }
    func process(_ e: inout Encoding, vocabulary: TokenVocabulary) {
        for step in steps { step.process(&e, vocabulary: vocabulary) }
    }
}

/// A template such as `[CLS] $A [SEP]`: special tokens (each possibly several ids) around
/// the text. Only the single-text template is used; a pair template is read and checked.
struct TemplateProcessor: PostProcessor {
    enum Item { case special([UInt32]), sequence }
    let single: [Item]
    var addedTokenCount: Int {
        single.reduce(0) { n, item in if case .special(let ids) = item { return n + ids.count } else { return n } }
    }

    init(_ c: ComponentJSON) throws {
        var specials: [String: [UInt32]] = [:]
        if case .object(let pairs)? = c.value("special_tokens") {
            for (name, value) in pairs {
                let idRange = 0...Int(UInt32.max)
                guard let list = value["ids"]?.arrayValue else {
                    throw RuEmbedError("\(c.place): special token \(JSONValue.string(name).serialized) has no \"ids\"")
                }
                let ids = try list.map { v in
                    guard let id = ConfigValues.integer(v, idRange) else {
                        throw RuEmbedError("\(c.place): special token \(JSONValue.string(name).serialized): id \(ConfigValues.notInteger(v, idRange))")
                    }
                    return UInt32(id)
                }
                specials[name] = ids
            }
        }
        func items(_ key: String) throws -> [Item] {
            try c.requiredArray(key).map { piece in
                if let s = piece["SpecialToken"] {
                    guard let name = s["id"]?.stringValue, let ids = specials[name] else {
                        throw RuEmbedError("\(c.place): template token \(s.serialized) is not among special_tokens")
                    }
                    return .special(ids)
                }
                if piece["Sequence"] != nil { return .sequence }
                throw RuEmbedError("\(c.place): template piece \(piece.serialized) is not supported")
            }
        }
        single = try items("single")
        if c.value("pair") != nil { _ = try items("pair") }
        guard single.filter({ if case .sequence = $0 { return true } else { return false } }).count == 1 else {
            throw RuEmbedError("\(c.place): the single template must contain the sequence exactly once")
        }
    }

    func process(_ e: inout Encoding, vocabulary: TokenVocabulary) {
        var out = Encoding()
        for item in single {
            switch item {
            case .special(let ids):
                for id in ids { out.append(id, start: 0, end: 0, special: true) }
            case .sequence:
                for i in 0..<e.count { out.append(e.ids[i], start: e.starts[i], end: e.ends[i], special: e.special[i], matchedSpaces: e.matchedSpaces[i]) }
            }
        }
        e = out
    }
}
