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

    /// `escape(field)`'s UTF-8 appended to `out`.
    package static func appendEscaped(_ field: String, to out: inout [UInt8]) {
        out.append(contentsOf: escape(field).utf8)
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
        var bytes: [UInt8] = []
        appendFixed(value, decimals: decimals, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `fixed(value, decimals:)`'s UTF-8 appended to `out`, without making a String: ru-cluster
    /// prints a line per record, and the Strings of `fixed` and the line's interpolation were
    /// ~10 % of its second pass on the thread that reads (perf, bench/cluster, Zen 5).
    package static func appendFixed(_ value: Double, decimals: Int = 6, to out: inout [UInt8]) {
        guard value.isFinite else {
            out.append(contentsOf: (value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf")).utf8)
            return
        }
        var scale: Int64 = 1
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * Double(scale)).rounded()
        guard scaled < 9.0e18 else {
            out.append(contentsOf: "\(value)".utf8)
            return
        }
        let n = Int64(scaled)
        if value < 0 && n != 0 { out.append(UInt8(ascii: "-")) }
        appendInteger(n / scale, to: &out)
        guard decimals > 0 else { return }
        out.append(UInt8(ascii: "."))
        // The fraction's digits from the right, zero-padded to `decimals`.
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: decimals))
        var fraction = n % scale, at = out.count - 1
        while fraction > 0 {
            out[at] = UInt8(ascii: "0") + UInt8(fraction % 10)
            fraction /= 10
            at -= 1
        }
    }

    /// The decimal digits of `value` (with a minus sign when negative) appended to `out`.
    package static func appendInteger<I: BinaryInteger>(_ value: I, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = UInt64(value.magnitude)
        let first = out.count
        repeat {
            out.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        out[first...].reverse()
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
