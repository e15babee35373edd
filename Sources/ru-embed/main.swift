import ArgumentParser
import RuEmbed
import RuCLI
import RuModelCLI
#if canImport(Glibc)
import Glibc
#endif

@main
struct RuEmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ru-embed",
        abstract: "Turn Russian text into sentence vectors with a sentence-transformers model (DeBERTa, BERT, XLM-RoBERTa; default deepvk/USER-base).",
        discussion: """
        Reads records (text lines by default, --tsv id<TAB>text, --jsonl objects, or a token stream from ru-tok, recognised by its first bytes) and writes a binary vector stream: one vector per record, in input order, an empty line included (it gives the vector of the prompt and special tokens). The vectors are those of sentence-transformers' encode(..., normalize_embeddings=True) with the model's default prompt ("query: " for USER-base).

        --split TOKENS[:OVERLAP] is for long documents (articles, contracts, books): each record is tokenized whole, without truncation, and its content tokens (not the prompt's, not the special tokens) are cut into windows of at most TOKENS tokens, consecutive windows sharing OVERLAP tokens (default 0). Each window is embedded as the prompt's tokens + the window's tokens wrapped in the record's special tokens, and written with the id ID#0, ID#1, ... in order (a short record gives ID#0 alone; an empty one, the vector of the prompt and special tokens). TOKENS, the prompt's tokens and the special tokens must fit the model's maximum length. The metadata records the split. Token streams from ru-tok are already cut to the maximum length: --split takes text input only.

        Record ids are 1-based record numbers (with --id-prefix in front) unless the input carries them. Each chunk's metadata names the model (folder and weights digest), prompt, pooling, truncation and tokenizer digest.

        Examples:
          ru-embed --model USER-base < sentences.txt > sentences.vec
          ru-embed --model USER-base --prompt passage --tsv docs.tsv > docs.vec
          ru-embed --model USER-base --jsonl --text-field body --dtype f16 data.jsonl > data.vec
          ru-tok --model USER-base < q.txt | ru-embed --model USER-base > q.vec
          ru-embed --model USER-base --prompt passage --split 256:32 --tsv books.tsv > windows.vec
          ru-embed --model USER-base --id-prefix shard3: part3.txt | ru-vec export --to tsv | head
        """,
        version: RuEmbedVersion.string)

    @OptionGroup var records: RecordInputOptions
    @OptionGroup var model: ModelOptions
    @OptionGroup var prompt: PromptOptions

    @Option(name: .customLong("id-prefix"), help: ArgumentHelp("Put this in front of the record numbers used as ids (for shards).", valueName: "text"))
    var idPrefix = ""

    @Flag(name: .customLong("no-normalize"), help: "Write the pooled vectors as they are, without L2 normalisation.")
    var noNormalize = false

    @Option(help: "Element type of the output vectors.")
    var dtype: VectorType = .f32

    @Option(name: .customLong("truncate-dim"), help: ArgumentHelp("Keep the first N dimensions (then normalise again).", valueName: "n"))
    var truncateDim: Int?

    @Option(help: ArgumentHelp("Arithmetic of the encoder: f32; int8 (several times faster, vectors at a cosine of about 0.99 to f32); or bf16 (CPUs with AVX512_BF16; f32 elsewhere, with a warning). See docs/EMBED.md.", valueName: "f32|int8|bf16"))
    var precision: Precision = .f32

    @Option(help: ArgumentHelp("Cut each record into windows of at most TOKENS content tokens, consecutive windows sharing OVERLAP tokens, one vector each, ids ID#0, ID#1, ... (text input only; see below).", valueName: "tokens[:overlap]"))
    var split: String?

    @Option(name: .customLong("batch-size"), help: ArgumentHelp("Texts per forward pass (1: one at a time).", valueName: "n"))
    var batchSize = 32

    @OptionGroup var threads: ThreadOptions
    @OptionGroup var output: BinaryOutputOptions

    @Flag(inversion: .prefixedNo, help: "Show progress on standard error (default: when it is a terminal).")
    var progress: Bool?

    @OptionGroup var verbose: VerboseOptions

    func validate() throws {
        if let truncateDim, truncateDim < 1 { throw ValidationError("--truncate-dim must be 1 or more") }
        if batchSize < 1 { throw ValidationError("--batch-size must be 1 or more") }
    }

    mutating func run() throws {
        ToolRuntime.start("ru-embed")
        let options = self
        try ToolRuntime.run {
            try options.output.withOutput { try EmbedRun(options, output: $0).run() }
        }
    }
}

/// One run of ru-embed: the inputs through a `StreamEncoder` (the library's pipeline), plus
/// what only a tool does (sniffing inputs, ids from record numbers, progress, the summary).
final class EmbedRun {
    let o: RuEmbedCommand
    let output: ByteOutput
    let started = monotonicSeconds()
    var stream: StreamEncoder!
    /// Records read so far over all inputs: the default ids count on across files.
    var recordNumber = 0
    var lastProgress = 0.0
    let showProgress: Bool

    init(_ o: RuEmbedCommand, output: ByteOutput) {
        self.o = o
        self.output = output
        showProgress = o.progress ?? (isatty(2) == 1)
    }

    func run() throws {
        o.threads.apply()
        let split = try o.split.map { try DocumentSplit(parsing: $0) }
        if !o.precision.isSupported {
            ToolRuntime.warn("--precision \(o.precision.rawValue) needs a CPU with AVX512_BF16, which this one lacks: running f32 (the stream records precision f32)")
        }
        let encoder = try SentenceEncoder(model: o.model.spec, options: EncoderOptions(
            precision: o.precision, normalize: !o.noNormalize, truncateDimension: o.truncateDim,
            batchSize: o.batchSize, hub: o.model.hubOptions(verbose: o.verbose.verbose), split: split))
        stream = try encoder.makeStreamEncoder(output: output, dtype: o.dtype.elementType, prompt: o.prompt.choice)
        stream.lossy = o.records.lossy
        do {
            for path in o.records.paths {
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
        } catch let error as RuEmbedError where error.kind != .brokenPipe {
            // As every filter here: what came before a bad record is still written.
            try stream.finish()
            throw error
        }
        try stream.finish()
        if showProgress { ToolRuntime.warnRaw("\r\u{1B}[K") }
        if o.verbose.verbose {
            let seconds = monotonicSeconds() - started
            ToolRuntime.warn("\(stream.records) texts, \(stream.tokens) tokens, \(stream.truncated) truncated to \(encoder.maxLength.map(String.init) ?? "-") tokens, "
                + "\(NumberFormat.fixed(seconds, decimals: 2)) s, \(Int((Double(stream.tokens) / max(seconds, 1e-9)).rounded())) tokens/s, "
                + "\(Parallel.threads) thread\(Parallel.threads == 1 ? "" : "s")"
                + (o.precision == .int8
                    ? (Int8LinearLayer.kernelAvailable ? " (int8: AVX-512 VNNI kernel)" : " (int8: oneDNN's int8 matmul, no AVX-512 VNNI here)")
                    : o.precision == .bf16 && o.precision.isSupported
                        ? (BF16LinearLayer.Kernel.preferred == .fma ? " (bf16: AVX512_BF16 CPU, FMA kernel)" : " (bf16: AVX512_BF16 kernel)")
                        : ""))
        }
    }

    func embedText(input: ByteInput, head: [UInt8]) throws {
        try stream.setPrompt(text: try stream.encoder.promptText(o.prompt.choice))
        input.unread(head)
        let reader = RecordReader(input: input, separator: o.records.separator)
        let syntax = o.records.syntax
        input.beforeWaiting = { [unowned self] in
            // A pipe with nothing more for now: send what is read so far through the model.
            try self.flush()
        }
        defer { input.beforeWaiting = nil }
        var replaced = 0
        while true {
            // One record at a time: a record read is queued before the next read can block.
            let batch = try reader.nextBatch(maxRecords: 1, maxBytes: 1)
            guard let record = batch.records.first else { break }
            recordNumber += 1
            let place = "\(input.name): \(o.records.unit) \(record.number)"
            let fields: RecordSyntax.Fields
            do { fields = try syntax.parse(batch.text(0), lossy: o.records.lossy, replaced: &replaced) } catch let e as RuEmbedError {
                throw RuEmbedError("\(place): \(e.message)")
            }
            let id = fields.id ?? o.idPrefix + String(recordNumber)
            try fields.withText { try stream.add(id: id, text: $0, place: place) }
            try reportProgress()
        }
        try flush()
    }

    func embedTokenStream(input: ByteInput, head: [UInt8]) throws {
        if o.prompt.isGiven {
            throw RuEmbedError.invalidArgument("\(input.name): a token stream already carries its prompt; --prompt, --prompt-text and --no-prompt apply to text input")
        }
        if o.records.tsv || o.records.jsonl { throw RuEmbedError.invalidArgument("\(input.name): a token stream, not --tsv or --jsonl text") }
        if o.split != nil {
            throw RuEmbedError.invalidArgument("\(input.name): --split cuts text records; a token stream's records are already cut to the maximum length (give ru-embed the text instead)")
        }
        // The reader wants the whole stream from its first byte: put the bytes read back in front.
        let reader = VectorStreamReader(input: try input.restoringHead(head))
        var warnedDigest = false
        var record = 0
        while let chunk = try reader.next() {
            guard chunk.kind == .tokens else { throw RuEmbedError("\(input.name): a vector stream, not a token stream") }
            if !warnedDigest, let d = chunk.metadata["tokenizer_digest"]?.stringValue, d != stream.encoder.tokenizer.digest {
                ToolRuntime.warn("warning: \(input.name): the tokens were made with another tokenizer (digest \(d.prefix(12))…)")
                warnedDigest = true
            }
            try stream.setPrompt(text: chunk.metadata["prompt"]?.stringValue ?? "")
            for (id, ids) in zip(chunk.ids, chunk.tokenLists()) {
                record += 1
                try stream.add(id: id, tokens: ids, place: "\(input.name): record \(record)")
            }
            // Each chunk's records are embedded before the next chunk: a new prompt starts clean.
            try flush()
        }
    }

    func flush() throws {
        try stream.flush()
        try reportProgress()
    }

    func reportProgress() throws {
        guard showProgress else { return }
        let now = monotonicSeconds()
        if now - lastProgress > 0.25 {
            lastProgress = now
            let rate = Double(stream.tokens) / max(now - started, 1e-9)
            ToolRuntime.warnRaw("\r\u{1B}[K\(stream.records) texts, \(stream.tokens) tokens, \(Int(rate.rounded())) tokens/s")
        }
    }
}
