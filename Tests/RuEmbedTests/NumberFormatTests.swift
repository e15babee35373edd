import Testing
@testable import RuCore

/// The byte formatters behind every tool's scores (`NumberFormat.fixed` is made by
/// `appendFixed`) against the String-building version they replaced, and their edge cases.
@Suite struct NumberFormatTests {
    /// The implementation before `appendFixed` (2026-12-03), kept here as the reference.
    static func stringFixed(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf") }
        var scale: Int64 = 1
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * Double(scale)).rounded()
        guard scaled < 9.0e18 else { return "\(value)" }
        let n = Int64(scaled)
        let integer = n / scale, fraction = n % scale
        // (The old version padded before this test and trapped at decimals 0: nothing asked for 0.)
        if decimals == 0 { return "\(value < 0 && n != 0 ? "-" : "")\(integer)" }
        var fractionText = String(fraction)
        fractionText = String(repeating: "0", count: decimals - fractionText.count) + fractionText
        let sign = value < 0 && n != 0 ? "-" : ""
        return decimals == 0 ? "\(sign)\(integer)" : "\(sign)\(integer).\(fractionText)"
    }

    @Test func fixedAgreesWithTheStringVersion() {
        var random = SystemRandomNumberGenerator()
        var values: [Double] = [0, -0.0, 1, -1, 0.5, -0.5, 1.5, 2.5, 0.0000005, -0.0000004, 0.9999995, -0.9999996,
                                1e-300, 123456.7890125, 8.9e12, 9.1e12, 1e300, -1e300, .nan, .infinity, -.infinity,
                                Double(Float(0.72271)), Double(Float.ulpOfOne), .greatestFiniteMagnitude]
        for _ in 0..<20_000 {
            values.append(Double.random(in: -1.5...1.5, using: &random))
            values.append(Double(Float.random(in: -1...1, using: &random)))
            values.append(Double.random(in: -1e7...1e7, using: &random))
        }
        for decimals in [0, 1, 3, 6, 9] {
            for v in values {
                var bytes: [UInt8] = [0x41]
                NumberFormat.appendFixed(v, decimals: decimals, to: &bytes)
                #expect(bytes.first == 0x41)
                let expected = Self.stringFixed(v, decimals: decimals)
                #expect(String(decoding: bytes.dropFirst(), as: UTF8.self) == expected, "\(v) at \(decimals)")
                #expect(NumberFormat.fixed(v, decimals: decimals) == expected)
            }
        }
        #expect(NumberFormat.fixed(0.5, decimals: 0) == "1")
        #expect(NumberFormat.fixed(-0.0000004) == "0.000000")
        #expect(NumberFormat.fixed(-1.5) == "-1.500000")
        #expect(NumberFormat.fixed(0.0000005) == "0.000001")
    }

    @Test func integers() {
        func text<I: BinaryInteger>(_ v: I) -> String {
            var bytes: [UInt8] = []
            NumberFormat.appendInteger(v, to: &bytes)
            return String(decoding: bytes, as: UTF8.self)
        }
        #expect(text(0) == "0")
        #expect(text(Int32(7)) == "7")
        #expect(text(Int32.min) == "-2147483648")
        #expect(text(Int64.min) == "-9223372036854775808")
        #expect(text(UInt64.max) == "18446744073709551615")
        for v in [1, 9, 10, 99, 100, 255, 65_535, 1_000_000, -1, -10, -12_345] { #expect(text(v) == String(v)) }
    }

    @Test func escapedFieldsAppendAsEscapeMakesThem() {
        for field in ["", "plain", "tab\there", "line\nbreak", "back\\slash", "cr\r", "кириллица\t", "\\t"] {
            var bytes: [UInt8] = [0x7C]
            TSV.appendEscaped(field, to: &bytes)
            #expect(String(decoding: bytes.dropFirst(), as: UTF8.self) == TSV.escape(field))
        }
    }
}
