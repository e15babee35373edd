import Foundation
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

/// Single normalizers and pre-tokenizers against the Rust library's `normalize_str` and
/// `pre_tokenize_str` on the fixture lines (components.json, made by the fixture script).
@Suite struct TokenizerComponentTests {
    static let fixture: JSONValue = {
        let bytes = try! TokenizerFixtures.data("components.json")
        return try! bytes.withUnsafeBytes { try JSONValue.parse($0) }
    }()

    static func names(_ family: String) -> [String] {
        guard case .object(let pairs)? = fixture[family] else { return [] }
        return pairs.map(\.key)
    }

    var lines: [String] { Self.fixture["lines"]!.arrayValue!.map { $0.stringValue! } }

    @Test(arguments: names("normalizers"))
    func normalizer(_ name: String) throws {
        let spec = Self.fixture["normalizers"]![name]!
        let normalizer = try Normalizers.make(spec["json"]!)
        let outputs = spec["outputs"]!.arrayValue!
        #expect(outputs.count == lines.count && lines.count > 100)
        var failures: [String] = []
        for (line, (text, want)) in zip(lines, outputs).enumerated() {
            var t = NormalizedText(scalars: UTF8Encoding.scalars(text))
            normalizer.normalize(&t)
            let wantScalars = UTF8Encoding.scalars(want.stringValue!)
            if t.scalars != wantScalars {
                failures.append("line \(line + 1) \(text.debugDescription): got \(UTF8Encoding.string(t.scalars).debugDescription) want \(want.stringValue!.debugDescription)")
            }
            #expect(t.starts.count == t.scalars.count && t.ends.count == t.scalars.count)
        }
        #expect(failures.isEmpty, "\(failures.count) mismatches:\n\(failures.prefix(6).joined(separator: "\n"))")
    }

    @Test(arguments: names("pre_tokenizers"))
    func preTokenizer(_ name: String) throws {
        let spec = Self.fixture["pre_tokenizers"]![name]!
        let preTokenizer = try PreTokenizers.make(spec["json"]!)
        let outputs = spec["outputs"]!.arrayValue!
        var failures: [String] = []
        for (line, (text, want)) in zip(lines, outputs).enumerated() {
            var list = PieceList()
            list.appendText(NormalizedText(scalars: UTF8Encoding.scalars(text)), 0..<text.unicodeScalars.count)
            preTokenizer.preTokenize(&list)
            let got: [(String, [Int32])] = list.pieces.map { p in
                (UTF8Encoding.string(list.text.scalars[p.range]), [list.text.starts[Int(p.lower)], list.text.ends[Int(p.upper) - 1]])
            }
            let wanted: [(String, [Int32])] = want.arrayValue!.map { pair in
                (pair.arrayValue![0].stringValue!, pair.arrayValue![1].uint32s.map(Int32.init))
            }
            let same = got.count == wanted.count && zip(got, wanted).allSatisfy {
                $0.0.unicodeScalars.elementsEqual($1.0.unicodeScalars) && $0.1 == $1.1
            }
            if !same {
                failures.append("line \(line + 1) \(text.debugDescription):\n  got  \(got.map { "\($0.0.debugDescription)\($0.1)" })\n  want \(wanted.map { "\($0.0.debugDescription)\($0.1)" })")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) mismatches:\n\(failures.prefix(4).joined(separator: "\n"))")
    }

    /// The classes the GPT-2 pattern depends on, as Oniguruma reads them.
    @Test func unicodeClassesOfTheGPT2Pattern() {
        #expect(GPT2Pattern.kind(0xB2) == 2)      // ² is No: a number
        #expect(GPT2Pattern.kind(0x216B) == 2)    // Ⅻ is Nl: a number
        #expect(GPT2Pattern.kind(0x0B) == 3)      // VT is White_Space
        #expect(GPT2Pattern.kind(0x1C) == 0)      // U+001C is not
        #expect(GPT2Pattern.kind(0xA0) == 3)      // NBSP is
        #expect(GPT2Pattern.kind(0x200B) == 0)    // ZWSP (Cf): other
        #expect(GPT2Pattern.kind(0x200D) == 0)    // ZWJ (Cf): other
        #expect(GPT2Pattern.kind(0xFEFF) == 0)    // BOM (Cf): other
        #expect(GPT2Pattern.kind(0x0308) == 0)    // combining diaeresis (Mn): other
        #expect(GPT2Pattern.kind(0x0451) == 1)    // ё
    }

    @Test func unsupportedComponentsAreNamedErrors() throws {
        func message(_ json: String) -> String? {
            do { _ = try Tokenizer(json: try JSONValue.parse(json)); return nil } catch let e as RuEmbedError { return e.message } catch { return "\(error)" }
        }
        let model = #""model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "a": 1}}"#
        #expect(message("{\(model)}") == nil)
        #expect(message(#"{"normalizer": {"type": "Precompiled", "precompiled_charsmap": ""}, \#(model)}"#)?.contains("precompiled_charsmap") == true)
        #expect(message(#"{"normalizer": {"type": "Lowercase", "locale": "tr"}, \#(model)}"#)?.contains("\"locale\"") == true)
        #expect(message(#"{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\d+"}, "behavior": "Isolated"}, \#(model)}"#)?.contains("regex pattern") == true)
        #expect(message(#"{"model": {"type": "Unigram", "vocab": []}}"#)?.contains("\"vocab\" is empty") == true)
        #expect(message(#"{"model": {"type": "WordLevel", "vocab": {}}}"#)?.contains("\"WordLevel\"") == true)
        #expect(message(#"{"model": {"type": "BPE", "dropout": 0.1, "vocab": {}, "merges": []}}"#)?.contains("dropout") == true)
        #expect(message(#"{"post_processor": {"type": "Mystery"}, \#(model)}"#)?.contains("\"Mystery\"") == true)
        // An unsupported decoder only matters when decoding.
        let tokenizer = try Tokenizer(json: try JSONValue.parse(#"{"decoder": {"type": "CTC"}, \#(model)}"#))
        #expect(tokenizer.encode("a").ids == [1])
        #expect(throws: RuEmbedError.self) { try tokenizer.decode([1]) }
    }

    /// "ё" and "е" + U+0308 are canonically equivalent Strings but different tokens.
    @Test func vocabularyKeysAreBytesNotCanonicalStrings() throws {
        let json = #"{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "ё": 1, "е\u0308": 2}}}"#
        let tokenizer = try Tokenizer(json: try JSONValue.parse(json))
        #expect(tokenizer.encode("ё").ids == [1])
        #expect(tokenizer.encode("е\u{0308}").ids == [2])
    }
}
