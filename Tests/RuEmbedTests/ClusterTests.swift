import Foundation
import Testing
@testable import RuCore
@testable import RuVectors
@testable import RuSearch

/// ru-cluster: k-means on data whose clusters are known, determinism, the centroids stream,
/// near-duplicate groups against brute force, bad input.
@Suite struct ClusterTests {
    typealias T = TestSupport

    /// Writes records as a stream file in chunks of `chunkSize`.
    func streamFile(_ values: [Float], ids: [String], dim: Int, name: String, chunkSize: Int = 500) throws -> String {
        var chunks: [Chunk] = []
        for start in stride(from: 0, to: ids.count, by: chunkSize) {
            let end = min(ids.count, start + chunkSize)
            chunks.append(T.vectorChunk(ids: Array(ids[start..<end]), values: Array(values[start * dim..<end * dim]), dim: dim))
        }
        return try T.write(try T.stream(chunks), name: name)
    }

    func normalized(_ values: [Float], dim: Int) -> [[Double]] {
        stride(from: 0, to: values.count, by: dim).map { s in
            let row = values[s..<s + dim].map(Double.init)
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return row.map { norm > 0 ? $0 / norm : 0 }
        }
    }

    func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    struct Line { var id: String; var cluster: Int; var score: Double }

    func parse(_ r: T.Result) -> [Line] {
        r.lines.map { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            return Line(id: String(f[0]), cluster: Int(f[1])!, score: Double(f[2])!)
        }
    }

    /// `clusters` well-separated groups of `perCluster` noisy copies of random centres,
    /// interleaved; returns the values (scaled by varied lengths) and the true labels.
    func separated(clusters: Int, perCluster: Int, dim: Int, noise: Float, seed: UInt64) -> ([Float], [Int]) {
        var random = T.Random(seed: seed)
        let centres = random.vectors(clusters, dim)
        var values: [Float] = [], labels: [Int] = []
        for i in 0..<clusters * perCluster {
            let c = (i * 7 + i / clusters) % clusters
            labels.append(c)
            let scale = Float(1 + i % 5)
            for j in 0..<dim { values.append(scale * (centres[c * dim + j] + noise * random.float())) }
        }
        return (values, labels)
    }

    @Test func separatedClustersAreFoundExactly() throws {
        let dim = 32, k = 6
        let (values, labels) = separated(clusters: k, perCluster: 50, dim: dim, noise: 0.1, seed: 11)
        let ids = (0..<labels.count).map { "r\($0)" }
        let path = try streamFile(values, ids: ids, dim: dim, name: "sep.vec", chunkSize: 77)
        for extra in [["--sample", "0"], ["--sample", "120"], []] {
            let r = try T.run("ru-cluster", ["-k", "\(k)", "--seed", "5", path] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            let lines = parse(r)
            #expect(lines.map(\.id) == ids)
            // A bijection between true labels and clusters: perfect up to a permutation.
            var map: [Int: Int] = [:], back: [Int: Int] = [:]
            for (line, label) in zip(lines, labels) {
                #expect(map[label, default: line.cluster] == line.cluster, "\(extra)")
                #expect(back[line.cluster, default: label] == label, "\(extra)")
                map[label] = line.cluster
                back[line.cluster] = label
                #expect(line.cluster >= 0 && line.cluster < k)
                #expect(line.score > 0.9)
            }
            #expect(map.count == k)
        }
    }

    @Test func sameOutputWhateverTheThreadCount() throws {
        let dim = 48, n = 3000
        var random = T.Random(seed: 21)
        let values = random.vectors(n, dim)
        let ids = (0..<n).map { "d\($0)" }
        let path = try streamFile(values, ids: ids, dim: dim, name: "det.vec", chunkSize: 700)
        let dir = T.temporaryDirectory()
        for extra in [["--sample", "0"], ["--sample", "1200"]] {
            var outputs: [String] = [], centroids: [Data] = []
            for threads in ["1", "2"] {
                let c = dir.appendingPathComponent("c\(threads)\(extra[1]).vec").path
                let r = try T.run("ru-cluster", ["-k", "20", "--iterations", "15", "--threads", threads, "--centroids", c, path] + extra)
                #expect(r.status == 0, "\(r.stderr)")
                #expect(r.lines.count == n)
                outputs.append(r.text)
                centroids.append(try Data(contentsOf: URL(fileURLWithPath: c)))
            }
            #expect(outputs[0] == outputs[1], "\(extra)")
            #expect(centroids[0] == centroids[1], "\(extra)")
        }
        // Another seed gives another clustering of random data (the seed is used).
        let a = try T.run("ru-cluster", ["-k", "20", "--seed", "1", path])
        let b = try T.run("ru-cluster", ["-k", "20", "--seed", "2", path])
        #expect(a.status == 0 && b.status == 0)
        #expect(a.text != b.text)
    }

    @Test func centroidsAgreeWithTheAssignments() throws {
        let dim = 24, n = 1500, k = 12
        var random = T.Random(seed: 31)
        let values = random.vectors(n, dim)
        let ids = (0..<n).map { "p\($0)" }
        let path = try streamFile(values, ids: ids, dim: dim, name: "pts.vec")
        let c = T.temporaryDirectory().appendingPathComponent("centroids.vec").path
        let r = try T.run("ru-cluster", ["-k", "\(k)", "-v", "--centroids", c, "--format", "jsonl", path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("iteration 1: mean cosine"))
        let chunks = try T.readAll(c)
        #expect(chunks.allSatisfy { $0.isNormalized && $0.dtype == .f32 && $0.dim == dim })
        #expect(chunks.flatMap(\.ids) == (0..<k).map(String.init))
        let cv = normalized(chunks.flatMap { $0.floats() }, dim: dim)
        let xs = normalized(values, dim: dim)
        #expect(r.lines.count == n)
        var sizes = [Int](repeating: 0, count: k)
        for (i, line) in r.lines.enumerated() {
            let object = try JSONValue.parse(line)
            #expect(object["id"]?.stringValue == ids[i])
            let cluster = Int(object["cluster"]!.numberValue!)
            let score = object["score"]!.numberValue!
            let cosines = cv.map { dot(xs[i], $0) }
            #expect(cosines[cluster] >= cosines.max()! - 1e-5, "record \(i)")
            #expect(abs(score - cosines[cluster]) <= 2e-6, "record \(i)")
            sizes[cluster] += 1
        }
        #expect(sizes.allSatisfy { $0 > 0 })
        // ru-knn with the centroids as its index assigns the same clusters.
        let knn = try T.run("ru-knn", ["--index", c, "-k", "1", path])
        #expect(knn.status == 0, "\(knn.stderr)")
        let tsv = try T.run("ru-cluster", ["-k", "\(k)", path])
        for (a, b) in zip(knn.lines, tsv.lines) {
            let f = a.split(separator: "\t"), g = b.split(separator: "\t")
            #expect(f[0] == g[0])
            #expect(f[2] == g[1] || abs(Double(f[3])! - Double(g[2])!) <= 1e-6)
        }
    }

    @Test func thresholdGroupsMatchBruteForce() throws {
        let dim = 32, base = 300
        var random = T.Random(seed: 41)
        var values = random.vectors(base, dim)
        // Planted near duplicates: 20 pairs, and a chain a ~ b ~ c.
        var planted: [(Int, Int)] = []
        for p in 0..<20 {
            let source = p * 13 % base
            planted.append((source, values.count / dim))
            values += (0..<dim).map { values[source * dim + $0] * 1.5 + 0.01 * random.float() }
        }
        let n = values.count / dim
        let ids = (0..<n).map { "x\($0)" }
        let path = try streamFile(values, ids: ids, dim: dim, name: "dups.vec", chunkSize: 90)
        let threshold = 0.99
        let r = try T.run("ru-cluster", ["--threshold", "\(threshold)", path])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = parse(r)
        #expect(lines.map(\.id) == ids)
        // Brute force in Double: components of the pairs at or above the threshold.
        let xs = normalized(values, dim: dim)
        var parent = Array(0..<n)
        func find(_ x: Int) -> Int { var r = x; while parent[r] != r { r = parent[r] }; return r }
        for i in 0..<n { for j in 0..<i where dot(xs[i], xs[j]) >= threshold {
            let (a, b) = (find(i), find(j)); parent[max(a, b)] = min(a, b)
        } }
        var number: [Int: Int] = [:]
        for i in 0..<n {
            let root = find(i)
            let expected = number[root] ?? number.count
            number[root] = expected
            #expect(lines[i].cluster == expected, "record \(i)")
            #expect(abs(lines[i].score - dot(xs[i], xs[root])) <= 2e-6)
        }
        for (a, b) in planted { #expect(lines[a].cluster == lines[b].cluster) }
        #expect(Set(lines.map(\.cluster)).count == n - planted.count)
        // A chain: a~b and b~c above the threshold, a·c below it, all one group.
        var chain: [Float] = []
        let e = (0..<dim).map { Float($0 == 0 ? 1 : 0) }
        for angle in [0.0, 0.13, 0.26] { chain += (0..<dim).map { $0 == 0 ? Float(cos(angle)) : $0 == 1 ? Float(sin(angle)) : 0 } }
        chain += e.map { -$0 }
        let chainPath = try streamFile(chain, ids: ["a", "b", "c", "z"], dim: dim, name: "chain.vec")
        let cr = try T.run("ru-cluster", ["--threshold", "0.99", chainPath])
        #expect(cr.status == 0, "\(cr.stderr)")
        #expect(parse(cr).map(\.cluster) == [0, 0, 0, 1])
        #expect(parse(cr)[2].score < 0.99)
    }

    /// The partition (k-means homes and halos) only prunes comparisons: the groups and the
    /// pairs found are those of all pairs and of brute force in Double, with near duplicates
    /// planted on the boundaries between clusters, where the halos matter.
    @Test func partitionedNearDuplicatesAreExact() throws {
        let dim = 16, centres = 30, n = 2400
        var random = T.Random(seed: 77)
        let centre = random.vectors(centres, dim)
        var values: [Float] = []
        for i in 0..<n {
            let c = i % centres
            values += (0..<dim).map { centre[c * dim + $0] + 0.1 * random.float() }
        }
        // The last 400 records: 200 points between two centres, each with a copy turned slightly.
        for p in 0..<200 {
            let (a, b) = (p % centres, (p * 7 + 3) % centres)
            let mid = (0..<dim).map { centre[a * dim + $0] + centre[b * dim + $0] + 0.02 * random.float() }
            let at = n - 400 + 2 * p
            for d in 0..<dim {
                values[at * dim + d] = mid[d]
                values[(at + 1) * dim + d] = mid[d] + 0.03 * random.float()
            }
        }
        let xs = normalized(values, dim: dim).flatMap { $0 }
        let rows = xs.map(Float.init)
        // Every cosine once, in Double.
        var cosines: [Double] = []
        cosines.reserveCapacity(n * (n - 1) / 2)
        for i in 0..<n { for j in 0..<i {
            var c = 0.0
            for d in 0..<dim { c += xs[i * dim + d] * xs[j * dim + d] }
            cosines.append(c)
        } }
        for threshold in [0.95, 0.99] as [Float] {
            let (partitioned, all) = rows.withUnsafeBufferPointer { p in
                (NearDuplicates.group(points: p.baseAddress!, count: n, dim: dim, threshold: threshold,
                                      partitionAbove: 0, recordsPerCluster: 64),
                 NearDuplicates.group(points: p.baseAddress!, count: n, dim: dim, threshold: threshold, partitionAbove: .max))
            }
            #expect(partitioned.partitioned && !all.partitioned, "threshold \(threshold)")
            #expect(partitioned.compared < all.compared / 2, "threshold \(threshold): \(partitioned.compared) pairs compared")
            #expect(partitioned.group == all.group, "threshold \(threshold)")
            #expect(partitioned.edges == all.edges, "threshold \(threshold)")
            // Brute force in Double: the pairs above the threshold, give or take f32 rounding.
            let t = Double(threshold)
            let above = cosines.count { $0 >= t + 1e-6 }, near = cosines.count { abs($0 - t) < 1e-6 }
            #expect(partitioned.edges >= above && partitioned.edges <= above + near, "threshold \(threshold)")
            #expect(above >= 200, "threshold \(threshold): the planted pairs")
        }
    }

    @Test func badInputIsOneLineAndStatus2() throws {
        let dir = T.temporaryDirectory()
        let good = try streamFile([1, 0, 0, 1, 1, 1], ids: ["a", "b", "c"], dim: 2, name: "good.vec")
        func refused(_ arguments: [String], stdin: Data = Data(), status: Int32 = 2, _ mentions: String) throws {
            let r = try T.run("ru-cluster", arguments, stdin: stdin)
            #expect(r.status == status, "\(arguments): \(r.stderr)")
            #expect(r.stdout.isEmpty, "\(arguments)")
            #expect(r.stderr.contains(mentions), "\(arguments): \(r.stderr)")
            if status == 2 { #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)") }
        }
        // Empty input, from a file and from standard input.
        let empty = try T.write(Data(), name: "empty.vec", in: dir)
        try refused(["-k", "2", empty], "no records")
        try refused(["-k", "2"], "no records")
        try refused(["-k", "4", good], "more than the 3 records")
        // 256·K would overflow: refused as any K over the record count, not a trap.
        try refused(["-k", "99999999999999999", good], "more than the 3 records")
        try refused(["-k", "0", good], status: 64, "at least 1")
        // Every tool's --threads (ThreadOptions): a count OpenMP cannot take is a usage error.
        try refused(["-k", "1", "--threads", "99999999999999999", good], status: 64, "1 to 4096")
        try refused([good], status: 64, "either -k")
        try refused(["-k", "2", "--threshold", "0.9", good], status: 64, "either -k")
        try refused(["--threshold", "2", good], status: 64, "between -1 and 1")
        // A non-finite value is refused by the reader, naming the record.
        let nan = try T.write(try T.stream([T.vectorChunk(ids: ["a", "b"], values: [1, 0, .nan, 1], dim: 2)]), name: "nan.vec", in: dir)
        try refused(["-k", "1", nan], "record 2")
        let inf = try T.write(try T.stream([T.vectorChunk(ids: ["a", "b"], values: [1, .infinity, 0, 1], dim: 2)]), name: "inf.vec", in: dir)
        try refused(["--threshold", "0.5", inf], "not finite")
        let tokens = try T.write(try T.stream([Chunk.tokens(ids: ["q"], lists: [[1, 2, 3]], metadata: StreamMetadata())]), name: "tok.vec", in: dir)
        try refused(["-k", "1", tokens], "token stream")
        // Mixed dimensions: between files, and within one stream.
        let wide = try streamFile([1, 0, 0, 0, 1, 0], ids: ["x", "y"], dim: 3, name: "wide.vec")
        try refused(["-k", "2", good, wide], "wide.vec has 3-d vectors")
        let mixed = try T.write(try T.stream([T.vectorChunk(ids: ["a"], values: [1, 0], dim: 2),
                                               T.vectorChunk(ids: ["b"], values: [1, 0, 0], dim: 3)]), name: "mixed.vec", in: dir)
        try refused(["-k", "1", mixed], "dimension changes from 2 to 3")
        // The centroids file is left alone when the run fails, and no temporary remains.
        let c = dir.appendingPathComponent("c.vec").path
        try Data("old".utf8).write(to: URL(fileURLWithPath: c))
        try refused(["-k", "1", "--centroids", c, nan], "record 2")
        #expect(try String(contentsOfFile: c, encoding: .utf8) == "old")
        // A successful run replaces it, and leaves no temporary file beside it.
        let ok = try T.run("ru-cluster", ["-k", "2", "--centroids", c, good])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(try T.readAll(c).flatMap(\.ids) == ["0", "1"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".tmp") }.isEmpty)
    }

    @Test func closedOutputPipeEndsQuietly() throws {
        let dim = 4, n = 40_000
        var random = T.Random(seed: 51)
        let path = try streamFile(random.vectors(n, dim), ids: (0..<n).map { "id\($0)" }, dim: dim, name: "many.vec", chunkSize: 5000)
        let script = "'\(T.tool("ru-cluster"))' -k 3 --iterations 2 '\(path)' | head -1; echo \"status ${PIPESTATUS[0]}\""
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(stdout.hasSuffix("status 0\n"), "\(stdout)")
        #expect(stdout.hasPrefix("id0\t"))
        #expect(stderr.isEmpty, "\(stderr)")
    }

    /// The library directly: k-means++ seeds and the bounds give the same result as
    /// recomputing every record (the bounds only skip work), and they do skip work.
    @Test func boundsSkipRecordsWithoutChangingTheResult() throws {
        let dim = 16, k = 8
        let (raw, _) = separated(clusters: k, perCluster: 200, dim: dim, noise: 0.6, seed: 61)
        var values = raw
        let n = values.count / dim
        values.withUnsafeMutableBufferPointer { VectorMath.l2NormalizeRows($0.baseAddress!, count: n, dim: dim) }
        let result = try values.withUnsafeBufferPointer {
            try SphericalKMeans.cluster(points: $0.baseAddress!, count: n, dim: dim, k: k, iterations: 30, seed: 9)
        }
        #expect(result.recomputed.first == n)
        #expect(result.recomputed.count > 2)
        #expect(result.recomputed.last! < n / 2, "\(result.recomputed)")
        // The objective never falls (spherical k-means ascends), allowing for rounding.
        for (a, b) in zip(result.objectives, result.objectives.dropFirst()) { #expect(b >= a - 1e-6) }
        // Brute force over the final centroids.
        let xs = normalized(values, dim: dim), cs = normalized(result.centroids, dim: dim)
        for i in 0..<n {
            let cosines = cs.map { dot(xs[i], $0) }
            #expect(cosines[Int(result.assignment[i])] >= cosines.max()! - 1e-5)
        }
    }

    /// The two ways of the second pass (a file read again; standard input held in memory)
    /// give the same lines, and the int8 screen gives the clusters of f32 products.
    @Test func standardInputFileAndScreenAgree() throws {
        let dim = 40, n = 2600
        let (values, _) = separated(clusters: 9, perCluster: n / 9 + 1, dim: dim, noise: 0.9, seed: 71)
        let ids = (0..<n).map { "s\($0)" }
        let path = try streamFile(Array(values[0..<n * dim]), ids: ids, dim: dim, name: "two-ways.vec", chunkSize: 300)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for extra in [[], ["--sample", "0"], ["--sample", "700"], ["--iterations", "0"]] {
            let file = try T.run("ru-cluster", ["-k", "9", "--seed", "3", path] + extra)
            let piped = try T.run("ru-cluster", ["-k", "9", "--seed", "3"] + extra, stdin: bytes)
            let f32 = try T.run("ru-cluster", ["-k", "9", "--seed", "3", "--no-screen", path] + extra)
            #expect(file.status == 0 && piped.status == 0 && f32.status == 0, "\(file.stderr) \(piped.stderr) \(f32.stderr)")
            #expect(file.lines.count == n)
            #expect(file.text == piped.text, "\(extra)")
            let a = parse(file), b = parse(f32)
            #expect(a.map(\.cluster) == b.map(\.cluster), "\(extra)")
            #expect(zip(a, b).allSatisfy { abs($0.score - $1.score) <= 2e-6 }, "\(extra)")
        }
    }

    /// The library's assignment: screened equals unscreened equals brute force in Double.
    @Test func screenedAssignmentIsExact() throws {
        let dim = 96, n = 5000, k = 37
        var random = T.Random(seed: 83)
        var points = random.vectors(n, dim)
        var centroids = random.vectors(k, dim)
        points.withUnsafeMutableBufferPointer { VectorMath.l2NormalizeRows($0.baseAddress!, count: n, dim: dim) }
        centroids.withUnsafeMutableBufferPointer { VectorMath.l2NormalizeRows($0.baseAddress!, count: k, dim: dim) }
        var results: [[Int32]] = []
        for screened in [true, false] {
            let assigner = SphericalKMeans.Assigner(centroids: centroids, dim: dim, k: k, screened: screened)
            var clusters = [Int32](repeating: -1, count: n), scores = [Float](repeating: 0, count: n)
            points.withUnsafeBufferPointer { assigner.assign($0.baseAddress!, count: n, clusters: &clusters, scores: &scores) }
            if screened {
                // The screen did skip work: far fewer than k centroids scored in f32 per record.
                #expect(assigner.screenedRows == n)
                #expect(assigner.candidates < n * k / 4, "\(assigner.candidates)")
            }
            let xs = normalized(points, dim: dim), cs = normalized(centroids, dim: dim)
            for i in 0..<n {
                let cosines = cs.map { dot(xs[i], $0) }
                #expect(cosines[Int(clusters[i])] >= cosines.max()! - 1e-6, "record \(i)")
                #expect(abs(Double(scores[i]) - cosines[Int(clusters[i])]) <= 1e-5)
            }
            results.append(clusters)
        }
        #expect(results[0] == results[1])
    }

    /// Reservoir sampling: all records in order when they fit; otherwise the same draw for the
    /// same seed, distinct records, each drawn about equally often over many seeds.
    @Test func reservoirSampleIsUniformAndSeeded() throws {
        let dim = 2, n = 50
        let rows = (0..<n * dim).map { Float($0 / dim) }
        func draw(_ capacity: Int, seed: UInt64, blocks: Int = 7) throws -> ReservoirSample {
            var sample = ReservoirSample(capacity: capacity, dim: dim, seed: seed)
            try rows.withUnsafeBufferPointer { r in
                for start in stride(from: 0, to: n, by: blocks) {
                    try sample.offer(r.baseAddress! + start * dim, count: min(blocks, n - start))
                }
            }
            return sample
        }
        let all = try draw(80, seed: 1)
        #expect(all.origins == Array(0..<n))
        let a = try draw(10, seed: 5), b = try draw(10, seed: 5, blocks: 3), c = try draw(10, seed: 6)
        #expect(a.origins == b.origins)
        #expect(a.origins != c.origins)
        #expect(Set(a.origins).count == 10 && a.seen == n)
        for slot in 0..<10 { #expect(a.rows.row(slot)[0] == Float(a.origins[slot])) }
        var counts = [Int](repeating: 0, count: n)
        for seed in 0..<2000 { for o in try draw(10, seed: UInt64(seed)).origins { counts[o] += 1 } }
        // Each record is drawn with probability 1/5: 400 times in 2000 draws, give or take ~18.
        #expect(counts.allSatisfy { $0 > 320 && $0 < 480 }, "\(counts)")
    }
}
