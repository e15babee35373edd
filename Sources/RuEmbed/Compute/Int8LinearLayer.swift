#if canImport(Glibc)
import Glibc
#endif
import CDNNL
import CKernels

/// A Linear layer (y = x·Wᵀ + b) computed in int8: the path of `--precision int8`.
///
/// Weights are quantised once, symmetric per output channel (s8), and arranged in the layout
/// oneDNN's int8 matmul wants on this CPU. Each call quantises the activations per row,
/// asymmetric u8 (so VNNI's u8×s8 instruction applies directly and the zero of GELU outputs
/// stays exact), multiplies into int32, and one C sweep dequantises, corrects the zero point,
/// adds the bias and applies the epilogue.
///
/// With enough rows each thread takes its own contiguous rows and runs quantise → oneDNN
/// (single-threaded, inside the parallel region) → dequantise over chunks of `chunkRows`:
/// the int32 products of a chunk stay in the core's L2 cache between the GEMM and the sweep
/// that reads them, there is one parallel region per layer instead of three, and a
/// single-threaded oneDNN GEMM at 32–128 rows runs at this CPU's VNNI peak (measured 455 GOP/s
/// per core, against 440 for one two-thread GEMM over all rows). Few rows (one short text)
/// go through one oneDNN call on all threads, which splits the columns instead.
///
/// Error per output: with x = s_x·(q_x − z) + e_x and w = s_w·q_w + e_w (|e| ≤ s/2),
///     |y − ŷ| ≤ (s_w/2)·‖x‖₁ + (s_x/2)·s_w·‖q_w‖₁ (+ float rounding),
/// which `errorBound` computes and the tests check.
public final class Int8LinearLayer {
    public let inputSize: Int
    public let outputSize: Int
    public let epilogue: LinearEpilogue

    private let weightScales: [Float]
    private let weightCodeSums: [Int32]
    private let weightCodeL1: [Float]
    private let bias: UnsafeMutablePointer<Float>?
    private let arrangedWeights: UnsafeMutableRawPointer
    private var weightsDesc: dnnl_memory_desc_t
    private var primitives: [Int: Primitive] = [:]
    private var chunkPrimitives: [Int: ChunkPrimitive] = [:]
    // Scratch reused between calls: u8 activations, their scales and zero points, int32 products.
    private var codes: [UInt8] = []
    private var scales: [Float] = []
    private var zeroPoints: [Int32] = []
    private var products: [Int32] = []

    private final class Primitive {
        let primitive: dnnl_primitive_t
        var src: dnnl_memory_t?, weights: dnnl_memory_t?, dst: dnnl_memory_t?
        init(_ primitive: dnnl_primitive_t) { self.primitive = primitive }
        deinit {
            dnnl_primitive_destroy(primitive)
            dnnl_memory_destroy(src)
            dnnl_memory_destroy(weights)
            dnnl_memory_destroy(dst)
        }
    }

    /// A chunk primitive with memory objects for each thread (one primitive runs on several
    /// threads at once; its scratchpad is ours, per thread, so that is safe).
    private final class ChunkPrimitive {
        let primitive: dnnl_primitive_t
        let scratchpadBytes: Int
        var src: [dnnl_memory_t?] = [], weights: [dnnl_memory_t?] = [], dst: [dnnl_memory_t?] = []
        var scratchpad: [dnnl_memory_t?] = []
        init(_ primitive: dnnl_primitive_t, scratchpadBytes: Int) {
            self.primitive = primitive
            self.scratchpadBytes = scratchpadBytes
        }
        deinit {
            dnnl_primitive_destroy(primitive)
            for m in src + weights + dst + scratchpad { dnnl_memory_destroy(m) }
        }
    }

    /// The row count the weight layout is chosen for; other row counts reuse that layout.
    private static let layoutRows = chunkRows
    /// Rows per chunk of the per-thread path: 32 rows × 3072 int32 products = 384 KiB, in L2.
    /// Measured on the bench batches (2 threads, Zen 4): 32 and 48 rows 3.61–3.65 s, 64 rows
    /// 3.83–3.89 s, 128 rows 3.61–3.67 s, 256 rows 3.80 s; weights laid out for the chunk size.
    static let chunkRows = 32
    /// Chunk primitives exist for multiples of this many rows; a shorter chunk is padded
    /// (its extra rows computed and ignored), so a few primitives serve every batch.
    static let chunkStep = 8
    /// From this many rows on, the per-thread path.
    static let perThreadRows = 64

    /// Whether `m` rows are split between threads (rather than one oneDNN call on all threads).
    static func splitsRows(_ m: Int) -> Bool { m >= perThreadRows || Parallel.threads == 1 }

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

        var plainCodes = [Int8](repeating: 0, count: inputSize * outputSize)
        var scales = [Float](repeating: 0, count: outputSize)
        var sums = [Int32](repeating: 0, count: outputSize)
        var l1 = [Float](repeating: 0, count: outputSize)
        ck_quantize_weights_s8(weights, outputSize, inputSize, &plainCodes, &scales, &sums, &l1)
        weightScales = scales
        weightCodeSums = sums
        weightCodeL1 = l1

        // Ask oneDNN for its int8 weight layout, then reorder the plain codes into it.
        let plain = DNNL.matrix(rows: inputSize, cols: outputSize, rowStride: 1, colStride: inputSize, type: dnnl_s8)
        var any = DNNL.matrix(rows: inputSize, cols: outputSize, tag: dnnl_format_tag_any, type: dnnl_s8)
        let pd = Int8LinearLayer.primitiveDesc(m: Int8LinearLayer.layoutRows, k: inputSize, n: outputSize, weights: &any)
        weightsDesc = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)!.pointee
        dnnl_primitive_desc_destroy(pd)
        let arranged = weightsDesc
        arrangedWeights = plainCodes.withUnsafeBytes { DNNL.arrange($0.baseAddress!, plain: plain, into: arranged) }
    }

    deinit {
        primitives.removeAll()
        chunkPrimitives.removeAll()
        arrangedWeights.deallocate()
        bias?.deallocate()
    }

    /// output[m × outputSize] (=, or += with `.accumulate`) input[m × inputSize]·Wᵀ + b, then the epilogue.
    public func run(rows m: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        precondition(m > 0)
        Int8Workspace.lock.lock()
        defer { Int8Workspace.lock.unlock() }
        if Int8LinearLayer.splitsRows(m) {
            runPerThread(rows: m, input: input, output: output)
        } else {
            runWhole(rows: m, input: input, output: output)
        }
    }

    private var epilogueMode: Int32 {
        switch epilogue {
        case .none: Int32(CK_PLAIN.rawValue)
        case .geluErf: Int32(CK_GELU_ERF.rawValue)
        case .geluTanh: Int32(CK_GELU_TANH.rawValue)
        case .accumulate: Int32(CK_ACCUMULATE.rawValue)
        }
    }

    /// Each thread its own rows, chunk by chunk: quantise, multiply, dequantise.
    private func runPerThread(rows m: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        let ranges = Parallel.ranges(m)
        let workspaces = Int8LinearLayer.workspaces(for: [self], ranges: ranges)
        Parallel.forThreadRanges(ranges: ranges) { t, lo, hi in
            self.runRows(lo..<hi, thread: t, input: input, output: output, workspace: workspaces[t])
        }
    }

    /// A feed-forward block, output (+)= second(first(input)), fused per chunk: the first
    /// layer's output (after its GELU) is quantised for the second straight from L2, so the
    /// [rows × intermediate] floats are never written out and read back.
    static func runPair(_ first: Int8LinearLayer, _ second: Int8LinearLayer, rows m: Int,
                        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        Int8Workspace.lock.lock()
        defer { Int8Workspace.lock.unlock() }
        let ranges = Parallel.ranges(m)
        let workspaces = workspaces(for: [first, second], ranges: ranges)
        Parallel.forThreadRanges(ranges: ranges) { t, lo, hi in
            runPairRows(first, second, lo..<hi, thread: t, input: input, output: output, workspace: workspaces[t])
        }
    }

    /// Rows `rows` of output ← (or +=) this layer of those rows of input, chunk by chunk on
    /// the calling thread `t`, which `workspaces(for:ranges:)` prepared for.
    func runRows(_ rows: Range<Int>, thread t: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                 workspace ws: Int8Workspace) {
        let (k, n) = (inputSize, outputSize)
        for start in stride(from: rows.lowerBound, to: rows.upperBound, by: Int8LinearLayer.chunkRows) {
            let count = min(Int8LinearLayer.chunkRows, rows.upperBound - start)
            ck_quantize_rows_u8(input + start * k, count, k, ws.codes, ws.scales, ws.zeroPoints)
            multiply(thread: t, rows: count, codes: ws.codes, workspace: ws)
            dequantize(rows: count, workspace: ws, output: output + start * n)
        }
    }

    /// `runPair` for rows `rows` on the calling thread `t`.
    static func runPairRows(_ first: Int8LinearLayer, _ second: Int8LinearLayer, _ rows: Range<Int>, thread t: Int,
                            input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, workspace ws: Int8Workspace) {
        precondition(first.outputSize == second.inputSize)
        let (k, inner, n) = (first.inputSize, first.outputSize, second.outputSize)
        for start in stride(from: rows.lowerBound, to: rows.upperBound, by: chunkRows) {
            let count = min(chunkRows, rows.upperBound - start)
            ck_quantize_rows_u8(input + start * k, count, k, ws.codes, ws.scales, ws.zeroPoints)
            first.multiply(thread: t, rows: count, codes: ws.codes, workspace: ws)
            first.dequantize(rows: count, workspace: ws, output: ws.floats)
            ck_quantize_rows_u8(ws.floats, count, inner, ws.codes, ws.scales, ws.zeroPoints)
            second.multiply(thread: t, rows: count, codes: ws.codes, workspace: ws)
            second.dequantize(rows: count, workspace: ws, output: output + start * n)
        }
    }

    /// Creates, before the threads start, the chunk primitives `layers` will use when thread t
    /// runs `ranges[t]` (primitives and their dictionaries are shared), and returns one
    /// workspace per thread with room for any of them. Call with `Int8Workspace.lock` held.
    static func workspaces(for layers: [Int8LinearLayer], ranges: [Range<Int>]) -> [Int8Workspace] {
        let chunk = chunkRows
        var scratchpadBytes = 0, widest = 0
        for layer in layers {
            widest = max(widest, layer.inputSize, layer.outputSize)
            for range in ranges {
                for lo in stride(from: range.lowerBound, to: range.upperBound, by: chunk) {
                    let p = layer.chunkPrimitive(rows: paddedRows(min(chunk, range.upperBound - lo)), threads: ranges.count)
                    scratchpadBytes = max(scratchpadBytes, p.scratchpadBytes)
                }
            }
        }
        return Int8Workspace.perThread(ranges.count, codes: chunk * widest, products: chunk * widest,
                                       floats: chunk * widest, scratchpad: scratchpadBytes)
    }

    private static func paddedRows(_ rows: Int) -> Int { (rows + chunkStep - 1) / chunkStep * chunkStep }

    /// workspace.products ← codes[rows × inputSize] · Wᵀ in int32, on the calling thread.
    private func multiply(thread t: Int, rows: Int, codes: UnsafeMutablePointer<UInt8>, workspace ws: Int8Workspace) {
        let p = chunkPrimitives[Int8LinearLayer.paddedRows(rows)]!
        dnnl_memory_set_data_handle(p.src[t], codes)
        dnnl_memory_set_data_handle(p.dst[t], ws.products)
        dnnl_memory_set_data_handle(p.scratchpad[t], ws.scratchpad)
        var args = [
            dnnl_exec_arg_t(arg: 1 /* DNNL_ARG_SRC */, memory: p.src[t]),
            dnnl_exec_arg_t(arg: 33 /* DNNL_ARG_WEIGHTS */, memory: p.weights[t]),
            dnnl_exec_arg_t(arg: 17 /* DNNL_ARG_DST */, memory: p.dst[t]),
            dnnl_exec_arg_t(arg: 80 /* DNNL_ARG_SCRATCHPAD */, memory: p.scratchpad[t]),
        ]
        DNNL.check(dnnl_primitive_execute(p.primitive, ws.stream, Int32(args.count), &args), "run an int8 linear layer")
        DNNL.check(dnnl_stream_wait(ws.stream), "wait for an int8 linear layer")
    }

    /// output rows ← (or += with `.accumulate`) the dequantised workspace.products, bias, epilogue.
    private func dequantize(rows: Int, workspace ws: Int8Workspace, output: UnsafeMutablePointer<Float>) {
        weightScales.withUnsafeBufferPointer { scales in
            weightCodeSums.withUnsafeBufferPointer { sums in
                ck_dequantize(ws.products, rows, outputSize, ws.scales, ws.zeroPoints, scales.baseAddress!, sums.baseAddress!,
                              UnsafePointer(bias), output, epilogueMode)
            }
        }
    }

    /// One oneDNN call over all rows on all threads (few rows: it splits the columns).
    private func runWhole(rows m: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        if codes.count < m * inputSize { codes = [UInt8](repeating: 0, count: m * inputSize) }
        if scales.count < m {
            scales = [Float](repeating: 0, count: m)
            zeroPoints = [Int32](repeating: 0, count: m)
        }
        if products.count < m * outputSize { products = [Int32](repeating: 0, count: m * outputSize) }
        let (k, n) = (inputSize, outputSize)
        codes.withUnsafeMutableBufferPointer { codes in
            scales.withUnsafeMutableBufferPointer { scales in
                zeroPoints.withUnsafeMutableBufferPointer { zeros in
                    let (c, s, z) = (codes.baseAddress!, scales.baseAddress!, zeros.baseAddress!)
                    Parallel.forRanges(m) { lo, hi in
                        ck_quantize_rows_u8(input + lo * k, hi - lo, k, c + lo * k, s + lo, z + lo)
                    }
                }
            }
        }
        let p = primitive(rows: m)
        let ctx = DNNL.context
        codes.withUnsafeMutableBytes { src in
            products.withUnsafeMutableBytes { dst in
                dnnl_memory_set_data_handle(p.src, src.baseAddress)
                dnnl_memory_set_data_handle(p.dst, dst.baseAddress)
                var args = [
                    dnnl_exec_arg_t(arg: 1 /* DNNL_ARG_SRC */, memory: p.src),
                    dnnl_exec_arg_t(arg: 33 /* DNNL_ARG_WEIGHTS */, memory: p.weights),
                    dnnl_exec_arg_t(arg: 17 /* DNNL_ARG_DST */, memory: p.dst),
                ]
                DNNL.check(dnnl_primitive_execute(p.primitive, ctx.stream, Int32(args.count), &args), "run an int8 linear layer")
                DNNL.check(dnnl_stream_wait(ctx.stream), "wait for an int8 linear layer")
            }
        }
        let mode = epilogueMode
        products.withUnsafeBufferPointer { acc in
            scales.withUnsafeBufferPointer { xs in
                zeroPoints.withUnsafeBufferPointer { xz in
                    weightScales.withUnsafeBufferPointer { ws in
                        weightCodeSums.withUnsafeBufferPointer { wsum in
                            let biasPointer = UnsafePointer(bias)
                            let (a, s, z, w, sums) = (acc.baseAddress!, xs.baseAddress!, xz.baseAddress!, ws.baseAddress!, wsum.baseAddress!)
                            Parallel.forRanges(m) { lo, hi in
                                ck_dequantize(a + lo * n, hi - lo, n, s + lo, z + lo, w, sums, biasPointer,
                                              output + lo * n, mode)
                            }
                        }
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

    private func primitive(rows m: Int) -> Primitive {
        if let p = primitives[m] { return p }
        let ctx = DNNL.context
        var weights = weightsDesc
        let pd = Int8LinearLayer.primitiveDesc(m: m, k: inputSize, n: outputSize, weights: &weights)
        var prim: dnnl_primitive_t?
        DNNL.check(dnnl_primitive_create(&prim, pd), "create an int8 linear primitive")
        dnnl_primitive_desc_destroy(pd)
        let p = Primitive(prim!)
        var srcMD = DNNL.matrix(rows: m, cols: inputSize, rowStride: inputSize, colStride: 1, type: dnnl_u8)
        var dstMD = DNNL.matrix(rows: m, cols: outputSize, rowStride: outputSize, colStride: 1, type: dnnl_s32)
        DNNL.check(dnnl_memory_create(&p.src, &srcMD, ctx.engine, nil), "create memory")
        DNNL.check(dnnl_memory_create(&p.dst, &dstMD, ctx.engine, nil), "create memory")
        DNNL.check(dnnl_memory_create(&p.weights, &weights, ctx.engine, arrangedWeights), "create memory")
        primitives[m] = p
        return p
    }

    private func chunkPrimitive(rows m: Int, threads: Int) -> ChunkPrimitive {
        let p: ChunkPrimitive
        if let existing = chunkPrimitives[m] {
            p = existing
        } else {
            var weights = weightsDesc
            var attr: dnnl_primitive_attr_t?
            DNNL.check(dnnl_primitive_attr_create(&attr), "create primitive attributes")
            defer { dnnl_primitive_attr_destroy(attr) }
            DNNL.check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "ask for a user scratchpad")
            let pd = Int8LinearLayer.primitiveDesc(m: m, k: inputSize, n: outputSize, weights: &weights, attr: attr)
            defer { dnnl_primitive_desc_destroy(pd) }
            var prim: dnnl_primitive_t?
            DNNL.check(dnnl_primitive_create(&prim, pd), "create an int8 linear primitive")
            var scratchMD = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0)!.pointee
            p = ChunkPrimitive(prim!, scratchpadBytes: dnnl_memory_desc_get_size(&scratchMD))
            chunkPrimitives[m] = p
        }
        while p.src.count < threads {
            let ctx = DNNL.context
            var srcMD = DNNL.matrix(rows: m, cols: inputSize, rowStride: inputSize, colStride: 1, type: dnnl_u8)
            var dstMD = DNNL.matrix(rows: m, cols: outputSize, rowStride: outputSize, colStride: 1, type: dnnl_s32)
            var weights = weightsDesc
            var scratchMD = DNNL.matrix(rows: 1, cols: max(p.scratchpadBytes, 1), tag: dnnl_ab, type: dnnl_u8)
            var src: dnnl_memory_t?, dst: dnnl_memory_t?, w: dnnl_memory_t?, scratch: dnnl_memory_t?
            DNNL.check(dnnl_memory_create(&src, &srcMD, ctx.engine, nil), "create memory")
            DNNL.check(dnnl_memory_create(&dst, &dstMD, ctx.engine, nil), "create memory")
            DNNL.check(dnnl_memory_create(&w, &weights, ctx.engine, arrangedWeights), "create memory")
            DNNL.check(dnnl_memory_create(&scratch, &scratchMD, ctx.engine, nil), "create memory")
            p.src.append(src); p.dst.append(dst); p.weights.append(w); p.scratchpad.append(scratch)
        }
        return p
    }

    private static func primitiveDesc(m: Int, k: Int, n: Int, weights: inout dnnl_memory_desc_t,
                                      attr: dnnl_primitive_attr_t? = nil) -> dnnl_primitive_desc_t {
        var srcMD = DNNL.matrix(rows: m, cols: k, rowStride: k, colStride: 1, type: dnnl_u8)
        var dstMD = DNNL.matrix(rows: m, cols: n, rowStride: n, colStride: 1, type: dnnl_s32)
        var desc = dnnl_matmul_desc_t()
        DNNL.check(dnnl_matmul_desc_init(&desc, &srcMD, &weights, nil, &dstMD), "describe an int8 linear layer")
        var pd: dnnl_primitive_desc_t?
        DNNL.check(dnnl_primitive_desc_create(&pd, &desc, attr, DNNL.context.engine, nil),
                   "create an int8 linear layer for \(m)×\(k)·\(k)×\(n)")
        return pd!
    }
}

/// Per-thread scratch of the int8 layers' per-thread path, shared by every layer (they run
/// one after another): a chunk's u8 activations, their scales and zero points, its int32
/// products, oneDNN's scratchpad, and a stream of the thread's own.
final class Int8Workspace: @unchecked Sendable {
    let stream: dnnl_stream_t
    private(set) var codes: UnsafeMutablePointer<UInt8>
    private(set) var products: UnsafeMutablePointer<Int32>
    private(set) var scratchpad: UnsafeMutableRawPointer
    private(set) var scales: UnsafeMutablePointer<Float>
    private(set) var zeroPoints: UnsafeMutablePointer<Int32>
    /// A fused pair's intermediate rows, as floats.
    private(set) var floats: UnsafeMutablePointer<Float>
    private var codeCapacity = 0, productCapacity = 0, floatCapacity = 0, scratchpadCapacity = 0

    nonisolated(unsafe) private static var all: [Int8Workspace] = []

    /// Held for a whole layer call: the workspaces (and each layer's own scratch) serve one
    /// caller at a time, so layers called from several threads at once (tests, a library
    /// user) take turns instead of sharing scratch.
    static let lock = PThreadMutex()

    /// `count` workspaces, each with room for at least the given sizes; call outside the
    /// parallel region.
    static func perThread(_ count: Int, codes: Int, products: Int, floats: Int, scratchpad: Int) -> [Int8Workspace] {
        while all.count < count { all.append(Int8Workspace()) }
        for ws in all.prefix(count) { ws.reserve(codes: codes, products: products, floats: floats, scratchpad: scratchpad) }
        return Array(all.prefix(count))
    }

    private init() {
        var stream: dnnl_stream_t?
        DNNL.check(dnnl_stream_create(&stream, DNNL.context.engine, dnnl_stream_default_flags.rawValue), "create a stream")
        self.stream = stream!
        codes = .allocate(capacity: 1)
        products = .allocate(capacity: 1)
        floats = .allocate(capacity: 1)
        scratchpad = .allocate(byteCount: 64, alignment: 64)
        scales = .allocate(capacity: Int8LinearLayer.chunkRows)
        zeroPoints = .allocate(capacity: Int8LinearLayer.chunkRows)
    }

    private func reserve(codes codeCount: Int, products productCount: Int, floats floatCount: Int, scratchpad bytes: Int) {
        // Codes zero-filled: a padded chunk reads rows past its last one.
        Int8Workspace.grow(&codes, &codeCapacity, to: codeCount, filling: 0)
        Int8Workspace.grow(&products, &productCapacity, to: productCount)
        Int8Workspace.grow(&floats, &floatCapacity, to: floatCount)
        if bytes > scratchpadCapacity {
            scratchpad.deallocate()
            scratchpad = .allocate(byteCount: bytes, alignment: 64)
            scratchpadCapacity = bytes
        }
    }

    /// A new buffer of `count` elements when the current one is smaller; contents not kept.
    private static func grow<T>(_ buffer: inout UnsafeMutablePointer<T>, _ capacity: inout Int, to count: Int, filling: T? = nil) {
        guard count > capacity else { return }
        buffer.deallocate()
        buffer = .allocate(capacity: count)
        if let filling { buffer.initialize(repeating: filling, count: count) }
        capacity = count
    }}
