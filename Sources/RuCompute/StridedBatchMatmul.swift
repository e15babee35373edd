import RuCore
import CDNNL

/// C[b] = A[b] · B[b] for a batch of small matrices read and written through arbitrary
/// strides (in elements): the attention products of all heads of one text straight out of
/// the packed [tokens × (Q|K|V)] matrix, with no copies. oneDNN's JIT kernels use the CPU's
/// full vector width, which Swift code built for baseline x86-64 cannot.
///
/// One primitive per shape and strides; `shared` keeps them (attention needs two per text length).
package final class StridedBatchMatmul: @unchecked Sendable { // its memory objects are used under `lock` only
    package struct Shape: Hashable {
        package var batch: Int, m: Int, k: Int, n: Int
        /// (batch, row, column) strides of A [m × k], B [k × n] and C [m × n].
        package var a: [Int], b: [Int], c: [Int]
        package init(batch: Int, m: Int, k: Int, n: Int, a: [Int], b: [Int], c: [Int]) {
            self.batch = batch; self.m = m; self.k = k; self.n = n; self.a = a; self.b = b; self.c = c
        }
    }

    private let primitive: dnnl_primitive_t
    private var aMemory: dnnl_memory_t?, bMemory: dnnl_memory_t?, cMemory: dnnl_memory_t?

    /// Keyed by shape and thread count: oneDNN plans a primitive's split for the threads of
    /// its creation, and the count changes when other processes start or end (`Parallel.rebalance`).
    private struct Key: Hashable { let shape: Shape, threads: Int }
    nonisolated(unsafe) private static var cache: [Key: StridedBatchMatmul] = [:]
    /// Guards the cache and the shared matmuls' memory objects: two models attending at once
    /// (threads of a library user, test suites in parallel) would otherwise insert into the
    /// dictionary together or swap each other's buffers between setting them and running.
    private static let lock = Lock(())

    /// The matmul for `shape`, created on first use.
    package static func shared(_ shape: Shape) -> StridedBatchMatmul {
        lock.withLock { _ in
            let key = Key(shape: shape, threads: Parallel.threads)
            if let p = cache[key] { return p }
            let p = StridedBatchMatmul(shape)
            cache[key] = p
            return p
        }
    }

    private init(_ s: Shape) {
        let ctx = DNNL.context
        var aMD = StridedBatchMatmul.describe([s.batch, s.m, s.k], s.a)
        var bMD = StridedBatchMatmul.describe([s.batch, s.k, s.n], s.b)
        var cMD = StridedBatchMatmul.describe([s.batch, s.m, s.n], s.c)
        let what = "a batched matmul \(s)"
        primitive = DNNL.primitive(of: DNNL.matmulDescriptor(src: aMD, weights: bMD, dst: cMD, what), what)
        DNNL.check(dnnl_memory_create(&aMemory, &aMD, ctx.engine, nil), "create memory")
        DNNL.check(dnnl_memory_create(&bMemory, &bMD, ctx.engine, nil), "create memory")
        DNNL.check(dnnl_memory_create(&cMemory, &cMD, ctx.engine, nil), "create memory")
    }

    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_memory_destroy(aMemory); dnnl_memory_destroy(bMemory); dnnl_memory_destroy(cMemory)
    }

    package func run(a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        StridedBatchMatmul.lock.withLock { _ in execute(a: a, b: b, c: c) }
    }

    private func execute(a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        let ctx = DNNL.context
        dnnl_memory_set_data_handle(aMemory, UnsafeMutableRawPointer(mutating: a))
        dnnl_memory_set_data_handle(bMemory, UnsafeMutableRawPointer(mutating: b))
        dnnl_memory_set_data_handle(cMemory, UnsafeMutableRawPointer(c))
        var args = [
            dnnl_exec_arg_t(arg: 1 /* DNNL_ARG_SRC */, memory: aMemory),
            dnnl_exec_arg_t(arg: 33 /* DNNL_ARG_WEIGHTS */, memory: bMemory),
            dnnl_exec_arg_t(arg: 17 /* DNNL_ARG_DST */, memory: cMemory),
        ]
        DNNL.check(dnnl_primitive_execute(primitive, ctx.stream, Int32(args.count), &args), "run a batched matmul")
        DNNL.check(dnnl_stream_wait(ctx.stream), "wait for a batched matmul")
    }

    private static func describe(_ dims: [Int], _ strides: [Int]) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        var d: dnnl_dims_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var s: dnnl_dims_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        d.0 = Int64(dims[0]); d.1 = Int64(dims[1]); d.2 = Int64(dims[2])
        s.0 = Int64(strides[0]); s.1 = Int64(strides[1]); s.2 = Int64(strides[2])
        withUnsafePointer(to: &d) { dp in
            withUnsafePointer(to: &s) { sp in
                dp.withMemoryRebound(to: Int64.self, capacity: 12) { dp in
                    sp.withMemoryRebound(to: Int64.self, capacity: 12) { sp in
                        DNNL.check(dnnl_memory_desc_init_by_strides(&md, 3, dp, dnnl_f32, sp), "describe a \(dims) batch")
                    }
                }
            }
        }
        return md
    }
}
