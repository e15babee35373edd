#if canImport(Glibc)
import Glibc
#endif

/// Process-wide behaviour every tool shares.
public enum ToolRuntime {
    /// The tool's name for messages, e.g. `ru-vec`.
    nonisolated(unsafe) public static var toolName = "ru-embed"

    /// Ignores SIGPIPE so a closed pipe shows up as EPIPE, which `ByteOutput` turns into a
    /// quiet exit 0 (`tool | head`).
    public static func start(_ name: String) {
        toolName = name
        signal(SIGPIPE, SIG_IGN)
    }

    /// Writes `name: message` as one line on stderr.
    public static func warn(_ message: String) {
        let line = "\(toolName): \(message)\n"
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { p in _ = write(2, p.baseAddress, p.count) }
    }

    /// Runs a tool's body: a `ToolError` becomes one line on stderr and its exit status.
    /// Other errors (ArgumentParser's validation errors) are rethrown for the parser to report.
    public static func run(_ body: () throws -> Void) throws {
        do {
            try body()
            try ByteOutput.standardOutput.flush()
        } catch let error as ToolError {
            try? ByteOutput.standardOutput.flush()
            warn(error.message)
            exit(error.status)
        }
    }

    /// Refuses to write binary data to a terminal, as zstd does, unless forced.
    public static func checkBinaryOutput(_ output: ByteOutput, force: Bool) throws {
        if output.isTerminal && !force {
            throw ToolError.usage("refusing to write a binary vector stream to a terminal (redirect it, pipe it, or use --force)")
        }
    }
}
