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
    /// The file descriptor read from.
    public let fd: Int32
    private let ownsDescriptor: Bool

    /// Reads `fd`, named `name` in messages; closes it at deinit when `ownsDescriptor`.
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
    package var beforeWaiting: (() throws -> Void)?
    private lazy var canWait: Bool = !isRegularFile

    /// True when the input is a pipe or terminal with nothing to read right now.
    package func wouldWait() -> Bool {
        guard canWait else { return false }
        var request = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&request, 1, 0) == 0
    }

    /// Bytes put back by `unread`, served before the descriptor's.
    private var pushedBack: [UInt8] = []
    private var pushedBackStart = 0

    /// Puts bytes back in front of the input: the next reads return them first. The one way
    /// the tools put back the bytes they read to tell a stream from text.
    package func unread(_ bytes: [UInt8]) {
        pushedBack = bytes + pushedBack[pushedBackStart...]
        pushedBackStart = 0
    }

    /// Reads up to `buffer.count` bytes; 0 means end of input.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        if pushedBackStart < pushedBack.count {
            let n = min(buffer.count, pushedBack.count - pushedBackStart)
            pushedBack.withUnsafeBytes { base.copyMemory(from: $0.baseAddress! + pushedBackStart, byteCount: n) }
            pushedBackStart += n
            if pushedBackStart == pushedBack.count { pushedBack = []; pushedBackStart = 0 }
            return n
        }
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
    package func readHead(_ count: Int = 8) throws -> [UInt8] {
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
    package var isRegularFile: Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }
}

extension ByteInput {
    /// This input from its first byte again, after `head` was read from it to sniff it: a
    /// regular file is opened again (readers that read a corpus twice need a file); a pipe or
    /// terminal gets `head` back in front of what it has not read yet (`unread`), so a reader
    /// sees one unbroken input, and nothing is stored anywhere.
    package func restoringHead(_ head: [UInt8]) throws -> ByteInput {
        if isRegularFile && name != "<stdin>" { return try ByteInput.open(name) }
        unread(head)
        return self
    }
}

func errnoDescription(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

extension ByteInput {
    /// The whole of a file ('-': standard input).
    package static func readFile(_ path: String) throws -> [UInt8] {
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
    package static func read(_ path: String) throws -> JSONValue {
        let bytes = try ByteInput.readFile(path)
        do { return try bytes.withUnsafeBytes { try JSONValue.parse($0) } } catch {
            throw RuEmbedError("\(path): not valid JSON: \(error)")
        }
    }
}
