import ArgumentParser
import RuEmbed
#if canImport(Glibc)
import Glibc
#endif

@main
struct RuEmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ru-embed",
        abstract: "Turn Russian text into sentence vectors with a DeBERTa sentence-transformers model (deepvk/USER-base).",
        discussion: """
        Reads records (text lines by default, --tsv id<TAB>text, --jsonl objects, or a token stream from ru-tok, recognised by its first bytes) and writes a binary vector stream: one vector per record, in input order, an empty line included (it gives the vector of the prompt and special tokens). The vectors are those of sentence-transformers' encode(..., normalize_embeddings=True) with the model's default prompt ("query: " for USER-base).

        Record ids are 1-based record numbers (with --id-prefix in front) unless the input carries them. Each chunk's metadata names the model (folder and weights digest), prompt, pooling, truncation and tokenizer digest.

        Examples:
          ru-embed --model USER-base < sentences.txt > sentences.vec
          ru-embed --model USER-base --prompt passage --tsv docs.tsv > docs.vec
          ru-embed --model USER-base --jsonl --text-field body --dtype f16 data.jsonl > data.vec
          ru-tok --model USER-base < q.txt | ru-embed --model USER-base > q.vec
          ru-embed --model USER-base --id-prefix shard3: part3.txt | ru-vec export --to tsv | head
        """)

    @Argument(help: "Input files; '-' or none for standard input.")
    var inputs: [String] = []

    @Option(help: ArgumentHelp("The model folder (sentence-transformers layout; default $RU_EMBED_MODEL or deepvk/USER-base).", valueName: "dir"))
    var model: String?

    @Flag(help: "Input lines are id<TAB>text.")
    var tsv = false

    @Flag(help: "Input lines are JSON objects.")
    var jsonl = false

    @Option(name: .customLong("id-field"), help: "The JSONL field with the record id.")
    var idField = "id"

    @Option(name: .customLong("text-field"), help: "The JSONL field with the text.")
    var textField = "text"

    @Option(name: .customLong("id-prefix"), help: ArgumentHelp("Put this in front of the record numbers used as ids (for shards).", valueName: "text"))
    var idPrefix = ""

    @Option(help: ArgumentHelp("Use the model's prompt of this name (e.g. query, passage).", valueName: "name"))
    var prompt: String?

    @Option(name: .customLong("prompt-text"), help: ArgumentHelp("Put this text in front of every record.", valueName: "text"))
    var promptText: String?

    @Flag(name: .customLong("no-prompt"), help: "Use no prompt, not even the model's default.")
    var noPrompt = false

    @Flag(name: .customLong("no-normalize"), help: "Write the pooled vectors as they are, without L2 normalisation.")
    var noNormalize = false

    @Option(help: "Element type of the output vectors: f32, f16, int8 or binary.")
    var dtype = "f32"

    @Option(name: .customLong("truncate-dim"), help: ArgumentHelp("Keep the first N dimensions (then normalise again).", valueName: "n"))
    var truncateDim: Int?

    @Option(help: ArgumentHelp("Arithmetic of the encoder: f32, or int8 (VNNI products, several times faster, vectors at a cosine of about 0.99 to f32; see docs/EMBED.md).", valueName: "f32|int8"))
    var precision = "f32"

    @Option(name: .customLong("batch-size"), help: ArgumentHelp("Texts per forward pass (1: one at a time).", valueName: "n"))
    var batchSize = 32

    @Option(help: "Threads for the model (default: all cores, shared out between the ru-* tools running at once, e.g. under xargs -P or make -j; see README).")
    var threads: Int?

    @Flag(inversion: .prefixedNo, help: "Show progress on standard error (default: when it is a terminal).")
    var progress: Bool?

    @Flag(name: .shortAndLong, help: "Print a summary on standard error at the end.")
    var verbose = false

    @Flag(help: "Write a binary stream even to a terminal.")
    var force = false

    func validate() throws {
        if tsv && jsonl { throw ValidationError("--tsv and --jsonl exclude each other") }
        if [prompt != nil, promptText != nil, noPrompt].filter({ $0 }).count > 1 {
            throw ValidationError("--prompt, --prompt-text and --no-prompt exclude each other")
        }
        guard let type = ElementType(name: dtype), ElementType.vectorTypes.contains(type) else {
            throw ValidationError("--dtype must be f32, f16, int8 or binary")
        }
        if Precision(rawValue: precision) == nil { throw ValidationError("--precision must be f32 or int8") }
        if let truncateDim, truncateDim < 1 { throw ValidationError("--truncate-dim must be 1 or more") }
        if batchSize < 1 { throw ValidationError("--batch-size must be 1 or more") }
        if let threads, threads < 1 { throw ValidationError("--threads must be 1 or more") }
    }

    mutating func run() throws {
        ToolRuntime.start("ru-embed")
        let options = self
        try ToolRuntime.run { try EmbedRunner(options).run() }
    }
}

/// One input record on its way to a vector.
struct PendingRecord {
    var id: String
    var ids: [UInt32]
    /// Where it came from, for errors: `file: line N` or `file: record N`.
    var file: String
    var unit: StaticString
    var number: Int

    var place: String { "\(file): \(unit) \(number)" }
}

final class EmbedRunner {
    let o: RuEmbedCommand
    let output = ByteOutput.standardOutput
    let started = monotonicSeconds()
    var embedder: SentenceEmbedder!
    var writer: VectorStreamWriter!
    var metadata = StreamMetadata()
    var dim = 0
    var normalize = true

    /// Records read and not yet through the model (a property, not a local: the pipe hook
    /// that flushes it runs in the middle of a read).
    var batch: [PendingRecord] = []
    var texts = 0, tokens = 0, truncated = 0
    /// Records read so far over all inputs: the default ids count on across files.
    var recordNumber = 0
    var lastProgress = 0.0
    var showProgress = false

    init(_ o: RuEmbedCommand) {
        self.o = o
    }

    func run() throws {
        try ToolRuntime.checkBinaryOutput(output, force: o.force)
        Parallel.share(explicitThreads: o.threads)
        showProgress = o.progress ?? (isatty(2) == 1)
        let folder = try ModelLocator.resolve(o.model)
        let precision = Precision(rawValue: o.precision)!
        embedder = try SentenceEmbedder(folder: folder, precision: precision)
        normalize = !o.noNormalize
        dim = embedder.dimension
        if let t = o.truncateDim {
            guard t <= dim else { throw ToolError.usage("--truncate-dim \(t) is more than the model's \(dim) dimensions") }
            dim = t
        }
        let digest = try embedder.modelDigest()
        metadata["model"] = .object([("id", .string(o.model ?? ModelLocator.defaultModel)), ("digest", .string(digest))])
        metadata["pooling"] = .string(embedder.sentenceConfig.poolingName)
        metadata["truncate_dim"] = o.truncateDim.map { .number(Double($0)) } ?? .null
        metadata["tokenizer_digest"] = .string(embedder.tokenizerConfig.digest)
        metadata["max_length"] = embedder.maxLength.map { .number(Double($0)) } ?? .null
        metadata["precision"] = .string(precision.rawValue)
        writer = VectorStreamWriter(output: output, dtype: ElementType(name: o.dtype)!, dim: dim,
                                    flags: normalize ? [.normalized] : [], metadata: metadata)

        let paths = o.inputs.isEmpty ? ["-"] : o.inputs
        for path in paths {
            let input = try ByteInput.open(path)
            // Token streams are told from text by their first bytes: any frame kind a stream
            // may start with (zstd, skippable, or a raw chunk from `zstd -dc`).
            let head = try input.readHead()
            if ChunkFormat.startsStream(head) {
                try embedTokenStream(input: input, head: head)
            } else {
                try embedText(input: input, head: head)
            }
        }
        try writer.finish()
        if showProgress { ToolRuntime.warnRaw("\r\u{1B}[K") }
        if o.verbose {
            let seconds = monotonicSeconds() - started
            ToolRuntime.warn("\(texts) texts, \(tokens) tokens, \(truncated) truncated to \(embedder.maxLength.map(String.init) ?? "-") tokens, "
                + "\(NumberFormat.fixed(seconds, decimals: 2)) s, \(Int((Double(tokens) / max(seconds, 1e-9)).rounded())) tokens/s, "
                + "\(Parallel.threads) thread\(Parallel.threads == 1 ? "" : "s")"
                + (o.precision == Precision.int8.rawValue
                    ? (Int8LinearLayer.kernelAvailable ? " (int8: AVX-512 VNNI kernel)" : " (int8: oneDNN's int8 matmul, no AVX-512 VNNI here)")
                    : ""))
        }
    }

    // MARK: text input

    func promptText() throws -> String {
        if let text = o.promptText { return text }
        if let name = o.prompt { return try embedder.tokenizerConfig.prompt(named: name) }
        if o.noPrompt { return "" }
        return try embedder.tokenizerConfig.defaultPrompt()
    }

    func embedText(input: ByteInput, head: [UInt8]) throws {
        let prompt = try promptText()
        try setPrompt(prompt)
        let skip = embedder.pooledPromptTokens(prompt)
        let promptScalars = prompt.unicodeScalars.map(\.value)
        let reader = RecordLines(input: input, prefix: head)
        let workspace = EncodeWorkspace()
        var encoding = Encoding()
        var scalars: [UInt32] = []
        input.beforeWaiting = { [unowned self] in
            // A pipe with nothing more for now: send what is read so far through the model.
            try self.embedBatch(skip: skip)
            try self.output.flush()
        }
        do {
            try readRecords(reader, input: input, promptScalars: promptScalars, skip: skip, workspace: workspace,
                            encoding: &encoding, scalars: &scalars)
        } catch let error as ToolError {
            // As every filter here: what came before a bad record is still written.
            input.beforeWaiting = nil
            try embedBatch(skip: skip)
            try writer.finish()
            throw error
        }
        input.beforeWaiting = nil
        try embedBatch(skip: skip)
    }

    func readRecords(_ reader: RecordLines, input: ByteInput, promptScalars: [UInt32], skip: Int, workspace: EncodeWorkspace,
                     encoding: inout Encoding, scalars: inout [UInt32]) throws {
        while let line = try reader.next() {
            let number = reader.lineNumber
            recordNumber += 1
            func fail(_ message: String) -> ToolError { ToolError("\(input.name): line \(number): \(message)") }
            var id = o.idPrefix + String(recordNumber)
            var textBytes = line[...]
            var jsonText: String? = nil
            if o.tsv {
                guard let tab = line.firstIndex(of: 0x09) else { throw fail("no tab: --tsv wants id<TAB>text") }
                guard let s = String(validating: line[..<tab], as: UTF8.self) else { throw fail("invalid UTF-8") }
                id = s
                textBytes = line[(tab + 1)...]
            } else if o.jsonl {
                let value: JSONValue
                do { value = try line.withUnsafeBytes { try JSONValue.parse($0) } } catch {
                    throw fail(String(validating: line, as: UTF8.self) == nil ? "invalid UTF-8" : "not a JSON object: \(error)")
                }
                guard case .object = value else { throw fail("not a JSON object") }
                if let v = value[o.idField], v != .null {
                    switch v {
                    case .string(let s): id = s
                    case .number(let d): id = JSONValue.format(d)
                    default: throw fail("field \"\(o.idField)\" is neither a string nor a number")
                    }
                }
                guard let text = value[o.textField]?.stringValue else { throw fail("field \"\(o.textField)\" is missing or not a string") }
                jsonText = text
            }
            let before = workspace.truncated
            // From the UTF-8 (of the line, or of the JSON string): a long text cut to
            // max_length is never held whole as scalars.
            var replaced = 0
            func encode(_ utf8: UnsafeRawBufferPointer) -> Bool {
                embedder.tokenizer.encode(utf8: utf8, prompt: promptScalars, lossy: false, replaced: &replaced,
                                          maxLength: embedder.maxLength, workspace: workspace, scalars: &scalars, into: &encoding)
            }
            if var jsonText {
                _ = jsonText.withUTF8 { encode(UnsafeRawBufferPointer($0)) } // valid: it is a String
            } else {
                guard textBytes.withUnsafeBytes(encode) else { throw fail("invalid UTF-8") }
            }
            if workspace.truncated != before { truncated += 1 }
            if let problem = embedder.problem(with: encoding.ids, skip: skip, fromText: true) { throw fail(problem) }
            if let problem = writer.problem(id: id) { throw fail(problem) }
            batch.append(PendingRecord(id: id, ids: encoding.ids, file: input.name, unit: "line", number: number))
            if batch.count >= o.batchSize { try embedBatch(skip: skip) }
        }
    }

    // MARK: token stream input

    func embedTokenStream(input: ByteInput, head: [UInt8]) throws {
        if o.prompt != nil || o.promptText != nil || o.noPrompt {
            throw ToolError.usage("\(input.name): a token stream already carries its prompt; --prompt, --prompt-text and --no-prompt apply to text input")
        }
        if o.tsv || o.jsonl { throw ToolError.usage("\(input.name): a token stream, not --tsv or --jsonl text") }
        // The reader wants the whole stream from its first byte: put the bytes read back in front.
        let reader = VectorStreamReader(input: try input.restoringHead(head))
        var warnedDigest = false
        var record = 0
        while let chunk = try reader.next() {
            guard chunk.kind == .tokens else { throw ToolError("\(input.name): a vector stream, not a token stream") }
            if !warnedDigest, let d = chunk.metadata["tokenizer_digest"]?.stringValue, d != embedder.tokenizerConfig.digest {
                ToolRuntime.warn("warning: \(input.name): the tokens were made with another tokenizer (digest \(d.prefix(12))…)")
                warnedDigest = true
            }
            let prompt = chunk.metadata["prompt"]?.stringValue ?? ""
            let skip = embedder.pooledPromptTokens(prompt)
            // Each chunk's records are embedded before the next chunk: a new prompt starts clean.
            if prompt != metadata["prompt"]?.stringValue { try setPrompt(prompt) }
            for (id, ids) in zip(chunk.ids, chunk.tokenLists()) {
                record += 1
                if let problem = embedder.problem(with: ids, skip: skip) { throw ToolError("\(input.name): record \(record) (id \(id)): \(problem)") }
                if let problem = writer.problem(id: id) { throw ToolError("\(input.name): record \(record): \(problem)") }
                batch.append(PendingRecord(id: id, ids: ids, file: input.name, unit: "record", number: record))
                if batch.count >= o.batchSize { try embedBatch(skip: skip) }
            }
            try embedBatch(skip: skip)
        }
    }

    func setPrompt(_ prompt: String) throws {
        metadata["prompt"] = .string(prompt)
        try writer.setMetadata(metadata)
    }

    // MARK: the model

    /// Most tokens in one forward pass: bounds the activations (a batch of long texts is
    /// split), while a single longer text still goes alone.
    static let maxPackTokens = 8192

    func embedBatch(skip: Int) throws {
        guard !batch.isEmpty else { return }
        var vectors: [Float] = []
        vectors.reserveCapacity(batch.count * embedder.dimension)
        var start = 0
        while start < batch.count {
            var end = start, packTokens = 0
            while end < batch.count && (end == start || packTokens + batch[end].ids.count <= EmbedRunner.maxPackTokens) {
                packTokens += batch[end].ids.count
                end += 1
            }
            Parallel.rebalance() // other tools may have started or ended since the last pass
            embedder.embed(batch[start..<end].map(\.ids), skip: skip, normalize: normalize && o.truncateDim == nil, into: &vectors)
            start = end
        }
        let full = embedder.dimension
        try vectors.withUnsafeMutableBufferPointer { v in
            for (k, r) in batch.enumerated() {
                let row = v.baseAddress! + k * full
                if o.truncateDim != nil && normalize { SentenceEmbedder.normalize(row, dim) }
                do {
                    try writer.append(id: r.id, vector: UnsafeBufferPointer(start: row, count: dim), place: r.place)
                } catch {
                    // The records before it are written, as for any bad record; this one is not.
                    try writer.finish()
                    throw error
                }
                tokens += r.ids.count
            }
        }
        texts += batch.count
        batch.removeAll(keepingCapacity: true)
        try writer.flush()
        try writer.writer.flushOutput()
        if showProgress {
            let now = monotonicSeconds()
            if now - lastProgress > 0.25 {
                lastProgress = now
                let rate = Double(tokens) / max(now - started, 1e-9)
                ToolRuntime.warnRaw("\r\u{1B}[K\(texts) texts, \(tokens) tokens, \(Int(rate.rounded())) tokens/s")
            }
        }
    }
}

/// Lines of one input, with bytes already read from it (to look at them) put back in front.
final class RecordLines {
    let input: ByteInput
    private var pending: [UInt8]
    private var start = 0
    private var atEOF = false
    private var chunk = [UInt8](repeating: 0, count: 1 << 20)
    private(set) var lineNumber = 0

    init(input: ByteInput, prefix: [UInt8]) {
        self.input = input
        pending = prefix
    }

    /// The next line without its newline (and without a CR before it); nil at the end.
    func next() throws -> [UInt8]? {
        while true {
            let found = pending.withUnsafeBufferPointer { p -> Int? in
                guard start < p.count, let hit = memchr(p.baseAddress! + start, 0x0A, p.count - start) else { return nil }
                return p.baseAddress!.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            }
            if let cut = found {
                defer { start = cut + 1 }
                return line(start..<cut)
            }
            if atEOF {
                guard start < pending.count else { return nil }
                defer { start = pending.count }
                return line(start..<pending.count)
            }
            if start > 0 { pending.removeSubrange(0..<start); start = 0 }
            let n = try chunk.withUnsafeMutableBytes { try input.read(into: $0) }
            if n == 0 { atEOF = true } else { pending += chunk[0..<n] }
        }
    }

    private func line(_ range: Range<Int>) -> [UInt8] {
        lineNumber += 1
        var end = range.upperBound
        if end > range.lowerBound && pending[end - 1] == 0x0D { end -= 1 }
        return Array(pending[range.lowerBound..<end])
    }
}

extension ToolRuntime {
    /// Writes text to stderr as it is (progress lines that redraw themselves).
    static func warnRaw(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { p in _ = write(2, p.baseAddress, p.count) }
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
