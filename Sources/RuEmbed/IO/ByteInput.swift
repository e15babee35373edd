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
        if fd < 0 { throw ToolError("\(path): \(errnoDescription())") }
        var info = stat()
        if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw ToolError("\(path): is a directory")
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
            throw ToolError("\(name): read failed: \(errnoDescription())")
        }
    }

    /// True when the input is a regular file, which can be opened again and read twice.
    public var isRegularFile: Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }
}

func errnoDescription(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}
