import RuCore
/// Record-at-a-time and block-at-a-time access to the vectors of a stream, as floats.
public final class VectorRecords {
    /// The stream read from.
    public let reader: VectorStreamReader
    private var chunk: Chunk?
    private var floats: [Float] = []
    private var index = 0
    /// The first chunk's metadata (nil until a chunk was read).
    public private(set) var metadata: StreamMetadata?

    /// Records of the stream `reader` reads; a token stream is refused at the first read.
    public init(reader: VectorStreamReader) {
        self.reader = reader
    }

    /// Records of the stream in the file at `path` (`-`: standard input).
    public convenience init(path: String) throws {
        self.init(reader: try VectorStreamReader(path: path))
    }

    /// The stream's name in messages.
    public var name: String { reader.name }
    /// The stream's shape, fixed by its first chunk (nil before a read).
    public var shape: StreamShape? { reader.shape }

    /// Reads chunks until one with records is current; false at the end of the stream.
    private func advance(decodingRows: Bool = true) throws -> Bool {
        while chunk == nil || index >= chunk!.count {
            // Let go of the old chunk first: its payload shares the reader's buffer, which can
            // then be reused in place instead of copied.
            chunk = nil
            floats = []
            guard let next = try reader.next() else {
                chunk = nil
                return false
            }
            guard next.kind == .vectors else {
                throw StreamPosition(file: name, frame: reader.frames).error("this is a token stream, not vectors (embed it with ru-embed first)")
            }
            if metadata == nil { metadata = next.metadata }
            chunk = next
            floats = []
            index = 0
        }
        if decodingRows && floats.isEmpty, let chunk {
            floats = chunk.floats()
        }
        return true
    }

    /// Reads up to the first chunk so `shape` and `metadata` are known; false for an empty stream.
    public func peek() throws -> Bool {
        // The rows are decoded by the first `next` (a copy of the chunk's payload that
        // `nextBlock` never needs).
        try advance(decodingRows: false)
    }

    /// The next record; the vector is valid until the next call.
    public func next<R>(_ body: (String, UnsafeBufferPointer<Float>) throws -> R) throws -> R? {
        guard try advance(), let chunk else { return nil }
        let dim = chunk.dim
        let i = index
        index += 1
        return try floats.withUnsafeBufferPointer { all in
            try body(chunk.ids[i], UnsafeBufferPointer(rebasing: all[i * dim..<(i + 1) * dim]))
        }
    }

    /// Appends up to `maxRows` records to `values` and `ids`; returns how many were added.
    /// Rows are decoded straight from the chunk into `values`.
    /// With `stopBeforeWaiting`, a block that has records ends early rather than wait for a
    /// pipe, so a slow producer's records are answered as they come.
    package func nextBlock(maxRows: Int, values: inout [Float], ids: inout [String], stopBeforeWaiting: Bool = false) throws -> Int {
        var added = 0
        while added < maxRows {
            let chunkDone = chunk.map { index >= $0.count } ?? true
            if stopBeforeWaiting && added > 0 && chunkDone && !reader.canReadWithoutWaiting { break }
            guard try advance(decodingRows: false), let chunk else { break }
            let take = min(maxRows - added, chunk.count - index)
            let dim = chunk.dim
            if values.capacity < values.count + take * dim {
                // Room for the rest of the block at once (up to 64 MiB), not doubling chunk by
                // chunk: each doubling faults in a fresh buffer and copies the old one. Reading
                // 10,000 queries of 768 floats this way took 0.04 s, 0.036 of it page faults and
                // copies (perf, 2026-12-03 Zen 5). Never less than double, so that callers that
                // gather a whole stream in many calls still grow geometrically.
                let rest = min(maxRows - added, (16 << 20) / max(1, dim)) * dim
                values.reserveCapacity(max(values.count + take * dim, values.count + rest, 2 * values.count))
            }
            if chunk.dtype == .f32 {
                // Straight from the payload: one copy, no zero fill first.
                let first = index
                chunk.payload.withUnsafeBytes { raw in
                    values.append(contentsOf: UnsafeBufferPointer(start: raw.baseAddress!.assumingMemoryBound(to: Float.self) + first * dim,
                                                                  count: take * dim))
                }
            } else {
                let start = values.count
                values.append(contentsOf: repeatElement(0, count: take * dim))
                values.withUnsafeMutableBufferPointer { v in
                    chunk.decodeFloats(index..<index + take, into: v.baseAddress! + start)
                }
            }
            ids.append(contentsOf: chunk.ids[index..<index + take])
            index += take
            added += take
        }
        return added
    }
}

extension VectorRecords {
    /// Calls `body(rows, count, ids)` for each block of at most `maxRows` records to the end of
    /// the stream: `count` rows of floats (row-major, which `body` may change in place) and their
    /// ids, in buffers reused from block to block.
    package func forEachBlock(maxRows: Int, _ body: (UnsafeMutablePointer<Float>, Int, [String]) throws -> Void) throws {
        var values: [Float] = [], ids: [String] = []
        while true {
            values.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
            let count = try nextBlock(maxRows: maxRows, values: &values, ids: &ids)
            if count == 0 { return }
            try values.withUnsafeMutableBufferPointer { try body($0.baseAddress!, count, ids) }
        }
    }

    /// Calls `body(rows, count, ids)` for each block of at most `maxRows` records (a block
    /// never spans two chunks) to the end of the stream: read-only rows, valid during the call
    /// only. f32 rows are the chunk's own bytes, not copied: ru-cluster reads its input twice,
    /// and copying each block out of the chunk was a quarter of the reading thread's samples
    /// (memmove, perf, bench/cluster on Zen 5).
    package func forEachBlockView(maxRows: Int, _ body: (UnsafePointer<Float>, Int, ArraySlice<String>) throws -> Void) throws {
        precondition(maxRows > 0)
        var decoded: [Float] = []
        while try advance(decodingRows: false), let chunk {
            let first = index, take = min(maxRows, chunk.count - index), dim = chunk.dim
            index += take
            let ids = chunk.ids[first..<first + take]
            if chunk.dtype == .f32 {
                try chunk.payload.withUnsafeBytes { raw in
                    try body(raw.baseAddress!.assumingMemoryBound(to: Float.self) + first * dim, take, ids)
                }
            } else {
                decoded.removeAll(keepingCapacity: true)
                decoded.append(contentsOf: repeatElement(0, count: take * dim))
                decoded.withUnsafeMutableBufferPointer { chunk.decodeFloats(first..<first + take, into: $0.baseAddress!) }
                try decoded.withUnsafeBufferPointer { try body($0.baseAddress!, take, ids) }
            }
        }
    }

    /// Warnings when two streams were made by different models or at different precisions:
    /// their cosines are then not comparable. Empty when they are.
    package static func incomparability(_ a: VectorRecords, _ b: VectorRecords) -> [String] {
        var warnings: [String] = []
        if let da = a.shape?.modelDigest, let db = b.shape?.modelDigest, da != db {
            warnings.append("warning: \(a.name) and \(b.name) were made by different models (digest \(da) vs \(db)); their cosines mean little")
        }
        if let pa = a.metadata?["precision"]?.stringValue, let pb = b.metadata?["precision"]?.stringValue, pa != pb {
            warnings.append("warning: \(a.name) was computed at \(pa) precision and \(b.name) at \(pb)")
        }
        return warnings
    }
}
