import Foundation
import Testing
@testable import RuCore
@testable import RuTokenizer

/// SentencePiece tokenizers (scripts/make-sentencepiece-fixtures.py): models trained on the
/// script's Russian/English text, converted as transformers converts XLM-R, and the ids,
/// offsets and decoded text the Rust `tokenizers` library gives for every line.
@Suite struct SentencePieceParityTests {
    static let names = ["xlmr-unigram", "spm-unigram-bytes", "spm-bpe", "unigram-ties"]

    @Test(arguments: names)
    func everyLineMatchesTheRustLibrary(_ name: String) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(name)
        let texts = try TokenizerFixtures.jsonLines("sentencepiece-texts.jsonl").map { $0["text"]!.stringValue! }
        let expected = try TokenizerFixtures.jsonLines(name + ".expected.jsonl")
        #expect(texts.count == expected.count)
        #expect(texts.count > 300)
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

    static let components: JSONValue = {
        let bytes = try! TokenizerFixtures.data("sentencepiece-components.json")
        return try! bytes.withUnsafeBytes { try JSONValue.parse($0) }
    }()

    static var componentNames: [String] {
        guard case .object(let pairs)? = components["normalizers"] else { return [] }
        return pairs.map(\.key)
    }

    /// The charsmap and the regex Replace normalizers alone on every line (Python's
    /// `normalize_str`), so a pipeline mismatch can be told from a normalizer one.
    @Test(arguments: componentNames)
    func normalizerMatchesTheRustLibrary(_ name: String) throws {
        let spec = Self.components["normalizers"]![name]!
        let normalizer = try Normalizers.make(spec["json"]!)
        let lines = Self.components["lines"]!.arrayValue!.map { $0.stringValue! }
        let outputs = spec["outputs"]!.arrayValue!
        #expect(outputs.count == lines.count && lines.count > 250)
        var failures: [String] = []
        for (line, (text, want)) in zip(lines, outputs).enumerated() {
            var t = NormalizedText(scalars: UTF8Encoding.scalars(text))
            normalizer.normalize(&t)
            if t.scalars != UTF8Encoding.scalars(want.stringValue!) {
                failures.append("line \(line + 1) \(text.debugDescription.prefix(80)): got \(UTF8Encoding.string(t.scalars).debugDescription.prefix(120)) want \(want.stringValue!.debugDescription.prefix(120))")
            }
            #expect(t.starts.count == t.count && t.ends.count == t.count)
        }
        #expect(failures.isEmpty, "\(failures.count) mismatches:\n\(failures.prefix(8).joined(separator: "\n"))")
    }
}

extension SentencePieceParityTests {
    static func sectionNames(_ section: String) -> [String] {
        guard case .object(let pairs)? = components[section] else { return [] }
        return pairs.map(\.key)
    }

    static var shortLines: [String] { components["short_lines"]!.arrayValue!.map { $0.stringValue! } }

    /// Metaspace as older files write it (`add_prefix_space`) and with each prepend scheme:
    /// the pieces and offsets the library gives.
    @Test(arguments: sectionNames("pre_tokenizers"))
    func metaspaceMatchesTheRustLibrary(_ name: String) throws {
        let spec = Self.components["pre_tokenizers"]![name]!
        let preTokenizer = try PreTokenizers.make(spec["json"]!)
        let lines = Self.shortLines
        let outputs = spec["outputs"]!.arrayValue!
        #expect(outputs.count == lines.count && lines.count > 100)
        var failures: [String] = []
        for (line, (text, want)) in zip(lines, outputs).enumerated() {
            var list = PieceList()
            let scalars = UTF8Encoding.scalars(text)
            list.appendText(NormalizedText(scalars: scalars), 0..<scalars.count)
            preTokenizer.preTokenize(&list)
            let got = list.pieces.map { p in
                JSONValue.array([.string(UTF8Encoding.string(list.text.scalars[p.range])),
                                 .array([.number(Double(list.text.starts[Int(p.lower)])), .number(Double(list.text.ends[Int(p.upper) - 1]))])])
            }
            if got != want.arrayValue! {
                failures.append("line \(line + 1) \(text.debugDescription.prefix(80)): got \(JSONValue.array(got).serialized.prefix(200)) want \(want.serialized.prefix(200))")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) mismatches:\n\(failures.prefix(8).joined(separator: "\n"))")
    }

    /// Each decoder on the byte-fallback Unigram's tokens of every line (lines where the Rust
    /// library panics are recorded as null and skipped).
    @Test(arguments: sectionNames("decoders"))
    func decoderMatchesTheRustLibrary(_ name: String) throws {
        let spec = Self.components["decoders"]![name]!
        let decoder = try Decoders.make(spec["json"]!)
        let tokenLists = Self.components["tokens"]!.arrayValue!.map { $0.arrayValue!.map { Array($0.stringValue!.utf8) } }
        let outputs = spec["outputs"]!.arrayValue!
        #expect(outputs.count == tokenLists.count)
        var failures: [String] = [], compared = 0
        for (line, (tokens, want)) in zip(tokenLists, outputs).enumerated() {
            guard let wanted = want.stringValue else { continue }
            compared += 1
            let got = decoder.decode(tokens)
            if !got.unicodeScalars.elementsEqual(wanted.unicodeScalars) {
                failures.append("line \(line + 1): got \(got.debugDescription.prefix(120)) want \(wanted.debugDescription.prefix(120))")
            }
        }
        #expect(compared > 130)
        #expect(failures.isEmpty, "\(failures.count) mismatches:\n\(failures.prefix(8).joined(separator: "\n"))")
    }

    /// Rust refuses `add_prefix_space: false` unless the prepend scheme is "never".
    @Test func legacyAddPrefixSpaceFalseNeedsNever() throws {
        for family in ["pre_tokenizer", "decoder"] {
            for spec in [#"{"type": "Metaspace", "replacement": "▁", "add_prefix_space": false}"#,
                         #"{"type": "Metaspace", "replacement": "▁", "add_prefix_space": false, "prepend_scheme": "first"}"#] {
                let json = try JSONValue.parse(spec)
                #expect(throws: RuEmbedError.self, "\(family) \(spec)") {
                    if family == "decoder" { _ = try Decoders.make(json) } else { _ = try PreTokenizers.make(json) }
                }
            }
        }
    }
}

/// A malformed SentencePiece tokenizer.json fails with one error that names the file and
/// the problem: never a trap, an over-read or a huge allocation.
@Suite struct HostileSentencePieceTests {
    static let charsmap: [UInt8] = {
        let json = try! TokenizerFixtures.data("xlmr-unigram.json").withUnsafeBytes { try JSONValue.parse($0) }
        let text = json["normalizer"]!["normalizers"]!.arrayValue![0]["precompiled_charsmap"]!.stringValue!
        return Array(Data(base64Encoded: text)!)
    }()

    static func tokenizerJSON(charsmap: String? = nil, model: String? = nil) -> String {
        let normalizer = charsmap.map { #"{"type": "Precompiled", "precompiled_charsmap": "\#($0)"}"# } ?? "null"
        let m = model ?? #"{"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["▁a", -1.5], ["a", -2.0]]}"#
        return #"{"normalizer": \#(normalizer), "model": \#(m)}"#
    }

    /// The message of loading `json` from a file, or nil when it loads.
    static func loadError(_ json: String) throws -> String? {
        let dir = TestSupport.temporaryDirectory()
        let path = dir.appendingPathComponent("tokenizer.json").path
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try ModelTokenizer.load(tokenizerFile: path)
            return nil
        } catch let e as RuEmbedError {
            #expect(e.message.contains(path), "\(e.message)")
            return e.message
        }
    }

    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    @Test func theFixtureCharsmapLoads() throws {
        #expect(try Self.loadError(Self.tokenizerJSON(charsmap: Self.base64(Self.charsmap))) == nil)
        #expect(Self.charsmap.count > 1000)
    }

    @Test func badCharsmapsAreNamedErrors() throws {
        let map = Self.charsmap
        let trieBytes = Int(map[0]) | Int(map[1]) << 8 | Int(map[2]) << 16 | Int(map[3]) << 24
        var hugeSize = map
        hugeSize[3] = 0x7F
        var oddSize = map
        oddSize[0] = oddSize[0] &+ 1
        let cases: [(String, String)] = [
            ("not base64!", "not valid base64"),
            ("QUJD=", "not valid base64"),                                   // length not a multiple of 4
            ("", "too short"),
            (Self.base64(Array(map[..<(4 + trieBytes / 2)])), "runs past the end"),  // truncated trie
            (Self.base64(hugeSize), "runs past the end"),
            (Self.base64(oddSize), "multiple of 4"),
            (Self.base64(Array(map[..<(4 + trieBytes)])), "past the 0-byte string blob"), // strings cut off: offsets out of range
        ]
        for (charsmap, problem) in cases {
            let message = try Self.loadError(Self.tokenizerJSON(charsmap: charsmap))
            #expect(message?.contains(problem) == true, "\(problem): \(message ?? "loaded")")
            #expect(message?.contains("precompiled_charsmap") == true || message?.contains("Precompiled") == true)
        }
    }

    /// Random corruption of the trie and the strings: each map either fails to load with an
    /// error, or loads and normalizes text without leaving the arrays.
    @Test func corruptedCharsmapsFailOrNormalizeSafely() throws {
        var random = TestSupport.Random(seed: 13)
        let text = UTF8Encoding.scalars("ＡＢＣ ﬁ ① é ё\u{00A0}👩\u{200D}👩 \u{1} Москва")
        var loaded = 0, refused = 0
        for _ in 0..<40 {
            var map = Self.charsmap
            for _ in 0..<(1 + Int(random.next() % 8)) {
                let at = 4 + Int(random.next() % UInt64(map.count - 4))
                map[at] = UInt8(truncatingIfNeeded: random.next())
            }
            do {
                let normalizer = try PrecompiledNormalizer(blob: map, place: "normalizer Precompiled")
                var t = NormalizedText(scalars: text)
                normalizer.normalize(&t)
                #expect(t.starts.count == t.count)
                loaded += 1
            } catch is RuEmbedError {
                refused += 1
            }
        }
        #expect(loaded + refused == 40)
    }

    @Test func badUnigramModelsAreNamedErrors() throws {
        let cases: [(String, String)] = [
            (#"{"type": "Unigram", "unk_id": 0, "vocab": []}"#, "\"vocab\" is empty"),
            (#"{"type": "Unigram", "unk_id": 5, "vocab": [["<unk>", 0.0], ["a", -1.0]]}"#, "\"unk_id\""),
            (#"{"type": "Unigram", "unk_id": -1, "vocab": [["<unk>", 0.0]]}"#, "\"unk_id\""),
            (#"{"type": "Unigram", "unk_id": null, "vocab": [["<unk>", 0.0]]}"#, "\"unk_id\" null"),
            (#"{"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", 1e999]]}"#, "not a finite number"),
            (#"{"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", "-1"]]}"#, "not a finite number"),
            (#"{"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a"]]}"#, "[piece, score]"),
            (#"{"type": "Unigram", "unk_id": 0, "vocab": {"a": 1}}"#, "must be an array"),
            (#"{"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0]], "dropout": 0.1}"#, "\"dropout\""),
        ]
        for (model, problem) in cases {
            let message = try Self.loadError(Self.tokenizerJSON(model: model))
            #expect(message?.contains(problem) == true, "\(problem): \(message ?? "loaded")")
        }
        // NaN is not JSON: the file is refused before the model is read.
        let nan = try Self.loadError(Self.tokenizerJSON(model: #"{"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", NaN]]}"#))
        #expect(nan?.contains("JSON") == true, "\(nan ?? "loaded")")
    }

    @Test func unsupportedRegexesAndDecodersAreNamedErrors() throws {
        func normalizerError(_ pattern: String) throws -> String? {
            let json = #"{"normalizer": {"type": "Replace", "pattern": {"Regex": \#(JSONValue.string(pattern).serialized)}, "content": "x"}, "model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0]]}}"#
            return try Self.loadError(json)
        }
        for pattern in ["\\d+", "(a|b)", "[ ]+", "a*", "a+?", "\\Aa\\z|", " + ", "a{2,1}", "x{99999999}"] {
            let message = try normalizerError(pattern)
            #expect(message?.contains("regex pattern") == true, "\(pattern): \(message ?? "loaded")")
        }
        for pattern in [" {2,}", "\\A +| +\\z", "\\A▁", "``", "\\.\\.\\."] {
            #expect(try normalizerError(pattern) == nil, "\(pattern)")
        }
        let model = #""model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.0]]}"#
        let tokenizer = try Tokenizer(json: try JSONValue.parse(#"{"decoder": {"type": "Sequence", "decoders": [{"type": "Fuse"}, {"type": "CTC"}]}, \#(model)}"#))
        #expect(throws: RuEmbedError.self) { try tokenizer.decode([1]) }
    }
}

@Suite struct UnigramModelTests {
    /// The regex Replace normalizer gives every replacement scalar the alignment of the last
    /// scalar matched, as Rust's `NormalizedString::replace` (checked against tokenizers
    /// 0.23.3: "ab   cd" with " {2,}" → "▁" aligns ▁ with the third space).
    @Test func replaceAlignsWithTheLastScalarMatched() throws {
        let n = try Normalizers.make(try JSONValue.parse(#"{"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "▁"}"#))
        var t = NormalizedText(scalars: UTF8Encoding.scalars("ab   cd  e"))
        n.normalize(&t)
        #expect(UTF8Encoding.string(t.scalars) == "ab▁cd▁e")
        #expect(t.starts == [0, 1, 4, 5, 6, 8, 9])
        let literal = try Normalizers.make(try JSONValue.parse(#"{"type": "Replace", "pattern": {"String": "ab"}, "content": "XYZ"}"#))
        var u = NormalizedText(scalars: UTF8Encoding.scalars("ab cab"))
        literal.normalize(&u)
        #expect(u.starts == [1, 1, 1, 2, 3, 5, 5, 5])
    }

    /// A 24,000-character word runs in linear time and memory (the trie stops at the longest
    /// piece); after the ▁ token (aligned with the first letter, as in Rust) the tokens tile
    /// the word exactly.
    @Test func longWordsCoverTheTextExactly() throws {
        let tokenizer = try TokenizerFixtures.tokenizer("xlmr-unigram")
        let word = String(repeating: "длинноеслово", count: 2000)
        let e = tokenizer.encode(word)
        #expect(e.count > 100)
        #expect(e.starts[1] == 0 && e.ends[e.count - 2] == Int32(word.unicodeScalars.count))
        #expect((2..<e.count - 2).allSatisfy { e.ends[$0] == e.starts[$0 + 1] })
    }
}

@Suite(.serialized) struct SentencePieceCLITests {
    /// ru-tok takes a converted XLM-R tokenizer.json and gives the Rust ids on every line.
    @Test func ruTokGivesTheRustIDsForTheXLMRFixture() throws {
        let texts = try Data(contentsOf: URL(fileURLWithPath: RuTok.fixture("sentencepiece-texts.jsonl")))
        let expected = try TokenizerFixtures.jsonLines("xlmr-unigram.expected.jsonl").map {
            $0["ids"]!.uint32s.map(String.init).joined(separator: " ")
        }
        let r = try RuTok.run(["--tokenizer", RuTok.fixture("xlmr-unigram.json"), "--jsonl", "--format", "ids", "--threads", "2"], input: texts)
        #expect(r.status == 0, "\(r.stderr)")
        let got = r.lines.map { $0.split(separator: "\t").last.map(String.init) ?? "" }
        #expect(got.count == expected.count)
        #expect(got == expected)
    }
}
