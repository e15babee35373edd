import ArgumentParser
import RuCore
import RuVectors
import RuSearch
import RuCLI
#if canImport(Glibc)
import Glibc
#endif

@main
struct RuVec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ru-vec",
        abstract: "Inspect, check, convert and concatenate ru-embed vector streams.",
        discussion: """
        A vector stream is a sequence of zstd frames, one chunk of records each (see ru-vectors(5)). Streams concatenate: `cat a.vec b.vec` is a stream. FILE may be `-` for standard input; no FILE means standard input.

        Examples:
          ru-vec info corpus.vec
          ru-vec export --to jsonl corpus.vec | head
          ru-vec export --to npy -o corpus.npy --ids corpus.ids corpus.vec
          ru-vec import --from jsonl vectors.jsonl > vectors.vec
          ru-vec cat shard-*.vec --dtype f16 > all.f16.vec
          ru-vec verify shard-*.vec
          ru-vec verify --expect-ids <(cut -f1 input.tsv) returned/*.vec

        Exit status: 0 on success, 1 when `verify --expect-ids` finds other ids than those listed, 2 on bad data or a failed read or write, 64 on a usage error.
        """,
        version: RuEmbedVersion.string,
        subcommands: [Info.self, Export.self, Import.self, Cat.self, Verify.self]
    )
}

// MARK: - info

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe streams: records, dimension, element type, frames, metadata.")

    @Flag(help: "One JSON object per file instead of text.")
    var json = false

    @Argument(help: "Vector or token streams (`-` or none: standard input).")
    var files: [String] = []

    func run() throws {
        ToolRuntime.start("ru-vec")
        try ToolRuntime.run {
            let out = ByteOutput.standardOutput
            for path in files.isEmpty ? ["-"] : files {
                let reader = try VectorStreamReader(path: path)
                var first: Chunk?
                var tokens = 0
                while let chunk = try reader.next() {
                    if first == nil { first = chunk }
                    if chunk.kind == .tokens { tokens += chunk.payload.count / 4 - chunk.count }
                }
                let shape = reader.shape
                var fields: [(key: String, value: JSONValue)] = [
                    ("file", .string(reader.name)),
                    ("kind", shape.map { .string($0.kind.description) } ?? .null),
                    ("records", .number(Double(reader.records))),
                    ("dimension", shape.map { $0.kind == .vectors ? .number(Double($0.dim)) : .null } ?? .null),
                    ("dtype", shape.map { .string($0.dtype.description) } ?? .null),
                    ("normalized", shape.map { .bool($0.normalized) } ?? .null),
                    ("frames", .number(Double(reader.frames))),
                    ("compressed_bytes", .number(Double(reader.compressedBytes))),
                    ("uncompressed_bytes", .number(Double(reader.uncompressedBytes))),
                ]
                if shape?.kind == .tokens { fields.append(("tokens", .number(Double(tokens)))) }
                let metadata = first?.metadata.withoutCalibration ?? StreamMetadata()
                fields.append(("metadata", .object(metadata.object)))
                if json {
                    try out.write(JSONValue.object(fields).serialized + "\n")
                } else {
                    var text = "\(reader.name)\n"
                    for (key, value) in fields.dropFirst() {
                        let shown: String
                        switch value {
                        case .string(let s): shown = s
                        case .null: shown = "-"
                        case .object(let o) where o.isEmpty: shown = "-"
                        default: shown = value.serialized
                        }
                        text += "  \(key.replacingUnderscores): \(shown)\n"
                    }
                    try out.write(text)
                }
            }
        }
    }
}

extension String {
    var replacingUnderscores: String { String(map { $0 == "_" ? " " : $0 }) }
}

// MARK: - verify

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read streams completely and check every rule of the format (and, with --expect-ids, which ids they hold).",
        discussion: """
        Prints `FILE: ok, N records in M frames` for each good file and one error line for each bad one; exits 2 if any file is bad.

        With --expect-ids FILE (one id per line, as `cut -f1 input.tsv` writes them), the streams together must also hold exactly those ids, each once, in any order: the check to run after a job spread over processes or hosts. It prints `ids: ok, N ids, each once`, or a line each for the ids missing, the ids found more than once and the ids not listed (a count and the first few, in the list's order where there is one), and exits 1. The list is held in memory (about 40 bytes per id plus the ids themselves); the streams are read one chunk at a time.

        Exit status: 0 when every stream is good (and holds exactly the ids listed), 1 when the streams are good but their ids are not those listed, 2 on bad data or a failed read (a stream, or a list with an id twice or an empty line), 64 on a usage error.
        """)

    @Flag(name: .shortAndLong, help: "Print nothing for good files.")
    var quiet = false

    @Option(name: .customLong("expect-ids"), help: ArgumentHelp(
        "A file of ids, one per line: the streams together must hold exactly these, each once.", valueName: "file"))
    var expectedIDs: String?

    @Argument(help: "Streams to check (`-` or none: standard input).")
    var files: [String] = []

    func validate() throws {
        if expectedIDs == "-" && (files.isEmpty || files.contains("-")) {
            throw ValidationError("the id list and a stream cannot both be standard input")
        }
    }

    func run() throws {
        ToolRuntime.start("ru-vec")
        var failed = false
        var mismatch = false
        try ToolRuntime.run {
            var census = try expectedIDs.map { try IDCensus(listedIn: $0) }
            for path in files.isEmpty ? ["-"] : files {
                do {
                    let reader = try VectorStreamReader(path: path)
                    while let chunk = try reader.next() {
                        census?.count(chunk.ids)
                    }
                    if !quiet {
                        try ByteOutput.standardOutput.write("\(reader.name): ok, \(reader.records) record\(reader.records == 1 ? "" : "s") in \(reader.frames) frame\(reader.frames == 1 ? "" : "s")\n")
                    }
                } catch let error as RuEmbedError {
                    try ByteOutput.standardOutput.flush()
                    ToolRuntime.warn(error.message)
                    failed = true
                }
            }
            if let census, !failed {
                let report = census.report()
                mismatch = !report.isEmpty
                if report.isEmpty {
                    if !quiet { try ByteOutput.standardOutput.write("ids: ok, \(census.listed) id\(census.listed == 1 ? "" : "s"), each once\n") }
                } else {
                    try ByteOutput.standardOutput.write(report.map { "ids: \($0)\n" }.joined())
                }
            }
        }
        if failed { throw ExitCode(ExitStatus.dataError) }
        if mismatch { throw ExitCode(1) }
    }
}

/// How often each listed id occurs in the streams, and the ids that are not listed.
struct IDCensus {
    /// Per listed id: its line number (from 1) in the upper 32 bits, its count in the lower.
    private var entries: [String: UInt64] = [:]
    private(set) var listed = 0
    private var unlisted = 0
    private var firstUnlisted: [String] = []
    static let shown = 5

    init(listedIn path: String) throws {
        let input = try ByteInput.open(path)
        let lines = LineReader(input: input)
        while let id = try lines.nextString() {
            let line = lines.lineNumber
            if id.isEmpty { throw RuEmbedError("\(input.name) line \(line): an empty id") }
            if line >= Int(UInt32.max) { throw RuEmbedError("\(input.name) line \(line): more ids than a list may hold") }
            if let earlier = entries.updateValue(UInt64(line) << 32, forKey: id) {
                throw RuEmbedError("\(input.name) line \(line): the id \(Self.quoted(id)) is listed twice (first on line \(earlier >> 32))")
            }
            listed += 1
        }
    }

    mutating func count(_ ids: [String]) {
        for id in ids {
            if let index = entries.index(forKey: id) {
                let value = entries.values[index]
                if value & 0xFFFF_FFFF < 0xFFFF_FFFF { entries.values[index] = value + 1 }
            } else {
                unlisted += 1
                if firstUnlisted.count < Self.shown { firstUnlisted.append(id) }
            }
        }
    }

    /// One line per kind of difference; empty when the streams hold exactly the ids listed, each once.
    func report() -> [String] {
        // The first few of each kind in the list's order, without sorting the whole list.
        var missing = 0, duplicated = 0
        var firstMissing: [(line: UInt64, id: String)] = [], firstDuplicated: [(line: UInt64, id: String, count: UInt64)] = []
        for (id, value) in entries {
            let (line, count) = (value >> 32, value & 0xFFFF_FFFF)
            if count == 0 {
                missing += 1
                Self.keepFirst(&firstMissing, (line, id), by: \.line)
            } else if count > 1 {
                duplicated += 1
                Self.keepFirst(&firstDuplicated, (line, id, count), by: \.line)
            }
        }
        var lines: [String] = []
        if missing > 0 {
            lines.append("\(missing) of \(listed) listed id\(listed == 1 ? "" : "s") missing (first: \(firstMissing.map { Self.quoted($0.id) }.joined(separator: ", ")))")
        }
        if duplicated > 0 {
            lines.append("\(duplicated) id\(duplicated == 1 ? "" : "s") found more than once (first: \(firstDuplicated.map { "\(Self.quoted($0.id)) ×\($0.count)" }.joined(separator: ", ")))")
        }
        if unlisted > 0 {
            lines.append("\(unlisted) record\(unlisted == 1 ? "" : "s") with ids not listed (first: \(firstUnlisted.map(Self.quoted).joined(separator: ", ")))")
        }
        return lines
    }

    private static func keepFirst<T>(_ kept: inout [T], _ item: T, by line: KeyPath<T, UInt64>) {
        if kept.count < shown {
            kept.append(item)
            kept.sort { $0[keyPath: line] < $1[keyPath: line] }
        } else if item[keyPath: line] < kept[shown - 1][keyPath: line] {
            kept[shown - 1] = item
            kept.sort { $0[keyPath: line] < $1[keyPath: line] }
        }
    }

    /// An id as JSON writes a string: control characters and quotes cannot garble the report.
    static func quoted(_ id: String) -> String {
        var out = ""
        JSONValue.writeString(id, to: &out)
        return out
    }
}

// MARK: - export

enum ExportFormat: String, ExpressibleByArgument, CaseIterable {
    case jsonl, tsv, npy, fvecs
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write vectors as JSON lines, TSV, NumPy .npy or .fvecs.",
        discussion: """
        jsonl: one `{"id": "...", "vector": [...]}` per record. tsv: the id (with \\, tab, newline and CR escaped as \\\\, \\t, \\n, \\r), then one column per dimension. npy: a float32 matrix (needs -o). fvecs: per record an int32 dimension and the float32 values. Values are written as floats whatever the stream's element type: f16 widened, int8 dequantized with its calibration, binary bits as +1/-1. npy and fvecs hold no ids: use --ids to keep them.
        """)

    @Option(name: .customLong("to"), help: "Output format: jsonl, tsv, npy or fvecs.")
    var format: ExportFormat

    @Option(name: .shortAndLong, help: "Output file (default: standard output; required for npy).")
    var output: String?

    @Option(help: "Also write the ids, one per line (TSV-escaped), to this file.")
    var ids: String?

    @Argument(help: "Vector stream (`-` or none: standard input).")
    var file: String = "-"

    func validate() throws {
        if format == .npy && output == nil { throw ValidationError("--to npy needs -o FILE (the header is rewritten once the row count is known)") }
    }

    func run() throws {
        ToolRuntime.start("ru-vec")
        try ToolRuntime.run {
            let records = try VectorRecords(path: file)
            let target = try output.map { try OutputFile(path: $0) }
            let idsTarget = try ids.map { try OutputFile(path: $0) }
            do {
                let out = target?.output ?? ByteOutput.standardOutput
                if format == .npy || format == .fvecs { try ToolRuntime.checkBinaryOutput(out, force: false) }
                if format == .npy, let target, !target.isSeekable {
                    // Checked before writing: the header is rewritten at the end with the row count.
                    throw RuEmbedError("\(target.path): --to npy needs a file it can seek in (the header is rewritten once the row count is known), not a pipe")
                }
                var rows = 0
                var dim = 0
                if format == .npy {
                    try out.write(NPY.header(rows: 0, cols: 0))
                }
                while try records.next({ (id, vector) -> Void in
                    dim = vector.count
                    try write(id: id, vector: vector, record: rows + 1, to: out)
                    if let idsTarget { try idsTarget.output.write(TSV.escape(id) + "\n") }
                }) != nil {
                    rows += 1
                }
                if format == .npy, let target {
                    try target.output.flush()
                    let header = NPY.header(rows: rows, cols: dim)
                    try header.withUnsafeBytes { p in
                        if pwrite(target.output.fd, p.baseAddress, p.count, 0) != p.count {
                            throw RuEmbedError("\(target.path): cannot rewrite the .npy header")
                        }
                    }
                }
                try target?.commit()
                try idsTarget?.commit()
            } catch {
                target?.discard()
                idsTarget?.discard()
                throw error
            }
        }
    }

    private func write(id: String, vector: UnsafeBufferPointer<Float>, record: Int, to out: ByteOutput) throws {
        switch format {
        case .jsonl:
            var line = "{\"id\": "
            JSONValue.writeString(id, to: &line)
            line += ", \"vector\": ["
            for (j, v) in vector.enumerated() {
                guard v.isFinite else { throw RuEmbedError("\(file): record \(record): value \(v) cannot be written as JSON") }
                if j > 0 { line += ", " }
                line += NumberFormat.shortest(v)
            }
            line += "]}\n"
            try out.write(line)
        case .tsv:
            var line = TSV.escape(id)
            for v in vector {
                line += "\t"
                line += NumberFormat.shortest(v)
            }
            line += "\n"
            try out.write(line)
        case .npy:
            try out.write(UnsafeRawBufferPointer(vector))
        case .fvecs:
            var header = [UInt8]()
            header.appendLittleEndian(Int32(vector.count))
            try out.write(header)
            try out.write(UnsafeRawBufferPointer(vector))
        }
    }
}

extension Array where Element == UInt8 {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}

// MARK: - shared output options

struct StreamOutputOptions: ParsableArguments {
    @OptionGroup var destination: BinaryOutputOptions

    @Option(help: "Element type of the output (default: the input's).")
    var dtype: VectorType?

    @Flag(help: "Scale every vector to unit length and mark the stream normalized.")
    var normalize = false

    @Option(help: "Records per chunk at most (default: as many as fit in 8 MiB, up to 65,536).")
    var chunkRecords: Int?

    func validate() throws {
        if let chunkRecords, chunkRecords < 1 || chunkRecords > ChunkFormat.writerMaxRecords {
            throw ValidationError("--chunk-records must be between 1 and \(ChunkFormat.writerMaxRecords)")
        }
    }

    var elementType: ElementType? { dtype?.elementType }

    func writer(to out: ByteOutput, dtype: ElementType, dim: Int, normalized: Bool, metadata: StreamMetadata) -> VectorStreamWriter {
        VectorStreamWriter(output: out, dtype: elementType ?? dtype, dim: dim,
                           flags: normalized || normalize ? .normalized : [], metadata: metadata, level: nil,
                           maxRecords: chunkRecords ?? ChunkFormat.writerMaxRecords, maxBytes: ChunkFormat.writerMaxBytes)
    }
}

// MARK: - cat

struct Cat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Concatenate streams into one, re-chunked, optionally converted.",
        discussion: """
        Inputs must agree on kind, dimension and model digest (and on normalisation unless --normalize, on element type unless --dtype). int8 chunks that need no conversion are copied as they are, so their calibration is kept.
        """)

    @OptionGroup var options: StreamOutputOptions

    @Argument(help: "Streams to concatenate (`-` or none: standard input).")
    var files: [String] = []

    func run() throws {
        ToolRuntime.start("ru-vec")
        try ToolRuntime.run {
            try options.destination.withOutput { out in
                var first: StreamShape?
                var vectorWriter: VectorStreamWriter?
                let chunkWriter = ChunkWriter(output: out)
                var values: [Float] = []
                for path in files.isEmpty ? ["-"] : files {
                    let reader = try VectorStreamReader(path: path)
                    reader.input.beforeWaiting = {
                        try vectorWriter?.flush()
                        try out.flush()
                    }
                    while let chunk = try reader.next() {
                        let shape = StreamShape(chunk)
                        if let first {
                            var a = first, b = shape
                            if options.normalize { a.normalized = false; b.normalized = false }
                            if options.dtype != nil { b.dtype = a.dtype }
                            if let change = a.difference(from: b) {
                                throw StreamPosition(file: reader.name, frame: reader.frames).error("does not match the first input: \(change)")
                            }
                        } else {
                            first = shape
                            if chunk.kind == .tokens && (options.dtype != nil || options.normalize) {
                                throw RuEmbedError.invalidArgument("--dtype and --normalize apply to vectors, and \(reader.name) holds tokens")
                            }
                        }
                        if chunk.kind == .tokens {
                            try chunkWriter.write(chunk)
                            continue
                        }
                        let target = options.elementType ?? chunk.dtype
                        if target == .int8 && chunk.dtype == .int8 && !options.normalize && options.chunkRecords == nil {
                            try vectorWriter?.flush()
                            try chunkWriter.write(chunk)
                            continue
                        }
                        let writer = vectorWriter ?? options.writer(to: out, dtype: chunk.dtype, dim: chunk.dim,
                                                                   normalized: chunk.isNormalized, metadata: chunk.metadata)
                        vectorWriter = writer
                        try writer.setMetadata(chunk.metadata)
                        values = chunk.floats()
                        try values.withUnsafeMutableBufferPointer { v in
                            if options.normalize { VectorMath.l2NormalizeRows(v.baseAddress!, count: chunk.count, dim: chunk.dim) }
                            let first = reader.records - chunk.count
                            for i in 0..<chunk.count {
                                try writer.append(id: chunk.ids[i], vector: UnsafeBufferPointer(rebasing: v[i * chunk.dim..<(i + 1) * chunk.dim]),
                                                  place: StreamPosition(file: reader.name, frame: reader.frames, record: first + i + 1).description)
                            }
                        }
                    }
                    // Each input is one batch: what it held is written before the next is read.
                    try vectorWriter?.flush()
                }
                try vectorWriter?.finish()
            }
        }
    }
}

// MARK: - import

enum ImportFormat: String, ExpressibleByArgument, CaseIterable {
    case jsonl, tsv, npy, fvecs
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a stream from JSON lines, TSV, NumPy .npy or .fvecs vectors.",
        discussion: """
        Ids come from the jsonl "id" field (a string or a number), the first TSV column (TSV-escaped), or --ids FILE (one per line); otherwise they are 1-based positions. Every record must have the same dimension and finite values.
        """)

    @Option(name: .customLong("from"), help: "Input format: jsonl, tsv, npy or fvecs.")
    var format: ImportFormat

    @Option(help: "Take the ids from this file, one per line (TSV-escaped).")
    var ids: String?

    @OptionGroup var options: StreamOutputOptions

    @Argument(help: "Input file (`-` or none: standard input).")
    var file: String = "-"

    func run() throws {
        ToolRuntime.start("ru-vec")
        try ToolRuntime.run {
            let input = try ByteInput.open(file)
            let idLines = try ids.map { LineReader(input: try ByteInput.open($0)) }
            try options.destination.withOutput { out in
                var writer: VectorStreamWriter?
                var record = 0
                input.beforeWaiting = {
                    try writer?.flush()
                    try out.flush()
                }
                func emit(_ id: String?, _ vector: [Float], place: String) throws {
                    record += 1
                    var id = id
                    if let idLines {
                        guard let line = try idLines.nextString() else {
                            throw RuEmbedError("\(idLines.input.name): has \(record - 1) ids, fewer than the records of \(input.name)")
                        }
                        id = TSV.unescape(line)
                    }
                    if writer == nil {
                        guard !vector.isEmpty else { throw RuEmbedError("\(place): empty vector") }
                        writer = options.writer(to: out, dtype: .f32, dim: vector.count, normalized: false, metadata: StreamMetadata())
                    }
                    guard vector.count == writer!.dim else {
                        throw RuEmbedError("\(place): dimension \(vector.count), but the first record has \(writer!.dim)")
                    }
                    var vector = vector
                    if options.normalize {
                        vector.withUnsafeMutableBufferPointer { VectorMath.l2NormalizeRows($0.baseAddress!, count: 1, dim: $0.count) }
                    }
                    try writer!.append(id: id ?? String(record), vector: vector, place: place)
                }
                switch format {
                case .jsonl: try VectorTextImport.jsonl(input, emit)
                case .tsv: try VectorTextImport.tsv(input, emit)
                case .npy: try VectorBinaryImport.npy(input, emit)
                case .fvecs: try VectorBinaryImport.fvecs(input, emit)
                }
                if let idLines, try idLines.nextString() != nil {
                    throw RuEmbedError("\(idLines.input.name): has more ids than the \(record) records of \(input.name)")
                }
                try writer?.finish()
            }
        }
    }
}
