#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A buffered byte sink over a file descriptor, written with write(2).
///
/// A closed pipe (EPIPE) is a clean stop, not an error: `tool | head` must exit quietly
/// with status 0, so the process exits at once, which is what SIGPIPE would have done
/// without the noise. Every tool ignores SIGPIPE at start (see `ToolRuntime.start`); a write to a closed pipe
/// throws an error of kind `.brokenPipe`, which the tools end on quietly with status 0.
public final class ByteOutput {
    /// The name used in messages: the path, or `<stdout>`.
    public let name: String
    /// The file descriptor written to.
    public let fd: Int32
    private var buffer: [UInt8] = []
    private let capacity: Int
    private let ownsDescriptor: Bool

    /// Writes to `fd`, named `name` in messages, through a buffer of `capacity` bytes; closes
    /// `fd` at deinit when `ownsDescriptor` (after flushing what is buffered).
    public init(fd: Int32, name: String, capacity: Int = 1 << 16, ownsDescriptor: Bool = false) {
        self.fd = fd
        self.name = name
        self.capacity = capacity
        self.ownsDescriptor = ownsDescriptor
        buffer.reserveCapacity(capacity)
    }

    /// Standard output. Like every `ByteOutput` it serves one thread at a time: the tools
    /// write it from their main thread only (hence `nonisolated(unsafe)`).
    nonisolated(unsafe) public static let standardOutput = ByteOutput(fd: 1, name: "<stdout>")

    /// Whether the output is a terminal (the tools refuse to write binary streams to one).
    public var isTerminal: Bool { isatty(fd) == 1 }

    deinit {
        try? flush()
        if ownsDescriptor { close(fd) }
    }

    /// Buffers `bytes` (large writes go straight through). Throws `.brokenPipe` when the reader
    /// went away, `.io` for any other failure.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count > capacity {
            try flush()
            if bytes.count >= capacity {
                try writeAll(bytes)
                return
            }
        }
        buffer.append(contentsOf: bytes)
    }

    /// Buffers `bytes`.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Buffers the UTF-8 of `string`.
    public func write(_ string: String) throws {
        var string = string
        try string.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Writes out what is buffered.
    public func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = Glibc.write(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EPIPE { throw RuEmbedError("\(name): the reader went away", kind: .brokenPipe) }
                throw RuEmbedError.io("\(name): write failed: \(errnoDescription())")
            }
            p += n
            left -= n
        }
    }
}
