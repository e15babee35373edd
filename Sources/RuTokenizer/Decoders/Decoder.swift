import RuCore
/// A decoder turns token strings back into text.
package protocol TokenDecoder: Sendable {
    func decode(_ tokens: [[UInt8]]) -> String
}

enum Decoders {
    /// The decoder, or the reason there is none: an unsupported decoder only fails when
    /// something is decoded, since encoding does not need it.
    static func make(_ json: JSONValue) throws -> TokenDecoder {
        let c = try ComponentJSON(json, family: "decoder")
        switch c.type {
        case "ByteLevel":
            try c.allow(["add_prefix_space", "trim_offsets", "use_regex"])
            return ByteLevelDecoder()
        case "WordPiece":
            try c.allow(["prefix", "cleanup"])
            return WordPieceDecoder(prefix: Array((try c.string("prefix") ?? "##").utf8), cleanup: try c.bool("cleanup", default: true))
        case "Metaspace": return try MetaspaceDecoder(c)
        case "Replace": return try ReplaceDecoder(c)
        case "ByteFallback": try c.allow([]); return ByteFallbackDecoder()
        case "Fuse": try c.allow([]); return FuseDecoder()
        case "Strip": return try StripDecoder(c)
        case "Sequence":
            try c.allow(["decoders"])
            return SequenceDecoder(steps: try c.requiredArray("decoders").map { json in
                let step = try make(json)
                guard let chained = step as? ChainDecoder else {
                    throw RuEmbedError("decoder Sequence: \(json["type"]?.stringValue ?? "?") inside a Sequence is not supported")
                }
                return chained
            })
        default:
            throw c.unsupportedType(supported: "ByteLevel, WordPiece, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence")
        }
    }
}

/// Maps byte stand-ins back to bytes (a token with any other character is kept as its
/// own UTF-8) and decodes the bytes with U+FFFD for invalid sequences.
struct ByteLevelDecoder: TokenDecoder {
    func decode(_ tokens: [[UInt8]]) -> String {
        var bytes: [UInt8] = []
        var mapped: [UInt8] = []
        for token in tokens {
            mapped.removeAll(keepingCapacity: true)
            var allMapped = true
            for scalar in String(decoding: token, as: UTF8.self).unicodeScalars {
                guard let b = ByteAlphabet.byte(for: scalar.value) else { allMapped = false; break }
                mapped.append(b)
            }
            bytes.append(contentsOf: allMapped ? mapped : token)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Joins WordPiece tokens: "##" pieces glue to the previous one, others get a space; the
/// optional cleanup removes the space before punctuation and English contractions.
struct WordPieceDecoder: TokenDecoder {
    let prefix: [UInt8]
    let cleanup: Bool

    static let cleanups: [([UInt8], [UInt8])] = [
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
        (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ].map { (Array($0.0.utf8), Array($0.1.utf8)) }

    func decode(_ tokens: [[UInt8]]) -> String {
        var out: [UInt8] = []
        for (i, token) in tokens.enumerated() {
            var t = token
            if i != 0 {
                if !prefix.isEmpty && t.starts(with: prefix) { t.removeFirst(prefix.count) } else { t.insert(0x20, at: 0) }
            }
            if cleanup {
                for (from, to) in WordPieceDecoder.cleanups { t = replaceAll(t, from, to) }
            }
            out.append(contentsOf: t)
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func replaceAll(_ s: [UInt8], _ from: [UInt8], _ to: [UInt8]) -> [UInt8] {
        guard s.count >= from.count else { return s }
        var out: [UInt8] = []
        var i = 0
        while i < s.count {
            if i + from.count <= s.count && s[i..<i + from.count].elementsEqual(from) {
                out.append(contentsOf: to)
                i += from.count
            } else {
                out.append(s[i]); i += 1
            }
        }
        return out
    }
}
