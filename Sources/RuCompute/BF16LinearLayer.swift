import RuCore
import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// A Linear layer (y = x·Wᵀ + b) in bfloat16: the path of `--precision bf16`.
///
/// Weights are rounded once to bf16 (nearest even) and packed into column panels for our
/// kernels (CKernels/bf16_linear.c); each call rounds the activations to bf16, a chunk of rows
/// at a time, and a kernel multiplies them, accumulating in f32, with bias and epilogue applied
/// to the accumulators before the store: AVX512_BF16's vdpbf16ps (`ck_bf16_linear`), or on
/// Intel's cores, which run vdpbf16ps at half the multiply-adds of their FMAs, the weights
/// widened to f32 in registers and the products as FMAs (`ck_bf16_linear_fma`, the same bits:
/// `Kernel`). Everything between the layers (LayerNorm, softmax, attention, pooling) stays f32.
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
    package let kernel: Kernel

    /// How the products are computed; both give the same bits where vdpbf16ps adds each lane's
    /// odd product before its even one, as Intel documents (tested where the CPU has both).
    package enum Kernel: String, Sendable, CaseIterable {
        /// vdpbf16ps on bf16 activations (`ck_bf16_linear`).
        case dotProducts = "vdpbf16ps"
        /// f32 FMAs on activations rounded to bf16 and weights widened in registers
        /// (`ck_bf16_linear_fma`): Intel's cores (`ck_bf16_fma_preferred`).
        case fma

        /// This CPU's faster kernel, unless RU_EMBED_BF16_KERNEL names one (to compare them).
        package static let preferred: Kernel = getenv("RU_EMBED_BF16_KERNEL").flatMap { Kernel(rawValue: String(cString: $0)) }
            ?? (ck_bf16_fma_preferred() != 0 ? .fma : .dotProducts)
    }

    private let packedWeights: UnsafeMutablePointer<UInt16>
    private let bias: UnsafeMutablePointer<Float>?
    /// bf16 elements between rows of rounded activations: inputSize rounded up to 2.
    private let stride: Int
    private let panels: Int
    /// The few-rows path's rounded activations (`bytesPerElement` bytes each).
    private var rounded: UnsafeMutableRawPointer?
    private var roundedBytes = 0
    /// Bytes of one rounded activation: bf16 for vdpbf16ps, f32 for the FMA kernel.
    private var bytesPerElement: Int { kernel == .fma ? 4 : 2 }

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
                epilogue: LinearEpilogue = .none, kernel: Kernel = .preferred) {
        precondition(inputSize > 0 && outputSize > 0)
        precondition(BF16LinearLayer.available, "BF16LinearLayer needs AVX512_BF16 (check BF16LinearLayer.available)")
        self.inputSize = inputSize
        self.outputSize = outputSize
        self.epilogue = epilogue
        self.kernel = kernel
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
        rounded?.deallocate()
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

    var narrowRowBytes: Int { stride * bytesPerElement }
    var runsChunks: Bool { true }

    /// The workspace's rows ← `count` rows of input rounded to bf16.
    func narrow(rows count: Int, _ input: UnsafePointer<Float>, into ws: ChunkWorkspace) {
        round(rows: count, input, into: UnsafeMutableRawPointer(ws.bytes))
    }

    /// output rows ← (or +=) the workspace's rounded rows through this layer, all panels.
    func multiply(rows count: Int, _ ws: ChunkWorkspace, output: UnsafeMutablePointer<Float>, stride outStride: Int) {
        multiply(rows: count, UnsafeRawPointer(ws.bytes), panels: 0, panels, output: output, stride: outStride)
    }

    /// `count` rows of input (`inputSize` floats apart) rounded to bf16 into `out`, in the kernel's form.
    private func round(rows count: Int, _ input: UnsafePointer<Float>, into out: UnsafeMutableRawPointer) {
        switch kernel {
        case .dotProducts:
            ck_bf16_convert_rows(input, count, inputSize, inputSize, out.assumingMemoryBound(to: UInt16.self), stride)
        case .fma:
            ck_bf16_round_rows(input, count, inputSize, inputSize, out.assumingMemoryBound(to: Float.self), stride)
        }
    }

    /// output rows (`outStride` apart) ← (or +=) `count` rounded rows times panels lo ..< hi.
    private func multiply(rows count: Int, _ x: UnsafeRawPointer, panels lo: Int, _ hi: Int,
                          output: UnsafeMutablePointer<Float>, stride outStride: Int) {
        let mode = Int32(epilogueMode.rawValue)
        switch kernel {
        case .dotProducts:
            ck_bf16_linear(x.assumingMemoryBound(to: UInt16.self), stride, count, inputSize, packedWeights, outputSize,
                           lo, hi, bias, mode, output, outStride)
        case .fma:
            ck_bf16_linear_fma(x.assumingMemoryBound(to: Float.self), stride, count, inputSize, packedWeights,
                               outputSize, lo, hi, bias, mode, output, outStride)
        }
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
        let bytes = m * stride * bytesPerElement
        if roundedBytes < bytes {
            rounded?.deallocate()
            rounded = .allocate(byteCount: bytes, alignment: 64)
            roundedBytes = bytes
        }
        let x = rounded!
        round(rows: m, input, into: x)
        let n = outputSize
        Parallel.forPieces(panels, piece: ChunkWorkspace.panelPiece(panels)) { _, lo, hi in
            self.multiply(rows: m, UnsafeRawPointer(x), panels: lo, hi, output: output, stride: n)
        }
    }
}
