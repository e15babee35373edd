import RuCompute
import RuCore
import RuTokenizer
import RuVectors
import RuHub
#if canImport(Glibc)
import Glibc
#endif

/// What a sentence-transformers folder says around the transformer itself: where the
/// transformer lives, how it pools, whether it normalises.
///
/// Reads both key styles: sentence-transformers 2.x (USER-base: module types
/// `sentence_transformers.models.Pooling`, `pooling_mode_mean_tokens: true`,
/// `word_embedding_dimension`) and 6.x (`sentence_transformers.sentence_transformer.modules.pooling.Pooling`,
/// `pooling_mode: "mean"`, `embedding_dimension`). A folder without modules.json is a plain
/// transformers model: mean pooling over all tokens, as sentence-transformers would build it.
package struct SentenceModelConfig: Sendable {
    /// The folder with config.json and the weights (modules.json's Transformer path).
    package var transformerFolder: String
    /// Pooling modes in the order sentence-transformers concatenates them.
    package var pooling: [PoolingMode] = [.mean]
    package var includePrompt = true
    package var hasNormalizeModule = false
    /// The folders of the Dense modules after pooling, in order (LaBSE's Tanh head).
    package var denseFolders: [String] = []
    /// sentence_bert_config.json's do_lower_case: the text (prompt included) is lowercased
    /// before tokenization, as sentence-transformers' Transformer module does.
    package var doLowerCase = false
    /// Where the settings came from, for messages: "modules.json" or "default".
    package var source = "default"

    package static func load(folder: String) throws -> SentenceModelConfig {
        var config = SentenceModelConfig(transformerFolder: folder)
        let modulesPath = folder + "/modules.json"
        guard access(modulesPath, R_OK) == 0 else { return config }
        config.source = "modules.json"
        guard let modules = try JSONValue.read(modulesPath).arrayValue else {
            throw RuEmbedError("\(modulesPath): not a list of modules")
        }
        var sawTransformer = false, sawPooling = false
        for module in modules {
            guard let type = module["type"]?.stringValue else { throw RuEmbedError("\(modulesPath): a module without \"type\"") }
            let path = try ConfigValues(module, path: modulesPath).string("path") ?? ""
            let sub = path.isEmpty ? folder : folder + "/" + path
            switch type.split(separator: ".").last.map(String.init) ?? type {
            case "Transformer":
                guard !sawTransformer else { throw RuEmbedError("\(modulesPath): more than one Transformer module") }
                sawTransformer = true
                config.transformerFolder = sub
            case "Pooling":
                guard sawTransformer, !sawPooling else { throw RuEmbedError("\(modulesPath): a Pooling module is only supported once, after the Transformer") }
                sawPooling = true
                try config.readPooling(sub + "/config.json")
            case "Dense":
                // Dense works on the pooled vector; after Normalize it would undo the unit length.
                guard sawPooling, !config.hasNormalizeModule else {
                    throw RuEmbedError("\(modulesPath): a Dense module is only supported after Pooling and before Normalize")
                }
                config.denseFolders.append(sub)
            case "Normalize":
                config.hasNormalizeModule = true
            default:
                throw RuEmbedError("\(modulesPath): module type \(type) is not supported (Transformer, Pooling, Dense and Normalize are)")
            }
        }
        guard sawTransformer else { throw RuEmbedError("\(modulesPath): no Transformer module") }
        let bertPath = config.transformerFolder + "/sentence_bert_config.json"
        if access(bertPath, R_OK) == 0 {
            config.doLowerCase = try ConfigValues.read(bertPath).bool("do_lower_case", default: false)
        }
        return config
    }

    private mutating func readPooling(_ path: String) throws {
        let json = try JSONValue.read(path)
        // Values by the one rule for model files: a key of the wrong kind is bad data, not
        // a silently different pooling.
        let v = ConfigValues(json, path: path)
        includePrompt = try v.bool("include_prompt", default: true)
        if let mode = v.value("pooling_mode") {
            // 6.x: a name or a list of names.
            let list = mode.arrayValue ?? [mode]
            let names = list.compactMap(\.stringValue)
            guard !names.isEmpty, names.count == list.count else {
                throw v.error("pooling_mode", "\(mode.serialized) is neither a name nor a list of names")
            }
            pooling = try names.map { name in
                guard let m = PoolingMode(rawValue: name) else {
                    throw RuEmbedError("\(path): pooling mode \"\(name)\" is not supported (cls, max, mean, mean_sqrt_len_tokens, weightedmean, lasttoken are)")
                }
                return m
            }
            return
        }
        // 2.x: one boolean per mode; sentence-transformers concatenates them in this order.
        let keys: [(String, PoolingMode?)] = [
            ("pooling_mode_cls_token", .cls), ("pooling_mode_max_tokens", .max), ("pooling_mode_mean_tokens", .mean),
            ("pooling_mode_mean_sqrt_len_tokens", .meanSqrtLen), ("pooling_mode_weightedmean_tokens", .weightedMean),
            ("pooling_mode_lasttoken", .lastToken),
        ]
        var modes: [PoolingMode] = []
        for (key, mode) in keys {
            guard try v.bool(key, default: false) else { continue }
            guard let mode else { throw RuEmbedError("\(path): \(key) is not supported") }
            modes.append(mode)
        }
        guard !modes.isEmpty else { throw RuEmbedError("\(path): no pooling mode is switched on") }
        pooling = modes
    }

    /// The pooling modes joined the way sentence-transformers names them ("mean", "cls+max").
    package var poolingName: String { pooling.map(\.rawValue).joined(separator: "+") }
}
