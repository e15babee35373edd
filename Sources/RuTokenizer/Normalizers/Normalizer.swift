import RuCore
/// A normalizer rewrites text before it is split, keeping each scalar's alignment.
package protocol Normalizer: Sendable {
    func normalize(_ text: inout NormalizedText)
    /// Leaves letters and U+0020 spaces where they are and acts within a few scalars (case,
    /// Unicode forms, accents, cleaning; Prepend and Strip only at the ends of a text): the
    /// normalized text before a letter + space does not depend on what follows. Replace can
    /// remove or make spaces and letters anywhere, so it is not.
    var keepsLettersAndSpaces: Bool { get }
}

extension Normalizer {
    package var keepsLettersAndSpaces: Bool { true }
}

enum Normalizers {
    /// Builds the normalizer a `tokenizer.json` "normalizer" object describes.
    static func make(_ json: JSONValue) throws -> Normalizer {
        let c = try ComponentJSON(json, family: "normalizer")
        switch c.type {
        case "NFC": try c.allow([]); return UnicodeFormNormalizer(.nfc)
        case "NFD": try c.allow([]); return UnicodeFormNormalizer(.nfd)
        case "NFKC": try c.allow([]); return UnicodeFormNormalizer(.nfkc)
        case "NFKD": try c.allow([]); return UnicodeFormNormalizer(.nfkd)
        case "Lowercase": try c.allow([]); return LowercaseNormalizer()
        case "Strip":
            try c.allow(["strip_left", "strip_right"])
            return StripNormalizer(left: try c.bool("strip_left", default: true), right: try c.bool("strip_right", default: true))
        case "Replace": return try ReplaceNormalizer(c)
        case "Precompiled": return try PrecompiledNormalizer(c)
        case "Prepend":
            try c.allow(["prepend"])
            return PrependNormalizer(prefix: UTF8Encoding.scalars(try c.requiredString("prepend")))
        case "BertNormalizer":
            try c.allow(["clean_text", "handle_chinese_chars", "strip_accents", "lowercase"])
            let lowercase = try c.bool("lowercase", default: true)
            return BertNormalizer(cleanText: try c.bool("clean_text", default: true),
                                  handleChineseChars: try c.bool("handle_chinese_chars", default: true),
                                  stripAccents: try c.optionalBool("strip_accents") ?? lowercase,
                                  lowercase: lowercase)
        case "Sequence":
            try c.allow(["normalizers"])
            return SequenceNormalizer(steps: try c.requiredArray("normalizers").map(make))
        default:
            throw c.unsupportedType(supported: "NFC, NFD, NFKC, NFKD, Lowercase, Strip, Replace, Prepend, Precompiled, BertNormalizer, Sequence")
        }
    }
}

struct SequenceNormalizer: Normalizer {
    let steps: [Normalizer]
    var keepsLettersAndSpaces: Bool { steps.allSatisfy(\.keepsLettersAndSpaces) }
    func normalize(_ text: inout NormalizedText) {
        for step in steps { step.normalize(&text) }
    }
}

/// Rust's `char::to_lowercase` on every scalar: no context rules (final sigma stays σ).
struct LowercaseNormalizer: Normalizer {
    func normalize(_ text: inout NormalizedText) {
        text.map { v, emit in Lowercasing.lowercase(v, emit) }
    }
}

enum Lowercasing {
    @inline(__always)
    static func lowercase(_ v: UInt32, _ emit: (UInt32) -> Void) {
        if v < 0x80 {
            emit(v >= 0x41 && v <= 0x5A ? v + 0x20 : v)
        } else if v >= 0x430 && v <= 0x44F || v >= 0x450 && v <= 0x45F {
            emit(v) // Cyrillic lowercase: the common case, no table lookup
        } else if v >= 0x410 && v <= 0x42F {
            emit(v + 0x20)
        } else if v >= 0x400 && v <= 0x40F {
            emit(v + 0x50)
        } else {
            let scalar = Unicode.Scalar(v)!
            if !scalar.properties.changesWhenLowercased { emit(v); return }
            for s in scalar.properties.lowercaseMapping.unicodeScalars { emit(s.value) }
        }
    }
}

/// Removes White_Space at either end.
struct StripNormalizer: Normalizer {
    let left: Bool
    let right: Bool
    func normalize(_ text: inout NormalizedText) {
        var lower = 0, upper = text.count
        if left { while lower < upper && UnicodeClasses.isWhitespace(text.scalars[lower]) { lower += 1 } }
        if right { while upper > lower && UnicodeClasses.isWhitespace(text.scalars[upper - 1]) { upper -= 1 } }
        if lower != 0 || upper != text.count { text = text.slice(lower..<upper) }
    }
}

/// Puts a prefix in front of non-empty text.
struct PrependNormalizer: Normalizer {
    let prefix: [UInt32]
    func normalize(_ text: inout NormalizedText) { text.prepend(prefix) }
}

/// BERT's cleaning: drop NUL, U+FFFD and control characters (C* except tab, LF, CR),
/// turn whitespace into spaces, pad CJK ideographs with spaces, strip accents (NFD, then
/// drop Mn), lowercase — in that order, as the Rust library does.
struct BertNormalizer: Normalizer {
    let cleanText: Bool
    let handleChineseChars: Bool
    let stripAccents: Bool
    let lowercase: Bool

    static func isChinese(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B920...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }

    func normalize(_ text: inout NormalizedText) {
        if cleanText {
            text.map { v, emit in
                if v == 0x09 || v == 0x0A || v == 0x0D { emit(0x20); return }
                if v == 0 || v == 0xFFFD { return }
                let f = UnicodeClasses.flags(v)
                if f.contains(.other) { return }
                emit(f.contains(.whiteSpace) ? 0x20 : v)
            }
        }
        if handleChineseChars && text.scalars.contains(where: { $0 >= 0x3400 && BertNormalizer.isChinese($0) }) {
            text.map { v, emit in
                if BertNormalizer.isChinese(v) { emit(0x20); emit(v); emit(0x20) } else { emit(v) }
            }
        }
        if stripAccents {
            UnicodeForms.decompose(&text, compatibility: false)
            text.map { v, emit in if !UnicodeClasses.has(v, .nonspacingMark) { emit(v) } }
        }
        if lowercase {
            text.map { v, emit in Lowercasing.lowercase(v, emit) }
        }
    }
}
