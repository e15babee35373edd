import Testing
import CKernels

/// ck_dots8, the k-means++ seeding's products (up to eight candidates against a block of pool
/// rows), against the same dot products in Double: every candidate count, lengths with and
/// without a tail past the last sixteen lanes, and the same floats for a row whether it comes
/// alone or in a block (a thread's piece must not change a seed; in a block of five, the
/// AVX-512 copy takes two pairs and a row alone).
@Suite struct DotKernelTests {
    typealias T = TestSupport

    @Test(arguments: [1, 15, 16, 33, 768, 771])
    func matchesDoubleReference(n: Int) {
        var random = T.Random(seed: UInt64(n))
        let rowCount = 5
        let rows = random.vectors(rowCount, n), cands = random.vectors(8, n)
        for count in 1...8 {
            var block = [Float](repeating: .nan, count: rowCount * count)
            cands.withUnsafeBufferPointer { c in
                let pointers: [UnsafePointer<Float>?] = (0..<count).map { c.baseAddress! + $0 * n }
                ck_dots8(rows, rowCount, pointers, count, n, &block)
                for r in 0..<rowCount {
                    var alone = [Float](repeating: .nan, count: count)
                    rows.withUnsafeBufferPointer { ck_dots8($0.baseAddress! + r * n, 1, pointers, count, n, &alone) }
                    #expect(alone == Array(block[r * count..<(r + 1) * count]))
                    for q in 0..<count {
                        let exact = (0..<n).reduce(0.0) { $0 + Double(rows[r * n + $1]) * Double(cands[q * n + $1]) }
                        let scale = (0..<n).reduce(0.0) { $0 + abs(Double(rows[r * n + $1]) * Double(cands[q * n + $1])) }
                        #expect(abs(Double(block[r * count + q]) - exact) <= 1e-6 * max(scale, 1),
                                "n \(n), \(count) candidates, row \(r), candidate \(q)")
                    }
                }
            }
        }
    }

    /// ck_dot_s8, the graph index's int8 product (the VNNI copy on CPUs that have it, else
    /// AVX2/AVX-512 or the plain loop): exact against integer sums, at the extremes of the
    /// codes (±127·±127 in every byte must neither wrap nor saturate) and at lengths with a
    /// 32-byte tail past the last 64.
    @Test(arguments: [32, 64, 96, 768, 800, 4096])
    func int8ProductIsExact(n: Int) {
        var random = T.Random(seed: UInt64(n) &+ 7)
        // Codes in [-127, 127], as the index's quantiser makes them.
        let a = (0..<n).map { _ in Int8(Int(random.next() % 255) - 127) }
        let b = (0..<n).map { _ in Int8(Int(random.next() % 255) - 127) }
        let exact = zip(a, b).reduce(0) { $0 + Int($1.0) * Int($1.1) }
        #expect(Int(ck_dot_s8(a, b, n)) == exact, "n \(n)")
        let high = [Int8](repeating: 127, count: n), low = [Int8](repeating: -127, count: n)
        #expect(Int(ck_dot_s8(high, high, n)) == 127 * 127 * n)
        #expect(Int(ck_dot_s8(high, low, n)) == -127 * 127 * n)
        #expect(Int(ck_dot_s8(low, low, n)) == 127 * 127 * n)
        let mixed = (0..<n).map { Int8($0 % 3 == 0 ? -127 : $0 % 3 == 1 ? 127 : 0) }
        #expect(Int(ck_dot_s8(mixed, high, n)) == (0..<n).reduce(0) { $0 + Int(mixed[$1]) * 127 })
    }
}
