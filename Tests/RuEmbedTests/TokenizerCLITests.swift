import Foundation
import Crypto
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

/// ru-tok run as a subprocess, the way a shell pipeline runs it.
enum RuTok {
    /// The built tool sits next to the test bundle (.build/debug/ru-tok).
    static let path: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // On macOS the bundle's executable lies inside ru-embedPackageTests.xctest/Contents/MacOS.
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("ru-tok").path) && dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("ru-tok").path
    }()

    struct Result {
        var status: Int32
        var stdout: Data
        var stderr: String
        var lines: [String] { String(decoding: stdout, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init) }
    }

    static func run(_ arguments: [String], input: Data = Data()) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Feed stdin from another thread so a full stdout pipe cannot deadlock us.
        let writer = Thread {
            stdin.fileHandleForWriting.write(input)
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: out, stderr: String(decoding: err, as: UTF8.self))
    }

    static func shell(_ script: String) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script]
        process.environment = ProcessInfo.processInfo.environment.merging(["RU_TOK": path]) { $1 }
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: out, stderr: String(decoding: err, as: UTF8.self))
    }

    static func fixture(_ name: String) -> String {
        TokenizerFixtures.directory.appendingPathComponent(name).path
    }
}

@Suite(.serialized) struct TokenizerCLITests {
    let roberta = RuTok.fixture("roberta-bpe.json")

    @Test func jsonlInputGivesTheRustIDsOnEveryLineWithOneAndTwoThreads() throws {
        let texts = try Data(contentsOf: URL(fileURLWithPath: RuTok.fixture("texts.jsonl")))
        let expected = try TokenizerFixtures.jsonLines("roberta-bpe.expected.jsonl").map {
            $0["ids"]!.uint32s.map(String.init).joined(separator: " ")
        }
        for threads in ["1", "2"] {
            let r = try RuTok.run(["--tokenizer", roberta, "--jsonl", "--format", "ids", "--threads", threads], input: texts)
            #expect(r.status == 0, "\(r.stderr)")
            // Without ids in the input the JSONL records carry none: lines are numbered, output is ids only.
            #expect(r.lines.map { $0.split(separator: "\t").last.map(String.init) ?? "" } == expected)
        }
    }

    @Test func recordsOutEqualRecordsIn() throws {
        let input = Data("первая\n\n  \r\nчетвёртая с CRLF\r\nпоследняя без перевода".utf8)
        for format in ["ids", "tokens", "jsonl"] {
            let r = try RuTok.run(["--tokenizer", roberta, "--format", format], input: input)
            #expect(r.status == 0)
            #expect(r.lines.count == 5, "\(format): \(r.lines)")
        }
        let empty = try RuTok.run(["--tokenizer", roberta, "--format", "ids"], input: Data("\n".utf8))
        #expect(empty.lines == ["0 2"]) // an empty line still gives <s> </s>

        let nul = try RuTok.run(["--tokenizer", roberta, "--format", "ids", "-0"], input: Data("a\nb\0\0c".utf8))
        #expect(nul.stdout.split(separator: 0, omittingEmptySubsequences: false).count == 4) // 3 records + the end
    }

    @Test func streamCarriesIDsTokensAndMetadata() throws {
        let input = Data("Привет, мир!\n\nтекст с <mask> внутри\n".utf8)
        let r = try RuTok.run(["--tokenizer", roberta, "--max-length", "5"], input: input)
        #expect(r.status == 0, "\(r.stderr)")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ru-tok-test-\(getpid()).stream").path
        try r.stdout.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let reader = try VectorStreamReader(path: path)
        var ids: [String] = [], lists: [[UInt32]] = []
        while let chunk = try reader.next() {
            #expect(chunk.kind == .tokens)
            let digest = SHA256.hex(try TokenizerFixtures.data("roberta-bpe.json"))
            #expect(chunk.metadata["tokenizer_digest"] == .string(digest))
            #expect(chunk.metadata["max_length"] == .number(5))
            #expect(chunk.metadata["prompt"] == .string(""))
            ids += chunk.ids
            lists += chunk.tokenLists()
        }
        #expect(ids == ["1", "2", "3"])
        let tokenizer = try TokenizerFixtures.tokenizer("roberta-bpe")
        #expect(lists == ["Привет, мир!", "", "текст с <mask> внутри"].map { tokenizer.encode($0, maxLength: 5).ids })
        #expect(lists.map(\.count) == [5, 2, 5])
    }

    @Test func closedPipeIsAQuietSuccess() throws {
        // ru-tok's own status: the producer in front of it is not the point here.
        let r = try RuTok.shell("""
            input=$(mktemp); trap 'rm -f "$input"' EXIT
            yes 'Съешь же ещё этих мягких французских булок, да выпей чаю.' | head -n 200000 > "$input"
            "$RU_TOK" --tokenizer '\(roberta)' --format ids < "$input" | head -n 1
            exit ${PIPESTATUS[0]}
            """)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.isEmpty)
        #expect(r.lines.count == 1)
    }

    @Test func invalidUTF8StopsNamingTheLineUnlessLossy() throws {
        let input = Data([0x6F, 0x6B, 0x0A] + [0xD0, 0x9F, 0xFF, 0xE2, 0x82, 0x0A] + Array("ещё\n".utf8))
        let strict = try RuTok.run(["--tokenizer", roberta, "--format", "ids"], input: input)
        #expect(strict.status == 2)
        #expect(strict.stderr.contains("line 2"))
        #expect(strict.stderr.contains("invalid UTF-8"))
        #expect(strict.lines.count == 1) // the good record before it is written

        let lossy = try RuTok.run(["--tokenizer", roberta, "--format", "jsonl", "--lossy"], input: input)
        #expect(lossy.status == 0)
        #expect(lossy.lines.count == 3)
        // Python: b"\xd0\x9f\xff\xe2\x82".decode("utf-8", "replace") == "П\ufffd\ufffd"
        let tokenizer = try TokenizerFixtures.tokenizer("roberta-bpe")
        let want = tokenizer.encode("П\u{FFFD}\u{FFFD}").ids.map(String.init).joined(separator: ", ")
        #expect(lossy.lines[1].contains("\"ids\": [\(want)]"))
    }

    @Test func lossyDecodingReplacesLikePython() {
        func decode(_ bytes: [UInt8]) -> [UInt32] {
            var out: [UInt32] = [], replaced = 0
            _ = bytes.withUnsafeBytes { TextDecoding.scalars($0, lossy: true, into: &out, replaced: &replaced) }
            return out
        }
        // Expectations from CPython's bytes.decode("utf-8", errors="replace").
        #expect(decode([0xE2, 0x82]) == [0xFFFD])
        #expect(decode([0xF0, 0x80, 0x80]) == [0xFFFD, 0xFFFD, 0xFFFD])
        #expect(decode([0xED, 0xA0, 0x80]) == [0xFFFD, 0xFFFD, 0xFFFD])
        #expect(decode([0xC0, 0xAF, 0x41]) == [0xFFFD, 0xFFFD, 0x41])
        #expect(decode([0xF4, 0x90, 0x80, 0x80]) == [0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD])
        #expect(decode([0xF0, 0x9F, 0x98, 0x41]) == [0xFFFD, 0x41])
    }

    @Test func modelFolderPromptsAndMaxLength() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ru-tok-model-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(atPath: roberta, toPath: dir.appendingPathComponent("tokenizer.json").path)
        try Data(#"{"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": "query"}"#.utf8)
            .write(to: dir.appendingPathComponent("config_sentence_transformers.json"))
        try Data(#"{"max_seq_length": 6, "do_lower_case": false}"#.utf8).write(to: dir.appendingPathComponent("sentence_bert_config.json"))
        let tokenizer = try TokenizerFixtures.tokenizer("roberta-bpe")
        let text = "Москва — столица России."
        func ids(_ s: String, _ n: Int?) -> String { tokenizer.encode(s, maxLength: n).ids.map(String.init).joined(separator: " ") }

        let byDefault = try RuTok.run(["--model", dir.path, "--format", "ids"], input: Data((text + "\n").utf8))
        #expect(byDefault.lines == [ids("query: " + text, 6)])
        let passage = try RuTok.run(["--model", dir.path, "--prompt", "passage", "--max-length", "0", "--format", "ids"], input: Data((text + "\n").utf8))
        #expect(passage.lines == [ids("passage: " + text, nil)])
        let none = try RuTok.run(["--model", dir.path, "--no-prompt", "--format", "ids"], input: Data((text + "\n").utf8))
        #expect(none.lines == [ids(text, 6)])
        let unknown = try RuTok.run(["--model", dir.path, "--prompt", "nope", "--format", "ids"], input: Data())
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("query, passage"))
    }

    @Test func usageErrorsAndDecode() throws {
        #expect(try RuTok.run(["--tokenizer", roberta, "--tsv", "--jsonl"]).status == 64)
        // Without either, ru-tok uses the default model (HubTests: offlineUsesTheCacheAndExplainsAnEmptyOne).
        #expect(try RuTok.run(["--tokenizer", roberta, "--model", "org/name", "--format", "ids"]).status == 64)
        let bad = try RuTok.run(["--tokenizer", RuTok.fixture("texts.jsonl"), "--format", "ids"])
        #expect(bad.status == 2)

        let round = try RuTok.shell("""
            printf 'Ёлка и е\\xcc\\x88лка 👍🏽\\n' | "$RU_TOK" --tokenizer '\(roberta)' --format ids | "$RU_TOK" --tokenizer '\(roberta)' --decode
            """)
        #expect(round.status == 0, "\(round.stderr)")
        #expect(round.lines == ["Ёлка и е\u{0308}лка 👍🏽"])
        #expect(round.lines.first?.unicodeScalars.count == "Ёлка и е\u{0308}лка 👍🏽".unicodeScalars.count)

        // The default output (a token stream) decodes too, with its record ids.
        let fromStream = try RuTok.shell("""
            printf 'Ёлка\\n\\nтекст с <mask>\\n' | "$RU_TOK" --tokenizer '\(roberta)' | "$RU_TOK" --tokenizer '\(roberta)' --decode
            """)
        #expect(fromStream.status == 0, "\(fromStream.stderr)")
        #expect(fromStream.lines == ["1\tЁлка", "2\t", "3\tтекст с"])

        let tsv = try RuTok.run(["--tokenizer", roberta, "--tsv", "--format", "tokens"], input: Data("doc-1\tПривет\nбез табуляции\n".utf8))
        #expect(tsv.status == 2)
        #expect(tsv.lines.first?.hasPrefix("doc-1\t<s> ") == true)
        #expect(tsv.stderr.contains("line 2"))
    }
}
