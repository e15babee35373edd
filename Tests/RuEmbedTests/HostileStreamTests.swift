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

/// Hostile streams and inputs (scripts/make-hostile-streams.py) through every command that
/// reads them, and the rules that keep writers from writing what readers refuse: record
/// limits, the finite-values policy, and token-stream sniffing.
@Suite struct HostileStreamTests {
    typealias T = TestSupport

    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/hostile/streams")
    static let tokenizer = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizers/roberta-bpe.json").path

    static func files(_ extensions: Set<String>) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: corpus.path)
            .filter { extensions.contains(($0 as NSString).pathExtension) }.sorted()
    }

    /// One run of a tool over a hostile input: by path (messages name it) or on stdin
    /// (messages name `<stdin>`).
    struct Run: Sendable {
        var tool: String
        var arguments: [String]
        var stdin: String? = nil
        var names: String
    }

    /// Every command that reads each kind of input, run on every file of that kind.
    static func runs() throws -> [Run] {
        let good = try T.write(try T.stream([T.vectorChunk(ids: ["g1", "g2"], values: [1, 0, 0, 1], dim: 2)]), name: "good.vec")
        let model = ModelFixtures.folder("deberta-abs")
        var runs: [Run] = []
        for name in try files(["vec"]) {
            let f = corpus.appendingPathComponent(name).path
            runs += [
                Run(tool: "ru-vec", arguments: ["verify", f], names: f),
                Run(tool: "ru-vec", arguments: ["info", f], names: f),
                Run(tool: "ru-vec", arguments: ["export", "--to", "tsv", f], names: f),
                Run(tool: "ru-vec", arguments: ["export", "--to", "jsonl"], stdin: f, names: "<stdin>"),
                Run(tool: "ru-vec", arguments: ["cat", f], names: f),
                Run(tool: "ru-vec", arguments: ["cat", "--dtype", "int8", good, f], names: f),
                Run(tool: "ru-sim", arguments: [f, f], names: f),
                Run(tool: "ru-sim", arguments: ["--cross", good, f], names: f),
                Run(tool: "ru-knn", arguments: ["--index", f, good], names: f),
                Run(tool: "ru-knn", arguments: ["--index", good, f], names: f),
            ]
        }
        for name in try files(["tok"]) {
            let f = corpus.appendingPathComponent(name).path
            runs += [
                Run(tool: "ru-vec", arguments: ["verify", f], names: f),
                Run(tool: "ru-vec", arguments: ["info", f], names: f),
                Run(tool: "ru-embed", arguments: ["--model", model, f], names: f),
                Run(tool: "ru-embed", arguments: ["--model", model], stdin: f, names: "<stdin>"),
                Run(tool: "ru-tok", arguments: ["--decode", "--tokenizer", tokenizer, f], names: f),
                Run(tool: "ru-tok", arguments: ["--decode", "--tokenizer", tokenizer], stdin: f, names: "<stdin>"),
            ]
        }
        for name in try files(["jsonl", "tsv", "npy", "fvecs"]) {
            let f = corpus.appendingPathComponent(name).path
            runs.append(Run(tool: "ru-vec", arguments: ["import", "--from", (name as NSString).pathExtension, f], names: f))
        }
        return runs
    }

    /// Exit status 2 and exactly one line on stderr, naming the file: never a crash, a
    /// hang, a usage error, a silent success or a multi-line trace.
    @Test func everyCommandRefusesEveryHostileInputInOneLine() throws {
        let runs = try HostileStreamTests.runs()
        #expect(runs.count > 500)
        let lock = NSLock()
        nonisolated(unsafe) var failures: [String] = []
        let environment = ProcessInfo.processInfo.environment.merging(["XDG_CACHE_HOME": T.privateCache]) { $1 }
        DispatchQueue.concurrentPerform(iterations: runs.count) { i in
            let run = runs[i]
            let process = Process()
            process.executableURL = URL(fileURLWithPath: T.tool(run.tool))
            process.arguments = run.arguments
            process.environment = environment
            let errors = Pipe()
            process.standardInput = run.stdin.flatMap { FileHandle(forReadingAtPath: $0) } ?? FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            process.standardError = errors
            do { try process.run() } catch {
                lock.withLock { failures.append("\(run): \(error)") }
                return
            }
            let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            let lines = stderr.split(separator: "\n", omittingEmptySubsequences: false)
            let named = stderr.hasPrefix("\(run.tool): \(run.names): ")
            if process.terminationStatus != 2 || lines.count != 2 || !lines[1].isEmpty || !named {
                let command = ([run.tool] + run.arguments).joined(separator: " ") + (run.stdin.map { " < \($0)" } ?? "")
                lock.withLock { failures.append("\(command): exit \(process.terminationStatus), stderr \(stderr.prefix(300).debugDescription)") }
            }
        }
        let found = lock.withLock { failures }
        #expect(found.isEmpty, "\(found.count) of \(runs.count) runs:\n\(found.prefix(40).joined(separator: "\n"))")
    }

    // MARK: Readers: a vector stream never carries a non-finite value

    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func readersRefuseNonFiniteValues(value: Float) throws {
        for dtype in [ElementType.f32, .f16] {
            // Written past the writer's guard: the chunk is made directly.
            let chunk = T.vectorChunk(ids: ["a", "b", "c"], values: [1, 2, 3, 4, value, 6], dim: 2, dtype: dtype)
            let data = try T.stream([chunk])
            #expect(throws: RuEmbedError.self) { try T.readAll(data) }
            do { _ = try T.readAll(data) } catch let error as RuEmbedError {
                #expect(error.message.contains("frame 1: record 3: a value is not finite"), "\(error.message)")
            }
        }
    }

    @Test func readersRefuseNonFiniteCalibrations() throws {
        // JSON has no infinity: 1e999 is how one reaches a reader (it parses to one).
        let cases: [(starts: String, steps: String, problem: String)] = [
            ("[1e999, 0]", "[0.1, 0.1]", "start of dimension 1 is inf"),
            ("[0, -1e999]", "[0.1, 0.1]", "start of dimension 2 is -inf"),
            ("[0, 0]", "[0.1, 1e999]", "step of dimension 2 is inf"),
            ("[0, 0]", "[0.1, -1]", "step of dimension 2 is -1.0"),
            ("[3e38, 0]", "[1e37, 0.1]", "dimension 1 decodes past the float range"),
        ]
        for c in cases {
            var ext = #"{"int8": {"starts": \#(c.starts), "steps": \#(c.steps)}"#
            var chunk = T.vectorChunk(ids: ["a"], values: [0, 0], dim: 2, dtype: .int8)
            chunk.metadata = StreamMetadata([("x", .string(String(repeating: " ", count: ext.utf8.count)))])
            ext += String(repeating: " ", count: chunk.metadata.encoded().count - ext.utf8.count - 1) + "}"
            var bytes = chunk.encode()
            // Put the hand-written extension in place of one of the same length.
            bytes.replaceSubrange(64..<64 + ext.utf8.count, with: Array(ext.utf8))
            let data = Data(bytes)
            #expect(throws: RuEmbedError.self) { try T.readAll(data) }
            do { _ = try T.readAll(data) } catch let error as RuEmbedError {
                #expect(error.message.hasSuffix("frame 1: int8 calibration: " + c.problem) || error.message.contains(c.problem), "\(error.message)")
                #expect(error.message.contains("frame 1: int8 calibration"), "\(error.message)")
            }
        }
    }

    // MARK: Writers: never a value or a chunk a reader refuses

    /// A writer into a temporary file; `written()` is what it wrote.
    final class Sink {
        let path = TestSupport.temporaryDirectory().appendingPathComponent("out.vec").path
        let output: ByteOutput
        init() { output = ByteOutput(fd: open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644), name: path, ownsDescriptor: true) }
        func written() throws -> Data {
            try output.flush()
            return try Data(contentsOf: URL(fileURLWithPath: path))
        }
    }

    static func refusal(_ body: () throws -> Void) -> String? {
        do { try body() } catch let error as RuEmbedError { return error.message } catch { return "\(error)" }
        return nil
    }

    @Test(arguments: ElementType.vectorTypes)
    func writersRefuseNonFiniteValuesNamingTheRecord(dtype: ElementType) throws {
        for bad in [Float.nan, .infinity, -.infinity] {
            let sink = Sink()
            let writer = VectorStreamWriter(output: sink.output, dtype: dtype, dim: 3)
            try writer.append(id: "ok", vector: [1, 2, 3])
            let message = HostileStreamTests.refusal { try writer.append(id: "bad", vector: [1, bad, 3], place: "in.tsv: line 2") }
            let shown = bad.isNaN ? "NaN" : bad > 0 ? "+infinity" : "-infinity"
            #expect(message == "in.tsv: line 2: value 2 is \(shown); vector streams hold finite values only")
            try writer.finish()
            #expect(try T.readAll(try sink.written()).flatMap(\.ids) == ["ok"], "the record before it, not the bad one")
        }
    }

    @Test func f16WritersRefuseValuesBeyondItsRange() throws {
        let sink = Sink()
        let writer = VectorStreamWriter(output: sink.output, dtype: .f16, dim: 2)
        try writer.append(id: "max", vector: [65504, -65504])
        let message = HostileStreamTests.refusal { try writer.append(id: "big", vector: [1, 70000]) }
        #expect(message?.contains("record 2: value 2 (70000.0) is beyond the f16 range") == true, "\(message ?? "accepted")")
        try writer.finish()
        #expect(try T.readAll(try sink.written()).flatMap { $0.floats() } == [65504, -65504])
    }

    @Test func int8CalibrationOfTheWholeFloatRangeIsFinite() throws {
        let sink = Sink()
        let writer = VectorStreamWriter(output: sink.output, dtype: .int8, dim: 2)
        try writer.append(id: "lo", vector: [-Float.greatestFiniteMagnitude, 1])
        try writer.append(id: "hi", vector: [Float.greatestFiniteMagnitude, 2])
        try writer.finish()
        // Values spanning more than Float's range clamp at the top code, as values beyond a
        // calibration always do; what matters is that the stream is one a reader accepts.
        let floats = try T.readAll(try sink.written()).flatMap { $0.floats() }
        #expect(floats.count == 4 && floats.allSatisfy(\.isFinite))
        #expect(floats[0] == -Float.greatestFiniteMagnitude)
        #expect(abs(floats[1] - 1) < 0.01 && abs(floats[3] - 2) < 0.01)
    }

    @Test func writersRefuseAnIDNoChunkCanHold() throws {
        let huge = String(repeating: "x", count: ChunkFormat.readerMaxBytes)
        let sink = Sink()
        let writer = VectorStreamWriter(output: sink.output, dtype: .f32, dim: 2)
        try writer.append(id: "before", vector: [1, 2])
        let message = HostileStreamTests.refusal { try writer.append(id: huge, vector: [1, 2], place: "big.tsv: line 2") }
        #expect(message?.hasPrefix("big.tsv: line 2: a record of 2 f32 values with a 67108864-byte id makes a chunk of") == true, "\(message ?? "accepted")")
        #expect(message.map { $0.utf8.count < 300 } == true, "the message does not quote the id")
        try writer.finish()
        #expect(try T.readAll(try sink.written()).flatMap(\.ids) == ["before"])

        let tokens = TokenStreamWriter(output: Sink().output)
        let tokenMessage = HostileStreamTests.refusal { try tokens.append(id: huge, tokens: [1, 2], place: "t.tsv: line 1") }
        #expect(tokenMessage?.hasPrefix("t.tsv: line 1: a record of 2 tokens with a 67108864-byte id") == true, "\(tokenMessage ?? "accepted")")
    }

    @Test func writersRefuseADimensionNoChunkCanHold() throws {
        // 2^24 f32 values are 64 MiB alone: with the header, one more byte than a chunk may hold.
        let dim = ChunkFormat.readerMaxBytes / 4
        let vector = [Float](repeating: 0.5, count: dim)
        let message = HostileStreamTests.refusal {
            try VectorStreamWriter(output: Sink().output, dtype: .f32, dim: dim).append(id: "a", vector: vector, place: "x.npy: row 1")
        }
        #expect(message?.hasPrefix("x.npy: row 1: a record of 16777216 f32 values") == true, "\(message ?? "accepted")")
        // int8 holds the same values in a quarter of the bytes, but its calibration (two
        // numbers per dimension) does not fit.
        let int8 = HostileStreamTests.refusal {
            try VectorStreamWriter(output: Sink().output, dtype: .int8, dim: dim).append(id: "a", vector: vector, place: "x.vec: frame 1: record 1")
        }
        #expect(int8?.hasPrefix("x.vec: frame 1: record 1: a record of 16777216 int8 values") == true, "\(int8 ?? "accepted")")
        // binary holds it in 2 MiB.
        let sink = Sink()
        let binary = VectorStreamWriter(output: sink.output, dtype: .binary, dim: dim)
        try binary.append(id: "a", vector: vector)
        try binary.finish()
        #expect(try T.readAll(try sink.written()).first?.dim == dim)
    }

    @Test func chunksCloseBeforeTheReaderLimit() throws {
        // Eight 10 MiB ids: under the 65,536-record and 8 MiB-of-vectors bounds, but one chunk
        // of them would be 80 MiB. Every chunk written is one a reader accepts.
        let id = String(repeating: "i", count: 10 << 20)
        let sink = Sink()
        let writer = VectorStreamWriter(output: sink.output, dtype: .f32, dim: 1)
        for k in 0..<8 { try writer.append(id: id + String(k), vector: [Float(k)]) }
        try writer.finish()
        let chunks = try T.readAll(try sink.written())
        #expect(chunks.count == 2 && chunks.map(\.count) == [6, 2])
        #expect(chunks.flatMap { $0.floats() } == (0..<8).map(Float.init))

        let tokenSink = Sink()
        let tokens = TokenStreamWriter(output: tokenSink.output)
        for k in 0..<8 { try tokens.append(id: id, tokens: [UInt32(k)]) }
        try tokens.finish()
        let tokenChunks = try T.readAll(try tokenSink.written())
        #expect(tokenChunks.map(\.count) == [6, 2])
        #expect(tokenChunks.flatMap { $0.tokenLists() } == (0..<8).map { [UInt32($0)] })
    }

    /// A 70 MB id: each writer refuses it naming the line, after writing the records before.
    @Test func aHugeIDFailsCleanlyInEveryWriter() throws {
        let dir = T.temporaryDirectory()
        let path = dir.appendingPathComponent("big.tsv").path
        var tsv = Data("small\t1\t2\n".utf8)
        tsv.append(Data(repeating: UInt8(ascii: "x"), count: 70_000_000))
        tsv.append(Data("\t3\t4\n".utf8))
        try tsv.write(to: URL(fileURLWithPath: path))
        let model = ModelFixtures.folder("deberta-abs")
        for (tool, arguments, record) in [("ru-embed", ["--model", model, "--tsv", path], "a record of 64 f32 values"),
                                          ("ru-tok", ["--model", model, "--tsv", path], "a record of ")] {
            let r = try T.run(tool, arguments)
            #expect(r.status == 2)
            #expect(r.stderr.hasPrefix("\(tool): \(path): line 2: \(record)") && r.stderr.contains("with a 70000000-byte id"), "\(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1)
            #expect(try T.readAll(r.stdout).flatMap(\.ids) == ["small"], "the record before it is written")
        }
        let out = dir.appendingPathComponent("out.vec").path
        let r = try T.run("ru-vec", ["import", "--from", "tsv", "-o", out, path])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("ru-vec: \(path): line 2: a record of 2 f32 values with a 70000000-byte id"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: out), "nothing is left behind")
    }

    @Test func importOfANpyRowTooBigForAChunkFailsCleanly() throws {
        let dir = T.temporaryDirectory()
        let cols = 17_000_000
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, \(cols)), }"
        header += String(repeating: " ", count: 63 - (10 + header.utf8.count) % 64) + "\n"
        var npy = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        npy.append(Data(header.utf8))
        npy.append(Data(count: 4 * cols))
        let path = dir.appendingPathComponent("wide.npy").path
        try npy.write(to: URL(fileURLWithPath: path))
        let r = try T.run("ru-vec", ["import", "--from", "npy", path])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("ru-vec: \(path): row 1: a record of 17000000 f32 values"), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    /// The writer is ru-embed's last guard: a model that makes NaN vectors (here a NaN
    /// LayerNorm bias) fails on the first record, naming it, and writes no vector.
    @Test func embedNeverWritesANaNVector() throws {
        let folder = T.temporaryDirectory().appendingPathComponent("nan-model")
        try FileManager.default.copyItem(atPath: ModelFixtures.folder("deberta-abs"), toPath: folder.path)
        let weights = folder.appendingPathComponent("model.safetensors")
        var bytes = Array(try Data(contentsOf: weights))
        let headerLength = bytes.withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self)) }
        let header = try bytes[8..<8 + headerLength].withUnsafeBytes { try JSONValue.parse($0) }
        let offsets = header["embeddings.LayerNorm.bias"]!["data_offsets"]!.arrayValue!.map { Int($0.numberValue!) }
        for i in 8 + headerLength + offsets[0]..<8 + headerLength + offsets[1] { bytes[i] = 0xFF }   // NaN
        try Data(bytes).write(to: weights)
        let r = try EmbedCLITests.embed(["--model", folder.path], stdin: EmbedCLITests.lines(["один", "два"]))
        #expect(r.status == 2)
        #expect(r.stderr == "ru-embed: <stdin>: line 1: value 1 is NaN; vector streams hold finite values only\n")
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(try T.readAll(r.stdout).isEmpty)
    }

    // MARK: Token streams are recognised by any frame they may start with

    @Test func sniffingKnowsEveryFrameKind() {
        #expect(ChunkFormat.startsStream([0x28, 0xB5, 0x2F, 0xFD, 0, 0, 0, 0]))
        for nibble: UInt8 in [0x50, 0x5A, 0x5F] { #expect(ChunkFormat.startsStream([nibble, 0x2A, 0x4D, 0x18, 0, 0, 0, 0])) }
        #expect(ChunkFormat.startsStream(ChunkFormat.magic))
        #expect(ChunkFormat.startsStream(ChunkFormat.magic.prefix(3)), "a chunk cut short is a (truncated) stream")
        #expect(!ChunkFormat.startsStream([0x28, 0xB5, 0x2F]), "too short to be a frame: text")
        #expect(!ChunkFormat.startsStream(Array("Привет".utf8)))
        #expect(!ChunkFormat.startsStream([UInt8]()))
        #expect(!ChunkFormat.startsStream(Array("(\u{B5}/".utf8)))
    }

    /// `zstd -dc t.tok | ru-embed` and a stream behind a skippable frame give the same
    /// vectors as the stream itself (both were read as text before).
    @Test func tokenStreamsInEveryFormAreEmbedded() throws {
        let model = ModelFixtures.folder("deberta-abs")
        let texts = Data("Привет, мир!\nВторая строка\n".utf8)
        let tok = try T.run("ru-tok", ["--model", model], stdin: texts)
        #expect(tok.status == 0, "\(tok.stderr)")
        let chunks = try T.readAll(tok.stdout)
        let raw = Data(chunks.flatMap { $0.encode() })
        let skippable = Data([0x5A, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 1, 2, 3]) + tok.stdout
        let reference = try EmbedCLITests.embed(["--model", model], stdin: tok.stdout)
        #expect(reference.status == 0, "\(reference.stderr)")
        let expected = try T.readAll(reference.stdout).flatMap { $0.floats() }
        #expect(expected.count == 2 * 64)
        for form in [raw, skippable, skippable + raw] {
            let r = try EmbedCLITests.embed(["--model", model], stdin: form)
            #expect(r.status == 0, "\(r.stderr)")
            let got = try T.readAll(r.stdout).flatMap { $0.floats() }
            #expect(got == expected || got == expected + expected)
            let path = try T.write(form, name: "t.tok")
            let decoded = try T.run("ru-tok", ["--decode", "--model", model, path])
            #expect(decoded.status == 0, "\(decoded.stderr)")
            #expect(decoded.lines.count == (try T.readAll(form)).reduce(0) { $0 + $1.count })
            #expect(decoded.lines.count >= 2)
        }
    }
}
