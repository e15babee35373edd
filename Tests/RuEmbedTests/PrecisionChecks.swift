import Foundation
import Testing
@testable import RuCore
@testable import RuCompute
@testable import RuEncoder
@testable import RuEmbed

/// What the int8 and bf16 tests check the same way on the fixture models: vectors close to
/// sentence-transformers' f32 ones (but not identical: the arithmetic really changed), and
/// the same bits whatever the batching and thread count.
enum PrecisionChecks {
    /// Cosines to sentence-transformers over the DeBERTa fixture's texts in all three prompt modes.
    static func modelFixtureCosines(_ name: String, _ precision: Precision) throws -> [Double] {
        let model = try SentenceTransformerModel(folder: ModelFixtures.folder(name), precision: precision)
        #expect(model.model.precision == precision)
        let expected = try ModelFixtures.expected(name)
        var cosines: [Double] = []
        for (mode, prompt) in [("query", expected.prompts["query"]!), ("passage", expected.prompts["passage"]!), ("none", "")] {
            let lists = expected.texts.map { model.ids($0, prompt: prompt) }
            let got = model.vectors(lists, skip: model.pooledPromptTokens(prompt))
            cosines += zip(got, expected.vectors[mode]!).map { cosine($0, $1) }
        }
        return cosines
    }

    /// Cosines to sentence-transformers over a family fixture's texts in all three prompt modes.
    static func familyCosines(_ name: String, _ precision: Precision) throws -> [Double] {
        let expected = try FamilyFixtures.expected(name)
        let encoder = try SentenceEncoder(model: ModelFixtures.folder(name), options: EncoderOptions(precision: precision))
        #expect(encoder.model.model.precision == precision)
        var cosines: [Double] = []
        for (mode, prompt) in FamilyFixtures.prompts {
            let got = try encoder.embed(expected.texts, prompt: prompt)
            cosines += zip(got, expected.vectors[mode]!).map { cosine($0, $1) }
        }
        return cosines
    }

    /// Mean and minimum at least the targets, and the minimum below `identical` (an f32 path
    /// run by mistake would reach it).
    static func expectClose(_ cosines: [Double], _ what: String, mean target: Double, min floor: Double,
                            below identical: Double) {
        let mean = cosines.reduce(0, +) / Double(cosines.count)
        let worst = cosines.min()!
        print("\(what): mean cosine \(mean), min \(worst) over \(cosines.count) vectors")
        #expect(mean >= target, "\(what): mean cosine \(mean)")
        #expect(worst >= floor, "\(what): min cosine \(worst)")
        #expect(worst < identical, "\(what): vectors identical to f32")
    }

    /// A DeBERTa fixture's vectors in one batch against each text alone and against one
    /// thread: the counts of vectors that differ (both should be 0).
    static func batchingDifferences(_ name: String, _ precision: Precision, rowsToSplit: Int) throws -> (alone: Int, serial: Int, texts: Int) {
        let model = try SentenceTransformerModel(folder: ModelFixtures.folder(name), precision: precision)
        let expected = try ModelFixtures.expected(name)
        let prompt = expected.prompts["query"]!
        let lists = expected.texts.map { model.ids($0, prompt: prompt) }
        #expect(lists.reduce(0) { $0 + $1.count } >= 2 * rowsToSplit, "a batch big enough to split rows")
        let skip = model.pooledPromptTokens(prompt)
        let together = model.vectors(lists, skip: skip)
        let alone = lists.map { model.vectors([$0], skip: skip)[0] }
        let serial = Parallel.serially { model.vectors(lists, skip: skip) }
        func differing(_ a: [[Float]], _ b: [[Float]]) -> Int { zip(a, b).filter { $0 != $1 }.count }
        return (differing(together, alone), differing(together, serial), lists.count)
    }
}
