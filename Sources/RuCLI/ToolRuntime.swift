import RuCore
#if canImport(Glibc)
import Glibc
#endif

/// Exit statuses, as every tool uses them: sysexits' 64 for a usage error, 2 for bad data
/// or a failed read or write (as grep and zstd use 2 for trouble).
package enum ExitStatus {
    package static let success: Int32 = 0
    package static let dataError: Int32 = 2
    package static let usage: Int32 = 64

    /// The status for a library error.
    package static func of(_ error: RuEmbedError) -> Int32 {
        switch error.kind {
        case .invalidArgument: usage
        case .brokenPipe: success
        case .invalidData, .io: dataError
        }
    }
}

/// Process-wide behaviour every tool shares: messages on stderr, exit statuses.
package enum ToolRuntime {
    /// The tool's name for messages, e.g. `ru-vec`.
    nonisolated(unsafe) package static var toolName = "ru-embed"

    /// Ignores SIGPIPE so a closed pipe shows up as EPIPE, which the library reports as an
    /// error of kind `.brokenPipe` and `run` turns into a quiet exit 0 (`tool | head`).
    package static func start(_ name: String) {
        toolName = name
        signal(SIGPIPE, SIG_IGN)
        OutputFile.removeTemporaryFilesOnSignals()
    }

    /// Writes `name: message` as one line on stderr.
    package static func warn(_ message: String) {
        warnRaw("\(toolName): \(message)\n")
    }

    /// Writes text to stderr as it is (progress lines that redraw themselves).
    package static func warnRaw(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { p in _ = write(2, p.baseAddress, p.count) }
    }

    /// A status line on stderr when stderr is a terminal (`ru-tool: text`), redrawn in place
    /// at most every 0.2 s; nothing otherwise, so logs and pipes see only real messages.
    package final class TerminalProgress {
        package let enabled: Bool
        private var last = -Double.infinity
        private var shown = false

        /// `enabled` defaults to whether stderr is a terminal.
        package init(enabled: Bool = isatty(2) == 1) { self.enabled = enabled }

        /// Redraws the line with `text` unless it was drawn less than 0.2 s ago (`force`: now).
        package func show(_ text: @autoclosure () -> String, force: Bool = false) {
            guard enabled else { return }
            let now = monotonicSeconds()
            if !force && now - last < 0.2 { return }
            last = now
            shown = true
            ToolRuntime.warnRaw("\r\u{1B}[K\(ToolRuntime.toolName): \(text())")
        }

        /// Ends the line: kept (a newline after it) or cleared.
        package func finish(keep: Bool = false) {
            guard enabled, shown else { return }
            ToolRuntime.warnRaw(keep ? "\n" : "\r\u{1B}[K")
            shown = false
        }
    }

    /// Notes and progress of the library (downloads, where a model was found) on stderr.
    package static var reporter: Reporter {
        Reporter(note: { ToolRuntime.warn($0) },
                 progress: { line in
                     if let line { ToolRuntime.warnRaw("\r\u{1B}[K\(ToolRuntime.toolName): \(line)") } else { ToolRuntime.warnRaw("\n") }
                 })
    }

    /// Runs a tool's body: a library error becomes one line on stderr and its exit status
    /// (a closed output pipe: nothing, status 0). Other errors (ArgumentParser's validation
    /// errors) are rethrown for the parser to report.
    package static func run(_ body: () throws -> Void) throws {
        do {
            try body()
            try ByteOutput.standardOutput.flush()
        } catch let error as RuEmbedError {
            if error.kind == .brokenPipe { exit(ExitStatus.success) }
            do { try ByteOutput.standardOutput.flush() } catch let e as RuEmbedError where e.kind == .brokenPipe {
                exit(ExitStatus.success)
            } catch {}
            warn(error.message)
            exit(ExitStatus.of(error))
        }
    }

    /// Refuses to write binary data to a terminal, as zstd does, unless forced.
    package static func checkBinaryOutput(_ output: ByteOutput, force: Bool) throws {
        if output.isTerminal && !force {
            throw RuEmbedError.invalidArgument("refusing to write a binary vector stream to a terminal (redirect it, pipe it, or use --force)")
        }
    }
}

/// Seconds on the monotonic clock (durations in the tools' summaries).
package func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
