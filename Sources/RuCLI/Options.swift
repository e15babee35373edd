import ArgumentParser
import RuEmbed
#if canImport(Glibc)
import Glibc
#endif

// The options the tools share, declared once: the same flag means the same thing, with the
// same help, in every tool that has it.

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

/// `--threads`.
package struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads (default: all cores, shared out between the ru-* tools running at once, e.g. under xargs -P or make -j; see README).")
    package var threads: Int?

    package init() {}

    package func validate() throws {
        if let threads, threads < 1 || threads > CoreShare.maxThreads {
            throw ValidationError("--threads must be 1 to \(CoreShare.maxThreads)")
        }
    }

    /// Takes this process's share of the cores (or exactly --threads).
    package func apply() { Parallel.share(explicitThreads: threads) }
}

/// `-o/--output` and `--force` for binary output.
package struct BinaryOutputOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: ArgumentHelp("Write to this file (default: standard output). It appears whole when the tool succeeds, and is left as it was when the tool fails.", valueName: "file"))
    package var output: String?

    @Flag(help: "Write binary output even to a terminal.")
    package var force = false

    package init() {}

    /// Runs `body` against the output; a file is committed only when `body` succeeds.
    package func withOutput(binary: Bool = true, _ body: (ByteOutput) throws -> Void) throws {
        guard let output else {
            if binary { try ToolRuntime.checkBinaryOutput(ByteOutput.standardOutput, force: force) }
            try body(ByteOutput.standardOutput)
            return
        }
        let file = try OutputFile(path: output)
        do {
            try body(file.output)
            try file.output.flush()
            try file.commit()
        } catch {
            file.discard()
            throw error
        }
    }
}

/// `-v/--verbose`.
package struct VerboseOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Print a summary on standard error at the end (and where the model was found).")
    package var verbose = false

    package init() {}
}

/// Vector element types for `--dtype`.
package enum VectorType: String, ExpressibleByArgument, CaseIterable, Sendable {
    case f32, f16, int8, binary

    package var elementType: ElementType {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .int8: .int8
        case .binary: .binary
        }
    }
}

extension Precision: ExpressibleByArgument {}
