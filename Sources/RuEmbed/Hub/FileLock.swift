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
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o664)
        if fd < 0 && errno == EEXIST {
            created = false
            fd = open(path, O_RDWR | O_CLOEXEC)
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

    private func lockError() -> ToolError {
        let e = errno
        close(fd)
        fd = -1
        return ToolError("\(path): cannot lock: \(String(cString: strerror(e)))")
    }

    func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
