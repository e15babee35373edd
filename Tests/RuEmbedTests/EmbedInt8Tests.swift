import Foundation
import Testing
@testable import RuEmbed

/// `--precision int8` end to end on the fixture models: vectors close to sentence-transformers'
/// f32 ones (the quality targets of docs/EMBED.md), and really computed in int8.
@Suite(.serialized) struct EmbedInt8Tests {
    @Test(arguments: ModelFixtures.names)
    func int8VectorsStayCloseToF32(_ name: String) throws {
        let model = try SentenceEmbedder(folder: ModelFixtures.folder(name), precision: .int8)
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
}
