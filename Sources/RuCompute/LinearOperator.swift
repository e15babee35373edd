import RuCore
/// The arithmetic of an encoder's linear layers.
public enum Precision: String, Sendable, CaseIterable {
    /// f32 products with f32 accumulation (ru-embed's kernel on AVX2 CPUs and Intel's AVX-512 ones, oneDNN's f32 matmul elsewhere).
    case f32
    /// int8 products (VNNI): weights per output channel, activations per row, int32 accumulation.
    case int8
    /// bfloat16 products (AVX512_BF16's vdpbf16ps) with f32 accumulation; LayerNorm, softmax,
    /// attention and pooling in f32. CPUs without AVX512_BF16 run f32 instead (`effective`).
    case bf16

    /// Whether this CPU runs the precision's kernels: bf16 needs AVX512_BF16; f32 and int8 run
    /// everywhere (int8 through oneDNN where there is no AVX-512 VNNI).
    public var isSupported: Bool { self != .bf16 || BF16LinearLayer.available }

    /// What runs here when this precision is asked for: itself, or f32 for bf16 on a CPU
    /// without AVX512_BF16 (`SentenceEncoder` records the precision that ran; the tools say
    /// when it differs from the one asked for).
    public var effective: Precision { isSupported ? self : .f32 }
}

/// A linear layer as the model code sees it: y = x·Wᵀ + b, then its epilogue.
package protocol LinearOperator: AnyObject {
    var inputSize: Int { get }
    var outputSize: Int { get }
    /// output[m × outputSize] (=, or += for `.accumulate`) input[m × inputSize]·Wᵀ + b, then the epilogue.
    func run(rows m: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>)
}

extension LinearLayer: LinearOperator {}
extension Int8LinearLayer: ChunkedLinear {}
extension BF16LinearLayer: ChunkedLinear {}

/// Makes the linear layer of `precision` for row-major weights [outputSize × inputSize]
/// (`precision.isSupported` must hold: pass `precision.effective`).
package func makeLinear(_ precision: Precision, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                       inputSize: Int, outputSize: Int, epilogue: LinearEpilogue) -> any LinearOperator {
    switch precision {
    case .f32:
        LinearLayer(weights: weights, bias: bias, inputSize: inputSize, outputSize: outputSize, epilogue: epilogue)
    case .int8:
        Int8LinearLayer(weights: weights, bias: bias, inputSize: inputSize, outputSize: outputSize, epilogue: epilogue)
    case .bf16:
        BF16LinearLayer(weights: weights, bias: bias, inputSize: inputSize, outputSize: outputSize, epilogue: epilogue)
    }
}

/// A feed-forward block: `between` ← first(input), then output (=, or += for `.accumulate`)
/// second(between). Two int8 or bf16 layers over enough rows run fused, chunk by chunk
/// (`ChunkWorkspace.runChunks`), and leave `between` untouched.
package func runFeedForward(_ first: any LinearOperator, _ second: any LinearOperator, rows m: Int,
                           input: UnsafePointer<Float>, between: UnsafeMutablePointer<Float>,
                           output: UnsafeMutablePointer<Float>) {
    if let a = first as? any ChunkedLinear, let b = second as? any ChunkedLinear, a.runsChunks, b.runsChunks,
       ChunkWorkspace.splitsRows(m) {
        ChunkWorkspace.lock.withLock { _ in ChunkWorkspace.runChunks([a, b], rows: m, input: input, output: output) }
        return
    }
    first.run(rows: m, input: input, output: between)
    second.run(rows: m, input: between, output: output)
}
