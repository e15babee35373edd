/// What every function of the library throws: what kind of thing went wrong, and a message
/// that already names its place (file, frame, record, line), e.g.
/// `docs.vec: frame 3: record 120: 768 values, the stream's vectors have 1024`.
///
/// The library never prints or exits; the tools (RuCLI) turn an error into one line on stderr
/// and an exit status chosen by its kind.
public struct RuEmbedError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong; the tools choose their exit status by it.
    public enum Kind: Sendable, Equatable {
        /// Malformed or refused data: a model folder, tokenizer.json, stream, record or cache entry.
        case invalidData
        /// The caller asked for something that cannot be: an unknown prompt name, a dimension
        /// beyond the model's, options that exclude each other (the tools' usage errors).
        case invalidArgument
        /// An operating-system call failed: open, read, write, rename (the message has errno's text).
        case io
        /// The reader of an output pipe went away (EPIPE): the tools end quietly, as `tool | head` wants.
        case brokenPipe
    }

    /// What went wrong.
    public var kind: Kind
    /// One line that names the place (file, frame, record, line, JSON key) and the problem.
    public var message: String

    /// An error of `kind` (bad data by default) with a message that names its place.
    public init(_ message: String, kind: Kind = .invalidData) {
        self.message = message
        self.kind = kind
    }

    /// A request that cannot be met: an unknown name, a value out of range, options that exclude each other.
    public static func invalidArgument(_ message: String) -> RuEmbedError {
        RuEmbedError(message, kind: .invalidArgument)
    }

    /// A failed system call; the message should carry the path and errno's text.
    public static func io(_ message: String) -> RuEmbedError {
        RuEmbedError(message, kind: .io)
    }

    public var description: String { message }
}

/// Where in a stream a problem was found; rendered as `file: frame N: record M: `.
package struct StreamPosition: Sendable, CustomStringConvertible {
    package var file: String
    package var frame: Int?      // 1-based
    package var record: Int?     // 1-based, counted over the whole stream

    package init(file: String, frame: Int? = nil, record: Int? = nil) {
        self.file = file
        self.frame = frame
        self.record = record
    }

    package var description: String {
        var parts = [file]
        if let frame { parts.append("frame \(frame)") }
        if let record { parts.append("record \(record)") }
        return parts.joined(separator: ": ")
    }

    package func error(_ message: String) -> RuEmbedError {
        RuEmbedError("\(self): \(message)")
    }
}
