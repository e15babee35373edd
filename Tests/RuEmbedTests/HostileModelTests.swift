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

/// One broken model folder of scripts/make-hostile-models.py (Fixtures/hostile/models).
struct HostileModelCase: Sendable, CustomTestStringConvertible {
    var name: String
    var tool: String
    var names: String
    /// Written to input.txt, given as the input file.
    var stdin: String
    var args: [String]
    var expect: String?
    var forbid: String?
    var testDescription: String { "\(name) (\(tool))" }

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/hostile/models")

    static let all: [HostileModelCase] = {
        let bytes = Array(try! Data(contentsOf: directory.appendingPathComponent("cases.json")))
        let json = try! bytes.withUnsafeBytes { try JSONValue.parse($0) }
        return json.arrayValue!.flatMap { c in
            c["tools"]!.arrayValue!.map { tool in
                HostileModelCase(name: c["name"]!.stringValue!, tool: tool.stringValue!, names: c["names"]!.stringValue!,
                                 stdin: c["stdin"]!.stringValue!, args: c["args"]!.arrayValue!.map { $0.stringValue! },
                                 expect: c["expect"]?.stringValue, forbid: c["forbid"]?.stringValue)
            }
        }
    }()

    var folder: String { HostileModelCase.directory.appendingPathComponent(name).path }
}

/// Model folders as an attacker (or a bad upload) would publish them: every one is refused
/// with exit status 2 and one line on stderr naming the file at fault (or the record, for
/// a record the model cannot embed) — never a trap, an over-read or NaN vectors with exit 0.
@Suite struct HostileModelTests {
    /// Runs a tool with `input` in a file named input.txt: a tool that refuses its model
    /// exits before reading, and input written to a closed pipe would kill the test runner
    /// with SIGPIPE (ignoring it is inherited by every tool the other tests run).
    static func run(_ tool: String, _ arguments: [String], input: String) throws -> TestSupport.Result {
        let path = try TestSupport.write(Data(input.utf8), name: "input.txt")
        return try TestSupport.run(tool, arguments + [path])
    }

    @Test(arguments: HostileModelCase.all)
    func refusedInOneLineNamingTheFile(_ c: HostileModelCase) throws {
        let formatArgs = c.tool == "ru-tok" ? ["--format", "ids"] : []
        let r = try HostileModelTests.run(c.tool, ["--model", c.folder] + c.args + formatArgs, input: c.stdin)
        #expect(r.status == 2, "\(c.name): exit \(r.status), stderr: \(r.stderr)")
        #expect(r.stderr.hasSuffix("\n") && r.stderr.dropLast().firstIndex(of: "\n") == nil,
                "\(c.name): not one line: \(r.stderr)")
        #expect(r.stderr.contains(c.names), "\(c.name): the message does not name \(c.names): \(r.stderr)")
        if let expect = c.expect { #expect(r.stderr.contains(expect), "\(c.name): \(r.stderr)") }
        if let forbid = c.forbid { #expect(!r.stderr.contains(forbid), "\(c.name): \(r.stderr)") }
    }

    /// The corpus covers what issue 11 found (a guard against cases lost by the script).
    @Test func corpusHasTheReportedCases() {
        let names = Set(HostileModelCase.all.map(\.name))
        for required in ["st-header-length-2p63", "st-offsets-1e30", "st-shape-1e19", "st-shape-overflow", "st-shape-fraction",
                         "st-overlap", "cfg-heads-0", "cfg-layers-negative", "cfg-layers-1e30", "cfg-hidden-1e999",
                         "cfg-eps-negative", "sbert-max-1e30", "sbert-max-negative", "tok-added-id-2p40", "tok-added-id-4e9",
                         "pool-cls-empty-record", "pool-max-empty-record", "tok-id-outside-model"] {
            #expect(names.contains(required), "missing case \(required)")
        }
    }

    /// A token stream with an empty record (ru-tok of an empty line with a tokenizer that adds
    /// no special tokens): ru-embed names the record instead of pooling memory past it.
    @Test func emptyRecordOfATokenStreamIsRefused() throws {
        let folder = HostileModelCase.directory.appendingPathComponent("pool-cls-empty-record").path
        let tokens = try HostileModelTests.run("ru-tok", ["--model", folder, "--no-prompt"], input: "привет\n\n")
        #expect(tokens.status == 0, "\(tokens.stderr)")
        let r = try TestSupport.run("ru-embed", ["--model", folder], stdin: tokens.stdout)
        #expect(r.status == 2)
        #expect(r.stderr.contains("record 2") && r.stderr.contains("no tokens"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    /// A FIFO planted as the weights: refused as not a regular file, not waited on forever
    /// (run under timeout(1), so a regression fails instead of hanging the suite).
    @Test func fifoAsWeightsIsRefused() throws {
        let dir = TestSupport.temporaryDirectory()
        let good = ModelFixtures.folder("deberta-abs")
        for name in try FileManager.default.contentsOfDirectory(atPath: good) where name != "model.safetensors" {
            try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent(name).path, withDestinationPath: good + "/" + name)
        }
        #expect(mkfifo(dir.appendingPathComponent("model.safetensors").path, 0o600) == 0)
        let input = try TestSupport.write(Data("привет\n".utf8), name: "input.txt")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["20", TestSupport.tool("ru-embed"), "--model", dir.path, input]
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_CACHE_HOME"] = TestSupport.privateCache
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 2, "\(stderr)")
        #expect(stderr.contains("model.safetensors: not a regular file"), "\(stderr)")
    }

    /// ru-tok --decode --jsonl: an id of 1e30 is "not an id" (exit 2), not a trap converting it.
    @Test func hugeIDToDecodeIsRefused() throws {
        let folder = ModelFixtures.folder("deberta-abs")
        let r = try HostileModelTests.run("ru-tok", ["--model", folder, "--decode", "--jsonl"], input: "{\"ids\": [1e30, 2]}\n")
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("input.txt: line 1") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    /// Pooling itself never reads outside a text's span: an empty span pools to zeros in
    /// every mode (max would otherwise be −inf, CLS a row past the states).
    @Test(arguments: PoolingMode.allCases)
    func emptySpanPoolsToZeros(_ mode: PoolingMode) {
        let dim = 4
        let states = [Float](repeating: 1, count: 2 * dim)
        var out = [Float](repeating: 7, count: dim)
        states.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in
                EncoderKernels.pool(states: s.baseAddress!, dim: dim, texts: [(start: 2, count: 0)], modes: [mode], skip: 0,
                                    into: o.baseAddress!)
            }
        }
        #expect(out == [0, 0, 0, 0])
    }

    /// The one rule for numbers in model files: whole numbers in bounds, nothing else, and no
    /// trap on the way (Int(1e19) traps; Double(Int.max) rounds up to 2^63).
    @Test func configIntegerRule() {
        let r = 0...Int.max
        #expect(ConfigValues.integer(.number(12), r) == 12)
        #expect(ConfigValues.integer(.number(12.5), r) == nil)
        #expect(ConfigValues.integer(.number(-1), r) == nil)
        #expect(ConfigValues.integer(.number(1e19), r) == nil)
        #expect(ConfigValues.integer(.number(9.223372036854775807e18), r) == nil)
        #expect(ConfigValues.integer(.number(.infinity), r) == nil)
        #expect(ConfigValues.integer(.number(.nan), r) == nil)
        #expect(ConfigValues.integer(.string("12"), r) == nil)
        #expect(ConfigValues.integer(.number(64), 1...64) == 64)
        #expect(ConfigValues.integer(.number(65), 1...64) == nil)
        #expect(ConfigValues.integer(.number(-1), Int(Int32.min)...0) == -1)
    }
}
