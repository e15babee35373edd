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

/// ru-vec as a user runs it: a subprocess fed files and pipes.
@Suite struct VecToolTests {
    typealias T = TestSupport

    func sampleStream(count: Int = 10, dim: Int = 6, seed: UInt64 = 1, ids: [String]? = nil) throws -> (String, [String], [Float]) {
        var random = T.Random(seed: seed)
        let ids = ids ?? (0..<count).map { T.awkwardIDs[$0 % T.awkwardIDs.count] + "#\($0)" }
        let values = random.vectors(ids.count, dim)
        let path = try T.write(try T.stream([T.vectorChunk(ids: ids, values: values, dim: dim)]))
        return (path, ids, values)
    }

    @Test func jsonlExportIsExactAndImportsBack() throws {
        let (path, ids, values) = try sampleStream()
        let export = try T.run("ru-vec", ["export", "--to", "jsonl", path])
        #expect(export.status == 0, "\(export.stderr)")
        #expect(export.lines.count == ids.count)
        // Exactly {"id": "…", "vector": [ … ]}, parseable by Python-style JSON readers.
        let first = try JSONSerialization.jsonObject(with: Data(export.lines[1].utf8)) as! [String: Any]
        #expect(Set(first.keys) == ["id", "vector"])
        #expect(export.lines[0].hasPrefix("{\"id\": \"plain#0\", \"vector\": ["))
        #expect(first["id"] as? String == ids[1])
        let back = try T.run("ru-vec", ["import", "--from", "jsonl", "-"], stdin: export.stdout)
        #expect(back.status == 0, "\(back.stderr)")
        let chunks = try T.readAll(back.stdout)
        #expect(chunks.flatMap(\.ids) == ids)
        #expect(chunks.flatMap { $0.floats() } == values)
    }

    @Test func tsvRoundTripEscapesIds() throws {
        let (path, ids, values) = try sampleStream()
        let export = try T.run("ru-vec", ["export", "--to", "tsv", path])
        #expect(export.status == 0)
        #expect(export.lines.count == ids.count)
        #expect(export.lines.allSatisfy { $0.split(separator: "\t", omittingEmptySubsequences: false).count == 7 })
        #expect(export.lines[1].hasPrefix("tab\\there#1\t"))
        let back = try T.run("ru-vec", ["import", "--from", "tsv"], stdin: export.stdout)
        let chunks = try T.readAll(back.stdout)
        #expect(chunks.flatMap(\.ids) == ids)
        #expect(chunks.flatMap { $0.floats() } == values)
    }

    @Test func npyAndFvecsRoundTripWithIds() throws {
        let (path, ids, values) = try sampleStream(count: 7, dim: 5)
        let dir = T.temporaryDirectory()
        for format in ["npy", "fvecs"] {
            let file = dir.appendingPathComponent("v.\(format)").path, idFile = dir.appendingPathComponent("\(format).ids").path
            let export = try T.run("ru-vec", ["export", "--to", format, "-o", file, "--ids", idFile, path])
            #expect(export.status == 0, "\(export.stderr)")
            let back = try T.run("ru-vec", ["import", "--from", format, "--ids", idFile, file])
            #expect(back.status == 0, "\(back.stderr)")
            let chunks = try T.readAll(back.stdout)
            #expect(chunks.flatMap(\.ids) == ids, "\(format)")
            #expect(chunks.flatMap { $0.floats() } == values, "\(format)")
            // Without --ids the ids are 1-based positions.
            let positional = try T.readAll(try T.run("ru-vec", ["import", "--from", format, file]).stdout)
            #expect(positional.flatMap(\.ids) == (1...7).map(String.init))
        }
        // The .npy header must be what NumPy wrote: magic, version 1.0, a dict with the shape.
        let npy = try Data(contentsOf: dir.appendingPathComponent("v.npy"))
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0]
        #expect(Array(npy.prefix(8)) == magic)
        #expect(String(decoding: npy[10..<128], as: UTF8.self).contains("'shape': (7, 5)"))
        #expect(npy.count == 128 + 7 * 5 * 4)
    }

    @Test func npyNeedsAnOutputFile() throws {
        let (path, _, _) = try sampleStream()
        let r = try T.run("ru-vec", ["export", "--to", "npy", path])
        #expect(r.status == 64)
        #expect(r.stderr.contains("-o"))
    }

    @Test func importRejectsRaggedAndNonNumericRecordsNamingTheLine() throws {
        let ragged = try T.run("ru-vec", ["import", "--from", "jsonl"], stdin: Data("{\"id\": \"a\", \"vector\": [1, 2]}\n{\"id\": \"b\", \"vector\": [1]}\n".utf8))
        #expect(ragged.status == 2)
        #expect(ragged.stderr.contains("<stdin>: line 2: dimension 1"))
        let text = try T.run("ru-vec", ["import", "--from", "tsv"], stdin: Data("a\t1\t2\nb\t1\tx\n".utf8))
        #expect(text.status == 2)
        #expect(text.stderr.contains("line 2: column 3 is not a finite number"))
        let badJSON = try T.run("ru-vec", ["import", "--from", "jsonl"], stdin: Data("{\"vector\": [1,]}\n".utf8))
        #expect(badJSON.status == 2 && badJSON.stderr.contains("line 1"))
        let ids = try T.write(Data("only-one\n".utf8), name: "ids.txt")
        let tooFew = try T.run("ru-vec", ["import", "--from", "tsv", "--ids", ids], stdin: Data("a\t1\nb\t2\n".utf8))
        #expect(tooFew.status == 2 && tooFew.stderr.contains("fewer"))
    }

    @Test func catConcatenatesConvertsAndChecks() throws {
        let (a, idsA, valuesA) = try sampleStream(count: 5, dim: 4, seed: 1)
        let (b, idsB, valuesB) = try sampleStream(count: 3, dim: 4, seed: 2, ids: ["x", "y", "z"])
        let plain = try T.run("ru-vec", ["cat", a, b])
        #expect(plain.status == 0, "\(plain.stderr)")
        let chunks = try T.readAll(plain.stdout)
        #expect(chunks.flatMap(\.ids) == idsA + idsB)
        #expect(chunks.flatMap { $0.floats() } == valuesA + valuesB)

        for dtype in ["f16", "int8", "binary"] {
            let converted = try T.run("ru-vec", ["cat", "--dtype", dtype, a, b])
            #expect(converted.status == 0)
            let c = try T.readAll(converted.stdout)
            #expect(c.allSatisfy { $0.dtype.description == dtype })
            #expect(c.flatMap(\.ids) == idsA + idsB)
        }
        let normalized = try T.readAll(try T.run("ru-vec", ["cat", "--normalize", a]).stdout)
        #expect(normalized.allSatisfy { $0.isNormalized })
        let v = normalized[0].floats()
        let squaredNorm: Float = v[0..<4].reduce(0) { $0 + $1 * $1 }
        #expect(abs(squaredNorm - 1) < 1e-5)

        let rechunked = try T.readAll(try T.run("ru-vec", ["cat", "--chunk-records", "2", a]).stdout)
        #expect(rechunked.map(\.count) == [2, 2, 1])

        let (c, _, _) = try sampleStream(count: 2, dim: 3, seed: 3)
        let mismatch = try T.run("ru-vec", ["cat", a, c])
        #expect(mismatch.status == 2)
        #expect(mismatch.stderr.contains("dimension changes from 4 to 3"))
    }

    @Test func infoAndVerify() throws {
        let (path, _, _) = try sampleStream(count: 10, dim: 6)
        let info = try T.run("ru-vec", ["info", "--json", path])
        #expect(info.status == 0)
        let object = try JSONSerialization.jsonObject(with: info.stdout) as! [String: Any]
        #expect(object["records"] as? Int == 10)
        #expect(object["dimension"] as? Int == 6)
        #expect(object["dtype"] as? String == "f32")
        #expect(object["frames"] as? Int == 1)
        let text = try T.run("ru-vec", ["info", path])
        #expect(text.text.contains("records: 10"))

        let bad = try T.write(Data("garbage".utf8), name: "bad.vec")
        let verify = try T.run("ru-vec", ["verify", path, bad])
        #expect(verify.status == 2)
        #expect(verify.text == "\(path): ok, 10 records in 1 frame\n")
        #expect(verify.stderr.contains("bad.vec: not a vector stream"))
    }

    /// The check after a distributed job: shards together hold exactly the listed ids, each once.
    @Test func verifyExpectIDs() throws {
        let ids = (1...12).map { "doc-\($0)" }
        let (a, _, _) = try sampleStream(dim: 4, seed: 2, ids: Array(ids[0..<5]))
        let (b, _, _) = try sampleStream(dim: 4, seed: 3, ids: Array(ids[5..<12]))
        let list = try T.write(Data(ids.reversed().map { $0 + "\n" }.joined().utf8), name: "ids.txt")

        let good = try T.run("ru-vec", ["verify", "--expect-ids", list, b, a])
        #expect(good.status == 0)
        #expect(good.text.hasSuffix("ids: ok, 12 ids, each once\n"))
        let quiet = try T.run("ru-vec", ["verify", "-q", "--expect-ids", list, a, b])
        #expect(quiet.status == 0 && quiet.text.isEmpty)

        // A shard lost: its ids are missing, named in the list's order (reversed here).
        let lost = try T.run("ru-vec", ["verify", "--expect-ids", list, a])
        #expect(lost.status == 1)
        #expect(lost.text.contains("ids: 7 of 12 listed ids missing (first: \"doc-12\", \"doc-11\", \"doc-10\", \"doc-9\", \"doc-8\")\n"))
        // A shard returned twice (a retried job), and a stranger.
        let (c, _, _) = try sampleStream(dim: 4, seed: 4, ids: ["doc-3", "stranger\t1", "doc-3"])
        let twice = try T.run("ru-vec", ["verify", "--expect-ids", list, a, b, a, c])
        #expect(twice.status == 1)
        #expect(twice.text.contains("ids: 5 ids found more than once (first: \"doc-5\" ×2, \"doc-4\" ×2, \"doc-3\" ×4, \"doc-2\" ×2, \"doc-1\" ×2)\n"))
        #expect(twice.text.contains("ids: 1 record with ids not listed (first: \"stranger\\t1\")\n"))
        #expect(!twice.text.contains("missing"))

        // A bad list is bad data, named by line; a bad stream still exits 2.
        let doubled = try T.write(Data("x\ny\nx\n".utf8), name: "doubled.txt")
        let bad = try T.run("ru-vec", ["verify", "--expect-ids", doubled, a])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("doubled.txt line 3: the id \"x\" is listed twice (first on line 1)"))
        let garbage = try T.write(Data("garbage".utf8), name: "garbage.vec")
        #expect(try T.run("ru-vec", ["verify", "--expect-ids", list, a, b, garbage]).status == 2)
        // A usage error exits before reading standard input: none is given (a write to the
        // closed pipe would kill the test runner with SIGPIPE).
        #expect(try T.run("ru-vec", ["verify", "--expect-ids", "-"]).status == 64)
    }

    @Test func emptyInputIsAnEmptyStream() throws {
        for args in [["info"], ["verify"], ["cat"], ["export", "--to", "jsonl"], ["import", "--from", "jsonl"]] {
            let r = try T.run("ru-vec", args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
            #expect(r.stderr.isEmpty)
        }
        #expect(try T.run("ru-vec", ["cat"]).stdout.isEmpty)
    }

    @Test func usageErrorsExit64() throws {
        #expect(try T.run("ru-vec", ["export", "--to", "xml"]).status == 64)
        #expect(try T.run("ru-vec", ["cat", "--dtype", "f64"]).status == 64)
        #expect(try T.run("ru-vec", ["frobnicate"]).status == 64)
        #expect(try T.run("ru-vec", ["info", "/nonexistent/file.vec"]).status == 2)
    }
}

/// Pipes and terminals: `tool | head` and binary output to a tty.
@Suite struct UnixMannersTests {
    typealias T = TestSupport

    /// Starts a tool whose stdout is a pipe we close after reading a little.
    func runAndCloseEarly(_ tool: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: T.tool(tool))
        process.arguments = arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        _ = output.fileHandleForReading.readData(ofLength: 100)
        try output.fileHandleForReading.close()
        process.waitUntilExit()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, stderr)
    }

    @Test func closedPipeIsAQuietSuccess() throws {
        var random = T.Random(seed: 9)
        let n = 20_000, dim = 16
        let path = try T.write(try T.stream([T.vectorChunk(ids: (0..<n).map(String.init), values: random.vectors(n, dim), dim: dim)]))
        for (tool, args) in [("ru-vec", ["export", "--to", "tsv", path]),
                             ("ru-vec", ["export", "--to", "jsonl", path]),
                             ("ru-sim", ["--cross", path, path]),
                             ("ru-knn", ["--index", path, "-k", "50", path])] {
            let (status, stderr) = try runAndCloseEarly(tool, args)
            #expect(status == 0, "\(tool) \(args)")
            #expect(stderr.isEmpty, "\(tool): \(stderr)")
        }
    }

    @Test func binaryOutputToATerminalIsRefused() throws {
        // A pseudo-terminal by hand (posix_openpt is not in Swift's Glibc module).
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY)
        try #require(master >= 0)
        defer { close(master) }
        var unlock: Int32 = 0, number: UInt32 = 0
        _ = ioctl(master, 0x4004_5431 /* TIOCSPTLCK */, &unlock)
        _ = ioctl(master, 0x8004_5430 /* TIOCGPTN */, &number)
        let slavePath = "/dev/pts/\(number)"
        let slave = FileHandle(forWritingAtPath: slavePath)!
        let input = try T.write(Data("{\"vector\": [1, 2]}\n".utf8), name: "v.jsonl")
        for force in [false, true] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: T.tool("ru-vec"))
            process.arguments = ["import", "--from", "jsonl", input] + (force ? ["--force"] : [])
            let errors = Pipe()
            process.standardOutput = slave
            process.standardError = errors
            try process.run()
            process.waitUntilExit()
            let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            if force {
                #expect(process.terminationStatus == 0)
            } else {
                #expect(process.terminationStatus == 64)
                #expect(stderr.contains("refusing to write a binary vector stream to a terminal"))
            }
        }
    }

    @Test func helpHasExamples() throws {
        for tool in ["ru-vec", "ru-sim", "ru-knn"] {
            let r = try T.run(tool, ["--help"])
            #expect(r.status == 0)
            #expect(r.text.contains("Examples:"), "\(tool)")
        }
    }
}

/// Records flow through a pipeline as they come, not when a buffer fills or input ends.
@Suite struct StreamingTests {
    typealias T = TestSupport

    /// Reads from `handle` until `enough(data)` or the deadline; returns what was read.
    func read(_ handle: FileHandle, until enough: (Data) -> Bool, seconds: Double = 20) -> Data {
        var data = Data()
        let deadline = Date().addingTimeInterval(seconds)
        while !enough(data) && Date() < deadline {
            let more = handle.availableData
            if more.isEmpty { break }
            data += more
        }
        return data
    }

    func start(_ tool: String, _ arguments: [String]) throws -> (Process, FileHandle, FileHandle) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: T.tool(tool))
        process.arguments = arguments
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // A tool that holds records back would block these tests; kill it so they fail instead.
        DispatchQueue.global().asyncAfter(deadline: .now() + 30) { if process.isRunning { process.terminate() } }
        return (process, input.fileHandleForWriting, output.fileHandleForReading)
    }

    @Test func importWritesEachRecordBeforeWaitingForMore() throws {
        let (process, stdin, stdout) = try start("ru-vec", ["import", "--from", "jsonl", "--force"])
        try stdin.write(contentsOf: Data("{\"id\": \"first\", \"vector\": [1, 2]}\n".utf8))
        // The first record must arrive while the input is still open.
        let first = read(stdout) { (try? T.readAll($0))?.first?.ids == ["first"] }
        #expect((try? T.readAll(first))?.flatMap(\.ids) == ["first"])
        try stdin.write(contentsOf: Data("{\"id\": \"second\", \"vector\": [3, 4]}\n".utf8))
        try stdin.close()
        let rest = stdout.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(try T.readAll(first + rest).flatMap(\.ids) == ["first", "second"])
    }

    @Test func knnAnswersQueriesAsTheyCome() throws {
        var random = T.Random(seed: 5)
        let corpus = try T.write(try T.stream([T.vectorChunk(ids: ["a", "b", "c"], values: random.vectors(3, 4), dim: 4)]))
        let (process, stdin, stdout) = try start("ru-knn", ["--index", corpus, "-k", "1"])
        try stdin.write(contentsOf: try T.stream([T.vectorChunk(ids: ["q1"], values: random.vectors(1, 4), dim: 4)]))
        let first = read(stdout) { String(decoding: $0, as: UTF8.self).hasSuffix("\n") }
        #expect(String(decoding: first, as: UTF8.self).hasPrefix("q1\t1\t"))
        try stdin.write(contentsOf: try T.stream([T.vectorChunk(ids: ["q2"], values: random.vectors(1, 4), dim: 4)]))
        try stdin.close()
        let rest = String(decoding: stdout.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(rest.hasPrefix("q2\t1\t"))
    }

    @Test func doubleDashEndsOptions() throws {
        let dir = T.temporaryDirectory()
        try T.stream([T.vectorChunk(ids: ["x"], values: [1], dim: 1)]).write(to: dir.appendingPathComponent("-odd.vec"))
        let r = try T.run("ru-vec", ["verify", "--", "-odd.vec"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.text == "-odd.vec: ok, 1 record in 1 frame\n")
    }
}
