import Foundation
import Testing
@testable import RuCore
@testable import RuTokenizer
@testable import RuVectors
@testable import RuCompute
@testable import RuSearch
@testable import RuHub
@testable import RuEncoder
@testable import RuEmbed
@testable import RuCLI

/// The model fixtures of scripts/make-model-fixtures.py: random DeBERTa-v1 encoders with the
/// vectors sentence-transformers 6.2 / transformers 5.24 give for them.
enum ModelFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models")
    static let names = ["deberta-abs", "deberta-rel"]

    static func folder(_ name: String) -> String { directory.appendingPathComponent(name).path }

    struct Expected {
        var texts: [String]
        var prompts: [String: String]
        var vectors: [String: [[Float]]]   // "query", "passage", "none"
        var stateText: String
        var stateIDs: [UInt32]
        var states: [[Float]]
    }

    static func expected(_ name: String) throws -> Expected {
        let bytes = Array(try Data(contentsOf: directory.appendingPathComponent(name + "/expected.json")))
        let json = try bytes.withUnsafeBytes { try JSONValue.parse($0) }
        func floats(_ v: JSONValue) -> [[Float]] { v.arrayValue!.map { $0.arrayValue!.map { Float($0.numberValue!) } } }
        var vectors: [String: [[Float]]] = [:]
        for mode in ["query", "passage", "none"] { vectors[mode] = floats(json["vectors"]![mode]!) }
        var prompts: [String: String] = [:]
        if case .object(let pairs)? = json["prompts"] { for (k, v) in pairs { prompts[k] = v.stringValue! } }
        let states = json["token_states"]!
        return Expected(texts: json["texts"]!.arrayValue!.map { $0.stringValue! }, prompts: prompts, vectors: vectors,
                        stateText: states["text"]!.stringValue!,
                        stateIDs: states["ids"]!.arrayValue!.map { UInt32($0.numberValue!) },
                        states: floats(states["states"]!))
    }

    static let loaded: [String: SentenceTransformerModel] = {
        var out: [String: SentenceTransformerModel] = [:]
        for name in names { out[name] = try! SentenceTransformerModel(folder: folder(name)) }
        return out
    }()
}

func cosine(_ a: [Float], _ b: [Float]) -> Double {
    var ab = 0.0, aa = 0.0, bb = 0.0
    for (x, y) in zip(a, b) { ab += Double(x) * Double(y); aa += Double(x) * Double(x); bb += Double(y) * Double(y) }
    return ab / max((aa * bb).squareRoot(), 1e-30)
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

extension SentenceTransformerModel {
    /// Token ids of prompt + text, truncated as sentence-transformers does.
    func ids(_ text: String, prompt: String) -> [UInt32] {
        tokenizer.encode(prompt + text, maxLength: maxLength).ids
    }

    func vectors(_ lists: [[UInt32]], skip: Int, normalize: Bool = true) -> [[Float]] {
        var flat: [Float] = []
        embed(lists, skip: skip, normalize: normalize, into: &flat)
        return (0..<lists.count).map { Array(flat[$0 * dimension..<($0 + 1) * dimension]) }
    }
}

@Suite(.serialized) struct EmbedModelTests {
    @Test(arguments: ModelFixtures.names)
    func vectorsMatchSentenceTransformersForEveryPromptMode(_ name: String) throws {
        let model = ModelFixtures.loaded[name]!
        let expected = try ModelFixtures.expected(name)
        #expect(expected.texts.contains(""))
        #expect(expected.texts.contains { model.tokenizer.encode($0).count > 512 }, "a text over 512 tokens")
        for (mode, prompt) in [("query", expected.prompts["query"]!), ("passage", expected.prompts["passage"]!), ("none", "")] {
            let lists = expected.texts.map { model.ids($0, prompt: prompt) }
            #expect(lists.allSatisfy { $0.count <= 512 })
            let got = model.vectors(lists, skip: model.pooledPromptTokens(prompt))
            let want = expected.vectors[mode]!
            #expect(got.count == want.count)
            for (k, (g, w)) in zip(got, want).enumerated() {
                let c = cosine(g, w)
                #expect(c >= 0.99999, "\(name) \(mode) text \(k): cosine \(c)")
                #expect(maxAbsDifference(g, w) <= 1e-4, "\(name) \(mode) text \(k)")
            }
        }
    }

    @Test(arguments: ModelFixtures.names)
    func unnormalisedTokenStatesMatchTransformers(_ name: String) throws {
        let model = ModelFixtures.loaded[name]!
        let expected = try ModelFixtures.expected(name)
        let ids = model.ids(expected.stateText, prompt: "")
        #expect(ids == expected.stateIDs)
        let states = model.model.forward([ids])
        let h = model.model.config.hiddenSize
        var worst: Float = 0
        for (i, row) in expected.states.enumerated() {
            let got = Array(UnsafeBufferPointer(start: states + i * h, count: h))
            worst = max(worst, maxAbsDifference(got, row))
        }
        #expect(expected.states.count == ids.count)
        #expect(worst <= 1e-5, "\(name): max |Δ| \(worst)")
    }

    @Test(arguments: ModelFixtures.names)
    func aTextAloneEqualsTheSameTextInABatch(_ name: String) throws {
        let model = ModelFixtures.loaded[name]!
        let expected = try ModelFixtures.expected(name)
        let prompt = expected.prompts["query"]!
        let lists = expected.texts.map { model.ids($0, prompt: prompt) }
        let skip = model.pooledPromptTokens(prompt)
        let batch = model.vectors(lists, skip: skip, normalize: false)
        for (k, list) in lists.enumerated() {
            let alone = model.vectors([list], skip: skip, normalize: false)[0]
            #expect(maxAbsDifference(alone, batch[k]) <= 1e-6, "\(name) text \(k)")
        }
        // And in another order: a text's neighbours in the pack do not matter.
        let reversed = model.vectors(lists.reversed(), skip: skip, normalize: false)
        for k in lists.indices { #expect(maxAbsDifference(reversed[lists.count - 1 - k], batch[k]) <= 1e-6) }
    }

    @Test func bothMetadataStylesAreRead() throws {
        let abs = ModelFixtures.loaded["deberta-abs"]!.sentenceConfig
        #expect(abs.pooling == [.mean] && abs.includePrompt && abs.hasNormalizeModule)
        let rel = ModelFixtures.loaded["deberta-rel"]!.sentenceConfig
        #expect(rel.pooling == [.mean] && !rel.includePrompt && !rel.hasNormalizeModule)
        #expect(ModelFixtures.loaded["deberta-rel"]!.pooledPromptTokens("query: ") > 0)
        #expect(ModelFixtures.loaded["deberta-abs"]!.pooledPromptTokens("query: ") == 0)
        #expect(ModelFixtures.loaded["deberta-abs"]!.maxLength == 512)
        #expect(ModelFixtures.loaded["deberta-rel"]!.maxLength == 512) // from tokenizer.json's truncation (6.x)

        // 6.x pooling keys (a list, cls + max) and 2.x keys in one folder each.
        let dir = TestSupport.temporaryDirectory()
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("p"), withIntermediateDirectories: true)
        try #"[{"type": "sentence_transformers.base.modules.transformer.Transformer", "path": ""}, {"type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling", "path": "p"}]"#
            .write(to: dir.appendingPathComponent("modules.json"), atomically: true, encoding: .utf8)
        try #"{"embedding_dimension": 64, "pooling_mode": ["cls", "max"], "include_prompt": false}"#
            .write(to: dir.appendingPathComponent("p/config.json"), atomically: true, encoding: .utf8)
        var c = try SentenceModelConfig.load(folder: dir.path)
        #expect(c.pooling == [.cls, .max] && !c.includePrompt && c.poolingName == "cls+max")
        try #"{"word_embedding_dimension": 64, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": false, "pooling_mode_lasttoken": true}"#
            .write(to: dir.appendingPathComponent("p/config.json"), atomically: true, encoding: .utf8)
        c = try SentenceModelConfig.load(folder: dir.path)
        #expect(c.pooling == [.lastToken] && c.includePrompt)
        // A plain transformers folder: mean pooling.
        c = try SentenceModelConfig.load(folder: TestSupport.temporaryDirectory().path)
        #expect(c.pooling == [.mean] && c.source == "default")
    }

    @Test func theAbsoluteModelWithSixXMetadataGivesTheSameVectors() throws {
        // deberta-abs's weights and tokenizer with the metadata sentence-transformers 6.2 writes.
        let source = ModelFixtures.folder("deberta-abs")
        let dir = TestSupport.temporaryDirectory()
        for file in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent(file).path, withDestinationPath: source + "/" + file)
        }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
        try #"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"}, {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling"}, {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.sentence_transformer.modules.normalize.Normalize"}]"#
            .write(to: dir.appendingPathComponent("modules.json"), atomically: true, encoding: .utf8)
        try #"{"embedding_dimension": 64, "pooling_mode": "mean", "include_prompt": true}"#
            .write(to: dir.appendingPathComponent("1_Pooling/config.json"), atomically: true, encoding: .utf8)
        try #"{"prompts": {"query": "query: ", "passage": "passage: ", "document": ""}, "default_prompt_name": "query", "model_type": "SentenceTransformer"}"#
            .write(to: dir.appendingPathComponent("config_sentence_transformers.json"), atomically: true, encoding: .utf8)
        let model = try SentenceTransformerModel(folder: dir.path)
        let expected = try ModelFixtures.expected("deberta-abs")
        let got = model.vectors(expected.texts.map { model.ids($0, prompt: "passage: ") }, skip: 0)
        for (g, w) in zip(got, expected.vectors["passage"]!) { #expect(cosine(g, w) >= 0.99999) }
    }

    // MARK: safetensors

    /// A safetensors file with the given tensors (name, dtype, shape, raw bytes).
    static func safetensors(_ tensors: [(String, String, [Int], [UInt8])]) -> Data {
        var header = "{"
        var data: [UInt8] = []
        for (k, t) in tensors.enumerated() {
            if k > 0 { header += "," }
            header += "\"\(t.0)\":{\"dtype\":\"\(t.1)\",\"shape\":\(t.2),\"data_offsets\":[\(data.count),\(data.count + t.3.count)]}"
            data += t.3
        }
        header += "}"
        while (8 + header.utf8.count) % 8 != 0 { header += " " }
        var out = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(header.utf8))
        out.append(contentsOf: data)
        return out
    }

    @Test func f16AndBF16TensorsAreConvertedToF32() throws {
        let dir = TestSupport.temporaryDirectory()
        let values: [Float] = [1, -2.5, 0.333251953125, 65504, 0]
        let f16 = values.flatMap { v -> [UInt8] in let b = Float16(v).bitPattern; return [UInt8(b & 0xFF), UInt8(b >> 8)] }
        let bf16Values: [Float] = [1, -2.5, 0.33203125, Float(sign: .plus, exponent: 100, significand: 1), -0.0]
        let bf16 = bf16Values.flatMap { v -> [UInt8] in let b = UInt16(v.bitPattern >> 16); return [UInt8(b & 0xFF), UInt8(b >> 8)] }
        let f32 = values.flatMap { v -> [UInt8] in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        try EmbedModelTests.safetensors([("a", "F16", [5], f16), ("b", "BF16", [5], bf16), ("c", "F32", [5], f32)])
            .write(to: dir.appendingPathComponent("model.safetensors"))
        let archive = try SafetensorsArchive(folder: dir.path)
        #expect(try archive.floats("a", shape: [5]).array == values)
        #expect(try archive.floats("b", shape: [5]).array == bf16Values)
        #expect(try archive.floats("c", shape: [5]).array == values)
        #expect(throws: RuEmbedError.self) { try archive.floats("c", shape: [1, 5]) }
        do { _ = try archive.floats("c", shape: [5, 1]); Issue.record("no error") } catch let e as RuEmbedError {
            #expect(e.message.contains("\"c\"") && e.message.contains("[5]") && e.message.contains("[5, 1]"))
        }
        do { _ = try archive.tensor("missing"); Issue.record("no error") } catch let e as RuEmbedError {
            #expect(e.message.contains("\"missing\"") && e.message.contains("model.safetensors"))
        }
    }

    @Test func unsupportedThingsAreNamed() throws {
        // An integer tensor.
        var dir = TestSupport.temporaryDirectory()
        try EmbedModelTests.safetensors([("ids", "I64", [1], [UInt8](repeating: 0, count: 8))])
            .write(to: dir.appendingPathComponent("model.safetensors"))
        do { _ = try SafetensorsArchive(folder: dir.path); Issue.record("no error") } catch let e as RuEmbedError {
            #expect(e.message.contains("\"ids\"") && e.message.contains("I64"))
        }
        // Another architecture.
        dir = TestSupport.temporaryDirectory()
        try #"{"model_type": "deberta-v2", "architectures": ["DebertaV2Model"], "hidden_size": 64}"#
            .write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        do { _ = try DebertaModel(folder: dir.path); Issue.record("no error") } catch let e as RuEmbedError {
            #expect(e.message.contains("deberta-v2") && e.message.contains("DebertaV2Model"))
        }
        // No weights at all.
        let config = try Data(contentsOf: URL(fileURLWithPath: ModelFixtures.folder("deberta-abs") + "/config.json"))
        try config.write(to: dir.appendingPathComponent("config.json"))
        do { _ = try DebertaModel(folder: dir.path); Issue.record("no error") } catch let e as RuEmbedError {
            #expect(e.message.contains("model.safetensors"))
        }
        // Weights with a tensor missing.
        try EmbedModelTests.safetensors([("embeddings.word_embeddings.weight", "F32", [1], [0, 0, 0, 0])])
            .write(to: dir.appendingPathComponent("model.safetensors"))
        do { _ = try DebertaModel(folder: dir.path); Issue.record("no error") } catch let e as RuEmbedError {
            #expect(e.message.contains("embeddings.word_embeddings.weight") && e.message.contains("shape"))
        }
    }

    @Test func poolingModes() {
        // Two texts of 3 and 2 tokens, dim 2; the first token of each is a prompt token.
        let states: [Float] = [1, 2, 3, -4, 5, 6, 7, 8, -9, 10]
        let texts = [(start: 0, count: 3), (start: 3, count: 2)]
        func pool(_ modes: [PoolingMode], skip: Int) -> [Float] {
            var out = [Float](repeating: 0, count: texts.count * 2 * modes.count)
            out.withUnsafeMutableBufferPointer { o in
                states.withUnsafeBufferPointer { EncoderKernels.pool(states: $0.baseAddress!, dim: 2, texts: texts, modes: modes, skip: skip, into: o.baseAddress!) }
            }
            return out
        }
        #expect(pool([.mean], skip: 0) == [3, 4 / 3, -1, 9])
        #expect(pool([.mean], skip: 1) == [4, 1, -9, 10])
        #expect(pool([.cls, .max], skip: 0) == [1, 2, 5, 6, 7, 8, 7, 10])
        #expect(pool([.cls], skip: 1) == [3, -4, -9, 10])
        #expect(pool([.lastToken], skip: 0) == [5, 6, -9, 10])
    }
}
