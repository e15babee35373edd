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

/// Fixtures made by scripts/make-tokenizer-fixtures.py with the Rust `tokenizers` library:
/// every line must give the same ids, offsets and decoded text.
enum TokenizerFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizers")

    static let names = ["roberta-bpe", "bert-uncased", "bert-cased-template", "nfkc-bpe-legacy-merges",
                        "metaspace-template", "split-bytelevel"]

    static func data(_ file: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent(file)))
    }

    static func jsonLines(_ file: String) throws -> [JSONValue] {
        let bytes = try data(file)
        return try bytes.split(separator: UInt8(ascii: "\n")).map { line in
            try Array(line).withUnsafeBytes { try JSONValue.parse($0) }
        }
    }

    static func tokenizer(_ name: String) throws -> Tokenizer {
        try Tokenizer(contentsOf: data(name + ".json"))
    }

    static var texts: [String] {
        get throws { try jsonLines("texts.jsonl").map { $0["text"]!.stringValue! } }
    }
}

extension JSONValue {
    var uint32s: [UInt32] { (arrayValue ?? []).map { UInt32($0.numberValue!) } }
}

@Suite struct TokenizerParityTests {
    @Test(arguments: TokenizerFixtures.names)
    func everyLineMatchesTheRustLibrary(_ name: String) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(name)
        let texts = try TokenizerFixtures.texts
        let expected = try TokenizerFixtures.jsonLines(name + ".expected.jsonl")
        #expect(texts.count == expected.count)
        #expect(texts.count > 250)
        var failures: [String] = []
        let workspace = EncodeWorkspace()
        var encoding = Encoding()
        for (line, (text, want)) in zip(texts, expected).enumerated() {
            let scalars = TextDecoding.scalars(text)
            scalars.withUnsafeBufferPointer {
                tokenizer.encode($0, maxLength: tokenizer.configuredMaxLength, workspace: workspace, into: &encoding)
            }
            let wantIDs = want["ids"]!.uint32s
            if encoding.ids != wantIDs {
                failures.append("line \(line + 1) \(text.debugDescription.prefix(80)): ids\n  got  \(encoding.ids)\n  want \(wantIDs)")
                continue
            }
            let wantOffsets = want["offsets"]!.arrayValue!.map { $0.uint32s.map(Int32.init) }
            let gotOffsets = zip(encoding.starts, encoding.ends).map { [$0, $1] }
            if gotOffsets != wantOffsets {
                failures.append("line \(line + 1) \(text.debugDescription.prefix(80)): offsets\n  got  \(gotOffsets)\n  want \(wantOffsets)")
            }
            let asText = want["ids_specials_as_text"]?.uint32s ?? wantIDs
            var split = Encoding()
            scalars.withUnsafeBufferPointer {
                tokenizer.encode($0, maxLength: tokenizer.configuredMaxLength, specialTokensAsText: true, workspace: workspace, into: &split)
            }
            if split.ids != asText {
                failures.append("line \(line + 1) \(text.debugDescription.prefix(80)): specials as text\n  got  \(split.ids)\n  want \(asText)")
            }
            let decoded = try tokenizer.decode(encoding.ids)
            if !decoded.unicodeScalars.elementsEqual(want["decoded"]!.stringValue!.unicodeScalars) {
                failures.append("line \(line + 1): decoded \(decoded.debugDescription) want \(want["decoded"]!.stringValue!.debugDescription)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) mismatches:\n\(failures.prefix(8).joined(separator: "\n"))")
    }
}
