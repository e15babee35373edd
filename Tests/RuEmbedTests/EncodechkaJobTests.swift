import Foundation
import Testing
@testable import RuCore

/// Examples/encodechka/Makefile, Encodechka's tasks as a make job over the tools, run with the
/// tools this build made: its STS score on the fixture pairs (Fixtures/encodechka, written by
/// scripts/make-encodechka-fixture.py) equals sentence-transformers' by Encodechka's protocol.
/// Needs make and awk, not Python.
@Suite(.serialized) struct EncodechkaJobTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let example = root.appendingPathComponent("Examples/encodechka").path
    static let data = root.appendingPathComponent("Tests/RuEmbedTests/Fixtures/encodechka").path

    /// The scores scripts/make-encodechka-fixture.py got from sentence-transformers.
    static func expected() throws -> [String: Double] {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: data + "/expected.json")))
        let json = try bytes.withUnsafeBytes { try JSONValue.parse($0) }
        guard case .object(let models)? = json["models"] else { return [:] }
        var scores: [String: Double] = [:]
        for (name, value) in models { scores[name] = value["sts"]?.numberValue }
        return scores
    }

    /// `make -C Examples/encodechka ARGS...` with the built tools first on PATH.
    static func make(_ arguments: [String]) throws -> TestSupport.Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["make", "--no-print-directory", "-C", example] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = TestSupport.productsDirectory.path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        if environment["XDG_CACHE_HOME"] == nil { environment["XDG_CACHE_HOME"] = TestSupport.privateCache }
        // Not a sub-make of whatever started the tests (make test): no inherited jobserver or flags.
        for key in ["MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MODEL", "DATA", "OUT"] { environment[key] = nil }
        process.environment = environment
        let output = Pipe(), errors = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        nonisolated(unsafe) var err = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { err = errors.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        group.wait()
        return TestSupport.Result(status: process.terminationStatus, stdout: out, stderr: String(decoding: err, as: UTF8.self))
    }

    static func score(_ result: TestSupport.Result, _ task: String) -> Double? {
        result.lines.first { $0.hasPrefix(task + "\t") }.flatMap { Double($0.dropFirst(task.count + 1)) }
    }

    /// The four models one after the other into one OUT: each gets its own vectors folder.
    @Test func stsEqualsSentenceTransformers() throws {
        let expected = try EncodechkaJobTests.expected()
        let out = TestSupport.temporaryDirectory().path
        for (n, name) in ["bert-e5", "deberta-rel", "roberta-mean", "xlmr-pool"].enumerated() {
            let want = try #require(expected[name], "no expected score for \(name)")
            let arguments = ["MODEL=\(ModelFixtures.folder(name))", "DATA=\(EncodechkaJobTests.data)", "OUT=\(out)", "sts"]
            let r = try EncodechkaJobTests.make(arguments)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.lines.count == 1, "one line for one task: \(r.lines)")
            let got = try #require(EncodechkaJobTests.score(r, "STS"), "\(r.text)")
            #expect(abs(got - want) <= 1e-3, "\(name): make \(got), sentence-transformers \(want)")

            // Made once: a second run reuses every model's vectors (untouched) and prints the same.
            let folders = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0 != "text" }
            #expect(folders.count == n + 1, "one vectors folder per model: \(folders)")
            let vectors = try folders.flatMap { folder in
                try FileManager.default.contentsOfDirectory(atPath: out + "/" + folder)
                    .filter { $0.hasSuffix(".vec") }.map { out + "/" + folder + "/" + $0 }
            }
            #expect(vectors.count == 2 * folders.count, "two text sets per model: \(vectors)")
            func stamps() throws -> [Date?] {
                try vectors.map { try FileManager.default.attributesOfItem(atPath: $0)[.modificationDate] as? Date }
            }
            let before = try stamps()
            let again = try EncodechkaJobTests.make(arguments)
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.text == r.text)
            #expect(try stamps() == before, "vectors were made again")
        }
    }

    @Test func theModelIsRequired() throws {
        let r = try EncodechkaJobTests.make(["DATA=\(EncodechkaJobTests.data)", "OUT=\(TestSupport.temporaryDirectory().path)", "sts"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("MODEL is not set"), "\(r.stderr)")
    }
}
