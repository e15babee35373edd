import RuCore
import CDNNL

/// u8 codes [m × k] · s8 weights → int32 products [m × n] through oneDNN's int8 matmul, on
/// all threads: the int8 path on CPUs without AVX-512 VNNI (AVX2, AVX-VNNI), where oneDNN
/// has kernels of its own and ru-embed's panel kernel has none.
final class OneDNNInt8Matmul {
    let k: Int
    let n: Int
    private let arranged: UnsafeMutableRawPointer
    private var weightsDesc: dnnl_memory_desc_t
    /// Keyed by rows and thread count (oneDNN plans a primitive for the threads of its creation;
    /// `Parallel.rebalance` changes the count when other processes start or end).
    private struct Key: Hashable { let rows: Int, threads: Int }
    private var primitives: [Key: Primitive] = [:]

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

    /// Row counts a primitive is made for: `m` rounded up (to 8 under 64 rows, else to 32), so
    /// a few primitives serve every batch; the extra rows are computed from zero codes and ignored.
    static func paddedRows(_ m: Int) -> Int { m <= 64 ? (m + 7) / 8 * 8 : (m + 31) / 32 * 32 }

    /// - Parameter codes: s8 weight codes [n × k], row-major.
    init(codes: UnsafePointer<Int8>, k: Int, n: Int) {
        self.k = k
        self.n = n
        let plain = DNNL.matrix(rows: k, cols: n, rowStride: 1, colStride: k, type: dnnl_s8)
        let any = DNNL.matrix(rows: k, cols: n, tag: dnnl_format_tag_any, type: dnnl_s8)
        let pd = OneDNNInt8Matmul.primitiveDesc(m: 32, k: k, n: n, codeStride: k, weights: any)
        weightsDesc = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)!.pointee
        dnnl_primitive_desc_destroy(pd)
        arranged = DNNL.arrange(UnsafeRawPointer(codes), plain: plain, into: weightsDesc)
    }

    deinit {
        primitives.removeAll()
        arranged.deallocate()
    }

    /// products[paddedRows(m) × n] ← codes[paddedRows(m) rows, `codeStride` bytes apart] · Wᵀ.
    func run(rows m: Int, codes: UnsafeMutablePointer<UInt8>, codeStride: Int, products: UnsafeMutablePointer<Int32>) {
        let rows = OneDNNInt8Matmul.paddedRows(m)
        let p = primitive(rows: rows, codeStride: codeStride)
        let ctx = DNNL.context
        dnnl_memory_set_data_handle(p.src, codes)
        dnnl_memory_set_data_handle(p.dst, products)
        var args = [
            dnnl_exec_arg_t(arg: 1 /* DNNL_ARG_SRC */, memory: p.src),
            dnnl_exec_arg_t(arg: 33 /* DNNL_ARG_WEIGHTS */, memory: p.weights),
            dnnl_exec_arg_t(arg: 17 /* DNNL_ARG_DST */, memory: p.dst),
        ]
        DNNL.check(dnnl_primitive_execute(p.primitive, ctx.stream, Int32(args.count), &args), "run an int8 linear layer")
        DNNL.check(dnnl_stream_wait(ctx.stream), "wait for an int8 linear layer")
    }

    private func primitive(rows m: Int, codeStride: Int) -> Primitive {
        let key = Key(rows: m, threads: Parallel.threads)
        if let p = primitives[key] { return p }
        let ctx = DNNL.context
        var weights = weightsDesc
        let pd = OneDNNInt8Matmul.primitiveDesc(m: m, k: k, n: n, codeStride: codeStride, weights: weights)
        let p = Primitive(DNNL.primitive(of: pd, "an int8 linear layer"))
        var srcMD = DNNL.matrix(rows: m, cols: k, rowStride: codeStride, colStride: 1, type: dnnl_u8)
        var dstMD = DNNL.matrix(rows: m, cols: n, rowStride: n, colStride: 1, type: dnnl_s32)
        DNNL.check(dnnl_memory_create(&p.src, &srcMD, ctx.engine, nil), "create memory")
        DNNL.check(dnnl_memory_create(&p.dst, &dstMD, ctx.engine, nil), "create memory")
        DNNL.check(dnnl_memory_create(&p.weights, &weights, ctx.engine, arranged), "create memory")
        primitives[key] = p
        return p
    }

    private static func primitiveDesc(m: Int, k: Int, n: Int, codeStride: Int,
                                      weights: dnnl_memory_desc_t) -> dnnl_primitive_desc_t {
        DNNL.matmulDescriptor(src: DNNL.matrix(rows: m, cols: k, rowStride: codeStride, colStride: 1, type: dnnl_u8),
                              weights: weights,
                              dst: DNNL.matrix(rows: m, cols: n, rowStride: n, colStride: 1, type: dnnl_s32),
                              "an int8 linear layer for \(m)×\(k)·\(k)×\(n)")
    }
}
