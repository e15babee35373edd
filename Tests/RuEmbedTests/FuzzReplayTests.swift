import Foundation
import Testing
import ru_fuzz

/// The fuzz harnesses (Fuzz/ru-fuzz) run in-process on the checked-in seed corpus and on every
/// crash input found so far (Fuzz/crashes/<harness>/, kept once fixed): a regression brings
/// the trap or the over-read back here, in a plain `swift test`, without libFuzzer.
@Suite struct FuzzReplayTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func files(_ folder: String, _ harness: String) -> [String] {
        let path = root.appendingPathComponent("Fuzz/\(folder)/\(harness)").path
        return FileManager.default.fileExists(atPath: path) ? inputFiles(path) : []
    }

    @Test(arguments: Harness.all.map(\.name))
    func seedsAndPastCrashesReplay(harness name: String) throws {
        let harness = try #require(Harness.named(name))
        let seeds = Self.files("corpus", name)
        // Seeds a parser refuses start the fuzzer from nothing: most must be valid inputs.
        #expect(seeds.count >= 3, "Fuzz/corpus/\(name) has \(seeds.count) seeds (scripts/make-fuzz-seeds)")
        var accepted = 0
        for file in seeds {
            let data = try #require(readWhole(file), "\(file)")
            #expect(data.count <= harness.maxLength, "\(file) is longer than the harness reads")
            if harness.run(data) == nil { accepted += 1 }
        }
        #expect(accepted * 2 > seeds.count, "only \(accepted) of \(seeds.count) seeds in Fuzz/corpus/\(name) are accepted")
        for file in Self.files("crashes", name) {
            harness.run(try #require(readWhole(file), "\(file)"))
        }
    }

    @Test func everyHarnessHasSeeds() {
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("Fuzz/corpus").path)) ?? []
        #expect(Set(folders) == Set(Harness.all.map(\.name)))
    }
}
