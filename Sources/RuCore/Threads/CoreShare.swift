#if canImport(Glibc)
import Glibc
#endif

/// How many threads this process may use when others of ours run beside it.
///
/// `xargs -P 4` starts four tools that each default to one OpenMP thread per core; libgomp's
/// threads spin between parallel regions, so 4 × 2 spinning threads on 2 cores ran four times
/// slower than one process. Instead the cores are shared out: every tool holds a slot in a
/// per-user registry while it runs, and before each batch counts the live slots and takes its
/// share (cores / processes, at least one). With one thread a process starts no OpenMP team,
/// so nothing spins. A process alone keeps all cores: one process runs as fast as before.
package enum CoreShare {
    /// Threads for the process of rank `rank` (0-based, in slot order) among `processes` live
    /// ones on `cores` cores: an equal share, the remainder going to the lowest ranks, and
    /// never less than one.
    package static func threads(cores: Int, processes: Int, rank: Int) -> Int {
        let cores = max(1, cores), processes = max(1, processes)
        if processes >= cores { return 1 }
        return cores / processes + (rank < cores % processes ? 1 : 0)
    }

    /// The thread count the user chose: `--threads` first, then OMP_NUM_THREADS (its first
    /// element, as libgomp reads it). nil: none, so the share is ours to choose.
    package static func explicitThreads(option: Int?, environment: [String: String]) -> Int? {
        if let option { return option }
        guard let value = environment["OMP_NUM_THREADS"] else { return nil }
        let first = value.split(separator: ",", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard let n = Int(first.filter { $0 != " " && $0 != "\t" }), n > 0 else { return nil }
        return min(n, maxThreads)
    }

    /// The most threads a tool takes (OpenMP takes the count as an Int32; a huge --threads or
    /// OMP_NUM_THREADS once trapped converting it).
    package static let maxThreads = 4096
}

/// The registry of running tools: a private directory of slot files, one held per process
/// with an exclusive `flock`. Liveness is the lock itself: the kernel releases it when the
/// process ends however it ends, so a dead process never keeps its share, and no file
/// content is ever trusted (there is none to parse). The directory must be ours and closed
/// to others (0700, owned by this user, not a link); a slot that is not a regular file of
/// ours (a planted link, FIFO or device) is skipped, never followed or opened blocking.
package final class CoreRegistry {
    /// Slots looked at: more live processes than this count as this many (each gets one thread anyway).
    package static let slotCount = 64

    private let directory: Int32
    /// Our slot's number and descriptor (holding the lock), or nil when every slot was taken.
    package private(set) var slot: Int?
    private var slotDescriptor: Int32 = -1

    /// Opens (creating when missing) the registry at `path` and takes a slot; nil when the
    /// directory cannot be made safe (then the process runs as if alone).
    package init?(path: String) {
        _ = mkdir(path, 0o700)
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == geteuid(),
              st.st_mode & 0o077 == 0 else {
            close(fd)
            return nil
        }
        directory = fd
        for index in 0..<CoreRegistry.slotCount {
            let slotFD = openSlot(index, create: true)
            guard slotFD >= 0 else { continue }
            if flock(slotFD, LOCK_EX | LOCK_NB) == 0 {
                slot = index
                slotDescriptor = slotFD
                break
            }
            close(slotFD)
        }
    }

    deinit {
        if slotDescriptor >= 0 { close(slotDescriptor) } // releases the lock
        close(directory)
    }

    /// The default place: `$XDG_RUNTIME_DIR/ru-embed` (per user, 0700, on tmpfs) when set,
    /// else `/dev/shm/ru-embed-<uid>`, else `/tmp/ru-embed-<uid>`.
    package static func defaultPath(environment: [String: String]) -> String {
        if let runtime = environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") {
            var st = stat()
            if stat(runtime, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == geteuid() {
                return runtime + "/ru-embed"
            }
        }
        var st = stat()
        let shm = stat("/dev/shm", &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        return (shm ? "/dev/shm" : "/tmp") + "/ru-embed-\(geteuid())"
    }

    /// A slot file opened without following links and without blocking (a FIFO would block
    /// an open for reading), and kept only when it is a regular file of ours.
    private func openSlot(_ index: Int, create: Bool) -> Int32 {
        let name = "slot-\(index)"
        let flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | (create ? O_CREAT : 0)
        let fd = openat(directory, name, flags, 0o600)
        guard fd >= 0 else { return -1 }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == geteuid() else {
            close(fd)
            return -1
        }
        return fd
    }

    /// Live processes (ours included) and our rank among them (slot order).
    package func census() -> (processes: Int, rank: Int) {
        var live = 0, rank = 0
        for index in 0..<CoreRegistry.slotCount where index != slot {
            let fd = openSlot(index, create: false)
            guard fd >= 0 else { continue }
            // A shared lock we can take means nobody holds the exclusive one: a free slot.
            if flock(fd, LOCK_SH | LOCK_NB) == 0 {
                flock(fd, LOCK_UN)
            } else if errno == EWOULDBLOCK {
                live += 1
                if let slot, index < slot { rank += 1 }
            }
            close(fd)
        }
        if slot == nil { rank = live } // unregistered: last in line
        return (live + 1, rank)
    }
}

/// A client of GNU make's jobserver (`make -jN` hands its recipes N job tokens in all; each
/// job holds one implicitly). Extra threads take extra tokens, read without blocking, and
/// every token taken goes back: when the share shrinks, at exit, and on SIGINT/SIGTERM/SIGHUP.
package final class Jobserver {
    /// Where MAKEFLAGS says the jobserver is.
    package enum Auth: Equatable {
        case fifo(String)
        case pipe(read: Int32, write: Int32)
    }

    /// The jobserver named by MAKEFLAGS (`--jobserver-auth=fifo:PATH`, `--jobserver-auth=R,W`
    /// or the older `--jobserver-fds=R,W`; the last one counts, as make reads it), nil if none.
    package static func auth(makeflags: String) -> Auth? {
        var found: Auth?
        for word in makeflags.split(separator: " ") {
            if word == "--" { break } // variable assignments follow
            var value: Substring
            if word.hasPrefix("--jobserver-auth=") {
                value = word.dropFirst("--jobserver-auth=".count)
            } else if word.hasPrefix("--jobserver-fds=") {
                value = word.dropFirst("--jobserver-fds=".count)
            } else { continue }
            if value.hasPrefix("fifo:") {
                value = value.dropFirst(5)
                found = value.isEmpty ? nil : .fifo(String(value))
                continue
            }
            let parts = value.split(separator: ",")
            if parts.count == 2, let r = Int32(parts[0]), let w = Int32(parts[1]), r >= 0, w >= 0 {
                found = .pipe(read: r, write: w)
            } else {
                found = nil
            }
        }
        return found
    }

    private let readFD: Int32
    private let writeFD: Int32
    private let ownsWrite: Bool
    /// Tokens held, as the bytes read (given back as they came).
    private let tokens: UnsafeMutablePointer<UInt8>
    private var held = 0
    package static let maxTokens = 1024

    /// Connects to `auth`; nil when it is not a usable jobserver (make closes the descriptors
    /// of recipes it does not know to be recursive, and a number may then be some other file
    /// of ours: only FIFOs/pipes above stderr, open for reading and writing, are taken).
    package init?(_ auth: Auth) {
        switch auth {
        case .fifo(let path):
            // Our own open file description, so O_NONBLOCK affects no one else.
            let fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
            guard fd >= 0 else { return nil }
            var st = stat()
            guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFIFO else { close(fd); return nil }
            readFD = fd; writeFD = fd; ownsWrite = true
        case .pipe(let r, let w):
            guard r > 2, w > 2, r != w, Jobserver.isPipe(r, access: O_RDONLY), Jobserver.isPipe(w, access: O_WRONLY) else { return nil }
            // Reopening the pipe through /proc gives a description of our own: setting
            // O_NONBLOCK on make's shared one would change it for make and every other job.
            let fd = open("/proc/self/fd/\(r)", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            readFD = fd; writeFD = w; ownsWrite = false
        }
        tokens = .allocate(capacity: Jobserver.maxTokens)
    }

    deinit {
        release(all: true)
        close(readFD)
        tokens.deallocate()
    }

    private static func isPipe(_ fd: Int32, access: Int32) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { return false }
        let mode = flags & O_ACCMODE
        guard mode == access || mode == O_RDWR else { return false }
        var st = stat()
        return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO
    }

    /// Tokens held now (besides the implicit one).
    package var count: Int { held }

    /// Takes or gives back tokens so that `wanted` are held, as far as free ones allow;
    /// returns how many are held.
    @discardableResult
    package func hold(_ wanted: Int) -> Int {
        let wanted = min(max(0, wanted), Jobserver.maxTokens)
        withSignalsBlocked {
            while held < wanted {
                var byte: UInt8 = 0
                let n = read(readFD, &byte, 1)
                if n == 1 {
                    tokens[held] = byte
                    held += 1
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    break // EAGAIN: none free now
                }
            }
            while held > wanted { giveBackOne() }
        }
        return held
    }

    /// Gives every token back (also called at exit and from signal handlers).
    package func release(all: Bool = true) {
        withSignalsBlocked { while held > 0 { giveBackOne() } }
    }

    private func giveBackOne() {
        var byte = tokens[held - 1]
        while write(writeFD, &byte, 1) < 0 && errno == EINTR {}
        held -= 1
    }

    /// Token counts change with the signals that return them blocked, so a handler never
    /// sees a half-made change (and never gives back a token twice).
    private func withSignalsBlocked(_ body: () -> Void) {
        var block = sigset_t(), old = sigset_t()
        sigemptyset(&block)
        for s in Jobserver.returningSignals { sigaddset(&block, s) }
        pthread_sigmask(SIG_BLOCK, &block, &old)
        body()
        pthread_sigmask(SIG_SETMASK, &old, nil)
    }

    static let returningSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    /// The process's jobserver, for the exit and signal hooks.
    nonisolated(unsafe) static var current: Jobserver?

    /// Makes `self` the process's jobserver: its tokens go back at exit and when SIGINT,
    /// SIGTERM or SIGHUP end the process (SignalCleanup: with the other clean-ups, then any
    /// handler installed before).
    func installExitHooks() {
        Jobserver.current = self
        atexit { Jobserver.current?.release() }
        // On a signal: the tokens go back, then the other clean-ups, then the signal kills us.
        SignalCleanup.add {
            if let server = Jobserver.current {
                while server.held > 0 {
                    var byte = server.tokens[server.held - 1]
                    _ = write(server.writeFD, &byte, 1)
                    server.held -= 1
                }
            }
        }
    }
}
