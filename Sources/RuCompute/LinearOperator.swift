import RuCore
/// The arithmetic of an encoder's linear layers.
public enum Precision: String, Sendable, CaseIterable {
    /// f32 products with f32 accumulation (ru-embed's kernel on AVX2 CPUs, oneDNN's f32 matmul elsewhere).
    case f32
    /// int8 products (VNNI): weights per output channel, activations per row, int32 accumulation.
    case int8
}

/// A linear layer as the model code sees it: y = x·Wᵀ + b, then its epilogue.
package protocol LinearOperator: AnyObject {
    var inputSize: Int { get }
    var outputSize: Int { get }
    /// output[m × outputSize] (=, or += for `.accumulate`) input[m × inputSize]·Wᵀ + b, then the epilogue.
    func run(rows m: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>)
}

extension LinearLayer: LinearOperator {}
extension Int8LinearLayer: LinearOperator {}

/// Makes the linear layer of `precision` for row-major weights [outputSize × inputSize].
package func makeLinear(_ precision: Precision, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                       inputSize: Int, outputSize: Int, epilogue: LinearEpilogue) -> any LinearOperator {
    switch precision {
    case .f32:
        LinearLayer(weights: weights, bias: bias, inputSize: inputSize, outputSize: outputSize, epilogue: epilogue)
    case .int8:
        Int8LinearLayer(weights: weights, bias: bias, inputSize: inputSize, outputSize: outputSize, epilogue: epilogue)
    }
}

/// A feed-forward block: `between` ← first(input), then output (=, or += for `.accumulate`)
/// second(between). Two int8 layers over enough rows run fused, chunk by chunk, and leave
/// `between` untouched.
package func runFeedForward(_ first: any LinearOperator, _ second: any LinearOperator, rows m: Int,
                           input: UnsafePointer<Float>, between: UnsafeMutablePointer<Float>,
                           output: UnsafeMutablePointer<Float>) {
    if let a = first as? Int8LinearLayer, let b = second as? Int8LinearLayer, a.usesKernel, b.usesKernel,
       Int8LinearLayer.splitsRows(m) {
        Int8LinearLayer.runPair(a, b, rows: m, input: input, output: output)
        return
    }
    first.run(rows: m, input: input, output: between)
    second.run(rows: m, input: between, output: output)
}
