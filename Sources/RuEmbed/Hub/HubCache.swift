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
        try SafeFile.replace(path, with: Array(commit.utf8))
    }

    /// Points snapshots/<commit>/<path> at blobs/<etag> with a relative symlink
    /// (`../../blobs/<etag>`, one more `../` per folder level of `path`).
    /// symlink(2) never follows what is at `pointer`; the folders above it are checked to be real
    /// folders, so a link planted at snapshots/<commit> cannot send the new link elsewhere.
    public func link(_ id: HubModelID, commit: String, path: String, etag: String) throws {
        let pointer = snapshot(id, commit: commit) + "/" + path
        let depth = path.split(separator: "/").count - 1
        let target = String(repeating: "../", count: depth + 2) + "blobs/" + etag
        try FileSystem.makeDirectories(FileSystem.parent(pointer))
        try FileSystem.requireFolders(from: storage(id), to: FileSystem.parent(pointer))
        unlink(pointer)
        if symlink(target, pointer) != 0 {
            let e = errno
            // Another process linked it between our unlink and symlink: fine if it is the same.
            if e == EEXIST, FileSystem.readLink(pointer) == target { return }
            throw FileSystem.error(pointer, e)
        }
    }

    /// The tag that tells backup tools to skip the cache (huggingface_hub writes the same bytes).
    /// Created O_EXCL | O_NOFOLLOW: whatever already has the name (a tag, or a link planted
    /// there) is left alone and never written through.
    public func writeCacheDirTag() {
        let path = root + "/CACHEDIR.TAG"
        var info = stat()
        if lstat(path, &info) == 0 { return }
        let text = "Signature: 8a477f597d28d172789f06886806bc55\n"
            + "# This file is a cache directory tag created by huggingface_hub.\n"
            + "# For information about cache directory tags, see:\n"
            + "#\thttps://bford.info/cachedir/\n"
        guard let fd = try? SafeFile.createNew(path, mode: 0o666) else { return }
        try? FileSystem.writeAll(fd, Array(text.utf8), path: path)
        close(fd)
    }

    /// Checks what a snapshot folder holds before a model is read from it. huggingface_hub makes
    /// each file a relative link `../../blobs/<etag>` (one more `../` per folder level), and each
    /// blob a regular file; it also writes plain files where links are not possible. Anything
    /// else — a link leading elsewhere (outside the cache, to a device, to another link) — was
    /// not made by a download and is refused, so the tools never read through it.
    public func checkSnapshot(_ id: HubModelID, folder: String) throws {
        func visit(_ dir: String, depth: Int) throws {
            guard let names = FileSystem.listFolder(dir) else { throw FileSystem.error(dir, errno) }
            for name in names {
                let path = dir + "/" + name
                var info = stat()
                guard lstat(path, &info) == 0 else { throw FileSystem.error(path, errno) }
                switch info.st_mode & S_IFMT {
                case S_IFDIR:
                    guard depth < 8 else { throw refused(path, "folders nested too deep") }
                    try visit(path, depth: depth + 1)
                case S_IFREG:
                    continue
                case S_IFLNK:
                    let target = FileSystem.readLink(path) ?? ""
                    let prefix = String(repeating: "../", count: depth + 2) + "blobs/"
                    let blobName = target.hasPrefix(prefix) ? String(target.dropFirst(prefix.utf8.count)) : ""
                    guard !blobName.isEmpty, !blobName.contains("/"), blobName != ".", blobName != ".." else {
                        throw refused(path, "a link to \(target), not to the model's blobs/")
                    }
                    var blobInfo = stat()
                    let blobPath = storage(id) + "/blobs/" + blobName
                    if lstat(blobPath, &blobInfo) == 0 && (blobInfo.st_mode & S_IFMT) != S_IFREG {
                        throw refused(blobPath, "not a regular file")
                    }
                default:
                    throw refused(path, "neither a file, a folder nor a link to a blob")
                }
            }
        }
        try FileSystem.requireFolders(from: storage(id), to: folder)
        try visit(folder, depth: 0)
    }

    private func refused(_ path: String, _ why: String) -> ToolError {
        ToolError("\(path): \(why): the Hugging Face cache holds something a download did not make; remove it and run again")
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

    /// Checks that every folder from `root` (excluded: the cache itself may be a link the user
    /// made) down to `path` is a real folder, not a link planted to lead elsewhere.
    static func requireFolders(from root: String, to path: String) throws {
        guard path.hasPrefix(root + "/") else { return }
        var current = root
        for part in path.dropFirst(root.utf8.count + 1).split(separator: "/") {
            current += "/" + part
            var info = stat()
            guard lstat(current, &info) == 0 else { throw error(current, errno) }
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw ToolError("\(current): not a folder (a link or a file put there by something else than a download): remove it and run again")
            }
        }
    }

    /// The names in a folder, without `.` and `..`; nil when it cannot be read.
    static func listFolder(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// True when `path` is a regular file (not following a link). Anything else at the name is
    /// removed (a folder is not: unlink fails on it and the caller's next step reports it).
    static func removeUnlessRegularFile(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0 else { return false }
        if (info.st_mode & S_IFMT) == S_IFREG { return true }
        unlink(path)
        return false
    }

    /// Opens a download's `.incomplete` file to append to it (read-write: a resumed prefix is
    /// hashed through the same descriptor). What an interrupted run left is resumed only when it
    /// is a regular file of this user with a single link; anything else — a symbolic link (which
    /// O_NOFOLLOW refuses to open), a FIFO, a device, a hard link to some other file, another
    /// user's file — is removed and a fresh file created with O_EXCL, so nothing planted at the
    /// name is ever written through. Called with the blob's lock held.
    static func openPartialDownload(_ path: String) throws -> Int32 {
        for _ in 0..<3 {
            var info = stat()
            if lstat(path, &info) == 0 {
                if (info.st_mode & S_IFMT) == S_IFREG {
                    // O_NONBLOCK: should a FIFO be swapped in after the lstat, open does not wait.
                    let fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
                    if fd >= 0 {
                        if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
                            && info.st_uid == geteuid() && info.st_nlink == 1 {
                            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
                            return fd
                        }
                        close(fd)
                    } else if errno != ELOOP && errno != ENOENT && errno != ENXIO {
                        throw error(path, errno)
                    }
                }
                if unlink(path) != 0 && errno != ENOENT { throw error(path, errno) }
            } else if errno != ENOENT {
                throw error(path, errno)
            }
            let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
            if fd >= 0 { return fd }
            if errno != EEXIST { throw error(path, errno) }
        }
        throw ToolError("\(path): something keeps putting files at this name while the download holds its lock")
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
