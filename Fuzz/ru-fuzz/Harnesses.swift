// The fuzz harnesses: each feeds one input (bytes) to a parser of the library, in-process,
// the way the tools call it. A harness returns normally for every input, valid or not: an
// error thrown by the library is the expected answer to bad input; a trap, an over-read
// (AddressSanitizer), a leak or a broken round trip is a finding.
//
// The same code runs under libFuzzer (`make fuzz`, Entry.swift with -D FUZZING) and in the
// replay driver of a plain build, which `swift test` uses to replay the seed corpus and every
// crash input found so far (FuzzReplayTests).
#if canImport(Glibc)
import Glibc
#endif
import RuEmbed

public struct Harness {
    public let name: String
    /// What it covers, for `ru-fuzz --list` and docs/FUZZING.md.
    public let summary: String
    /// Inputs longer than this are ignored: every parser here has limits far below, and a
    /// few KiB are enough to reach each branch (libFuzzer's -max_len is set to the same).
    public let maxLength: Int
    let body: ([UInt8]) throws -> Void

    /// Runs one input. Errors thrown by the library (bad input) are returned, not raised.
    @discardableResult
    public func run(_ data: [UInt8]) -> Error? {
        guard data.count <= maxLength else { return nil }
        do { try body(data) } catch { return error }
        return nil
    }

    public static func named(_ name: String) -> Harness? { all.first { $0.name == name } }

    public static let all: [Harness] = [
        Harness(name: "json", summary: "JSONValue.parse (Support/JSON.swift); a parsed value must write back to text that parses to the same value",
                maxLength: 64 << 10, body: json),
        Harness(name: "vector-stream", summary: "VectorStreamReader + VectorRecords on a vector stream: zstd and raw frames, skippable frames, metadata, every dtype decoded to floats",
                maxLength: 64 << 10, body: vectorStream),
        Harness(name: "token-stream", summary: "VectorStreamReader on a token stream, as ru-embed and ru-tok --decode read it: chunks and their token lists",
                maxLength: 64 << 10, body: tokenStream),
        Harness(name: "tokenizer", summary: "Tokenizer(contentsOf:) on a tokenizer.json, then encode and decode: the bytes after a NUL are the text, else a few fixed texts",
                maxLength: 64 << 10, body: tokenizer),
        Harness(name: "safetensors", summary: "SafetensorsArchive on a model.safetensors (header, dtypes, shapes, offsets), then every tensor read as floats",
                maxLength: 64 << 10, body: safetensors),
        Harness(name: "config", summary: "a model folder's JSON files (NUL-separated: config.json, modules.json, 1_Pooling/config.json, sentence_bert_config.json, config_sentence_transformers.json, tokenizer_config.json, 2_Dense/config.json) through DebertaModel.Config, BertModel.Config (bert, roberta, xlm-roberta), loadEncoder's model_type dispatch, SentenceModelConfig.load (pooling modes), DenseModule's config and ModelTokenizer.load; no weights",
                maxLength: 64 << 10, body: config),
        Harness(name: "torch-checkpoint", summary: "TorchCheckpoint (restricted zip + pickle reader) on a pytorch_model.bin, then every tensor it lists read as floats",
                maxLength: 64 << 10, body: torchCheckpoint),
        Harness(name: "precompiled", summary: "the bytes as a Precompiled normalizer's charsmap (the decoded blob; the harness base64-encodes it into a fixed Unigram tokenizer.json), then a few fixed texts encoded",
                maxLength: 64 << 10, body: precompiled),
        Harness(name: "index", summary: "GraphIndexFile on an ru-index file (header, sections, bounds), then an approximate search (every neighbour followed is checked), the exhaustive search of a small one, the ids, and verify",
                maxLength: 64 << 10, body: indexFile),
        Harness(name: "import", summary: "ru-vec import's readers: the first byte picks npy, fvecs, jsonl or tsv, the rest is the file",
                maxLength: 64 << 10, body: vectorImport),
    ]
}

// MARK: - Inputs

/// The bytes as a ByteInput: the readers take file descriptors. The file lives in the
/// scratch folder, unlinked at once, so it goes away with its descriptor. (memfd_create
/// would not touch a file system at all, but Glibc's Swift module does not export it.)
func memoryInput(_ data: some Collection<UInt8>, name: String) -> ByteInput {
    var template = Array((scratchFolder + "/input-XXXXXX").utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    precondition(fd >= 0, "mkstemp: \(String(cString: strerror(errno)))")
    unlink(String(cString: template))
    let bytes = Array(data)
    var written = 0
    while written < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
        precondition(n > 0, "write: \(String(cString: strerror(errno)))")
        written += n
    }
    lseek(fd, 0, SEEK_SET)
    return ByteInput(fd: fd, name: name, ownsDescriptor: true)
}

/// One private folder per process under $TMPDIR, for the harnesses that read model folders
/// by path; removed at exit.
let scratchFolder: String = {
    let base = getenv("TMPDIR").flatMap { String(validatingCString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    var template = Array((base + "/ru-fuzz-XXXXXX").utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(made != nil, "mkdtemp: \(String(cString: strerror(errno)))")
    let folder = String(cString: template)
    // The digest cache (ModelTokenizer) goes to $XDG_CACHE_HOME: kept inside the scratch folder.
    setenv("XDG_CACHE_HOME", folder + "/cache", 1)
    atexit { removeTree(scratchFolderPath) }
    scratchFolderPath = folder
    return folder
}()
nonisolated(unsafe) var scratchFolderPath = ""

/// Removes a folder and everything in it (links are removed, not followed).
func removeTree(_ path: String) {
    guard !path.isEmpty else { return }
    if let dir = opendir(path) {
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name == "." || name == ".." { continue }
            let child = path + "/" + name
            var st = stat()
            if lstat(child, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { removeTree(child) } else { unlink(child) }
        }
        closedir(dir)
    }
    rmdir(path)
}

/// Writes `data` to `path` (replacing it), or removes the file when `data` is nil.
func put(_ data: ArraySlice<UInt8>?, at path: String) {
    guard let data else { unlink(path); return }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    precondition(fd >= 0, "\(path): \(String(cString: strerror(errno)))")
    defer { close(fd) }
    var offset = data.startIndex
    while offset < data.endIndex {
        let n = data[offset...].withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        precondition(n > 0, "\(path): \(String(cString: strerror(errno)))")
        offset += n
    }
}

/// The parts of `data` between NUL bytes, at most `limit` (the last one keeps any further NULs).
func parts(_ data: [UInt8], limit: Int) -> [ArraySlice<UInt8>] {
    data.split(separator: 0, maxSplits: limit - 1, omittingEmptySubsequences: false)
}

// MARK: - Harnesses

func json(_ data: [UInt8]) throws {
    let value = try data.withUnsafeBytes { try JSONValue.parse($0) }
    // The writer's output must parse back to the same value: the tools write JSON (metadata,
    // --json output) that they and others read again.
    var text = ""
    value.write(to: &text)
    let again: JSONValue
    do { again = try JSONValue.parse(text) } catch {
        fatalError("JSON written from a parsed value does not parse: \(error)\n\(text.prefix(300))")
    }
    if again != value { fatalError("JSON round trip changed the value:\n\(text.prefix(300))") }
}

func vectorStream(_ data: [UInt8]) throws {
    let records = VectorRecords(reader: VectorStreamReader(input: memoryInput(data, name: "fuzz.vec")))
    var sum: Float = 0
    while try records.next({ id, row in
        sum += row.reduce(0, +) + Float(id.utf8.count)
    }) != nil {}
    _ = records.metadata
    blackHole(sum)
}

func tokenStream(_ data: [UInt8]) throws {
    let reader = VectorStreamReader(input: memoryInput(data, name: "fuzz.tok"))
    var total = 0
    while let chunk = try reader.next() {
        guard chunk.kind == .tokens else { continue }
        for (id, list) in zip(chunk.ids, chunk.tokenLists()) { total &+= id.utf8.count &+ list.count &+ Int(list.last ?? 0) }
        _ = chunk.metadata
    }
    blackHole(total)
}

/// An index file is memory-mapped by path: the bytes go to one file in the scratch folder.
func indexFile(_ data: [UInt8]) throws {
    let path = scratchFolder + "/fuzz.idx"
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    precondition(fd >= 0, "open: \(String(cString: strerror(errno)))")
    var written = 0
    while written < data.count {
        let n = data.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
        precondition(n > 0, "write: \(String(cString: strerror(errno)))")
        written += n
    }
    close(fd)
    let file = try GraphIndexFile(path: path)
    // Two unit queries: along the first axis, and the diagonal.
    var queries = [Float](repeating: 0, count: 2 * file.dim)
    queries[0] = 1
    for j in 0..<file.dim { queries[file.dim + j] = 1 / Float(file.dim).squareRoot() }
    var distances: UInt64 = 0
    let found = try queries.withUnsafeBufferPointer {
        try file.search(queries: $0.baseAddress!, count: 2, k: 3, ef: 8, distances: &distances)
    }
    var total = found.reduce(0) { $0 + $1.count }
    if file.count <= 256 {
        let exact = ExactSearch(queries: queries, dim: file.dim, k: 3)
        try file.exactSearch(exact)
        total += exact.results().reduce(0) { $0 + $1.count }
    }
    try file.verify()
    blackHole(total)
}

let fixedTexts = ["Привет, мир!", "Hello world", "  ", "", "ёлка 123 [CLS] <s> ▁x \u{0301}é\u{200D}👍🏽"]

func tokenizer(_ data: [UInt8]) throws {
    let split = data.firstIndex(of: 0)
    let json = Array(data[..<(split ?? data.endIndex)])
    let tokenizer = try Tokenizer(contentsOf: json)
    let texts: [String] = split.map { [String(decoding: data[($0 + 1)...], as: UTF8.self)] } ?? fixedTexts
    var total = 0
    for text in texts {
        for maxLength in [nil, 8] as [Int?] {
            let encoding = tokenizer.encode(text, maxLength: maxLength)
            total &+= encoding.ids.count
            // The decoder (Metaspace, ByteFallback, Fuse, …) on what the model gave, as ru-tok --decode runs it.
            total &+= ((try? tokenizer.decode(encoding.ids, skipSpecialTokens: maxLength == nil)) ?? "").utf8.count
        }
        total &+= tokenizer.encode(text, specialTokensAsText: true).ids.count
    }
    blackHole(total)
}

func safetensors(_ data: [UInt8]) throws {
    let folder = scratchFolder + "/safetensors"
    mkdir(folder, 0o700)
    put(data[...], at: folder + "/model.safetensors")
    let archive = try SafetensorsArchive(folder: folder)
    var sum: Float = 0
    for (name, info) in archive.tensors.sorted(by: { $0.key < $1.key }) {
        let tensor = try archive.floats(name, shape: info.shape)
        sum += UnsafeBufferPointer(start: tensor.pointer, count: min(tensor.count, 4096)).reduce(0, +)
    }
    blackHole(sum)
}

/// A tokenizer.json that loads, for the ModelTokenizer part of the config harness.
let tinyTokenizer = Array(#"{"model":{"type":"WordLevel","vocab":{"[UNK]":0,"a":1},"unk_token":"[UNK]"},"pre_tokenizer":{"type":"Whitespace"}}"#.utf8)

func config(_ data: [UInt8]) throws {
    let folder = scratchFolder + "/model"
    mkdir(folder, 0o700)
    mkdir(folder + "/1_Pooling", 0o700)
    mkdir(folder + "/2_Dense", 0o700)
    let names = ["config.json", "modules.json", "1_Pooling/config.json", "sentence_bert_config.json",
                 "config_sentence_transformers.json", "tokenizer_config.json", "2_Dense/config.json"]
    let pieces = parts(data, limit: names.count)
    for (i, name) in names.enumerated() { put(i < pieces.count ? pieces[i] : nil, at: folder + "/" + name) }
    put(tinyTokenizer[...], at: folder + "/tokenizer.json")
    // Each reader on its own: an error from one must not hide what the next would do.
    var hidden: Int?
    if let first = pieces.first, let json = try? first.withUnsafeBytes({ try JSONValue.parse($0) }) {
        if let c = try? DebertaModel.Config(json: json, path: folder + "/config.json") { hidden = c.hiddenSize }
        if let c = try? BertModel.Config(json: json, path: folder + "/config.json") {
            hidden = c.hiddenSize
            blackHole((c.headDim, c.positionLimit))
        }
    }
    // The dispatch by model_type, as the tools load a model: the folder has no weights, so a
    // config it accepts ends at the missing safetensors.
    _ = try? loadEncoder(folder: folder, precision: .f32)
    if let sentence = try? SentenceModelConfig.load(folder: folder) {
        // Dense modules' config.json (no weights here either), fed the pooled width; only
        // folders inside the model folder are read.
        var width = (hidden ?? 32) * sentence.pooling.count
        for dense in sentence.denseFolders where dense.hasPrefix(folder + "/") && !dense.contains("..") {
            guard let module = try? DenseModule(folder: dense, inputSize: width) else { break }
            width = module.outputSize
        }
        blackHole(sentence.poolingName)
    }
    if let modelTokenizer = try? ModelTokenizer.load(modelFolder: folder) {
        _ = try? modelTokenizer.defaultPrompt()
        _ = modelTokenizer.tokenizer.encode("a a b", maxLength: modelTokenizer.maxLength)
    }
}

func torchCheckpoint(_ data: [UInt8]) throws {
    let folder = scratchFolder + "/torch"
    mkdir(folder, 0o700)
    put(data[...], at: folder + "/pytorch_model.bin")
    // By path, as DenseModule reads a module's pytorch_model.bin (the file is mapped).
    let checkpoint = try TorchCheckpoint(path: folder + "/pytorch_model.bin")
    var sum: Float = 0
    for (name, tensor) in checkpoint.tensors.sorted(by: { $0.key < $1.key }) {
        let values = try checkpoint.floats(name, shape: tensor.shape)
        if values.count != tensor.elementCount { fatalError("tensor \(name): \(values.count) values for shape \(tensor.shape)") }
        sum += values.prefix(4096).reduce(0, +)
    }
    blackHole(sum)
}

/// A Unigram tokenizer.json whose normalizer is a Precompiled charsmap, the base64 of which
/// goes between the two halves; Metaspace and byte fallback as SentencePiece conversions write them.
let precompiledTemplate = (#"{"normalizer":{"type":"Precompiled","precompiled_charsmap":""#, #""},"pre_tokenizer":{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true},"model":{"type":"Unigram","unk_id":0,"byte_fallback":true,"vocab":[["<unk>",0],["▁",-1],["a",-2],["▁a",-1.5],["<0x41>",-5],["<0xC3>",-5]]},"decoder":{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}}"#)

func precompiled(_ data: [UInt8]) throws {
    // The charsmap is fuzzed as the decoded blob: mutations of base64 text would mostly break
    // the encoding (length, padding) and never reach the trie.
    let json = precompiledTemplate.0 + base64(data) + precompiledTemplate.1
    let tokenizer = try Tokenizer(contentsOf: Array(json.utf8))
    var total = 0
    for text in fixedTexts + ["ＡＢＣ ﬁ … Ⅻ ½ ㍿ \u{00A0}x\u{200B}y", "e\u{0301}\u{0308}\u{20DD}\u{FE0F}"] {
        total &+= tokenizer.encode(text).ids.count
    }
    blackHole(total)
}

/// Standard base64 with padding.
func base64(_ data: [UInt8]) -> String {
    let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    out.reserveCapacity((data.count + 2) / 3 * 4)
    var i = 0
    while i < data.count {
        let n = min(3, data.count - i)
        var group = UInt32(data[i]) << 16
        if n > 1 { group |= UInt32(data[i + 1]) << 8 }
        if n > 2 { group |= UInt32(data[i + 2]) }
        for k in 0..<4 { out.append(k <= n ? table[Int(group >> (18 - 6 * UInt32(k)) & 63)] : UInt8(ascii: "=")) }
        i += 3
    }
    return String(decoding: out, as: UTF8.self)
}

func vectorImport(_ data: [UInt8]) throws {
    guard let selector = data.first else { return }
    let input = memoryInput(data.dropFirst(), name: "fuzz.import")
    var sum: Float = 0
    let emit: VectorEmitter = { id, vector, place in sum += vector.reduce(0, +) + Float((id?.utf8.count ?? 0) + place.utf8.count) }
    switch selector % 4 {
    case 0: try VectorBinaryImport.npy(input, emit)
    case 1: try VectorBinaryImport.fvecs(input, emit)
    case 2: try VectorTextImport.jsonl(input, emit)
    default: try VectorTextImport.tsv(input, emit)
    }
    blackHole(sum)
}

/// Keeps a result alive so the optimiser cannot drop the work that made it.
@inline(never) func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }
