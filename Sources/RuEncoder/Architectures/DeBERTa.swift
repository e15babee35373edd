import RuCompute
import RuCore
import RuTokenizer
import RuVectors
import RuHub
#if canImport(Glibc)
import Glibc
#endif

/// DeBERTa-v1 (transformers' `DebertaModel`, model_type "deberta"): the encoder behind
/// deepvk/USER-base, computed as `transformers/models/deberta/modeling_deberta.py` does, in
/// f32 with f32 accumulation, over packed tokens.
///
/// The texts of a batch are packed one after another into one [tokens × hidden] matrix (no
/// padding), so every linear layer is one GEMM over real tokens; attention runs per (text,
/// head) over the text's exact length, which makes the attention mask all ones and the
/// masked softmax a plain one.
///
/// Rearranged at load, so the forward pass below does no bookkeeping:
/// - `in_proj`'s rows come grouped per head as [q, k, v]; they are reordered into three
///   contiguous Q, K, V blocks, with the attention scale 1/sqrt(head_dim·(1 + |pos_att_type|))
///   folded into the Q rows and into `q_bias` (the fused projection gets bias [q_bias/scale, 0, v_bias]).
/// - Relative attention's position keys pos_proj(rel_embeddings) and queries
///   pos_q_proj(rel_embeddings)/scale do not depend on the text: computed once per layer.
/// - Weights go into oneDNN's layout (`LinearLayer`); the mapped f32 pages they came from are
///   dropped from memory.
package final class DebertaModel {
    package struct Config {
        package var vocabSize: Int
        package var hiddenSize: Int
        package var embeddingSize: Int
        package var layers: Int
        package var heads: Int
        package var intermediateSize: Int
        package var maxPositions: Int
        package var typeVocabSize: Int
        package var positionBiasedInput: Bool
        package var relativeAttention: Bool
        package var maxRelativePositions: Int
        package var contentToPosition: Bool
        package var positionToContent: Bool
        package var positionAttentionTypes: Int
        package var layerNormEps: Float
        package var activation: LinearEpilogue

        /// Reads config.json, refusing what this implementation does not compute.
        package init(json: JSONValue, path: String) throws {
            let modelType = json["model_type"]?.stringValue ?? "?"
            let architecture = json["architectures"]?.arrayValue?.first?.stringValue ?? "?"
            guard modelType == "deberta" else {
                throw RuEmbedError("\(path): model_type \"\(modelType)\" (architecture \(architecture)) is not supported: ru-embed runs DeBERTa-v1 (model_type \"deberta\")")
            }
            // Every number through the one rule (ConfigValues): bounds wide enough for any
            // real checkpoint, narrow enough that no product of them overflows or allocates
            // before the weights' shapes (which come from the files) have been checked.
            let v = ConfigValues(json, path: path)
            vocabSize = try v.int("vocab_size", 1...(1 << 24))
            hiddenSize = try v.int("hidden_size", 1...(1 << 16))
            embeddingSize = try v.int("embedding_size", 1...(1 << 16), default: hiddenSize)
            layers = try v.int("num_hidden_layers", 0...1024)
            heads = try v.int("num_attention_heads", 1...hiddenSize)
            intermediateSize = try v.int("intermediate_size", 1...(1 << 18))
            maxPositions = try v.int("max_position_embeddings", 1...(1 << 20), default: 512)
            typeVocabSize = try v.int("type_vocab_size", 0...(1 << 16), default: 0)
            positionBiasedInput = try v.bool("position_biased_input", default: true)
            relativeAttention = try v.bool("relative_attention", default: false)
            // transformers: a value below 1 means "max_position_embeddings".
            let maxRelative = try v.int("max_relative_positions", Int(Int32.min)...(1 << 20), default: -1)
            maxRelativePositions = maxRelative < 1 ? maxPositions : maxRelative
            // "c2p|p2c" (older configs) or ["c2p", "p2c"] (transformers 5).
            var types: [String] = []
            if let s = json["pos_att_type"]?.stringValue {
                types = s.lowercased().split(separator: "|").map { String($0.filter { $0 != " " }) }
            } else if let list = json["pos_att_type"]?.arrayValue {
                types = list.compactMap(\.stringValue)
                // A non-name would be dropped, changing the attention scale: refused instead.
                guard types.count == list.count else { throw v.error("pos_att_type", "\(JSONValue.array(list).serialized) is not a list of names") }
            } else if let other = v.value("pos_att_type") {
                throw v.error("pos_att_type", "\(other.serialized) is neither \"c2p|p2c\" nor a list of names")
            }
            for t in types where t != "c2p" && t != "p2c" {
                throw RuEmbedError("\(path): pos_att_type \"\(t)\" is not supported (c2p and p2c are)")
            }
            contentToPosition = types.contains("c2p")
            positionToContent = types.contains("p2c")
            // The scale counts pos_att_type even without relative_attention, as transformers does.
            positionAttentionTypes = types.count
            // ≤ 0 (or NaN) makes LayerNorm divide by a square root of ≤ 0: NaN vectors. An eps
            // below Float's smallest normal is 0 once converted, so it is refused too.
            layerNormEps = Float(try v.double("layer_norm_eps", default: 1e-7, bounds: "in [1e-30, 1]") { $0 >= 1e-30 && $0 <= 1 })
            let act = try v.string("hidden_act") ?? "gelu"
            switch act {
            case "gelu": activation = .geluErf
            case "gelu_new", "gelu_pytorch_tanh": activation = .geluTanh
            default: throw RuEmbedError("\(path): hidden_act \"\(act)\" is not supported (gelu, gelu_new are)")
            }
            if try v.bool("talking_head", default: false) { throw RuEmbedError("\(path): talking_head is not supported") }
            guard hiddenSize % heads == 0 else {
                throw RuEmbedError("\(path): \"hidden_size\": \(hiddenSize) is not a multiple of num_attention_heads \(heads)")
            }
        }

        package var headDim: Int { hiddenSize / heads }
    }

    struct Layer {
        let qkv: any LinearOperator          // hidden → [Q | K | V], Q pre-scaled
        let attentionOutput: any LinearOperator // accumulates into the residual
        let attentionNorm: (weight: [Float], bias: [Float])
        let intermediate: any LinearOperator // with the GELU fused
        let output: any LinearOperator       // accumulates into the residual
        let outputNorm: (weight: [Float], bias: [Float])
        let positionKeys: UnsafeMutablePointer<Float>?    // [2·span × hidden], owned
        let positionQueries: UnsafeMutablePointer<Float>?
    }

    package let config: Config
    /// The arithmetic of the encoder's linear layers (`--precision`).
    package let precision: Precision
    private let archive: SafetensorsArchive
    private let wordEmbeddings: TensorData
    private let positionEmbeddings: TensorData?
    private let tokenTypeRow: [Float]?
    private let embedProjection: (any LinearOperator)?
    private let embeddingNorm: (weight: [Float], bias: [Float])
    private let layers: [Layer]

    // Scratch buffers, grown to the largest pack seen.
    private var capacity = 0
    private var embedded: UnsafeMutablePointer<Float>? // [tokens × embeddingSize] when embed_proj is used
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
        archive = try SafetensorsArchive(folder: folder)
        let c = config
        // Checkpoints saved from a task head (DebertaForMaskedLM, …) prefix every name.
        let prefix = archive.tensors["deberta.embeddings.word_embeddings.weight"] != nil ? "deberta." : ""
        let a = archive
        func floats(_ name: String, _ shape: [Int]) throws -> TensorData { try a.floats(prefix + name, shape: shape) }
        func vector(_ name: String, _ n: Int) throws -> [Float] { try floats(name, [n]).array }
        func norm(_ name: String) throws -> (weight: [Float], bias: [Float]) {
            (try vector(name + ".weight", c.hiddenSize), try vector(name + ".bias", c.hiddenSize))
        }
        /// A Linear's weights arranged for oneDNN; the mapped pages are dropped afterwards.
        /// With `--precision int8` the encoder's layers are int8; the position projections,
        /// run once at load, stay f32 (`exact`).
        func linear(_ name: String, _ inSize: Int, _ outSize: Int, bias: Bool, _ epilogue: LinearEpilogue,
                    exact: Bool = false) throws -> any LinearOperator {
            let w = try floats(name + ".weight", [outSize, inSize])
            let b = bias ? try floats(name + ".bias", [outSize]) : nil
            let layer = makeLinear(exact ? .f32 : precision, weights: w.pointer, bias: b?.pointer,
                                   inputSize: inSize, outputSize: outSize, epilogue: epilogue)
            a.release(w.info)
            return layer
        }

        wordEmbeddings = try floats("embeddings.word_embeddings.weight", [c.vocabSize, c.embeddingSize])
        positionEmbeddings = c.positionBiasedInput ? try floats("embeddings.position_embeddings.weight", [c.maxPositions, c.embeddingSize]) : nil
        tokenTypeRow = c.typeVocabSize > 0
            ? Array(try floats("embeddings.token_type_embeddings.weight", [c.typeVocabSize, c.embeddingSize]).array[0..<c.embeddingSize])
            : nil
        embedProjection = c.embeddingSize != c.hiddenSize
            ? try linear("embeddings.embed_proj", c.embeddingSize, c.hiddenSize, bias: false, .none) : nil
        embeddingNorm = try norm("embeddings.LayerNorm")

        let h = c.hiddenSize, d = c.headDim
        let scale = (Float(d) * Float(1 + c.positionAttentionTypes)).squareRoot()
        let span = c.maxRelativePositions
        let relativeTable = c.relativeAttention ? try floats("encoder.rel_embeddings.weight", [2 * span, h]) : nil
        var built: [Layer] = []
        // One buffer for every layer's regrouped in_proj (each layer overwrites all of it):
        // a fresh 7 MB array per layer cost page faults and zeroing at every load. Made once
        // the first in_proj's shape is checked: its size then comes from the file, not from
        // a hidden_size in config.json that nothing backs.
        var regrouped: [Float] = []
        for l in 0..<c.layers {
            let p = "encoder.layer.\(l)."
            // in_proj rows per head are [q_h, k_h, v_h]; regroup into Q, K, V blocks, Q scaled.
            let inProj = try floats(p + "attention.self.in_proj.weight", [3 * h, h])
            if regrouped.isEmpty { regrouped = [Float](repeating: 0, count: 3 * h * h) }
            let qBias = try vector(p + "attention.self.q_bias", h)
            let vBias = try vector(p + "attention.self.v_bias", h)
            var fusedBias = [Float](repeating: 0, count: 3 * h)
            let queryFactor: Float = 1 / scale
            regrouped.withUnsafeMutableBufferPointer { regrouped in
                let out = regrouped.baseAddress!
                for head in 0..<c.heads {
                    for part in 0..<3 {
                        for i in 0..<d {
                            let to = out + (part * h + head * d + i) * h
                            to.update(from: inProj.pointer + (head * 3 * d + part * d + i) * h, count: h)
                            if part == 0 { for j in 0..<h { to[j] *= queryFactor } }
                        }
                    }
                }
            }
            for i in 0..<h { fusedBias[i] = qBias[i] / scale; fusedBias[2 * h + i] = vBias[i] }
            let qkvLayer = regrouped.withUnsafeBufferPointer { w in
                fusedBias.withUnsafeBufferPointer { b in
                    makeLinear(precision, weights: w.baseAddress!, bias: b.baseAddress!, inputSize: h, outputSize: 3 * h, epilogue: .none)
                }
            }
            archive.release(inProj.info)

            var positionKeys: UnsafeMutablePointer<Float>? = nil, positionQueries: UnsafeMutablePointer<Float>? = nil
            if let relativeTable {
                if c.contentToPosition {
                    let proj = try linear(p + "attention.self.pos_proj", h, h, bias: false, .none, exact: true)
                    positionKeys = .allocate(capacity: 2 * span * h)
                    proj.run(rows: 2 * span, input: relativeTable.pointer, output: positionKeys!)
                }
                if c.positionToContent {
                    let proj = try linear(p + "attention.self.pos_q_proj", h, h, bias: true, .none, exact: true)
                    let out = UnsafeMutablePointer<Float>.allocate(capacity: 2 * span * h)
                    proj.run(rows: 2 * span, input: relativeTable.pointer, output: out)
                    for k in 0..<2 * span * h { out[k] /= scale }
                    positionQueries = out
                }
            }
            built.append(Layer(
                qkv: qkvLayer,
                attentionOutput: try linear(p + "attention.output.dense", h, h, bias: true, .accumulate),
                attentionNorm: try norm(p + "attention.output.LayerNorm"),
                intermediate: try linear(p + "intermediate.dense", h, c.intermediateSize, bias: true, c.activation),
                output: try linear(p + "output.dense", c.intermediateSize, h, bias: true, .accumulate),
                outputNorm: try norm(p + "output.LayerNorm"),
                positionKeys: positionKeys, positionQueries: positionQueries))
        }
        layers = built
    }

    deinit {
        for buffer in [embedded, hidden, qkv, context, inner] { buffer?.deallocate() }
        for layer in layers { layer.positionKeys?.deallocate(); layer.positionQueries?.deallocate() }
    }

    private func reserve(_ tokens: Int) {
        guard tokens > capacity else { return }
        for buffer in [embedded, hidden, qkv, context, inner] { buffer?.deallocate() }
        let n = max(tokens, capacity * 2)
        let c = config
        embedded = embedProjection != nil ? .allocate(capacity: n * c.embeddingSize) : nil
        hidden = .allocate(capacity: n * c.hiddenSize)
        qkv = .allocate(capacity: n * 3 * c.hiddenSize)
        context = .allocate(capacity: n * c.hiddenSize)
        inner = .allocate(capacity: n * c.intermediateSize)
        capacity = n
    }

    /// The last hidden states of every token of every text, packed: [Σ counts × hidden],
    /// valid until the next call. Token ids must be < vocabSize and, with absolute positions,
    /// a text at most maxPositions long (the caller checks both, to name the record).
    @_optimize(speed)
    package func forward(_ texts: [[UInt32]]) -> UnsafePointer<Float> {
        let c = config
        let h = c.hiddenSize, e = c.embeddingSize
        var spans: [(start: Int, count: Int)] = []
        var tokens = 0
        for t in texts { spans.append((tokens, t.count)); tokens += t.count }
        reserve(max(tokens, 1))
        let hidden = hidden!, qkv = qkv!, context = context!, inner = inner!

        // Embeddings: word (+ absolute position) (+ token type 0), embed_proj, LayerNorm.
        let target = embedded ?? hidden
        let words = wordEmbeddings.pointer, positions = positionEmbeddings?.pointer
        for (t, ids) in texts.enumerated() {
            for (i, id) in ids.enumerated() {
                let row = target + (spans[t].start + i) * e
                row.update(from: words + Int(id) * e, count: e)
                if let positions { for j in 0..<e { row[j] += positions[i * e + j] } }
                if let tokenTypeRow { for j in 0..<e { row[j] += tokenTypeRow[j] } }
            }
        }
        guard tokens > 0 else { return UnsafePointer(hidden) }
        if let embedProjection { embedProjection.run(rows: tokens, input: target, output: hidden) }
        EncoderKernels.layerNorm(rows: tokens, dim: h, hidden, weight: embeddingNorm.weight, bias: embeddingNorm.bias, eps: c.layerNormEps)

        for layer in layers {
            layer.qkv.run(rows: tokens, input: hidden, output: qkv)
            let relative: EncoderKernels.RelativeTerms? = c.relativeAttention
                ? EncoderKernels.RelativeTerms(positionKeys: layer.positionKeys.map { UnsafePointer($0) },
                                               positionQueries: layer.positionQueries.map { UnsafePointer($0) },
                                               span: c.maxRelativePositions)
                : nil
            EncoderKernels.attention(tokens: tokens, hidden: h, heads: c.heads, texts: spans,
                                     qkv: qkv, context: context, relative: relative)
            layer.attentionOutput.run(rows: tokens, input: context, output: hidden) // hidden += ctx·W + b
            EncoderKernels.layerNorm(rows: tokens, dim: h, hidden, weight: layer.attentionNorm.weight, bias: layer.attentionNorm.bias, eps: c.layerNormEps)
            // inner = GELU(hidden·W + b); hidden += inner·W + b
            runFeedForward(layer.intermediate, layer.output, rows: tokens, input: hidden, between: inner, output: hidden)
            EncoderKernels.layerNorm(rows: tokens, dim: h, hidden, weight: layer.outputNorm.weight, bias: layer.outputNorm.bias, eps: c.layerNormEps)
        }
        return UnsafePointer(hidden)
    }
}
