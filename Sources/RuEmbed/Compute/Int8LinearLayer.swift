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
/// int32 registers and dequantises them there: zero-point correction, scales, bias and the
/// epilogue, written straight to the float output.
///
/// With enough rows each thread takes its own contiguous rows and runs quantise → kernel over
/// chunks of `chunkRows` (a chunk's codes stay in the core's caches while every panel passes
/// over them). Few rows (one short text) are quantised once and the threads split the panels.
///
/// Error per output: with x = s_x·(q_x − z) + e_x and w = s_w·q_w + e_w (|e| ≤ s/2),
///     |y − ŷ| ≤ (s_w/2)·‖x‖₁ + (s_x/2)·s_w·‖q_w‖₁ (+ float rounding),
/// which `errorBound` computes and the tests check.
public final class Int8LinearLayer {
    public let inputSize: Int
    public let outputSize: Int
    public let epilogue: LinearEpilogue

    private let weightScales: UnsafeMutablePointer<Float>
    private let weightCodeSums: UnsafeMutablePointer<Int32>
    private let weightCodeL1: [Float]
    private let bias: UnsafeMutablePointer<Float>?
    private let packedWeights: UnsafeMutableRawPointer
    /// Bytes between rows of u8 codes: inputSize rounded up to 4.
    private let codeStride: Int
    private let panels: Int
    // Few-rows path: all rows' codes, scales and zero points.
    private var codes: [UInt8] = []
    private var scales: [Float] = []
    private var zeroPoints: [Int32] = []

    /// Rows per chunk of the per-thread path.
    static let chunkRows = 32
    /// From this many rows on, the per-thread path.
    static let perThreadRows = 64

    /// Whether `m` rows are split between threads (rather than the columns).
    static func splitsRows(_ m: Int) -> Bool { m >= perThreadRows || Parallel.threads == 1 }

    /// Whether the kernel runs on AVX-512 VNNI here (else portable C: same results, slower).
    public static var usesVNNI: Bool { ck_int8_uses_vnni() != 0 }

    /// - Parameters:
    ///   - weights: `outputSize` rows of `inputSize` floats (a Linear's `weight`).
    ///   - bias: `outputSize` floats, or nil.
    public init(weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, inputSize: Int, outputSize: Int,
                epilogue: LinearEpilogue = .none) {
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
        packedWeights = .allocate(byteCount: max(ck_int8_packed_size(outputSize, inputSize), 64), alignment: 64)
        ck_int8_quantize_pack(weights, outputSize, inputSize, packedWeights.assumingMemoryBound(to: Int8.self),
                              weightScales, weightCodeSums, &l1)
        weightCodeL1 = l1
    }

    deinit {
        packedWeights.deallocate()
        weightScales.deallocate()
        weightCodeSums.deallocate()
        bias?.deallocate()
    }

    /// output[m × outputSize] (=, or += with `.accumulate`) input[m × inputSize]·Wᵀ + b, then the epilogue.
    public func run(rows m: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        precondition(m > 0)
        Int8Workspace.lock.lock()
        defer { Int8Workspace.lock.unlock() }
        if Int8LinearLayer.splitsRows(m) {
            let ranges = Parallel.ranges(m)
            let workspaces = Int8Workspace.perThread(ranges.count, for: [self])
            Parallel.forThreadRanges(ranges: ranges) { t, lo, hi in
                self.runRows(lo..<hi, input: input, output: output, workspace: workspaces[t])
            }
        } else {
            runColumns(rows: m, input: input, output: output)
        }
    }

    /// A feed-forward block, output (+)= second(first(input)), fused per chunk: the first
    /// layer's output (after its GELU) is quantised for the second while still in the core's
    /// caches, so the [rows × intermediate] floats are never written out and read back.
    static func runPair(_ first: Int8LinearLayer, _ second: Int8LinearLayer, rows m: Int,
                        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        precondition(first.outputSize == second.inputSize)
        Int8Workspace.lock.lock()
        defer { Int8Workspace.lock.unlock() }
        let ranges = Parallel.ranges(m)
        let workspaces = Int8Workspace.perThread(ranges.count, for: [first, second])
        Parallel.forThreadRanges(ranges: ranges) { t, lo, hi in
            let ws = workspaces[t]
            for start in stride(from: lo, to: hi, by: chunkRows) {
                let count = min(chunkRows, hi - start)
                first.quantize(rows: count, input + start * first.inputSize, into: ws)
                first.multiply(rows: count, ws, output: ws.floats, stride: first.outputSize)
                second.quantize(rows: count, ws.floats, into: ws)
                second.multiply(rows: count, ws, output: output + start * second.outputSize, stride: second.outputSize)
            }
        }
    }

    /// Rows `rows` of output ← (or +=) this layer of those rows of input, chunk by chunk.
    private func runRows(_ rows: Range<Int>, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                         workspace ws: Int8Workspace) {
        for start in stride(from: rows.lowerBound, to: rows.upperBound, by: Int8LinearLayer.chunkRows) {
            let count = min(Int8LinearLayer.chunkRows, rows.upperBound - start)
            quantize(rows: count, input + start * inputSize, into: ws)
            multiply(rows: count, ws, output: output + start * outputSize, stride: outputSize)
        }
    }

    private func quantize(rows count: Int, _ input: UnsafePointer<Float>, into ws: Int8Workspace) {
        ck_quantize_rows_u8(input, count, inputSize, ws.codes, codeStride, ws.scales, ws.zeroPoints)
    }

    /// output rows ← (or +=) the workspace's codes of `count` rows through this layer, all panels.
    private func multiply(rows count: Int, _ ws: Int8Workspace, output: UnsafeMutablePointer<Float>, stride: Int) {
        var e = epilogueDescription(scales: ws.scales, zeroPoints: ws.zeroPoints)
        ck_int8_linear(ws.codes, codeStride, count, inputSize, packedWeights.assumingMemoryBound(to: Int8.self),
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

    /// Few rows: quantised once, then each thread takes its own panels (columns) of every row.
    private func runColumns(rows m: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        if codes.count < m * codeStride { codes = [UInt8](repeating: 0, count: m * codeStride) }
        if scales.count < m {
            scales = [Float](repeating: 0, count: m)
            zeroPoints = [Int32](repeating: 0, count: m)
        }
        let (k, n, stride, panels) = (inputSize, outputSize, codeStride, panels)
        let packed = packedWeights.assumingMemoryBound(to: Int8.self)
        codes.withUnsafeMutableBufferPointer { codes in
            scales.withUnsafeMutableBufferPointer { scales in
                zeroPoints.withUnsafeMutableBufferPointer { zeros in
                    let (c, s, z) = (codes.baseAddress!, scales.baseAddress!, zeros.baseAddress!)
                    ck_quantize_rows_u8(input, m, k, c, stride, s, z)
                    let e = epilogueDescription(scales: s, zeroPoints: z)
                    Parallel.forRanges(panels) { lo, hi in
                        var e = e
                        ck_int8_linear(c, stride, m, k, packed, n, lo, hi, &e, output, n)
                    }
                }
            }
        }
    }

    /// The bound on |x·wₙ − (its int8 estimate)| for one input row and output n (before the
    /// epilogue), from the quantisation steps alone.
    public func errorBound(input row: UnsafePointer<Float>, output n: Int) -> Float {
        var l1: Float = 0, lo: Float = 0, hi: Float = 0
        for j in 0..<inputSize {
            l1 += abs(row[j])
            lo = min(lo, row[j])
            hi = max(hi, row[j])
        }
        let xScale = (hi - lo) / 255
        return weightScales[n] / 2 * l1 + xScale / 2 * weightScales[n] * weightCodeL1[n]
    }
}

/// Per-thread scratch of the int8 layers' per-thread path, shared by every layer (they run
/// one after another): a chunk's u8 codes, their scales and zero points, and a fused pair's
/// intermediate rows as floats.
final class Int8Workspace: @unchecked Sendable {
    private(set) var codes: UnsafeMutablePointer<UInt8>
    private(set) var scales: UnsafeMutablePointer<Float>
    private(set) var zeroPoints: UnsafeMutablePointer<Int32>
    private(set) var floats: UnsafeMutablePointer<Float>
    private var codeCapacity = 0, floatCapacity = 0

    nonisolated(unsafe) private static var all: [Int8Workspace] = []

    /// Held for a whole layer call: the workspaces (and each layer's own scratch) serve one
    /// caller at a time, so layers called from several threads at once (tests, a library
    /// user) take turns instead of sharing scratch.
    static let lock = PThreadMutex()

    /// `count` workspaces with room for a chunk of any of `layers`; call with `lock` held,
    /// outside the parallel region.
    static func perThread(_ count: Int, for layers: [Int8LinearLayer]) -> [Int8Workspace] {
        let chunk = Int8LinearLayer.chunkRows
        let widest = layers.map { max(ck_int8_code_stride($0.inputSize), $0.outputSize) }.max() ?? 0
        while all.count < count { all.append(Int8Workspace()) }
        for ws in all.prefix(count) { ws.reserve(codes: chunk * widest, floats: chunk * widest) }
        return Array(all.prefix(count))
    }

    private init() {
        codes = .allocate(capacity: 1)
        floats = .allocate(capacity: 1)
        scales = .allocate(capacity: Int8LinearLayer.chunkRows)
        zeroPoints = .allocate(capacity: Int8LinearLayer.chunkRows)
    }

    private func reserve(codes codeCount: Int, floats floatCount: Int) {
        if codeCount > codeCapacity {
            codes.deallocate()
            codes = .allocate(capacity: codeCount)
            codeCapacity = codeCount
        }
        if floatCount > floatCapacity {
            floats.deallocate()
            floats = .allocate(capacity: floatCount)
            floatCapacity = floatCount
        }
    }
}
