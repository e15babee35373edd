import RuCore
import Crypto
#if canImport(Glibc)
import Glibc
#endif

/// A tokenizer with the facts around it: the digest of its tokenizer.json, the prompts of a
/// sentence-transformers model folder and the maximum length to truncate to.
///
/// A model folder gives `tokenizer.json`, `config_sentence_transformers.json` ("prompts" and
/// "default_prompt_name", the same keys in sentence-transformers 2.x and 6.x),
/// `sentence_bert_config.json` ("max_seq_length", "do_lower_case") and `tokenizer_config.json`
/// ("model_max_length"). A lone tokenizer.json uses the tokenizer_config.json beside it.
public struct ModelTokenizer: Sendable {
    /// The tokenizer of tokenizer.json.
    public let tokenizer: Tokenizer
    /// SHA-256 of the tokenizer.json bytes, hex: what a token stream records.
    public let digest: String
    /// The prompts of config_sentence_transformers.json in file order, e.g. ("query", "query: ").
    public let prompts: [(name: String, text: String)]
    /// The prompt used when none is asked for (`default_prompt_name`); nil means no prompt.
    public let defaultPromptName: String?
    /// The length to truncate to by default: max_seq_length, else the tokenizer's own
    /// truncation, else model_max_length (ignored when it is the "no limit" 1e30 of transformers).
    public let maxLength: Int?
    /// The model folder, or nil when only a tokenizer.json was loaded.
    public let folder: String?
    /// sentence_bert_config.json's do_lower_case: texts and prompt are lowercased
    /// (`InputLowercasing`) before tokenization, as sentence-transformers does.
    package let lowercasesInput: Bool

    /// Loads a model folder.
    public static func load(modelFolder: String) throws -> ModelTokenizer {
        try ModelTokenizer(tokenizerFile: modelFolder + "/tokenizer.json", modelFolder: modelFolder)
    }

    /// Loads a tokenizer.json on its own (no prompts).
    public static func load(tokenizerFile: String) throws -> ModelTokenizer {
        try ModelTokenizer(tokenizerFile: tokenizerFile, modelFolder: nil)
    }

    private init(tokenizerFile: String, modelFolder: String?) throws {
        let bytes = try ByteInput.readFile(tokenizerFile)
        do { tokenizer = try Tokenizer(contentsOf: bytes) } catch let e as RuEmbedError {
            throw RuEmbedError("\(tokenizerFile): \(e.message)")
        }
        // swift-crypto's SHA-256 (SHA-NI or AVX2) hashes USER-base's 5 MB tokenizer.json in a
        // few ms: no cache (the hand-written SHA-256 it replaced took a sixth of the load).
        digest = hexString(SHA256.hash(data: bytes))
        folder = modelFolder
        let beside = modelFolder ?? ModelTokenizer.parentFolder(tokenizerFile)

        var prompts: [(name: String, text: String)] = []
        var defaultName: String? = nil
        var lowercase = false
        // The length and where it came from (file and key), for the check below.
        var length: (value: Int, source: String)? = nil
        if let modelFolder {
            let path = modelFolder + "/config_sentence_transformers.json"
            if let config = try ModelTokenizer.readJSONIfPresent(path).map({ ConfigValues($0, path: path) }) {
                if let p = config.value("prompts") {
                    guard case .object(let pairs) = p else { throw config.error("prompts", "not an object of name: text") }
                    for (name, value) in pairs {
                        guard let text = value.stringValue else { throw RuEmbedError("\(path): prompt \"\(name)\" is not a string") }
                        prompts.append((name, text))
                    }
                }
                defaultName = try config.string("default_prompt_name")
                // sentence-transformers refuses a default that names no prompt; so do we, as
                // bad data in the file rather than a usage error at the first record.
                if let name = defaultName, !prompts.contains(where: { $0.name == name }) {
                    throw config.error("default_prompt_name", "\(JSONValue.string(name).serialized) names no prompt of \"prompts\"")
                }
            }
            let bertPath = modelFolder + "/sentence_bert_config.json"
            if let bert = try ModelTokenizer.readJSONIfPresent(bertPath).map({ ConfigValues($0, path: bertPath) }) {
                if let n = try bert.optionalInt("max_seq_length", ModelTokenizer.lengthBounds) {
                    length = (n, "\(bertPath): \"max_seq_length\"")
                }
                lowercase = try bert.bool("do_lower_case", default: false)
            }
        }
        if length == nil, let n = tokenizer.configuredMaxLength { length = (n, "\(tokenizerFile): truncation \"max_length\"") }
        let tokenizerConfigPath = beside + "/tokenizer_config.json"
        if length == nil, let config = try ModelTokenizer.readJSONIfPresent(tokenizerConfigPath).map({ ConfigValues($0, path: tokenizerConfigPath) }) {
            // transformers writes int(1e30) for "no limit": any value from a million on is that.
            if let v = config.value("model_max_length"), let d = v.numberValue, d >= 1e6 {
            } else if let n = try config.optionalInt("model_max_length", ModelTokenizer.lengthBounds) {
                length = (n, "\(tokenizerConfigPath): \"model_max_length\"")
            }
        }
        // A length that leaves no room for text after the special tokens would make every
        // record its special tokens alone (or nothing): bad data in the file that says it.
        if let length, length.value < tokenizer.addedTokenCount + 1 {
            throw RuEmbedError("\(length.source): \(length.value) leaves no room for text: the tokenizer adds \(tokenizer.addedTokenCount) special tokens")
        }
        self.prompts = prompts
        defaultPromptName = defaultName
        maxLength = length?.value
        lowercasesInput = lowercase
    }

    /// Lengths a configuration file may set: a million tokens is far beyond any model's
    /// positions (transformers' "no limit" is 1e30, read as no length).
    static let lengthBounds = 1...999_999

    /// The text of the prompt called `name`; a usage error listing the known ones otherwise.
    public func prompt(named name: String) throws -> String {
        guard let found = prompts.last(where: { $0.name == name }) else {
            let known = prompts.map(\.name).joined(separator: ", ")
            throw RuEmbedError.invalidArgument("\(folder ?? "the tokenizer"): no prompt named \"\(name)\" (the model has: \(known.isEmpty ? "none" : known))")
        }
        return found.text
    }

    /// The default prompt's text, or "" when the model names none.
    public func defaultPrompt() throws -> String {
        guard let name = defaultPromptName else { return "" }
        return try prompt(named: name)
    }

    static func readJSONIfPresent(_ path: String) throws -> JSONValue? {
        guard access(path, R_OK) == 0 else { return nil }
        return try JSONValue.read(path)
    }

    static func parentFolder(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }
}
