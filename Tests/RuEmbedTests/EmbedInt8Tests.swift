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

/// `--precision int8` end to end on the fixture models: vectors close to sentence-transformers'
/// f32 ones (the quality targets of docs/EMBED.md), and really computed in int8.
@Suite(.serialized) struct EmbedInt8Tests {
    @Test(arguments: ModelFixtures.names)
    func int8VectorsStayCloseToF32(_ name: String) throws {
        let model = try SentenceTransformerModel(folder: ModelFixtures.folder(name), precision: .int8)
        #expect(model.model.precision == .int8)
        let expected = try ModelFixtures.expected(name)
        var cosines: [Double] = []
        for (mode, prompt) in [("query", expected.prompts["query"]!), ("passage", expected.prompts["passage"]!), ("none", "")] {
            let lists = expected.texts.map { model.ids($0, prompt: prompt) }
            let got = model.vectors(lists, skip: model.pooledPromptTokens(prompt))
            cosines += zip(got, expected.vectors[mode]!).map { cosine($0, $1) }
        }
        let mean = cosines.reduce(0, +) / Double(cosines.count)
        let worst = cosines.min()!
        print("\(name) int8: mean cosine \(mean), min \(worst) over \(cosines.count) vectors")
        #expect(mean >= 0.99, "\(name): mean cosine \(mean)")
        #expect(worst >= 0.98, "\(name): min cosine \(worst)")
        // Quantisation changes the numbers: an int8 path that silently ran f32 would give ~1.
        #expect(worst < 0.999999, "\(name): int8 vectors identical to f32")
    }

    /// int8 vectors are the same bits whether a text goes alone (few rows: one oneDNN call on
    /// all threads), in a batch (rows split between threads, 32-row chunks, the fused
    /// feed-forward pair) or on one thread: every step is per row or per text, and int32
    /// products are exact.
    @Test(arguments: ModelFixtures.names)
    func int8VectorsDoNotDependOnBatchingOrThreads(_ name: String) throws {
        let model = try SentenceTransformerModel(folder: ModelFixtures.folder(name), precision: .int8)
        let expected = try ModelFixtures.expected(name)
        let prompt = expected.prompts["query"]!
        let lists = expected.texts.map { model.ids($0, prompt: prompt) }
        #expect(lists.reduce(0) { $0 + $1.count } >= 2 * Int8LinearLayer.perThreadRows, "a batch big enough to split rows")
        let skip = model.pooledPromptTokens(prompt)
        let together = model.vectors(lists, skip: skip)
        let alone = lists.map { model.vectors([$0], skip: skip)[0] }
        let serial = Parallel.serially { model.vectors(lists, skip: skip) }
        func differing(_ a: [[Float]], _ b: [[Float]]) -> Int { zip(a, b).filter { $0 != $1 }.count }
        #expect(differing(together, alone) == 0, "\(differing(together, alone)) of \(lists.count) vectors differ alone")
        #expect(differing(together, serial) == 0, "\(differing(together, serial)) of \(lists.count) vectors differ on one thread")
    }
}
