import ArgumentParser
import RuCore
import RuVectors
import RuSearch
import RuCLI
#if canImport(Glibc)
import Glibc
#endif

@main
struct RuIndex: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ru-index",
        abstract: "Build approximate nearest-neighbour indexes of vector streams, for ru-knn --index.",
        discussion: """
        An index file (docs/INDEX.md, ru-index(5)) holds a graph over the vectors, their int8 codes, their ids, the source streams' metadata and, unless built with --vectors none, the normalised f32 vectors. `ru-knn --index FILE.idx` recognises it by its magic, maps it read-only (opening costs the same for any size; processes searching it at once share the page cache) and searches it approximately, --ef trading speed for recall.

        Examples:
          ru-index build -o docs.idx docs1.vec docs2.vec
          ru-index add docs.idx more.vec
          ru-embed < questions.txt | ru-knn --index docs.idx -k 5
          ru-index info docs.idx; ru-index verify docs.idx

        Exit status: 0 on success, 2 on bad data, 64 on a usage error.
        """,
        version: RuEmbedVersion.string,
        subcommands: [Build.self, Add.self, Info.self, Verify.self]
    )
}

/// The graph's build parameters, shared by build (all) and add (the seed).
struct GraphOptions: ParsableArguments {
    @Option(help: "Neighbour slots per node: more is a larger file, a slower build and a higher recall at the same --ef.")
    var degree: Int = IndexParameters().degree

    @Option(name: .customLong("ef-construction"), help: "The beam width of the searches that place each node: more is a slower build and a better graph.")
    var efConstruction: Int = IndexParameters().efConstruction

    @Option(help: "The pruning factor (≥ 1): above 1 keeps some longer edges, shortening paths between clusters.")
    var alpha: Float = IndexParameters().alpha

    @Option(help: "f32: keep the normalised vectors, so that results are re-ranked with exact cosines (and --exact is exact); none: keep only the int8 codes (a file ~4× smaller, scores from the codes).")
    var vectors: StoredVectors = .f32

    func validate() throws {
        if degree < 1 || degree > IndexFormat.maxDegree { throw ValidationError("--degree must be 1 to \(IndexFormat.maxDegree)") }
        if efConstruction < 1 || efConstruction > 65_536 { throw ValidationError("--ef-construction must be 1 to 65536") }
        if !(alpha >= 1 && alpha <= 4) { throw ValidationError("--alpha must be between 1 and 4") }
    }
}

enum StoredVectors: String, ExpressibleByArgument, CaseIterable {
    case f32, none
}

/// Reads streams into a builder made for the first one's width (`make`); the first stream's
/// records are returned for its metadata, and later streams made by another model or at
/// another precision are warned about, as ru-knn warns.
func appendStreams(_ paths: [String], make: (Int) throws -> GraphBuilder, builder: inout GraphBuilder?) throws -> VectorRecords? {
    var first: VectorRecords?
    for path in paths {
        let records = try VectorRecords(path: path)
        guard try records.peek() else { continue }
        if let first { VectorRecords.incomparability(first, records).forEach(ToolRuntime.warn) } else { first = records }
        let b = try builder ?? make(records.shape!.dim)
        builder = b
        try b.append(records)
    }
    return first
}

/// Progress on a terminal: `placed N / M` redrawn, at most every 0.2 s.
final class Progress {
    let line = ToolRuntime.TerminalProgress()
    func update(_ done: Int, _ total: Int) {
        line.show("placed \(done) / \(total)", force: done == total)
        if done == total { line.finish(keep: true) }
    }
}

struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build an index of vector streams.",
        discussion: """
        Reads the streams (any dtype; vectors are normalised, as ru-knn normalises a corpus) and builds a Vamana graph over their int8 codes, in parallel. The result depends on the streams and --seed only, not on the thread count. Positions, and so the order of equal scores, follow the streams in argument order.

        Exit status: 0 on success, 2 on bad data, 64 on a usage error.
        """)

    @Option(name: .shortAndLong, help: ArgumentHelp("The index file to write. It appears whole when the build succeeds and is left as it was when it fails.", valueName: "file"))
    var output: String

    @OptionGroup var graph: GraphOptions

    @Option(help: "The seed of the insertion order: the same streams and seed give the same file.")
    var seed: UInt64 = 0

    @OptionGroup var threads: ThreadOptions

    @OptionGroup var verbose: VerboseOptions

    @Argument(help: "Vector streams (`-` or none: standard input).")
    var inputs: [String] = []

    func run() throws {
        ToolRuntime.start("ru-index")
        threads.apply()
        try ToolRuntime.run {
            let start = monotonicSeconds()
            var parameters = IndexParameters()
            parameters.degree = graph.degree
            parameters.efConstruction = graph.efConstruction
            parameters.alpha = graph.alpha
            parameters.seed = seed
            parameters.keepVectors = graph.vectors == .f32
            var made: GraphBuilder?
            let first = try appendStreams(inputs.isEmpty ? ["-"] : inputs, make: { GraphBuilder(dim: $0, parameters: parameters) },
                                          builder: &made)
            let builder = made ?? GraphBuilder(dim: 1, parameters: parameters)
            if let metadata = first?.metadata { builder.metadata = metadata.withoutCalibration }
            let read = monotonicSeconds()
            let progress = Progress()
            builder.insertAll(progress: progress.update)
            try OutputFile.write(path: output) { try builder.write(to: $0) }
            if verbose.verbose {
                ToolRuntime.warn("\(builder.count) vectors, \(builder.dim)-d: read in \(NumberFormat.fixed(read - start, decimals: 2)) s, graph built in \(NumberFormat.fixed(monotonicSeconds() - read, decimals: 2)) s on \(Parallel.threads) thread\(Parallel.threads == 1 ? "" : "s")")
            }
        }
    }
}

struct Add: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add the vectors of streams to an index, without a rebuild.",
        discussion: """
        The new vectors are placed in the existing graph as a build places its later vectors (the same parameters; --seed orders the new ones), after the existing ones in position. The index file is replaced whole when the addition succeeds, and left as it was when it fails. A search of the result finds what a search of an index built from all the streams at once finds, at the same recall.

        Exit status: 0 on success, 2 on bad data, 64 on a usage error.
        """)

    @Option(help: "The seed of the insertion order of the added vectors.")
    var seed: UInt64 = 0

    @OptionGroup var threads: ThreadOptions

    @OptionGroup var verbose: VerboseOptions

    @Argument(help: "The index file.")
    var index: String

    @Argument(help: "Vector streams to add (`-` or none: standard input).")
    var inputs: [String] = []

    func run() throws {
        ToolRuntime.start("ru-index")
        threads.apply()
        try ToolRuntime.run {
            let file = try GraphIndexFile(path: index)
            let builder = try GraphBuilder(from: file, seed: seed)
            let before = builder.count
            var made: GraphBuilder? = builder
            if let first = try appendStreams(inputs.isEmpty ? ["-"] : inputs, make: { _ in builder }, builder: &made) {
                GraphIndexFile.incomparability(first, file).forEach(ToolRuntime.warn)
            }
            builder.insertAll(progress: Progress().update)
            try OutputFile.write(path: index) { try builder.write(to: $0) }
            if verbose.verbose { ToolRuntime.warn("\(builder.count - before) vectors added, \(builder.count) in \(index)") }
        }
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Describe index files: vectors, dimension, build parameters, section sizes, metadata.")

    @Flag(help: "One JSON object per file instead of text.")
    var json = false

    @Argument(help: "Index files.")
    var files: [String]

    func run() throws {
        ToolRuntime.start("ru-index")
        try ToolRuntime.run {
            let out = ByteOutput.standardOutput
            for path in files {
                let f = try GraphIndexFile(path: path)
                let p = f.parameters
                var fields: [(key: String, value: JSONValue)] = [
                    ("file", .string(path)),
                    ("format_version", .number(Double(f.version))),
                    ("vectors", .number(Double(f.count))),
                    ("dimension", .number(Double(f.dim))),
                    ("degree", .number(Double(p.degree))),
                    ("ef_construction", .number(Double(p.efConstruction))),
                    ("alpha", .number(Double("\(p.alpha)") ?? Double(p.alpha))),
                    ("seed", .number(Double(p.seed))),
                    ("stored_vectors", .string(p.keepVectors ? "f32" : "none")),
                    ("bytes", .number(Double(f.fileSize))),
                ]
                fields.append(("sections", .object(f.sectionSizes.map { ($0.name, JSONValue.number(Double($0.bytes))) })))
                fields.append(("metadata", .object(f.metadata.object)))
                if json {
                    try out.write(JSONValue.object(fields).serialized + "\n")
                } else {
                    var text = "\(path)\n"
                    for (key, value) in fields.dropFirst() {
                        switch value {
                        case .string(let s): text += "  \(key): \(s)\n"
                        case .number: text += "  \(key): \(value.serialized)\n"
                        default: text += "  \(key): \(value.serialized)\n"
                        }
                    }
                    try out.write(text)
                }
            }
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check index files completely: checksums, neighbours, ids, values.",
        discussion: """
        Prints `FILE: ok, N vectors` for each good file and one error line for each bad one; exits 2 if any file is bad. Opening (what ru-knn does) checks the header and the sections' bounds only; verify reads every byte.

        Exit status: 0 when every file is good, 2 when one is not, 64 on a usage error.
        """)

    @Flag(name: .shortAndLong, help: "Print nothing for good files.")
    var quiet = false

    @Argument(help: "Index files.")
    var files: [String]

    func run() throws {
        ToolRuntime.start("ru-index")
        var failed = false
        try ToolRuntime.run {
            for path in files {
                do {
                    let f = try GraphIndexFile(path: path)
                    try f.verify()
                    if !quiet { try ByteOutput.standardOutput.write("\(path): ok, \(f.count) vector\(f.count == 1 ? "" : "s")\n") }
                } catch let error as RuEmbedError where error.kind == .invalidData {
                    ToolRuntime.warn(error.message)
                    failed = true
                }
            }
        }
        if failed { Glibc.exit(ExitStatus.dataError) }
    }
}
