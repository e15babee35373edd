/// Writes a stream: chunks compressed one per zstd frame, with content size and checksum.
public final class ChunkWriter {
    public let output: ByteOutput
    private let compressor: ZstdCompressor
    public private(set) var frames = 0
    public private(set) var records = 0

    private let level: Int32?

    /// `level` nil chooses per chunk (see `defaultLevel`).
    public init(output: ByteOutput, level: Int32? = nil) {
        self.output = output
        self.level = level
        compressor = ZstdCompressor(level: 3)
    }

    /// Float and bit payloads barely compress (7 % for f32 at level 3) but Huffman-coded
    /// literals halve the reading speed, so their chunks use zstd's fast level -1, which
    /// stores them as they are and still compresses repeated ids. Token ids and int8 codes
    /// compress well: zstd's default level 3.
    public static func defaultLevel(for chunk: Chunk) -> Int32 {
        switch chunk.dtype {
        case .f32, .f16, .binary: -1
        case .int8, .u32: 3
        }
    }

    private var encoded: [UInt8] = []

    public func write(_ chunk: Chunk) throws {
        chunk.encode(into: &encoded)
        let bytes = encoded
        compressor.setLevel(level ?? ChunkWriter.defaultLevel(for: chunk))
        let frame = try bytes.withUnsafeBytes { try compressor.compress($0) }
        try output.write(frame)
        frames += 1
        records += chunk.count
    }

    public func flushOutput() throws {
        try output.flush()
    }
}

/// Accumulates vectors and writes them as bounded chunks.
///
/// A chunk is closed when it reaches `ChunkFormat.writerMaxRecords` records or would pass
/// `ChunkFormat.writerMaxBytes`, when the metadata changes, and whenever the caller ends an
/// input batch with `flush()`, so memory stays bounded and a pipe sees vectors as they come.
public final class VectorStreamWriter {
    public let writer: ChunkWriter
    public let dtype: ElementType
    public let dim: Int
    public let flags: ChunkFlags
    public private(set) var metadata: StreamMetadata
    private let maxRecords: Int
    private var ids: [String] = []
    private var values: [Float] = []

    public init(output: ByteOutput, dtype: ElementType, dim: Int, flags: ChunkFlags = [],
                metadata: StreamMetadata = StreamMetadata(), level: Int32? = nil,
                maxRecords: Int = ChunkFormat.writerMaxRecords, maxBytes: Int = ChunkFormat.writerMaxBytes) {
        precondition(ElementType.vectorTypes.contains(dtype) && dim > 0)
        writer = ChunkWriter(output: output, level: level)
        self.dtype = dtype
        self.dim = dim
        self.flags = flags
        self.metadata = metadata.withoutCalibration
        self.maxRecords = max(1, min(maxRecords, maxBytes / max(1, dtype.rowBytes(dim: dim))))
    }

    public var frames: Int { writer.frames }
    public var records: Int { writer.records + ids.count }

    public func append(id: String, vector: UnsafeBufferPointer<Float>) throws {
        precondition(vector.count == dim)
        ids.append(id)
        values.append(contentsOf: vector)
        if ids.count >= maxRecords { try flush() }
    }

    public func append(id: String, vector: [Float]) throws {
        try vector.withUnsafeBufferPointer { try append(id: id, vector: $0) }
    }

    /// Later records carry `metadata`; the open chunk is closed first if it differs.
    public func setMetadata(_ metadata: StreamMetadata) throws {
        let stripped = metadata.withoutCalibration
        if stripped == self.metadata { return }
        try flush()
        self.metadata = stripped
    }

    /// Closes the open chunk, if it has records, and writes it.
    public func flush() throws {
        guard !ids.isEmpty else { return }
        let chunk = values.withUnsafeBufferPointer {
            Chunk.vectors(ids: ids, floats: $0.baseAddress!, dim: dim, dtype: dtype, flags: flags, metadata: metadata)
        }
        ids.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        try writer.write(chunk)
    }

    /// Writes what is left and flushes the output.
    public func finish() throws {
        try flush()
        try writer.flushOutput()
    }
}
