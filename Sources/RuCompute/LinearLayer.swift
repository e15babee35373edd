import RuCore
import CDNNL
import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// What a linear layer does after the product, fused into the same oneDNN sweep.
package enum LinearEpilogue: Sendable {
    /// out = x·Wᵀ + b
    case none
    /// out = GELU(x·Wᵀ + b), with the exact erf GELU (transformers' "gelu")
    case geluErf
    /// out = GELU(x·Wᵀ + b), with the tanh approximation ("gelu_new", "gelu_pytorch_tanh")
    case geluTanh
    /// out += x·Wᵀ + b: the residual is already in the output buffer
    case accumulate
}

/// A PyTorch-style Linear layer (y = x·Wᵀ + b): ru-embed's own f32 kernel on AVX2 CPUs and on
/// Intel's AVX-512 ones (`ck_f32_linear`, CKernels/f32_linear.c: on a Zen 3 it runs the
/// encoder's shapes at 1.0–1.9× oneDNN 2.6's rate, on a Xeon level at 256 rows and 1.1× at 20,
/// bench/f32-ceiling), oneDNN's matmul primitive elsewhere.
///
/// The kernel's weights are packed once into its column panels and each call hands the
/// panels to the threads in pieces; it keeps no state between calls, so it needs no lock.
/// The weights are copied once, at construction, into the blocked layout oneDNN's matmul
/// picks for this CPU (the layout depends on the instruction set, so it is never written
/// to disk); the caller's row-major weights may be released afterwards. A primitive is
/// created per row count M (the number of tokens in a pack) and kept: one made for the
/// exact M is 30–40 % faster at small M than one taking M at run time.
package final class LinearLayer {
    package let inputSize: Int
    package let outputSize: Int
    package let epilogue: LinearEpilogue

    /// The kernel's panels, or nil when oneDNN multiplies.
    private let packedWeights: UnsafeMutablePointer<Float>?
    private let arrangedWeights: UnsafeMutableRawPointer?
    private var weightsDesc: dnnl_memory_desc_t
    private let bias: UnsafeMutablePointer<Float>

    /// Whether ru-embed's f32 kernel is used on this CPU (AVX2 and FMA, or Intel's AVX-512), unless
    /// RU_EMBED_F32_KERNEL=onednn asks for oneDNN (to compare the two, or to rule the kernel out).
    package static let kernelPreferred = ck_f32_kernel_preferred() != 0
        && getenv("RU_EMBED_F32_KERNEL").map { String(cString: $0) } != "onednn"
    /// Tests: layers made while this is set use oneDNN even where the kernel runs.
    nonisolated(unsafe) package static var forceOneDNN = false
    /// Whether this layer runs ru-embed's kernel (else oneDNN's matmul).
    package var usesKernel: Bool { packedWeights != nil }
    /// Primitives are shared by all layers of one shape (12 layers of USER-base use the same
    /// four), so a new token count costs four primitive creations, not forty-eight.
    /// The thread count is part of the key: oneDNN plans a primitive's split for the threads
    /// of its creation, and the count changes when other processes start or end (`Parallel.rebalance`).
    private struct Shape: Hashable { let m: Int, k: Int, n: Int, epilogue: Int, threads: Int }
    nonisolated(unsafe) private static var primitives: [Shape: Primitive] = [:]
    /// Held for a whole call: the shared primitives' memory objects take each call's buffers
    /// (weights included), so two models running at once (threads of a library user, test
    /// suites in parallel) would otherwise multiply by each other's weights.
    private static let lock = Lock(())

    private final class Primitive {
        let primitive: dnnl_primitive_t
        var src: dnnl_memory_t?, weights: dnnl_memory_t?, bias: dnnl_memory_t?, dst: dnnl_memory_t?
        init(_ primitive: dnnl_primitive_t) { self.primitive = primitive }
        deinit {
            dnnl_primitive_destroy(primitive)
            dnnl_memory_destroy(src); dnnl_memory_destroy(weights)
            dnnl_memory_destroy(bias); dnnl_memory_destroy(dst)
        }
    }

    /// The row count the weight layout is chosen for; other Ms reuse that layout.
    private static let layoutRows = 128

    /// - Parameters:
    ///   - weights: `outputSize` rows of `inputSize` floats, row-major (a Linear's `weight`).
    ///   - bias: `outputSize` floats, or nil for none.
    package init(weights: UnsafePointer<Float>, bias biasValues: UnsafePointer<Float>?,
                inputSize: Int, outputSize: Int, epilogue: LinearEpilogue = .none) {
        precondition(inputSize > 0 && outputSize > 0)
        self.inputSize = inputSize
        self.outputSize = outputSize
        self.epilogue = epilogue
        bias = .allocate(capacity: outputSize)
        if let biasValues { bias.update(from: biasValues, count: outputSize) } else { bias.initialize(repeating: 0, count: outputSize) }

        if LinearLayer.kernelPreferred && !LinearLayer.forceOneDNN {
            let floats = max(ck_f32_packed_floats(outputSize, inputSize), 16)
            let packed = UnsafeMutableRawPointer.allocate(byteCount: floats * 4, alignment: 64)
                .bindMemory(to: Float.self, capacity: floats)
            ck_f32_pack(weights, outputSize, inputSize, packed)
            packedWeights = packed
            arrangedWeights = nil
            weightsDesc = dnnl_memory_desc_t()
            return
        }
        packedWeights = nil
        // Ask oneDNN which weight layout it wants, then reorder the plain weights into it.
        let plain = DNNL.matrix(rows: inputSize, cols: outputSize, rowStride: 1, colStride: inputSize)
        let any = DNNL.matrix(rows: inputSize, cols: outputSize, tag: dnnl_format_tag_any)
        let pd = LinearLayer.primitiveDesc(m: LinearLayer.layoutRows, k: inputSize, n: outputSize,
                                           weights: any, epilogue: epilogue)
        weightsDesc = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)!.pointee
        dnnl_primitive_desc_destroy(pd)
        arrangedWeights = DNNL.arrange(weights, plain: plain, into: weightsDesc)
    }

    deinit {
        packedWeights?.deallocate()
        arrangedWeights?.deallocate()
        bias.deallocate()
    }

    /// Bytes held by the arranged weights and bias.
    package var residentBytes: Int {
        if packedWeights != nil { return ck_f32_packed_floats(outputSize, inputSize) * 4 + outputSize * 4 }
        var desc = weightsDesc
        return dnnl_memory_desc_get_size(&desc) + outputSize * 4
    }

    /// output[m × outputSize] (=, or += with `.accumulate`) input[m × inputSize] · Wᵀ + b, then the epilogue.
    /// `input` and `output` are row-major and must not overlap.
    package func run(rows m: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        precondition(m > 0)
        if let packed = packedWeights {
            runKernel(packed, rows: m, input: input, output: output)
            return
        }
        LinearLayer.lock.withLock { _ in execute(rows: m, input: input, output: output) }
    }

    /// The kernel over every row, the columns in pieces of panel triples (the AVX-512 tile's
    /// width) that each thread takes as it finishes one, about four a thread and the last ones
    /// smaller (`Parallel.forPieces`): on a shared host one core runs slower than the other
    /// for seconds, and fixed halves left the faster one spinning in libgomp (5.5 % of the f32
    /// batch run's samples; 2.6 % in pieces, the run faster in each of five interleaved
    /// rounds, 4 % at the median; Intel Xeon model 207, 2 threads). Which thread computes a
    /// column does not change its bits.
    private func runKernel(_ packed: UnsafeMutablePointer<Float>, rows m: Int, input: UnsafePointer<Float>,
                           output: UnsafeMutablePointer<Float>) {
        let (k, n, bias) = (inputSize, outputSize, UnsafePointer(bias))
        let mode = Int32(epilogueMode.rawValue)
        let panels = ck_f32_panels(n), triples = (panels + 2) / 3
        let piece = max(1, triples / (4 * Parallel.threads))
        Parallel.forPieces(triples, piece: piece, taperingTo: 1) { _, lo, hi in
            ck_f32_linear(input, k, m, k, packed, n, 3 * lo, min(3 * hi, panels), bias, mode, output, n)
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

    private func execute(rows m: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        let p = primitive(rows: m)
        let ctx = DNNL.context
        dnnl_memory_set_data_handle(p.src, UnsafeMutableRawPointer(mutating: input))
        dnnl_memory_set_data_handle(p.weights, arrangedWeights!)
        dnnl_memory_set_data_handle(p.bias, UnsafeMutableRawPointer(bias))
        dnnl_memory_set_data_handle(p.dst, UnsafeMutableRawPointer(output))
        var args = [
            dnnl_exec_arg_t(arg: 1 /* DNNL_ARG_SRC */, memory: p.src),
            dnnl_exec_arg_t(arg: 33 /* DNNL_ARG_WEIGHTS */, memory: p.weights),
            dnnl_exec_arg_t(arg: 41 /* DNNL_ARG_BIAS */, memory: p.bias),
            dnnl_exec_arg_t(arg: 17 /* DNNL_ARG_DST */, memory: p.dst),
        ]
        DNNL.check(dnnl_primitive_execute(p.primitive, ctx.stream, Int32(args.count), &args), "run a linear layer")
        DNNL.check(dnnl_stream_wait(ctx.stream), "wait for a linear layer")
    }

    private var epilogueCode: Int {
        switch epilogue { case .none: 0; case .geluErf: 1; case .geluTanh: 2; case .accumulate: 3 }
    }

    private func primitive(rows m: Int) -> Primitive {
        let shape = Shape(m: m, k: inputSize, n: outputSize, epilogue: epilogueCode, threads: Parallel.threads)
        if let p = LinearLayer.primitives[shape] { return p }
        let ctx = DNNL.context
        var weights = weightsDesc
        let pd = LinearLayer.primitiveDesc(m: m, k: inputSize, n: outputSize, weights: weights, epilogue: epilogue)
        let p = Primitive(DNNL.primitive(of: pd, "a linear layer"))
        var srcMD = DNNL.matrix(rows: m, cols: inputSize, rowStride: inputSize, colStride: 1)
        var dstMD = DNNL.matrix(rows: m, cols: outputSize, rowStride: outputSize, colStride: 1)
        var biasMD = DNNL.matrix(rows: 1, cols: outputSize, tag: dnnl_ab)
        DNNL.check(dnnl_memory_create(&p.src, &srcMD, ctx.engine, nil), "create memory")
        DNNL.check(dnnl_memory_create(&p.dst, &dstMD, ctx.engine, nil), "create memory")
        DNNL.check(dnnl_memory_create(&p.weights, &weights, ctx.engine, arrangedWeights), "create memory")
        DNNL.check(dnnl_memory_create(&p.bias, &biasMD, ctx.engine, UnsafeMutableRawPointer(bias)), "create memory")
        LinearLayer.primitives[shape] = p
        return p
    }

    private static func primitiveDesc(m: Int, k: Int, n: Int, weights: dnnl_memory_desc_t,
                                      epilogue: LinearEpilogue) -> dnnl_primitive_desc_t {
        var attr: dnnl_primitive_attr_t?
        DNNL.check(dnnl_primitive_attr_create(&attr), "create attributes")
        var postOps: dnnl_post_ops_t?
        DNNL.check(dnnl_post_ops_create(&postOps), "create post-ops")
        switch epilogue {
        case .none: break
        case .geluErf: DNNL.check(dnnl_post_ops_append_eltwise(postOps, 1, dnnl_eltwise_gelu_erf, 0, 0), "add a GELU")
        case .geluTanh: DNNL.check(dnnl_post_ops_append_eltwise(postOps, 1, dnnl_eltwise_gelu_tanh, 0, 0), "add a GELU")
        case .accumulate: DNNL.check(dnnl_post_ops_append_sum(postOps, 1), "add a sum")
        }
        DNNL.check(dnnl_primitive_attr_set_post_ops(attr, postOps), "set post-ops")
        let pd = DNNL.matmulDescriptor(src: DNNL.matrix(rows: m, cols: k, rowStride: k, colStride: 1), weights: weights,
                                       bias: DNNL.matrix(rows: 1, cols: n, tag: dnnl_ab),
                                       dst: DNNL.matrix(rows: m, cols: n, rowStride: n, colStride: 1), attr: attr,
                                       "a linear layer for \(m)×\(k)·\(k)×\(n)")
        dnnl_post_ops_destroy(postOps)
        dnnl_primitive_attr_destroy(attr)
        return pd
    }
}
