import RuCore
/// SentencePiece's ▁ back to spaces. As in Rust, every ▁ of the first token is dropped
/// (not only a leading one) unless the prepend scheme is "never".
struct MetaspaceDecoder: ChainDecoder {
    let replacement: [UInt8]
    let dropInFirst: Bool

    init(_ c: ComponentJSON) throws {
        try c.allow(["replacement", "prepend_scheme", "split", "add_prefix_space", "str_rep"])
        let r = UTF8Encoding.scalars(try c.string("replacement") ?? "\u{2581}")
        guard r.count == 1 else { throw RuEmbedError("\(c.place): \"replacement\" must be one character") }
        replacement = UTF8Encoding.bytes(r)
        dropInFirst = try MetaspaceDecoder.prependScheme(c) != "never"
        _ = try c.optionalBool("split")
    }

    /// The prepend scheme as Rust reads it: "prepend_scheme", else "always"; the legacy
    /// `add_prefix_space: false` must come with "never" (Rust refuses it otherwise).
    static func prependScheme(_ c: ComponentJSON) throws -> String {
        let scheme = try c.string("prepend_scheme") ?? "always"
        guard ["always", "first", "never"].contains(scheme) else { throw RuEmbedError("\(c.place): prepend_scheme \"\(scheme)\" is not supported") }
        if try c.optionalBool("add_prefix_space") == false && scheme != "never" {
            throw RuEmbedError("\(c.place): add_prefix_space false does not match prepend_scheme \"\(scheme)\"")
        }
        return scheme
    }

    func chain(_ tokens: [[UInt8]]) -> [[UInt8]] {
        tokens.enumerated().map { i, token in
            ChainDecoders.replaceAll(token, replacement, i == 0 && dropInFirst ? [] : [0x20])
        }
    }
}
