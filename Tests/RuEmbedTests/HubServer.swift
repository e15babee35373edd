import Foundation
import Crypto
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import RuCore
@testable import RuTokenizer
@testable import RuVectors
@testable import RuCompute
@testable import RuSearch
@testable import RuHub
@testable import RuEncoder
@testable import RuEmbed
@testable import RuCLI

/// The fake hub (scripts/hub-server.py) on 127.0.0.1, started once for the test process and
/// ended when the test process ends (the server quits when its stdin closes).
final class HubServer: @unchecked Sendable {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = root.appendingPathComponent("Tests/RuEmbedTests/Fixtures/hub")

    /// A failure to start (no python3) is kept, and every hub test reports it.
    static let shared: Result<HubServer, Error> = Result { try HubServer() }

    static func get() throws -> HubServer { try shared.get() }

    let hub: String
    let cdn: String
    let commit: String
    private let process: Process
    private let stdin: Pipe

    private init() throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", HubServer.root.appendingPathComponent("scripts/hub-server.py").path,
                             "--repo", HubServer.fixtures.appendingPathComponent("repo").path]
        stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        // The first line: "hub URL cdn URL commit SHA".
        var line = Data()
        while true {
            let byte = try stdout.fileHandleForReading.read(upToCount: 1) ?? Data()
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        let words = String(decoding: line, as: UTF8.self).split(separator: " ").map(String.init)
        guard words.count == 6, words[0] == "hub" else {
            throw RuEmbedError("scripts/hub-server.py did not start (got \"\(String(decoding: line, as: UTF8.self))\")")
        }
        hub = words[1]
        cdn = words[3]
        commit = words[5]
    }

    /// Sets test behaviour for one repo id: cut, ignore_range, delay, fail.
    func control(_ repo: String, _ settings: [String: String]) throws {
        var query = "repo=\(repo)"
        for (k, v) in settings.sorted(by: { $0.key < $1.key }) { query += "&\(k)=\(v)" }
        let response = try HTTP.request(URL(string: "\(hub)/_control?\(query)")!)
        guard response.status == 200 else { throw RuEmbedError("control: HTTP \(response.status)") }
    }

    struct Request {
        var server: String
        var method: String
        var path: String
        var range: String?
        var auth: String?
    }

    /// The requests the server saw for one repo id.
    func requests(_ repo: String) throws -> [Request] {
        let response = try HTTP.request(URL(string: "\(hub)/_stats?repo=\(repo)")!)
        let json = try JSONValue.parse(String(decoding: response.body, as: UTF8.self))
        return (json.arrayValue ?? []).map {
            Request(server: $0["server"]?.stringValue ?? "", method: $0["method"]?.stringValue ?? "",
                    path: $0["path"]?.stringValue ?? "", range: $0["range"]?.stringValue, auth: $0["auth"]?.stringValue)
        }
    }
}

/// One test's hub environment: a fresh cache and home, and tools run against the fake hub.
struct HubSandbox {
    let dir: URL
    let server: HubServer
    var cache: String { dir.appendingPathComponent("cache").path }
    var home: String { dir.appendingPathComponent("home").path }

    init() throws {
        server = try HubServer.get()
        dir = TestSupport.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
    }

    /// The environment of a tool run: ours, without any HF_* or RU_EMBED_* variable, plus the
    /// sandbox's cache, home and endpoint, plus `extra`.
    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("HF_") && !$0.key.hasPrefix("HUGGING") && !$0.key.hasPrefix("RU_EMBED") && $0.key != "TRANSFORMERS_OFFLINE"
        }
        env["HF_ENDPOINT"] = server.hub
        env["HF_HUB_CACHE"] = cache
        env["HF_HOME"] = home
        for (k, v) in extra { env[k] = v }
        return env
    }

    /// Starts a tool; `wait` on the handle collects its output.
    func start(_ tool: String, _ arguments: [String], env: [String: String] = [:], stdin: Data = Data("Привет, мир\n".utf8)) throws -> Running {
        try Running(tool: tool, arguments: arguments, environment: environment(env), stdin: stdin)
    }

    func run(_ tool: String, _ arguments: [String], env: [String: String] = [:], stdin: Data = Data("Привет, мир\n".utf8)) throws -> TestSupport.Result {
        try start(tool, arguments, env: env, stdin: stdin).wait()
    }

    final class Running: @unchecked Sendable {
        let process = Process()
        private var out = Data(), err = Data()
        private let group = DispatchGroup()

        init(tool: String, arguments: [String], environment: [String: String], stdin: Data) throws {
            // A built tool by name, or any program by absolute path (unshare, to run a tool in a namespace).
            process.executableURL = URL(fileURLWithPath: tool.hasPrefix("/") ? tool : TestSupport.tool(tool))
            process.arguments = arguments
            process.environment = environment
            // stdin from a file, not a pipe: a tool that fails before reading its input must not
            // kill the test runner with SIGPIPE (and ignoring SIGPIPE here would leak into the
            // children of other tests).
            let inputFile = TestSupport.temporaryDirectory().appendingPathComponent("stdin")
            try stdin.write(to: inputFile)
            let input = try FileHandle(forReadingFrom: inputFile)
            let output = Pipe(), errors = Pipe()
            process.standardInput = input
            process.standardOutput = output
            process.standardError = errors
            try process.run()
            group.enter()
            DispatchQueue.global().async { self.out = output.fileHandleForReading.readDataToEndOfFile(); self.group.leave() }
            group.enter()
            DispatchQueue.global().async { self.err = errors.fileHandleForReading.readDataToEndOfFile(); self.group.leave() }
        }

        func wait() -> TestSupport.Result {
            process.waitUntilExit()
            group.wait()
            return TestSupport.Result(status: process.terminationStatus, stdout: out, stderr: String(decoding: err, as: UTF8.self))
        }
    }

    // MARK: The cache as a list, the way scripts/make-hub-fixtures.py records it

    struct Entry: Equatable, CustomStringConvertible {
        var path: String
        var kind: String
        var target: String?
        var size: Int?
        var sha256: String?
        var text: String?
        var description: String {
            [path, kind, target, size.map(String.init), sha256, text.map { "text=\($0)" }].compactMap { $0 }.joined(separator: " ")
        }
    }

    static func entries(of root: String) throws -> [Entry] {
        var result: [Entry] = []
        func walk(_ rel: String) throws {
            let full = rel.isEmpty ? root : root + "/" + rel
            for name in try FileManager.default.contentsOfDirectory(atPath: full).sorted() {
                let childRel = rel.isEmpty ? name : rel + "/" + name
                let child = root + "/" + childRel
                let attributes = try FileManager.default.attributesOfItem(atPath: child)
                let type = attributes[.type] as? FileAttributeType
                if type == .typeSymbolicLink {
                    result.append(Entry(path: childRel, kind: "symlink", target: try FileManager.default.destinationOfSymbolicLink(atPath: child)))
                } else if type == .typeDirectory {
                    result.append(Entry(path: childRel, kind: "dir"))
                    try walk(childRel)
                } else {
                    let data = try Data(contentsOf: URL(fileURLWithPath: child))
                    var e = Entry(path: childRel, kind: "file", size: data.count, sha256: SHA256.hex(Array(data)))
                    if ("/" + childRel).contains("/refs/") { e.text = String(decoding: data, as: UTF8.self) }
                    result.append(e)
                }
            }
        }
        try walk("")
        return result.sorted { $0.path < $1.path }
    }

    static func entries(json: JSONValue) -> [Entry] {
        (json["entries"]?.arrayValue ?? []).map {
            Entry(path: $0["path"]?.stringValue ?? "", kind: $0["kind"]?.stringValue ?? "",
                  target: $0["target"]?.stringValue, size: $0["size"]?.numberValue.map { Int($0) },
                  sha256: $0["sha256"]?.stringValue, text: $0["text"]?.stringValue)
        }.sorted { $0.path < $1.path }
    }
}
