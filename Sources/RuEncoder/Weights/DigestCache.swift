import RuCompute
import RuCore
import RuTokenizer
import RuVectors
import RuHub
import Crypto
#if canImport(Glibc)
import Glibc
#endif

/// SHA-256 digests of files kept between runs in $XDG_CACHE_HOME/ru-embed/digests (else
/// ~/.cache/...), one "key<TAB>digest" line each, keyed by the files' real paths, sizes and
/// modification times: hashing the weights takes seconds, and even tokenizer.json's 5 MB took
/// a sixth of a tokenizer's load. Without a writable cache folder digests are just computed.
struct DigestCache {
    /// The cache file, or nil for no cache.
    let file: String?

    /// The cache of this user (or of $XDG_CACHE_HOME).
    static var standard: DigestCache { DigestCache(file: defaultPath()) }

    /// The key of `files` as they are now: real path, size and mtime of each.
    static func key(_ files: [String]) throws -> String {
        var key = ""
        for f in files {
            var st = stat()
            guard stat(f, &st) == 0 else { throw RuEmbedError.io("\(f): \(String(cString: strerror(errno)))") }
            let real = realpath(f, nil).map { p in defer { free(p) }; return String(cString: p) } ?? f
            key += "\(real)|\(st.st_size)|\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec);"
        }
        return key
    }

    /// The digest recorded for `key`, if any. Only a regular file of this user counts as the
    /// cache (see `openForAppending`): digests from anything else are not trusted.
    func lookup(_ key: String) -> String? {
        guard let path = file, Self.isOwnRegularFile(path), let text = try? ByteInput.readFile(path) else { return nil }
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: "\t")
            if parts.count == 2 && parts[0] == key { return String(parts[1]) }
        }
        return nil
    }

    /// Records `digest` for `key` (one append: concurrent runs add lines, never mix them).
    func store(_ key: String, _ digest: String) {
        guard let path = file else { return }
        let line = key + "\t" + digest + "\n"
        guard let fd = Self.openForAppending(path) else { return }
        _ = line.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// Opens the cache file to append, creating it if absent, as the hub cache's files are
    /// opened: never through a link (O_NOFOLLOW), never a FIFO or device (O_NONBLOCK, then
    /// fstat), and only a file of this user with one link. Anything else: no cache this run.
    static func openForAppending(_ path: String) -> Int32? {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == geteuid(), info.st_nlink == 1 else {
            close(fd)
            return nil
        }
        return fd
    }

    static func isOwnRegularFile(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && info.st_uid == geteuid()
    }

    /// SHA-256 (hex) of one file whose bytes the caller has read, given the file's key taken
    /// before reading: from the cache when the file was the same before and after the read and
    /// is as recorded; else computed (and recorded when the file held still).
    func digest(of path: String, keyBeforeReading before: String?, bytes: [UInt8]) -> String {
        guard let before, (try? DigestCache.key([path])) == before else { return hexString(SHA256.hash(data: bytes)) }
        if let known = lookup(before) { return known }
        let digest = hexString(SHA256.hash(data: bytes))
        store(before, digest)
        return digest
    }

    static func defaultPath() -> String? {
        var base: String
        if let x = getenv("XDG_CACHE_HOME"), let s = String(validatingCString: x), !s.isEmpty { base = s }
        else if let home = getenv("HOME"), let s = String(validatingCString: home), !s.isEmpty { base = s + "/.cache" }
        else { return nil }
        for dir in [base, base + "/ru-embed"] { mkdir(dir, 0o755) }
        base += "/ru-embed"
        return access(base, W_OK) == 0 ? base + "/digests" : nil
    }
}
