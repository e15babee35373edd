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
        PrecisionChecks.expectClose(try PrecisionChecks.modelFixtureCosines(name, .int8), "\(name) int8",
                                    mean: 0.99, min: 0.98, below: 0.999999)
    }

    /// int8 vectors are the same bits whether a text goes alone (few rows: one oneDNN call on
    /// all threads), in a batch (rows split between threads, 32-row chunks, the fused
    /// feed-forward pair) or on one thread: every step is per row or per text, and int32
    /// products are exact.
    @Test(arguments: ModelFixtures.names)
    func int8VectorsDoNotDependOnBatchingOrThreads(_ name: String) throws {
        let d = try PrecisionChecks.batchingDifferences(name, .int8, rowsToSplit: Int8LinearLayer.perThreadRows)
        #expect(d.alone == 0, "\(d.alone) of \(d.texts) vectors differ alone")
        #expect(d.serial == 0, "\(d.serial) of \(d.texts) vectors differ on one thread")
    }
}
