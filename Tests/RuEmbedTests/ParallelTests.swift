import Testing
@testable import RuEmbed

@Suite struct ParallelTests {
    /// Every range runs exactly once, also inside another parallel region, where OpenMP
    /// grants a team of one.
    @Test func everyRangeRunsOnceEvenNested() {
        let outerCount = max(Parallel.threads, 2)
        final class Tally: @unchecked Sendable {
            var seen: [Int]
            let lock = PThreadMutex()
            init(_ n: Int) { seen = [Int](repeating: 0, count: n) }
        }
        let tally = Tally(500 * outerCount)
        Parallel.forRanges(outerCount) { outerLo, outerHi in
            for outer in outerLo..<outerHi {
                let ranges = [0..<100, 100..<250, 250..<250, 250..<500].map { ($0.lowerBound + outer * 500)..<($0.upperBound + outer * 500) }
                Parallel.forThreadRanges(ranges: ranges) { _, lo, hi in
                    tally.lock.locked { for i in lo..<hi { tally.seen[i] += 1 } }
                }
            }
        }
        let wrong = tally.seen.filter { $0 != 1 }.count
        #expect(wrong == 0, "\(wrong) of \(tally.seen.count) items not run exactly once")
    }
}
