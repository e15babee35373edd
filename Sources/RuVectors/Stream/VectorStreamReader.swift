import RuCore
import CZstd

/// What must stay the same across the chunks of one stream.
public struct StreamShape: Equatable, Sendable, CustomStringConvertible {
    /// Vectors or token lists.
    public var kind: ChunkKind
    /// The stored element type.
    public var dtype: ElementType
    /// The vector width (0 for token streams).
    public var dim: Int
    /// Whether the writer declared the vectors unit length.
    public var normalized: Bool
    /// The weights digest of the model that made the vectors, if the metadata records one.
    public var modelDigest: String?

    package init(_ chunk: Chunk) {
        kind = chunk.kind
        dtype = chunk.dtype
        dim = chunk.dim
        normalized = chunk.isNormalized
        modelDigest = chunk.metadata.modelDigest
    }

    public var description: String {
        kind == .tokens ? "tokens" : "\(dim)-d \(dtype)\(normalized ? " normalized" : "")"
    }

    /// Names the first field in which `other` differs, or nil when they agree.
    package func difference(from other: StreamShape) -> String? {
        if kind != other.kind { return "kind changes from \(kind) to \(other.kind)" }
        if dtype != other.dtype { return "element type changes from \(dtype) to \(other.dtype)" }
        if dim != other.dim { return "dimension changes from \(dim) to \(other.dim)" }
        if normalized != other.normalized {
            return "normalisation changes from \(normalized ? "normalized" : "not normalized") to \(other.normalized ? "normalized" : "not normalized")"
        }
        if modelDigest != other.modelDigest {
            return "model digest changes from \(modelDigest ?? "none") to \(other.modelDigest ?? "none")"
        }
        return nil
    }
}

/// Reads a vector stream: zstd frames (skippable frames are skipped; chunks left raw by
/// `zstd -dc` are read too), one chunk per frame, every rule of docs/FORMAT.md checked.
public final class VectorStreamReader {
    /// The bytes read from.
    public let input: ByteInput
    /// The stream's name in messages: its path, or `<stdin>`.
    public var name: String { input.name }

    /// Frames read so far (skippable frames not counted).
    public private(set) var frames = 0
    /// Records read so far.
    public private(set) var records = 0
    /// Bytes consumed from the input and produced by decompression.
    public private(set) var compressedBytes = 0
    /// Bytes of chunks after decompression.
    public private(set) var uncompressedBytes = 0
    /// The shape of the first chunk; every later chunk must match it.
    public private(set) var shape: StreamShape?

    private let decompressor = ZstdDecompressor()
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0, end = 0
    private var atEOF = false
    private var chunkBuffer: [UInt8] = []
    private let maxChunkBytes: Int

    package init(input: ByteInput, maxChunkBytes: Int = ChunkFormat.readerMaxBytes) {
        self.input = input
        self.maxChunkBytes = maxChunkBytes
        buffer = .allocate(byteCount: 1 << 20, alignment: 64)
    }

    /// A reader of the file at `path`; `-` is standard input.
    public convenience init(path: String) throws {
        self.init(input: try ByteInput.open(path))
    }

    deinit { buffer.deallocate() }

    /// True when the next chunk can be read without waiting for a pipe.
    package var canReadWithoutWaiting: Bool { end > start || !input.wouldWait() }

    private var position: StreamPosition { StreamPosition(file: name, frame: frames + 1) }

    /// Makes at least `n` bytes available unless the input ends first; returns what is available.
    @discardableResult
    private func fill(atLeast n: Int) throws -> Int {
        if end - start >= n || atEOF { return end - start }
        if start > 0 {
            buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: end - start)
            end -= start
            start = 0
        }
        while end - start < n && !atEOF {
            let got = try input.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[end...]))
            if got == 0 { atEOF = true } else { end += got }
        }
        return end - start
    }

    /// The next chunk, or nil at the end of the stream.
    public func next() throws -> Chunk? {
        while true {
            let available = try fill(atLeast: 8)
            if available == 0 { return nil }
            guard available >= 4 else { throw garbageError() }
            let magic = UnsafeRawBufferPointer(rebasing: buffer[start..<end]).loadLE(UInt32.self, at: 0)
            if magic == ChunkFormat.zstdMagic {
                let chunk = try decodeChunk(try readZstdFrame())
                return chunk
            } else if magic & ChunkFormat.skippableMagicMask == ChunkFormat.skippableMagic {
                try skipFrame()
            } else if available >= 8 && Array(buffer[start..<start + 8]) == ChunkFormat.magic {
                return try decodeChunk(try readRawChunk())
            } else {
                throw garbageError()
            }
        }
    }

    private func garbageError() -> RuEmbedError {
        frames == 0
            ? StreamPosition(file: name).error("not a vector stream (bad magic at byte \(compressedBytes))")
            : StreamPosition(file: name).error("trailing garbage after frame \(frames) at byte \(compressedBytes)")
    }

    private func skipFrame() throws {
        guard try fill(atLeast: 8) >= 8 else { throw position.error("truncated skippable frame") }
        let size = Int(UnsafeRawBufferPointer(rebasing: buffer[start..<end]).loadLE(UInt32.self, at: 4))
        var left = 8 + size
        compressedBytes += left
        while left > 0 {
            let have = try fill(atLeast: 1)
            if have == 0 { throw position.error("truncated skippable frame") }
            let take = min(have, left)
            start += take
            left -= take
        }
    }

    /// Room for `bytes` in `chunkBuffer`, and an eighth more (within the limit): a stream's
    /// chunks grow a little as its ids lengthen ("9" to "10", … "99999" to "100000"), and every
    /// new buffer is fresh memory, page-faulted in anew. Sized exactly, reading bench/cluster's
    /// 74 chunks of 8.3 MB took 6 buffers a pass: 12,300 page faults, a third of ru-cluster's.
    private func reserveChunkBuffer(_ bytes: Int) {
        guard chunkBuffer.count < bytes else { return }
        chunkBuffer = [UInt8](repeating: 0, count: max(bytes, min(bytes + bytes / 8, maxChunkBytes)))
    }

    /// Decompresses one zstd frame into `chunkBuffer`; returns its size.
    private func readZstdFrame() throws -> Int {
        let headerBytes = try fill(atLeast: 18)
        let declared: UInt64?
        do {
            declared = try ZstdDecompressor.declaredContentSize(UnsafeRawBufferPointer(rebasing: buffer[start..<start + headerBytes]))
        } catch let error as ChunkDecodeError {
            throw position.error(headerBytes < 18 ? "truncated frame" : error.message)
        }
        if let declared, declared > UInt64(maxChunkBytes) {
            throw position.error("frame declares \(declared) bytes, over the limit of \(maxChunkBytes) (refusing a possible decompression bomb)")
        }
        var capacity = Int(declared ?? 1 << 20)
        reserveChunkBuffer(capacity)
        capacity = chunkBuffer.count
        decompressor.reset()
        var produced = 0
        while true {
            if start == end {
                if try fill(atLeast: 1) == 0 { throw position.error("truncated frame (the input ends inside it)") }
            }
            var step: ZstdDecompressor.Step = .needMore
            var consumed = 0
            let producedBefore = produced
            try chunkBuffer.withUnsafeMutableBytes { out in
                var inBuf = ZSTD_inBuffer(src: buffer.baseAddress! + start, size: end - start, pos: 0)
                var outBuf = ZSTD_outBuffer(dst: out.baseAddress!, size: out.count, pos: produced)
                do {
                    step = try decompressor.step(input: &inBuf, output: &outBuf)
                } catch let error as ChunkDecodeError {
                    throw position.error(error.message)
                }
                consumed = inBuf.pos
                produced = outBuf.pos
            }
            start += consumed
            compressedBytes += consumed
            if step == .frameDone { break }
            if consumed == 0 && produced == producedBefore && start < end && produced < chunkBuffer.count {
                throw position.error("corrupt frame: the decompressor made no progress")
            }
            if produced == chunkBuffer.count && declared == nil {
                // Only a frame without a declared size can need a bigger buffer; a sized
                // frame that tries to overflow is reported by zstd itself.
                if chunkBuffer.count >= maxChunkBytes {
                    throw position.error("frame decompresses to more than \(maxChunkBytes) bytes (refusing a possible decompression bomb)")
                }
                chunkBuffer.append(contentsOf: [UInt8](repeating: 0, count: min(chunkBuffer.count, maxChunkBytes - chunkBuffer.count)))
            }
        }
        if let declared, produced != Int(declared) {
            throw position.error("corrupt frame: \(produced) bytes instead of the \(declared) its header declares")
        }
        return produced
    }

    /// Reads a chunk stored without compression (what `zstd -dc` of a stream gives).
    private func readRawChunk() throws -> Int {
        guard try fill(atLeast: ChunkFormat.headerSize) >= ChunkFormat.headerSize else {
            throw position.error("truncated chunk header")
        }
        let h = UnsafeRawBufferPointer(rebasing: buffer[start..<start + ChunkFormat.headerSize])
        let headerSize = Int(h.loadLE(UInt16.self, at: 14))
        let ids = h.loadLE(UInt64.self, at: 32), payload = h.loadLE(UInt64.self, at: 40)
        // Each field alone is bounded before they are added: ids_len and payload_len are
        // 64-bit and a sum of them can wrap.
        guard ids < UInt64(maxChunkBytes), payload < UInt64(maxChunkBytes) else {
            throw position.error("chunk larger than the limit of \(maxChunkBytes) bytes")
        }
        let sum = UInt64(max(headerSize, ChunkFormat.headerSize)) + UInt64(h.loadLE(UInt32.self, at: 28)) + ids
        guard sum < UInt64(maxChunkBytes) else {
            throw position.error("chunk larger than the limit of \(maxChunkBytes) bytes")
        }
        let total = ChunkFormat.align(Int(sum)) + Int(payload)
        guard total <= maxChunkBytes else {
            throw position.error("chunk of \(total) bytes is over the limit of \(maxChunkBytes)")
        }
        reserveChunkBuffer(total)
        var copied = 0
        while copied < total {
            let have = try fill(atLeast: 1)
            if have == 0 { throw position.error("truncated chunk (the input ends inside it)") }
            let take = min(have, total - copied)
            chunkBuffer.withUnsafeMutableBytes { out in
                out.baseAddress!.advanced(by: copied).copyMemory(from: buffer.baseAddress! + start, byteCount: take)
            }
            start += take
            copied += take
        }
        compressedBytes += total
        return total
    }

    private func decodeChunk(_ size: Int) throws -> Chunk {
        let chunk: Chunk
        do {
            // The chunk's payload shares chunkBuffer; the next frame decompresses into a fresh
            // buffer if the caller still holds it (copy-on-write), into this one otherwise.
            chunk = try Chunk.decode(chunkBuffer, size: size)
        } catch let error as ChunkDecodeError {
            var where_ = position
            if let r = error.record { where_.record = records + r + 1 }
            throw where_.error(error.message)
        }
        let shape = StreamShape(chunk)
        if let first = self.shape {
            if let change = first.difference(from: shape) {
                throw position.error(change + " (all chunks of a stream must agree)")
            }
        } else {
            self.shape = shape
        }
        frames += 1
        records += chunk.count
        uncompressedBytes += size
        return chunk
    }
}
