import RuCore
#if canImport(Glibc)
import Glibc
#endif

/// What the environment says about the Hugging Face Hub, read the way `huggingface_hub` reads it
/// so that Python and our tools share one cache, one token and one offline switch.
public struct HubSettings: Sendable {
    /// The hub cache: HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE (legacy), else $HF_HOME/hub,
    /// else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
    public var cacheDirectory: String
    /// HF_ENDPOINT, default https://huggingface.co (no trailing slash).
    public var endpoint: String
    /// HF_TOKEN (or the legacy HUGGING_FACE_HUB_TOKEN), else the file HF_TOKEN_PATH, else $HF_HOME/token.
    public var token: String?
    /// Where the token came from, for messages.
    public var tokenSource: String?
    /// HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set to 1/true/yes/on.
    public var offline: Bool

    /// Settings given by the caller; nothing is read from the environment.
    public init(cacheDirectory: String, endpoint: String = "https://huggingface.co", token: String? = nil,
                tokenSource: String? = nil, offline: Bool = false) {
        self.cacheDirectory = cacheDirectory
        self.endpoint = endpoint
        self.token = token
        self.tokenSource = tokenSource
        self.offline = offline
    }

    /// The settings Python's `huggingface_hub` would use: `HF_HUB_CACHE`, `HF_HOME`, `HF_ENDPOINT`,
    /// `HF_TOKEN`, `HF_TOKEN_PATH` and `HF_HUB_OFFLINE` (and their legacy names), the cache falling
    /// back to `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
    public static func fromEnvironment() -> HubSettings {
        let home = expandUser(environment("HF_HOME")
            ?? ((environment("XDG_CACHE_HOME").map(expandUser) ?? expandUser("~/.cache")) + "/huggingface"))
        let cache = environment("HF_HUB_CACHE").map(expandUser)
            ?? environment("HUGGINGFACE_HUB_CACHE").map(expandUser)
            ?? home + "/hub"
        var endpoint = environment("HF_ENDPOINT") ?? "https://huggingface.co"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        var token: String? = nil, source: String? = nil
        if let t = environment("HF_TOKEN") {
            token = t; source = "HF_TOKEN"
        } else if let t = environment("HUGGING_FACE_HUB_TOKEN") {
            token = t; source = "HUGGING_FACE_HUB_TOKEN"
        } else {
            let path = environment("HF_TOKEN_PATH").map(expandUser) ?? home + "/token"
            if let text = try? readSmallFile(path) {
                let t = trimWhitespace(text)
                if !t.isEmpty { token = t; source = path }
            }
        }
        let offline = isTrue(environment("HF_HUB_OFFLINE") ?? environment("TRANSFORMERS_OFFLINE"))
        return HubSettings(cacheDirectory: cache, endpoint: endpoint, token: token, tokenSource: source, offline: offline)
    }

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name), let s = String(validatingCString: value), !s.isEmpty else { return nil }
        return s
    }

    /// huggingface_hub's `_is_true`: 1, ON, YES, TRUE in any case.
    static func isTrue(_ value: String?) -> Bool {
        guard let value else { return false }
        return ["1", "ON", "YES", "TRUE"].contains(value.uppercased())
    }

    static func expandUser(_ path: String) -> String {
        guard path == "~" || path.hasPrefix("~/") else { return path }
        let home = environment("HOME") ?? {
            if let pw = getpwuid(getuid()), let dir = pw.pointee.pw_dir { return String(cString: dir) }
            return "/"
        }()
        return home + path.dropFirst()
    }
}

/// A model on the hub: `org/name` and a revision (branch, tag or commit).
public struct HubModelID: Sendable, Equatable, CustomStringConvertible {
    /// The repository, `org/name`.
    public var repo: String
    /// A branch, tag or commit hash; "main" when none was given.
    public var revision: String

    /// Parses `org/name[@revision]`; nil when `spec` does not look like a hub id.
    public init?(_ spec: String) {
        var repo = Substring(spec), revision = "main"
        if let at = spec.firstIndex(of: "@") {
            repo = spec[..<at]
            revision = String(spec[spec.index(after: at)...])
            if revision.isEmpty { return nil }
        }
        let parts = repo.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy(HubModelID.isNamePart) else { return nil }
        self.repo = String(repo)
        self.revision = revision
    }

    /// The hub's rule for names: letters, digits, `-`, `_`, `.`; no leading or trailing `-`/`.`,
    /// no `--` or `..`; at most 96 characters.
    static func isNamePart(_ s: Substring) -> Bool {
        guard !s.isEmpty, s.count <= 96, !s.contains("--"), !s.contains("..") else { return false }
        guard let first = s.first, let last = s.last, !"-.".contains(first), !"-.".contains(last) else { return false }
        return s.unicodeScalars.allSatisfy { c in
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "-" || c == "_" || c == "."
        }
    }

    /// `models--org--name`, the repo's folder in the cache.
    package var folderName: String { "models--" + repo.replacingOccurrences(of: "/", with: "--") }

    /// True for a full 40-digit commit hash.
    package static func isCommitHash(_ s: String) -> Bool {
        s.utf8.count == 40 && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    public var description: String { revision == "main" ? repo : "\(repo)@\(revision)" }
}

/// Reads a whole (small) file as UTF-8: refs, the token file, a snapshot's JSON. Anything in the
/// cache may have been put there by someone else, so only a regular file is read (O_NONBLOCK:
/// a FIFO planted at refs/main does not hang the tool; fstat then refuses it) and only up to
/// `limit` bytes (a link to /dev/zero or a huge file is an error, not unbounded memory).
func readSmallFile(_ path: String, limit: Int = 16 << 20) throws -> String {
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { throw RuEmbedError.io("\(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw RuEmbedError("\(path): not a regular file") }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { if errno == EINTR { continue }; throw RuEmbedError.io("\(path): \(String(cString: strerror(errno)))") }
        if n == 0 { break }
        guard bytes.count + n <= limit else { throw RuEmbedError("\(path): larger than \(limit) bytes") }
        bytes.append(contentsOf: buffer[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// The text without leading and trailing spaces, tabs and line ends.
func trimWhitespace(_ text: String) -> String {
    var s = Substring(text)
    while let c = s.first, c.isWhitespace { s.removeFirst() }
    while let c = s.last, c.isWhitespace { s.removeLast() }
    return String(s)
}
