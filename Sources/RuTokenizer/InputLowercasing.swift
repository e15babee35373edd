/// sentence_bert_config.json's `do_lower_case`: sentence-transformers lowercases every text
/// (prompt included) with Python's `str.lower()` before the tokenizer sees it. Both ru-embed
/// and ru-tok lowercase here, so their tokens agree.
///
/// `str.lower()` is the full Unicode lowercase mapping (İ → i̇) plus one context rule that
/// Swift's `String.lowercased()` lacks: a capital sigma that ends a word becomes final ς
/// ("ΟΔΟΣ" → "οδος", where Swift gives "οδοσ").
package enum InputLowercasing {
    /// `text.lower()` as Python computes it.
    package static func lower(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        for (i, scalar) in scalars.enumerated() {
            if scalar == "\u{03A3}" {
                out.append(endsAWord(scalars, at: i) ? "\u{03C2}" : "\u{03C3}")
            } else if scalar.properties.changesWhenLowercased {
                out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// Unicode's Final_Sigma condition, as CPython tests it: a cased letter comes before
    /// (case-ignorable scalars skipped) and none comes after (the same skipped).
    private static func endsAWord(_ s: [Unicode.Scalar], at i: Int) -> Bool {
        var j = i - 1
        while j >= 0 && s[j].properties.isCaseIgnorable { j -= 1 }
        guard j >= 0 && s[j].properties.isCased else { return false }
        j = i + 1
        while j < s.count && s[j].properties.isCaseIgnorable { j += 1 }
        return j == s.count || !s[j].properties.isCased
    }

    /// UTF-8 text lowercased as above. Invalid UTF-8 gives nil, or with `lossy` a U+FFFD for
    /// each bad sequence (the one the tokenizer would put there), counted in `replaced`.
    package static func lower(utf8: UnsafeRawBufferPointer, lossy: Bool, replaced: inout Int) -> String? {
        let bytes = utf8.bindMemory(to: UInt8.self)
        if let text = String(validating: bytes, as: UTF8.self) { return lower(text) }
        guard lossy else { return nil }
        let decoded = String(decoding: bytes, as: UTF8.self)
        replaced += decoded.unicodeScalars.count { $0 == "\u{FFFD}" } - replacementCharacters(in: utf8)
        return lower(decoded)
    }

    /// U+FFFD already in the input (EF BF BD): not replacements of ours.
    static func replacementCharacters(in utf8: UnsafeRawBufferPointer) -> Int {
        var count = 0, k = 0
        while k + 2 < utf8.count {
            if utf8[k] == 0xEF && utf8[k + 1] == 0xBF && utf8[k + 2] == 0xBD { count += 1; k += 3 } else { k += 1 }
        }
        return count
    }
}

extension Tokenizer {
    /// `encode(utf8:…)`, with the text lowercased first when `lowercase` (do_lower_case): the
    /// one path ru-embed and ru-tok share, so their tokens agree. Invalid UTF-8 is refused, or
    /// with `lossy` replaced by U+FFFD (counted) before lowercasing.
    package func encode(utf8 text: UnsafeRawBufferPointer, lowercase: Bool, prompt: [UInt32], lossy: Bool, replaced: inout Int,
                        maxLength: Int?, specialTokensAsText: Bool = false, workspace: EncodeWorkspace,
                        scalars: inout [UInt32], into out: inout Encoding) -> Bool {
        guard lowercase else {
            return encode(utf8: text, prompt: prompt, lossy: lossy, replaced: &replaced, maxLength: maxLength,
                          specialTokensAsText: specialTokensAsText, workspace: workspace, scalars: &scalars, into: &out)
        }
        guard var lower = InputLowercasing.lower(utf8: text, lossy: lossy, replaced: &replaced) else { return false }
        var none = 0
        return lower.withUTF8 { bytes in
            encode(utf8: UnsafeRawBufferPointer(bytes), prompt: prompt, lossy: false, replaced: &none, maxLength: maxLength,
                   specialTokensAsText: specialTokensAsText, workspace: workspace, scalars: &scalars, into: &out)
        }
    }
}
