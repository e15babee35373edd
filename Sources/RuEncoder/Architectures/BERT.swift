import RuCompute
import RuCore
#if canImport(Glibc)
import Glibc
#endif

/// The BERT family: transformers' `BertModel` (model_type "bert": LaBSE, rubert, e5 and
/// others), `RobertaModel` ("roberta") and `XLMRobertaModel` ("xlm-roberta": multilingual-e5,
/// …), computed as `modeling_bert.py` / `modeling_xlm_roberta.py` do, in f32 with f32
/// accumulation, over packed tokens like `DebertaModel` (one GEMM per linear layer over real
/// tokens, attention per text and head through the same kernels, no padding, no mask).
///
/// The two kinds differ only in their position ids:
/// - BERT: 0, 1, 2, … within each text.
/// - RoBERTa / XLM-R: `pad_token_id + 1` for the first token, counting non-pad tokens only;
///   a pad token itself gets `pad_token_id` (transformers' create_position_ids_from_input_ids),
///   so a text may be at most max_position_embeddings − pad_token_id − 1 tokens.
/// Token types are all 0 (sentence-transformers passes token_type_ids of zeros, or none).
///
/// Rearranged at load: query, key and value become one [3·hidden × hidden] layer with
/// 1/sqrt(head_dim) folded into the query rows and bias, as the attention kernels expect.
package final class BertModel {
    package struct Config: EncoderConfiguration {
        package enum Positions { case bert, roberta(padID: Int) }
        package var modelType: String
        package var vocabSize: Int
        package var hiddenSize: Int
        package var layers: Int
        package var heads: Int
        package var intermediateSize: Int
        package var maxPositions: Int
        package var typeVocabSize: Int
        package var positions: Positions
        package var layerNormEps: Float
        var activation: FeedForwardActivation

        /// Reads config.json, refusing what this implementation does not compute. Every number
        /// is bounded before anything is allocated; shapes are then checked against the files.
        package init(json: JSONValue, path: String) throws {
            modelType = json["model_type"]?.stringValue ?? "?"
            let architecture = json["architectures"]?.arrayValue?.first?.stringValue ?? "?"
            guard ["bert", "roberta", "xlm-roberta"].contains(modelType) else {
                throw RuEmbedError("\(path): model_type \"\(modelType)\" (architecture \(architecture)) is not a BERT-family encoder (bert, roberta, xlm-roberta)")
            }
            let v = ConfigValues(json, path: path)
            vocabSize = try v.int("vocab_size", 1...(1 << 24))
            hiddenSize = try v.int("hidden_size", 1...(1 << 16))
            layers = try v.int("num_hidden_layers", 0...1024)
            heads = try v.int("num_attention_heads", 1...hiddenSize)
            intermediateSize = try v.int("intermediate_size", 1...(1 << 18))
            maxPositions = try v.int("max_position_embeddings", 1...(1 << 20), default: 512)
            typeVocabSize = try v.int("type_vocab_size", 0...(1 << 16), default: 2)
            if modelType == "bert" {
                positions = .bert
            } else {
                let pad = try v.int("pad_token_id", 0...(1 << 20), default: 1)
                guard pad + 1 < maxPositions else {
                    throw v.error("pad_token_id", "\(pad) leaves no position: positions start at pad_token_id + 1 and max_position_embeddings is \(maxPositions)")
                }
                positions = .roberta(padID: pad)
            }
            // Only absolute positions are computed; relative_key(_query) adds a distance table.
            if let type = try v.string("position_embedding_type"), type != "absolute" {
                throw v.error("position_embedding_type", "\"\(type)\" is not supported (absolute is)")
            }
            if try v.bool("is_decoder", default: false) { throw v.error("is_decoder", "a decoder is not a sentence encoder") }
            // ≤ 0 (or NaN) makes LayerNorm divide by a square root of ≤ 0: NaN vectors.
            layerNormEps = Float(try v.double("layer_norm_eps", default: 1e-12, bounds: "in [1e-30, 1]") { $0 >= 1e-30 && $0 <= 1 })
            activation = try FeedForwardActivation(try v.string("hidden_act") ?? "gelu", path: path)
            guard hiddenSize % heads == 0 else {
                throw RuEmbedError("\(path): \"hidden_size\": \(hiddenSize) is not a multiple of num_attention_heads \(heads)")
            }
        }

        package var headDim: Int { hiddenSize / heads }

        /// The most tokens of one text: RoBERTa's positions begin after pad_token_id.
        package var positionLimit: Int? {
            switch positions {
            case .bert: maxPositions
            case .roberta(let pad): maxPositions - pad - 1
            }
        }
    }

    struct Layer {
        let qkv: any LinearOperator          // hidden → [Q | K | V], Q pre-scaled
        let attentionOutput: any LinearOperator // accumulates into the residual
        let attentionNorm: (weight: [Float], bias: [Float])
        let intermediate: any LinearOperator // with a GELU fused (ReLU runs apart)
        let output: any LinearOperator       // accumulates into the residual
        let outputNorm: (weight: [Float], bias: [Float])
    }

    package let config: Config
    package let precision: Precision
    private let archive: SafetensorsArchive
    private let wordEmbeddings: TensorData
    private let positionEmbeddings: TensorData
    private let tokenTypeRow: [Float]?
    private let embeddingNorm: (weight: [Float], bias: [Float])
    private let layers: [Layer]

    // Scratch buffers, grown to the largest pack seen.
    private var capacity = 0
    private var hidden: UnsafeMutablePointer<Float>?
    private var qkv: UnsafeMutablePointer<Float>?
    private var context: UnsafeMutablePointer<Float>?
    private var inner: UnsafeMutablePointer<Float>?

    @_optimize(speed)
    package init(folder: String, precision: Precision = .f32) throws {
        self.precision = precision
        let configPath = folder + "/config.json"
        guard access(configPath, R_OK) == 0 else { throw RuEmbedError("\(folder): no config.json") }
        config = try Config(json: JSONValue.read(configPath), path: configPath)
        let a = try SafetensorsArchive(folder: folder)
        archive = a
        let c = config
        // A checkpoint saved from a task head (BertForMaskedLM, XLMRobertaForSequenceClassification,
        // …) prefixes the encoder's names with the base model's name; its head tensors are ignored.
        let prefix = ["", "bert.", "roberta."].first { a.tensors[$0 + "embeddings.word_embeddings.weight"] != nil } ?? ""
        func floats(_ name: String, _ shape: [Int]) throws -> TensorData { try a.floats(prefix + name, shape: shape) }
        func vector(_ name: String, _ n: Int) throws -> [Float] { try floats(name, [n]).array }
        func norm(_ name: String) throws -> (weight: [Float], bias: [Float]) {
            (try vector(name + ".weight", c.hiddenSize), try vector(name + ".bias", c.hiddenSize))
        }
        /// A Linear's weights arranged for oneDNN (or quantised); the mapped pages are dropped.
        func linear(_ name: String, _ inSize: Int, _ outSize: Int, _ epilogue: LinearEpilogue) throws -> any LinearOperator {
            let w = try floats(name + ".weight", [outSize, inSize])
            let b = try floats(name + ".bias", [outSize])
            let layer = makeLinear(precision, weights: w.pointer, bias: b.pointer, inputSize: inSize, outputSize: outSize, epilogue: epilogue)
            a.release(w.info)
            return layer
        }

        let h = c.hiddenSize, d = c.headDim
        wordEmbeddings = try floats("embeddings.word_embeddings.weight", [c.vocabSize, h])
        positionEmbeddings = try floats("embeddings.position_embeddings.weight", [c.maxPositions, h])
        tokenTypeRow = c.typeVocabSize > 0
            ? Array(try floats("embeddings.token_type_embeddings.weight", [c.typeVocabSize, h]).array[0..<h])
            : nil
        embeddingNorm = try norm("embeddings.LayerNorm")

        let scale = Float(d).squareRoot()
        var built: [Layer] = []
        // One buffer for every layer's fused Q|K|V weights, made once the first query
        // weight's shape is checked (its size then comes from the file).
        var fused: [Float] = []
        for l in 0..<c.layers {
            let p = "encoder.layer.\(l)."
            let parts = ["query", "key", "value"]
            let weights = try parts.map { try floats(p + "attention.self.\($0).weight", [h, h]) }
            let biases = try parts.map { try vector(p + "attention.self.\($0).bias", h) }
            if fused.isEmpty { fused = [Float](repeating: 0, count: 3 * h * h) }
            var fusedBias = [Float](repeating: 0, count: 3 * h)
            fused.withUnsafeMutableBufferPointer { out in
                for (k, w) in weights.enumerated() {
                    let to = out.baseAddress! + k * h * h
                    to.update(from: w.pointer, count: h * h)
                    // softmax(q·kᵀ/sqrt(d)) = softmax((q/sqrt(d))·kᵀ): the scale goes into Q.
                    if k == 0 { for j in 0..<h * h { to[j] /= scale } }
                }
            }
            for i in 0..<h {
                fusedBias[i] = biases[0][i] / scale
                fusedBias[h + i] = biases[1][i]
                fusedBias[2 * h + i] = biases[2][i]
            }
            let qkvLayer = fused.withUnsafeBufferPointer { w in
                fusedBias.withUnsafeBufferPointer { b in
                    makeLinear(precision, weights: w.baseAddress!, bias: b.baseAddress!, inputSize: h, outputSize: 3 * h, epilogue: .none)
                }
            }
            for w in weights { a.release(w.info) }
            built.append(Layer(
                qkv: qkvLayer,
                attentionOutput: try linear(p + "attention.output.dense", h, h, .accumulate),
                attentionNorm: try norm(p + "attention.output.LayerNorm"),
                intermediate: try linear(p + "intermediate.dense", h, c.intermediateSize, c.activation.epilogue),
                output: try linear(p + "output.dense", c.intermediateSize, h, .accumulate),
                outputNorm: try norm(p + "output.LayerNorm")))
        }
        layers = built
    }

    deinit {
        for buffer in [hidden, qkv, context, inner] { buffer?.deallocate() }
    }

    private func reserve(_ tokens: Int) {
        guard tokens > capacity else { return }
        for buffer in [hidden, qkv, context, inner] { buffer?.deallocate() }
        let n = max(tokens, capacity * 2)
        let c = config
        hidden = .allocate(capacity: n * c.hiddenSize)
        qkv = .allocate(capacity: n * 3 * c.hiddenSize)
        context = .allocate(capacity: n * c.hiddenSize)
        inner = .allocate(capacity: n * c.intermediateSize)
        capacity = n
    }

    /// The last hidden states of every token of every text, packed: [Σ counts × hidden],
    /// valid until the next call. Token ids must be < vocabSize and a text at most
    /// `positionLimit` tokens (the caller checks both, to name the record).
    @_optimize(speed)
    package func forward(_ texts: [[UInt32]]) -> UnsafePointer<Float> {
        let c = config
        let h = c.hiddenSize
        var spans: [(start: Int, count: Int)] = []
        var tokens = 0
        for t in texts { spans.append((tokens, t.count)); tokens += t.count }
        reserve(max(tokens, 1))
        let hidden = hidden!, qkv = qkv!, context = context!, inner = inner!

        // Embeddings: word + position + token type 0, then LayerNorm.
        let words = wordEmbeddings.pointer, positions = positionEmbeddings.pointer
        for (t, ids) in texts.enumerated() {
            var nonPad = 0
            for (i, id) in ids.enumerated() {
                let position: Int
                switch c.positions {
                case .bert: position = i
                case .roberta(let pad):
                    if Int(id) == pad { position = pad } else { nonPad += 1; position = pad + nonPad }
                }
                let row = hidden + (spans[t].start + i) * h
                row.update(from: words + Int(id) * h, count: h)
                for j in 0..<h { row[j] += positions[position * h + j] }
                if let tokenTypeRow { for j in 0..<h { row[j] += tokenTypeRow[j] } }
            }
        }
        guard tokens > 0 else { return UnsafePointer(hidden) }
        EncoderKernels.layerNorm(rows: tokens, dim: h, hidden, weight: embeddingNorm.weight, bias: embeddingNorm.bias, eps: c.layerNormEps)

        // Post-LayerNorm layers, as BERT: x = LN(x + attn(x)); x = LN(x + ffn(x)).
        for layer in layers {
            layer.qkv.run(rows: tokens, input: hidden, output: qkv)
            EncoderKernels.attention(tokens: tokens, hidden: h, heads: c.heads, texts: spans,
                                     qkv: qkv, context: context, relative: nil)
            layer.attentionOutput.run(rows: tokens, input: context, output: hidden) // hidden += ctx·W + b
            EncoderKernels.layerNorm(rows: tokens, dim: h, hidden, weight: layer.attentionNorm.weight, bias: layer.attentionNorm.bias, eps: c.layerNormEps)
            runFeedForward(layer.intermediate, layer.output, activation: c.activation, rows: tokens,
                           width: c.intermediateSize, input: hidden, between: inner, output: hidden)
            EncoderKernels.layerNorm(rows: tokens, dim: h, hidden, weight: layer.outputNorm.weight, bias: layer.outputNorm.bias, eps: c.layerNormEps)
        }
        return UnsafePointer(hidden)
    }
}

extension BertModel: TransformerEncoder {}
