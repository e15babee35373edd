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

    /// The row count the weight layout is chosen for; other row counts reuse that layout.
    private static let layoutRows = 128

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
        ck_quantize_weights_s8(weights, outputSize, inputSize, &plainCodes, &scales, &sums)
        weightScales = scales
        weightCodeSums = sums
        weightCodeL1 = (0..<outputSize).map { n in
            Float((0..<inputSize).reduce(0) { $0 + abs(Int(plainCodes[n * inputSize + $1])) })
        }

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
        arrangedWeights.deallocate()
        bias?.deallocate()
    }

    /// output[m × outputSize] (=, or += with `.accumulate`) input[m × inputSize]·Wᵀ + b, then the epilogue.
    public func run(rows m: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        precondition(m > 0)
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
        let mode: Int32 = switch epilogue {
        case .none: Int32(CK_PLAIN.rawValue)
        case .geluErf: Int32(CK_GELU_ERF.rawValue)
        case .geluTanh: Int32(CK_GELU_TANH.rawValue)
        case .accumulate: Int32(CK_ACCUMULATE.rawValue)
        }
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

    private static func primitiveDesc(m: Int, k: Int, n: Int, weights: inout dnnl_memory_desc_t) -> dnnl_primitive_desc_t {
        var srcMD = DNNL.matrix(rows: m, cols: k, rowStride: k, colStride: 1, type: dnnl_u8)
        var dstMD = DNNL.matrix(rows: m, cols: n, rowStride: n, colStride: 1, type: dnnl_s32)
        var desc = dnnl_matmul_desc_t()
        DNNL.check(dnnl_matmul_desc_init(&desc, &srcMD, &weights, nil, &dstMD), "describe an int8 linear layer")
        var pd: dnnl_primitive_desc_t?
        DNNL.check(dnnl_primitive_desc_create(&pd, &desc, nil, DNNL.context.engine, nil),
                   "create an int8 linear layer for \(m)×\(k)·\(k)×\(n)")
        return pd!
    }
}
