import Testing
@testable import RuCore
@testable import RuTokenizer
@testable import RuVectors
@testable import RuCompute
@testable import RuSearch
@testable import RuHub
@testable import RuEncoder
@testable import RuEmbed
@testable import RuCLI

@Suite struct JSONTests {
    /// A number past Double's range reads as ±infinity; written back it must stay JSON (a
    /// fuzzer found `inf` written into a copied chunk extension, which no reader accepts).
    @Test func outOfRangeNumbersRoundTripAsJSON() throws {
        let value = try JSONValue.parse(#"{"a": [1e999, -1e999, 2.5, 7], "b": 1e400}"#)
        var text = ""
        value.write(to: &text)
        #expect(!text.contains("inf"), "\(text)")
        let again = try JSONValue.parse(text)
        #expect(again == value)
        #expect(again["a"]?.arrayValue?.first?.numberValue == .infinity)
    }
}
