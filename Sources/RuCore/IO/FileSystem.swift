#if canImport(Glibc)
import Glibc
#endif

/// Small POSIX helpers with errors that name the path.
package enum FileSystem {
    package static func error(_ path: String, _ code: Int32) -> RuEmbedError {
        if code == ENOSPC || code == EDQUOT {
            return RuEmbedError.io("\(path): disk full (\(String(cString: strerror(code)))): free some space or move the cache (HF_HUB_CACHE)")
        }
        return RuEmbedError.io("\(path): \(String(cString: strerror(code)))")
    }

    package static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    package static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    package static func fileSize(_ path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(info.st_size)
    }

    package static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// mkdir -p.
    package static func makeDirectories(_ path: String) throws {
        if isDirectory(path) { return }
        let parentPath = parent(path)
        if parentPath != path { try makeDirectories(parentPath) }
        if mkdir(path, 0o777) != 0 && errno != EEXIST { throw error(path, errno) }
    }

    /// Checks that every folder from `root` (excluded: the cache itself may be a link the user
    /// made) down to `path` is a real folder, not a link planted to lead elsewhere.
    package static func requireFolders(from root: String, to path: String) throws {
        guard path.hasPrefix(root + "/") else { return }
        var current = root
        for part in path.dropFirst(root.utf8.count + 1).split(separator: "/") {
            current += "/" + part
            var info = stat()
            guard lstat(current, &info) == 0 else { throw error(current, errno) }
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw RuEmbedError("\(current): not a folder (a link or a file put there by something else than a download): remove it and run again")
            }
        }
    }

    /// The names in a folder, without `.` and `..`; nil when it cannot be read.
    package static func listFolder(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// True when `path` is a regular file (not following a link). Anything else at the name is
    /// removed (a folder is not: unlink fails on it and the caller's next step reports it).
    package static func removeUnlessRegularFile(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0 else { return false }
        if (info.st_mode & S_IFMT) == S_IFREG { return true }
        unlink(path)
        return false
    }

    /// Opens a download's `.incomplete` file to append to it (read-write: a resumed prefix is
    /// hashed through the same descriptor). What an interrupted run left is resumed only when it
    /// is a regular file of this user with a single link; anything else — a symbolic link (which
    /// O_NOFOLLOW refuses to open), a FIFO, a device, a hard link to some other file, another
    /// user's file — is removed and a fresh file created with O_EXCL, so nothing planted at the
    /// name is ever written through. Called with the blob's lock held.
    package static func openPartialDownload(_ path: String) throws -> Int32 {
        for _ in 0..<3 {
            var info = stat()
            if lstat(path, &info) == 0 {
                if (info.st_mode & S_IFMT) == S_IFREG {
                    // O_NONBLOCK: should a FIFO be swapped in after the lstat, open does not wait.
                    let fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
                    if fd >= 0 {
                        if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
                            && info.st_uid == geteuid() && info.st_nlink == 1 {
                            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
                            return fd
                        }
                        close(fd)
                    } else if errno != ELOOP && errno != ENOENT && errno != ENXIO {
                        throw error(path, errno)
                    }
                }
                if unlink(path) != 0 && errno != ENOENT { throw error(path, errno) }
            } else if errno != ENOENT {
                throw error(path, errno)
            }
            let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
            if fd >= 0 { return fd }
            if errno != EEXIST { throw error(path, errno) }
        }
        throw RuEmbedError("\(path): something keeps putting files at this name while the download holds its lock")
    }

    package static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        try bytes.withUnsafeBytes { try writeAll(fd, $0, path: path) }
    }

    package static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw error(path, errno)
            }
            offset += n
        }
    }

    /// Bytes free to an unprivileged user on the file system holding `path`.
    package static func freeSpace(_ path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }
}
