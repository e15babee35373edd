import Foundation
import Testing
import Crypto
@testable import RuCore
@testable import RuTokenizer
@testable import RuVectors
@testable import RuCompute
@testable import RuSearch
@testable import RuHub
@testable import RuEncoder
@testable import RuEmbed
@testable import RuCLI

/// ru-embed run as a subprocess, the way a shell pipeline runs it.
@Suite(.serialized) struct EmbedCLITests {
    static let cache = TestSupport.temporaryDirectory().path

    /// Runs ru-embed with a private digest cache (tests must not write to the user's).
    static func embed(_ arguments: [String], stdin: Data = Data(), environment: [String: String] = [:]) throws -> TestSupport.Result {
        setenv("XDG_CACHE_HOME", cache, 1)
        return try TestSupport.run("ru-embed", arguments, stdin: stdin, environment: environment)
    }

    static func vectors(_ stdout: Data) throws -> (ids: [String], rows: [[Float]], chunks: [Chunk]) {
        let chunks = try TestSupport.readAll(stdout)
        var ids: [String] = [], rows: [[Float]] = []
        for c in chunks {
            ids += c.ids
            let flat = c.floats()
            rows += (0..<c.count).map { Array(flat[$0 * c.dim..<($0 + 1) * c.dim]) }
        }
        return (ids, rows, chunks)
    }

    static func lines(_ texts: [String]) -> Data { Data(texts.map { $0 + "\n" }.joined().utf8) }

    @Test(arguments: ModelFixtures.names)
    func textLinesGiveTheSentenceTransformersVectorsInOrder(_ name: String) throws {
        let expected = try ModelFixtures.expected(name)
        for (mode, flags) in [("query", [String]()), ("passage", ["--prompt", "passage"]), ("none", ["--no-prompt"])] {
            let r = try EmbedCLITests.embed(["--model", ModelFixtures.folder(name), "--batch-size", "3"] + flags,
                                            stdin: EmbedCLITests.lines(expected.texts))
            #expect(r.status == 0, "\(r.stderr)")
            let (ids, rows, chunks) = try EmbedCLITests.vectors(r.stdout)
            #expect(ids == (1...expected.texts.count).map(String.init), "records out = records in, in order")
            for (k, (g, w)) in zip(rows, expected.vectors[mode]!).enumerated() {
                #expect(cosine(g, w) >= 0.99999, "\(name) \(mode) line \(k + 1)")
            }
            let m = chunks[0].metadata
            #expect(m["prompt"]?.stringValue == (mode == "none" ? "" : expected.prompts[mode]))
            #expect(m["pooling"]?.stringValue == "mean")
            #expect(m["precision"]?.stringValue == "f32")
            #expect(m["max_length"]?.numberValue == 512)
            #expect(m.modelDigest?.count == 64)
            #expect(m["tokenizer_digest"]?.stringValue == SHA256.hex(Array(try Data(contentsOf: URL(fileURLWithPath: ModelFixtures.folder(name) + "/tokenizer.json")))))
            #expect(chunks.allSatisfy { $0.isNormalized })
        }
    }

    /// `--precision int8` from the command line: the stream says int8, the vectors stay close to
    /// sentence-transformers' f32 ones, and -v says which int8 path this CPU runs.
    @Test func int8PrecisionIsRecordedAndNamed() throws {
        let name = "deberta-abs"
        let expected = try ModelFixtures.expected(name)
        let r = try EmbedCLITests.embed(["--model", ModelFixtures.folder(name), "--precision", "int8", "-v"],
                                        stdin: EmbedCLITests.lines(expected.texts))
        #expect(r.status == 0, "\(r.stderr)")
        let (_, rows, chunks) = try EmbedCLITests.vectors(r.stdout)
        #expect(chunks[0].metadata["precision"]?.stringValue == "int8")
        #expect(rows.count == expected.texts.count)
        for (k, (g, w)) in zip(rows, expected.vectors["query"]!).enumerated() {
            #expect(cosine(g, w) >= 0.999, "line \(k + 1)")
        }
        let path = Int8LinearLayer.kernelAvailable ? "(int8: AVX-512 VNNI kernel)" : "(int8: oneDNN's int8 matmul"
        #expect(r.stderr.contains(path), "\(r.stderr)")
    }

    @Test func tsvJsonlIdsPrefixAndEmptyLines() throws {
        let folder = ModelFixtures.folder("deberta-abs")
        let expected = try ModelFixtures.expected("deberta-abs")
        let plain = try EmbedCLITests.vectors(EmbedCLITests.embed(["--model", folder], stdin: EmbedCLITests.lines(["а", "", "б", ""])).stdout)
        #expect(plain.ids == ["1", "2", "3", "4"])
        #expect(cosine(plain.rows[1], plain.rows[3]) > 0.999999, "an empty line is an empty text")
        let emptyIndex = expected.texts.firstIndex(of: "")!
        #expect(cosine(plain.rows[1], expected.vectors["query"]![emptyIndex]) >= 0.99999)

        // Ids count on across input files; messages name the file and its own line.
        let dir = TestSupport.temporaryDirectory()
        let first = try TestSupport.write(EmbedCLITests.lines(["а", "б"]), name: "a.txt", in: dir)
        let second = try TestSupport.write(Data([0x61, 0x0A, 0xFF, 0x0A]), name: "b.txt", in: dir)
        let two = try EmbedCLITests.embed(["--model", folder, first, first])
        #expect(try EmbedCLITests.vectors(two.stdout).ids == ["1", "2", "3", "4"])
        let bad = try EmbedCLITests.embed(["--model", folder, first, second])
        #expect(bad.status == 2 && bad.stderr.contains("b.txt: line 2"), "\(bad.stderr)")
        #expect(try EmbedCLITests.vectors(bad.stdout).ids == ["1", "2", "3"], "records before the bad one are written")

        let prefixed = try EmbedCLITests.vectors(EmbedCLITests.embed(["--model", folder, "--id-prefix", "s3:"], stdin: EmbedCLITests.lines(["а", "б"])).stdout)
        #expect(prefixed.ids == ["s3:1", "s3:2"])

        let tsv = try EmbedCLITests.vectors(EmbedCLITests.embed(["--model", folder, "--tsv"], stdin: EmbedCLITests.lines(["x\tа", "y\t", "z\tб"])).stdout)
        #expect(tsv.ids == ["x", "y", "z"])
        #expect(maxAbsDifference(tsv.rows[0], plain.rows[0]) <= 1e-6 && maxAbsDifference(tsv.rows[1], plain.rows[1]) <= 1e-6)

        let jsonl = try EmbedCLITests.vectors(EmbedCLITests.embed(["--model", folder, "--jsonl", "--id-field", "k", "--text-field", "t"],
                                                                   stdin: EmbedCLITests.lines([#"{"k": "a1", "t": "а"}"#, #"{"k": 7, "t": "б"}"#])).stdout)
        #expect(jsonl.ids == ["a1", "7"])
        #expect(maxAbsDifference(jsonl.rows[1], plain.rows[2]) <= 1e-6)
    }

    @Test func tokenStreamFromRuTokGivesTheSameVectors() throws {
        let folder = ModelFixtures.folder("deberta-rel")
        let expected = try ModelFixtures.expected("deberta-rel")
        let tokens = try TestSupport.run("ru-tok", ["--model", folder, "--prompt", "passage"], stdin: EmbedCLITests.lines(expected.texts))
        #expect(tokens.status == 0, "\(tokens.stderr)")
        let r = try EmbedCLITests.embed(["--model", folder], stdin: tokens.stdout)
        #expect(r.status == 0, "\(r.stderr)")
        let (ids, rows, chunks) = try EmbedCLITests.vectors(r.stdout)
        #expect(ids.count == expected.texts.count)
        #expect(chunks[0].metadata["prompt"]?.stringValue == "passage: ")
        for (g, w) in zip(rows, expected.vectors["passage"]!) { #expect(cosine(g, w) >= 0.99999) }
        // A prompt option with a token stream is a usage error: the stream has its prompt.
        let bad = try EmbedCLITests.embed(["--model", folder, "--no-prompt"], stdin: tokens.stdout)
        #expect(bad.status == 64 && bad.stderr.contains("token stream"))
    }

    @Test func dtypeTruncateDimAndNoNormalize() throws {
        let folder = ModelFixtures.folder("deberta-abs")
        let input = EmbedCLITests.lines(["Москва — столица России.", "Привет, мир!"])
        let full = try EmbedCLITests.vectors(EmbedCLITests.embed(["--model", folder], stdin: input).stdout)
        let cut = try EmbedCLITests.vectors(EmbedCLITests.embed(["--model", folder, "--truncate-dim", "16"], stdin: input).stdout)
        #expect(cut.chunks[0].dim == 16 && cut.chunks[0].metadata["truncate_dim"]?.numberValue == 16)
        for (c, f) in zip(cut.rows, full.rows) {
            let head = Array(f[0..<16])
            let norm = head.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(maxAbsDifference(c, head.map { $0 / norm }) <= 1e-6, "cut, then normalised again")
        }
        let raw = try EmbedCLITests.vectors(EmbedCLITests.embed(["--model", folder, "--no-normalize"], stdin: input).stdout)
        #expect(!raw.chunks[0].isNormalized)
        let norm = raw.rows[0].reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(abs(norm - 1) > 0.01)
        #expect(cosine(raw.rows[0], full.rows[0]) > 0.999999)
        let f16 = try EmbedCLITests.vectors(EmbedCLITests.embed(["--model", folder, "--dtype", "f16"], stdin: input).stdout)
        #expect(f16.chunks[0].dtype == .f16 && maxAbsDifference(f16.rows[0], full.rows[0]) < 1e-3)
    }

    @Test func errorsNameTheLineAndExitTwo() throws {
        let folder = ModelFixtures.folder("deberta-abs")
        var r = try EmbedCLITests.embed(["--model", folder, "--tsv"], stdin: EmbedCLITests.lines(["a\tок", "no tab here"]))
        #expect(r.status == 2 && r.stderr.contains("line 2") && r.stderr.contains("tab"))
        r = try EmbedCLITests.embed(["--model", folder], stdin: Data([0x61, 0x0A, 0xFF, 0xFE, 0x0A]))
        #expect(r.status == 2 && r.stderr.contains("line 2") && r.stderr.contains("UTF-8"))
        r = try EmbedCLITests.embed(["--model", folder, "--jsonl"], stdin: EmbedCLITests.lines([#"{"text": 5}"#]))
        #expect(r.status == 2 && r.stderr.contains("line 1") && r.stderr.contains("\"text\""))
        r = try EmbedCLITests.embed(["--model", "/nonexistent/model"], stdin: Data())
        #expect(r.status == 2 && r.stderr.contains("/nonexistent/model"))
        r = try EmbedCLITests.embed(["--model", folder, "--prompt", "nope"], stdin: Data())
        #expect(r.status == 64 && r.stderr.contains("nope"))
        r = try EmbedCLITests.embed(["--model", folder, "--truncate-dim", "65"], stdin: Data())
        #expect(r.status == 64)
        r = try EmbedCLITests.embed(["--model", folder, "--dtype", "f64"], stdin: Data())
        #expect(r.status == 64)
        // Token ids the model does not have (a stream from another tokenizer).
        let chunk = Chunk.tokens(ids: ["q"], lists: [[1, 99999, 2]], metadata: StreamMetadata())
        r = try EmbedCLITests.embed(["--model", folder], stdin: try TestSupport.stream([chunk]))
        #expect(r.status == 2 && r.stderr.contains("record 1") && r.stderr.contains("99999"))
    }

    @Test func closedPipeExitsQuietly() throws {
        let folder = ModelFixtures.folder("deberta-abs")
        let script = "yes 'Привет, мир!' | head -3000 | XDG_CACHE_HOME=\(EmbedCLITests.cache) '\(TestSupport.tool("ru-embed"))' --model '\(folder)' --batch-size 8 | head -c 100 > /dev/null; echo \"${PIPESTATUS[2]}\""
        let r = try RuTok.shell(script) // bash -c, from the ru-tok tests
        #expect(String(decoding: r.stdout, as: UTF8.self) == "0\n")
        #expect(r.stderr.isEmpty, "\(r.stderr)")
    }

    @Test func vectorsComeOutBeforeTheInputEnds() throws {
        setenv("XDG_CACHE_HOME", EmbedCLITests.cache, 1)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestSupport.tool("ru-embed"))
        process.arguments = ["--model", ModelFixtures.folder("deberta-abs")]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // A filter that waited for the end of its input would block the read below: stop it then.
        let watchdog = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + 30, execute: watchdog)
        input.fileHandleForWriting.write(Data("Привет, мир!\n".utf8))
        let first = output.fileHandleForReading.availableData
        watchdog.cancel()
        #expect(try TestSupport.readAll(first).first?.ids == ["1"], "the first vector, while stdin is still open")
        try input.fileHandleForWriting.close()
        _ = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    @Test func emptyInputGivesAnEmptyStream() throws {
        let r = try EmbedCLITests.embed(["--model", ModelFixtures.folder("deberta-abs")], stdin: Data())
        #expect(r.status == 0)
        #expect(try TestSupport.readAll(r.stdout).isEmpty)
    }
}
