/// Text conventions shared by every tool's tab-separated output.
package enum TSV {
    /// Escapes a field so it cannot break a TSV line: backslash, tab, newline and carriage
    /// return become `\\`, `\t`, `\n`, `\r` (the convention of PostgreSQL's text COPY and
    /// "linear TSV"). Everything else passes unchanged.
    package static func escape(_ field: String) -> String {
        guard field.utf8.contains(where: { $0 == 0x5C || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) else { return field }
        var out = ""
        out.reserveCapacity(field.utf8.count + 4)
        for scalar in field.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Reverses `escape`; an unknown escape keeps its backslash.
    package static func unescape(_ field: String) -> String {
        guard field.utf8.contains(0x5C) else { return field }
        var out = ""
        var pendingBackslash = false
        for scalar in field.unicodeScalars {
            if pendingBackslash {
                switch scalar {
                case "\\": out += "\\"
                case "t": out += "\t"
                case "n": out += "\n"
                case "r": out += "\r"
                default: out += "\\"; out.unicodeScalars.append(scalar)
                }
                pendingBackslash = false
            } else if scalar == "\\" {
                pendingBackslash = true
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        if pendingBackslash { out += "\\" }
        return out
    }
}

package enum NumberFormat {
    /// `value` with exactly `decimals` digits after the point, rounded half away from zero
    /// (no Foundation, no locale).
    package static func fixed(_ value: Double, decimals: Int = 6) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf") }
        var scale: Int64 = 1
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * Double(scale)).rounded()
        guard scaled < 9.0e18 else { return "\(value)" }
        let n = Int64(scaled)
        let integer = n / scale, fraction = n % scale
        var fractionText = String(fraction)
        fractionText = String(repeating: "0", count: decimals - fractionText.count) + fractionText
        let sign = value < 0 && n != 0 ? "-" : ""
        return decimals == 0 ? "\(sign)\(integer)" : "\(sign)\(integer).\(fractionText)"
    }

    /// The shortest text that reads back as the same Float (Swift's own algorithm).
    package static func shortest(_ value: Float) -> String {
        value.description
    }
}

/// Lower-case hex of bytes (a digest): what the hub's etags and the streams' metadata hold.
package func hexString<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
    return String(decoding: out, as: UTF8.self)
}
