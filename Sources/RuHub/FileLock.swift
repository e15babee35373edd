import RuCore
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive `flock(2)` lock on a file, the kind `huggingface_hub` (through `filelock`) takes
/// on `.locks/models--org--name/<etag>.lock`: Python and our tools wait for each other.
///
/// Lock files are left in place after use, as filelock leaves them (removing one while another
/// process waits on it would let a third lock a fresh file at the same path).
final class FileLock {
    let path: String
    private var fd: Int32 = -1

    init(path: String) {
        self.path = path
    }

    /// Takes the lock; calls `waiting` once when another process holds it, then blocks.
    func acquire(waiting: () -> Void) throws {
        try FileSystem.makeDirectories(FileSystem.parent(path))
        var created = true
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o664)
        if fd < 0 && errno == EEXIST {
            // An existing lock file is used only when it is a regular file: a link planted at the
            // name is not followed (O_NOFOLLOW), and a FIFO or device is not opened at all (opening
            // some devices does something). It is refused rather than replaced: removing a lock
            // file others may be waiting on would let two downloads run at once.
            created = false
            var info = stat()
            if lstat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFREG { throw notALockFile() }
            fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            if fd < 0 && errno == ELOOP { throw notALockFile() }
            if fd >= 0 && (fstat(fd, &info) != 0 || (info.st_mode & S_IFMT) != S_IFREG) {
                close(fd)
                fd = -1
                throw notALockFile()
            }
        }
        guard fd >= 0 else { throw FileSystem.error(path, errno) }
        // Group-writable as huggingface_hub makes them, so users sharing a cache can wait on them.
        if created { fchmod(fd, 0o664) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { return }
        guard errno == EWOULDBLOCK else { throw lockError() }
        waiting()
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw lockError() }
        }
    }

    private func notALockFile() -> RuEmbedError {
        RuEmbedError("\(path): not a regular file (a link or something else put there by another program): remove it and run again")
    }

    private func lockError() -> RuEmbedError {
        let e = errno
        close(fd)
        fd = -1
        return RuEmbedError.io("\(path): cannot lock: \(String(cString: strerror(e)))")
    }

    func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
