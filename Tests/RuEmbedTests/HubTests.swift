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

/// Hub ids in --model: the cache layout against huggingface_hub's, downloads through the fake
/// hub (scripts/hub-server.py on 127.0.0.1): CDN redirect, cut connections, 401/403/404,
/// concurrent clients, offline mode.
@Suite(.serialized) struct HubTests {
    static let blobOfModel = "fe5e14665023d8f0d1fdfd28d88700132e6f25c950dafe329330b2418356b75d"
    static let modelSize = 3504

    /// A repo id of the fake hub nobody else uses, so the server's counters are this test's.
    func fresh(_ prefix: String = "test") -> String {
        "\(prefix)/m-\(UUID().uuidString.prefix(8).lowercased())"
    }

    func folderName(_ repo: String) -> String { "models--" + repo.replacingOccurrences(of: "/", with: "--") }

    // MARK: Layout

    @Test func cacheMatchesHuggingFaceHubByteForByte() throws {
        let box = try HubSandbox()
        let fixture = try JSONValue.parse(String(decoding: try Data(contentsOf: HubServer.fixtures.appendingPathComponent("python-cache.json")), as: UTF8.self))
        let repo = try #require(fixture["repo"]?.stringValue)
        let commit = try #require(fixture["commit"]?.stringValue)
        #expect(commit == box.server.commit, "the served repo changed: rerun scripts/make-hub-fixtures.py")

        for revision in ["main", "v1.0"] {
            let r = try box.run("ru-tok", ["--model", "\(repo)@\(revision)", "--format", "ids"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.lines.count == 1)
        }

        // What huggingface_hub made, less what a model download skips on purpose:
        // - the files a model does not need (README.md, onnx/): their snapshot links, blobs and locks;
        // - trees/<commit>.json, huggingface_hub's own cache of the API's tree listing (an
        //   optimisation it rebuilds when absent; we never call the tree API).
        let expected = HubSandbox.entries(json: fixture)
        let snapshot = "\(folderName(repo))/snapshots/\(commit)/"
        let skipped = ["README.md", "onnx/model.onnx"]
        let skippedBlobs = expected.filter { e in skipped.contains { e.path == snapshot + $0 } }.compactMap { $0.target?.split(separator: "/").last.map(String.init) }
        #expect(skippedBlobs.count == 2)
        let kept = expected.filter { e in
            if e.path.hasPrefix("\(folderName(repo))/trees") { return false }
            if e.path == snapshot + "README.md" || e.path.hasPrefix(snapshot + "onnx") { return false }
            return !skippedBlobs.contains { e.path.hasSuffix("/" + $0) || e.path.hasSuffix("/" + $0 + ".lock") }
        }
        let ours = try HubSandbox.entries(of: box.cache)
        #expect(ours.count == kept.count)
        for (a, b) in zip(ours, kept) where a != b {
            Issue.record("cache differs from huggingface_hub's: ours \(a) / theirs \(b)")
        }
        #expect(Set(ours.map(\.path)).symmetricDifference(kept.map(\.path)).isEmpty,
                "\(Set(ours.map(\.path)).symmetricDifference(kept.map(\.path)).sorted())")
    }

    @Test func pythonReadsOurCacheOffline() throws {
        let box = try HubSandbox()
        let repo = fresh()
        let r = try box.run("ru-tok", ["--model", repo, "--format", "ids"])
        #expect(r.status == 0, "\(r.stderr)")
        // huggingface_hub finds what we stored, without the network.
        let script = "import huggingface_hub as h; print(h.hf_hub_download('\(repo)', 'model.safetensors')); print(h.snapshot_download('\(repo)', allow_patterns=['*.json', '*.safetensors']))"
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", script]
        python.environment = box.environment(["HF_HUB_OFFLINE": "1"])
        let out = Pipe(), err = Pipe()
        python.standardOutput = out
        python.standardError = err
        try python.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        if errors.contains("No module named 'huggingface_hub'") {
            // A developer machine without the package has nothing to compare with; CI installs
            // it (.ci/run), so there the check always runs.
            if ProcessInfo.processInfo.environment["CI"] != nil {
                Issue.record("huggingface_hub is not installed: .ci/run must install it")
            }
            return
        }
        #expect(python.terminationStatus == 0, "\(errors)")
        #expect(text.contains("/snapshots/\(box.server.commit)/model.safetensors"), "\(text)")
    }

    // MARK: Download paths

    @Test func downloadFollowsTheCDNRedirectWithoutTheToken() throws {
        let box = try HubSandbox()
        let denied = try box.run("ru-tok", ["--model", fresh("private")])
        #expect(denied.status == 2)
        #expect(denied.stderr.contains("401") && denied.stderr.contains("HF_TOKEN"), "\(denied.stderr)")

        let wrong = try box.run("ru-tok", ["--model", fresh("private")], env: ["HF_TOKEN": "hf_wrong"])
        #expect(wrong.status == 2)
        #expect(wrong.stderr.contains("token from HF_TOKEN was sent and refused"), "\(wrong.stderr)")

        let repo = fresh("private")
        let r = try box.run("ru-tok", ["--model", repo, "--format", "tokens", "--verbose"], env: ["HF_TOKEN": "hf_test_token"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.lines == ["[CLS] привет , мир [SEP]"])
        #expect(r.stderr.contains("downloaded \(repo)/model.safetensors: 3.5 kB"), "\(r.stderr)")
        let requests = try box.server.requests(repo)
        let cdn = requests.filter { $0.server == "cdn" }
        #expect(cdn.count == 1)
        #expect(cdn.allSatisfy { $0.auth == nil }, "the token must not go to the CDN")
        #expect(requests.filter { $0.server == "hub" }.allSatisfy { $0.auth == "Bearer hf_test_token" })
        #expect(requests.contains { $0.method == "HEAD" && $0.path.hasSuffix("/resolve/\(box.server.commit)/model.safetensors") })
        // Only what a model needs: no README.md, no onnx/.
        #expect(!requests.contains { $0.path.hasSuffix("README.md") || $0.path.contains("onnx") })
        let blob = "\(box.cache)/\(folderName(repo))/blobs/\(Self.blobOfModel)"
        #expect(FileSystem.fileSize(blob) == Int64(Self.modelSize))
    }

    @Test func tokenStaysOnTheHubWhenAGetIsRedirectedElsewhere() throws {
        let box = try HubSandbox()
        let repo = fresh("private")
        try box.server.control(repo, ["get_redirect": "1"])
        let r = try box.run("ru-tok", ["--model", repo, "--format", "ids"], env: ["HF_TOKEN": "hf_test_token"])
        #expect(r.status == 0, "\(r.stderr)")
        let cdn = try box.server.requests(repo).filter { $0.server == "cdn" }
        #expect(cdn.count == 9)
        #expect(cdn.allSatisfy { $0.auth == nil }, "the token went to another host")
    }

    @Test func tokenFileUnderHFHome() throws {
        let box = try HubSandbox()
        try "hf_test_token\n".write(toFile: box.home + "/token", atomically: true, encoding: .utf8)
        let r = try box.run("ru-tok", ["--model", fresh("private"), "--format", "ids"])
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func gatedNotFoundAndUnreachable() throws {
        let box = try HubSandbox()
        let gated = try box.run("ru-tok", ["--model", fresh("gated")])
        #expect(gated.status == 2)
        #expect(gated.stderr.contains("gated") && gated.stderr.contains("HF_TOKEN"), "\(gated.stderr)")

        let noRepo = try box.run("ru-tok", ["--model", "nobody/nothing"])
        #expect(noRepo.status == 2)
        #expect(noRepo.stderr.contains("no such repository") && noRepo.stderr.contains("404"), "\(noRepo.stderr)")

        let noRevision = try box.run("ru-tok", ["--model", "test/tiny@no-such-branch"])
        #expect(noRevision.status == 2)
        #expect(noRevision.stderr.contains("no revision 'no-such-branch'"), "\(noRevision.stderr)")

        let refused = try box.run("ru-tok", ["--model", fresh()], env: ["HF_ENDPOINT": "http://127.0.0.1:1"])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("cannot connect to 127.0.0.1"), "\(refused.stderr)")

        let failing = fresh()
        try box.server.control(failing, ["fail": "500"])
        let broken = try box.run("ru-tok", ["--model", failing])
        #expect(broken.status == 2)
        #expect(broken.stderr.contains("HTTP 500"), "\(broken.stderr)")

        let notAnId = try box.run("ru-tok", ["--model", "./no/such/folder"])
        #expect(notAnId.status == 2)
        #expect(notAnId.stderr.contains("no such folder"), "\(notAnId.stderr)")
        // Nothing half-made in the cache by the failures.
        #expect(!FileManager.default.fileExists(atPath: box.cache + "/models--nobody--nothing/snapshots"))
    }

    @Test func cutConnectionLeavesNothingCompleteAndTheNextRunResumes() throws {
        let box = try HubSandbox()
        let repo = fresh()
        let storage = "\(box.cache)/\(folderName(repo))"
        try box.server.control(repo, ["cut": "100"])
        let cut = try box.run("ru-tok", ["--model", repo])
        #expect(cut.status == 2)
        #expect(cut.stderr.contains("model.safetensors") && cut.stderr.contains("the next run resumes"), "\(cut.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(storage)/blobs/\(Self.blobOfModel)"))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: "\(storage)/snapshots/\(box.server.commit)/model.safetensors")) == nil)
        let partial = try #require(FileSystem.fileSize("\(storage)/blobs/\(Self.blobOfModel).incomplete"))
        #expect(partial > 0 && partial < Int64(Self.modelSize))

        // Offline, the half file does not pass for a model.
        let offline = try box.run("ru-tok", ["--model", repo], env: ["HF_HUB_OFFLINE": "1"])
        #expect(offline.status == 2)
        #expect(offline.stderr.contains("incomplete") && offline.stderr.contains("model.safetensors"), "\(offline.stderr)")

        try box.server.control(repo, ["cut": "0"])
        let again = try box.run("ru-tok", ["--model", repo, "--format", "ids"])
        #expect(again.status == 0, "\(again.stderr)")
        let cdn = try box.server.requests(repo).filter { $0.server == "cdn" }
        #expect(cdn.last?.range == "bytes=\(partial)-", "\(cdn.map { $0.range ?? "-" })")
        let blob = try Data(contentsOf: URL(fileURLWithPath: "\(storage)/blobs/\(Self.blobOfModel)"))
        #expect(SHA256.hex(Array(blob)) == Self.blobOfModel)
        #expect(!FileManager.default.fileExists(atPath: "\(storage)/blobs/\(Self.blobOfModel).incomplete"))
    }

    @Test func oneCutIsResumedWithinTheRun() throws {
        let box = try HubSandbox()
        let repo = fresh()
        try box.server.control(repo, ["cut": "1"])
        let r = try box.run("ru-tok", ["--model", repo, "--format", "ids"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("resuming"), "\(r.stderr)")
        let ranges = try box.server.requests(repo).filter { $0.server == "cdn" }.map(\.range)
        #expect(ranges.count == 2 && ranges[0] == nil && ranges[1] == "bytes=\(Self.modelSize / 2)-", "\(ranges)")
    }

    @Test func restartsWhenTheServerIgnoresRangeOrThePartIsBad() throws {
        let box = try HubSandbox()
        let repo = fresh()
        let storage = "\(box.cache)/\(folderName(repo))"
        let blob = "\(storage)/blobs/\(Self.blobOfModel)"
        try box.server.control(repo, ["cut": "100"])
        #expect(try box.run("ru-tok", ["--model", repo]).status == 2)
        // The server answers the Range with the whole file (200): start over, end up right.
        try box.server.control(repo, ["cut": "0", "ignore_range": "1"])
        let restarted = try box.run("ru-tok", ["--model", repo, "--format", "ids"])
        #expect(restarted.status == 0, "\(restarted.stderr)")
        #expect(SHA256.hex(Array(try Data(contentsOf: URL(fileURLWithPath: blob)))) == Self.blobOfModel)

        // A partial file with wrong bytes: the sha256 check catches it and the download restarts.
        let repo2 = fresh()
        let storage2 = "\(box.cache)/\(folderName(repo2))"
        try box.server.control(repo2, ["cut": "100"])
        #expect(try box.run("ru-tok", ["--model", repo2]).status == 2)
        let partial = "\(storage2)/blobs/\(Self.blobOfModel).incomplete"
        let size = try #require(FileSystem.fileSize(partial))
        try Data(repeating: 0x55, count: Int(size)).write(to: URL(fileURLWithPath: partial))
        try box.server.control(repo2, ["cut": "0"])
        let r = try box.run("ru-tok", ["--model", repo2, "--format", "ids"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("sha256"), "\(r.stderr)")
        #expect(SHA256.hex(Array(try Data(contentsOf: URL(fileURLWithPath: "\(storage2)/blobs/\(Self.blobOfModel)")))) == Self.blobOfModel)
    }

    @Test func concurrentClientsOnAColdCacheDownloadOnce() throws {
        let box = try HubSandbox()
        let repo = fresh()
        // Slow CDN (0.1 s per KiB) so the clients overlap on the big file.
        try box.server.control(repo, ["delay": "0.1"])
        let clients = try (0..<4).map { _ in try box.start("ru-tok", ["--model", repo, "--format", "ids", "--verbose"]) }
        let results = clients.map { $0.wait() }
        for r in results {
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.lines == results[0].lines)
        }
        let requests = try box.server.requests(repo)
        #expect(requests.filter { $0.server == "cdn" }.count == 1, "the safetensors file was downloaded more than once")
        let gets = requests.filter { $0.server == "hub" && $0.method == "GET" && $0.path.contains("/resolve/") }.map(\.path)
        #expect(gets.count == Set(gets).count, "a file was downloaded twice: \(gets.sorted())")
        #expect(Set(gets).count == 8)
        let storage = "\(box.cache)/\(folderName(repo))"
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: storage + "/blobs").filter { $0.contains(".") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test func diskFullIsNamedAndLeavesNoPartialFile() throws {
        // The blobs folder on a 4 KiB tmpfs, in a user and mount namespace of its own
        // (unshare -rm: no privilege needed where user namespaces are allowed). The first small
        // file takes the one page; the next finds the disk full. What is left is listed from
        // inside the namespace, before the tmpfs goes with it.
        let box = try HubSandbox()
        let repo = fresh()
        let blobs = "\(box.cache)/\(folderName(repo))/blobs"
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        let script = "mount -t tmpfs -o size=4k tmpfs \"$1\" || exit 99; shift; \"$@\"; rc=$?; echo; ls -A \"$BLOBS\"; exit $rc"
        let r = try box.run("/usr/bin/unshare", ["-rm", "sh", "-c", script, "sh", blobs, TestSupport.tool("ru-tok"), "--model", repo],
                            env: ["BLOBS": blobs])
        guard r.status != 99 && !r.stderr.contains("unshare:") else { return }   // no namespaces here: nothing to test with
        #expect(r.status == 2)
        #expect(r.stderr.contains("disk full") && r.stderr.contains("HF_HUB_CACHE"), "\(r.stderr)")
        #expect(r.stderr.filter { $0 == "\n" }.count == 1, "\(r.stderr)")
        #expect(!r.lines.contains { $0.hasSuffix(".incomplete") || $0 == Self.blobOfModel }, "\(r.lines) \(r.stderr)")
    }

    // MARK: Things planted in the cache

    @Test func aLinkPlantedAtTheIncompleteNameIsNotFollowed() throws {
        let box = try HubSandbox()
        let repo = fresh()
        let blobs = "\(box.cache)/\(folderName(repo))/blobs"
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        let victim = box.dir.appendingPathComponent("victim").path
        try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
        let partial = "\(blobs)/\(Self.blobOfModel).incomplete"
        try FileManager.default.createSymbolicLink(atPath: partial, withDestinationPath: victim)
        let r = try box.run("ru-tok", ["--model", repo, "--format", "ids"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n", "the download wrote through the link")
        let blob = "\(blobs)/\(Self.blobOfModel)"
        var info = stat()
        #expect(lstat(blob, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG, "the blob is not a regular file")
        #expect(SHA256.hex(Array(try Data(contentsOf: URL(fileURLWithPath: blob)))) == Self.blobOfModel)
        #expect(lstat(partial, &info) != 0)
    }

    @Test func whatIsPlantedAtAPartialNameIsReplacedNotWrittenThrough() throws {
        let dir = TestSupport.temporaryDirectory().path
        let victim = dir + "/victim"
        try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
        let partial = dir + "/blob.incomplete"
        func plant(_ make: () -> Int32) throws -> Int32 {
            unlink(partial)
            #expect(make() == 0)
            let fd = try FileSystem.openPartialDownload(partial)
            var info = stat()
            #expect(fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && info.st_nlink == 1 && info.st_size == 0)
            #expect(write(fd, "x", 1) == 1)
            return fd
        }
        // A link, a hard link to another file, a FIFO (opening it to write would block): each
        // replaced by a fresh empty file; the victim never written.
        close(try plant { symlink(victim, partial) })
        close(try plant { link(victim, partial) })
        close(try plant { mkfifo(partial, 0o600) })
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        // What an interrupted run of ours left is resumed.
        let fd = try FileSystem.openPartialDownload(partial)
        var info = stat()
        #expect(fstat(fd, &info) == 0 && info.st_size == 1)
        close(fd)
    }

    @Test func aLinkPlantedAsALockFileIsRefused() throws {
        let box = try HubSandbox()
        let repo = fresh()
        let lock = "\(box.cache)/.locks/\(folderName(repo))/\(Self.blobOfModel).lock"
        try FileManager.default.createDirectory(atPath: FileSystem.parent(lock), withIntermediateDirectories: true)
        let victim = box.dir.appendingPathComponent("victim").path
        try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
        chmod(victim, 0o600)
        try FileManager.default.createSymbolicLink(atPath: lock, withDestinationPath: victim)
        let r = try box.run("ru-tok", ["--model", repo, "--format", "ids"])
        #expect(r.status == 2)
        #expect(r.stderr == "ru-tok: \(lock): not a regular file (a link or something else put there by another program): remove it and run again\n", "\(r.stderr)")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
    }

    @Test func aLinkPlantedAsTheBlobsFolderIsRefused() throws {
        let box = try HubSandbox()
        let repo = fresh()
        let storage = "\(box.cache)/\(folderName(repo))"
        try FileManager.default.createDirectory(atPath: storage, withIntermediateDirectories: true)
        let elsewhere = box.dir.appendingPathComponent("elsewhere")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: storage + "/blobs", withDestinationPath: elsewhere.path)
        let r = try box.run("ru-tok", ["--model", repo, "--format", "ids"])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("ru-tok: \(storage)/blobs: not a folder"), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere.path).isEmpty)
    }

    @Test func aCacheDirTagLinkIsNotFollowed() throws {
        let box = try HubSandbox()
        try FileManager.default.createDirectory(atPath: box.cache, withIntermediateDirectories: true)
        let elsewhere = box.dir.appendingPathComponent("created-through-link").path
        try FileManager.default.createSymbolicLink(atPath: box.cache + "/CACHEDIR.TAG", withDestinationPath: elsewhere)
        let r = try box.run("ru-tok", ["--model", fresh(), "--format", "ids"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: elsewhere), "CACHEDIR.TAG was written through a link")
    }

    @Test func aBlobThatIsALinkOutOfTheCacheIsNotRead() throws {
        let box = try HubSandbox()
        let repo = fresh()
        #expect(try box.run("ru-tok", ["--model", repo, "--format", "ids"]).status == 0)
        // Someone with write access to the cache swaps a blob for a link leading out of it.
        let blob = "\(box.cache)/\(folderName(repo))/blobs/\(Self.blobOfModel)"
        let outside = box.dir.appendingPathComponent("outside.safetensors").path
        try FileManager.default.moveItem(atPath: blob, toPath: outside)
        try FileManager.default.createSymbolicLink(atPath: blob, withDestinationPath: outside)
        for env in [["HF_HUB_OFFLINE": "1"], [:]] {
            let r = try box.run("ru-tok", ["--model", repo, "--format", "ids"], env: env)
            #expect(r.status == 2, "\(env)")
            #expect(r.stderr == "ru-tok: \(blob): not a regular file: the Hugging Face cache holds something a download did not make; remove it and run again\n", "\(r.stderr)")
        }
        // A snapshot entry that is a link anywhere but blobs/: refused the same way.
        let pointer = "\(box.cache)/\(folderName(repo))/snapshots/\(box.server.commit)/model.safetensors"
        unlink(pointer)
        try FileManager.default.createSymbolicLink(atPath: pointer, withDestinationPath: outside)
        let r = try box.run("ru-tok", ["--model", repo, "--format", "ids"], env: ["HF_HUB_OFFLINE": "1"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\(pointer): a link to \(outside), not to the model's blobs/"), "\(r.stderr)")
    }

    @Test func waitsForALockHeldByPython() throws {
        let box = try HubSandbox()
        let repo = fresh()
        let lock = "\(box.cache)/.locks/\(folderName(repo))/\(Self.blobOfModel).lock"
        try FileManager.default.createDirectory(atPath: FileSystem.parent(lock), withIntermediateDirectories: true)
        // huggingface_hub's filelock takes flock(2) on the same file: hold it for a second.
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(1.0)", lock]
        let out = Pipe()
        python.standardOutput = out
        try python.run()
        _ = try out.fileHandleForReading.read(upToCount: 7)
        let started = Date()
        let r = try box.run("ru-tok", ["--model", repo, "--format", "ids", "--verbose"])
        python.waitUntilExit()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("waiting for another process downloading \(repo)/model.safetensors"), "\(r.stderr)")
        #expect(Date().timeIntervalSince(started) > 0.5)
    }

    // MARK: Offline and the cache first

    @Test func offlineUsesTheCacheAndExplainsAnEmptyOne() throws {
        let box = try HubSandbox()
        let repo = fresh()
        let online = try box.run("ru-tok", ["--model", repo, "--format", "ids"])
        #expect(online.status == 0, "\(online.stderr)")
        let before = try box.server.requests(repo).count

        // Offline: the cache answers; an endpoint that does not exist proves no network is used.
        let offline = try box.run("ru-tok", ["--model", repo, "--format", "ids", "--verbose"],
                                  env: ["HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:1"])
        #expect(offline.status == 0, "\(offline.stderr)")
        #expect(offline.lines == online.lines)
        #expect(offline.stderr.contains("(cache)"), "\(offline.stderr)")
        // Online again: a cached model costs no request either.
        #expect(try box.run("ru-tok", ["--model", repo, "--format", "ids"]).lines == online.lines)
        #expect(try box.server.requests(repo).count == before)
        // Pinned to the commit: found from snapshots/ without a ref.
        let pinned = try box.run("ru-tok", ["--model", "\(repo)@\(box.server.commit)", "--format", "ids"], env: ["HF_HUB_OFFLINE": "1"])
        #expect(pinned.status == 0, "\(pinned.stderr)")

        let empty = try box.run("ru-tok", ["--model", "deepvk/USER-base"], env: ["HF_HUB_OFFLINE": "1"])
        #expect(empty.status == 2)
        #expect(empty.stderr.contains("offline mode is on"), "\(empty.stderr)")
        #expect(empty.stderr.contains("huggingface-cli download deepvk/USER-base"), "\(empty.stderr)")
        // The default model is the one asked for when --model is absent.
        let byDefault = try box.run("ru-tok", [], env: ["HF_HUB_OFFLINE": "1"])
        #expect(byDefault.stderr.contains("deepvk/USER-base"), "\(byDefault.stderr)")
        let fromVariable = try box.run("ru-tok", ["--format", "ids"], env: ["HF_HUB_OFFLINE": "1", "RU_EMBED_MODEL": repo])
        #expect(fromVariable.status == 0 && fromVariable.lines == online.lines, "\(fromVariable.stderr)")
    }

    @Test func cacheLocationFollowsTheEnvironment() throws {
        let box = try HubSandbox()
        let repo = fresh()
        // HF_HOME/hub when HF_HUB_CACHE is not set (empty counts as not set).
        let r = try box.run("ru-tok", ["--model", repo, "--format", "ids"], env: ["HF_HUB_CACHE": ""])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(box.home)/hub/\(folderName(repo))/refs/main"))
        // XDG_CACHE_HOME/huggingface/hub when neither is set.
        let xdg = box.dir.appendingPathComponent("xdg").path
        let r2 = try box.run("ru-tok", ["--model", repo, "--format", "ids"], env: ["HF_HUB_CACHE": "", "HF_HOME": "", "XDG_CACHE_HOME": xdg])
        #expect(r2.status == 0, "\(r2.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(xdg)/huggingface/hub/\(folderName(repo))/refs/main"))
    }

    // MARK: Pieces

    @Test func hubIds() {
        #expect(HubModelID("deepvk/USER-base") == HubModelID("deepvk/USER-base@main"))
        #expect(HubModelID("deepvk/USER-base@v1.0")?.revision == "v1.0")
        #expect(HubModelID("org/name@refs/pr/1")?.revision == "refs/pr/1")
        #expect(HubModelID("deepvk/USER-base")?.folderName == "models--deepvk--USER-base")
        for bad in ["USER-base", "a/b/c", "/abs/path", "org/", "/name", "org/na me", "org/name@", "org/-x", "org/a--b"] {
            #expect(HubModelID(bad) == nil, "\(bad)")
        }
        #expect(HubClient.escapeSegment("refs/pr/1") == "refs%2Fpr%2F1")
        #expect(HubClient.normalizeEtag("W/\"abc\"") == "abc")
        #expect(HubClient.rangeStart("bytes 100-199/200") == 100)
    }

    @Test func fileSelection() {
        let siblings = [".gitattributes", "README.md", "config.json", "model.safetensors", "pytorch_model.bin",
                        "onnx/model.onnx", "1_Pooling/config.json", "2_Dense/model.safetensors", "2_Dense/config.json",
                        "tokenizer.json", "vocab.txt", "modules.json", "openvino/openvino_model.xml", "images/x.png"]
        #expect(ModelFiles.select(siblings) == ["1_Pooling/config.json", "2_Dense/config.json", "2_Dense/model.safetensors",
                                                "config.json", "model.safetensors", "modules.json", "tokenizer.json", "vocab.txt"])
        // A Dense head saved by sentence-transformers 2.x: its pytorch_model.bin is fetched,
        // but only where the module folder has no safetensors, and never the transformer's.
        let labse = ["config.json", "model.safetensors", "pytorch_model.bin", "2_Dense/config.json", "2_Dense/pytorch_model.bin",
                     "3_Dense/config.json", "3_Dense/model.safetensors", "3_Dense/pytorch_model.bin", "x/pytorch_model.bin"]
        #expect(ModelFiles.select(labse) == ["2_Dense/config.json", "2_Dense/pytorch_model.bin", "3_Dense/config.json",
                                             "3_Dense/model.safetensors", "config.json", "model.safetensors"])
    }
}
