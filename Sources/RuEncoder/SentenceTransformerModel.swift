import RuCompute
import RuCore
import RuTokenizer
import RuVectors
import RuHub
import Crypto
#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// A sentence-transformers model folder ready to encode: tokenizer, prompts, maximum length,
/// the encoder (DeBERTa-v1, BERT, RoBERTa, XLM-RoBERTa by config.json's model_type), pooling,
/// Dense modules and normalisation, as `SentenceTransformer(folder).encode`.
package final class SentenceTransformerModel {
    package let folder: String
    package let modelTokenizer: ModelTokenizer
    package let sentenceConfig: SentenceModelConfig
    package let model: any TransformerEncoder
    /// The Dense modules after pooling, in order.
    package let dense: [DenseModule]
    package var tokenizer: Tokenizer { modelTokenizer.tokenizer }
    /// The width of pooling's output: hidden size times the number of pooling modes.
    package var pooledDimension: Int { model.config.hiddenSize * sentenceConfig.pooling.count }
    /// The vector width: the last Dense module's output, else pooling's.
    package var dimension: Int { dense.last?.outputSize ?? pooledDimension }
    /// Tokens per text, prompt and special tokens included (sentence-transformers' max_seq_length).
    package let maxLength: Int?

    package init(folder: String, precision: Precision = .f32) throws {
        self.folder = folder
        let sentenceConfig = try SentenceModelConfig.load(folder: folder)
        self.sentenceConfig = sentenceConfig
        // The tokenizer (JSON, merges, digest) and the encoder (weights arranged or
        // quantised) take about as long as each other to load and need nothing from each
        // other: the tokenizer loads on a second thread.
        final class Loaded: @unchecked Sendable { var tokenizer: Result<ModelTokenizer, Error>? }
        let loaded = Loaded()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            loaded.tokenizer = Result { try ModelTokenizer.load(modelFolder: folder) }
            done.signal()
        }
        // The encoder loads on this thread alone: OpenMP threads woken for its weight
        // reorders would spin afterwards on the core the tokenizer is using.
        let encoder = Parallel.serially {
            Result { try loadEncoder(folder: sentenceConfig.transformerFolder, precision: precision) }
        }
        done.wait()
        modelTokenizer = try loaded.tokenizer!.get()
        model = try encoder.get()
        var width = model.config.hiddenSize * sentenceConfig.pooling.count
        var dense: [DenseModule] = []
        for folder in sentenceConfig.denseFolders {
            dense.append(try DenseModule(folder: folder, inputSize: width))
            width = dense.last!.outputSize
        }
        self.dense = dense
        var length = modelTokenizer.maxLength
        // Absolute position embeddings end at max_position_embeddings (RoBERTa's after
        // pad_token_id), whatever the tokenizer says.
        if let limit = model.config.positionLimit { length = min(length ?? limit, limit) }
        maxLength = length
    }

    /// The text as the tokenizer gets it: lowercased when sentence_bert_config.json says
    /// do_lower_case (sentence-transformers puts a Lowercase normalizer in front of the
    /// tokenizer's own, so prompt and text are both lowercased).
    package func prepared(_ text: String) -> String {
        sentenceConfig.doLowerCase ? InputLowercasing.lower(text) : text
    }

    /// How many leading tokens pooling skips for this prompt: none when the Pooling module
    /// includes the prompt; otherwise the prompt's own token count minus a trailing special
    /// token, measured on the prompt alone as sentence-transformers does.
    package func pooledPromptTokens(_ prompt: String) -> Int {
        guard !sentenceConfig.includePrompt, !prompt.isEmpty else { return 0 }
        let ids = tokenizer.encode(prepared(prompt), maxLength: maxLength).ids
        guard let last = ids.last else { return 0 }
        return tokenizer.isSpecial(last) ? ids.count - 1 : ids.count
    }

    /// Why `ids` cannot go through the model, or nil when they can. `skip` is the prompt's
    /// pooled-out tokens (`pooledPromptTokens`); `fromText` says the ids were just made by
    /// this folder's own tokenizer (not read from a token stream), which changes what an id
    /// outside the vocabulary means.
    package func problem(with ids: [UInt32], skip: Int = 0, fromText: Bool = false) -> String? {
        let c = model.config
        // Zero tokens have no vector in any pooling mode (CLS has no first token, mean
        // divides by zero, max is −inf): sentence-transformers cannot embed them either.
        if ids.count <= skip {
            return ids.isEmpty
                ? "no tokens: an empty record has no vector (the tokenizer adds no special tokens)"
                : "no tokens after the prompt's \(skip): nothing to pool"
        }
        if let bad = ids.first(where: { Int($0) >= c.vocabSize }) {
            return fromText
                ? "token id \(bad) is outside the model's vocabulary (\(c.vocabSize) tokens): the model folder's tokenizer.json does not fit its config.json vocab_size"
                : "token id \(bad) is outside the model's vocabulary (\(c.vocabSize) tokens): was the stream made with another tokenizer?"
        }
        if let limit = c.positionLimit, ids.count > limit {
            return "\(ids.count) tokens, more than the model's \(limit) positions (tokenize with --max-length \(limit))"
        }
        return nil
    }

    /// Sentence vectors for texts given as token ids (`dimension` floats per text, appended
    /// to `out`), pooled skipping `skip` leading tokens, L2-normalised when `normalize`.
    package func embed(_ texts: [[UInt32]], skip: Int = 0, normalize: Bool, into out: inout [Float]) {
        let dim = dimension
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: dim * texts.count))
        let states = model.forward(texts)
        var spans: [(start: Int, count: Int)] = []
        var tokens = 0
        for t in texts { spans.append((tokens, t.count)); tokens += t.count }
        out.withUnsafeMutableBufferPointer { o in
            if dense.isEmpty {
                EncoderKernels.pool(states: states, dim: model.config.hiddenSize, texts: spans,
                                    modes: sentenceConfig.pooling, skip: skip, into: o.baseAddress! + start)
            } else {
                // Pooled vectors, then each Dense module in turn, the last one into `out`.
                var current = [Float](repeating: 0, count: pooledDimension * texts.count)
                current.withUnsafeMutableBufferPointer {
                    EncoderKernels.pool(states: states, dim: model.config.hiddenSize, texts: spans,
                                        modes: sentenceConfig.pooling, skip: skip, into: $0.baseAddress!)
                }
                for (k, module) in dense.enumerated() {
                    if k == dense.count - 1 {
                        current.withUnsafeBufferPointer { module.run(rows: texts.count, input: $0.baseAddress!, output: o.baseAddress! + start) }
                    } else {
                        var next = [Float](repeating: 0, count: module.outputSize * texts.count)
                        current.withUnsafeBufferPointer { c in
                            next.withUnsafeMutableBufferPointer { module.run(rows: texts.count, input: c.baseAddress!, output: $0.baseAddress!) }
                        }
                        current = next
                    }
                }
            }
            if normalize {
                for t in 0..<texts.count { SentenceTransformerModel.normalize(o.baseAddress! + start + t * dim, dim) }
            }
        }
    }

    /// x ← x / max(‖x‖, 1e-12), as torch.nn.functional.normalize.
    package static func normalize(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        var sum: Double = 0
        for j in 0..<n { sum += Double(x[j]) * Double(x[j]) }
        let norm = max(Float(sum.squareRoot()), 1e-12)
        for j in 0..<n { x[j] /= norm }
    }

    /// The model's digest: SHA-256 over config.json's SHA-256 followed by the SHA-256 of every
    /// 64 MiB piece of every weights file, in name order (a hash tree, so no file is read into
    /// memory whole). Hashing 340 MB takes seconds, so the result is kept in `DigestCache`.
    package func modelDigest() throws -> String {
        var files = [sentenceConfig.transformerFolder + "/config.json"]
        let archive = try SafetensorsArchive.weightFiles(folder: sentenceConfig.transformerFolder)
        files += archive.sorted()
        // Dense heads change the vectors as much as the encoder's weights do.
        for folder in sentenceConfig.denseFolders { files += [folder + "/config.json", folder + "/model.safetensors"] }
        let key = try DigestCache.key(files), cache = DigestCache.standard
        if let known = cache.lookup(key) { return known }
        var pieces: [UInt8] = []
        for f in files {
            let fd = open(f, O_RDONLY)
            guard fd >= 0 else { throw RuEmbedError.io("\(f): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            var piece = [UInt8](repeating: 0, count: 64 << 20)
            while true {
                var filled = 0
                while filled < piece.count {
                    let n = piece.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
                    if n < 0 && errno == EINTR { continue }
                    guard n >= 0 else { throw RuEmbedError.io("\(f): \(String(cString: strerror(errno)))") }
                    if n == 0 { break }
                    filled += n
                }
                if filled == 0 { break }
                pieces += piece.withUnsafeBytes { SHA256.hash(data: UnsafeRawBufferPointer(rebasing: $0[0..<filled])) }
                if filled < piece.count { break }
            }
        }
        let digest = hexString(SHA256.hash(data: pieces))
        cache.store(key, digest)
        return digest
    }
}
