import RuCore
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
package struct HubCache: Sendable {
    package let root: String

    package init(root: String) { self.root = root }

    package func storage(_ id: HubModelID) -> String { root + "/" + id.folderName }
    package func blob(_ id: HubModelID, etag: String) -> String { storage(id) + "/blobs/" + etag }
    package func snapshot(_ id: HubModelID, commit: String) -> String { storage(id) + "/snapshots/" + commit }
    package func ref(_ id: HubModelID, revision: String) -> String { storage(id) + "/refs/" + revision }
    package func lock(_ id: HubModelID, etag: String) -> String { root + "/.locks/" + id.folderName + "/" + etag + ".lock" }

    /// The commit `id.revision` names in the cache: itself when it is a commit hash, else the
    /// content of refs/<revision>.
    package func cachedCommit(_ id: HubModelID) -> String? {
        if HubModelID.isCommitHash(id.revision) { return id.revision }
        guard let text = try? readSmallFile(ref(id, revision: id.revision)) else { return nil }
        let commit = trimWhitespace(text)
        return HubModelID.isCommitHash(commit) ? commit : nil
    }

    /// The snapshot folder of `id` when the cache holds a complete model there.
    package func completeSnapshot(_ id: HubModelID) -> String? {
        guard let commit = cachedCommit(id) else { return nil }
        let folder = snapshot(id, commit: commit)
        return ModelFiles.missing(in: folder).isEmpty ? folder : nil
    }

    /// Writes refs/<revision> = commit (atomically: temporary file, then rename), unless the
    /// revision is the commit itself or the ref already says so.
    package func writeRef(_ id: HubModelID, commit: String) throws {
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
    package func link(_ id: HubModelID, commit: String, path: String, etag: String) throws {
        let pointer = snapshot(id, commit: commit) + "/" + path
        let depth = path.split(separator: "/").count - 1
        let target = String(repeating: "../", count: depth + 2) + "blobs/" + etag
        try FileSystem.makeDirectories(FileSystem.parent(pointer))
        try FileSystem.requireFolders(from: storage(id), to: FileSystem.parent(pointer))
        if FileSystem.readLink(pointer) == target { return }
        // Made under a name of our own and renamed over the pointer: a process reading the
        // snapshot meanwhile sees the old pointer or the new one, never none (an unlink then
        // symlink left a moment without the file, and a concurrent client failed on it).
        var temporary = ""
        for attempt in 0..<100 {
            temporary = pointer + ".link-\(getpid())-\(attempt)"
            if symlink(target, temporary) == 0 { break }
            if errno != EEXIST || attempt == 99 { throw FileSystem.error(temporary, errno) }
        }
        if rename(temporary, pointer) != 0 {
            let e = errno
            unlink(temporary)
            throw FileSystem.error(pointer, e)
        }
    }

    /// The tag that tells backup tools to skip the cache (huggingface_hub writes the same bytes).
    /// Created O_EXCL | O_NOFOLLOW: whatever already has the name (a tag, or a link planted
    /// there) is left alone and never written through.
    package func writeCacheDirTag() {
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
    package func checkSnapshot(_ id: HubModelID, folder: String) throws {
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

    private func refused(_ path: String, _ why: String) -> RuEmbedError {
        RuEmbedError("\(path): \(why): the Hugging Face cache holds something a download did not make; remove it and run again")
    }
}

/// Which files of a hub repo a model needs, and whether a folder has them.
package enum ModelFiles {
    /// Top-level files a model folder may use: config, tokenizer, sentence-transformers metadata.
    static let topLevel: Set<String> = [
        "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "sentencepiece.bpe.model",
        "spiece.model", "tokenizer.model", "modules.json", "sentence_bert_config.json",
        "config_sentence_transformers.json", "model.safetensors.index.json",
    ]

    /// The files of `siblings` (the repo's file list) to download: the ones above, top-level
    /// `*.safetensors`, and the JSON, text and safetensors files of sentence-transformers module
    /// folders (`1_Pooling/config.json`, `2_Dense/...`), plus a module folder's
    /// `pytorch_model.bin` when that folder has no safetensors (sentence-transformers 2.x saved
    /// Dense heads so, e.g. LaBSE-en-ru's; the Dense module reads it with a restricted reader).
    /// Model cards, the transformer's own pytorch_model.bin (refused: safetensors only), onnx/,
    /// openvino/ and everything else are left out.
    package static func select(_ siblings: [String]) -> [String] {
        let moduleFoldersWithSafetensors = Set(siblings.compactMap { path -> Substring? in
            let parts = path.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count == 2 && isModuleFolder(parts[0]) && parts[1].hasSuffix(".safetensors") ? parts[0] : nil
        })
        return siblings.filter { path in
            let parts = path.split(separator: "/", omittingEmptySubsequences: false)
            if parts.count == 1 { return topLevel.contains(path) || path.hasSuffix(".safetensors") }
            if parts.count == 2, isModuleFolder(parts[0]) {
                if parts[1] == "pytorch_model.bin" { return !moduleFoldersWithSafetensors.contains(parts[0]) }
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
    package static func missing(in folder: String) -> [String] {
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
