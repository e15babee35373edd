import RuCore
/// Unicode character classes as the Rust `tokenizers` library and its regex engines see
/// them, looked up from a table so hot loops never ask `Unicode.Scalar.Properties`.
///
/// One byte of flags per scalar. The Basic Multilingual Plane is tabulated once (64 KiB);
/// scalars above it are rare in Russian text and are classified on the spot.
package struct ScalarFlags: OptionSet, Sendable {
    package let rawValue: UInt16
    package init(rawValue: UInt16) { self.rawValue = rawValue }

    /// General category L* (Oniguruma's `\p{L}`).
    package static let letter = ScalarFlags(rawValue: 1 << 0)
    /// General category N*: Nd, Nl and No (Oniguruma's `\p{N}`, Rust's `char::is_numeric`).
    package static let number = ScalarFlags(rawValue: 1 << 1)
    /// The White_Space property: `\s` in Oniguruma and Rust's regex, Rust's `char::is_whitespace`.
    package static let whiteSpace = ScalarFlags(rawValue: 1 << 2)
    /// The Alphabetic property (Rust's `char::is_alphabetic`).
    package static let alphabetic = ScalarFlags(rawValue: 1 << 3)
    /// General category P* (the `unicode_categories` crate's `is_punctuation`).
    package static let punctuation = ScalarFlags(rawValue: 1 << 4)
    /// ASCII punctuation and symbols (Rust's `char::is_ascii_punctuation`).
    package static let asciiPunctuation = ScalarFlags(rawValue: 1 << 5)
    /// General category Mn (nonspacing marks, removed when stripping accents).
    package static let nonspacingMark = ScalarFlags(rawValue: 1 << 6)
    /// General category M* (part of the regex `\w`).
    package static let mark = ScalarFlags(rawValue: 1 << 7)
    /// General category C*: Cc, Cf, Cn, Co, Cs (BERT's "control" characters).
    package static let other = ScalarFlags(rawValue: 1 << 8)
    /// Nd (part of `\w`).
    package static let decimalNumber = ScalarFlags(rawValue: 1 << 9)
    /// Pc or Join_Control (the rest of `\w`).
    package static let connector = ScalarFlags(rawValue: 1 << 10)

    /// Rust regex `\w`: Alphabetic, M, Nd, Pc, Join_Control.
    package static let word: ScalarFlags = [.alphabetic, .mark, .decimalNumber, .connector]
}

package enum UnicodeClasses {
    private static let bmp: [UInt16] = (0..<0x10000).map { value in
        guard let scalar = Unicode.Scalar(UInt32(value)) else { return ScalarFlags.other.rawValue } // surrogates: Cs
        return compute(scalar).rawValue
    }

    @inline(__always)
    package static func flags(_ value: UInt32) -> ScalarFlags {
        if value < 0x10000 { return ScalarFlags(rawValue: bmp.withUnsafeBufferPointer { $0[Int(value)] }) }
        guard let scalar = Unicode.Scalar(value) else { return .other }
        return compute(scalar)
    }

    @inline(__always)
    package static func has(_ value: UInt32, _ flag: ScalarFlags) -> Bool {
        !flags(value).isDisjoint(with: flag)
    }

    static func compute(_ scalar: Unicode.Scalar) -> ScalarFlags {
        let p = scalar.properties
        var f: ScalarFlags = []
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            f.insert(.letter)
        case .decimalNumber:
            f.formUnion([.number, .decimalNumber])
        case .letterNumber, .otherNumber:
            f.insert(.number)
        case .connectorPunctuation:
            f.formUnion([.punctuation, .connector])
        case .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation:
            f.insert(.punctuation)
        case .nonspacingMark:
            f.formUnion([.nonspacingMark, .mark])
        case .spacingMark, .enclosingMark:
            f.insert(.mark)
        case .control, .format, .unassigned, .privateUse, .surrogate:
            f.insert(.other)
        default:
            break
        }
        if p.isWhitespace { f.insert(.whiteSpace) }
        if p.isAlphabetic { f.insert(.alphabetic) }
        if p.isJoinControl { f.insert(.connector) }
        if scalar.isASCII {
            let v = scalar.value
            if (0x21...0x2F).contains(v) || (0x3A...0x40).contains(v) || (0x5B...0x60).contains(v) || (0x7B...0x7E).contains(v) {
                f.insert(.asciiPunctuation)
            }
        }
        return f
    }

    /// Rust's `char::is_alphanumeric`.
    @inline(__always)
    package static func isAlphanumeric(_ v: UInt32) -> Bool { has(v, [.alphabetic, .number]) }
    @inline(__always)
    package static func isWhitespace(_ v: UInt32) -> Bool { has(v, .whiteSpace) }
}

// MARK: UTF-8 helpers over scalar values

package enum UTF8Encoding {
    /// Appends the UTF-8 encoding of scalar value `v`.
    @inline(__always)
    package static func append(_ v: UInt32, to out: inout [UInt8]) {
        if v < 0x80 {
            out.append(UInt8(v))
        } else if v < 0x800 {
            out.append(UInt8(0xC0 | (v >> 6)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        } else if v < 0x10000 {
            out.append(UInt8(0xE0 | (v >> 12)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        } else {
            out.append(UInt8(0xF0 | (v >> 18)))
            out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        }
    }

    package static func bytes<S: Sequence>(_ scalars: S) -> [UInt8] where S.Element == UInt32 {
        var out: [UInt8] = []
        for v in scalars { append(v, to: &out) }
        return out
    }

    /// The scalar values of a String, one per Unicode scalar (never per Character).
    package static func scalars(_ s: String) -> [UInt32] { s.unicodeScalars.map(\.value) }

    package static func string<S: Sequence>(_ scalars: S) -> String where S.Element == UInt32 {
        var s = String.UnicodeScalarView()
        for v in scalars { s.append(Unicode.Scalar(v)!) }
        return String(s)
    }
}
