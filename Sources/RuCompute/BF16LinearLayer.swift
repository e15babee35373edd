import RuCore
import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// A Linear layer (y = x·Wᵀ + b) in bfloat16: the path of `--precision bf16`.
///
/// Weights are rounded once to bf16 (nearest even) and packed into column panels for our
/// kernel (`ck_bf16_linear`, CKernels/bf16_linear.c); each call rounds the activations to bf16,
/// a chunk of rows at a time, and the kernel multiplies them with AVX512_BF16's vdpbf16ps,
/// accumulating in f32, with bias and epilogue applied to the accumulators before the store.
/// Everything between the layers (LayerNorm, softmax, attention, pooling) stays f32.
///
/// Scheduled as the int8 layers are: with enough rows the threads take chunks of `chunkRows`
/// rows as they free up and run round → multiply on each (the chunk's bf16 rows stay in the
/// core's caches while every panel passes over them); few rows (one short text) are rounded
/// once and the threads take the panels a few at a time. A feed-forward pair runs fused per
/// chunk (`ChunkWorkspace.runChunks`).
///
/// Needs AVX512_BF16 (`available`; the initialiser traps without it): `SentenceEncoder` asks
/// for `Precision.effective`, which is f32 on other CPUs, before any layer is made.
///
/// Error per output: each weight and activation is rounded to 8 significant bits (relative
/// error ≤ 2⁻⁹), so |y − ŷ| ≤ (2⁻⁸ + 2⁻¹⁸)·Σ|xᵢ·wᵢ| plus the f32 accumulation's rounding.
package final class BF16LinearLayer {
    package let inputSize: Int
    package let outputSize: Int
    package let epilogue: LinearEpilogue

    private let packedWeights: UnsafeMutablePointer<UInt16>
    private let bias: UnsafeMutablePointer<Float>?
    /// bf16 elements between rows of rounded activations: inputSize rounded up to 2.
    private let stride: Int
    private let panels: Int
    /// The few-rows path's rounded activations.
    private var rounded: [UInt16] = []

    /// Rows per chunk of the per-thread path (as the int8 layers).
    static let chunkRows = ChunkWorkspace.rows
    /// From this many rows on, the per-thread path.
    static let perThreadRows = ChunkWorkspace.perThreadRows

    /// Whether this CPU runs the bf16 kernel (AVX-512 with BF16), unless RU_EMBED_BF16=off asks
    /// to run as a CPU without it would (f32: to compare, and to test that fallback anywhere).
    package static let available = ck_bf16_available() != 0
        && getenv("RU_EMBED_BF16").map { String(cString: $0) } != "off"

    /// - Parameters:
    ///   - weights: `outputSize` rows of `inputSize` floats (a Linear's `weight`).
    ///   - bias: `outputSize` floats, or nil.
    package init(weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, inputSize: Int, outputSize: Int,
                epilogue: LinearEpilogue = .none) {
        precondition(inputSize > 0 && outputSize > 0)
        precondition(BF16LinearLayer.available, "BF16LinearLayer needs AVX512_BF16 (check BF16LinearLayer.available)")
        self.inputSize = inputSize
        self.outputSize = outputSize
        self.epilogue = epilogue
        self.bias = bias.map { values in
            let copy = UnsafeMutablePointer<Float>.allocate(capacity: outputSize)
            copy.update(from: values, count: outputSize)
            return copy
        }
        stride = ck_bf16_stride(inputSize)
        panels = ck_bf16_panels(outputSize)
        let elements = ck_bf16_packed_elements(outputSize, inputSize)
        packedWeights = UnsafeMutableRawPointer.allocate(byteCount: max(elements * 2, 64), alignment: 64)
            .bindMemory(to: UInt16.self, capacity: elements)
        ck_bf16_pack(weights, outputSize, inputSize, packedWeights)
    }

    deinit {
        packedWeights.deallocate()
        bias?.deallocate()
    }

    /// Bytes held by the packed weights and bias.
    package var residentBytes: Int { ck_bf16_packed_elements(outputSize, inputSize) * 2 + (bias == nil ? 0 : outputSize * 4) }

    /// output[m × outputSize] (=, or += with `.accumulate`) input[m × inputSize]·Wᵀ + b, then the epilogue.
    package func run(rows m: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        precondition(m > 0)
        ChunkWorkspace.lock.withLock { _ in
            if ChunkWorkspace.splitsRows(m) {
                ChunkWorkspace.runChunks([self], rows: m, input: input, output: output)
            } else {
                runColumns(rows: m, input: input, output: output)
            }
        }
    }

    var narrowRowBytes: Int { stride * 2 }
    var runsChunks: Bool { true }

    /// The workspace's bf16 rows ← `count` rows of input rounded.
    func narrow(rows count: Int, _ input: UnsafePointer<Float>, into ws: ChunkWorkspace) {
        ck_bf16_convert_rows(input, count, inputSize, inputSize, ws.rounded, stride)
    }

    /// output rows ← (or +=) the workspace's rounded rows through this layer, all panels.
    func multiply(rows count: Int, _ ws: ChunkWorkspace, output: UnsafeMutablePointer<Float>, stride outStride: Int) {
        ck_bf16_linear(ws.rounded, stride, count, inputSize, packedWeights, outputSize, 0, panels, bias,
                       Int32(epilogueMode.rawValue), output, outStride)
    }

    private var epilogueMode: ck_epilogue {
        switch epilogue {
        case .none: CK_PLAIN
        case .geluErf: CK_GELU_ERF
        case .geluTanh: CK_GELU_TANH
        case .accumulate: CK_ACCUMULATE
        }
    }

    /// Few rows: rounded once, then the threads take the panels (columns) of every row a few at a time.
    private func runColumns(rows m: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        if rounded.count < m * stride { rounded = [UInt16](repeating: 0, count: m * stride) }
        let (k, n, stride, packed, bias) = (inputSize, outputSize, stride, packedWeights, UnsafePointer(bias))
        let mode = Int32(epilogueMode.rawValue)
        rounded.withUnsafeMutableBufferPointer { rounded in
            let x = rounded.baseAddress!
            ck_bf16_convert_rows(input, m, k, k, x, stride)
            Parallel.forPieces(panels, piece: ChunkWorkspace.panelPiece(panels)) { _, lo, hi in
                ck_bf16_linear(x, stride, m, k, packed, n, lo, hi, bias, mode, output, n)
            }
        }
    }
}
