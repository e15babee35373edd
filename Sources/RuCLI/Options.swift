import ArgumentParser
import RuCore
import RuVectors
#if canImport(Glibc)
import Glibc
#endif

// The options the tools share, declared once: the same flag means the same thing, with the
// same help, in every tool that has it.

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

