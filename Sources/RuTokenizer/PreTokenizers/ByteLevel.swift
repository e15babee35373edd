import RuCore
/// GPT-2's byte-level alphabet: every byte gets a printable stand-in character, so any
/// UTF-8 text becomes a string over 256 symbols and nothing is ever unknown.
package enum ByteAlphabet {
    /// Byte → scalar of its stand-in.
    package static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// Stand-in scalar → byte, or -1.
    package static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 512)
        for (b, s) in scalarForByte.enumerated() { table[Int(s)] = Int16(b) }
        return table
    }()

    @inline(__always)
    package static func byte(for scalar: UInt32) -> UInt8? {
        guard scalar < 512 else { return nil }
        let b = byteForScalar[Int(scalar)]
        return b < 0 ? nil : UInt8(b)
    }
}

/// The GPT-2 split pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// as a scanner, with Oniguruma's reading of the classes: `\p{N}` is Nd, Nl and No;
/// `\s` is White_Space (so NBSP and VT are spaces, U+001C is not); format characters
/// (ZWJ, ZWSP, BOM) and combining marks are neither letters nor numbers nor spaces.
enum GPT2Pattern {
    static let source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    @inline(__always)
    static func kind(_ v: UInt32) -> UInt8 {
        // 1 letter, 2 number, 3 space, 0 other
        if v < 0x80 {
            if v >= 0x61 && v <= 0x7A || v >= 0x41 && v <= 0x5A { return 1 }
            if v >= 0x30 && v <= 0x39 { return 2 }
            if v == 0x20 || v >= 0x09 && v <= 0x0D { return 3 }
            return 0
        }
        let f = UnicodeClasses.flags(v)
        if f.contains(.letter) { return 1 }
        if f.contains(.number) { return 2 }
        if f.contains(.whiteSpace) { return 3 }
        return 0
    }

    /// The end of the match that starts at `i` (the pattern matches every position).
    @inline(__always)
    static func matchEnd(_ t: UnsafeBufferPointer<UInt32>, _ i: Int, _ end: Int) -> Int {
        let c = t[i]
        if c == 0x27, i + 1 < end { // contractions, case-sensitive
            let d = t[i + 1]
            if d == 0x73 || d == 0x74 || d == 0x6D || d == 0x64 { return i + 2 } // 's 't 'm 'd
            if i + 2 < end {
                let e = t[i + 2]
                if (d == 0x72 && e == 0x65) || (d == 0x76 && e == 0x65) || (d == 0x6C && e == 0x6C) { return i + 3 } // 're 've 'll
            }
        }
        // ` ?X+` for the three classes: an optional U+0020 joins the run that follows it.
        var start = i
        var k = kind(c)
        if c == 0x20, i + 1 < end {
            let next = kind(t[i + 1])
            if next != 3 { start = i + 1; k = next }
        }
        if k != 3 {
            var j = start + 1
            while j < end && kind(t[j]) == k { j += 1 }
            return j
        }
        // A run of spaces: `\s+(?!\S)` leaves the last space to the next word when one
        // follows, unless the run is that single space (then `\s+` takes it).
        var j = i + 1
        while j < end && kind(t[j]) == 3 { j += 1 }
        if j == end || j - i == 1 { return j }
        return j - 1
    }
}

struct ByteLevelPreTokenizer: PreTokenizer {
    let addPrefixSpace: Bool
    let useRegex: Bool
    /// With the GPT-2 pattern, a letter followed by a space always ends a piece.
    var splitsAtSpaces: Bool { useRegex }

    func preTokenize(_ list: inout PieceList) {
        var out = PieceList()
        out.text.scalars.reserveCapacity(list.text.count * 2)
        out.text.starts.reserveCapacity(list.text.count * 2)
        out.text.ends.reserveCapacity(list.text.count * 2)
        out.pieces.reserveCapacity(list.text.count / 3)
        var scratch = NormalizedText()
        let text = list.text
        for piece in list.pieces {
            guard piece.isText else {
                out.appendToken(of: piece)
                continue
            }
            scratch.removeAll()
            let r = piece.range
            if addPrefixSpace && text.scalars[r.lowerBound] != 0x20 {
                scratch.append(0x20, start: text.starts[r.lowerBound], end: text.ends[r.lowerBound])
            }
            scratch.scalars.append(contentsOf: text.scalars[r])
            scratch.starts.append(contentsOf: text.starts[r])
            scratch.ends.append(contentsOf: text.ends[r])
            scratch.scalars.withUnsafeBufferPointer { t in
                let n = t.count
                var i = 0
                while i < n {
                    let j = useRegex ? GPT2Pattern.matchEnd(t, i, n) : n
                    appendBytes(of: scratch, i..<j, to: &out)
                    i = j
                }
            }
        }
        list = out
    }

    /// Appends scalars `range` of `source` as one piece of byte stand-ins.
    @inline(__always)
    private func appendBytes(of source: NormalizedText, _ range: Range<Int>, to out: inout PieceList) {
        let lower = Int32(out.text.count)
        let table = ByteAlphabet.scalarForByte
        for i in range {
            let v = source.scalars[i], s = source.starts[i], e = source.ends[i]
            if v < 0x80 {
                out.text.append(table[Int(v)], start: s, end: e)
            } else if v < 0x800 {
                out.text.append(table[Int(0xC0 | (v >> 6))], start: s, end: e)
                out.text.append(table[Int(0x80 | (v & 0x3F))], start: s, end: e)
            } else if v < 0x10000 {
                out.text.append(table[Int(0xE0 | (v >> 12))], start: s, end: e)
                out.text.append(table[Int(0x80 | ((v >> 6) & 0x3F))], start: s, end: e)
                out.text.append(table[Int(0x80 | (v & 0x3F))], start: s, end: e)
            } else {
                out.text.append(table[Int(0xF0 | (v >> 18))], start: s, end: e)
                out.text.append(table[Int(0x80 | ((v >> 12) & 0x3F))], start: s, end: e)
                out.text.append(table[Int(0x80 | ((v >> 6) & 0x3F))], start: s, end: e)
                out.text.append(table[Int(0x80 | (v & 0x3F))], start: s, end: e)
            }
        }
        out.pieces.append(PieceList.Piece(lower: lower, upper: Int32(out.text.count), token: -1, originalStart: 0, originalEnd: 0))
    }
}
