/// Errors every tool reports the same way: one line on stderr, a meaningful exit status.
///
/// Exit statuses follow sysexits where one fits: 64 for a usage error, 2 for bad data
/// or a failed read or write (as grep and zstd use 2 for trouble).
public enum ExitStatus {
    public static let success: Int32 = 0
    public static let dataError: Int32 = 2
    public static let usage: Int32 = 64
}

/// A failure with a message that already names its place (file, frame, record, line).
public struct ToolError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var status: Int32

    public init(_ message: String, status: Int32 = ExitStatus.dataError) {
        self.message = message
        self.status = status
    }

    public static func usage(_ message: String) -> ToolError {
        ToolError(message, status: ExitStatus.usage)
    }

    public var description: String { message }
}

/// Where in a stream a problem was found; rendered as `file: frame N: record M: `.
public struct StreamPosition: Sendable, CustomStringConvertible {
    public var file: String
    public var frame: Int?      // 1-based
    public var record: Int?     // 1-based, counted over the whole stream

    public init(file: String, frame: Int? = nil, record: Int? = nil) {
        self.file = file
        self.frame = frame
        self.record = record
    }

    public var description: String {
        var parts = [file]
        if let frame { parts.append("frame \(frame)") }
        if let record { parts.append("record \(record)") }
        return parts.joined(separator: ": ")
    }

    public func error(_ message: String) -> ToolError {
        ToolError("\(self): \(message)")
    }
}
