import Foundation
import Testing
@testable import RuCore
@testable import RuTokenizer
@testable import RuVectors
@testable import RuEncoder
@testable import RuEmbed

/// `--split TOKENS[:OVERLAP]`, `EncoderOptions.split` and `embedDocuments`: long records cut
/// into windows, checked against sentence-transformers run on the same windows
/// (scripts/make-split-fixtures.py).
@Suite(.serialized) struct SplitTests {
    typealias T = TestSupport
    static let folder = ModelFixtures.folder("deberta-abs")

    struct Case {
        var split: DocumentSplit
        var prompt: Prompt
        var promptName: String?
        /// Per text: content tokens, window token ids, window vectors.
        var documents: [(content: Int, windows: [[UInt32]], vectors: [[Float]])]
    }

    static func expected() throws -> (texts: [String], cases: [Case]) {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/split/expected.json")
        let bytes = Array(try Data(contentsOf: url))
        let json = try bytes.withUnsafeBytes { try JSONValue.parse($0) }
        let texts = json["texts"]!.arrayValue!.map { $0.stringValue! }
        let cases = json["cases"]!.arrayValue!.map { c in
            let name = c["prompt"]?.stringValue
            return Case(split: DocumentSplit(tokens: Int(c["tokens"]!.numberValue!), overlap: Int(c["overlap"]!.numberValue!)),
                        prompt: name.map(Prompt.named) ?? .noPrompt, promptName: name,
                        documents: c["documents"]!.arrayValue!.map { d in
                            (Int(d["content_tokens"]!.numberValue!),
                             d["windows"]!.arrayValue!.map { $0.arrayValue!.map { UInt32($0.numberValue!) } },
                             d["vectors"]!.arrayValue!.map { $0.arrayValue!.map { Float($0.numberValue!) } })
                        })
        }
        return (texts, cases)
    }

    /// The token ids the library queues for each window of `text`.
    static func windowIDs(_ encoder: SentenceEncoder, _ text: String, prompt: Prompt, split: DocumentSplit) throws -> [EmbeddingBatch.Record] {
        let batch = try EmbeddingBatch(encoder: encoder, prompt: prompt, split: split)
        try batch.add(text: text, id: "d")
        return batch.records
    }

    /// Each window's token ids are those built from the HF tokenizer, and its vector is
    /// sentence-transformers' vector of those ids; window counts follow the formula.
    @Test func windowsMatchSentenceTransformers() throws {
        setenv("XDG_CACHE_HOME", T.privateCache, 1)
        let (texts, cases) = try SplitTests.expected()
        let encoder = try SentenceEncoder(model: SplitTests.folder, options: EncoderOptions(batchSize: 5))
        for c in cases {
            let label = "\(c.split.tokens):\(c.split.overlap) \(c.promptName ?? "no prompt")"
            let got = try encoder.embedDocuments(texts, prompt: c.prompt, split: c.split)
            #expect(got.count == texts.count, "\(label)")
            for (k, (text, doc)) in zip(texts, c.documents).enumerated() {
                let n = doc.content
                let formula = n > c.split.tokens ? (n - c.split.overlap + c.split.tokens - c.split.overlap - 1) / (c.split.tokens - c.split.overlap) : 1
                #expect(doc.windows.count == formula, "\(label) text \(k): the fixture's windows")
                #expect(c.split.windowCount(contentTokens: n) == formula)
                let records = try SplitTests.windowIDs(encoder, text, prompt: c.prompt, split: c.split)
                #expect(records.map(\.ids) == doc.windows, "\(label) text \(k): window token ids")
                #expect(records.map(\.id) == (0..<formula).map { "d#\($0)" })
                #expect(got[k].count == formula, "\(label) text \(k)")
                for (w, (g, e)) in zip(got[k], doc.vectors).enumerated() {
                    #expect(cosine(g, e) >= 0.99999, "\(label) text \(k) window \(w)")
                }
            }
        }
        // The long text gives several windows, the short and the empty one one each.
        #expect(cases[0].documents[0].windows.count > 3 && cases[0].split.overlap > 0)
        #expect(cases.allSatisfy { $0.documents[1].windows.count == 1 && $0.documents[2].windows.count == 1 })
    }

    /// Consecutive windows of the library's own cut share exactly OVERLAP content tokens, each
    /// holds at most TOKENS, and together they cover the record's content in order.
    @Test func windowsOverlapByExactlyOverlapTokens() throws {
        setenv("XDG_CACHE_HOME", T.privateCache, 1)
        let encoder = try SentenceEncoder(model: SplitTests.folder)
        let text = try SplitTests.expected().texts[0]
        let whole = encoder.tokenizer.tokenizer.encode("query: " + text)
        for (t, o) in [(16, 4), (10, 0), (5, 4), (1, 0), (30, 29)] {
            let split = DocumentSplit(tokens: t, overlap: o)
            let records = try SplitTests.windowIDs(encoder, text, prompt: .modelDefault, split: split)
            // Head: [CLS] and the prompt's tokens; tail: [SEP] (the fixture tokenizer's template).
            let content = records.map { Array($0.ids.dropFirst(7).dropLast(1)) }
            #expect(records.allSatisfy { Array($0.ids.prefix(7)) == Array(whole.ids.prefix(7)) && $0.ids.last == whole.ids.last })
            #expect(content.allSatisfy { $0.count <= t && !$0.isEmpty })
            for k in 1..<max(content.count, 1) {
                #expect(Array(content[k - 1].suffix(o)) == Array(content[k].prefix(o)), "\(t):\(o) windows \(k - 1), \(k)")
            }
            var joined = content[0]
            for c in content.dropFirst() { joined += c.dropFirst(o) }
            #expect(joined == Array(whole.ids.dropFirst(7).dropLast(1)), "\(t):\(o): the windows cover the content once")
            #expect(records.count == split.windowCount(contentTokens: joined.count))
        }
        for n in [0, 1, 15, 16, 17, 28, 29, 100] {
            for (t, o) in [(16, 4), (16, 0), (3, 2)] {
                let w = DocumentSplit(tokens: t, overlap: o).windows(contentTokens: n)
                #expect(w.count == DocumentSplit(tokens: t, overlap: o).windowCount(contentTokens: n), "n \(n) \(t):\(o)")
                #expect(w.first?.lowerBound == 0 && w.last?.upperBound == n)
                #expect(zip(w, w.dropFirst()).allSatisfy { $0.upperBound - $1.lowerBound == o })
            }
        }
    }

    /// The stream writer suffixes ids and records the split in the metadata; `embed` still
    /// gives one vector per text; bad splits and token records are refused.
    @Test func streamIdsMetadataAndRefusals() throws {
        setenv("XDG_CACHE_HOME", T.privateCache, 1)
        let texts = try SplitTests.expected().texts
        let split = DocumentSplit(tokens: 16, overlap: 4)
        let encoder = try SentenceEncoder(model: SplitTests.folder, options: EncoderOptions(split: split))
        let path = T.temporaryDirectory().appendingPathComponent("s.vec").path
        let file = try OutputFile(path: path)
        let stream = try encoder.makeStreamEncoder(output: file.output)
        for (k, text) in texts.enumerated() { try stream.add(id: "doc\(k)", text: text, place: "text \(k)") }
        #expect(throws: RuEmbedError.self) { try stream.add(id: "t", tokens: [1, 80, 2], place: "tokens") }
        try stream.finish()
        try file.output.flush()
        try file.commit()
        let chunks = try T.readAll(path)
        let ids = chunks.flatMap(\.ids)
        let docs = try encoder.embedDocuments(texts)
        let expectedIDs = docs.enumerated().flatMap { k, d in (0..<d.count).map { "doc\(k)#\($0)" } }
        #expect(ids == expectedIDs)
        #expect(docs[0].count > 1)
        let flat = chunks.flatMap { $0.floats() }
        #expect(flat == docs.flatMap { $0.flatMap { $0 } }, "the stream holds embedDocuments' vectors")
        let m = chunks[0].metadata["split"]
        #expect(m?["tokens"]?.numberValue == 16 && m?["overlap"]?.numberValue == 4)
        // embed: one vector per text, truncated as always, the split ignored.
        let plain = try SentenceEncoder(model: SplitTests.folder)
        #expect(try encoder.embed(texts) == plain.embed(texts))
        #expect(try plain.streamMetadata(promptText: "")["split"] == nil)
        // Refusals: no split, bad numbers, windows too large for the maximum length.
        #expect(throws: RuEmbedError.self) { try plain.embedDocuments(texts) }
        #expect(throws: RuEmbedError.self) { try SentenceEncoder(model: SplitTests.folder, options: EncoderOptions(split: DocumentSplit(tokens: 4, overlap: 4))) }
        let limit = encoder.splitLimit(promptText: "query: ")!
        #expect(limit == 512 - 2 - encoder.tokenizer.tokenizer.encode("query: ").ids.count + 2)
        #expect(try encoder.embedDocuments(["а"], split: DocumentSplit(tokens: limit)).count == 1)
        do {
            _ = try encoder.embedDocuments(["а"], split: DocumentSplit(tokens: limit + 1))
            Issue.record("a window larger than the maximum length was accepted")
        } catch let e as RuEmbedError {
            #expect(e.kind == .invalidArgument && e.message.contains("at most \(limit) tokens"))
        }
        for bad in ["", "x", "16:", ":4", "16:4:1", "0", "-3", "16:16", "16:-1", "1.5"] {
            #expect(throws: RuEmbedError.self, "\(bad)") { try DocumentSplit(parsing: bad) }
        }
        #expect(try DocumentSplit(parsing: "16:4") == DocumentSplit(tokens: 16, overlap: 4))
        #expect(try DocumentSplit(parsing: "300") == DocumentSplit(tokens: 300, overlap: 0))
    }

    /// `ru-embed --split 16:4` writes what the library's stream writer writes, ids `N#k`;
    /// usage errors exit 64 with one line.
    @Test func toolSplitsAsTheLibraryDoes() throws {
        setenv("XDG_CACHE_HOME", T.privateCache, 1)
        let texts = try SplitTests.expected().texts
        let input = Data((texts.joined(separator: "\n") + "\n").utf8)
        let tool = try T.run("ru-embed", ["--model", SplitTests.folder, "--split", "16:4", "--prompt", "passage", "--batch-size", "4",
                                          "--threads", String(Parallel.configuredThreads)], stdin: input)
        #expect(tool.status == 0, "\(tool.stderr)")

        let encoder = try SentenceEncoder(model: SplitTests.folder, options: EncoderOptions(batchSize: 4, split: DocumentSplit(tokens: 16, overlap: 4)))
        let path = T.temporaryDirectory().appendingPathComponent("app.vec").path
        let file = try OutputFile(path: path)
        let stream = try encoder.makeStreamEncoder(output: file.output, prompt: .named("passage"))
        for (k, text) in texts.enumerated() { try stream.add(id: String(k + 1), text: text, place: "line \(k + 1)") }
        try stream.finish()
        try file.output.flush()
        try file.commit()

        let a = try T.readAll(path), b = try T.readAll(tool.stdout)
        let ids = b.flatMap(\.ids)
        let docs = try encoder.embedDocuments(texts, prompt: .named("passage"))
        #expect(ids == docs.enumerated().flatMap { k, d in (0..<d.count).map { "\(k + 1)#\($0)" } })
        #expect(ids.first == "1#0" && ids.contains("1#1") && ids.contains("2#0") && ids.last == "3#0")
        #expect(a.flatMap(\.ids) == ids)
        #expect(a.flatMap { $0.floats() } == b.flatMap { $0.floats() }, "library and tool: the same vectors, bit for bit")
        #expect(a.allSatisfy { $0.metadata == b[0].metadata } && b.allSatisfy { $0.metadata == b[0].metadata })
        #expect(b[0].metadata["split"]?["overlap"]?.numberValue == 4)

        let limit = encoder.splitLimit(promptText: "query: ")!
        for (args, says) in [(["--split", String(limit + 1)], "at most \(limit) tokens"), (["--split", "16:16"], "OVERLAP"),
                             (["--split", "16x"], "TOKENS:OVERLAP"), (["--split", "0"], "TOKENS must be 1")] {
            // No input: a usage error ends the tool before it reads, and bytes written to its
            // closed stdin pipe would kill the test runner with SIGPIPE (it did, once, under ASan).
            let r = try T.run("ru-embed", ["--model", SplitTests.folder] + args, stdin: Data())
            #expect(r.status == 64, "\(args)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(says), "\(args): \(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
        #expect(try T.run("ru-embed", ["--model", SplitTests.folder, "--split"], stdin: Data()).status == 64)
        // Token streams: refused with --split.
        let tokens = try T.run("ru-tok", ["--model", SplitTests.folder], stdin: Data("a b\n".utf8))
        #expect(tokens.status == 0)
        let r = try T.run("ru-embed", ["--model", SplitTests.folder, "--split", "8"], stdin: tokens.stdout)
        #expect(r.status == 64 && r.stderr.contains("--split cuts text records"), "\(r.stderr)")
    }
}

extension EmbeddingBatch {
    /// Queues a text (tests).
    func add(text: String, id: String) throws {
        var text = text
        try text.withUTF8 { try add(text: UnsafeRawBufferPointer($0), id: id, place: "text") }
    }
}
