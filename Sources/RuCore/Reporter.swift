/// Where the library's notes and progress go. The library itself never writes to stderr:
/// the tools pass a reporter that does (RuCLI), apps pass one that logs, or `.silent`.
public struct Reporter: Sendable {
    /// A finished line, without a newline: "model deepvk/USER-base: /path (cache)", a warning.
    public var note: @Sendable (String) -> Void
    /// A progress line that replaces the one before it (no newline); nil when the task is done
    /// and the line should be ended. nil here: no progress lines are made.
    public var progress: (@Sendable (String?) -> Void)?

    /// A reporter that passes notes to `note` and, if given, progress lines to `progress`.
    public init(note: @escaping @Sendable (String) -> Void, progress: (@Sendable (String?) -> Void)? = nil) {
        self.note = note
        self.progress = progress
    }

    /// Drops everything.
    public static let silent = Reporter(note: { _ in })
}
