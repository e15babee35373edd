#if canImport(Glibc)
import Glibc
#endif

/// The Hugging Face hub cache, laid out exactly as `huggingface_hub` lays it out:
///
///     <cache>/CACHEDIR.TAG
///     <cache>/.locks/models--org--name/<etag>.lock
///     <cache>/models--org--name/blobs/<etag>                 file contents, named by ETag
///     <cache>/models--org--name/snapshots/<commit>/<path>    relative symlinks to ../../blobs/<etag>
///     <cache>/models--org--name/refs/<revision>              the commit a branch or tag was at
///
/// A blob's name is the file's ETag: the git blob sha1 for small files, the sha256 of the content
/// for LFS files (safetensors).
public struct HubCache: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    public func storage(_ id: HubModelID) -> String { root + "/" + id.folderName }
    public func blob(_ id: HubModelID, etag: String) -> String { storage(id) + "/blobs/" + etag }
    public func snapshot(_ id: HubModelID, commit: String) -> String { storage(id) + "/snapshots/" + commit }
    public func ref(_ id: HubModelID, revision: String) -> String { storage(id) + "/refs/" + revision }
    public func lock(_ id: HubModelID, etag: String) -> String { root + "/.locks/" + id.folderName + "/" + etag + ".lock" }

    /// The commit `id.revision` names in the cache: itself when it is a commit hash, else the
    /// content of refs/<revision>.
    public func cachedCommit(_ id: HubModelID) -> String? {
        if HubModelID.isCommitHash(id.revision) { return id.revision }
        guard let text = try? readSmallFile(ref(id, revision: id.revision)) else { return nil }
        let commit = trimWhitespace(text)
        return HubModelID.isCommitHash(commit) ? commit : nil
    }

    /// The snapshot folder of `id` when the cache holds a complete model there.
    public func completeSnapshot(_ id: HubModelID) -> String? {
        guard let commit = cachedCommit(id) else { return nil }
        let folder = snapshot(id, commit: commit)
        return ModelFiles.missing(in: folder).isEmpty ? folder : nil
    }

    /// Writes refs/<revision> = commit (atomically: temporary file, then rename), unless the
    /// revision is the commit itself or the ref already says so.
    public func writeRef(_ id: HubModelID, commit: String) throws {
        guard id.revision != commit else { return }
        let path = ref(id, revision: id.revision)
        if let text = try? readSmallFile(path), text == commit { return }
        try FileSystem.makeDirectories(FileSystem.parent(path))
        let temporary = path + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        try FileSystem.writeFile(temporary, Array(commit.utf8))
        guard rename(temporary, path) == 0 else {
            let e = errno
            unlink(temporary)
            throw FileSystem.error(path, e)
        }
    }

    /// Points snapshots/<commit>/<path> at blobs/<etag> with a relative symlink
    /// (`../../blobs/<etag>`, one more `../` per folder level of `path`).
    public func link(_ id: HubModelID, commit: String, path: String, etag: String) throws {
        let pointer = snapshot(id, commit: commit) + "/" + path
        let depth = path.split(separator: "/").count - 1
        let target = String(repeating: "../", count: depth + 2) + "blobs/" + etag
        try FileSystem.makeDirectories(FileSystem.parent(pointer))
        unlink(pointer)
        if symlink(target, pointer) != 0 {
            let e = errno
            // Another process linked it between our unlink and symlink: fine if it is the same.
            if e == EEXIST, FileSystem.readLink(pointer) == target { return }
            throw FileSystem.error(pointer, e)
        }
    }

    /// The tag that tells backup tools to skip the cache (huggingface_hub writes the same bytes).
    public func writeCacheDirTag() {
        let path = root + "/CACHEDIR.TAG"
        if access(path, F_OK) == 0 { return }
        let text = "Signature: 8a477f597d28d172789f06886806bc55\n"
            + "# This file is a cache directory tag created by huggingface_hub.\n"
            + "# For information about cache directory tags, see:\n"
            + "#\thttps://bford.info/cachedir/\n"
        try? FileSystem.writeFile(path, Array(text.utf8))
    }
}

/// Which files of a hub repo a model needs, and whether a folder has them.
public enum ModelFiles {
    /// Top-level files a model folder may use: config, tokenizer, sentence-transformers metadata.
    static let topLevel: Set<String> = [
        "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "sentencepiece.bpe.model",
        "spiece.model", "tokenizer.model", "modules.json", "sentence_bert_config.json",
        "config_sentence_transformers.json", "model.safetensors.index.json",
    ]

    /// The files of `siblings` (the repo's file list) to download: the ones above, top-level
    /// `*.safetensors`, and the JSON, text and safetensors files of sentence-transformers module
    /// folders (`1_Pooling/config.json`, `2_Dense/...`). Model cards, other weight formats
    /// (pytorch_model.bin, onnx/, openvino/) and everything else are left out.
    public static func select(_ siblings: [String]) -> [String] {
        siblings.filter { path in
            let parts = path.split(separator: "/", omittingEmptySubsequences: false)
            if parts.count == 1 { return topLevel.contains(path) || path.hasSuffix(".safetensors") }
            if parts.count == 2, isModuleFolder(parts[0]) {
                return [".json", ".txt", ".safetensors"].contains { parts[1].hasSuffix($0) }
            }
            return false
        }.sorted()
    }

    /// `1_Pooling`, `2_Normalize`, `2_Dense`: a number, an underscore, a name.
    static func isModuleFolder(_ s: Substring) -> Bool {
        guard let underscore = s.firstIndex(of: "_"), underscore != s.startIndex else { return false }
        return s[..<underscore].allSatisfy(\.isASCII) && s[..<underscore].allSatisfy(\.isNumber)
            && s.index(after: underscore) != s.endIndex
    }

    /// What `folder` lacks to be a usable model: config.json, tokenizer.json, the weights
    /// (model.safetensors, or every shard of model.safetensors.index.json) and the config of each
    /// Pooling or Dense module of modules.json. Empty when complete.
    public static func missing(in folder: String) -> [String] {
        var missing: [String] = []
        func exists(_ rel: String) -> Bool { access(folder + "/" + rel, R_OK) == 0 }
        guard FileSystem.isDirectory(folder) else { return ["the folder \(folder)"] }
        for name in ["config.json", "tokenizer.json"] where !exists(name) { missing.append(name) }
        if exists("model.safetensors.index.json") {
            let index = try? readSmallFile(folder + "/model.safetensors.index.json")
            if case .object(let map)? = (try? index.map { try JSONValue.parse($0) })??["weight_map"] {
                let shards = Set(map.compactMap { $0.value.stringValue })
                missing += shards.sorted().filter { !exists($0) }
            } else {
                missing.append("model.safetensors.index.json (unreadable)")
            }
        } else if !exists("model.safetensors") {
            missing.append("model.safetensors")
        }
        if exists("modules.json"), let text = try? readSmallFile(folder + "/modules.json"),
           let modules = (try? JSONValue.parse(text))?.arrayValue {
            for module in modules {
                guard let path = module["path"]?.stringValue, !path.isEmpty,
                      let type = module["type"]?.stringValue,
                      type.hasSuffix("Pooling") || type.hasSuffix("Dense") else { continue }
                if !exists(path + "/config.json") { missing.append(path + "/config.json") }
            }
        }
        return missing
    }
}

/// Small POSIX helpers with errors that name the path.
enum FileSystem {
    static func error(_ path: String, _ code: Int32) -> ToolError {
        if code == ENOSPC || code == EDQUOT {
            return ToolError("\(path): disk full (\(String(cString: strerror(code)))): free some space or move the cache (HF_HUB_CACHE)")
        }
        return ToolError("\(path): \(String(cString: strerror(code)))")
    }

    static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    static func fileSize(_ path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(info.st_size)
    }

    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// mkdir -p.
    static func makeDirectories(_ path: String) throws {
        if isDirectory(path) { return }
        let parentPath = parent(path)
        if parentPath != path { try makeDirectories(parentPath) }
        if mkdir(path, 0o777) != 0 && errno != EEXIST { throw error(path, errno) }
    }

    static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw error(path, errno) }
        defer { close(fd) }
        try writeAll(fd, bytes, path: path)
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        try bytes.withUnsafeBytes { try writeAll(fd, $0, path: path) }
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw error(path, errno)
            }
            offset += n
        }
    }

    /// Bytes free to an unprivileged user on the file system holding `path`.
    static func freeSpace(_ path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }
}
