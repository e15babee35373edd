import Testing
import Foundation
#if canImport(Glibc)
import Glibc
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

@Suite struct ParallelTests {
    /// Every range runs exactly once, also inside another parallel region, where OpenMP
    /// grants a team of one.
    @Test func everyRangeRunsOnceEvenNested() {
        let outerCount = max(Parallel.threads, 2)
        final class Tally: @unchecked Sendable {
            var seen: [Int]
            let lock = NSLock()
            init(_ n: Int) { seen = [Int](repeating: 0, count: n) }
        }
        let tally = Tally(500 * outerCount)
        Parallel.forRanges(outerCount) { outerLo, outerHi in
            for outer in outerLo..<outerHi {
                let ranges = [0..<100, 100..<250, 250..<250, 250..<500].map { ($0.lowerBound + outer * 500)..<($0.upperBound + outer * 500) }
                Parallel.forThreadRanges(ranges: ranges) { _, lo, hi in
                    tally.lock.withLock { for i in lo..<hi { tally.seen[i] += 1 } }
                }
            }
        }
        let wrong = tally.seen.filter { $0 != 1 }.count
        #expect(wrong == 0, "\(wrong) of \(tally.seen.count) items not run exactly once")
    }

    /// Tapering pieces: full pieces until the last `threads × piece` items, then smaller ones in
    /// multiples of the smallest size, shrinking, covering every item once.
    @Test func taperedPiecesCoverEveryItemAndShrink() {
        #expect(Parallel.pieceBounds(442, piece: 32, taperingTo: 8, threads: 2)
                == Array(stride(from: 0, through: 384, by: 32)) + [400, 416, 424, 432, 440, 442])
        #expect(Parallel.pieceBounds(442, piece: 32, taperingTo: nil, threads: 2)
                == Array(stride(from: 0, through: 416, by: 32)) + [442])
        #expect(Parallel.pieceBounds(0, piece: 32, taperingTo: 8, threads: 2) == [0])
        #expect(Parallel.pieceBounds(5, piece: 32, taperingTo: 8, threads: 4) == [0, 5])
        for count in [1, 7, 8, 31, 64, 65, 200, 442, 1000] {
            for threads in [1, 2, 3, 8] {
                let bounds = Parallel.pieceBounds(count, piece: 32, taperingTo: 8, threads: threads)
                let sizes = zip(bounds, bounds.dropFirst()).map { $1 - $0 }
                #expect(bounds.first == 0 && bounds.last == count)
                #expect(sizes.allSatisfy { $0 > 0 && $0 <= 32 })
                // All but the very last piece are multiples of 8, and they never grow again.
                #expect(sizes.dropLast().allSatisfy { $0 % 8 == 0 })
                #expect(zip(sizes, sizes.dropFirst()).allSatisfy { $1 <= $0 || $1 == sizes.last! })
            }
        }
        final class Tally: @unchecked Sendable {
            var seen = [Int](repeating: 0, count: 442)
            let lock = NSLock()
        }
        let tally = Tally()
        Parallel.forPieces(442, piece: 32, taperingTo: 8) { _, lo, hi in
            tally.lock.withLock { for i in lo..<hi { tally.seen[i] += 1 } }
        }
        #expect(tally.seen.allSatisfy { $0 == 1 })
    }
}

// MARK: sharing the cores between processes

/// A private registry folder (0700), as the tools make theirs.
private func registryFolder() -> String {
    let path = TestSupport.temporaryDirectory().appendingPathComponent("registry").path
    #expect(mkdir(path, 0o700) == 0)
    return path
}

/// Bytes waiting in a pipe or FIFO (the jobserver's free tokens).
private func waiting(_ fd: Int32) -> Int {
    var n: Int32 = 0
    _ = ioctl(fd, UInt(FIONREAD), &n)
    return Int(n)
}

/// Runs a tool with `environment` added, `stdin` as its input; status and stderr.
private func runTool(_ name: String, _ arguments: [String], environment: [String: String],
                     stdin: Data) throws -> (status: Int32, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: TestSupport.tool(name))
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env["OMP_NUM_THREADS"] = nil
    env["MAKEFLAGS"] = nil
    env["XDG_CACHE_HOME"] = env["XDG_CACHE_HOME"] ?? TestSupport.privateCache
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let input = Pipe(), errors = Pipe()
    process.standardInput = input
    process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
    process.standardError = errors
    try process.run()
    try input.fileHandleForWriting.write(contentsOf: stdin)
    try input.fileHandleForWriting.close()
    let err = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: err, as: UTF8.self))
}

@Suite struct CoreShareTests {
    @Test func shareOfTheCores() {
        #expect(CoreShare.threads(cores: 2, processes: 1, rank: 0) == 2)
        #expect(CoreShare.threads(cores: 2, processes: 2, rank: 0) == 1)
        #expect(CoreShare.threads(cores: 2, processes: 8, rank: 5) == 1)
        // 16 cores, 3 processes: 6 + 5 + 5, the remainder to the first.
        #expect((0..<3).map { CoreShare.threads(cores: 16, processes: 3, rank: $0) } == [6, 5, 5])
        #expect(CoreShare.threads(cores: 0, processes: 0, rank: 0) == 1)
    }

    @Test func explicitThreadsWin() {
        #expect(CoreShare.explicitThreads(option: 3, environment: ["OMP_NUM_THREADS": "8"]) == 3)
        #expect(CoreShare.explicitThreads(option: nil, environment: ["OMP_NUM_THREADS": "4,2"]) == 4)
        #expect(CoreShare.explicitThreads(option: nil, environment: ["OMP_NUM_THREADS": "x"]) == nil)
        #expect(CoreShare.explicitThreads(option: nil, environment: [:]) == nil)
    }

    /// Each registry instance holds its slot through its own open file, as a process does.
    @Test func liveEntriesAreCountedAndClosedOnesAreNot() throws {
        let path = registryFolder()
        let first = try #require(CoreRegistry(path: path))
        #expect(first.census() == (1, 0))
        var second = CoreRegistry(path: path)
        #expect(second?.slot != first.slot)
        #expect(first.census() == (2, 0))
        #expect(try #require(second).census() == (2, 1))
        second = nil
        #expect(first.census() == (1, 0))
    }

    /// A process killed with SIGKILL never cleans up: its lock goes with it, so its share does.
    @Test func aKilledProcessLeavesNoShare() throws {
        let path = registryFolder()
        let registry = try #require(CoreRegistry(path: path))
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        // --close: the lock stays with flock(1) itself, not with the sleep it starts.
        holder.arguments = ["--exclusive", "--close", path + "/slot-7", "sleep", "20"]
        try holder.run()
        var seen = 1
        for _ in 0..<200 where seen == 1 { // until flock(1) has the lock
            usleep(10_000)
            seen = registry.census().processes
        }
        #expect(seen == 2)
        // Not waited for: Process would wait for the orphaned sleep too. A killed process's
        // descriptors close when it dies, before anyone reaps it.
        kill(holder.processIdentifier, SIGKILL)
        var after = registry.census().processes
        for _ in 0..<200 where after != 1 {
            usleep(10_000)
            after = registry.census().processes
        }
        #expect(after == 1)
    }

    /// Links, FIFOs and folders planted as slots are neither followed nor counted, and a
    /// registry folder that is a link, or open to others, is refused.
    @Test func plantedFilesAreRefused() throws {
        let path = registryFolder()
        let target = TestSupport.temporaryDirectory().appendingPathComponent("locked").path
        let targetFD = open(target, O_RDWR | O_CREAT, 0o600)
        defer { close(targetFD) }
        #expect(flock(targetFD, LOCK_EX) == 0) // a link followed to it would count as live
        #expect(symlink(target, path + "/slot-0") == 0)
        #expect(mkfifo(path + "/slot-1", 0o600) == 0)
        #expect(mkdir(path + "/slot-2", 0o700) == 0)
        let registry = try #require(CoreRegistry(path: path))
        #expect(registry.slot == 3)
        #expect(registry.census() == (1, 0))

        let link = TestSupport.temporaryDirectory().appendingPathComponent("link").path
        #expect(symlink(path, link) == 0)
        #expect(CoreRegistry(path: link) == nil)
        let open = TestSupport.temporaryDirectory().appendingPathComponent("open").path
        #expect(mkdir(open, 0o755) == 0)
        chmod(open, 0o755)
        #expect(CoreRegistry(path: open) == nil)
    }
}

@Suite struct JobserverTests {
    @Test func makeflagsAreParsed() {
        #expect(Jobserver.auth(makeflags: " -j4 --jobserver-auth=3,4") == .pipe(read: 3, write: 4))
        #expect(Jobserver.auth(makeflags: "-j --jobserver-fds=5,6 --jobserver-auth=fifo:/tmp/GMfifo1") == .fifo("/tmp/GMfifo1"))
        #expect(Jobserver.auth(makeflags: "-j4 -- --jobserver-auth=3,4") == nil) // a variable's value
        #expect(Jobserver.auth(makeflags: "--jobserver-auth=a,b") == nil)
        #expect(Jobserver.auth(makeflags: "--jobserver-auth=-1,4") == nil)
        #expect(Jobserver.auth(makeflags: "--jobserver-auth=fifo:") == nil)
        #expect(Jobserver.auth(makeflags: "k") == nil)
    }

    @Test func tokensTakenAreGivenBack() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        #expect(write(fds[1], "+++", 3) == 3)
        var server = Jobserver(.pipe(read: fds[0], write: fds[1]))
        #expect(server != nil)
        #expect(server?.hold(2) == 2)
        #expect(waiting(fds[0]) == 1)
        #expect(server?.hold(5) == 3) // only three exist
        #expect(waiting(fds[0]) == 0)
        #expect(server?.hold(1) == 1)
        #expect(waiting(fds[0]) == 2)
        server?.hold(3)
        server = nil // a jobserver going away gives everything back
        #expect(waiting(fds[0]) == 3)
        // make's descriptor stays blocking: ours was a description of its own.
        #expect(fcntl(fds[0], F_GETFL) & O_NONBLOCK == 0)
    }

    @Test func descriptorsThatAreNotAJobserverAreRefused() throws {
        #expect(Jobserver(.pipe(read: 0, write: 1)) == nil)
        let file = TestSupport.temporaryDirectory().appendingPathComponent("f").path
        let fd = open(file, O_RDWR | O_CREAT, 0o600)
        defer { close(fd) }
        #expect(Jobserver(.pipe(read: fd, write: fd)) == nil)
        #expect(Jobserver(.pipe(read: 1000, write: 1001)) == nil)
        #expect(Jobserver(.fifo(file)) == nil)
    }

    /// A tool under `make -j3` takes a token for its second thread and gives it back at exit,
    /// on an error exit and when killed by SIGTERM.
    @Test func aToolGivesItsTokensBack() throws {
        let fifo = TestSupport.temporaryDirectory().appendingPathComponent("jobserver").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let fd = open(fifo, O_RDWR | O_NONBLOCK)
        defer { close(fd) }
        #expect(write(fd, "++", 2) == 2)
        let tokenizer = TokenizerFixtures.directory.appendingPathComponent("roberta-bpe.json").path
        let env = ["MAKEFLAGS": " -j3 --jobserver-auth=fifo:\(fifo)", "RU_EMBED_REGISTRY": registryFolder()]
        let ok = try runTool("ru-tok", ["--tokenizer", tokenizer, "--format", "ids", "-v"], environment: env,
                             stdin: Data("привет\nмир\n".utf8))
        #expect(ok.status == 0)
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        if cores >= 2 { #expect(ok.stderr.contains(", 2 threads"), "\(ok.stderr)") } // one token taken
        #expect(waiting(fd) == 2)
        let missing = try runTool("ru-tok", ["--tokenizer", tokenizer, "/nonexistent/input.txt"], environment: env, stdin: Data())
        #expect(missing.status == 2)
        #expect(waiting(fd) == 2)

        // Killed while reading: the token was taken at start and goes back from the handler.
        // Spawned by hand with no signal blocked: Foundation's Process passes on the test
        // runner's mask, in which SIGTERM is blocked.
        var environment = ProcessInfo.processInfo.environment
        environment["OMP_NUM_THREADS"] = nil
        for (k, v) in env { environment[k] = v }
        var input: [Int32] = [0, 0]
        #expect(pipe(&input) == 0)
        let pid = try TestSupport.spawn("ru-tok", ["--tokenizer", tokenizer, "--format", "ids"], stdin: input[0],
                                        environment: environment, discardOutput: true)
        close(input[0])
        defer { close(input[1]) }
        if cores >= 2 {
            var taken = false
            for _ in 0..<500 where !taken { usleep(10_000); taken = waiting(fd) == 1 }
            #expect(taken)
        } else {
            usleep(300_000)
        }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(status & 0x7f == SIGTERM) // died of the signal, as without the handler
        #expect(waiting(fd) == 2)
    }

    /// `--threads N` is used as given, whatever the registry says and without tokens.
    @Test func explicitThreadsAreHonoured() throws {
        let registry = registryFolder()
        // Three other live processes: without --threads, ru-tok's share is one thread.
        var others: [CoreRegistry] = []
        for _ in 0..<3 { others.append(try #require(CoreRegistry(path: registry))) }
        let tokenizer = TokenizerFixtures.directory.appendingPathComponent("roberta-bpe.json").path
        let text = Data("привет\n".utf8)
        let shared = try runTool("ru-tok", ["--tokenizer", tokenizer, "--format", "ids", "-v"],
                                 environment: ["RU_EMBED_REGISTRY": registry], stdin: text)
        #expect(shared.stderr.contains(", 1 thread\n"), "\(shared.stderr)")
        let explicit = try runTool("ru-tok", ["--tokenizer", tokenizer, "--format", "ids", "-v", "--threads", "3"],
                                   environment: ["RU_EMBED_REGISTRY": registry], stdin: text)
        #expect(explicit.stderr.contains(", 3 threads\n"), "\(explicit.stderr)")
        let omp = try runTool("ru-tok", ["--tokenizer", tokenizer, "--format", "ids", "-v"],
                              environment: ["RU_EMBED_REGISTRY": registry, "OMP_NUM_THREADS": "3"], stdin: text)
        #expect(omp.stderr.contains(", 3 threads\n"), "\(omp.stderr)")
        others.removeAll()
        // Alone again: as many threads as with no registry at all (OpenMP's default, all cores).
        let unshared = try runTool("ru-tok", ["--tokenizer", tokenizer, "--format", "ids", "-v"],
                                   environment: ["RU_EMBED_REGISTRY": "/nonexistent/registry"], stdin: text)
        let alone = try runTool("ru-tok", ["--tokenizer", tokenizer, "--format", "ids", "-v"],
                                environment: ["RU_EMBED_REGISTRY": registry], stdin: text)
        let threads = { (line: String) in line.split(separator: ",").last.map(String.init) ?? "" }
        #expect(threads(alone.stderr) == threads(unshared.stderr), "\(alone.stderr) vs \(unshared.stderr)")
    }
}
