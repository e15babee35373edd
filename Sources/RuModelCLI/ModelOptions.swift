import ArgumentParser
import RuCLI
import RuEmbed
#if canImport(Glibc)
import Glibc
#endif

// The options of the tools that read text and load models (ru-embed, ru-tok), declared once
// as RuCLI's are. Apart from RuCLI so that the tools that only read and write vectors link
// neither the tokenizer, the encoder nor the hub client (nor, through them, Foundation, ICU
// and libcurl).

/// `--model`: a folder or a hub id.
package struct ModelOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A model folder (sentence-transformers layout), or a hub id org/name[@revision] found in the Hugging Face cache or downloaded into it. Default: $RU_EMBED_MODEL, else deepvk/USER-base (see docs/MODELS.md).", valueName: "model"))
    package var model: String?

    package init() {}

    /// What to load: `--model`, else RU_EMBED_MODEL, else the default model.
    package var spec: String {
        if let model { return model }
        if let value = getenv("RU_EMBED_MODEL"), let s = String(validatingCString: value), !s.isEmpty { return s }
        return ModelLocator.defaultModel
    }

    /// How the hub reports: a bar on a terminal, lines with `verbose` in logs.
    package func hubOptions(verbose: Bool) -> ModelLocator.Options {
        ModelLocator.Options(verbose: verbose, reporting: isatty(2) == 1 ? .bar : (verbose ? .lines : .quiet),
                             reporter: ToolRuntime.reporter)
    }
}

/// `--prompt`, `--prompt-text`, `--no-prompt`.
package struct PromptOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Use the model's prompt of this name (e.g. query, passage).", valueName: "name"))
    package var prompt: String?

    @Option(name: .customLong("prompt-text"), help: ArgumentHelp("Put this text in front of every record.", valueName: "text"))
    package var promptText: String?

    @Flag(name: .customLong("no-prompt"), help: "Use no prompt, not even the model's default.")
    package var noPrompt = false

    package init() {}

    package func validate() throws {
        if [prompt != nil, promptText != nil, noPrompt].filter({ $0 }).count > 1 {
            throw ValidationError("--prompt, --prompt-text and --no-prompt exclude each other")
        }
    }

    /// True when one of the three was given.
    package var isGiven: Bool { prompt != nil || promptText != nil || noPrompt }

    package var choice: Prompt {
        if let promptText { return .text(promptText) }
        if let prompt { return .named(prompt) }
        return noPrompt ? .noPrompt : .modelDefault
    }
}

/// How input records are read: text lines, `--tsv`, `--jsonl`, `-0`, `--lossy`.
package struct RecordInputOptions: ParsableArguments {
    @Argument(help: "Input files; '-' or none for standard input.")
    package var inputs: [String] = []

    @Flag(help: "Input lines are id<TAB>text.")
    package var tsv = false

    @Flag(help: "Input lines are JSON objects.")
    package var jsonl = false

    @Option(name: .customLong("id-field"), help: "The JSONL field with the record id.")
    package var idField = "id"

    @Option(name: .customLong("text-field"), help: "The JSONL field with the text.")
    package var textField = "text"

    @Flag(name: .customShort("0"), help: "Records end with NUL instead of newline (text may contain newlines).")
    package var nulSeparated = false

    @Flag(help: "Replace invalid UTF-8 with U+FFFD instead of stopping.")
    package var lossy = false

    package init() {}

    package func validate() throws {
        if tsv && jsonl { throw ValidationError("--tsv and --jsonl exclude each other") }
    }

    package var paths: [String] { inputs.isEmpty ? ["-"] : inputs }

    package var syntax: RecordSyntax {
        if tsv { return .tsv }
        if jsonl { return .jsonl(idField: idField, textField: textField) }
        return .text
    }

    package var separator: UInt8 { nulSeparated ? 0 : UInt8(ascii: "\n") }

    /// What a record is called in messages: `line N`, or `record N` with -0.
    package var unit: String { nulSeparated ? "record" : "line" }
}

extension Precision: ExpressibleByArgument {}
