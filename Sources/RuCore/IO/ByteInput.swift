#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An unbuffered byte source over a file descriptor: a file, or standard input for `-`.
///
/// Readers above it keep their own buffers; this only retries interrupted reads and turns
/// failures into one-line errors that name the file.
public final class ByteInput {
    /// The name used in messages: the path, or `<stdin>`.
    public let name: String
    public let fd: Int32
    private let ownsDescriptor: Bool

    public init(fd: Int32, name: String, ownsDescriptor: Bool) {
        self.fd = fd
        self.name = name
        self.ownsDescriptor = ownsDescriptor
    }

    /// Opens `path`; `-` is standard input.
    public static func open(_ path: String) throws -> ByteInput {
        if path == "-" { return ByteInput(fd: 0, name: "<stdin>", ownsDescriptor: false) }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw RuEmbedError.io("\(path): \(errnoDescription())") }
        var info = stat()
        if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw RuEmbedError("\(path): is a directory")
        }
        return ByteInput(fd: fd, name: path, ownsDescriptor: true)
    }

    deinit {
        if ownsDescriptor { close(fd) }
    }

    /// Called before a read that would wait for a pipe or terminal, so a filter can flush
    /// what it has produced so far: records then flow through a pipeline as they come,
    /// instead of waiting for a full buffer.
    public var beforeWaiting: (() throws -> Void)?
    private lazy var canWait: Bool = !isRegularFile

    /// True when the input is a pipe or terminal with nothing to read right now.
    public func wouldWait() -> Bool {
        guard canWait else { return false }
        var request = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&request, 1, 0) == 0
    }

    /// Reads up to `buffer.count` bytes; 0 means end of input.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        if let beforeWaiting, wouldWait() { try beforeWaiting() }
        while true {
            let n = Glibc.read(fd, base, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw RuEmbedError.io("\(name): read failed: \(errnoDescription())")
        }
    }

    /// Reads `count` bytes, fewer only when the input ends first: the first bytes of an input,
    /// to decide what it is (8 bytes: `ChunkFormat.sniffBytes` of RuVectors).
    public func readHead(_ count: Int = 8) throws -> [UInt8] {
        var head = [UInt8](repeating: 0, count: count)
        var n = 0
        while n < count {
            let got = try head.withUnsafeMutableBytes { try read(into: UnsafeMutableRawBufferPointer(rebasing: $0[n...])) }
            if got == 0 { break }
            n += got
        }
        head.removeLast(count - n)
        return head
    }

    /// True when the input is a regular file, which can be opened again and read twice.
    public var isRegularFile: Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }
}

extension ByteInput {
    /// This input from its first byte again, after `head` was read from it to sniff it: a
    /// regular file is opened again; a pipe or terminal becomes a pipe fed by a thread with
    /// `head` and then the rest, so a stream reader sees one unbroken input (and its name)
    /// without standard input being stored anywhere.
    public func restoringHead(_ head: [UInt8]) throws -> ByteInput {
        if isRegularFile && name != "<stdin>" { return try ByteInput.open(name) }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw RuEmbedError.io("cannot create a pipe: \(errnoDescription())") }
        let job = HeadCopy(head: head, source: fd, destination: fds[1], keepAlive: self)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(job).toOpaque()
        pthread_create(&thread, nil, { raw in
            let job = Unmanaged<HeadCopy>.fromOpaque(raw!).takeRetainedValue()
            job.run()
            return nil
        }, context)
        pthread_detach(thread)
        return ByteInput(fd: fds[0], name: name, ownsDescriptor: true)
    }

    private final class HeadCopy {
        let head: [UInt8], source: Int32, destination: Int32
        /// The input whose descriptor is read: kept open while the copy runs.
        let keepAlive: ByteInput
        init(head: [UInt8], source: Int32, destination: Int32, keepAlive: ByteInput) {
            self.head = head; self.source = source; self.destination = destination; self.keepAlive = keepAlive
        }
        func run() {
            defer { close(destination) }
            guard writeAll(head[...]) else { return }
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(source, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                guard writeAll(buffer[0..<n]) else { return }
            }
        }
        func writeAll(_ bytes: ArraySlice<UInt8>) -> Bool {
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes { write(destination, $0.baseAddress! + done, $0.count - done) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                done += n
            }
            return true
        }
    }
}

func errnoDescription(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

extension ByteInput {
    /// The whole of a file ('-': standard input).
    public static func readFile(_ path: String) throws -> [UInt8] {
        let input = try ByteInput.open(path)
        var out: [UInt8] = []
        // A regular file's size is known: one allocation instead of doublings and copies.
        var st = stat()
        if path != "-", stat(path, &st) == 0, st.st_size > 0 { out.reserveCapacity(Int(st.st_size) + 1) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try input.read(into: $0) }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

}

extension JSONValue {
    /// Reads and parses a JSON file (an error naming it when it is not JSON).
    public static func read(_ path: String) throws -> JSONValue {
        let bytes = try ByteInput.readFile(path)
        do { return try bytes.withUnsafeBytes { try JSONValue.parse($0) } } catch {
            throw RuEmbedError("\(path): not valid JSON: \(error)")
        }
    }
}
