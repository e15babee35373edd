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

/// Output files as an attacker sharing the folder would try them (issue 11, item 2): links
/// planted at temporary names, FIFOs and devices named as `-o`, modes, failed and interrupted
/// runs. `SafeFile` and `OutputFile` (Sources/RuEmbed/IO/SafeFile.swift).
@Suite struct SafeOutputTests {
    typealias T = TestSupport

    /// A two-record stream and the TSV `ru-vec export --to tsv` makes of it.
    func sample(in dir: URL) throws -> (path: String, tsv: String) {
        let path = try T.write(try T.stream([T.vectorChunk(ids: ["a", "b"], values: [1, 2, 3, 4, 5, 6], dim: 3)]), in: dir)
        return (path, "a\t1.0\t2.0\t3.0\nb\t4.0\t5.0\t6.0\n")
    }

    func fileType(_ path: String) -> mode_t? {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & S_IFMT : nil
    }

    func mode(_ path: String) -> mode_t? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o7777 : nil
    }

    func contents(_ path: String) -> String? {
        (try? Data(contentsOf: URL(fileURLWithPath: path))).map { String(decoding: $0, as: UTF8.self) }
    }

    func names(in dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
    }

    // MARK: Planted links

    @Test func theCreationPrimitivesRefuseAPlantedLink() throws {
        let dir = T.temporaryDirectory()
        let victim = dir.appendingPathComponent("victim").path
        try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
        let link = dir.appendingPathComponent("planted").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: victim)
        let dangling = dir.appendingPathComponent("dangling").path
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: dir.appendingPathComponent("created-through-link").path)

        for path in [link, dangling] {
            #expect(throws: RuEmbedError.self) { _ = try SafeFile.createNew(path) }
        }
        #expect(contents(victim) == "precious\n")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("created-through-link").path))

        // Temporary names: random, hidden, in the target's folder, private while written.
        let target = dir.appendingPathComponent("out.tsv").path
        let a = try SafeFile.createTemporary(near: target)
        let b = try SafeFile.createTemporary(near: target)
        defer { close(a.fd); close(b.fd); unlink(a.path); unlink(b.path) }
        #expect(a.path != b.path)
        #expect(FileSystem.parent(a.path) == dir.path)
        #expect(a.path.hasPrefix(dir.path + "/.out.tsv.") && a.path.hasSuffix(".tmp"), "\(a.path)")
        #expect(mode(a.path) == 0o600)
    }

    @Test func aLinkPlantedAtAnyPredictableTemporaryNameIsNotFollowed() throws {
        let dir = T.temporaryDirectory()
        let (input, tsv) = try sample(in: dir)
        let victim = dir.appendingPathComponent("victim").path
        try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
        let out = dir.appendingPathComponent("out.tsv").path
        // `<out>.tmp-<pid>` was the old name: plant it for every pid the tool may get (all of them
        // where pid_max is small, else the next 20,000 after the last pid handed out).
        let pidMax = Int(T.readLine("/proc/sys/kernel/pid_max") ?? "") ?? 32768
        let last = Int(T.readLine("/proc/sys/kernel/ns_last_pid") ?? "") ?? 1
        let candidates = pidMax <= 65536 ? Array(1...pidMax) : (1...20_000).map { (last + $0) % pidMax }
        for pid in candidates { symlink(victim, "\(out).tmp-\(pid)") }

        let r = try T.run("ru-vec", ["export", "--to", "tsv", "-o", out, input])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(contents(victim) == "precious\n", "the tool wrote through a planted link")
        #expect(fileType(out) == S_IFREG)
        #expect(contents(out) == tsv)
    }

    @Test func aLinkTheUserNamesIsFollowedAndKept() throws {
        let dir = T.temporaryDirectory()
        let (input, tsv) = try sample(in: dir)
        let real = dir.appendingPathComponent("real.tsv").path
        try "old\n".write(toFile: real, atomically: false, encoding: .utf8)
        chmod(real, 0o640)
        let link = dir.appendingPathComponent("link.tsv").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "real.tsv")
        let r = try T.run("ru-vec", ["export", "--to", "tsv", "-o", link, input])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(fileType(link) == S_IFLNK, "the link was replaced by a file")
        #expect(contents(real) == tsv)
        #expect(mode(real) == 0o640)

        // A link to nothing: refused in one line, nothing created.
        let dangling = dir.appendingPathComponent("dangling.tsv").path
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: "nowhere.tsv")
        let d = try T.run("ru-vec", ["export", "--to", "tsv", "-o", dangling, input])
        #expect(d.status == 2)
        #expect(d.stderr.hasPrefix("ru-vec: \(dangling): ") && d.stderr.filter { $0 == "\n" }.count == 1, "\(d.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("nowhere.tsv").path))
    }

    // MARK: Not regular files

    @Test func aFIFOIsWrittenInPlace() throws {
        let dir = T.temporaryDirectory()
        let (input, tsv) = try sample(in: dir)
        let fifo = dir.appendingPathComponent("pipe").path
        #expect(mkfifo(fifo, 0o600) == 0)
        // Held open read-write here, so the tool's open does not wait and a test of a tool that
        // replaces the FIFO ends (with nothing read) instead of hanging.
        let fd = open(fifo, O_RDWR | O_NONBLOCK)
        #expect(fd >= 0)
        defer { close(fd) }
        let r = try T.run("ru-vec", ["export", "--to", "tsv", "-o", fifo, input])
        #expect(r.status == 0, "\(r.stderr)")
        var got = [UInt8](repeating: 0, count: 4096)
        let n = read(fd, &got, got.count)
        #expect(n > 0 && String(decoding: got[0..<max(n, 0)], as: UTF8.self) == tsv)
        #expect(fileType(fifo) == S_IFIFO, "the FIFO was replaced")
        #expect(names(in: dir) == ["in.vec", "pipe"])

        // A link to the FIFO (as /dev/stdout is to a pipe): written through, the link kept.
        let link = dir.appendingPathComponent("pipe-link").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: fifo)
        let viaLink = try T.run("ru-vec", ["export", "--to", "tsv", "-o", link, input])
        #expect(viaLink.status == 0, "\(viaLink.stderr)")
        let m = read(fd, &got, got.count)
        #expect(m > 0 && String(decoding: got[0..<max(m, 0)], as: UTF8.self) == tsv)
        #expect(fileType(link) == S_IFLNK && fileType(fifo) == S_IFIFO)
        unlink(link)

        // npy rewrites its header at the end: refused before anything is written.
        let npy = try T.run("ru-vec", ["export", "--to", "npy", "-o", fifo, input])
        #expect(npy.status == 2)
        #expect(npy.stderr.contains("\(fifo): --to npy needs a file it can seek in"), "\(npy.stderr)")
        #expect(read(fd, &got, got.count) <= 0)
    }

    @Test func theToolsOwnStdoutByName() throws {
        // /proc/self/fd/1 (like /dev/stdout) when stdout is a pipe: its link leads to
        // `pipe:[N]`, which only the descriptor reaches.
        let dir = T.temporaryDirectory()
        let (input, tsv) = try sample(in: dir)
        let r = try T.run("ru-vec", ["export", "--to", "tsv", "-o", "/proc/self/fd/1", input])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.text == tsv)
    }

    @Test func aDeviceStaysADevice() throws {
        let dir = T.temporaryDirectory()
        let (input, _) = try sample(in: dir)
        // A copy of /dev/null and /dev/full where we may make device nodes (root), so a tool that
        // replaces them harms nothing; else the real ones. (Linux dev_t: major << 8 | minor below 256.)
        var null = "/dev/null", full = "/dev/full"
        let ownNull = dir.appendingPathComponent("null").path, ownFull = dir.appendingPathComponent("full").path
        if mknod(ownNull, S_IFCHR | 0o666, dev_t(1 << 8 | 3)) == 0 && mknod(ownFull, S_IFCHR | 0o666, dev_t(1 << 8 | 7)) == 0 {
            null = ownNull
            full = ownFull
        }
        let r = try T.run("ru-vec", ["export", "--to", "tsv", "-o", null, "--ids", null, input])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(fileType(null) == S_IFCHR)
        #expect(fileType("/dev/null") == S_IFCHR)
        let npy = try T.run("ru-vec", ["export", "--to", "npy", "-o", null, input])
        #expect(npy.status == 0, "\(npy.stderr)")
        #expect(fileType(null) == S_IFCHR)

        // A full disk: one line naming the file, the device untouched.
        let f = try T.run("ru-vec", ["export", "--to", "tsv", "-o", full, input])
        #expect(f.status == 2)
        #expect(f.stderr == "ru-vec: \(full): write failed: No space left on device\n", "\(f.stderr)")
        #expect(fileType(full) == S_IFCHR)
        #expect(names(in: dir).allSatisfy { !$0.hasSuffix(".tmp") })
    }

    @Test func aDirectoryIsRefused() throws {
        let dir = T.temporaryDirectory()
        let (input, _) = try sample(in: dir)
        let folder = dir.appendingPathComponent("folder")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false)
        let r = try T.run("ru-vec", ["export", "--to", "tsv", "-o", folder.path, input])
        #expect(r.status == 2)
        #expect(r.stderr == "ru-vec: \(folder.path): is a directory: name a file to write\n", "\(r.stderr)")
        #expect(fileType(folder.path) == S_IFDIR)
        #expect(names(in: dir) == ["folder", "in.vec"])
    }

    // MARK: Modes

    @Test func anExistingFileKeepsItsModeAndANewOneGetsTheUmasks() throws {
        let dir = T.temporaryDirectory()
        let (input, tsv) = try sample(in: dir)
        let out = dir.appendingPathComponent("secret.tsv").path
        let ids = dir.appendingPathComponent("secret.ids").path
        for path in [out, ids] {
            try "old\n".write(toFile: path, atomically: false, encoding: .utf8)
            chmod(path, 0o600)
        }
        let r = try T.run("ru-vec", ["export", "--to", "tsv", "-o", out, "--ids", ids, input])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(contents(out) == tsv)
        #expect(contents(ids) == "a\nb\n")
        #expect(mode(out) == 0o600, "the mode widened")
        #expect(mode(ids) == 0o600, "the mode widened")

        // New: 0666 less the umask, as a shell's `>` makes it.
        let mask = umask(0o022)
        umask(mask)
        let fresh = dir.appendingPathComponent("fresh.tsv").path
        #expect(try T.run("ru-vec", ["export", "--to", "tsv", "-o", fresh, input]).status == 0)
        #expect(mode(fresh) == 0o666 & ~mask)
    }

    // MARK: Failures

    @Test func aFailedRunLeavesTheOldFileAndNoTemporary() throws {
        let dir = T.temporaryDirectory()
        let (input, _) = try sample(in: dir)
        // A good chunk, then garbage: the failure comes after something was written.
        var broken = try Data(contentsOf: URL(fileURLWithPath: input))
        broken.append(contentsOf: Array("not a frame at all".utf8))
        let bad = try T.write(broken, name: "bad.vec", in: dir)
        let out = dir.appendingPathComponent("out.tsv").path
        let ids = dir.appendingPathComponent("out.ids").path
        try "old\n".write(toFile: out, atomically: false, encoding: .utf8)
        let r = try T.run("ru-vec", ["export", "--to", "tsv", "-o", out, "--ids", ids, bad])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("ru-vec: \(bad): ") && r.stderr.filter { $0 == "\n" }.count == 1, "\(r.stderr)")
        #expect(contents(out) == "old\n")
        #expect(names(in: dir) == ["bad.vec", "in.vec", "out.tsv"])
    }

    @Test func anInterruptedRunLeavesNoTemporary() throws {
        let dir = T.temporaryDirectory()
        let out = dir.appendingPathComponent("out.tsv").path
        try "old\n".write(toFile: out, atomically: false, encoding: .utf8)
        // Reading a stdin that never ends: the tool has its temporary file open when killed
        // (`cat` opens its output before reading).
        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        defer { close(pipeEnds[1]) }
        let pid = try T.spawn("ru-vec", ["cat", "-o", out, "-"], stdin: pipeEnds[0])
        close(pipeEnds[0])
        // Wait until the temporary file is there (or give up after 10 s).
        let deadline = Date().addingTimeInterval(10)
        while names(in: dir).count < 2 && Date() < deadline { usleep(20_000) }
        #expect(names(in: dir).count == 2, "no temporary file appeared: \(names(in: dir))")
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(status & 0x7f == SIGTERM, "the tool did not die of the signal: status \(status)")
        #expect(names(in: dir) == ["out.tsv"], "left behind: \(names(in: dir))")
        #expect(contents(out) == "old\n")
    }
}

extension TestSupport {
    /// Starts a tool with `stdin` as its input and no signal blocked or ignored (Foundation's
    /// Process passes on the signal mask of the thread that starts it, which blocks SIGTERM).
    /// `environment` replaces the test runner's; `discardOutput` sends stdout to /dev/null.
    static func spawn(_ name: String, _ arguments: [String], stdin: Int32,
                      environment: [String: String]? = nil, discardOutput: Bool = false) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        if discardOutput { posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0) }
        let path = tool(name)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { (argv + (envp ?? [])).forEach { free($0) } }
        var pid = pid_t()
        let rc = envp.map { envp in posix_spawn(&pid, path, &actions, &attributes, argv, envp) }
            ?? posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw RuEmbedError("\(path): cannot start: \(String(cString: strerror(rc)))") }
        return pid
    }

    /// The first line of a small file such as /proc/sys/kernel/pid_max.
    static func readLine(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n").first.map(String.init)
    }
}
