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
        if let scheme = try c.string("prepend_scheme") {
            guard ["always", "first", "never"].contains(scheme) else { throw RuEmbedError("\(c.place): prepend_scheme \"\(scheme)\" is not supported") }
            dropInFirst = scheme != "never"
        } else {
            dropInFirst = try c.bool("add_prefix_space", default: true)
        }
        _ = try c.optionalBool("split")
    }

    func chain(_ tokens: [[UInt8]]) -> [[UInt8]] {
        tokens.enumerated().map { i, token in
            ChainDecoders.replaceAll(token, replacement, i == 0 && dropInFirst ? [] : [0x20])
        }
    }
}
