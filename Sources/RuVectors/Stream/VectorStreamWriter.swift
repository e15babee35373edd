import RuCore
/// Writes a stream: chunks compressed one per zstd frame, with content size and checksum.
package final class ChunkWriter {
    package let output: ByteOutput
    private let compressor: ZstdCompressor
    package private(set) var frames = 0
    package private(set) var records = 0

    private let level: Int32?

    /// `level` nil chooses per chunk (see `defaultLevel`).
    package init(output: ByteOutput, level: Int32? = nil) {
        self.output = output
        self.level = level
        compressor = ZstdCompressor(level: 3)
    }

    /// Float and bit payloads barely compress (7 % for f32 at level 3) but Huffman-coded
    /// literals halve the reading speed, so their chunks use zstd's fast level -1, which
    /// stores them as they are and still compresses repeated ids. Token ids and int8 codes
    /// compress well: zstd's default level 3.
    package static func defaultLevel(for chunk: Chunk) -> Int32 {
        switch chunk.dtype {
        case .f32, .f16, .binary: -1
        case .int8, .u32: 3
        }
    }

    private var encoded: [UInt8] = []

    package func write(_ chunk: Chunk) throws {
        chunk.encode(into: &encoded)
        // The last guard: a chunk a reader would refuse is never written. The stream writers
        // below size their chunks so this does not happen; chunks copied from a reader were
        // checked on the way in.
        guard encoded.count <= ChunkFormat.readerMaxBytes else {
            throw RuEmbedError("\(output.name): refusing to write a chunk of \(encoded.count) bytes, over the \(ChunkFormat.readerMaxBytes) bytes a reader accepts")
        }
        let bytes = encoded
        compressor.setLevel(level ?? ChunkWriter.defaultLevel(for: chunk))
        let frame = try bytes.withUnsafeBytes { try compressor.compress($0) }
        try output.write(frame)
        frames += 1
        records += chunk.count
    }

    package func flushOutput() throws {
        try output.flush()
    }
}

/// Accumulates vectors and writes them as bounded chunks.
///
/// A chunk is closed when it reaches `ChunkFormat.writerMaxRecords` records or would pass
/// `ChunkFormat.writerMaxBytes` of vectors, when the metadata changes, and whenever the caller
/// ends an input batch with `flush()`, so memory stays bounded and a pipe sees vectors as
/// they come. It is also closed before the next record would take it past
/// `ChunkFormat.readerMaxBytes` (long ids), so every chunk written is one a reader accepts.
///
/// A record is refused, with an error naming its `place`, when it holds a NaN or an infinity
/// (or a value f16 cannot hold, for f16 output), or when it is too large for any chunk: a
/// record's id and vector, with the chunk header and metadata, must fit in one chunk of
/// `ChunkFormat.readerMaxBytes`. Nothing is written for a refused record.
public final class VectorStreamWriter {
    package let writer: ChunkWriter
    /// The stored element type.
    public let dtype: ElementType
    /// The width of every vector.
    public let dim: Int
    /// The flags of every chunk.
    public let flags: ChunkFlags
    /// The metadata of the next chunk.
    public private(set) var metadata: StreamMetadata
    private let maxRecords: Int
    private let rowBytes: Int
    private var ids: [String] = []
    private var values: [Float] = []
    /// Bytes of the open chunk's ids section (lengths and ids).
    private var idsBytes = 0
    /// Bytes of the metadata as encoded in each chunk (without an int8 calibration).
    private var extensionBytes: Int

    /// A writer of `dim`-wide vectors of type `dtype` to `output`, with `metadata` in every
    /// chunk. `dtype` is one of ``ElementType/f32``, ``ElementType/f16``, ``ElementType/int8``
    /// and ``ElementType/binary``, and `dim` is positive. `level` is a zstd level (nil: the
    /// format's default for the type). Nothing is written before the first chunk fills or
    /// ``flush()`` is called.
    public convenience init(output: ByteOutput, dtype: ElementType, dim: Int, flags: ChunkFlags = [],
                            metadata: StreamMetadata = StreamMetadata(), level: Int32? = nil) {
        self.init(output: output, dtype: dtype, dim: dim, flags: flags, metadata: metadata, level: level,
                  maxRecords: ChunkFormat.writerMaxRecords, maxBytes: ChunkFormat.writerMaxBytes)
    }

    /// The same with the chunk limits chosen (tests make small chunks with them).
    package init(output: ByteOutput, dtype: ElementType, dim: Int, flags: ChunkFlags,
                 metadata: StreamMetadata, level: Int32?, maxRecords: Int, maxBytes: Int) {
        precondition(ElementType.vectorTypes.contains(dtype) && dim > 0)
        writer = ChunkWriter(output: output, level: level)
        self.dtype = dtype
        self.dim = dim
        self.flags = flags
        self.metadata = metadata.withoutCalibration
        extensionBytes = self.metadata.encoded().count
        rowBytes = dtype.rowBytes(dim: dim)
        self.maxRecords = max(1, min(maxRecords, maxBytes / max(1, rowBytes)))
    }

    /// Chunks (zstd frames) written so far.
    public var frames: Int { writer.frames }
    /// Records appended so far, written or still buffered.
    public var records: Int { writer.records + ids.count }

    /// Size of a chunk of the open records plus `extraRecords` records whose ids take
    /// `extraIDBytes`, without an int8 calibration (nil: beyond any size).
    private func chunkSize(extraRecords: Int, extraIDBytes: Int) -> Int? {
        let records = ids.count + extraRecords
        let (payload, overflow) = records.multipliedReportingOverflow(by: rowBytes)
        guard !overflow else { return nil }
        return ChunkFormat.chunkSize(extensionBytes: extensionBytes, idsBytes: idsBytes + 4 * extraRecords + extraIDBytes,
                                     payloadBytes: payload)
    }

    /// Why a record with this id can never be written (no chunk a reader accepts could hold
    /// it, whatever its values), or nil. Callers that read long inputs ask before the
    /// expensive work; `append` asks too.
    public func problem(id: String) -> String? {
        let idBytes = id.utf8.count
        let alone = ChunkFormat.chunkSize(extensionBytes: extensionBytes, idsBytes: 4 + idBytes, payloadBytes: rowBytes)
        if let alone, alone <= ChunkFormat.readerMaxBytes { return nil }
        return "a record of \(dim) \(dtype) values with a \(idBytes)-byte id makes a chunk of \(alone.map(String.init) ?? "too many") bytes"
            + (extensionBytes > 0 ? " (with \(extensionBytes) bytes of metadata)" : "")
            + ", over the \(ChunkFormat.readerMaxBytes) bytes a reader accepts"
    }

    /// Adds a record; `place` names it in errors (e.g. `file: line 3`), the output's record
    /// number when nil.
    public func append(id: String, vector: UnsafeBufferPointer<Float>, place: @autoclosure () -> String? = nil) throws {
        precondition(vector.count == dim)
        func refuse(_ message: String) -> RuEmbedError {
            RuEmbedError("\(place() ?? "\(writer.output.name): record \(records + 1)"): \(message)")
        }
        if let j = Self.firstNonFinite(vector) {
            throw refuse("value \(j + 1) is \(vector[j].isNaN ? "NaN" : vector[j] > 0 ? "+infinity" : "-infinity"); vector streams hold finite values only")
        }
        if dtype == .f16, let j = vector.firstIndex(where: { !Float16($0).isFinite }) {
            throw refuse("value \(j + 1) (\(vector[j])) is beyond the f16 range (±65504)")
        }
        if let problem = problem(id: id) { throw refuse(problem) }
        if dtype == .int8, let problem = int8Problem(id: id, vector: vector) { throw refuse(problem) }
        let idBytes = id.utf8.count
        if !ids.isEmpty, (chunkSize(extraRecords: 1, extraIDBytes: idBytes) ?? .max) > ChunkFormat.readerMaxBytes {
            try flush()
        }
        ids.append(id)
        idsBytes += 4 + idBytes
        values.append(contentsOf: vector)
        if ids.count >= maxRecords { try flush() }
    }

    /// Appends one record; as `append(id:vector:place:)` with a buffer pointer.
    public func append(id: String, vector: [Float], place: @autoclosure () -> String? = nil) throws {
        try vector.withUnsafeBufferPointer { try append(id: id, vector: $0, place: place()) }
    }

    /// The index of the first NaN or infinity: a branch-free pass first (see
    /// `Chunk.firstNonFiniteRecord`), the search only when there is one.
    static func firstNonFinite(_ vector: UnsafeBufferPointer<Float>) -> Int? {
        var acc: UInt32 = 0
        for v in vector { acc |= (v.bitPattern & 0x7F80_0000) &+ 0x0080_0000 }
        guard acc & 0x8000_0000 != 0 else { return nil }
        return vector.firstIndex { !$0.isFinite }
    }

    /// An int8 chunk also carries its calibration, two numbers per dimension, in its
    /// metadata; for very large dimensions a record alone can then be too big. Exact (the
    /// record's own one-record chunk is built) only when a bound says it might be.
    private func int8Problem(id: String, vector: UnsafeBufferPointer<Float>) -> String? {
        // Each number is at most 24 characters of JSON and a separator, and at least 1 and one.
        func size(perNumber: Int) -> Int {
            ChunkFormat.chunkSize(extensionBytes: extensionBytes + 64 + 2 * perNumber * dim,
                                  idsBytes: 4 + id.utf8.count, payloadBytes: rowBytes) ?? .max
        }
        if size(perNumber: 25) <= ChunkFormat.readerMaxBytes { return nil }
        let least = size(perNumber: 2)
        if least > ChunkFormat.readerMaxBytes {
            return "a record of \(dim) int8 values with its calibration (two numbers per dimension) makes a chunk of at least \(least) bytes, over the \(ChunkFormat.readerMaxBytes) bytes a reader accepts"
        }
        let chunk = Chunk.vectors(ids: [id], floats: vector.baseAddress!, dim: dim, dtype: dtype, flags: flags, metadata: metadata)
        let size = chunk.encode().count
        if size <= ChunkFormat.readerMaxBytes { return nil }
        return "a record of \(dim) int8 values with its calibration makes a chunk of \(size) bytes, over the \(ChunkFormat.readerMaxBytes) bytes a reader accepts"
    }

    /// Later records carry `metadata`; the open chunk is closed first if it differs.
    public func setMetadata(_ metadata: StreamMetadata) throws {
        let stripped = metadata.withoutCalibration
        if stripped == self.metadata { return }
        try flush()
        self.metadata = stripped
        extensionBytes = stripped.encoded().count
    }

    /// Closes the open chunk, if it has records, and writes it.
    public func flush() throws {
        guard !ids.isEmpty else { return }
        try values.withUnsafeBufferPointer { try write(0..<ids.count, floats: $0.baseAddress!) }
        ids.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        idsBytes = 0
    }

    /// Writes records `range` as one chunk, or, for int8, as two halves when the calibration
    /// makes the chunk too big (every record alone was checked to fit when appended).
    private func write(_ range: Range<Int>, floats: UnsafePointer<Float>) throws {
        let chunk = Chunk.vectors(ids: Array(ids[range]), floats: floats + range.lowerBound * dim, dim: dim, dtype: dtype,
                                  flags: flags, metadata: metadata)
        if dtype == .int8 && range.count > 1 {
            let header = chunk.metadata.encoded().count
            if ChunkFormat.chunkSize(extensionBytes: header, idsBytes: chunk.ids.reduce(4 * chunk.count) { $0 + $1.utf8.count },
                                     payloadBytes: chunk.payload.count) ?? .max > ChunkFormat.readerMaxBytes {
                let middle = range.lowerBound + range.count / 2
                try write(range.lowerBound..<middle, floats: floats)
                try write(middle..<range.upperBound, floats: floats)
                return
            }
        }
        try writer.write(chunk)
    }

    /// Writes what is left and flushes the output.
    public func finish() throws {
        try flush()
        try writer.flushOutput()
    }
}

/// Accumulates token id lists and writes them as chunks a reader accepts: a chunk is closed
/// at `ChunkFormat.writerMaxRecords` records, whenever the caller calls `flush()` (at the
/// end of each input batch), and before the next record would take it past
/// `ChunkFormat.readerMaxBytes`. A record too large for any chunk (a huge id) is refused with
/// an error naming its place.
public final class TokenStreamWriter {
    package let writer: ChunkWriter
    /// The metadata of the next chunk.
    public private(set) var metadata: StreamMetadata
    private var extensionBytes: Int
    private var ids: [String] = []
    private var lists: [[UInt32]] = []
    private var idsBytes = 0, tokenBytes = 0

    /// A writer of token lists to `output` with `metadata` in every chunk; `level` is a zstd level
    /// (nil: the format's default).
    public init(output: ByteOutput, metadata: StreamMetadata = StreamMetadata(), level: Int32? = nil) {
        writer = ChunkWriter(output: output, level: level)
        self.metadata = metadata
        extensionBytes = metadata.encoded().count
    }

    /// Records appended so far, written or still buffered.
    public var records: Int { writer.records + ids.count }

    private func chunkSize(idsBytes: Int, tokenBytes: Int) -> Int? {
        ChunkFormat.chunkSize(extensionBytes: extensionBytes, idsBytes: idsBytes, payloadBytes: tokenBytes)
    }

    /// Why a record with this id and this many tokens can never be written, or nil.
    public func problem(id: String, tokens: Int) -> String? {
        let idBytes = id.utf8.count
        let (payload, overflow) = tokens.addingReportingOverflow(1)
        let size = overflow ? nil : chunkSize(idsBytes: 4 + idBytes, tokenBytes: 4 * payload)
        if let size, size <= ChunkFormat.readerMaxBytes { return nil }
        return "a record of \(tokens) tokens with a \(idBytes)-byte id makes a chunk of \(size.map(String.init) ?? "too many") bytes, over the \(ChunkFormat.readerMaxBytes) bytes a reader accepts"
    }

    /// Appends one record of token ids; `place` names it in errors. A bad id or a record too
    /// large for a chunk is refused and nothing of it is written.
    public func append(id: String, tokens: [UInt32], place: @autoclosure () -> String? = nil) throws {
        if let problem = problem(id: id, tokens: tokens.count) {
            throw RuEmbedError("\(place() ?? "\(writer.output.name): record \(records + 1)"): \(problem)")
        }
        let recordIDBytes = 4 + id.utf8.count, recordTokenBytes = 4 * (1 + tokens.count)
        if !ids.isEmpty,
           (chunkSize(idsBytes: idsBytes + recordIDBytes, tokenBytes: tokenBytes + recordTokenBytes) ?? .max) > ChunkFormat.readerMaxBytes {
            try flush()
        }
        ids.append(id)
        lists.append(tokens)
        idsBytes += recordIDBytes
        tokenBytes += recordTokenBytes
        if ids.count >= ChunkFormat.writerMaxRecords { try flush() }
    }

    /// Closes the open chunk, if it has records, and writes it.
    public func flush() throws {
        guard !ids.isEmpty else { return }
        try writer.write(Chunk.tokens(ids: ids, lists: lists, metadata: metadata))
        ids.removeAll(keepingCapacity: true)
        lists.removeAll(keepingCapacity: true)
        idsBytes = 0
        tokenBytes = 0
    }

    /// Writes the last chunk and flushes the output (which stays open).
    public func finish() throws {
        try flush()
        try writer.flushOutput()
    }
}
