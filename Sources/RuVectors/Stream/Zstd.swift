import RuCore
import CZstd

/// One-shot zstd compression of a chunk into one frame, with the content size and
/// the content checksum written, as the stream format requires.
final class ZstdCompressor {
    private let context: OpaquePointer
    private var output: [UInt8] = []

    init(level: Int32) {
        context = ZSTD_createCCtx()
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
        ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 1)
    }

    deinit { ZSTD_freeCCtx(context) }

    func setLevel(_ level: Int32) {
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
    }

    /// Compresses `input` as one frame; the returned buffer is valid until the next call.
    func compress(_ input: UnsafeRawBufferPointer) throws -> UnsafeRawBufferPointer {
        let bound = ZSTD_compressBound(input.count)
        if output.count < bound { output = [UInt8](repeating: 0, count: bound) }
        let written = output.withUnsafeMutableBytes { out in
            ZSTD_compress2(context, out.baseAddress, out.count, input.baseAddress, input.count)
        }
        if ZSTD_isError(written) != 0 {
            throw RuEmbedError("zstd compression failed: \(String(cString: ZSTD_getErrorName(written)))")
        }
        return output.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[0..<written]) }
    }
}

/// Streaming zstd decompression of one frame at a time.
final class ZstdDecompressor {
    let context: OpaquePointer

    init() {
        context = ZSTD_createDCtx()
    }

    deinit { ZSTD_freeDCtx(context) }

    func reset() {
        ZSTD_DCtx_reset(context, ZSTD_reset_session_only)
    }

    enum Step {
        case frameDone
        case needMore
    }

    /// Feeds input and fills output. Returns `.frameDone` when the frame's end (and its
    /// checksum) was reached.
    func step(input: inout ZSTD_inBuffer, output: inout ZSTD_outBuffer) throws -> Step {
        let r = ZSTD_decompressStream(context, &output, &input)
        if ZSTD_isError(r) != 0 {
            let code = ZSTD_getErrorCode(r)
            if code == ZSTD_error_checksum_wrong {
                throw ChunkDecodeError("checksum mismatch: the frame is corrupt")
            }
            throw ChunkDecodeError("corrupt zstd frame: \(String(cString: ZSTD_getErrorName(r)))")
        }
        return r == 0 ? .frameDone : .needMore
    }

    /// The content size a frame header declares: nil when unknown; throws when malformed.
    static func declaredContentSize(_ header: UnsafeRawBufferPointer) throws -> UInt64? {
        let size = ZSTD_getFrameContentSize(header.baseAddress, header.count)
        if size == UInt64.max { return nil }                 // ZSTD_CONTENTSIZE_UNKNOWN
        if size == UInt64.max - 1 {                         // ZSTD_CONTENTSIZE_ERROR
            throw ChunkDecodeError("corrupt zstd frame header")
        }
        return size
    }
}

extension ZstdCompressor {
    /// A frame made by streaming compression, which leaves the content size out of the
    /// header (as `zstd` does for a pipe); used by the tests of the reader's size limit.
    static func streamingFrameForTests(_ bytes: [UInt8]) throws -> [UInt8] {
        let context = ZSTD_createCCtx()!
        defer { ZSTD_freeCCtx(context) }
        ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 0)
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(bytes.count))
        var produced = 0
        try bytes.withUnsafeBytes { src in
            try out.withUnsafeMutableBytes { dst in
                var input = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
                var output = ZSTD_outBuffer(dst: dst.baseAddress, size: dst.count, pos: 0)
                while true {
                    let left = ZSTD_compressStream2(context, &output, &input, ZSTD_e_end)
                    if ZSTD_isError(left) != 0 { throw RuEmbedError("zstd streaming compression failed") }
                    if left == 0 { break }
                }
                produced = output.pos
            }
        }
        return Array(out[0..<produced])
    }
}
