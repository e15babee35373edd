import Foundation
import Testing
@testable import RuCore
@testable import RuTokenizer
@testable import RuVectors
@testable import RuCompute
@testable import RuEncoder

/// The BERT-family fixtures of scripts/make-family-fixtures.py: random BERT, XLM-RoBERTa and
/// RoBERTa encoders in sentence-transformers folders (2.x and 6.x metadata, Dense heads,
/// every pooling mode, do_lower_case, max_seq_length, task-head checkpoints), with the vectors
/// sentence-transformers 6.2 / transformers 5.24 give for them.
enum FamilyFixtures {
    static let names = ["bert-labse", "bert-e5", "xlmr-pool", "roberta-mean"]

    struct Expected {
        var texts: [String]
        var prompts: [String: String]
        var vectors: [String: [[Float]]]   // normalize_embeddings=True; "query", "passage", "none"
        var raw: [String: [[Float]]]       // normalize_embeddings=False
        var ids: [[UInt32]]                // what sentence-transformers fed the model, no prompt
    }

    static func expected(_ name: String) throws -> Expected {
        let url = ModelFixtures.directory.appendingPathComponent(name + "/expected.json")
        let bytes = Array(try Data(contentsOf: url))
        let json = try bytes.withUnsafeBytes { try JSONValue.parse($0) }
        func floats(_ v: JSONValue) -> [[Float]] { v.arrayValue!.map { $0.arrayValue!.map { Float($0.numberValue!) } } }
        var vectors: [String: [[Float]]] = [:], raw: [String: [[Float]]] = [:]
        for mode in ["query", "passage", "none"] {
            vectors[mode] = floats(json["vectors"]![mode]!)
            raw[mode] = floats(json["raw"]![mode]!)
        }
        var prompts: [String: String] = [:]
        if case .object(let pairs)? = json["prompts"] { for (k, v) in pairs { prompts[k] = v.stringValue! } }
        return Expected(texts: json["texts"]!.arrayValue!.map { $0.stringValue! }, prompts: prompts,
                        vectors: vectors, raw: raw,
                        ids: json["ids"]!.arrayValue!.map { $0.arrayValue!.map { UInt32($0.numberValue!) } })
    }

    static let prompts: [(mode: String, prompt: Prompt)] = [("query", .named("query")), ("passage", .named("passage")), ("none", .noPrompt)]

    /// A copy of a fixture folder to break.
    static func copy(_ name: String) throws -> URL {
        let dir = TestSupport.temporaryDirectory().appendingPathComponent(name)
        try FileManager.default.copyItem(at: ModelFixtures.directory.appendingPathComponent(name), to: dir)
        return dir
    }
}

@Suite(.serialized) struct EncoderFamilyTests {
    /// Text in, vector out through the public API (prompt, do_lower_case, truncation, pooling,
    /// Dense, normalisation), against sentence-transformers' encode.
    @Test(arguments: FamilyFixtures.names)
    func vectorsMatchSentenceTransformers(_ name: String) throws {
        let expected = try FamilyFixtures.expected(name)
        for normalize in [true, false] {
            let encoder = try SentenceEncoder(model: ModelFixtures.folder(name), options: EncoderOptions(normalize: normalize, batchSize: 3))
            for (mode, prompt) in FamilyFixtures.prompts {
                let got = try encoder.embed(expected.texts, prompt: prompt)
                let want = (normalize ? expected.vectors : expected.raw)[mode]!
                // sentence-transformers runs a folder's Normalize module even with
                // normalize_embeddings=False; ru-embed's `normalize: false` skips it (as for
                // DeBERTa), so there the directions are compared, not the lengths.
                let sameLength = normalize || !encoder.model.sentenceConfig.hasNormalizeModule
                #expect(got.count == want.count)
                for (k, (g, w)) in zip(got, want).enumerated() {
                    #expect(g.count == w.count)
                    let c = cosine(g, w)
                    let scale = max(1, w.map(abs).max()!)
                    #expect(c >= 0.99999, "\(name) \(mode) normalize \(normalize) text \(k): cosine \(c)")
                    if sameLength {
                        #expect(maxAbsDifference(g, w) <= 1e-4 * scale, "\(name) \(mode) normalize \(normalize) text \(k)")
                    }
                }
            }
        }
    }

    /// The ids the model gets: do_lower_case applied, cut to max_seq_length (below the
    /// tokenizer's own truncation for bert-labse) or to RoBERTa's positions.
    @Test(arguments: FamilyFixtures.names)
    func tokenIDsMatchSentenceTransformers(_ name: String) throws {
        let model = try SentenceTransformerModel(folder: ModelFixtures.folder(name))
        let expected = try FamilyFixtures.expected(name)
        for (text, want) in zip(expected.texts, expected.ids) {
            let got = model.tokenizer.encode(model.prepared(text), maxLength: model.maxLength).ids
            #expect(got == want, "\(name): \(text.prefix(40))")
        }
        #expect(expected.ids.contains { $0.count == model.maxLength }, "\(name): a text is cut to the maximum length")
    }

    @Test func whatTheFoldersSay() throws {
        let labse = try SentenceTransformerModel(folder: ModelFixtures.folder("bert-labse"))
        #expect(labse.sentenceConfig.doLowerCase && labse.sentenceConfig.pooling == [.cls])
        #expect(labse.dense.count == 1 && labse.dense[0].activation == .tanh)
        #expect(labse.dimension == 32 && labse.pooledDimension == 48)
        #expect(labse.maxLength == 40, "max_seq_length 40 wins over tokenizer.json's truncation 64")
        #expect(labse.model is BertModel)
        // do_lower_case reaches the prompt too.
        #expect(labse.prepared("Ёлка QUERY: Москва") == "ёлка query: москва")

        let xlmr = try SentenceTransformerModel(folder: ModelFixtures.folder("xlmr-pool"))
        #expect(xlmr.sentenceConfig.pooling == [.max, .meanSqrtLen, .weightedMean, .lastToken])
        #expect(!xlmr.sentenceConfig.includePrompt && !xlmr.sentenceConfig.doLowerCase)
        #expect(xlmr.dense.count == 1 && xlmr.dense[0].activation == .identity && xlmr.dimension == 24)
        let config = try #require((xlmr.model as? BertModel)?.config)
        #expect(config.modelType == "xlm-roberta" && config.positionLimit == 64)
        #expect(xlmr.maxLength == 64)

        let roberta = try #require(try SentenceTransformerModel(folder: ModelFixtures.folder("roberta-mean")).model as? BertModel)
        #expect(roberta.config.modelType == "roberta")
        let e5 = try SentenceTransformerModel(folder: ModelFixtures.folder("bert-e5"))
        #expect(e5.sentenceConfig.hasNormalizeModule && e5.dense.isEmpty && e5.maxLength == 64)
    }

    /// RoBERTa's positions count non-pad tokens only: the fixtures' "<pad>" text reaches the
    /// model with the pad id inside it (its vector is held to sentence-transformers' in
    /// `vectorsMatchSentenceTransformers`), and 64 tokens fit the 66 positions that start
    /// after pad_token_id 1, while 65 do not.
    @Test func robertaPositionsSkipPadTokens() throws {
        for name in ["xlmr-pool", "roberta-mean"] {
            let expected = try FamilyFixtures.expected(name)
            #expect(expected.ids.contains { $0.dropFirst().dropLast().contains(1) }, "\(name): a pad token inside a text")
        }
        let model = try SentenceTransformerModel(folder: ModelFixtures.folder("roberta-mean"))
        #expect(model.problem(with: [UInt32](repeating: 5, count: 64)) == nil)
        #expect(model.problem(with: [UInt32](repeating: 5, count: 65))?.contains("64 positions") == true)
    }

    @Test(arguments: FamilyFixtures.names)
    func int8VectorsStayCloseToF32(_ name: String) throws {
        PrecisionChecks.expectClose(try PrecisionChecks.familyCosines(name, .int8), "\(name) int8",
                                    mean: 0.99, min: 0.98, below: 0.999999)
    }

    /// bf16 on every family (CPUs with AVX512_BF16): the quality targets of docs/EMBED.md.
    @Test(.enabled(if: BF16LinearLayer.available), arguments: FamilyFixtures.names)
    func bf16VectorsStayCloseToF32(_ name: String) throws {
        PrecisionChecks.expectClose(try PrecisionChecks.familyCosines(name, .bf16), "\(name) bf16",
                                    mean: 0.9999, min: 0.9995, below: 0.9999999)
    }

    @Test func weightedMeanKeepsPositionsPastThePrompt() {
        // Two texts of 3 and 2 tokens, dim 1.
        let states: [Float] = [1, 2, 4, 10, 20]
        let texts = [(start: 0, count: 3), (start: 3, count: 2)]
        func pool(skip: Int) -> [Float] {
            var out = [Float](repeating: 0, count: 2)
            out.withUnsafeMutableBufferPointer { o in
                states.withUnsafeBufferPointer { EncoderKernels.pool(states: $0.baseAddress!, dim: 1, texts: texts, modes: [.weightedMean], skip: skip, into: o.baseAddress!) }
            }
            return out
        }
        let all: [Float] = [Float(17) / 6, Float(50) / 3]   // Σ (i+1)·x_i / Σ (i+1)
        let pastPrompt: [Float] = [Float(16) / 5, 20]       // weights 2, 3 and 2: positions kept
        #expect(pool(skip: 0) == all)
        #expect(pool(skip: 1) == pastPrompt)
    }

    /// Broken folders: one RuEmbedError naming the file, never a trap or a huge allocation.
    @Test func hostileFoldersAreRefusedNamingTheFile() throws {
        func refused(_ name: String, _ expect: [String], _ breakIt: (URL) throws -> Void) throws {
            let dir = try FamilyFixtures.copy(name)
            try breakIt(dir)
            do {
                _ = try SentenceTransformerModel(folder: dir.path)
                Issue.record("\(name): no error")
            } catch let e as RuEmbedError {
                for part in expect { #expect(e.message.contains(part), "\(e.message) lacks \(part)") }
            }
        }
        func config(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
            let url = dir.appendingPathComponent("config.json")
            var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
            edit(&json)
            try JSONSerialization.data(withJSONObject: json).write(to: url)
        }
        try refused("bert-e5", ["config.json", "num_hidden_layers"]) { try config($0) { $0["num_hidden_layers"] = 1_000_000_000 } }
        try refused("bert-e5", ["config.json", "hidden_size"]) { try config($0) { $0["hidden_size"] = 0 } }
        try refused("xlmr-pool", ["config.json", "not a multiple of num_attention_heads"]) { try config($0) { $0["num_attention_heads"] = 5 } }
        try refused("bert-e5", ["config.json", "hidden_act", "swish"]) { try config($0) { $0["hidden_act"] = "swish" } }
        try refused("bert-e5", ["config.json", "relative_key"]) { try config($0) { $0["position_embedding_type"] = "relative_key" } }
        try refused("bert-e5", ["config.json", "gpt2", "not supported"]) { try config($0) { $0["model_type"] = "gpt2" } }
        try refused("xlmr-pool", ["config.json", "pad_token_id"]) { try config($0) { $0["pad_token_id"] = 70 } }
        // A config that the weights do not back: a shape mismatch, a missing layer.
        try refused("bert-e5", ["model.safetensors", "shape", "word_embeddings"]) { try config($0) { $0["hidden_size"] = 64 } }
        try refused("bert-labse", ["model.safetensors", "encoder.layer.2"]) { try config($0) { $0["num_hidden_layers"] = 3 } }
        try refused("bert-e5", ["model.safetensors", "shape"]) { try config($0) { $0["intermediate_size"] = 65 } }
        // pytorch_model.bin only: named, with what to do.
        try refused("bert-e5", ["pytorch_model.bin", "convert it to safetensors"]) { dir in
            try FileManager.default.moveItem(at: dir.appendingPathComponent("model.safetensors"), to: dir.appendingPathComponent("pytorch_model.bin"))
        }
        // Dense modules: a pytorch_model.bin that is not torch.save's zip (here the safetensors
        // bytes under that name), widths that do not chain, an unknown activation.
        try refused("bert-labse", ["2_Dense", "pytorch_model.bin"]) { dir in
            let d = dir.appendingPathComponent("2_Dense")
            try FileManager.default.moveItem(at: d.appendingPathComponent("model.safetensors"), to: d.appendingPathComponent("pytorch_model.bin"))
        }
        try refused("bert-labse", ["2_Dense/config.json", "in_features"]) { dir in
            try #"{"in_features": 32, "out_features": 32, "bias": true, "activation_function": "torch.nn.modules.activation.Tanh"}"#
                .write(to: dir.appendingPathComponent("2_Dense/config.json"), atomically: true, encoding: .utf8)
        }
        try refused("xlmr-pool", ["2_Dense/config.json", "activation_function", "os.system"]) { dir in
            try #"{"in_features": 128, "out_features": 24, "activation_function": "os.system"}"#
                .write(to: dir.appendingPathComponent("2_Dense/config.json"), atomically: true, encoding: .utf8)
        }
        try refused("xlmr-pool", ["2_Dense/model.safetensors", "linear.weight", "shape"]) { dir in
            try #"{"in_features": 128, "out_features": 25, "activation_function": "torch.nn.modules.linear.Identity"}"#
                .write(to: dir.appendingPathComponent("2_Dense/config.json"), atomically: true, encoding: .utf8)
        }
    }

    /// From the command line, f32 and int8: the same vectors, the stream's metadata saying
    /// the pooling and the maximum length.
    @Test(arguments: FamilyFixtures.names)
    func ruEmbedGivesTheSentenceTransformersVectors(_ name: String) throws {
        let expected = try FamilyFixtures.expected(name)
        for (mode, flags) in [("none", ["--no-prompt"]), ("passage", ["--prompt", "passage"])] {
            for precision in ["f32", "int8"] {
                let r = try EmbedCLITests.embed(["--model", ModelFixtures.folder(name), "--batch-size", "3", "--precision", precision] + flags,
                                                stdin: EmbedCLITests.lines(expected.texts))
                #expect(r.status == 0, "\(r.stderr)")
                let (ids, rows, chunks) = try EmbedCLITests.vectors(r.stdout)
                #expect(ids.count == expected.texts.count)
                let bound = precision == "f32" ? 0.99999 : 0.98
                for (k, (g, w)) in zip(rows, expected.vectors[mode]!).enumerated() {
                    #expect(cosine(g, w) >= bound, "\(name) \(mode) \(precision) line \(k + 1)")
                }
                #expect(chunks[0].metadata["precision"]?.stringValue == precision)
                #expect(chunks[0].metadata["max_length"]?.numberValue == Double(expected.ids.map(\.count).max()!))
            }
        }
    }

    /// do_lower_case with invalid UTF-8: refused naming the line, or with --lossy replaced by
    /// U+FFFD (counted) and then lowercased like the rest.
    @Test func lowercasingKeepsTheUTF8Rules() throws {
        let folder = ModelFixtures.folder("bert-labse")
        let bad = Data([0xD0, 0x9C, 0x41, 0xFF, 0x0A]) // Cyrillic М, Latin A, a stray byte
        var r = try EmbedCLITests.embed(["--model", folder, "--no-prompt"], stdin: bad)
        #expect(r.status == 2 && r.stderr.contains("line 1") && r.stderr.contains("UTF-8"), "\(r.stderr)")
        r = try EmbedCLITests.embed(["--model", folder, "--no-prompt", "--lossy"], stdin: bad)
        #expect(r.status == 0, "\(r.stderr)")
        let got = try EmbedCLITests.vectors(r.stdout).rows
        let want = try SentenceEncoder(model: folder).embed(["\u{43C}a\u{FFFD}"], prompt: .noPrompt) // м, Latin a
        #expect(got.count == 1 && got[0] == want[0])
    }

    /// do_lower_case lowercases as Python's str.lower() does (the pairs are what CPython 3
    /// printed): full mappings (İ → i̇) and the Final_Sigma rule Swift's lowercased() lacks,
    /// with case-ignorable scalars (. and combining accents) skipped on both sides.
    @Test func lowercasingIsPythons() {
        let pairs = [
            ("ΟΔΟΣ ΟΔΟΣ. ΣΑ Σ", "οδος οδος. σα σ"),
            ("ὈΔΥΣΣΕΎΣ", "ὀδυσσεύς"),
            ("Α.Σ.", "α.ς."),
            ("ΑΣ\u{301} Β", "ας\u{301} β"),
            ("İSTANBUL Ёлка ǅ", "i\u{307}stanbul ёлка ǆ"),
        ]
        for (text, python) in pairs { #expect(InputLowercasing.lower(text) == python, "\(text)") }
    }

    /// ru-tok on a do_lower_case model gives the ids sentence-transformers fed the model, as
    /// ru-embed does (it used to tokenize the text as written).
    @Test func ruTokLowercasesLikeSentenceTransformers() throws {
        let folder = ModelFixtures.folder("bert-labse")
        let expected = try FamilyFixtures.expected("bert-labse")
        let input = Data(expected.texts.map { $0 + "\n" }.joined().utf8)
        let r = try TestSupport.run("ru-tok", ["--model", folder, "--no-prompt", "--format", "ids"], stdin: input)
        #expect(r.status == 0, "\(r.stderr)")
        let got = r.lines.map { $0.split(separator: " ").map { UInt32($0)! } }
        #expect(got == expected.ids)
        #expect(expected.texts.contains { $0.lowercased() != $0 }, "the fixture has capitals to lowercase")
    }

    /// transformers' integer buffers in older checkpoints are skipped; other integer tensors
    /// are still refused.
    @Test func positionIDBuffersAreSkipped() throws {
        let dir = TestSupport.temporaryDirectory()
        try EmbedModelTests.safetensors([("bert.embeddings.position_ids", "I64", [1, 2], [UInt8](repeating: 0, count: 16)),
                                         ("w", "F32", [1], [0, 0, 128, 63])])
            .write(to: dir.appendingPathComponent("model.safetensors"))
        let archive = try SafetensorsArchive(folder: dir.path)
        #expect(archive.tensors.keys.sorted() == ["w"])
        #expect(try archive.floats("w", shape: [1]).array == [1])
    }
}
