/// The library's version, which the tools print for `--version`.
public enum RuEmbedVersion {
    /// The semantic version, e.g. "0.2.0"; the package's git tags carry the same.
    public static let string = "0.2.0"
}
