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

/// Long texts cut to a maximum length are tokenized by a prefix (`Tokenizer.encode(utf8:...)`,
/// issue 11: a 200 MB line cost 6.2 GB): the tokens, offsets, truncation count and lossy
/// replacement count must be those of tokenizing the whole text and truncating.
@Suite struct LongTextTests {
    /// The fixture tokenizers (BPE with ByteLevel, Split + ByteLevel, WordPiece with BERT's
    /// pre-tokenizer, Whitespace + Digits with NFKC + Lowercase, Metaspace), the model's, and
    /// Metaspace without its Replace normalizer (with it, the whole text is taken).
    static let tokenizers: [(String, Tokenizer)] = {
        var out = TokenizerFixtures.names.map { ($0, try! TokenizerFixtures.tokenizer($0)) }
        out.append(("deberta-abs", try! Tokenizer(contentsOf: Array(try! Data(contentsOf: URL(fileURLWithPath: ModelFixtures.folder("deberta-abs") + "/tokenizer.json"))))))
        var meta = try! TokenizerFixtures.data("metaspace-template.json").withUnsafeBytes { try JSONValue.parse($0) }
        if case .object(var pairs) = meta, let k = pairs.firstIndex(where: { $0.key == "normalizer" }),
           case .object(var n) = pairs[k].value, let s = n.firstIndex(where: { $0.key == "normalizers" }),
           let steps = n[s].value.arrayValue {
            n[s].value = .array(steps.filter { $0["type"]?.stringValue != "Replace" })
            pairs[k].value = .object(n)
            meta = .object(pairs)
        }
        out.append(("metaspace-no-replace", try! Tokenizer(json: meta)))
        return out
    }()

    /// Texts tokenized whole up to twice this many bytes here (64 KiB in the tools): small
    /// texts keep the debug build's whole-text references quick.
    static let prefixBytes = 2048

    /// Texts over 2 × prefixBytes of several shapes, as UTF-8.
    static let texts: [(String, [UInt8])] = {
        let lines = try! TokenizerFixtures.texts.filter { !$0.isEmpty }
        func repeated(_ s: String) -> [UInt8] {
            var out: [UInt8] = []
            while out.count < 12 * prefixBytes { out += Array(s.utf8) }
            return out
        }
        var random = TestSupport.Random(seed: 11)
        var invalid = repeated(lines.joined(separator: " "))
        for _ in 0..<40 { invalid[Int(random.next() % UInt64(invalid.count))] = UInt8(0x80 | random.next() % 0x7F) }
        return [
            ("sentences", repeated(lines.joined(separator: " "))),
            ("whitespace runs", repeated(lines.joined(separator: "  \t\n   \u{00A0} "))),
            ("added tokens", repeated("слово <mask> [MASK] <s> [CLS] </s> [SEP] и ещё <mask>слово ")),
            ("numbers and punctuation", repeated("1 000 000,50 руб. — «ёлка»!!! x² ½ (test) 42 ")),
            ("marks, CJK, emoji", repeated("мо́локо e\u{301} 漢字 👩‍👩‍👧 Ёж ")),
            ("long words", repeated(String(repeating: "абв", count: 1000) + " ")),
            ("no letter then space", repeated("... !!! ??? ,,, ")),
            ("invalid UTF-8", invalid),
        ]
    }()

    @Test(arguments: LongTextTests.tokenizers.indices)
    func prefixGivesTheWholeTextsTokens(_ index: Int) throws {
        let (name, tokenizer) = LongTextTests.tokenizers[index]
        let prompt = UTF8Encoding.scalars("query: ")
        var usedPrefix = 0
        for (kind, text) in LongTextTests.texts {
            for maxLength in [8, 40] {
                for splitSpecial in [false, true] {
                    let lossy = kind == "invalid UTF-8"
                    // The reference: every scalar, then encode and truncate.
                    var all: [UInt32] = []
                    var wholeReplaced = 0
                    let valid = text.withUnsafeBytes { TextDecoding.scalars($0, lossy: lossy, into: &all, replaced: &wholeReplaced) }
                    #expect(valid)
                    let whole = EncodeWorkspace()
                    var expected = Encoding()
                    (prompt + all).withUnsafeBufferPointer {
                        tokenizer.encode($0, maxLength: maxLength, specialTokensAsText: splitSpecial, workspace: whole, into: &expected)
                    }
                    let w = EncodeWorkspace()
                    // The first prefix from a few bytes (cut right at the last tokens kept,
                    // then grown) to the tools' own choice.
                    for firstPrefix in [7, 60, 250, nil] {
                        var got = Encoding()
                        var scalars: [UInt32] = []
                        var replaced = 0
                        let before = (w.truncated, w.prefixEncodes)
                        let ok = text.withUnsafeBytes {
                            tokenizer.encode(utf8: $0, prompt: prompt, lossy: lossy, replaced: &replaced, maxLength: maxLength,
                                             specialTokensAsText: splitSpecial, workspace: w, scalars: &scalars, into: &got,
                                             prefixBytes: LongTextTests.prefixBytes, firstPrefix: firstPrefix)
                        }
                        let place = "\(name), \(kind), max \(maxLength), split special \(splitSpecial), first prefix \(firstPrefix ?? 0)"
                        #expect(ok)
                        #expect(got == expected, "\(place)")
                        #expect(w.truncated - before.0 == whole.truncated && replaced == wholeReplaced, "\(place)")
                        let prefix = w.prefixEncodes - before.1
                        #expect(scalars.count < all.count / 2 || prefix == 0, "\(place): the whole text was held")
                        usedPrefix += prefix
                    }
                }
            }
        }
        // The prefix is really taken where the pipeline allows it (the test proves something).
        #expect((usedPrefix > 0) == tokenizer.prefixSafe, "\(name): prefix used \(usedPrefix) times, safe \(tokenizer.prefixSafe)")
    }

    /// A maximum length from --max-length may be anything: Int.max leaves the text whole
    /// (no product of it overflows).
    @Test func hugeMaximumLengthTakesTheWholeText() throws {
        let (_, tokenizer) = LongTextTests.tokenizers.first { $0.0 == "deberta-abs" }!
        let text = LongTextTests.texts[0].1
        var scalars: [UInt32] = []
        var replaced = 0
        var out = Encoding()
        let w = EncodeWorkspace()
        let ok = text.withUnsafeBytes {
            tokenizer.encode(utf8: $0, prompt: [], lossy: false, replaced: &replaced, maxLength: Int.max, workspace: w,
                             scalars: &scalars, into: &out, prefixBytes: LongTextTests.prefixBytes)
        }
        #expect(ok && w.prefixEncodes == 0 && w.truncated == 0)
        #expect(out == tokenizer.encode(String(decoding: text, as: UTF8.self)))
    }

    /// Strict decoding still refuses invalid UTF-8 after the prefix.
    @Test func invalidUTF8AfterThePrefixIsStillRefused() throws {
        let (_, tokenizer) = LongTextTests.tokenizers.first { $0.0 == "deberta-abs" }!
        var text = LongTextTests.texts[0].1
        text[text.count - 3] = 0xFF
        var scalars: [UInt32] = []
        var replaced = 0
        var out = Encoding()
        let w = EncodeWorkspace()
        let ok = text.withUnsafeBytes {
            tokenizer.encode(utf8: $0, prompt: [], lossy: false, replaced: &replaced, maxLength: 8, workspace: w,
                             scalars: &scalars, into: &out, prefixBytes: LongTextTests.prefixBytes)
        }
        #expect(!ok)
        #expect(w.prefixEncodes == 0)
    }
}
