#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File creation that never writes through something another user planted: the one mechanism
/// every writer (ru-vec's `-o` and `--ids`, the hub cache, the digest cache) goes through.
///
/// - A new file is opened `O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC`: if anything already has
///   the name (a symbolic link, a FIFO, a file), the open fails instead of following or reusing it.
/// - A temporary file gets an unpredictable name (64 random bits from the system's generator,
///   getrandom(2)), in the target's folder so the final rename stays on one file system, and is
///   created mode 0600: nobody else reads a half-written file, whatever the final mode.
package enum SafeFile {
    /// Creates `path`, which must not exist in any form. Returns the descriptor, or throws
    /// naming `path` (EEXIST for anything already there, a symbolic link included).
    package static func createNew(_ path: String, mode: mode_t = 0o600, flags: Int32 = O_WRONLY) throws -> Int32 {
        let fd = open(path, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FileSystem.error(path, errno) }
        return fd
    }

    /// Creates a fresh file, mode 0600, next to `path` (same folder) under a random name such
    /// as `.corpus.npy.3f9c0a7e12b4d6e8.tmp`. Returns the descriptor and the name.
    package static func createTemporary(near path: String) throws -> (fd: Int32, path: String) {
        let folder = FileSystem.parent(path)
        var base = path.split(separator: "/").last.map(String.init) ?? "output"
        // Keep the name within NAME_MAX (255 bytes) whatever the target's length.
        if base.utf8.count > 128 { base = String(decoding: base.utf8.prefix(128), as: UTF8.self) }
        // EEXIST can only be a collision of 64 random bits or a planted name: try other names.
        for _ in 0..<16 {
            let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 16)
            let candidate = (folder == "/" ? "/" : folder + "/") + "." + base + "." + suffix + ".tmp"
            let fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 { return (fd, candidate) }
            if errno != EEXIST { throw FileSystem.error(path, errno) }
        }
        throw RuEmbedError("\(path): cannot create a temporary file next to it: every name tried exists")
    }

    /// Replaces `path` with `bytes` atomically: a temporary file, fsync, chmod to `mode` less the
    /// umask, rename. A link or anything else at `path` is replaced, never written through.
    package static func replace(_ path: String, with bytes: [UInt8], mode: mode_t = 0o666) throws {
        let (fd, temporary) = try createTemporary(near: path)
        do {
            defer { close(fd) }
            try FileSystem.writeAll(fd, bytes, path: temporary)
            if fchmod(fd, mode & ~currentUmask()) != 0 || fsync(fd) != 0 { throw FileSystem.error(temporary, errno) }
            if rename(temporary, path) != 0 { throw FileSystem.error(path, errno) }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// The process's umask (read by setting it and putting it back: there is no getter).
    static func currentUmask() -> mode_t {
        let mask = umask(0o022)
        umask(mask)
        return mask
    }
}

/// A file the user named as output (`-o`, `--ids`), written so that a failed run leaves the old
/// file as it was and no temporary behind.
///
/// What the name is decides how it is written:
/// - absent, or a regular file: into a temporary file next to it (see `SafeFile`), renamed over
///   it by `commit`; an existing file's mode (and owner and group, where we may set them) is
///   kept, a new file gets 0666 less the umask, as a shell's `>` would;
/// - a FIFO, a character or block device, a terminal (`-o /dev/stdout`, `/dev/null`, a named
///   pipe a reader waits on): opened and written in place, never replaced by a regular file;
/// - a directory: refused (one line, exit 2);
/// - /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N: that descriptor, in place;
/// - a symbolic link: followed, as zstd, cp and a shell's `>` follow a link the user named
///   themselves; the file it leads to is then written by the rules above (a regular file is
///   replaced by rename in *its* folder, so the link stays a link; a FIFO or device is written
///   through the link). A dangling link is refused rather than created through: its target
///   may be anywhere, and creating it was not asked for by name.
///   What is never followed is a link at the temporary name: that name is random and created
///   with O_EXCL | O_NOFOLLOW.
public final class OutputFile {
    /// The name the user gave (for messages).
    public let path: String
    /// Where to write the file's bytes; nothing is visible at `path` before `commit()`.
    public let output: ByteOutput
    /// The temporary file renamed over the target at commit; nil when written in place.
    private var temporary: String?
    /// Where the temporary file goes at commit (the target with a user-named link resolved).
    private let destination: String
    private let finalMode: mode_t

    /// Opens `path` for writing; `-` is standard output. A regular file is written through a new
    /// temporary file beside it (never through a link someone planted there) and renamed into
    /// place by `commit()`.
    public init(path: String) throws {
        self.path = path
        if let descriptor = Self.namedDescriptor(path) {
            // /dev/stdout, /dev/fd/N, /proc/self/fd/N: the descriptor itself, written where it
            // stands (a pipe, a terminal, or the file a shell opened with `>`), as a shell would.
            let fd = fcntl(descriptor, F_DUPFD_CLOEXEC, 3)
            guard fd >= 0 else { throw FileSystem.error(path, errno) }
            destination = path
            finalMode = 0
            temporary = nil
            output = ByteOutput(fd: fd, name: path, capacity: 1 << 20, ownsDescriptor: true)
            return
        }
        var target = path
        var info = stat()
        var throughLink = false
        if lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK {
            guard stat(path, &info) == 0 else {
                throw RuEmbedError.io("\(path): a symbolic link to nothing (\(errnoDescription())): name the file itself")
            }
            if (info.st_mode & S_IFMT) == S_IFREG {
                // Replaced in the folder of the file the link leads to, so the link stays.
                guard let real = realpath(path, nil) else { throw FileSystem.error(path, errno) }
                target = String(cString: real)
                free(real)
            } else {
                throughLink = true   // a FIFO or device behind the link: opened through it, in place
            }
        }
        let exists = lstat(target, &info) == 0
        if !exists && errno != ENOENT { throw FileSystem.error(path, errno) }
        if exists && (info.st_mode & S_IFMT) == S_IFDIR {
            throw RuEmbedError("\(path): is a directory: name a file to write")
        }
        if exists && (info.st_mode & S_IFMT) != S_IFREG {
            // Written in place. O_NOFOLLOW: lstat saw no link here; a link swapped in since is refused.
            // No O_CREAT or O_TRUNC: a device or FIFO is used as it is; O_NOCTTY: a terminal
            // named here does not become our controlling terminal.
            let fd = open(target, O_WRONLY | (throughLink ? 0 : O_NOFOLLOW) | O_NOCTTY | O_CLOEXEC)
            guard fd >= 0 else { throw FileSystem.error(path, errno) }
            var now = stat()
            if fstat(fd, &now) != 0 || (now.st_mode & S_IFMT) == S_IFREG {
                // Replaced by a regular file between lstat and open: writing it in place would
                // leave a torn file on failure.
                close(fd)
                throw RuEmbedError("\(path): changed while being opened; run again")
            }
            destination = target
            finalMode = 0
            temporary = nil
            output = ByteOutput(fd: fd, name: path, capacity: 1 << 20, ownsDescriptor: true)
            return
        }
        let (fd, temporaryPath) = try SafeFile.createTemporary(near: target)
        if exists {
            // Keep the owner and group where we may (root may; others may keep the group when
            // they belong to it); failing that the file becomes ours, as any rewrite would.
            if fchown(fd, info.st_uid, info.st_gid) != 0 { _ = fchown(fd, uid_t.max, info.st_gid) }
            // Permission bits only: an output file never inherits set-user/group-ID bits.
            finalMode = info.st_mode & 0o777
        } else {
            finalMode = 0o666 & ~SafeFile.currentUmask()
        }
        destination = target
        temporary = temporaryPath
        PendingTemporaryFiles.add(temporaryPath)
        output = ByteOutput(fd: fd, name: path, capacity: 1 << 20, ownsDescriptor: true)
    }

    /// The descriptor `path` names when it is /dev/stdout, /dev/stderr, /dev/fd/N or
    /// /proc/self/fd/N (their links lead to names like `pipe:[1234]` that cannot be reopened
    /// by path resolution alone, and a temporary file next to them makes no sense).
    static func namedDescriptor(_ path: String) -> Int32? {
        switch path {
        case "/dev/stdout": return 1
        case "/dev/stderr": return 2
        default:
            for prefix in ["/dev/fd/", "/proc/self/fd/"] where path.hasPrefix(prefix) {
                if let n = Int32(path.dropFirst(prefix.utf8.count)), n >= 0 { return n }
            }
            return nil
        }
    }

    /// False for a FIFO, a terminal or a socket: nothing written can be rewritten (a .npy header).
    package var isSeekable: Bool { lseek(output.fd, 0, SEEK_CUR) >= 0 }

    /// Writes out what is buffered and, for a regular file, puts it in place: fsync, the final
    /// mode, rename over the target.
    public func commit() throws {
        try output.flush()
        guard let temporary else { return }
        if fchmod(output.fd, finalMode) != 0 {
            throw RuEmbedError.io("\(path): cannot set the mode: \(errnoDescription())")
        }
        if fsync(output.fd) != 0 && errno != EINVAL {
            throw RuEmbedError.io("\(path): sync failed: \(errnoDescription())")
        }
        if rename(temporary, destination) != 0 {
            throw RuEmbedError.io("\(path): cannot rename into place: \(errnoDescription())")
        }
        PendingTemporaryFiles.remove(temporary)
        self.temporary = nil
    }

    /// Removes the temporary file (the target is untouched). In-place outputs keep what was written.
    public func discard() {
        guard let temporary else { return }
        unlink(temporary)
        PendingTemporaryFiles.remove(temporary)
        self.temporary = nil
    }

    deinit { discard() }

    /// Writes `path` whole or not at all: `body` fills the output, then `commit()`; if either
    /// throws, the temporary file is removed and the old file at `path` is left as it was.
    public static func write(path: String, _ body: (ByteOutput) throws -> Void) throws {
        let file = try OutputFile(path: path)
        do {
            try body(file.output)
            try file.commit()
        } catch {
            file.discard()
            throw error
        }
    }
}

extension OutputFile {
    /// Removes the temporary files of outputs not yet committed when SIGINT, SIGTERM or
    /// SIGHUP ends the process (`SignalCleanup`: after any handler installed before), so an
    /// interrupted run leaves nothing behind either. The tools call it at start; a library user who owns
    /// the process's signals may too. Without it, an interrupted process leaves its
    /// temporary files (`.NAME.tmp-…` beside the target).
    public static func removeTemporaryFilesOnSignals() {
        PendingTemporaryFiles.lock.withLock { _ in PendingTemporaryFiles.install() }
    }
}

/// The temporary files of outputs not yet committed (at most `capacity` at once are removed
/// on a signal). The handler only calls unlink(2) on C strings prepared beforehand
/// (async-signal-safe), then dies of the signal.
enum PendingTemporaryFiles {
    static let capacity = 8
    nonisolated(unsafe) static let slots: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let p = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: capacity)
        p.initialize(repeating: nil, count: capacity)
        return p
    }()
    nonisolated(unsafe) static var installed = false
    static let lock = Lock(())

    /// Called with `lock` held.
    static func install() {
        if !installed {
            // Globals are made on first use under a lock (swift_once): make them now, never
            // for the first time inside the handler (a signal arriving during their making
            // would wait on that lock forever).
            _ = slots; _ = capacity
            SignalCleanup.add {
                for i in 0..<PendingTemporaryFiles.capacity {
                    if let p = PendingTemporaryFiles.slots[i] { unlink(p) }
                }
            }
            installed = true
        }
    }

    static func add(_ path: String) {
        lock.withLock { _ in
            for i in 0..<capacity where slots[i] == nil {
                slots[i] = strdup(path)
                return
            }
        }
    }

    static func remove(_ path: String) {
        lock.withLock { _ in
            for i in 0..<capacity {
                if let p = slots[i], String(cString: p) == path {
                    slots[i] = nil
                    free(p)
                }
            }
        }
    }
}
