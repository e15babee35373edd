import RuCompute
import RuCore
#if canImport(Glibc)
import Glibc
#endif

/// sentence-transformers' `Dense` module: y = activation(x·Wᵀ + b) on each pooled vector
/// (LaBSE's 768→768 Tanh head, dimension-reducing heads). The module folder holds
/// config.json (in_features, out_features, bias, activation_function) and the weights as
/// `linear.weight` / `linear.bias`, in model.safetensors (sentence-transformers ≥ 2.3, 6.x)
/// or, as 2.x saved them (e.g. cointegrated/LaBSE-en-ru), in pytorch_model.bin, which is
/// read by `TorchCheckpoint`'s restricted unpickler, never by running the pickle.
///
/// Always f32, whatever `--precision`: one small product per text, next to the encoder's
/// hundreds; quantising it would only add error.
package final class DenseModule {
    package enum Activation: String {
        case identity = "Identity", tanh = "Tanh", relu = "ReLU", sigmoid = "Sigmoid", gelu = "GELU"
    }
    package let inputSize: Int
    package let outputSize: Int
    package let activation: Activation
    private let layer: LinearLayer

    /// Reads the module in `folder`; `inputSize` is the width of the vectors it will get
    /// (pooling's output, or the previous Dense's), which its config must name.
    package init(folder: String, inputSize expected: Int) throws {
        let configPath = folder + "/config.json"
        guard access(configPath, R_OK) == 0 else { throw RuEmbedError("\(folder): the Dense module has no config.json") }
        let v = try ConfigValues.read(configPath)
        inputSize = try v.int("in_features", 1...(1 << 16))
        outputSize = try v.int("out_features", 1...(1 << 16))
        guard inputSize == expected else {
            throw v.error("in_features", "\(inputSize), but the module before it gives vectors of \(expected)")
        }
        let hasBias = try v.bool("bias", default: true)
        // 6.x: a Dense may read and write other features than the sentence embedding, or add
        // a residual; neither is what this pipeline computes.
        for key in ["module_input_name", "module_output_name"] {
            if let name = try v.string(key), name != "sentence_embedding" {
                throw v.error(key, "\"\(name)\" is not supported (sentence_embedding is)")
            }
        }
        if try v.bool("use_residual", default: false) { throw v.error("use_residual", "true is not supported") }
        // "torch.nn.modules.activation.Tanh" (2.x and 6.x), "torch.nn.modules.linear.Identity".
        let name = try v.string("activation_function") ?? "torch.nn.modules.activation.Tanh"
        let known = ["torch.nn.modules.linear.", "torch.nn.modules.activation.", "torch.nn."]
        guard let prefix = known.first(where: { name.hasPrefix($0) }),
              let activation = Activation(rawValue: String(name.dropFirst(prefix.count))) else {
            throw v.error("activation_function", "\"\(name)\" is not supported (torch.nn Identity, Tanh, ReLU, Sigmoid, GELU are)")
        }
        self.activation = activation

        // model.safetensors when present (sentence-transformers ≥ 2.3, 6.x); else the
        // pytorch_model.bin of 2.x's Dense.save, through the restricted reader, which runs
        // nothing from the file (TorchCheckpoint).
        let w: [Float], b: [Float]?
        if access(folder + "/model.safetensors", R_OK) == 0 {
            let archive = try SafetensorsArchive(folder: folder)
            w = try archive.floats("linear.weight", shape: [outputSize, inputSize]).array
            b = hasBias ? try archive.floats("linear.bias", shape: [outputSize]).array : nil
        } else if access(folder + "/pytorch_model.bin", R_OK) == 0 {
            let checkpoint = try TorchCheckpoint(path: folder + "/pytorch_model.bin")
            w = try checkpoint.floats("linear.weight", shape: [outputSize, inputSize])
            b = hasBias ? try checkpoint.floats("linear.bias", shape: [outputSize]) : nil
        } else {
            throw RuEmbedError("\(folder): the Dense module has no model.safetensors or pytorch_model.bin")
        }
        // LinearLayer copies both into its own layout; the arrays need only outlive the call.
        let (n, m) = (inputSize, outputSize)
        layer = w.withUnsafeBufferPointer { wp in
            (b ?? []).withUnsafeBufferPointer { bp in
                LinearLayer(weights: wp.baseAddress!, bias: b == nil ? nil : bp.baseAddress, inputSize: n, outputSize: m, epilogue: .none)
            }
        }
    }

    /// output[rows × outputSize] = activation(input·Wᵀ + b).
    package func run(rows: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        guard rows > 0 else { return }
        layer.run(rows: rows, input: input, output: output)
        let n = rows * outputSize
        switch activation {
        case .identity: break
        case .tanh: for k in 0..<n { output[k] = tanhf(output[k]) }
        case .relu: for k in 0..<n where output[k] < 0 { output[k] = 0 }
        case .sigmoid: for k in 0..<n { output[k] = 1 / (1 + expf(-output[k])) }
        case .gelu: for k in 0..<n { let x = output[k]; output[k] = 0.5 * x * (1 + erff(x / Float(2).squareRoot())) }
        }
    }
}
