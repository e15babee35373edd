import RuCore
import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Downloads the files a model needs from the hub into the shared cache, the way
/// `huggingface_hub.snapshot_download` does, and returns the snapshot folder.
///
/// 1. `GET {endpoint}/api/models/{repo}/revision/{rev}`: the commit and the file list.
/// 2. For each needed file missing from `snapshots/<commit>/`: `HEAD {endpoint}/{repo}/resolve/{commit}/{path}`
///    (redirects followed within the hub only) for ETag / X-Linked-Etag, X-Linked-Size and the
///    download URL (the CDN's, for LFS files).
/// 3. Under the lock `.locks/models--org--name/<etag>.lock`: download to `blobs/<etag>.incomplete`
///    (resuming with Range what an interrupted run left), check the size and, for LFS files,
///    the sha256 the etag is; rename to `blobs/<etag>`; link `snapshots/<commit>/<path>` to it.
/// 4. `refs/<revision>` = commit.
package final class HubClient {
    package let settings: HubSettings
    package let cache: HubCache
    let reporting: DownloadReporting
    let verbose: Bool
    /// Attempts per file when the connection breaks (each resumes where the last stopped).
    var attempts = 3

    let reporter: Reporter

    package init(settings: HubSettings, reporting: DownloadReporting, verbose: Bool, reporter: Reporter = .silent) {
        self.reporter = reporter
        self.settings = settings
        self.cache = HubCache(root: settings.cacheDirectory)
        self.reporting = reporting
        self.verbose = verbose
    }

    // MARK: Snapshot

    /// Fetches what is missing of `id` and returns its snapshot folder.
    package func download(_ id: HubModelID) throws -> String {
        let (commit, siblings) = try revisionInfo(id)
        let files = ModelFiles.select(siblings)
        guard files.contains("config.json") else {
            throw RuEmbedError("model '\(id)': the repository has no config.json: not a transformers model")
        }
        guard files.contains(where: { $0.hasSuffix(".safetensors") }) else {
            let formats = siblings.filter { $0.hasSuffix(".bin") || $0.hasSuffix(".onnx") || $0.hasSuffix(".h5") }
            throw RuEmbedError("model '\(id)': the repository has no safetensors weights\(formats.isEmpty ? "" : " (it has \(formats.prefix(3).joined(separator: ", ")))"); only safetensors are read")
        }
        try FileSystem.makeDirectories(cache.storage(id) + "/blobs")
        // The model's folders are real folders, not links planted to lead the download elsewhere.
        try FileSystem.requireFolders(from: cache.root, to: cache.storage(id) + "/blobs")
        cache.writeCacheDirTag()
        try cache.writeRef(id, commit: commit)
        let folder = cache.snapshot(id, commit: commit)
        // A pointer that resolves is a file some earlier run (ours or Python's) completed.
        let missing = files.filter { access(folder + "/" + $0, R_OK) != 0 }
        if !missing.isEmpty && reporting != .quiet {
            warn("downloading \(id) (commit \(commit.prefix(10)), \(missing.count) file\(missing.count == 1 ? "" : "s")) into \(settings.cacheDirectory)")
        }
        for path in missing {
            try fetch(id, commit: commit, path: path)
        }
        try cache.checkSnapshot(id, folder: folder)
        let lacking = ModelFiles.missing(in: folder)
        guard lacking.isEmpty else {
            throw RuEmbedError("model '\(id)': the repository at \(commit) lacks \(lacking.joined(separator: ", "))")
        }
        note("model \(id) is at \(commit) in \(folder)")
        return folder
    }

    /// The commit a revision names and the repo's file list, from the hub's API.
    func revisionInfo(_ id: HubModelID) throws -> (commit: String, files: [String]) {
        let url = try makeURL("\(settings.endpoint)/api/models/\(id.repo)/revision/\(Self.escapeSegment(id.revision))")
        let response = try send(url, id: id, path: nil, method: "GET", headers: authHeaders(), redirects: .follow)
        try check(response, id: id, path: nil)
        guard let json = try? JSONValue.parse(String(decoding: response.body, as: UTF8.self)),
              let commit = json["sha"]?.stringValue, HubModelID.isCommitHash(commit) else {
            throw RuEmbedError("model '\(id)': \(url.absoluteString) did not answer with a commit (\"sha\"): is HF_ENDPOINT a Hugging Face hub?")
        }
        let files = (json["siblings"]?.arrayValue ?? []).compactMap { $0["rfilename"]?.stringValue }
        return (commit, files)
    }

    // MARK: One file

    struct FileMetadata {
        var etag: String
        var size: Int64?
        var location: URL
        var commit: String
    }

    /// HEAD on the resolve URL, stopping at a redirect that leaves the hub (the CDN): that
    /// response carries X-Linked-Etag and X-Linked-Size.
    func metadata(_ id: HubModelID, commit: String, path: String) throws -> FileMetadata {
        let url = try makeURL("\(settings.endpoint)/\(id.repo)/resolve/\(commit)/\(path.split(separator: "/").map { Self.escapeSegment(String($0)) }.joined(separator: "/"))")
        var headers = authHeaders()
        headers["Accept-Encoding"] = "identity"
        let response = try send(url, id: id, path: path, method: "HEAD", headers: headers, redirects: .sameOrigin)
        if !(300..<400).contains(response.status) { try check(response, id: id, path: path) }
        guard let repoCommit = response.header("X-Repo-Commit") else {
            throw RuEmbedError("model '\(id)': \(url.absoluteString) answered without X-Repo-Commit: HF_ENDPOINT (\(settings.endpoint)) does not look like a Hugging Face hub (check proxies and firewalls)")
        }
        guard let rawEtag = response.header("X-Linked-Etag") ?? response.header("ETag") else {
            throw RuEmbedError("model '\(id)': \(path): the hub sent no ETag; cannot store the file safely")
        }
        let size = (response.header("X-Linked-Size") ?? ((300..<400).contains(response.status) ? nil : response.header("Content-Length")))
            .flatMap { Int64($0) }
        var location = response.url
        if (300..<400).contains(response.status), let target = response.header("Location") {
            location = URL(string: target, relativeTo: response.url)?.absoluteURL ?? response.url
        }
        return FileMetadata(etag: Self.normalizeEtag(rawEtag), size: size, location: location, commit: repoCommit)
    }

    func fetch(_ id: HubModelID, commit: String, path: String) throws {
        let meta = try metadata(id, commit: commit, path: path)
        guard !meta.etag.isEmpty, !meta.etag.contains("/"), meta.etag != ".", meta.etag != ".." else {
            throw RuEmbedError("model '\(id)': \(path): unusable ETag \"\(meta.etag)\"")
        }
        let blob = cache.blob(id, etag: meta.etag)
        let lock = FileLock(path: cache.lock(id, etag: meta.etag))
        try FileSystem.makeDirectories(FileSystem.parent(lock.path))
        try FileSystem.requireFolders(from: cache.root, to: FileSystem.parent(lock.path))
        try lock.acquire(waiting: {
            if reporting != .quiet { warn("waiting for another process downloading \(id.repo)/\(path) (\(lock.path))") }
        })
        defer { lock.release() }
        // Blobs are regular files: anything else at the name (a link planted to point outside
        // the cache, a FIFO) is removed and the file downloaded.
        if !FileSystem.removeUnlessRegularFile(blob) {
            try downloadBlob(id, path: path, meta: meta, blob: blob)
        } else if reporting == .lines {
            warn("\(id.repo)/\(path): already in the cache (\(meta.etag))")
        }
        try cache.link(id, commit: commit, path: path, etag: meta.etag)
    }

    /// Downloads to `<blob>.incomplete`, checks, renames. Called with the blob's lock held, so the
    /// .incomplete file is ours alone, and what an interrupted run left there can be resumed.
    func downloadBlob(_ id: HubModelID, path: String, meta: FileMetadata, blob: String) throws {
        let partial = blob + ".incomplete"
        let sha256 = Self.isSHA256(meta.etag) ? meta.etag : nil
        var restartedAfterMismatch = false
        var attempt = 0
        while true {
            attempt += 1
            // Opened before anything is measured: sizes come from this descriptor, never from a
            // name that could be swapped for a link between a stat and an open.
            let fd = try FileSystem.openPartialDownload(partial)
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0 else { throw FileSystem.error(partial, errno) }
            var have = Int64(info.st_size)
            if let size = meta.size, have > size {
                have = 0
                if ftruncate(fd, 0) != 0 { throw FileSystem.error(partial, errno) }
            }
            if let size = meta.size, let free = FileSystem.freeSpace(FileSystem.parent(blob)), free < size - have {
                if have == 0 { unlink(partial) }   // the empty file just opened: leave nothing behind
                throw RuEmbedError("model '\(id)': \(path): disk full: it needs \(DownloadProgress.bytes(size - have)) more and \(FileSystem.parent(blob)) has \(DownloadProgress.bytes(free)) free; free some space or move the cache (HF_HUB_CACHE)")
            }
            if lseek(fd, off_t(have), SEEK_SET) < 0 { throw FileSystem.error(partial, errno) }
            var hasher = SHA256()
            if sha256 != nil && have > 0 { try Self.hashPrefix(fd, partial, count: have, into: &hasher) }

            let progress = DownloadProgress(reporting: reporting, reporter: reporter, label: "\(id.repo)/\(path)", total: meta.size, initial: have)
            var headers = ["Accept-Encoding": "identity"]
            if HTTP.origin(meta.location) == HTTP.origin(URL(string: settings.endpoint)) {
                headers.merge(authHeaders()) { $1 }   // no token for a CDN on another host
            }
            if have > 0 { headers["Range"] = "bytes=\(have)-" }
            var written = have
            var rangeSatisfied = false
            do {
                let response = try HTTP.request(meta.location, headers: headers, redirects: .follow, onHead: { head in
                    if head.status == 206 {
                        let start = head.header("Content-Range").flatMap(Self.rangeStart)
                        guard start == have else { throw RuEmbedError("model '\(id)': \(path): the server resumed at the wrong place (\(head.header("Content-Range") ?? "no Content-Range"))") }
                        return true
                    }
                    if head.status == 200 {
                        if have > 0 {   // the server ignored the Range: start over
                            have = 0; written = 0
                            hasher = SHA256()
                            progress.restart()
                            if ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) < 0 { throw FileSystem.error(partial, errno) }
                        }
                        return true
                    }
                    if head.status == 416 { rangeSatisfied = true }
                    return false
                }, onBody: { chunk in
                    do {
                        try FileSystem.writeAll(fd, chunk, path: partial)
                    } catch let e as RuEmbedError {
                        // A full disk: give the space back rather than keep a part for later.
                        if e.message.contains("disk full") { unlink(partial) }
                        throw e
                    }
                    hasher.update(data: chunk)
                    written += Int64(chunk.count)
                    progress.advance(Int64(chunk.count))
                })
                if !rangeSatisfied && !(200..<300).contains(response.status) {
                    progress.abandon()
                    try check(response, id: id, path: path)
                }
                if rangeSatisfied {
                    // The partial file is already whole (or longer): check it from scratch.
                    hasher = SHA256()
                    if sha256 != nil { try Self.hashPrefix(fd, partial, count: have, into: &hasher) }
                }
            } catch let e as HTTP.NetworkError {
                progress.abandon()
                fsync(fd)
                if attempt < attempts && (e.interrupted || written > have) {
                    warn("\(id.repo)/\(path): \(e.message) after \(DownloadProgress.bytes(written)); resuming")
                    usleep(UInt32(200_000 * attempt))
                    continue
                }
                var now = stat()
                let kept = fstat(fd, &now) == 0 ? Int64(now.st_size) : 0
                throw RuEmbedError("model '\(id)': downloading \(path): \(e.message)" + (kept > 0 ? " (\(DownloadProgress.bytes(kept)) kept in \(partial); the next run resumes)" : ""))
            } catch let e as RuEmbedError where e.message.contains("disk full") {
                progress.abandon()
                throw RuEmbedError("model '\(id)': downloading \(path): \(e.message)")
            } catch {
                progress.abandon()
                throw error
            }

            // The whole file is there: check it before it can pass for complete.
            if let size = meta.size, written != size {
                progress.abandon()
                if written < size && attempt < attempts {
                    warn("\(id.repo)/\(path): the connection ended after \(DownloadProgress.bytes(written)) of \(DownloadProgress.bytes(size)); resuming")
                    continue
                }
                if written > size { unlink(partial) }
                throw RuEmbedError("model '\(id)': \(path): got \(written) bytes, the hub says \(size)" + (written < size ? " (kept for the next run to resume)" : ""))
            }
            if let sha256 {
                let got = hexString(hasher.finalize())
                if got != sha256 {
                    progress.abandon()
                    unlink(partial)
                    if have > 0 && !restartedAfterMismatch {
                        // What an earlier run left was not the start of this file: start over once.
                        restartedAfterMismatch = true
                        warn("\(id.repo)/\(path): the resumed file failed its sha256 check; downloading it again from the start")
                        continue
                    }
                    throw RuEmbedError("model '\(id)': \(path): sha256 \(got) does not match the hub's \(sha256); the download was discarded")
                }
            }
            if fsync(fd) != 0 { throw FileSystem.error(partial, errno) }
            if rename(partial, blob) != 0 { throw FileSystem.error(blob, errno) }
            progress.finish()
            return
        }
    }

    // MARK: HTTP helpers

    func authHeaders() -> [String: String] {
        var headers = ["User-Agent": "ru-embed/\(RuEmbedVersion.string); hf_hub-compatible"]
        if let token = settings.token { headers["Authorization"] = "Bearer \(token)" }
        return headers
    }

    func send(_ url: URL, id: HubModelID, path: String?, method: String, headers: [String: String],
              redirects: HTTP.Redirects) throws -> HTTPResponse {
        do {
            return try HTTP.request(url, method: method, headers: headers, redirects: redirects)
        } catch let e as HTTP.NetworkError {
            throw RuEmbedError("model '\(id)': \(e.message)")
        }
    }

    /// Turns an HTTP error into a message naming the cause.
    func check(_ response: HTTPResponse, id: HubModelID, path: String?) throws {
        let status = response.status
        guard !(200..<300).contains(status) else { return }
        let code = response.header("X-Error-Code")
        let serverMessage = response.header("X-Error-Message")
        let tokenNote: String
        if let source = settings.tokenSource {
            tokenNote = "the token from \(source) was sent and refused: check that it can read \(id.repo)"
        } else {
            tokenNote = "set HF_TOKEN to an access token that can read it (\(settings.endpoint)/settings/tokens), or log in with `huggingface-cli login`"
        }
        let what = "model '\(id)'"
        switch status {
        case 401:
            throw RuEmbedError("\(what): access denied (HTTP 401): the repository is private or gated, or does not exist; \(tokenNote)")
        case 403:
            if code == "GatedRepo" {
                throw RuEmbedError("\(what): the repository is gated (HTTP 403): accept its conditions at \(settings.endpoint)/\(id.repo), then \(settings.tokenSource == nil ? "set HF_TOKEN to an access token of that account" : tokenNote)")
            }
            throw RuEmbedError("\(what): forbidden (HTTP 403)\(serverMessage.map { ": \($0)" } ?? ""); \(tokenNote)")
        case 404:
            switch code {
            case "RevisionNotFound":
                throw RuEmbedError("\(what): no revision '\(id.revision)' (branch, tag or commit) in \(id.repo) (HTTP 404)")
            case "EntryNotFound":
                throw RuEmbedError("\(what): no file '\(path ?? "?")' in \(id.repo) at \(id.revision) (HTTP 404)")
            case "RepoNotFound":
                throw RuEmbedError("\(what): no such repository on \(settings.endpoint) (HTTP 404), and no folder \(id.repo) here")
            default:
                if let path {
                    throw RuEmbedError("\(what): not found (HTTP 404): \(path) at \(response.url.absoluteString)")
                }
                throw RuEmbedError("\(what): not found (HTTP 404): no such repository or revision on \(settings.endpoint)")
            }
        default:
            var detail = serverMessage ?? ""
            if detail.isEmpty {
                detail = String(String(decoding: response.body.prefix(200), as: UTF8.self)
                    .split(separator: "\n").first ?? "")
            }
            throw RuEmbedError("\(what): HTTP \(status) from \(response.url.absoluteString)\(detail.isEmpty ? "" : ": \(detail)")\(path.map { " (\($0))" } ?? "")")
        }
    }

    func makeURL(_ text: String) throws -> URL {
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https" else {
            throw RuEmbedError.invalidArgument("HF_ENDPOINT: not an http(s) URL: \(settings.endpoint)")
        }
        return url
    }

    func warn(_ message: String) { reporter.note(message) }

    func note(_ message: String) {
        if verbose { reporter.note(message) }
    }

    // MARK: Small pieces

    /// `"abc"` and `W/"abc"` → `abc` (huggingface_hub's `_normalize_etag`).
    static func normalizeEtag(_ etag: String) -> String {
        var s = Substring(etag)
        while s.hasPrefix("W/") { s = s.dropFirst(2) }
        while s.first == "\"" { s = s.dropFirst() }
        while s.last == "\"" { s = s.dropLast() }
        return String(s)
    }

    static func isSHA256(_ s: String) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// Percent-encodes one path segment (a revision such as refs/pr/1 becomes refs%2Fpr%2F1,
    /// as huggingface_hub's `quote(revision, safe="")`).
    static func escapeSegment(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    /// The first byte of `bytes 100-199/200`.
    static func rangeStart(_ contentRange: String) -> Int64? {
        guard let range = contentRange.split(separator: " ").last, let dash = range.firstIndex(of: "-") else { return nil }
        return Int64(range[..<dash])
    }

    /// Hashes the first `count` bytes of the open partial file (read with pread: the write
    /// position stays where it is).
    static func hashPrefix(_ fd: Int32, _ path: String, count: Int64, into hasher: inout SHA256) throws {
        var left = count
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while left > 0 {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Int(min(Int64($0.count), left)), off_t(count - left)) }
            if n < 0 { if errno == EINTR { continue }; throw FileSystem.error(path, errno) }
            if n == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            left -= Int64(n)
        }
    }
}
