import RuCore
/// One decoded chunk: the records of one zstd frame.
///
/// Ids are kept as Strings (validated UTF-8); the payload stays as the raw little-endian
/// bytes of the file, one dense row per record, decoded on demand.
public struct Chunk: Sendable {
    /// Vectors or token id lists.
    public var kind: ChunkKind
    /// How each value is stored: f32, f16, int8, binary, or u32 for tokens.
    public var dtype: ElementType
    /// Vector dimension; 0 for token chunks.
    public var dim: Int
    /// Flags of the chunk, e.g. `.normalized`.
    public var flags: ChunkFlags
    /// The JSON metadata the writer put in this chunk (model, prompt, pooling, …).
    public var metadata: StreamMetadata
    /// The record ids, one per record.
    public var ids: [String]
    /// The payload bytes; a slice that may share the reader's decompression buffer.
    package var payload: ArraySlice<UInt8>

    /// The number of records.
    public var count: Int { ids.count }
    /// Whether the writer declared the vectors unit length.
    public var isNormalized: Bool { flags.contains(.normalized) }
    /// Bytes per stored row.
    public var rowBytes: Int { dtype.rowBytes(dim: dim) }

    package init(kind: ChunkKind, dtype: ElementType, dim: Int, flags: ChunkFlags,
                metadata: StreamMetadata, ids: [String], payload: ArraySlice<UInt8>) {
        self.kind = kind
        self.dtype = dtype
        self.dim = dim
        self.flags = flags
        self.metadata = metadata
        self.ids = ids
        self.payload = payload
    }

    // MARK: Encoding

    package func encode() -> [UInt8] {
        var out: [UInt8] = []
        encode(into: &out)
        return out
    }

    /// Encodes into `out`, replacing its contents but keeping its capacity (writers reuse one
    /// buffer instead of faulting in fresh pages for every chunk).
    package func encode(into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        let ext = metadata.encoded()
        var idBytes = 0
        for id in ids { idBytes += id.utf8.count }
        let idsLength = 4 * ids.count + idBytes
        let header = ChunkHeader(kind: kind, dtype: dtype, dim: dim, count: ids.count, flags: flags,
                                 extensionLength: ext.count, idsLength: idsLength, payloadLength: payload.count)
        out.reserveCapacity(header.totalSize)
        header.encode(into: &out)
        out.append(contentsOf: ext)
        for id in ids { out.appendLE(UInt32(id.utf8.count)) }
        for id in ids { out.append(contentsOf: id.utf8) }
        out.append(contentsOf: [UInt8](repeating: 0, count: header.payloadOffset - out.count))
        out.append(contentsOf: payload)
    }

    // MARK: Decoding

    /// Parses and checks the first `size` bytes of `bytes` as a chunk. The payload is a slice
    /// of `bytes`, shared rather than copied. Errors carry the 0-based record where one applies.
    package static func decode(_ bytes: [UInt8], size: Int) throws -> Chunk {
        var (chunk, payload) = try bytes.withUnsafeBytes { try decodeHeaderAndIDs(UnsafeRawBufferPointer(rebasing: $0[0..<size])) }
        chunk.payload = bytes[payload]
        try chunk.checkPayload()
        return chunk
    }

    /// Everything but the payload, and where the payload lies in `p`.
    private static func decodeHeaderAndIDs(_ p: UnsafeRawBufferPointer) throws -> (Chunk, Range<Int>) {
        let header = try ChunkHeader.decode(p)
        let count = header.count
        var offset = header.headerSize
        let metadata = try StreamMetadata.decode(UnsafeRawBufferPointer(rebasing: p[offset..<offset + header.extensionLength]))
        offset += header.extensionLength

        // Ids: count lengths, then the UTF-8 bytes.
        guard header.idsLength >= 4 * count else {
            throw ChunkDecodeError("sizes do not add up: \(count) records need \(4 * count) bytes of id lengths, the ids section has \(header.idsLength)")
        }
        var ids: [String] = []
        ids.reserveCapacity(count)
        var textOffset = offset + 4 * count
        let idsEnd = offset + header.idsLength
        for i in 0..<count {
            let length = Int(p.loadLE(UInt32.self, at: offset + 4 * i))
            guard length <= idsEnd - textOffset else {
                throw ChunkDecodeError("sizes do not add up: id lengths run past the ids section", record: i)
            }
            guard let id = String(validating: UnsafeRawBufferPointer(rebasing: p[textOffset..<textOffset + length]), as: UTF8.self) else {
                throw ChunkDecodeError("invalid UTF-8 in id", record: i)
            }
            ids.append(id)
            textOffset += length
        }
        guard textOffset == idsEnd else {
            throw ChunkDecodeError("sizes do not add up: the ids section has \(idsEnd - textOffset) bytes beyond its ids")
        }

        let payloadStart = header.payloadOffset
        let chunk = Chunk(kind: header.kind, dtype: header.dtype, dim: header.dim, flags: header.flags,
                          metadata: metadata, ids: ids, payload: [])
        return (chunk, payloadStart..<payloadStart + header.payloadLength)
    }

    private func checkPayload() throws {
        switch kind {
        case .vectors:
            let expected = count * rowBytes
            guard payload.count == expected else {
                throw ChunkDecodeError("sizes do not add up: \(count) records of \(dim) \(dtype) need \(expected) payload bytes, the chunk has \(payload.count)")
            }
            // A vector stream never carries a non-finite value (docs/FORMAT.md): what a
            // reader passes on decodes to finite floats, whatever the element type.
            switch dtype {
            case .f32, .f16:
                if let record = firstNonFiniteRecord() {
                    throw ChunkDecodeError("a value is not finite (NaN or infinity); vector streams hold finite values only", record: record)
                }
            case .int8:
                _ = try Int8Calibration(metadata: metadata, dim: dim)
            case .binary, .u32:
                break
            }
        case .tokens:
            guard payload.count >= 4 * count, payload.count % 4 == 0 else {
                throw ChunkDecodeError("sizes do not add up: token payload of \(payload.count) bytes for \(count) records")
            }
            var total = 0
            payload.withUnsafeBytes { p in
                for i in 0..<count { total += Int(p.loadLE(UInt32.self, at: 4 * i)) }
            }
            guard 4 * (count + total) == payload.count else {
                throw ChunkDecodeError("sizes do not add up: token lengths sum to \(total), the payload holds \(payload.count / 4 - count) ids")
            }
        }
    }

    /// The first record (0-based) of an f32 or f16 payload holding a NaN or an infinity.
    /// One branch-free pass that the compiler vectorises: an exponent of all ones plus one
    /// carries into the sign bit, so OR-ing `(bits & exponent) + lowest exponent bit` over
    /// the payload sets the sign bit exactly when some value is not finite. Only then are
    /// the records searched.
    func firstNonFiniteRecord() -> Int? {
        payload.withUnsafeBytes { raw -> Int? in
            switch dtype {
            case .f32:
                let words = raw.bindMemory(to: UInt32.self)
                var acc: UInt32 = 0
                for w in words { acc |= (UInt32(littleEndian: w) & 0x7F80_0000) &+ 0x0080_0000 }
                guard acc & 0x8000_0000 != 0 else { return nil }
                return words.firstIndex { UInt32(littleEndian: $0) & 0x7F80_0000 == 0x7F80_0000 }.map { $0 / dim }
            case .f16:
                let halves = raw.bindMemory(to: UInt16.self)
                var acc: UInt16 = 0
                for h in halves { acc |= (UInt16(littleEndian: h) & 0x7C00) &+ 0x0400 }
                guard acc & 0x8000 != 0 else { return nil }
                return halves.firstIndex { UInt16(littleEndian: $0) & 0x7C00 == 0x7C00 }.map { $0 / dim }
            default:
                return nil
            }
        }
    }

    // MARK: Vectors as floats

    /// Writes records `records` as `dim` floats each, row after row: f16 widened, int8
    /// dequantized with the chunk's calibration, binary bits as +1 / -1.
    package func decodeFloats(_ records: Range<Int>? = nil, into out: UnsafeMutablePointer<Float>) {
        precondition(kind == .vectors)
        let records = records ?? 0..<count
        let first = records.lowerBound
        let n = records.count * dim
        payload.withUnsafeBytes { raw in
            switch dtype {
            case .f32:
                // The file is little-endian, as is every platform Swift runs on here.
                UnsafeMutableRawPointer(out).copyMemory(from: raw.baseAddress! + 4 * first * dim, byteCount: 4 * n)
            case .f16:
                let h = raw.bindMemory(to: UInt16.self).baseAddress! + first * dim
                for i in 0..<n { out[i] = Float(Float16(bitPattern: UInt16(littleEndian: h[i]))) }
            case .int8:
                let calibration = try! Int8Calibration(metadata: metadata, dim: dim)
                let q = raw.bindMemory(to: Int8.self).baseAddress! + first * dim
                calibration.starts.withUnsafeBufferPointer { starts in
                    calibration.steps.withUnsafeBufferPointer { steps in
                        for r in 0..<records.count {
                            let row = out + r * dim, codes = q + r * dim
                            for j in 0..<dim { row[j] = starts[j] + Float(Int(codes[j]) + 128) * steps[j] }
                        }
                    }
                }
            case .binary:
                let stride = rowBytes
                for r in 0..<records.count {
                    let row = out + r * dim
                    let bits = raw.baseAddress!.assumingMemoryBound(to: UInt8.self) + (first + r) * stride
                    for j in 0..<dim {
                        row[j] = (bits[j >> 3] >> (7 - UInt8(j & 7))) & 1 == 1 ? 1 : -1
                    }
                }
            case .u32:
                preconditionFailure("token chunk has no float rows")
            }
        }
    }

    /// All records as floats, `count * dim` values.
    public func floats() -> [Float] {
        [Float](unsafeUninitializedCapacity: count * dim) { buf, initialized in
            decodeFloats(into: buf.baseAddress!)
            initialized = count * dim
        }
    }

    // MARK: Tokens

    /// The token ids of every record of a token chunk.
    public func tokenLists() -> [[UInt32]] {
        precondition(kind == .tokens)
        return payload.withUnsafeBytes { p in
            var lists: [[UInt32]] = []
            lists.reserveCapacity(count)
            var offset = 4 * count
            for i in 0..<count {
                let length = Int(p.loadLE(UInt32.self, at: 4 * i))
                var ids = [UInt32](repeating: 0, count: length)
                for j in 0..<length { ids[j] = p.loadLE(UInt32.self, at: offset + 4 * j) }
                lists.append(ids)
                offset += 4 * length
            }
            return lists
        }
    }
}

/// The per-dimension affine map of int8 vectors, the scheme of sentence-transformers'
/// `quantize_embeddings(precision="int8")`: value = start + (q + 128) * step, with
/// start and step from the minimum and maximum of each dimension over the chunk.
package struct Int8Calibration: Sendable {
    package var starts: [Float]
    package var steps: [Float]

    package init(starts: [Float], steps: [Float]) {
        self.starts = starts
        self.steps = steps
    }

    /// Calibrates on `count` rows of `dim` floats.
    package init(rows: UnsafePointer<Float>, count: Int, dim: Int) {
        var lo = [Float](repeating: .infinity, count: dim)
        var hi = [Float](repeating: -.infinity, count: dim)
        for r in 0..<count {
            for j in 0..<dim {
                let v = rows[r * dim + j]
                lo[j] = min(lo[j], v)
                hi[j] = max(hi[j], v)
            }
        }
        if count == 0 { lo = [Float](repeating: 0, count: dim); hi = lo }
        starts = lo
        // (hi − lo) overflows to infinity when the values span more than Float's range, and
        // start + 255 × step can pass it: finite input must always get a calibration the
        // readers accept (finite starts and steps, finite decoded values).
        steps = zip(lo, hi).map { lo, hi in
            let step = (hi - lo) / 255
            if step.isFinite && (lo + 255 * step).isFinite { return step }
            // The widest step whose last code still decodes to a float; larger values clamp
            // to code 127, as values beyond the range always do.
            var safe = min(hi / 255 - lo / 255, .greatestFiniteMagnitude / 255)
            while safe > 0 && !(lo + 255 * safe).isFinite { safe = safe.nextDown }
            return safe
        }
    }

    init(metadata: StreamMetadata, dim: Int) throws {
        guard let table = metadata["int8"],
              let starts = table["starts"]?.arrayValue?.compactMap({ $0.numberValue.map(Float.init) }),
              let steps = table["steps"]?.arrayValue?.compactMap({ $0.numberValue.map(Float.init) }) else {
            throw ChunkDecodeError("int8 chunk without its calibration (extension key \"int8\" with \"starts\" and \"steps\")")
        }
        guard starts.count == dim, steps.count == dim else {
            throw ChunkDecodeError("int8 calibration has \(starts.count) starts and \(steps.count) steps for dimension \(dim)")
        }
        self.starts = starts
        self.steps = steps
        if let problem = problem { throw ChunkDecodeError(problem) }
    }

    /// Why this calibration cannot be in a stream, or nil: every start must be finite, every
    /// step finite and ≥ 0, and the largest value it decodes to, start + 255 × step, finite,
    /// so no int8 code decodes to a NaN or an infinity.
    package var problem: String? {
        for j in starts.indices {
            let start = starts[j], step = steps[j]
            if !start.isFinite { return "int8 calibration: start of dimension \(j + 1) is \(start), not finite" }
            if !(step.isFinite && step >= 0) { return "int8 calibration: step of dimension \(j + 1) is \(step), not a finite number ≥ 0" }
            if !(start + 255 * step).isFinite { return "int8 calibration: dimension \(j + 1) decodes past the float range (start \(start), step \(step))" }
        }
        return nil
    }

    package var json: JSONValue {
        .object([
            ("starts", .array(starts.map { .number(Double($0)) })),
            ("steps", .array(steps.map { .number(Double($0)) })),
        ])
    }

    package func quantize(_ v: Float, dim j: Int) -> Int8 {
        guard steps[j] > 0 else { return -128 }
        let q = ((v - starts[j]) / steps[j]).rounded() - 128
        return Int8(max(-128, min(127, q)))
    }
}

extension Chunk {
    /// Encodes `count` rows of `dim` floats as a chunk of `dtype`.
    package static func vectors(ids: [String], floats: UnsafePointer<Float>, dim: Int, dtype: ElementType,
                               flags: ChunkFlags, metadata: StreamMetadata) -> Chunk {
        let count = ids.count
        let n = count * dim
        var metadata = metadata.withoutCalibration
        let rowBytes = dtype.rowBytes(dim: dim)
        var payload = [UInt8](repeating: 0, count: count * rowBytes)
        payload.withUnsafeMutableBytes { raw in
            switch dtype {
            case .f32:
                raw.copyMemory(from: UnsafeRawBufferPointer(start: floats, count: 4 * n))
            case .f16:
                let h = raw.bindMemory(to: UInt16.self)
                for i in 0..<n { h[i] = Float16(floats[i]).bitPattern.littleEndian }
            case .int8:
                let calibration = Int8Calibration(rows: floats, count: count, dim: dim)
                metadata["int8"] = calibration.json
                let q = raw.bindMemory(to: Int8.self)
                for r in 0..<count {
                    for j in 0..<dim { q[r * dim + j] = calibration.quantize(floats[r * dim + j], dim: j) }
                }
            case .binary:
                for r in 0..<count {
                    for j in 0..<dim where floats[r * dim + j] > 0 {
                        raw[r * rowBytes + j >> 3] |= 0x80 >> UInt8(j & 7)
                    }
                }
            case .u32:
                preconditionFailure("u32 is for token chunks")
            }
        }
        return Chunk(kind: .vectors, dtype: dtype, dim: dim, flags: flags, metadata: metadata, ids: ids, payload: payload[...])
    }

    /// Encodes token id lists as a token chunk.
    package static func tokens(ids: [String], lists: [[UInt32]], metadata: StreamMetadata) -> Chunk {
        var payload: [UInt8] = []
        payload.reserveCapacity(4 * (lists.count + lists.reduce(0) { $0 + $1.count }))
        for list in lists { payload.appendLE(UInt32(list.count)) }
        for list in lists { for t in list { payload.appendLE(t) } }
        return Chunk(kind: .tokens, dtype: .u32, dim: 0, flags: [], metadata: metadata, ids: ids, payload: payload[...])
    }
}
