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

/// ru-sim and ru-knn against brute force computed here in Double.
@Suite struct SearchToolTests {
    typealias T = TestSupport

    func cosine(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) {
            dot += Double(x) * Double(y)
            na += Double(x) * Double(x)
            nb += Double(y) * Double(y)
        }
        return na > 0 && nb > 0 ? dot / (na * nb).squareRoot() : 0
    }

    func row(_ values: [Float], _ i: Int, _ dim: Int) -> ArraySlice<Float> { values[i * dim..<(i + 1) * dim] }

    /// Un-normalised vectors with varied lengths, written as a stream file.
    func vectors(_ count: Int, dim: Int, seed: UInt64, prefix: String, chunkSize: Int = 1000) throws -> (String, [String], [Float]) {
        var random = T.Random(seed: seed)
        var values = random.vectors(count, dim)
        for i in 0..<count { for j in 0..<dim { values[i * dim + j] *= Float(1 + i % 7) } }
        let ids = (0..<count).map { "\(prefix)\($0)" }
        var chunks: [Chunk] = []
        for start in stride(from: 0, to: count, by: chunkSize) {
            let end = min(count, start + chunkSize)
            chunks.append(T.vectorChunk(ids: Array(ids[start..<end]), values: Array(values[start * dim..<end * dim]), dim: dim))
        }
        return (try T.write(try T.stream(chunks), name: "\(prefix).vec"), ids, values)
    }

    @Test func pairwiseMatchesBruteForce() throws {
        let dim = 24
        let (a, idsA, va) = try vectors(300, dim: dim, seed: 1, prefix: "a", chunkSize: 70)
        let (b, idsB, vb) = try vectors(300, dim: dim, seed: 2, prefix: "b", chunkSize: 110)
        let r = try T.run("ru-sim", [a, b])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.lines.count == 300)
        for (i, line) in r.lines.enumerated() {
            let f = line.split(separator: "\t")
            #expect(f[0] == idsA[i] && f[1] == idsB[i])
            #expect(f[2].split(separator: ".").last!.count >= 6)
            #expect(abs(Double(f[2])! - cosine(row(va, i, dim), row(vb, i, dim))) <= 1e-6)
        }
        // Either side from standard input.
        let piped = try T.run("ru-sim", ["-", b], stdin: try Data(contentsOf: URL(fileURLWithPath: a)))
        #expect(piped.text == r.text)
    }

    @Test func pairwiseRejectsDifferentLengthsAndDimensions() throws {
        let (a, _, _) = try vectors(5, dim: 4, seed: 1, prefix: "a")
        let (b, _, _) = try vectors(6, dim: 4, seed: 2, prefix: "b")
        let (c, _, _) = try vectors(5, dim: 3, seed: 3, prefix: "c")
        let r = try T.run("ru-sim", [a, b])
        #expect(r.status == 2)
        #expect(r.stderr.contains("a.vec ends after 5 records"))
        let d = try T.run("ru-sim", [a, c])
        #expect(d.status == 2 && d.stderr.contains("4-d") && d.stderr.contains("3-d"))
        #expect(try T.run("ru-sim", ["-", "-"]).status == 64)
    }

    @Test func crossMatchesBruteForce() throws {
        let dim = 16
        let (a, idsA, va) = try vectors(37, dim: dim, seed: 4, prefix: "q")
        let (b, idsB, vb) = try vectors(53, dim: dim, seed: 5, prefix: "d")
        let r = try T.run("ru-sim", ["--cross", a, b])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.lines.count == 37 * 53)
        var maxError = 0.0
        for (n, line) in r.lines.enumerated() {
            let i = n / 53, j = n % 53
            let f = line.split(separator: "\t")
            #expect(f[0] == idsA[i] && f[1] == idsB[j])
            maxError = max(maxError, abs(Double(f[2])! - cosine(row(va, i, dim), row(vb, j, dim))))
        }
        #expect(maxError <= 2e-6)
    }

    /// The expected top-k: by cosine descending, ties by corpus order.
    func bruteForceTopK(queries: [Float], corpus: [Float], dim: Int, k: Int) -> [[(Int, Double)]] {
        let nq = queries.count / dim, nc = corpus.count / dim
        return (0..<nq).map { q in
            let scored = (0..<nc).map { ($0, cosine(row(queries, q, dim), row(corpus, $0, dim))) }
            return Array(scored.sorted { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }.prefix(k))
        }
    }

    @Test(arguments: [(1, false), (10, false), (10, true), (5000, false)])
    func knnMatchesBruteForce(k: Int, noScreen: Bool) throws {
        let dim = 32
        let (q, idsQ, vq) = try vectors(60, dim: dim, seed: 6, prefix: "q", chunkSize: 25)
        let (c, idsC, vc) = try vectors(2500, dim: dim, seed: 7, prefix: "d", chunkSize: 700)
        // Small blocks and batches so the block loop and the corpus re-reads are exercised.
        let r = try T.run("ru-knn", ["--index", c, "-k", String(k), "--block", "300", "--batch", "17", q] + (noScreen ? ["--no-screen"] : []))
        #expect(r.status == 0, "\(r.stderr)")
        let expected = bruteForceTopK(queries: vq, corpus: vc, dim: dim, k: k)
        #expect(r.lines.count == expected.reduce(0) { $0 + $1.count })
        var line = 0
        for (qi, hits) in expected.enumerated() {
            for (rank, (doc, score)) in hits.enumerated() {
                let f = r.lines[line].split(separator: "\t")
                line += 1
                #expect(f[0] == idsQ[qi] && f[1] == Substring(String(rank + 1)))
                #expect(abs(Double(f[3])! - score) <= 2e-6)
                if f[2] != idsC[doc] {
                    // Float rounding may swap two documents whose scores differ by less than that.
                    let other = Int(f[2].dropFirst())!
                    let otherScore = cosine(row(vq, qi, dim), row(vc, other, dim))
                    #expect(abs(otherScore - score) <= 2e-6, "query \(qi) rank \(rank + 1)")
                }
            }
        }
    }

    /// Shards searched apart and merged print what one search over all of them prints, byte
    /// for byte, equal scores across shards included (exact copies of documents in each shard).
    @Test func mergeOfShardsEqualsOneSearch() throws {
        let dim = 16
        var random = T.Random(seed: 61)
        var corpus = random.vectors(60, dim)
        for copy in [17, 33, 52] { for j in 0..<dim { corpus[copy * dim + j] = corpus[5 * dim + j] } }
        let ids = (0..<60).map { "d\($0)" }
        func stream(_ rows: Range<Int>, _ name: String) throws -> String {
            try T.write(try T.stream([T.vectorChunk(ids: Array(ids[rows]), values: Array(corpus[rows.lowerBound * dim..<rows.upperBound * dim]), dim: dim)]), name: name)
        }
        let whole = try stream(0..<60, "all.vec")
        let shards = [try stream(0..<20, "s1.vec"), try stream(20..<45, "s2.vec"), try stream(45..<60, "s3.vec")]
        var queries = random.vectors(7, dim)
        for j in 0..<dim { queries[2 * dim + j] = corpus[5 * dim + j] }   // ties d5, d17, d33, d52 at the top
        let q = try T.write(try T.stream([T.vectorChunk(ids: (0..<7).map { "q\($0 % 5)" }, values: queries, dim: dim)]), name: "q.vec")

        for format in [["--format", "tsv"], ["--format", "jsonl"], ["--format", "jsonl", "--min-score", "0.3"]] {
            for k in ["1", "6"] {
                let flags = ["-k", k, "--exact-scores"] + format
                let one = try T.run("ru-knn", ["--index", whole] + flags + [q])
                #expect(one.status == 0)
                var files: [String] = []
                for (i, shard) in shards.enumerated() {
                    let r = try T.run("ru-knn", ["search", "--index", shard] + flags + [q])
                    #expect(r.status == 0)
                    files.append(try T.write(r.stdout, name: "hits\(i).txt"))
                }
                let merged = try T.run("ru-knn", ["merge", "-k", k] + files)
                #expect(merged.status == 0, "\(merged.stderr)")
                #expect(merged.text == one.text, "\(format) k \(k)")
            }
        }
        let top = try T.run("ru-knn", ["--index", whole, "-k", "4", q])
        #expect(top.lines.filter { $0.hasPrefix("q2\t") }.map { $0.split(separator: "\t")[2] } == ["d5", "d17", "d33", "d52"])

        // Files of different queries, or of different formats, are refused in one line.
        let fewer = try T.write(try T.stream([T.vectorChunk(ids: ["q0", "q9"], values: Array(queries[0..<2 * dim]), dim: dim)]), name: "fewer.vec")
        let a = try T.write(try T.run("ru-knn", ["--index", shards[0], "-k", "2", q]).stdout, name: "a.tsv")
        let b = try T.write(try T.run("ru-knn", ["--index", shards[1], "-k", "2", fewer]).stdout, name: "b.tsv")
        let c = try T.write(try T.run("ru-knn", ["--index", shards[1], "-k", "2", "--format", "jsonl", q]).stdout, name: "c.jsonl")
        let refused = try T.run("ru-knn", ["merge", "-k", "2", a, b])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("b.tsv (line 3) has query q9 where"))
        let mixed = try T.run("ru-knn", ["merge", a, c])
        #expect(mixed.status == 2)
        #expect(mixed.stderr.contains("c.jsonl is not in the tsv format"))
        let garbage = try T.write(Data("q0\tone\td1\t0.5\n".utf8), name: "bad.tsv")
        #expect(try T.run("ru-knn", ["merge", a, garbage]).stderr.contains("bad.tsv line 1: not a result line"))
    }

    @Test func knnBreaksTiesByCorpusOrder() throws {
        // Duplicated documents score exactly the same; the earlier must come first.
        let dim = 8
        var random = T.Random(seed: 11)
        let base = random.vectors(3, dim)
        var corpus: [Float] = []
        for copy in 0..<4 { for i in 0..<3 { corpus += row(base, i, dim).map { $0 * Float(copy + 1) } } }
        let ids = (0..<12).map { "d\($0)" }
        let c = try T.write(try T.stream([T.vectorChunk(ids: ids, values: corpus, dim: dim)]), name: "c.vec")
        let q = try T.write(try T.stream([T.vectorChunk(ids: ["q"], values: Array(row(base, 1, dim)), dim: dim)]), name: "q.vec")
        let r = try T.run("ru-knn", ["--index", c, "-k", "4", q])
        #expect(r.lines.map { $0.split(separator: "\t")[2] } == ["d1", "d4", "d7", "d10"])
        // Still in order when the duplicates fall into different blocks.
        let blocked = try T.run("ru-knn", ["--index", c, "-k", "4", "--block", "2", q])
        #expect(blocked.text == r.text)
    }

    @Test func knnJSONLinesMinScoreAndEmptyInputs() throws {
        let dim = 8
        let (q, _, vq) = try vectors(5, dim: dim, seed: 12, prefix: "q")
        let (c, _, vc) = try vectors(40, dim: dim, seed: 13, prefix: "d")
        let r = try T.run("ru-knn", ["--index", c, "-k", "40", "--format", "jsonl", "--min-score", "0.2", q])
        #expect(r.status == 0)
        #expect(r.lines.count == 5)   // one object per query, even with no neighbour left
        let expected = bruteForceTopK(queries: vq, corpus: vc, dim: dim, k: 40)
        for (qi, line) in r.lines.enumerated() {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            #expect(object["query_id"] as? String == "q\(qi)")
            let neighbors = object["neighbors"] as! [[String: Any]]
            #expect(neighbors.count == expected[qi].filter { $0.1 >= 0.2 - 1e-6 }.count
                    || neighbors.count == expected[qi].filter { $0.1 >= 0.2 + 1e-6 }.count)
            #expect(neighbors.enumerated().allSatisfy { ($0.element["rank"] as? Int) == $0.offset + 1 })
            #expect(neighbors.allSatisfy { ($0["score"] as! Double) >= 0.2 })
        }
        let empty = try T.write(Data(), name: "empty.vec")
        let noCorpus = try T.run("ru-knn", ["--index", empty, "--jsonl", q])
        #expect(noCorpus.status == 0)
        #expect(noCorpus.lines.count == 5 && noCorpus.lines.allSatisfy { $0.hasSuffix("\"neighbors\": []}") })
        let noQueries = try T.run("ru-knn", ["--index", c, empty])
        #expect(noQueries.status == 0 && noQueries.stdout.isEmpty)
        #expect(try T.run("ru-knn", ["--index", c, "-k", "0", q]).status == 64)
    }

    @Test func knnQueriesFromStdinAndBadIndex() throws {
        let (q, _, _) = try vectors(3, dim: 4, seed: 14, prefix: "q")
        let (c, _, _) = try vectors(9, dim: 4, seed: 15, prefix: "d")
        let fromStdin = try T.run("ru-knn", ["--index", c, "-k", "2"], stdin: try Data(contentsOf: URL(fileURLWithPath: q)))
        let fromFile = try T.run("ru-knn", ["--index", c, "-k", "2", q])
        #expect(fromStdin.status == 0 && fromStdin.text == fromFile.text && fromFile.lines.count == 6)
        let bad = try T.write(Data("not a stream".utf8), name: "bad.vec")
        let r = try T.run("ru-knn", ["--index", bad, q])
        #expect(r.status == 2 && r.stderr.contains("bad.vec: not a vector stream"))
    }

    @Test(arguments: [ExactSearch.Method.f32, .int8Screened])
    func exactSearchKeepsTheBestK(method: ExactSearch.Method) {
        // Library level: scores offered in several blocks, k larger than some blocks.
        var random = T.Random(seed: 21)
        let dim = 5, nq = 4, nc = 57
        let queries = random.vectors(nq, dim), corpus = random.vectors(nc, dim)
        let search = ExactSearch(queries: queries, dim: dim, k: 7, method: method)
        var start = 0
        for size in [3, 20, 1, 33] {
            var block = Array(corpus[start * dim..<(start + size) * dim])
            block.withUnsafeMutableBufferPointer {
                search.add(block: $0.baseAddress!, count: size, ids: (start..<start + size).map(String.init))
            }
            start += size
        }
        let expected = bruteForceTopK(queries: queries, corpus: corpus, dim: dim, k: 7)
        for (got, want) in zip(search.results(), expected) {
            #expect(got.map(\.index) == want.map(\.0))
            #expect(got.map(\.id) == want.map { String($0.0) })
        }
    }

    @Test func int8ScreenIsExactOnNearTiesAndSkipsMostDocuments() {
        // Documents that differ from each other by less than the int8 error bound: the screen
        // must let every one of them through to the f32 scores and rank them as f32 does.
        var random = T.Random(seed: 31)
        let dim = 64, nq = 20
        let centre = random.vectors(1, dim)
        var corpus: [Float] = []
        for _ in 0..<300 { corpus += centre.map { $0 + random.float() * 1e-4 } }
        corpus += random.vectors(3000, dim)             // far documents the screen should skip
        let nc = corpus.count / dim
        let queries = (0..<nq).flatMap { _ in centre.map { $0 + random.float() * 0.05 } }
        let search = ExactSearch(queries: queries, dim: dim, k: 25, method: .int8Screened)
        var block = corpus
        block.withUnsafeMutableBufferPointer { search.add(block: $0.baseAddress!, count: nc, ids: (0..<nc).map(String.init)) }
        // The reference scores every document with the same f32 kernel on the same normalised
        // vectors, so the floats are identical and so must the rankings be, near ties included.
        var normalizedQueries = queries, normalizedCorpus = corpus
        normalizedQueries.withUnsafeMutableBufferPointer { VectorMath.l2NormalizeRows($0.baseAddress!, count: nq, dim: dim) }
        normalizedCorpus.withUnsafeMutableBufferPointer { VectorMath.l2NormalizeRows($0.baseAddress!, count: nc, dim: dim) }
        for (q, got) in search.results().enumerated() {
            let scores = normalizedQueries.withUnsafeBufferPointer { qp in
                normalizedCorpus.withUnsafeBufferPointer { cp in
                    (0..<nc).map { VectorMath.dot(qp.baseAddress! + q * dim, cp.baseAddress! + $0 * dim, dim: dim) }
                }
            }
            let expected = (0..<nc).sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }.prefix(25)
            #expect(got.map(\.index) == Array(expected), "query \(q)")
            #expect(got.map(\.score) == expected.map { scores[$0] })
        }
        let screened = search
        #expect(screened.exactScores >= nq * 25)
        #expect(screened.exactScores < nq * nc / 4, "the screen let \(screened.exactScores) of \(nq * nc) pairs through")
    }
}
