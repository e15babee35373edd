import RuCore
import RuCompute
import RuTokenizer
import RuVectors
import RuHub

/// Which text goes in front of every record before it is tokenized.
public enum Prompt: Sendable, Equatable {
    /// The model's default prompt (`default_prompt_name` of config_sentence_transformers.json;
    /// "query: " for USER-base), or none when the model names none.
    case modelDefault
    /// The model's prompt of this name (e.g. "query", "passage").
    case named(String)
    /// This text as it is.
    case text(String)
    /// No prompt at all (not `none`: `prompt: .none` would read as the nil of `embed`'s
    /// `String?` form).
    case noPrompt
}

/// How a `SentenceEncoder` computes and shapes its vectors.
public struct EncoderOptions: Sendable {
    /// The arithmetic of the encoder's matrix products (int8: several times faster, vectors
    /// at a cosine of about 0.99 to f32; bf16 where the CPU has AVX512_BF16, f32 elsewhere;
    /// docs/EMBED.md).
    public var precision: Precision = .f32
    /// L2-normalise the vectors (sentence-transformers' `normalize_embeddings=True`).
    public var normalize = true
    /// Keep the first N dimensions (then normalise again when `normalize`).
    public var truncateDimension: Int? = nil
    /// Texts per forward pass.
    public var batchSize = 32
    /// How a hub id is found or downloaded (cache, offline mode, progress).
    public var hub = ModelLocator.Options()
    /// Cut each record into windows, one vector each (`DocumentSplit`), instead of truncating
    /// it to the maximum length: `StreamEncoder` writes ids `id#0`, `id#1`, … and
    /// `embedDocuments` returns the windows' vectors per text. `embed` ignores it (one vector
    /// per text, as sentence-transformers).
    public var split: DocumentSplit? = nil

    /// Options as the properties above describe them; every argument has the default a
    /// sentence-transformers user expects (f32, normalised, all dimensions, batches of 32).
    public init(precision: Precision = .f32, normalize: Bool = true, truncateDimension: Int? = nil,
                batchSize: Int = 32, hub: ModelLocator.Options = ModelLocator.Options(), split: DocumentSplit? = nil) {
        self.precision = precision
        self.normalize = normalize
        self.truncateDimension = truncateDimension
        self.batchSize = batchSize
        self.hub = hub
        self.split = split
    }
}

/// Text to sentence vectors, as sentence-transformers' `SentenceTransformer(model).encode(texts,
/// prompt_name=..., normalize_embeddings=True)`:
///
/// ```swift
/// let encoder = try SentenceEncoder(model: "deepvk/USER-base")
/// let vectors = try encoder.embed(["Привет, мир"], prompt: "query")
/// ```
///
/// The whole pipeline lives here: model resolution (a folder, or a hub id found in the
/// Hugging Face cache or downloaded into it), the prompt, tokenization and truncation to the
/// model's maximum length, the checks that make a record refusable, packing texts into
/// forward passes, pooling, normalisation, `truncateDimension` and the metadata that
/// describes the vectors. `ru-embed` is this type plus argument parsing: an app and the tool
/// given the same inputs write the same bytes (`makeStreamEncoder`).
///
/// Thread safety: an encoder is `Sendable`. Calls from several threads at once are safe and
/// take turns on the model (one forward pass at a time, each using the threads set with
/// `Parallel.setThreads`, all cores by default).
///
/// What it reads besides its arguments: the HF_* variables of the hub (`HubSettings`), and a
/// digest cache in $XDG_CACHE_HOME/ru-embed (else ~/.cache/ru-embed) so that the weights are
/// hashed once, not at every start.
public final class SentenceEncoder: @unchecked Sendable {
    // @unchecked: `model`'s forward pass uses scratch buffers of its own; every use of it
    // holds `forwardLock`. Everything else is immutable after init.

    /// What was asked for (a folder or a hub id), as the stream metadata records it.
    public let modelID: String
    /// The folder the model was loaded from.
    public let folder: String
    /// The options it was made with, `precision` as it runs on this CPU (`Precision.effective`:
    /// bf16 asked for on a CPU without AVX512_BF16 reads f32 here).
    public let options: EncoderOptions
    /// The sentence-transformers model: tokenizer, prompts, encoder, pooling. Not public:
    /// its forward pass must hold `forwardLock`.
    package let model: SentenceTransformerModel
    /// The width of the vectors this encoder returns (after `truncateDimension`).
    public let dimension: Int
    private let forwardLock = Lock(())

    /// Loads a model: a folder in the sentence-transformers layout, or a hub id
    /// `org/name[@revision]`.
    public convenience init(model: String, precision: Precision = .f32) throws {
        try self.init(model: model, options: EncoderOptions(precision: precision))
    }

    /// Loads a model (a folder or a hub id) with `options`: precision, normalisation,
    /// `truncateDimension`, batch size, and how the hub is reached.
    public init(model: String, options requested: EncoderOptions) throws {
        var options = requested
        options.precision = requested.precision.effective
        if options.batchSize < 1 { throw RuEmbedError.invalidArgument("batch size \(options.batchSize): must be 1 or more") }
        if let split = options.split, let problem = split.problem {
            throw RuEmbedError.invalidArgument("split \(split.tokens):\(split.overlap): \(problem)")
        }
        let folder = try ModelLocator.resolve(model, options: options.hub)
        let loaded = try SentenceTransformerModel(folder: folder, precision: options.precision)
        var dimension = loaded.dimension
        if let t = options.truncateDimension {
            guard t >= 1 else { throw RuEmbedError.invalidArgument("truncate dimension \(t): must be 1 or more") }
            guard t <= dimension else { throw RuEmbedError.invalidArgument("--truncate-dim \(t) is more than the model's \(dimension) dimensions") }
            dimension = t
        }
        self.modelID = model
        self.folder = folder
        self.options = options
        self.model = loaded
        self.dimension = dimension
    }

    /// The tokenizer with its prompts and maximum length.
    public var tokenizer: ModelTokenizer { model.modelTokenizer }
    /// The SHA-256 of the weight files, as the stream metadata records it (`model.digest`):
    /// compare it with a stream's `shape?.modelDigest` to know that the stream's vectors come
    /// from the same weights. Hashed once per file and kept in the digest cache.
    public func modelDigest() throws -> String { try model.modelDigest() }
    /// Tokens per text, prompt and special tokens included.
    public var maxLength: Int? { model.maxLength }

    /// The text of a prompt.
    public func promptText(_ prompt: Prompt) throws -> String {
        switch prompt {
        case .modelDefault: try tokenizer.defaultPrompt()
        case .named(let name): try tokenizer.prompt(named: name)
        case .text(let text): text
        case .noPrompt: ""
        }
    }

    /// Sentence vectors for `texts`, `dimension` floats each, in order. `prompt` names one of
    /// the model's prompts ("query", "passage"); nil uses the model's default.
    public func embed(_ texts: [String], prompt: String? = nil) throws -> [[Float]] {
        try embed(texts, prompt: prompt.map(Prompt.named) ?? .modelDefault)
    }

    /// Sentence vectors for `texts` with any `Prompt`.
    public func embed(_ texts: [String], prompt: Prompt) throws -> [[Float]] {
        var vectors: [[Float]] = []
        vectors.reserveCapacity(texts.count)
        let batch = try EmbeddingBatch(encoder: self, prompt: prompt, split: nil)
        for (k, text) in texts.enumerated() {
            var text = text
            try text.withUTF8 { try batch.add(text: UnsafeRawBufferPointer($0), id: "", place: "text \(k + 1)") }
            if batch.count >= options.batchSize { try batch.run { _, vector in vectors.append(Array(vector)) } }
        }
        try batch.run { _, vector in vectors.append(Array(vector)) }
        return vectors
    }

    /// The vectors of the windows of each text (`DocumentSplit`: the text tokenized whole, its
    /// content tokens cut into windows of `split.tokens` sharing `split.overlap`, each window
    /// wrapped in the prompt's and the special tokens): one list per text, in order, with at
    /// least one vector each. `split` nil uses `options.split`; throws `.invalidArgument` when
    /// neither is set, or when a window would not fit the model's maximum length.
    public func embedDocuments(_ texts: [String], prompt: Prompt = .modelDefault, split: DocumentSplit? = nil) throws -> [[[Float]]] {
        guard let split = split ?? options.split else {
            throw RuEmbedError.invalidArgument("embedDocuments needs a DocumentSplit (the split argument or EncoderOptions.split)")
        }
        if let problem = split.problem { throw RuEmbedError.invalidArgument("split \(split.tokens):\(split.overlap): \(problem)") }
        var documents: [[[Float]]] = []
        documents.reserveCapacity(texts.count)
        let batch = try EmbeddingBatch(encoder: self, prompt: prompt, split: split)
        func run() throws {
            try batch.run { record, vector in
                if record.window == 0 { documents.append([]) }
                documents[documents.count - 1].append(Array(vector))
            }
        }
        for (k, text) in texts.enumerated() {
            var text = text
            try text.withUTF8 { try batch.add(text: UnsafeRawBufferPointer($0), id: "", place: "text \(k + 1)") }
            if batch.count >= options.batchSize { try run() }
        }
        try run()
        return documents
    }

    /// The most content tokens a window may hold with this prompt: the maximum length less the
    /// special tokens the post-processor adds and the prompt's own tokens (the prompt
    /// tokenized alone); nil when the model sets no maximum length.
    public func splitLimit(promptText: String) -> Int? {
        guard let maxLength else { return nil }
        let promptTokens = promptText.isEmpty ? 0 : model.tokenizer.encode(model.prepared(promptText)).special.count { !$0 }
        return maxLength - model.tokenizer.addedTokenCount - promptTokens
    }

    /// The metadata of a vector stream of this encoder's vectors: model id and weights digest,
    /// prompt, pooling, truncation, tokenizer digest, maximum length and precision.
    public func streamMetadata(promptText: String) throws -> StreamMetadata {
        var metadata = StreamMetadata()
        metadata["model"] = .object([("id", .string(modelID)), ("digest", .string(try model.modelDigest()))])
        metadata["pooling"] = .string(model.sentenceConfig.poolingName)
        metadata["truncate_dim"] = options.truncateDimension.map { .number(Double($0)) } ?? .null
        metadata["tokenizer_digest"] = .string(tokenizer.digest)
        metadata["max_length"] = maxLength.map { .number(Double($0)) } ?? .null
        metadata["precision"] = .string(options.precision.rawValue)
        metadata["prompt"] = .string(promptText)
        if let split = options.split {
            metadata["split"] = .object([("tokens", .number(Double(split.tokens))), ("overlap", .number(Double(split.overlap)))])
        }
        return metadata
    }

    /// A writer of this encoder's vectors as a vector stream (the format the tools read and
    /// write, docs/FORMAT.md): what `ru-embed` runs. Records go in as text or as token ids,
    /// vectors come out in input order.
    public func makeStreamEncoder(output: ByteOutput, dtype: ElementType = .f32, prompt: Prompt = .modelDefault) throws -> StreamEncoder {
        try StreamEncoder(encoder: self, output: output, dtype: dtype, prompt: prompt)
    }

    /// Runs the model on packed texts, holding the lock its scratch buffers need.
    fileprivate func forward(_ texts: [[UInt32]], skip: Int, normalize: Bool, into out: inout [Float]) {
        forwardLock.withLock { _ in
            Parallel.adoptThreadCount()
            model.embed(texts, skip: skip, normalize: normalize, into: &out)
        }
    }
}

/// Records waiting for a forward pass: tokenized, checked, then run through the model in
/// packs of at most `maxPackTokens` tokens. Shared by `embed` and `StreamEncoder`, so the
/// array API and the tool compute the same floats.
final class EmbeddingBatch {
    struct Record {
        var id: String
        var ids: [UInt32]
        var place: String
        /// The window's number within its record (0 without a split).
        var window = 0
    }

    /// Most tokens in one forward pass: bounds the activations (a batch of long texts is
    /// split), while a single longer text still goes alone.
    static let maxPackTokens = 8192

    let encoder: SentenceEncoder
    /// Windows instead of truncation (`DocumentSplit`), or nil.
    let split: DocumentSplit?
    private(set) var promptText: String
    private(set) var promptScalars: [UInt32]
    /// Leading tokens that pooling skips (the prompt's, unless the Pooling module includes it).
    private(set) var skip: Int
    private(set) var records: [Record] = []
    private let workspace = EncodeWorkspace()
    private var encoding = Encoding()
    private var scalars: [UInt32] = []
    private(set) var truncated = 0
    /// Replace invalid UTF-8 with U+FFFD instead of refusing the record; `replaced` counts them.
    var lossy = false
    private(set) var replaced = 0
    var count: Int { records.count }

    init(encoder: SentenceEncoder, prompt: Prompt, split: DocumentSplit?) throws {
        self.encoder = encoder
        self.split = split
        promptText = ""
        promptScalars = []
        skip = 0
        try setPrompt(try encoder.promptText(prompt))
    }

    /// Changes the prompt (a token stream's chunk carries its own); run the batch first.
    /// With a split, refuses windows that cannot fit the maximum length with this prompt.
    func setPrompt(_ text: String) throws {
        precondition(records.isEmpty)
        if let split, let limit = encoder.splitLimit(promptText: text), split.tokens > limit {
            throw RuEmbedError.invalidArgument("--split \(split.tokens): at most \(limit) tokens fit in a window (the model's maximum length \(encoder.maxLength!), less \(encoder.model.tokenizer.addedTokenCount) special tokens and the prompt's \(encoder.maxLength! - encoder.model.tokenizer.addedTokenCount - limit))")
        }
        promptText = text
        promptScalars = encoder.model.prepared(text).unicodeScalars.map(\.value)
        skip = encoder.model.pooledPromptTokens(text)
    }

    /// Tokenizes UTF-8 text (prompt in front, cut to the maximum length) and queues it.
    /// A long text cut to the maximum length is never held whole as scalars.
    /// `idProblem` is asked last, after the text's own checks (the stream writer's limits on ids).
    func add(text utf8: UnsafeRawBufferPointer, id: String, place: @autoclosure () -> String,
             idProblem: (String) -> String? = { _ in nil }) throws {
        let before = workspace.truncated
        // A split record is tokenized whole: its windows fit the maximum length instead.
        let maxLength = split == nil ? encoder.maxLength : nil
        // do_lower_case: the text is lowercased before the tokenizer sees it.
        let valid = encoder.model.tokenizer.encode(utf8: utf8, lowercase: encoder.model.sentenceConfig.doLowerCase,
                                                   prompt: promptScalars, lossy: lossy, replaced: &replaced,
                                                   maxLength: maxLength, workspace: workspace,
                                                   scalars: &scalars, into: &encoding)
        guard valid else { throw RuEmbedError("\(place()): invalid UTF-8") }
        if workspace.truncated != before { truncated += 1 }
        guard let split else {
            if let problem = encoder.model.problem(with: encoding.ids, skip: skip, fromText: true) ?? idProblem(id) {
                throw RuEmbedError("\(place()): \(problem)")
            }
            records.append(Record(id: id, ids: encoding.ids, place: place()))
            return
        }
        let windows = split.cut(encoding, promptScalars: promptScalars.count)
        var added: [Record] = []
        added.reserveCapacity(windows.count)
        for (k, ids) in windows.enumerated() {
            let windowID = "\(id)#\(k)"
            // The prompt's tokens next to the text may outnumber those of the prompt alone.
            if let limit = encoder.maxLength, ids.count > limit {
                throw RuEmbedError("\(place()): window \(k) has \(ids.count) tokens, more than the model's maximum length \(limit) (use a smaller --split)")
            }
            if let problem = encoder.model.problem(with: ids, skip: skip, fromText: true) ?? idProblem(windowID) {
                throw RuEmbedError("\(place()) (window \(k)): \(problem)")
            }
            added.append(Record(id: windowID, ids: ids, place: "\(place()) (window \(k))", window: k))
        }
        records += added
    }

    /// Queues token ids as they are (the prompt's tokens included, as a token stream holds them).
    func add(tokens: [UInt32], id: String, place: @autoclosure () -> String, idProblem: (String) -> String? = { _ in nil }) throws {
        if split != nil {
            throw RuEmbedError.invalidArgument("\(place()): --split cuts text records; a token stream's records are already cut to the maximum length (give ru-embed the text instead)")
        }
        if let problem = encoder.model.problem(with: tokens, skip: skip) { throw RuEmbedError("\(place()) (id \(id)): \(problem)") }
        if let problem = idProblem(id) { throw RuEmbedError("\(place()): \(problem)") }
        records.append(Record(id: id, ids: tokens, place: place()))
    }

    /// Runs the queued records through the model and hands each vector to `body`, in order
    /// (a vector is valid during the call only); the queue is then empty.
    func run(_ body: (Record, UnsafeBufferPointer<Float>) throws -> Void) throws {
        guard !records.isEmpty else { return }
        let full = encoder.model.dimension, dim = encoder.dimension
        let normalize = encoder.options.normalize, truncating = encoder.options.truncateDimension != nil
        var vectors: [Float] = []
        vectors.reserveCapacity(records.count * full)
        var start = 0
        while start < records.count {
            var end = start, packTokens = 0
            while end < records.count && (end == start || packTokens + records[end].ids.count <= EmbeddingBatch.maxPackTokens) {
                packTokens += records[end].ids.count
                end += 1
            }
            Parallel.rebalance() // other tools may have started or ended since the last pass
            encoder.forward(records[start..<end].map(\.ids), skip: skip, normalize: normalize && !truncating, into: &vectors)
            start = end
        }
        let done = records
        records.removeAll(keepingCapacity: true)
        try vectors.withUnsafeMutableBufferPointer { v in
            for (k, r) in done.enumerated() {
                let row = v.baseAddress! + k * full
                if truncating && normalize { SentenceTransformerModel.normalize(row, dim) }
                try body(r, UnsafeBufferPointer(start: row, count: dim))
            }
        }
    }
}

/// Text or token ids in, a vector stream out: `SentenceEncoder.makeStreamEncoder`. Records
/// are queued and run through the model `batchSize` at a time (or at `flush`), and written in
/// input order. A record that cannot be embedded throws an error naming it; the records
/// before it are still written when the caller `finish`es.
public final class StreamEncoder {
    /// The encoder the records run through.
    public let encoder: SentenceEncoder
    /// The stream writer underneath; `writer.records` and `writer.frames` count what is
    /// written so far.
    public let writer: VectorStreamWriter
    private let batch: EmbeddingBatch
    private var metadata: StreamMetadata
    /// Records written (with `EncoderOptions.split`, windows: one per vector), and their
    /// tokens (prompt and special tokens included).
    public private(set) var records = 0, tokens = 0
    /// Texts cut to the encoder's `maxLength` so far.
    public var truncated: Int { batch.truncated }
    /// Replace invalid UTF-8 in text records with U+FFFD instead of refusing them.
    public var lossy: Bool {
        get { batch.lossy }
        set { batch.lossy = newValue }
    }
    /// Invalid UTF-8 sequences replaced (with `lossy`).
    public var replaced: Int { batch.replaced }

    init(encoder: SentenceEncoder, output: ByteOutput, dtype: ElementType, prompt: Prompt) throws {
        guard ElementType.vectorTypes.contains(dtype) else {
            throw RuEmbedError.invalidArgument("\(dtype) is not a vector element type (f32, f16, int8 or binary)")
        }
        self.encoder = encoder
        batch = try EmbeddingBatch(encoder: encoder, prompt: prompt, split: encoder.options.split)
        metadata = try encoder.streamMetadata(promptText: batch.promptText)
        writer = VectorStreamWriter(output: output, dtype: dtype, dim: encoder.dimension,
                                    flags: encoder.options.normalize ? [.normalized] : [], metadata: metadata)
    }

    /// The prompt put in front of text records.
    public var promptText: String { batch.promptText }

    /// Queues a text record (UTF-8). `place` names it in errors, e.g. "docs.txt: line 12".
    /// With `EncoderOptions.split` the record gives one vector per window, ids `id#0`, `id#1`, ….
    public func add(id: String, text utf8: UnsafeRawBufferPointer, place: @autoclosure () -> String) throws {
        try batch.add(text: utf8, id: id, place: place(), idProblem: { writer.problem(id: $0) })
        if batch.count >= encoder.options.batchSize { try flush() }
    }

    /// Queues a text record.
    public func add(id: String, text: String, place: @autoclosure () -> String) throws {
        var text = text
        try text.withUTF8 { try add(id: id, text: UnsafeRawBufferPointer($0), place: place()) }
    }

    /// Queues a record given as token ids (a token stream's record, prompt tokens included).
    /// Refused (`.invalidArgument`) with `EncoderOptions.split`: split the text instead.
    public func add(id: String, tokens: [UInt32], place: @autoclosure () -> String) throws {
        try batch.add(tokens: tokens, id: id, place: place(), idProblem: { writer.problem(id: $0) })
        if batch.count >= encoder.options.batchSize { try flush() }
    }

    /// Sets the prompt that the next records were made with (token streams record it per
    /// chunk): the queued records are written first, and the stream's metadata changes.
    public func setPrompt(text: String) throws {
        guard text != batch.promptText || metadata["prompt"]?.stringValue != text else { return }
        try flush()
        try batch.setPrompt(text)
        metadata["prompt"] = .string(text)
        try writer.setMetadata(metadata)
    }

    /// Runs the queued records and writes their vectors through to the output.
    public func flush() throws {
        try batch.run { record, vector in
            do {
                try writer.append(id: record.id, vector: vector, place: record.place)
            } catch {
                // The records before it are written, as for any bad record; this one is not.
                try writer.finish()
                throw error
            }
            records += 1
            tokens += record.ids.count
        }
        try writer.flush()
        try writer.writer.flushOutput()
    }

    /// Writes what is queued and ends the stream (the output stays open). After an error
    /// naming a bad record, this writes the records before it, as every filter here does.
    public func finish() throws {
        try flush()
        try writer.finish()
    }
}
