import ArgumentParser
import RuEmbed
import RuModelCLI
import RuCLI
#if canImport(Glibc)
import Glibc
#endif

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case stream, ids, tokens, jsonl
}

@main
struct RuTok: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ru-tok",
        abstract: "Tokenize text with a Hugging Face tokenizer.json, token for token as the Rust `tokenizers` library does.",
        discussion: """
        Reads records (text lines by default) and writes one result per record, in input order: records out = records in, an empty line included (it gives the special tokens only). Record ids are 1-based record numbers unless the input carries them (--tsv, --jsonl).

        Special tokens written in the text (<s>, <mask>, [CLS]) are matched as special tokens, as transformers does; --split-special-tokens treats them as plain text. Offsets (--format jsonl) count Unicode scalars of the prompt followed by the text.

        Invalid UTF-8 stops with an error naming the record; --lossy replaces bad bytes with U+FFFD the way Python's errors="replace" does.

        Examples:
          ru-tok --format ids < sentences.txt     (deepvk/USER-base, downloaded on first use)
          ru-tok --model deepvk/USER-base --prompt query < q.txt | ru-vec ...
          ru-tok --model ./my-model --format tokens < sentences.txt
          ru-tok --tokenizer tok.json --jsonl --format jsonl data.jsonl
          echo 'Ёлка' | ru-tok --tokenizer tok.json --format tokens
          ru-tok --tokenizer tok.json --format ids < in.txt | ru-tok --tokenizer tok.json --decode
        """,
        version: RuEmbedVersion.string)

    @OptionGroup var records: RecordInputOptions

    @Option(help: ArgumentHelp("A tokenizer.json to use as it is (no prompt).", valueName: "file"))
    var tokenizer: String?

    @OptionGroup var model: ModelOptions
    @OptionGroup var prompt: PromptOptions

    @Option(name: .customLong("max-length"), help: ArgumentHelp("The most tokens per record, special tokens included; 0 for no limit (default: the model's max_seq_length, the tokenizer's truncation, or tokenizer_config.json's model_max_length).", valueName: "n"))
    var maxLength: Int?

    @Option(help: "Output: stream (binary token stream for ru-vec), ids, tokens or jsonl.")
    var format: OutputFormat = .stream

    @Flag(help: "Turn ids back into text: the input is a token stream (writes id<TAB>text) or lines of space-separated ids (as --format ids writes).")
    var decode = false

    @Flag(name: .customLong("keep-special-tokens"), help: "With --decode: keep special tokens in the text.")
    var keepSpecialTokens = false

    @Flag(name: .customLong("split-special-tokens"), help: "Treat special tokens written in the text as plain text.")
    var splitSpecialTokens = false

    @OptionGroup var threads: ThreadOptions
    @OptionGroup var output: BinaryOutputOptions
    @OptionGroup var verbose: VerboseOptions

    func validate() throws {
        if tokenizer != nil && model.model != nil { throw ValidationError("give --tokenizer FILE or --model MODEL, not both") }
        if prompt.prompt != nil && tokenizer != nil { throw ValidationError("--prompt NAME needs a model, not --tokenizer (the prompts live in the model's config_sentence_transformers.json)") }
        if let maxLength, maxLength < 0 { throw ValidationError("--max-length must be 0 or more") }
        if decode && format != .ids && format != .jsonl && format != .stream {
            throw ValidationError("--decode writes text lines or (--format jsonl) JSON objects")
        }
    }

    mutating func run() throws {
        ToolRuntime.start("ru-tok")
        let options = self
        try ToolRuntime.run {
            try options.output.withOutput(binary: options.format == .stream && !options.decode) { try Runner(options, output: $0).run() }
        }
    }
}

/// Everything resolved from the options before the first record.
struct Setup {
    let tokenizer: Tokenizer
    let digest: String
    let promptScalars: [UInt32]
    let promptText: String
    let maxLength: Int?
    /// do_lower_case in the model's sentence_bert_config.json: text and prompt are lowercased
    /// first, as ru-embed and sentence-transformers do.
    let lowercase: Bool

    init(_ o: RuTok) throws {
        // Without --tokenizer: --model, else the default model, through the one resolver
        // (folder, Hugging Face cache, download).
        let config = try o.tokenizer.map { try ModelTokenizer.load(tokenizerFile: $0) }
            ?? ModelTokenizer.load(modelFolder: ModelLocator.resolve(o.model.spec, options: o.model.hubOptions(verbose: o.verbose.verbose)))
        tokenizer = config.tokenizer
        digest = config.digest
        switch o.prompt.choice {
        case .text(let text): promptText = text
        case .named(let name): promptText = try config.prompt(named: name)
        case .noPrompt: promptText = ""
        case .modelDefault: promptText = try config.defaultPrompt()
        }
        lowercase = config.lowercasesInput
        promptScalars = (lowercase ? InputLowercasing.lower(promptText) : promptText).unicodeScalars.map(\.value)
        let length = o.maxLength.map { $0 == 0 ? nil : $0 } ?? config.maxLength
        if let length, length < tokenizer.addedTokenCount + 1 {
            throw RuEmbedError.invalidArgument("--max-length \(length) leaves no room for text: the tokenizer adds \(tokenizer.addedTokenCount) special tokens")
        }
        maxLength = length
    }
}

/// What one record turned into; made on worker threads, written in order.
struct RecordResult {
    var id: String = ""
    var ids: [UInt32] = []
    var text: [UInt8] = []     // formatted output line(s) for the text formats
    var error: String? = nil
    var replaced = 0
    var truncated = false
}

final class Runner {
    let o: RuTok
    let setup: Setup
    let output: ByteOutput
    let encoder: BatchEncoder

    var records = 0
    var tokens = 0
    var truncated = 0
    var replaced = 0
    var unknownTokens = 0

    init(_ o: RuTok, output: ByteOutput) throws {
        self.o = o
        self.output = output
        setup = try Setup(o)
        encoder = BatchEncoder(tokenizer: setup.tokenizer)
    }

    func run() throws {
        o.threads.apply()
        let started = monotonicSeconds()
        var standardInput: ByteInput? = nil
        if o.decode {
            // --decode reads a token stream as well as id lines: look at the first bytes.
            if let stream = try tokenStreamInput(standardInput: &standardInput) {
                try decodeStream(stream)
                return
            }
        }
        let reader = RecordReader(paths: o.records.inputs, separator: o.records.separator,
                                  standardInput: standardInput)
        var metadata = StreamMetadata()
        metadata["tokenizer_digest"] = .string(setup.digest)
        metadata["prompt"] = .string(setup.promptText)
        metadata["max_length"] = setup.maxLength.map { .number(Double($0)) } ?? .null
        let writer = o.format == .stream && !o.decode ? TokenStreamWriter(output: output, metadata: metadata) : nil

        var globalNumber = 0
        while true {
            let batch = try reader.nextBatch(maxRecords: 8192, maxBytes: 8 << 20)
            if batch.records.isEmpty { break }
            let count = batch.records.count
            let base = globalNumber
            Parallel.rebalance() // other tools may have started or ended since the last batch
            let results = encoder.map(count) { k, workspace, encoding, scalars in
                self.process(batch.text(k), number: base + k + 1, workspace: workspace, encoding: &encoding, scalars: &scalars)
            }
            globalNumber += count

            // In input order: stop at the first bad record, after everything before it.
            for (k, r) in results.enumerated() {
                let record = batch.records[k]
                let place = { "\(record.file): \(self.o.records.unit) \(record.number)" }
                if let error = r.error {
                    try writer?.flush()
                    try output.flush()
                    throw RuEmbedError("\(place()): \(error)")
                }
                records += 1
                tokens += r.ids.count
                replaced += r.replaced
                if r.truncated { truncated += 1 }
                if let unk = setup.tokenizer.model.unknownTokenID { unknownTokens += r.ids.lazy.filter { $0 == unk }.count }
                if let writer {
                    do {
                        try writer.append(id: r.id, tokens: r.ids, place: place())
                    } catch {
                        // What came before the refused record is still written, as for a bad one.
                        try writer.flush()
                        try output.flush()
                        throw error
                    }
                } else {
                    try output.write(r.text)
                }
            }
            try writer?.flush()
            try output.flush()
        }
        try output.flush()

        if o.verbose.verbose {
            let seconds = monotonicSeconds() - started
            let dropped = encoder.workspaces.reduce(0) { $0 + $1.droppedUnknown }
            let mb = Double(reader.bytesRead) / 1e6
            var line = "\(records) records, \(tokens) tokens"
            if !o.decode {
                line += ", \(truncated) truncated to \(setup.maxLength.map(String.init) ?? "-") tokens, \(unknownTokens) unknown tokens"
                line += ", \(dropped) characters dropped (not in the vocabulary, no unk_token)"
            }
            line += ", \(replaced) invalid UTF-8 sequences replaced"
            line += ", \(formatFixed(mb, 2)) MB in \(formatFixed(seconds, 2)) s (\(formatFixed(mb / max(seconds, 1e-9), 2)) MB/s)"
            line += ", \(Parallel.threads) thread\(Parallel.threads == 1 ? "" : "s")"
            ToolRuntime.warn(line)
        }
    }

    /// The token stream to decode, from its first byte, when the single input is one; nil
    /// otherwise, with standard input (its first bytes put back) in `standardInput`.
    func tokenStreamInput(standardInput: inout ByteInput?) throws -> ByteInput? {
        let paths = o.records.paths
        guard paths.count == 1 else { return nil }
        let input = try ByteInput.open(paths[0])
        // The same test as ru-embed's: any frame kind a stream may start with.
        let head = try input.readHead()
        guard ChunkFormat.startsStream(head) else {
            // Text after all: its first bytes go back in front for the record reader.
            if paths[0] == "-" { input.unread(head); standardInput = input }
            return nil
        }
        return try input.restoringHead(head)
    }

    /// Writes `id<TAB>text` (or JSONL) for every record of a token stream.
    func decodeStream(_ input: ByteInput) throws {
        let reader = VectorStreamReader(input: input)
        while let chunk = try reader.next() {
            guard chunk.kind == .tokens else { throw RuEmbedError("\(reader.name): a vector stream, not a token stream") }
            if let digest = chunk.metadata["tokenizer_digest"]?.stringValue, digest != setup.digest {
                ToolRuntime.warn("warning: the stream was made with another tokenizer (digest \(digest.prefix(12))…)")
            }
            for (id, ids) in zip(chunk.ids, chunk.tokenLists()) {
                var result = RecordResult()
                result.id = id
                result = decodeIDs(ids, ids.count, into: result, withID: true)
                if let error = result.error { throw RuEmbedError("\(reader.name): record \(id): \(error)") }
                records += 1
                tokens += ids.count
                try output.write(result.text)
            }
        }
        try output.flush()
    }

    /// Parses, decodes and tokenizes one record, and formats its output.
    func process(_ record: ArraySlice<UInt8>, number: Int, workspace: EncodeWorkspace,
                 encoding: inout Encoding, scalars: inout [UInt32]) -> RecordResult {
        var result = RecordResult()
        result.id = String(number)
        let fields: RecordSyntax.Fields
        do { fields = try o.records.syntax.parse(record, lossy: o.records.lossy, replaced: &result.replaced, needsText: !o.decode) } catch {
            result.error = (error as? RuEmbedError)?.message ?? "\(error)"
            return result
        }
        if let id = fields.id { result.id = id }
        if o.decode, let object = fields.object {
            guard let list = object["ids"]?.arrayValue else { result.error = "no \"ids\" array"; return result }
            // Token ids by the config rule: 1e30 or 2.5 is "not an id", never a trap.
            return decodeIDs(list.compactMap { ConfigValues.integer($0, 0...Int(UInt32.max)).map { UInt32($0) } }, list.count, into: result)
        }
        let textBytes = fields.textBytes
        if o.decode {
            guard let text = decodeStrict(textBytes, &result) else { return result }
            var ids: [UInt32] = []
            for word in text.split(separator: " ", omittingEmptySubsequences: true) {
                guard let id = UInt32(word) else { result.error = "\"\(word)\" is not a token id"; return result }
                ids.append(id)
            }
            return decodeIDs(ids, ids.count, into: result)
        }

        let truncatedBefore = workspace.truncated
        // From the UTF-8 (of the line, or of the JSON string): a long text cut to the maximum
        // length is never held whole as scalars.
        func encode(_ utf8: UnsafeRawBufferPointer) -> Bool {
            setup.tokenizer.encode(utf8: utf8, lowercase: setup.lowercase, prompt: setup.promptScalars, lossy: o.records.lossy,
                                   replaced: &result.replaced, maxLength: setup.maxLength, specialTokensAsText: o.splitSpecialTokens,
                                   workspace: workspace, scalars: &scalars, into: &encoding)
        }
        if fields.textString != nil {
            _ = fields.withText(encode) // valid: it is a String
        } else if !textBytes.withUnsafeBytes(encode) {
            result.error = "invalid UTF-8 (--lossy replaces bad bytes with U+FFFD)"
            return result
        }
        result.truncated = workspace.truncated != truncatedBefore
        result.ids = encoding.ids
        if o.format != .stream { result.text = format(result.id, encoding) }
        return result
    }

    func decodeStrict(_ bytes: ArraySlice<UInt8>, _ result: inout RecordResult) -> String? {
        do { return try RecordSyntax.decode(bytes, lossy: o.records.lossy, replaced: &result.replaced) } catch {
            result.error = (error as? RuEmbedError)?.message ?? "\(error)"
            return nil
        }
    }

    func decodeIDs(_ ids: [UInt32], _ given: Int, into result: RecordResult, withID: Bool? = nil) -> RecordResult {
        var result = result
        guard ids.count == given else { result.error = "ids must be non-negative integers"; return result }
        let text: String
        do { text = try setup.tokenizer.decode(ids, skipSpecialTokens: !o.keepSpecialTokens) } catch let e as RuEmbedError {
            result.error = e.message; return result
        } catch { result.error = "\(error)"; return result }
        result.ids = ids
        var out = ""
        if o.format == .jsonl {
            out = "{\"id\": "
            JSONValue.writeString(result.id, to: &out)
            out += ", \"text\": "
            JSONValue.writeString(text, to: &out)
            out += "}\n"
        } else {
            if withID ?? (o.records.tsv || o.records.jsonl) { out = result.id + "\t" }
            // One record per line: line breaks inside the decoded text become spaces.
            var flat = String.UnicodeScalarView()
            for s in text.unicodeScalars { flat.append(s == "\n" || s == "\r" || (o.records.tsv && s == "\t") ? " " : s) }
            out += String(flat) + (o.records.nulSeparated ? "\0" : "\n")
        }
        result.text = Array(out.utf8)
        return result
    }

    func format(_ id: String, _ e: Encoding) -> [UInt8] {
        var out: [UInt8] = []
        let terminator: UInt8 = o.records.nulSeparated ? 0 : 0x0A
        let withID = o.records.tsv || o.records.jsonl
        switch o.format {
        case .ids:
            if withID { out.append(contentsOf: id.utf8); out.append(0x09) }
            for (k, t) in e.ids.enumerated() {
                if k > 0 { out.append(0x20) }
                appendDecimal(Int(t), to: &out)
            }
            out.append(terminator)
        case .tokens:
            if withID { out.append(contentsOf: id.utf8); out.append(0x09) }
            for (k, t) in e.ids.enumerated() {
                if k > 0 { out.append(0x20) }
                out.append(contentsOf: setup.tokenizer.vocabulary.token(t) ?? [])
            }
            out.append(terminator)
        case .jsonl:
            var s = "{\"id\": "
            JSONValue.writeString(id, to: &s)
            s += ", \"ids\": ["
            s += e.ids.map { String($0) }.joined(separator: ", ")
            s += "], \"tokens\": ["
            for (k, t) in e.ids.enumerated() {
                if k > 0 { s += ", " }
                JSONValue.writeString(String(decoding: setup.tokenizer.vocabulary.token(t) ?? [], as: UTF8.self), to: &s)
            }
            s += "], \"offsets\": ["
            s += (0..<e.count).map { "[\(e.starts[$0]), \(e.ends[$0])]" }.joined(separator: ", ")
            s += "]}\n"
            out.append(contentsOf: s.utf8)
        case .stream:
            break
        }
        return out
    }
}

func appendDecimal(_ value: Int, to out: inout [UInt8]) {
    if value < 10 { out.append(UInt8(48 + value)); return }
    var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    var v = value, n = 0
    withUnsafeMutableBytes(of: &digits) { d in
        while v > 0 { d[n] = UInt8(48 + v % 10); v /= 10; n += 1 }
        for k in stride(from: n - 1, through: 0, by: -1) { out.append(d[k]) }
    }
}


func formatFixed(_ x: Double, _ digits: Int) -> String {
    let scale = pow(10.0, Double(digits))
    let r = (x * scale).rounded() / scale
    var s = String(r)
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
    }
    return s
}
