import Foundation
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

/// Helpers shared by the tests: temporary files, running the built tools, making streams.
enum TestSupport {
    /// The folder with the built executables: the test runner lives beside them.
    static let productsDirectory: URL = {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        // On Linux the runner is `<products>/ru-embedPackageTests.xctest`.
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("ru-vec").path), dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }()

    static func tool(_ name: String) -> String {
        productsDirectory.appendingPathComponent(name).path
    }

    /// XDG_CACHE_HOME for tools run by tests that set none.
    static let privateCache = temporaryDirectory().path

    /// One folder per test process holds every test's temporary folder; it is removed when the
    /// process exits (a run used to leave hundreds of folders in /tmp).
    private static let temporaryRoot: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ru-embed-tests-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        temporaryRootPath = url.path
        atexit {
            if let path = TestSupport.temporaryRootPath { try? FileManager.default.removeItem(atPath: path) }
        }
        return url
    }()
    nonisolated(unsafe) private static var temporaryRootPath: String?

    /// A fresh temporary folder for one test.
    static func temporaryDirectory() -> URL {
        let url = temporaryRoot.appendingPathComponent(UUID().uuidString)
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    struct Result {
        var status: Int32
        var stdout: Data
        var stderr: String
        let text: String
        /// The output's lines, without their newlines.
        let lines: [String]

        init(status: Int32, stdout: Data, stderr: String) {
            self.status = status
            self.stdout = stdout
            self.stderr = stderr
            text = String(decoding: stdout, as: UTF8.self)
            lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        }
    }

    /// Runs a tool with `stdin` as its input and collects everything it writes.
    @discardableResult
    static func run(_ name: String, _ arguments: [String], stdin: Data = Data(), cwd: URL? = nil,
                    environment extra: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool(name))
        process.arguments = arguments
        if let cwd { process.currentDirectoryURL = cwd }
        // The tools keep file digests under $XDG_CACHE_HOME: never the user's from a test.
        if ProcessInfo.processInfo.environment["XDG_CACHE_HOME"] == nil || !extra.isEmpty {
            var environment = ProcessInfo.processInfo.environment
            if environment["XDG_CACHE_HOME"] == nil { environment["XDG_CACHE_HOME"] = privateCache }
            environment.merge(extra) { _, new in new }
            process.environment = environment
        }
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Feed stdin and drain both outputs concurrently so no pipe fills up.
        let group = DispatchGroup()
        nonisolated(unsafe) var out = Data(), err = Data()
        group.enter()
        DispatchQueue.global().async { out = output.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { err = errors.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async {
            try? input.fileHandleForWriting.write(contentsOf: stdin)
            try? input.fileHandleForWriting.close()
            group.leave()
        }
        process.waitUntilExit()
        group.wait()
        return Result(status: process.terminationStatus, stdout: out, stderr: String(decoding: err, as: UTF8.self))
    }

    /// Encodes chunks as a stream in memory.
    static func stream(_ chunks: [Chunk]) throws -> Data {
        let path = temporaryDirectory().appendingPathComponent("s.vec").path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let out = ByteOutput(fd: fd, name: path, ownsDescriptor: true)
        let writer = ChunkWriter(output: out)
        for chunk in chunks { try writer.write(chunk) }
        try writer.flushOutput()
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    static func write(_ data: Data, name: String = "in.vec", in dir: URL? = nil) throws -> String {
        let url = (dir ?? temporaryDirectory()).appendingPathComponent(name)
        try data.write(to: url)
        return url.path
    }

    /// Reads a whole stream from a file, returning its chunks (or throwing the reader's error).
    static func readAll(_ path: String) throws -> [Chunk] {
        let reader = try VectorStreamReader(path: path)
        var chunks: [Chunk] = []
        while let chunk = try reader.next() { chunks.append(chunk) }
        return chunks
    }

    static func readAll(_ data: Data) throws -> [Chunk] {
        try readAll(write(data))
    }

    /// Deterministic pseudo-random floats (SplitMix64), so failures reproduce.
    struct Random {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func float() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
        mutating func vectors(_ count: Int, _ dim: Int) -> [Float] { (0..<count * dim).map { _ in float() } }
    }

    /// Ids that trip naive formats: tabs, newlines, quotes, backslashes, Cyrillic, emoji, empty.
    static let awkwardIDs = ["plain", "tab\there", "new\nline", "quote\"d", "back\\slash", "ёлка-Ёж", "👩‍👩‍👧 семья", "", "cr\r", "{\"json\": 1}"]

    static func vectorChunk(ids: [String], values: [Float], dim: Int, dtype: ElementType = .f32,
                            flags: ChunkFlags = [], metadata: StreamMetadata = StreamMetadata()) -> Chunk {
        values.withUnsafeBufferPointer {
            Chunk.vectors(ids: ids, floats: $0.baseAddress!, dim: dim, dtype: dtype, flags: flags, metadata: metadata)
        }
    }
}

extension SHA256 {
    /// Lower-case hex SHA-256 of `bytes` (swift-crypto's, as the library computes digests).
    static func hex(_ bytes: [UInt8]) -> String {
        hash(data: bytes).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}
