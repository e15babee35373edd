import RuCore
import CDNNL

/// oneDNN's engine and stream for the process, and the descriptor and error helpers that
/// the target's oneDNN users share (MatmulNT below, LinearLayer, StridedBatchMatmul,
/// OneDNNInt8Matmul). Everything above RuCompute sees row-major Float buffers and these
/// types; on a platform without oneDNN, RuCompute is what another backend would replace.
enum DNNL {
    struct Context: @unchecked Sendable {
        let engine: dnnl_engine_t
        let stream: dnnl_stream_t
    }

    /// One CPU engine and one in-order stream for the process.
    static let context: Context = {
        var engine: dnnl_engine_t?
        check(dnnl_engine_create(&engine, dnnl_cpu, 0), "create the CPU engine")
        var stream: dnnl_stream_t?
        check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue), "create a stream")
        return Context(engine: engine!, stream: stream!)
    }()

    static func check(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
        if status != dnnl_success {
            // A failure here is a bug in how we call oneDNN, not bad user input.
            fatalError("oneDNN could not \(what()) (status \(status.rawValue))")
        }
    }

    /// A matmul's primitive descriptor: src · weights (+ bias) → dst, with `attr` if given.
    /// The caller destroys it (or hands it to `primitive(of:)`).
    static func matmulDescriptor(src: dnnl_memory_desc_t, weights: dnnl_memory_desc_t, bias: dnnl_memory_desc_t? = nil,
                                 dst: dnnl_memory_desc_t, attr: dnnl_primitive_attr_t? = nil,
                                 _ what: @autoclosure () -> String) -> dnnl_primitive_desc_t {
        var (src, weights, dst) = (src, weights, dst)
        var desc = dnnl_matmul_desc_t()
        if var bias {
            check(dnnl_matmul_desc_init(&desc, &src, &weights, &bias, &dst), "describe \(what())")
        } else {
            check(dnnl_matmul_desc_init(&desc, &src, &weights, nil, &dst), "describe \(what())")
        }
        var pd: dnnl_primitive_desc_t?
        check(dnnl_primitive_desc_create(&pd, &desc, attr, context.engine, nil), "create \(what())")
        return pd!
    }

    /// The primitive `pd` describes; `pd` is destroyed.
    static func primitive(of pd: dnnl_primitive_desc_t, _ what: @autoclosure () -> String) -> dnnl_primitive_t {
        var prim: dnnl_primitive_t?
        check(dnnl_primitive_create(&prim, pd), "create the primitive of \(what())")
        dnnl_primitive_desc_destroy(pd)
        return prim!
    }

    /// Copies `source` (laid out as `plain`) into a new 64-byte-aligned buffer in the layout
    /// `arranged`, which a primitive chose: how weights are pre-arranged once at load. The
    /// caller owns the returned buffer.
    static func arrange(_ source: UnsafeRawPointer, plain: dnnl_memory_desc_t,
                        into arranged: dnnl_memory_desc_t) -> UnsafeMutableRawPointer {
        let ctx = context
        var plain = plain, arranged = arranged
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(dnnl_memory_desc_get_size(&arranged), 64), alignment: 64)
        var reorderPD: dnnl_primitive_desc_t?
        check(dnnl_reorder_primitive_desc_create(&reorderPD, &plain, ctx.engine, &arranged, ctx.engine, nil), "plan a weight reorder")
        var reorder: dnnl_primitive_t?
        check(dnnl_primitive_create(&reorder, reorderPD), "create a weight reorder")
        dnnl_primitive_desc_destroy(reorderPD)
        var from: dnnl_memory_t?, to: dnnl_memory_t?
        check(dnnl_memory_create(&from, &plain, ctx.engine, UnsafeMutableRawPointer(mutating: source)), "wrap weights")
        check(dnnl_memory_create(&to, &arranged, ctx.engine, buffer), "wrap arranged weights")
        var args = [dnnl_exec_arg_t(arg: 1 /* DNNL_ARG_FROM */, memory: from),
                    dnnl_exec_arg_t(arg: 17 /* DNNL_ARG_TO */, memory: to)]
        check(dnnl_primitive_execute(reorder, ctx.stream, 2, &args), "reorder weights")
        check(dnnl_stream_wait(ctx.stream), "wait for a weight reorder")
        dnnl_primitive_destroy(reorder)
        dnnl_memory_destroy(from)
        dnnl_memory_destroy(to)
        return buffer
    }

    /// A 2-D memory descriptor by format tag: `dnnl_ab` (row-major) or `dnnl_format_tag_any`
    /// (let the primitive choose, as for weights it will pre-arrange).
    static func matrix(rows: Int, cols: Int, tag: dnnl_format_tag_t, type: dnnl_data_type_t = dnnl_f32) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        var dims: dnnl_dims_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        dims.0 = Int64(rows); dims.1 = Int64(cols)
        withUnsafePointer(to: &dims) { d in
            d.withMemoryRebound(to: Int64.self, capacity: 12) { d in
                check(dnnl_memory_desc_init_by_tag(&md, 2, d, type, tag), "describe a \(rows)×\(cols) matrix")
            }
        }
        return md
    }

    /// A 2-D memory descriptor with the given strides (in elements).
    static func matrix(rows: Int, cols: Int, rowStride: Int, colStride: Int, type: dnnl_data_type_t = dnnl_f32) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        var dims: dnnl_dims_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var strides: dnnl_dims_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        dims.0 = Int64(rows); dims.1 = Int64(cols)
        strides.0 = Int64(rowStride); strides.1 = Int64(colStride)
        // dnnl_dims_t is imported as a tuple: pass the whole tuple rebound to Int64.
        withUnsafePointer(to: &dims) { d in
            withUnsafePointer(to: &strides) { s in
                d.withMemoryRebound(to: Int64.self, capacity: 12) { d in
                    s.withMemoryRebound(to: Int64.self, capacity: 12) { s in
                        check(dnnl_memory_desc_init_by_strides(&md, 2, d, type, s), "describe a \(rows)×\(cols) matrix")
                    }
                }
            }
        }
        return md
    }
}

/// C[M×N] = A[M×K] · Bᵀ, with A, B and C row-major and B given as N rows of K
/// (the layout of both a PyTorch Linear weight and a block of corpus vectors).
///
/// The primitive is created for the exact shape (30–40 % faster at small M than a
/// run-time M); create one per shape and keep it.
package final class MatmulNT {
    /// The element types of A, B and C.
    package enum Precision {
        /// f32 × f32 → f32.
        case f32
        /// int8 × int8 → int32 (VNNI on CPUs that have it), for screening scores.
        case int8
    }

    package let m: Int, n: Int, k: Int
    private let primitive: dnnl_primitive_t
    private var a: dnnl_memory_t?, b: dnnl_memory_t?, c: dnnl_memory_t?

    package init(m: Int, n: Int, k: Int, precision: Precision = .f32) {
        precondition(m > 0 && n > 0 && k > 0)
        self.m = m
        self.n = n
        self.k = k
        let ctx = DNNL.context
        let (inputType, outputType) = precision == .f32 ? (dnnl_f32, dnnl_f32) : (dnnl_s8, dnnl_s32)
        var aMD = DNNL.matrix(rows: m, cols: k, rowStride: k, colStride: 1, type: inputType)
        var bMD = DNNL.matrix(rows: k, cols: n, rowStride: 1, colStride: k, type: inputType)
        var cMD = DNNL.matrix(rows: m, cols: n, rowStride: n, colStride: 1, type: outputType)
        let what = "a matmul for \(m)×\(k)·\(k)×\(n)"
        primitive = DNNL.primitive(of: DNNL.matmulDescriptor(src: aMD, weights: bMD, dst: cMD, what), what)
        // Memory objects with no buffer yet; the handles are set on each run.
        DNNL.check(dnnl_memory_create(&a, &aMD, ctx.engine, nil), "create memory")
        DNNL.check(dnnl_memory_create(&b, &bMD, ctx.engine, nil), "create memory")
        DNNL.check(dnnl_memory_create(&c, &cMD, ctx.engine, nil), "create memory")
    }

    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_memory_destroy(a)
        dnnl_memory_destroy(b)
        dnnl_memory_destroy(c)
    }

    package func run(a aPtr: UnsafePointer<Float>, b bPtr: UnsafePointer<Float>, c cPtr: UnsafeMutablePointer<Float>) {
        run(raw: UnsafeRawPointer(aPtr), UnsafeRawPointer(bPtr), UnsafeMutableRawPointer(cPtr))
    }

    package func run(a aPtr: UnsafePointer<Int8>, b bPtr: UnsafePointer<Int8>, c cPtr: UnsafeMutablePointer<Int32>) {
        run(raw: UnsafeRawPointer(aPtr), UnsafeRawPointer(bPtr), UnsafeMutableRawPointer(cPtr))
    }

    private func run(raw aPtr: UnsafeRawPointer, _ bPtr: UnsafeRawPointer, _ cPtr: UnsafeMutableRawPointer) {
        let ctx = DNNL.context
        dnnl_memory_set_data_handle(a, UnsafeMutableRawPointer(mutating: aPtr))
        dnnl_memory_set_data_handle(b, UnsafeMutableRawPointer(mutating: bPtr))
        dnnl_memory_set_data_handle(c, cPtr)
        var args = [
            dnnl_exec_arg_t(arg: 1 /* DNNL_ARG_SRC */, memory: a),
            dnnl_exec_arg_t(arg: 33 /* DNNL_ARG_WEIGHTS */, memory: b),
            dnnl_exec_arg_t(arg: 17 /* DNNL_ARG_DST */, memory: c),
        ]
        DNNL.check(dnnl_primitive_execute(primitive, ctx.stream, Int32(args.count), &args), "run a matmul")
        DNNL.check(dnnl_stream_wait(ctx.stream), "wait for a matmul")
    }
}
