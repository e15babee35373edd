import RuCompute
import RuCore
#if canImport(Glibc)
import Glibc
#endif

/// What the sentence-level code needs to know of an encoder's configuration, whatever the
/// architecture.
package protocol EncoderConfiguration {
    var hiddenSize: Int { get }
    var vocabSize: Int { get }
    /// The most tokens one text may have (absolute position embeddings end there), or nil
    /// when positions are relative only.
    var positionLimit: Int? { get }
}

/// A transformer encoder over packed texts (all texts of a batch one after another, no
/// padding): token ids in, the last hidden state of every token out.
package protocol TransformerEncoder: AnyObject {
    associatedtype Configuration: EncoderConfiguration
    var config: Configuration { get }
    /// The arithmetic of the encoder's linear layers (`--precision`).
    var precision: Precision { get }
    /// The last hidden states of every token of every text, packed: [Σ counts × hidden],
    /// valid until the next call. Token ids must be < vocabSize and a text at most
    /// positionLimit long (the caller checks both, to name the record).
    func forward(_ texts: [[UInt32]]) -> UnsafePointer<Float>
}

extension DebertaModel.Config: EncoderConfiguration {
    package var positionLimit: Int? { positionBiasedInput ? maxPositions : nil }
}

extension DebertaModel: TransformerEncoder {}

/// The encoder of a model folder, chosen by config.json's model_type.
package func loadEncoder(folder: String, precision: Precision) throws -> any TransformerEncoder {
    let configPath = folder + "/config.json"
    guard access(configPath, R_OK) == 0 else { throw RuEmbedError("\(folder): no config.json") }
    let json = try JSONValue.read(configPath)
    let modelType = json["model_type"]?.stringValue ?? "?"
    switch modelType {
    case "deberta":
        return try DebertaModel(folder: folder, precision: precision)
    case "bert", "roberta", "xlm-roberta":
        return try BertModel(folder: folder, precision: precision)
    default:
        let architecture = json["architectures"]?.arrayValue?.first?.stringValue ?? "?"
        throw RuEmbedError("\(configPath): model_type \"\(modelType)\" (architecture \(architecture)) is not supported: ru-embed runs model_type deberta (DeBERTa-v1), bert, roberta and xlm-roberta")
    }
}

/// The activation between a feed-forward block's two layers, from config.json's hidden_act.
/// GELU variants are fused into the first layer's GEMM; ReLU runs as a pass of its own.
enum FeedForwardActivation {
    case fused(LinearEpilogue)
    case relu

    init(_ name: String, path: String) throws {
        switch name {
        case "gelu", "gelu_python": self = .fused(.geluErf)
        // gelu_fast is the same tanh formula as gelu_new, written differently.
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": self = .fused(.geluTanh)
        case "relu": self = .relu
        default:
            throw RuEmbedError("\(path): hidden_act \"\(name)\" is not supported (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu are)")
        }
    }

    var epilogue: LinearEpilogue {
        if case .fused(let e) = self { return e }
        return .none
    }
}

/// A feed-forward block: output += second(act(first(input))). With a fused activation this is
/// `runFeedForward` (the int8 pair may run chunk-fused); ReLU goes through `between`.
func runFeedForward(_ first: any LinearOperator, _ second: any LinearOperator, activation: FeedForwardActivation,
                    rows: Int, width: Int, input: UnsafePointer<Float>, between: UnsafeMutablePointer<Float>,
                    output: UnsafeMutablePointer<Float>) {
    switch activation {
    case .fused:
        runFeedForward(first, second, rows: rows, input: input, between: between, output: output)
    case .relu:
        first.run(rows: rows, input: input, output: between)
        for k in 0..<rows * width where between[k] < 0 { between[k] = 0 } // NaN stays NaN, as in torch
        second.run(rows: rows, input: between, output: output)
    }
}
