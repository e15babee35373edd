import RuCore
/// UTF-8 bytes to Unicode scalar values, strictly or the way Python's
/// `bytes.decode("utf-8", errors="replace")` does.
package enum TextDecoding {
    /// Decodes `bytes`. Strict mode returns nil at the first invalid sequence; lossy mode
    /// writes one U+FFFD per maximal invalid subpart (the Unicode recommended practice,
    /// which CPython follows) and counts them in `replaced`.
    package static func scalars(_ bytes: UnsafeRawBufferPointer, lossy: Bool, into out: inout [UInt32], replaced: inout Int) -> Bool {
        out.removeAll(keepingCapacity: true)
        let n = bytes.count
        var i = 0
        while i < n {
            let b0 = bytes[i]
            if b0 < 0x80 {
                out.append(UInt32(b0)); i += 1; continue
            }
            // The expected length and the allowed range of the second byte, by lead byte.
            var need = 0
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch b0 {
            case 0xC2...0xDF: need = 1
            case 0xE0: need = 2; lo = 0xA0
            case 0xE1...0xEC, 0xEE, 0xEF: need = 2
            case 0xED: need = 2; hi = 0x9F
            case 0xF0: need = 3; lo = 0x90
            case 0xF1...0xF3: need = 3
            case 0xF4: need = 3; hi = 0x8F
            default: need = 0
            }
            var value: UInt32 = 0
            var consumed = 1
            var valid = need > 0
            if valid {
                value = UInt32(b0) & (need == 1 ? 0x1F : need == 2 ? 0x0F : 0x07)
                for k in 1...need {
                    guard i + k < n else { valid = false; break }
                    let b = bytes[i + k]
                    let okay = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF)
                    guard okay else { valid = false; break }
                    value = value << 6 | UInt32(b & 0x3F)
                    consumed += 1
                }
            }
            if valid {
                out.append(value)
                i += consumed
            } else {
                guard lossy else { return false }
                out.append(0xFFFD)
                replaced += 1
                i += consumed // the maximal subpart: the lead byte and the continuation bytes that fit
            }
        }
        return true
    }

    package static func scalars(_ string: String) -> [UInt32] {
        string.unicodeScalars.map(\.value)
    }
}
