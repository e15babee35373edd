import Foundation
import Testing
import Dispatch
import Synchronization
@testable import RuCore
@testable import RuTokenizer
@testable import RuVectors
@testable import RuEncoder
@testable import RuEmbed
@testable import RuCLI

/// The library as an app uses it, in-process: the README's three lines, the streaming form
/// against the tool's bytes, threads, typed errors, batch tokenization, record syntax.
@Suite(.serialized) struct LibraryTests {
    typealias T = TestSupport

    /// The README's program on a fixture folder: sentence-transformers' vectors (expected.json
    /// holds encode(..., prompt_name=..., normalize_embeddings=True) of a random-weight model).
    @Test(arguments: ModelFixtures.names)
    func threeLinesGiveSentenceTransformersVectors(name: String) throws {
        let expected = try ModelFixtures.expected(name)
        let encoder = try SentenceEncoder(model: ModelFixtures.folder(name))
        for prompt in ["query", "passage"] {
            let vectors: [[Float]] = try encoder.embed(expected.texts, prompt: prompt)
            #expect(vectors.count == expected.texts.count)
            for (k, (got, want)) in zip(vectors, expected.vectors[prompt]!).enumerated() {
                #expect(got.count == encoder.dimension)
                #expect(cosine(got, want) >= 0.99999, "\(name) \(prompt) text \(k)")
            }
        }
        // nil: the model's default prompt (query for these fixtures, as for USER-base).
        #expect(try encoder.embed(expected.texts) == encoder.embed(expected.texts, prompt: "query"))
        let none = try encoder.embed(expected.texts, prompt: .noPrompt)
        for (got, want) in zip(none, expected.vectors["none"]!) { #expect(cosine(got, want) >= 0.99999) }
    }

    /// An app's stream and the tool's stream of the same texts are the same bytes.
    @Test func streamEncoderWritesWhatRuEmbedWrites() throws {
        setenv("XDG_CACHE_HOME", T.privateCache, 1) // the weights digest cache: never the user's
        let folder = ModelFixtures.folder("deberta-abs")
        let texts = try ModelFixtures.expected("deberta-abs").texts.filter { !$0.contains("\n") }
        let encoder = try SentenceEncoder(model: folder, options: EncoderOptions(truncateDimension: 48, batchSize: 3))
        let path = T.temporaryDirectory().appendingPathComponent("app.vec").path
        let file = try OutputFile(path: path)
        let stream = try encoder.makeStreamEncoder(output: file.output, dtype: .f16, prompt: .named("passage"))
        for (k, text) in texts.enumerated() { try stream.add(id: String(k + 1), text: text, place: "text \(k + 1)") }
        try stream.finish()
        try file.output.flush()
        try file.commit()
        #expect(stream.records == texts.count)

        let input = texts.joined(separator: "\n") + "\n"
        let tool = try T.run("ru-embed", ["--model", folder, "--prompt", "passage", "--dtype", "f16", "--truncate-dim", "48",
                                          "--batch-size", "3", "--threads", String(Parallel.configuredThreads)],
                             stdin: Data(input.utf8))
        #expect(tool.status == 0, "\(tool.stderr)")
        let app = try Data(contentsOf: URL(fileURLWithPath: path))
        // Metadata and vectors: compare the records and each chunk's metadata, not the zstd
        // framing (the tool flushes per batch on a pipe).
        func records(_ data: Data) throws -> [(String, [Float], StreamMetadata)] {
            let p = T.temporaryDirectory().appendingPathComponent("s.vec").path
            try data.write(to: URL(fileURLWithPath: p))
            let reader = try VectorStreamReader(path: p)
            var out: [(String, [Float], StreamMetadata)] = []
            while let chunk = try reader.next() {
                let floats = chunk.floats()
                for (i, id) in chunk.ids.enumerated() {
                    out.append((id, Array(floats[i * chunk.dim..<(i + 1) * chunk.dim]), chunk.metadata))
                }
            }
            return out
        }
        let a = try records(app), b = try records(tool.stdout)
        #expect(a.count == b.count)
        for (x, y) in zip(a, b) {
            #expect(x.0 == y.0)
            #expect(x.1 == y.1)
            #expect(x.2 == y.2)
        }
        #expect(a.first?.2["prompt"]?.stringValue == "passage: ")
        #expect(a.first.map { $0.1.count } == 48)
    }

    /// Sendable, and safe to call from several threads at once: the same vectors as one by one
    /// (to the last bits when the thread count holds still; other suites change it meanwhile).
    @Test func concurrentCallsGiveTheSameVectors() throws {
        let encoder = try SentenceEncoder(model: ModelFixtures.folder("deberta-rel"))
        let texts = try ModelFixtures.expected("deberta-rel").texts
        let serial = try texts.map { try encoder.embed([$0])[0] }
        let results = Mutex<[Int: [Float]]>([:])
        DispatchQueue.concurrentPerform(iterations: texts.count) { k in
            let v = try! encoder.embed([texts[k]])[0]
            results.withLock { $0[k] = v }
        }
        let got = results.withLock { $0 }
        for k in texts.indices {
            #expect(zip(got[k]!, serial[k]).allSatisfy { abs($0 - $1) <= 1e-6 }, "text \(k)")
        }
    }

    @Test func errorsAreTypedAndNamed() throws {
        let folder = ModelFixtures.folder("deberta-abs")
        let encoder = try SentenceEncoder(model: folder)
        #expect { try encoder.embed(["x"], prompt: "nope") } throws: { error in
            let e = error as? RuEmbedError
            return e?.kind == .invalidArgument && e!.message.contains("no prompt named \"nope\"")
        }
        #expect { try SentenceEncoder(model: "/nonexistent/model") } throws: { error in
            (error as? RuEmbedError)?.kind == .invalidData
        }
        #expect { try SentenceEncoder(model: folder, options: EncoderOptions(truncateDimension: 100_000)) } throws: { error in
            (error as? RuEmbedError)?.kind == .invalidArgument
        }
        // A record that cannot be embedded names itself; an empty text with no prompt and a
        // tokenizer that adds special tokens still embeds (its special tokens are pooled).
        let stream = try encoder.makeStreamEncoder(output: ByteOutput(fd: open("/dev/null", O_WRONLY), name: "null", ownsDescriptor: true))
        var bad = Array("ok".utf8) + [0xFF]
        #expect { try bad.withUnsafeMutableBytes { try stream.add(id: "1", text: UnsafeRawBufferPointer($0), place: "in.txt: line 7") } } throws: { error in
            (error as? RuEmbedError)?.message == "in.txt: line 7: invalid UTF-8"
        }
    }

    @Test func truncatedDimensionsAreNormalisedAgain() throws {
        let encoder = try SentenceEncoder(model: ModelFixtures.folder("deberta-abs"), options: EncoderOptions(truncateDimension: 5))
        let full = try SentenceEncoder(model: ModelFixtures.folder("deberta-abs"))
        let v = try encoder.embed(["Москва — столица России."])[0]
        let w = try full.embed(["Москва — столица России."])[0]
        #expect(v.count == 5)
        #expect(abs(v.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
        let head = Array(w.prefix(5)), norm = head.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        for (a, b) in zip(v, head) { #expect(abs(a - b / norm) < 1e-6) }
    }

    /// Batch tokenization on threads: input order and the single-text encodings, whatever the count.
    @Test func batchEncoderKeepsOrderAndMatchesOneByOne() throws {
        let tokenizer = try ModelTokenizer.load(modelFolder: ModelFixtures.folder("deberta-abs")).tokenizer
        let texts = (0..<500).map { "запись \($0): " + String(repeating: "слово ", count: $0 % 17) + "Ёлка" }
        let batch = BatchEncoder(tokenizer: tokenizer)
        for threads in [1, 2, 3] {
            Parallel.setThreads(threads)
            let got = batch.encode(texts, prompt: "query: ", maxLength: 24)
            for (k, e) in got.enumerated() {
                #expect(e.ids == tokenizer.encode("query: " + texts[k], maxLength: 24).ids, "threads \(threads) text \(k)")
            }
        }
        Parallel.setThreads(Parallel.configuredThreads)
        #expect(batch.workspaces.reduce(0) { $0 + $1.truncated } > 0)
    }

    @Test func recordSyntaxSplitsIdAndText() throws {
        var replaced = 0
        let tsv = try RecordSyntax.tsv.parse(Array("a1\tПривет\tмир".utf8)[...], lossy: false, replaced: &replaced)
        #expect(tsv.id == "a1" && String(decoding: tsv.textBytes, as: UTF8.self) == "Привет\tмир")
        #expect(throws: RuEmbedError("no tab: --tsv wants id<TAB>text")) {
            try RecordSyntax.tsv.parse(Array("no tab".utf8)[...], lossy: false, replaced: &replaced)
        }
        let json = RecordSyntax.jsonl(idField: "n", textField: "body")
        let j = try json.parse(Array(#"{"n": 7, "body": "тело"}"#.utf8)[...], lossy: false, replaced: &replaced)
        #expect(j.id == "7" && j.textString == "тело")
        #expect(throws: RuEmbedError(#"field "body" is missing or not a string"#)) {
            try json.parse(Array(#"{"n": 7}"#.utf8)[...], lossy: false, replaced: &replaced)
        }
        let lossy = try RecordSyntax.tsv.parse(Array("i\u{1}".utf8).dropLast() + [0xFF, 0x09, 0x41], lossy: true, replaced: &replaced)
        #expect(lossy.id == "i\u{FFFD}" && replaced == 1)
    }

    /// The records of text lines, across an input's first bytes put back and its rest.
    @Test func recordReaderPutsTheSniffedBytesBack() throws {
        let path = T.temporaryDirectory().appendingPathComponent("r.txt").path
        try Data("первая\r\nвторая\n\nпоследняя".utf8).write(to: URL(fileURLWithPath: path))
        let input = try ByteInput.open(path)
        let head = try input.readHead()
        input.unread(head)
        let reader = RecordReader(input: input, separator: UInt8(ascii: "\n"))
        var lines: [String] = []
        while true {
            let batch = try reader.nextBatch(maxRecords: 1, maxBytes: 1)
            guard !batch.records.isEmpty else { break }
            lines.append(String(decoding: batch.text(0), as: UTF8.self))
        }
        #expect(lines == ["первая", "вторая", "", "последняя"])
    }

    /// The shared option groups: what ru-tok had, ru-embed now has too, with the same meaning.
    @Test func sharedOptionsWorkInRuEmbed() throws {
        let folder = ModelFixtures.folder("deberta-abs")
        let lines = try T.run("ru-embed", ["--model", folder, "--threads", "1"], stdin: Data("один\nдва\n".utf8))
        let nul = try T.run("ru-embed", ["--model", folder, "--threads", "1", "-0"], stdin: Data("один\0два\0".utf8))
        #expect(lines.status == 0 && nul.status == 0)
        #expect(lines.stdout == nul.stdout)
        // --lossy: U+FFFD for the bad byte, as ru-tok --lossy; without it, refused naming the line.
        let bad = Data([0xD0, 0xB0, 0xFF, 0x0A])
        #expect(try T.run("ru-embed", ["--model", folder], stdin: bad).stderr.contains("<stdin>: line 1: invalid UTF-8"))
        let lossy = try T.run("ru-embed", ["--model", folder, "--lossy", "--threads", "1"], stdin: bad)
        let replaced = try T.run("ru-embed", ["--model", folder, "--threads", "1"], stdin: Data("а\u{FFFD}\n".utf8))
        #expect(lossy.status == 0 && lossy.stdout == replaced.stdout)
        // -o: the file appears whole on success, and is left alone on failure.
        let out = T.temporaryDirectory().appendingPathComponent("o.vec").path
        #expect(try T.run("ru-embed", ["--model", folder, "--threads", "1", "-o", out], stdin: Data("один\nдва\n".utf8)).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == lines.stdout)
        #expect(try T.run("ru-embed", ["--model", folder, "-o", out], stdin: bad).status == 2)
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == lines.stdout)
        for tool in ["ru-tok", "ru-embed", "ru-vec", "ru-sim", "ru-knn"] {
            let v = try T.run(tool, ["--version"])
            #expect(v.status == 0 && v.text == RuEmbedVersion.string + "\n", "\(tool)")
        }
    }
}
