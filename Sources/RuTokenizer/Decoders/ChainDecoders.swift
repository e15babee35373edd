import RuCore
/// A decoder that maps the token list to a new list (Rust's `decode_chain`); the text is the
/// final list joined. Only these can be put in a decoder Sequence.
protocol ChainDecoder: TokenDecoder {
    func chain(_ tokens: [[UInt8]]) -> [[UInt8]]
}

extension ChainDecoder {
    func decode(_ tokens: [[UInt8]]) -> String {
        String(decoding: chain(tokens).joined(), as: UTF8.self)
    }
}

enum ChainDecoders {
    /// Every non-overlapping `from` in `s`, left to right, replaced by `to`.
    static func replaceAll(_ s: [UInt8], _ from: [UInt8], _ to: [UInt8]) -> [UInt8] {
        guard !from.isEmpty, s.count >= from.count else { return s }
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            if i + from.count <= s.count && s[i] == from[0] && s[i..<i + from.count].elementsEqual(from) {
                out.append(contentsOf: to)
                i += from.count
            } else {
                out.append(s[i]); i += 1
            }
        }
        return out
    }
}

/// Decoders applied one after the other on the token list.
struct SequenceDecoder: ChainDecoder {
    let steps: [ChainDecoder]
    func chain(_ tokens: [[UInt8]]) -> [[UInt8]] {
        steps.reduce(tokens) { $1.chain($0) }
    }
}

/// Replaces a literal in every token (the decoder side of SentencePiece's ▁).
struct ReplaceDecoder: ChainDecoder {
    let pattern: [UInt8]
    let content: [UInt8]

    init(_ c: ComponentJSON) throws {
        try c.allow(["pattern", "content"])
        pattern = UTF8Encoding.bytes(try c.literalPattern("pattern"))
        content = Array(try c.requiredString("content").utf8)
    }

    func chain(_ tokens: [[UInt8]]) -> [[UInt8]] { tokens.map { ChainDecoders.replaceAll($0, pattern, content) } }
}

/// Runs of `<0xNN>` tokens become the text of their bytes, or one U+FFFD per byte when the
/// bytes are not valid UTF-8 (as Rust, which also reads "<0x+F>" as a byte, through
/// `u8::from_str_radix`).
struct ByteFallbackDecoder: ChainDecoder {
    static func byte(_ t: [UInt8]) -> UInt8? {
        guard t.count == 6, t[0] == 0x3C, t[1] == 0x30, t[2] == 0x78, t[5] == 0x3E else { return nil }
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x41...0x46: c - 0x41 + 10
            case 0x61...0x66: c - 0x61 + 10
            default: nil
            }
        }
        if t[3] == 0x2B { return hex(t[4]) }
        guard let h = hex(t[3]), let l = hex(t[4]) else { return nil }
        return h << 4 | l
    }

    func chain(_ tokens: [[UInt8]]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var pending: [UInt8] = []
        func flush() {
            guard !pending.isEmpty else { return }
            var scalars: [UInt32] = [], replaced = 0
            if pending.withUnsafeBytes({ TextDecoding.scalars($0, lossy: false, into: &scalars, replaced: &replaced) }) {
                out.append(pending)
            } else {
                for _ in pending { out.append([0xEF, 0xBF, 0xBD]) }
            }
            pending.removeAll()
        }
        for t in tokens {
            if let b = ByteFallbackDecoder.byte(t) { pending.append(b); continue }
            flush()
            out.append(t)
        }
        flush()
        return out
    }
}

/// All tokens joined into one.
struct FuseDecoder: ChainDecoder {
    func chain(_ tokens: [[UInt8]]) -> [[UInt8]] { [Array(tokens.joined())] }
}

/// Removes up to `start` leading and `stop` trailing `content` characters from each token.
struct StripDecoder: ChainDecoder {
    let content: UInt32
    let start: Int
    let stop: Int

    init(_ c: ComponentJSON) throws {
        try c.allow(["content", "start", "stop"])
        let s = UTF8Encoding.scalars(try c.requiredString("content"))
        guard s.count == 1 else { throw RuEmbedError("\(c.place): \"content\" must be one character") }
        content = s[0]
        start = try c.int("start", 0...1_000_000) ?? 0
        stop = try c.int("stop", 0...1_000_000) ?? 0
    }

    func chain(_ tokens: [[UInt8]]) -> [[UInt8]] {
        tokens.map { token in
            let scalars = UTF8Encoding.scalars(String(decoding: token, as: UTF8.self))
            var lower = 0
            while lower < min(start, scalars.count) && scalars[lower] == content { lower += 1 }
            var upper = scalars.count
            // (Rust panics when `stop` exceeds the token's length; this stops at its start.)
            while scalars.count - upper < stop && upper > lower && scalars[upper - 1] == content { upper -= 1 }
            return UTF8Encoding.bytes(scalars[lower..<upper])
        }
    }
}
