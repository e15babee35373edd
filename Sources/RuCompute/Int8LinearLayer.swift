import RuCore
#if canImport(Glibc)
import Glibc
#endif
import CKernels

/// A Linear layer (y = x·Wᵀ + b) computed in int8: the path of `--precision int8`.
///
/// Weights are quantised once, symmetric per output channel (s8), and packed into column
/// panels for our kernel (`ck_int8_linear`, CKernels/int8_linear.c). Each call quantises the
/// activations per row, asymmetric u8 (so VNNI's u8×s8 instruction applies directly and the
/// zero of GELU outputs stays exact); the kernel multiplies a tile of rows by a panel into
/// int32 registers and dequantises the tile before moving on: zero-point correction, scales,
/// bias and the epilogue, written straight to the float output.
///
/// With enough rows the threads take chunks of `chunkRows` rows as they free up and run
/// quantise → kernel on each (a chunk's codes stay in the core's caches while every panel
/// passes over them; `ChunkWorkspace.runChunks`). Few rows (one short text) are quantised once
/// and the threads take the panels a few at a time.
///
/// The kernel needs AVX-512 VNNI. Elsewhere (AVX2, AVX-VNNI, other architectures) the products
/// come from oneDNN's int8 matmul (`OneDNNInt8Matmul`) on 7-bit activation codes (see
/// `activationCodeMax`) and one sweep dequantises them with the kernel's own code: on the same
/// codes, the kernel's outputs bit for bit (a test runs both here).
///
/// Error per output: with x = s_x·(q_x − z) + e_x and w = s_w·q_w + e_w (|e| ≤ s/2),
///     |y − ŷ| ≤ (s_w/2)·‖x‖₁ + (s_x/2)·s_w·‖q_w‖₁ (+ float rounding),
/// which `errorBound` computes and the tests check.
package final class Int8LinearLayer {
    package let inputSize: Int
    package let outputSize: Int
    package let epilogue: LinearEpilogue

    private let weightScales: UnsafeMutablePointer<Float>
    private let weightCodeSums: UnsafeMutablePointer<Int32>
    private let weightCodeL1: [Float]
    /// max over outputs of the weight scale, and of scale × the codes' L1 norm (`maxErrorBound`).
    private let largestWeightScale: Float, largestScaledCodeL1: Float
    private let bias: UnsafeMutablePointer<Float>?
    /// The kernel's panels, or nil when oneDNN multiplies.
    private let packedWeights: UnsafeMutableRawPointer?
    private let oneDNN: OneDNNInt8Matmul?
    /// Bytes between rows of u8 codes: inputSize rounded up to 4.
    private let codeStride: Int
    private let panels: Int
    // The few-rows and oneDNN paths' scratch: every row's codes, scales and zero points, and
    // oneDNN's int32 products.
    private var codes: [UInt8] = []
    private var scales: [Float] = []
    private var zeroPoints: [Int32] = []
    private var products: [Int32] = []

    /// Rows per chunk of the per-thread path.
    static let chunkRows = ChunkWorkspace.rows
    /// From this many rows on, the per-thread path.
    static let perThreadRows = ChunkWorkspace.perThreadRows

    /// Whether this CPU runs ru-embed's int8 kernel (AVX-512 VNNI); else oneDNN multiplies.
    package static let kernelAvailable = ck_int8_has_vnni() != 0
    /// Tests: layers made while this is set use oneDNN even where the kernel runs.
    nonisolated(unsafe) static var forceOneDNN = false

    /// Whether this layer runs ru-embed's kernel (else oneDNN's int8 matmul).
    package var usesKernel: Bool { packedWeights != nil }

    /// The largest u8 code of quantised activations. 255 for our VNNI kernel (vpdpbusd sums
    /// u8·s8 products in int32). oneDNN's int8 matmul without VNNI (AVX2: vpmaddubsw) adds
    /// pairs of u8·s8 products in saturating int16, and 2·255·127 overflows it: on a Zen 3
    /// the products came out wrong by 10× the quantisation bound. With codes ≤ 127,
    /// 2·127·127 < 2^15 and the products are exact, at half the activation resolution.
    let activationCodeMax: Int32

    /// - Parameters:
    ///   - weights: `outputSize` rows of `inputSize` floats (a Linear's `weight`).
    ///   - bias: `outputSize` floats, or nil.
    ///   - activationCodeMax: tests only: the activations' largest code (default: 255 for the
    ///     kernel, 127 for oneDNN), so both paths can be compared on the same codes.
    package init(weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, inputSize: Int, outputSize: Int,
                epilogue: LinearEpilogue = .none, activationCodeMax: Int32? = nil) {
        precondition(inputSize > 0 && outputSize > 0)
        self.inputSize = inputSize
        self.outputSize = outputSize
        self.epilogue = epilogue
        self.bias = bias.map { values in
            let copy = UnsafeMutablePointer<Float>.allocate(capacity: outputSize)
            copy.update(from: values, count: outputSize)
            return copy
        }
        codeStride = ck_int8_code_stride(inputSize)
        panels = ck_int8_panels(outputSize)

        weightScales = .allocate(capacity: outputSize)
        weightCodeSums = .allocate(capacity: outputSize)
        var l1 = [Float](repeating: 0, count: outputSize)
        if Int8LinearLayer.kernelAvailable && !Int8LinearLayer.forceOneDNN {
            let packed = UnsafeMutableRawPointer.allocate(byteCount: max(ck_int8_packed_size(outputSize, inputSize), 64),
                                                          alignment: 64)
            ck_int8_quantize_pack(weights, outputSize, inputSize, packed.assumingMemoryBound(to: Int8.self),
                                  weightScales, weightCodeSums, &l1)
            packedWeights = packed
            oneDNN = nil
        } else {
            let codes = UnsafeMutablePointer<Int8>.allocate(capacity: inputSize * outputSize)
            defer { codes.deallocate() }
            ck_quantize_weights_s8(weights, outputSize, inputSize, codes, weightScales, weightCodeSums, &l1)
            packedWeights = nil
            oneDNN = OneDNNInt8Matmul(codes: codes, k: inputSize, n: outputSize)
        }
        self.activationCodeMax = activationCodeMax ?? (packedWeights != nil ? 255 : 127)
        weightCodeL1 = l1
        var (largestScale, largestProduct): (Float, Float) = (0, 0)
        for n in 0..<outputSize {
            largestScale = max(largestScale, weightScales[n])
            largestProduct = max(largestProduct, weightScales[n] * l1[n])
        }
        (largestWeightScale, largestScaledCodeL1) = (largestScale, largestProduct)
    }

    deinit {
        packedWeights?.deallocate()
        weightScales.deallocate()
        weightCodeSums.deallocate()
        bias?.deallocate()
    }

    /// output[m × outputSize] (=, or += with `.accumulate`) input[m × inputSize]·Wᵀ + b, then the epilogue.
    package func run(rows m: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        precondition(m > 0)
        ChunkWorkspace.lock.withLock { _ in execute(rows: m, input: input, output: output) }
    }

    private func execute(rows m: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        if let oneDNN {
            runOneDNN(oneDNN, rows: m, input: input, output: output)
        } else if ChunkWorkspace.splitsRows(m) {
            ChunkWorkspace.runChunks([self], rows: m, input: input, output: output)
        } else {
            runColumns(rows: m, input: input, output: output)
        }
    }

    var narrowRowBytes: Int { codeStride }
    var runsChunks: Bool { usesKernel }

    /// The workspace's codes, scales and zero points ← `count` rows of input quantised.
    func narrow(rows count: Int, _ input: UnsafePointer<Float>, into ws: ChunkWorkspace) {
        ck_quantize_rows_u8(input, count, inputSize, ws.codes, codeStride, ws.scales, ws.zeroPoints, activationCodeMax)
    }

    /// output rows ← (or +=) the workspace's codes of `count` rows through this layer, all panels.
    func multiply(rows count: Int, _ ws: ChunkWorkspace, output: UnsafeMutablePointer<Float>, stride: Int) {
        var e = epilogueDescription(scales: ws.scales, zeroPoints: ws.zeroPoints)
        ck_int8_linear(ws.codes, codeStride, count, inputSize, packedWeights!.assumingMemoryBound(to: Int8.self),
                       outputSize, 0, panels, &e, output, stride)
    }

    private func epilogueDescription(scales: UnsafePointer<Float>, zeroPoints: UnsafePointer<Int32>) -> ck_int8_epilogue {
        let mode: ck_epilogue = switch epilogue {
        case .none: CK_PLAIN
        case .geluErf: CK_GELU_ERF
        case .geluTanh: CK_GELU_TANH
        case .accumulate: CK_ACCUMULATE
        }
        return ck_int8_epilogue(x_scales: scales, x_zero_points: zeroPoints, w_scales: weightScales,
                                w_sums: weightCodeSums, bias: UnsafePointer(bias), epilogue: Int32(mode.rawValue))
    }

    /// Few rows: quantised once, then the threads take the panels (columns) of every row a few at a time.
    private func runColumns(rows m: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        reserve(rows: m)
        let (k, n, stride, panels) = (inputSize, outputSize, codeStride, panels)
        let packed = packedWeights!.assumingMemoryBound(to: Int8.self)
        codes.withUnsafeMutableBufferPointer { codes in
            scales.withUnsafeMutableBufferPointer { scales in
                zeroPoints.withUnsafeMutableBufferPointer { zeros in
                    let (c, s, z) = (codes.baseAddress!, scales.baseAddress!, zeros.baseAddress!)
                    ck_quantize_rows_u8(input, m, k, c, stride, s, z, activationCodeMax)
                    let e = epilogueDescription(scales: s, zeroPoints: z)
                    Parallel.forPieces(panels, piece: ChunkWorkspace.panelPiece(panels)) { _, lo, hi in
                        var e = e
                        ck_int8_linear(c, stride, m, k, packed, n, lo, hi, &e, output, n)
                    }
                }
            }
        }
    }

    /// Room in the layer's own scratch for `m` rows (codes zero-filled: oneDNN's padded rows read them).
    private func reserve(rows m: Int) {
        let rows = oneDNN == nil ? m : OneDNNInt8Matmul.paddedRows(m)
        if codes.count < rows * codeStride { codes = [UInt8](repeating: 0, count: rows * codeStride) }
        if scales.count < m {
            scales = [Float](repeating: 0, count: m)
            zeroPoints = [Int32](repeating: 0, count: m)
        }
        if oneDNN != nil && products.count < rows * outputSize { products = [Int32](repeating: 0, count: rows * outputSize) }
    }

    /// Without the kernel: rows quantised on all threads, one oneDNN matmul on all threads,
    /// then the products dequantised on all threads.
    private func runOneDNN(_ matmul: OneDNNInt8Matmul, rows m: Int, input: UnsafePointer<Float>,
                           output: UnsafeMutablePointer<Float>) {
        reserve(rows: m)
        let (k, n, stride, top) = (inputSize, outputSize, codeStride, activationCodeMax)
        codes.withUnsafeMutableBufferPointer { codes in
            scales.withUnsafeMutableBufferPointer { scales in
                zeroPoints.withUnsafeMutableBufferPointer { zeros in
                    products.withUnsafeMutableBufferPointer { products in
                        let (c, s, z, p) = (codes.baseAddress!, scales.baseAddress!, zeros.baseAddress!, products.baseAddress!)
                        Parallel.forRanges(m) { lo, hi in
                            ck_quantize_rows_u8(input + lo * k, hi - lo, k, c + lo * stride, stride, s + lo, z + lo, top)
                        }
                        matmul.run(rows: m, codes: c, codeStride: stride, products: p)
                        let e = epilogueDescription(scales: s, zeroPoints: z)
                        Parallel.forRanges(m) { lo, hi in
                            var e = e
                            e.x_scales = UnsafePointer(s + lo)
                            e.x_zero_points = UnsafePointer(z + lo)
                            ck_int8_dequantize(p + lo * n, hi - lo, n, &e, output + lo * n, n)
                        }
                    }
                }
            }
        }
    }

    /// The bound on |x·wₙ − (its int8 estimate)| for one input row and output n (before the
    /// epilogue), from the quantisation steps alone.
    package func errorBound(input row: UnsafePointer<Float>, output n: Int) -> Float {
        var l1: Float = 0, lo: Float = 0, hi: Float = 0
        for j in 0..<inputSize {
            l1 += abs(row[j])
            lo = min(lo, row[j])
            hi = max(hi, row[j])
        }
        let xScale = (hi - lo) / Float(activationCodeMax)
        return weightScales[n] / 2 * l1 + xScale / 2 * weightScales[n] * weightCodeL1[n]
    }

    /// `errorBound` of one input row for every output at once (`outputSize` floats): the
    /// row's sums are taken once.
    package func errorBounds(input row: UnsafePointer<Float>, into bounds: UnsafeMutablePointer<Float>) {
        var l1: Float = 0, lo: Float = 0, hi: Float = 0
        ck_l1_range(row, inputSize, &l1, &lo, &hi)
        let halfStep = (hi - lo) / Float(activationCodeMax) / 2
        weightCodeL1.withUnsafeBufferPointer { codeL1 in
            for n in 0..<outputSize {
                bounds[n] = weightScales[n] / 2 * l1 + halfStep * weightScales[n] * codeL1[n]
            }
        }
    }

    /// A bound on `errorBound` of one input row for every output at once (one pass over the row):
    /// the largest weight scale and the largest scale × code L1 norm, which may come from
    /// different outputs, so it can exceed the largest per-output bound a little.
    package func maxErrorBound(input row: UnsafePointer<Float>) -> Float {
        var l1: Float = 0, lo: Float = 0, hi: Float = 0
        ck_l1_range(row, inputSize, &l1, &lo, &hi)
        let halfStep = (hi - lo) / Float(activationCodeMax) / 2
        return largestWeightScale / 2 * l1 + halfStep * largestScaledCodeL1
    }
}
