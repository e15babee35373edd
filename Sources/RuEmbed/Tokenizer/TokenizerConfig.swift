#if canImport(Glibc)
import Glibc
#endif

/// A tokenizer with the facts around it: the digest of its tokenizer.json, the prompts of a
/// sentence-transformers model folder and the maximum length to truncate to.
///
/// A model folder gives `tokenizer.json`, `config_sentence_transformers.json` ("prompts" and
/// "default_prompt_name", the same keys in sentence-transformers 2.x and 6.x),
/// `sentence_bert_config.json` ("max_seq_length") and `tokenizer_config.json`
/// ("model_max_length"). A lone tokenizer.json uses the tokenizer_config.json beside it.
public struct TokenizerConfig {
    public let tokenizer: Tokenizer
    /// SHA-256 of the tokenizer.json bytes, hex: what a token stream records.
    public let digest: String
    public let prompts: [(name: String, text: String)]
    public let defaultPromptName: String?
    /// The length to truncate to by default: max_seq_length, else the tokenizer's own
    /// truncation, else model_max_length (ignored when it is the "no limit" 1e30 of transformers).
    public let maxLength: Int?
    public let folder: String?

    /// Loads a model folder.
    public static func load(modelFolder: String) throws -> TokenizerConfig {
        try TokenizerConfig(tokenizerFile: modelFolder + "/tokenizer.json", modelFolder: modelFolder)
    }

    /// Loads a tokenizer.json on its own (no prompts).
    public static func load(tokenizerFile: String) throws -> TokenizerConfig {
        try TokenizerConfig(tokenizerFile: tokenizerFile, modelFolder: nil)
    }

    private init(tokenizerFile: String, modelFolder: String?) throws {
        let key = try? DigestCache.key([tokenizerFile])
        let bytes = try TokenizerConfig.readFile(tokenizerFile)
        do { tokenizer = try Tokenizer(contentsOf: bytes) } catch let e as ToolError {
            throw ToolError("\(tokenizerFile): \(e.message)")
        }
        digest = DigestCache.standard.digest(of: tokenizerFile, keyBeforeReading: key, bytes: bytes)
        folder = modelFolder
        let beside = modelFolder ?? TokenizerConfig.parentFolder(tokenizerFile)

        var prompts: [(name: String, text: String)] = []
        var defaultName: String? = nil
        var length: Int? = nil
        if let modelFolder {
            let config = try TokenizerConfig.readJSONIfPresent(modelFolder + "/config_sentence_transformers.json")
            if case .object(let pairs)? = config?["prompts"] {
                for (name, value) in pairs {
                    guard let text = value.stringValue else { throw ToolError("\(modelFolder)/config_sentence_transformers.json: prompt \"\(name)\" is not a string") }
                    prompts.append((name, text))
                }
            }
            defaultName = config?["default_prompt_name"]?.stringValue
            if let n = try TokenizerConfig.readJSONIfPresent(modelFolder + "/sentence_bert_config.json")?["max_seq_length"]?.numberValue {
                length = Int(n)
            }
        }
        if length == nil { length = tokenizer.configuredMaxLength }
        if length == nil, let n = try TokenizerConfig.readJSONIfPresent(beside + "/tokenizer_config.json")?["model_max_length"]?.numberValue, n < 1e6 {
            length = Int(n)
        }
        self.prompts = prompts
        defaultPromptName = defaultName
        maxLength = length
    }

    /// The text of the prompt called `name`; a usage error listing the known ones otherwise.
    public func prompt(named name: String) throws -> String {
        guard let found = prompts.last(where: { $0.name == name }) else {
            let known = prompts.map(\.name).joined(separator: ", ")
            throw ToolError.usage("\(folder ?? "the tokenizer"): no prompt named \"\(name)\" (the model has: \(known.isEmpty ? "none" : known))")
        }
        return found.text
    }

    /// The default prompt's text, or "" when the model names none.
    public func defaultPrompt() throws -> String {
        guard let name = defaultPromptName else { return "" }
        return try prompt(named: name)
    }

    public static func readFile(_ path: String) throws -> [UInt8] {
        let input = try ByteInput.open(path)
        var out: [UInt8] = []
        // A regular file's size is known: one allocation instead of doublings and copies.
        var st = stat()
        if path != "-", stat(path, &st) == 0, st.st_size > 0 { out.reserveCapacity(Int(st.st_size) + 1) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try input.read(into: $0) }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    static func readJSONIfPresent(_ path: String) throws -> JSONValue? {
        guard access(path, R_OK) == 0 else { return nil }
        let bytes = try readFile(path)
        do { return try bytes.withUnsafeBytes { try JSONValue.parse($0) } } catch let e as JSONError {
            throw ToolError("\(path): not valid JSON: \(e)")
        }
    }

    static func parentFolder(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }
}
