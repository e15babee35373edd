import Foundation
import Testing
@testable import RuCore
@testable import RuVectors
@testable import RuSearch
@testable import RuEmbed
import CKernels

/// ru-index and ru-knn --index against ru-knn's exact search of the same streams.
@Suite struct IndexToolTests {
    typealias T = TestSupport

    /// Clustered vectors (20 clusters, spread about as wide as the centres are apart), written
    /// as a stream of chunks of 500; ids `prefix` + number.
    func clustered(_ count: Int, dim: Int = 32, seed: UInt64, prefix: String,
                   metadata: StreamMetadata = StreamMetadata()) throws -> (path: String, ids: [String], values: [Float]) {
        var centres = T.Random(seed: 77)
        let c = centres.vectors(20, dim)
        var random = T.Random(seed: seed)
        var values: [Float] = []
        for _ in 0..<count {
            let k = Int(random.next() % 20)
            for j in 0..<dim { values.append(c[k * dim + j] + 0.6 * random.float()) }
        }
        let ids = (0..<count).map { "\(prefix)\($0)" }
        var chunks: [Chunk] = []
        for start in stride(from: 0, to: count, by: 500) {
            let end = min(count, start + 500)
            chunks.append(T.vectorChunk(ids: Array(ids[start..<end]), values: Array(values[start * dim..<end * dim]), dim: dim,
                                        metadata: metadata))
        }
        return (try T.write(try T.stream(chunks), name: "\(prefix).vec"), ids, values)
    }

    func path(_ name: String) -> String { T.temporaryDirectory().appendingPathComponent(name).path }

    /// query → set of doc ids, from TSV output.
    func neighbourSets(_ text: String) -> [String: Set<String>] {
        var sets: [String: Set<String>] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            sets[String(f[0]), default: []].insert(String(f[2]))
        }
        return sets
    }

    func recall(_ found: String, _ truth: String) -> Double {
        let f = neighbourSets(found), t = neighbourSets(truth)
        let hits = t.reduce(0) { $0 + $1.value.intersection(f[$1.key] ?? []).count }
        return Double(hits) / Double(t.values.reduce(0) { $0 + $1.count })
    }

    @Test func crcIsCastagnoli() {
        // The check value of CRC-32C (RFC 3720 B.4 and every CRC catalogue).
        let bytes = Array("123456789".utf8)
        #expect(ck_crc32c(0, bytes, bytes.count) == 0xE306_9283)
        // Continuing from a CRC equals one pass.
        #expect(ck_crc32c(ck_crc32c(0, bytes, 4), Array(bytes[4...]), 5) == 0xE306_9283)
    }

    @Test func recallAgainstExactSearch() throws {
        let corpus = try clustered(3000, seed: 1, prefix: "d")
        let queries = try clustered(200, seed: 2, prefix: "q")
        let idx = path("recall.idx")
        let b = try T.run("ru-index", ["build", "-o", idx, corpus.path])
        #expect(b.status == 0, "\(b.stderr)")
        let truth = try T.run("ru-knn", ["--index", corpus.path, "-k", "10", queries.path])
        #expect(truth.status == 0, "\(truth.stderr)")
        let approx = try T.run("ru-knn", ["--index", idx, "-k", "10", queries.path])
        #expect(approx.status == 0, "\(approx.stderr)")
        #expect(approx.lines.count == 2000)
        let r = recall(approx.text, truth.text)
        #expect(r >= 0.95, "recall \(r)")
        // A wider beam finds at least as much.
        let wide = try T.run("ru-knn", ["--index", idx, "-k", "10", "--ef", "200", queries.path])
        #expect(recall(wide.text, truth.text) >= max(r, 0.99))
        // Re-ranked with the kept f32 vectors: a neighbour found has the exact search's score.
        var exactScore: [String: String] = [:]
        for line in truth.lines { let f = line.split(separator: "\t"); exactScore["\(f[0]) \(f[2])"] = String(f[3]) }
        for line in wide.lines {
            let f = line.split(separator: "\t")
            if let s = exactScore["\(f[0]) \(f[2])"] { #expect(s == String(f[3]), "\(line)") }
        }
        // --exact over the stored f32 vectors is the exact search, byte for byte.
        let exhaustive = try T.run("ru-knn", ["--index", idx, "-k", "10", "--exact", queries.path])
        #expect(exhaustive.text == truth.text)
        // JSONL and --min-score as for streams.
        let j = try T.run("ru-knn", ["--index", idx, "-k", "3", "--exact", "--format", "jsonl", "--min-score", "0.9", queries.path])
        let jt = try T.run("ru-knn", ["--index", corpus.path, "-k", "3", "--format", "jsonl", "--min-score", "0.9", queries.path])
        #expect(j.status == 0 && j.text == jt.text)
    }

    /// Huge beam widths and k are bounded by the index (they once sized the scratch and
    /// aborted on the allocation); a huge --ef-construction is a usage error.
    @Test func hugeWidthsAreBoundedByTheIndex() throws {
        let corpus = try clustered(300, seed: 5, prefix: "h")
        let queries = try clustered(20, seed: 6, prefix: "hq")
        let idx = path("huge.idx")
        #expect(try T.run("ru-index", ["build", "-o", idx, corpus.path]).status == 0)
        let exact = try T.run("ru-knn", ["--index", idx, "-k", "5", "--exact", queries.path])
        let wide = try T.run("ru-knn", ["--index", idx, "-k", "5", "--ef", "99999999999999999", queries.path])
        #expect(wide.status == 0, "\(wide.stderr)")
        // A beam as wide as the graph finds what exact search finds.
        #expect(recall(wide.text, exact.text) == 1)
        let all = try T.run("ru-knn", ["--index", idx, "-k", "99999999999999999", queries.path])
        #expect(all.status == 0, "\(all.stderr)")
        #expect(all.lines.count == 20 * 300)
        let build = try T.run("ru-index", ["build", "--ef-construction", "99999999999999999", "-o", path("no.idx"), corpus.path])
        #expect(build.status == 64 && build.stderr.contains("1 to 65536"), "\(build.stderr)")
    }

    @Test func codesOnlyIndexIsSmallerAndStillFinds() throws {
        let corpus = try clustered(2000, seed: 3, prefix: "d")
        let queries = try clustered(100, seed: 4, prefix: "q")
        let full = path("full.idx"), small = path("small.idx")
        #expect(try T.run("ru-index", ["build", "-o", full, corpus.path]).status == 0)
        #expect(try T.run("ru-index", ["build", "--vectors", "none", "-o", small, corpus.path]).status == 0)
        let fullSize = try FileManager.default.attributesOfItem(atPath: full)[.size] as! Int
        let smallSize = try FileManager.default.attributesOfItem(atPath: small)[.size] as! Int
        #expect(smallSize < fullSize - 2000 * 32 * 4 + 64)
        let truth = try T.run("ru-knn", ["--index", corpus.path, "-k", "10", queries.path])
        let approx = try T.run("ru-knn", ["--index", small, "-k", "10", "--ef", "100", queries.path])
        #expect(approx.status == 0, "\(approx.stderr)")
        #expect(recall(approx.text, truth.text) >= 0.95)
    }

    @Test func buildIsDeterministicWhateverTheThreads() throws {
        let corpus = try clustered(2500, seed: 5, prefix: "d")
        var files: [Data] = []
        for threads in ["1", "2", "3"] {
            let out = path("det\(threads).idx")
            let r = try T.run("ru-index", ["build", "--threads", threads, "--seed", "7", "-o", out, corpus.path])
            #expect(r.status == 0, "\(r.stderr)")
            files.append(try Data(contentsOf: URL(fileURLWithPath: out)))
        }
        #expect(files[0] == files[1] && files[1] == files[2])
        let other = path("det-seed.idx")
        #expect(try T.run("ru-index", ["build", "--seed", "8", "-o", other, corpus.path]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: other)) != files[0])
    }

    @Test func addThenSearchEqualsBuildFromAll() throws {
        let a = try clustered(1200, seed: 6, prefix: "a")
        let b = try clustered(800, seed: 7, prefix: "b")
        let queries = try clustered(100, seed: 8, prefix: "q")
        let all = path("all.idx"), grown = path("grown.idx")
        #expect(try T.run("ru-index", ["build", "-o", all, a.path, b.path]).status == 0)
        #expect(try T.run("ru-index", ["build", "-o", grown, a.path]).status == 0)
        let add = try T.run("ru-index", ["add", grown, b.path])
        #expect(add.status == 0, "\(add.stderr)")
        let info = try T.run("ru-index", ["info", "--json", grown])
        #expect(info.text.contains("\"vectors\": 2000"), "\(info.text)")
        #expect(try T.run("ru-index", ["verify", grown]).status == 0)
        // Exhaustive: identical, positions (ties) included.
        let x1 = try T.run("ru-knn", ["--index", all, "-k", "10", "--exact", queries.path])
        let x2 = try T.run("ru-knn", ["--index", grown, "-k", "10", "--exact", queries.path])
        #expect(x1.status == 0 && x1.text == x2.text)
        // The graphs differ (insertion order), the searches agree: the same results with a
        // beam that covers the graph, the same recall at the default.
        let g1 = try T.run("ru-knn", ["--index", all, "-k", "10", "--ef", "2000", queries.path])
        let g2 = try T.run("ru-knn", ["--index", grown, "-k", "10", "--ef", "2000", queries.path])
        #expect(g1.text == x1.text && g2.text == x1.text)
        let d1 = try T.run("ru-knn", ["--index", all, "-k", "10", queries.path])
        let d2 = try T.run("ru-knn", ["--index", grown, "-k", "10", queries.path])
        #expect(recall(d1.text, x1.text) >= 0.95 && recall(d2.text, x1.text) >= 0.95)
    }

    /// Vectors that share one large direction, as embeddings do (far more so from an untrained
    /// model): format 2 codes x − μ, so an index without the f32 vectors still ranks them. With
    /// codes of x (format 1), data made this way with Gaussian noise (3,000 × 64, mean cosine 0.95
    /// to the mean direction) held 0.77 of the true top 10 at the default --ef; format 2 0.97.
    @Test func anisotropicVectorsWithoutStoredVectors() throws {
        let dim = 64
        var random = T.Random(seed: 21)
        let common = random.vectors(1, dim), centres = random.vectors(20, dim)
        func stream(_ count: Int, _ prefix: String) throws -> String {
            var values: [Float] = []
            for _ in 0..<count {
                let k = Int(random.next() % 20)
                for j in 0..<dim { values.append(0.9 * common[j] + 0.15 * centres[k * dim + j] + 0.13 * random.float()) }
            }
            let ids = (0..<count).map { "\(prefix)\($0)" }
            return try T.write(try T.stream([T.vectorChunk(ids: ids, values: values, dim: dim)]), name: "\(prefix).vec")
        }
        let corpus = try stream(3000, "aniso-d"), queries = try stream(200, "aniso-q")
        let idx = path("aniso.idx")
        let b = try T.run("ru-index", ["build", "--vectors", "none", "-o", idx, corpus])
        #expect(b.status == 0, "\(b.stderr)")
        let truth = try T.run("ru-knn", ["--index", corpus, "-k", "10", queries])
        let approx = try T.run("ru-knn", ["--index", idx, "-k", "10", queries])
        #expect(truth.status == 0 && approx.status == 0, "\(approx.stderr)")
        #expect(recall(approx.text, truth.text) >= 0.93, "recall \(recall(approx.text, truth.text))")
        let info = try T.run("ru-index", ["info", "--json", idx])
        #expect(info.text.contains("\"format_version\": 2") && info.text.contains("\"mean\": 256"), "\(info.text)")
        #expect(try T.run("ru-index", ["verify", idx]).status == 0)
    }

    /// A version 1 file (a 256-byte header, seven sections, no mean) still opens, searches and
    /// verifies, and `add` rewrites it as version 2. Made here from a version 2 file: the same
    /// sections less the last two, under a version 1 header.
    @Test func readsFormatVersion1() throws {
        let a = try clustered(1000, seed: 22, prefix: "a"), more = try clustered(500, seed: 23, prefix: "m")
        let queries = try clustered(50, seed: 24, prefix: "q")
        let v2 = path("v2.idx")
        #expect(try T.run("ru-index", ["build", "-o", v2, a.path]).status == 0)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: v2)))
        func u64(_ at: Int) -> Int { Int(bytes[at..<at + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }) }
        let metadataEnd = u64(64 + 6 * 24) + u64(64 + 6 * 24 + 8)
        var v1 = Array(bytes[0..<256]) + Array(bytes[256..<metadataEnd])
        v1[8] = 1; v1[12] = 0; v1[13] = 1  // version 1, header size 256
        for i in 232..<256 { v1[i] = 0 }
        let crc = ck_crc32c(0, v1, 252)
        for i in 0..<4 { v1[252 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        let old = try T.write(Data(v1), name: "v1.idx")
        let info = try T.run("ru-index", ["info", "--json", old])
        #expect(info.status == 0 && info.text.contains("\"format_version\": 1") && !info.text.contains("\"mean\""), "\(info.stderr)\(info.text)")
        #expect(try T.run("ru-index", ["verify", old]).status == 0)
        let exact = try T.run("ru-knn", ["--index", a.path, "-k", "5", queries.path])
        let wide = try T.run("ru-knn", ["--index", old, "-k", "5", "--ef", "1000", queries.path])
        #expect(wide.status == 0 && wide.text == exact.text, "\(wide.stderr)")
        let add = try T.run("ru-index", ["add", old, more.path])
        #expect(add.status == 0, "\(add.stderr)")
        #expect(try T.run("ru-index", ["info", "--json", old]).text.contains("\"format_version\": 2"))
        #expect(try T.run("ru-index", ["verify", old]).status == 0)
        let both = try T.run("ru-knn", ["--index", old, "-k", "5", "--exact", queries.path])
        #expect(both.status == 0 && both.lines.count == 250)
        let grown = try T.run("ru-knn", ["--index", old, "-k", "5", "--ef", "1500", queries.path])
        #expect(grown.status == 0 && grown.text == both.text, "\(grown.stderr)")
    }

    @Test func shardsMergeAsOneIndex() throws {
        let a = try clustered(1000, seed: 9, prefix: "a")
        let b = try clustered(1000, seed: 10, prefix: "b")
        let queries = try clustered(100, seed: 11, prefix: "q")
        let one = path("one.idx"), sa = path("sa.idx"), sb = path("sb.idx")
        #expect(try T.run("ru-index", ["build", "-o", one, a.path, b.path]).status == 0)
        #expect(try T.run("ru-index", ["build", "-o", sa, a.path]).status == 0)
        #expect(try T.run("ru-index", ["build", "-o", sb, b.path]).status == 0)
        let x1 = try T.run("ru-knn", ["--index", one, "-k", "10", "--exact", queries.path])
        let x2 = try T.run("ru-knn", ["--index", sa, "--index", sb, "-k", "10", "--exact", queries.path])
        #expect(x1.status == 0 && x2.status == 0 && x1.text == x2.text)
        let g = try T.run("ru-knn", ["--index", sa, "--index", sb, "-k", "10", "--ef", "1000", queries.path])
        #expect(g.text == x1.text)
        let d = try T.run("ru-knn", ["--index", sa, "--index", sb, "-k", "10", queries.path])
        #expect(recall(d.text, x1.text) >= 0.95)
        // Streams are not shards.
        let mixed = try T.run("ru-knn", ["--index", sa, "--index", b.path, "-k", "10", queries.path])
        #expect(mixed.status == 2 && mixed.stderr.contains(b.path))
        #expect(try T.run("ru-knn", ["--index", a.path, "--index", b.path, queries.path]).status == 64)
        #expect(try T.run("ru-knn", ["--index", a.path, "--ef", "10", queries.path]).status == 64)
    }

    @Test func damagedAndForeignFilesAreRejectedInOneLine() throws {
        let corpus = try clustered(600, seed: 12, prefix: "d")
        let queries = try clustered(20, seed: 13, prefix: "q")
        let good = path("good.idx")
        #expect(try T.run("ru-index", ["build", "-o", good, corpus.path]).status == 0)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        func expectRejected(_ data: Data, _ name: String, _ words: String, verify: Bool = false) throws {
            let p = try T.write(data, name: name)
            for args in verify ? [["verify", p]] : [["info", p], ["verify", p]] {
                let r = try T.run("ru-index", args)
                #expect(r.status == 2, "\(name): \(r.stderr)")
                #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(p) && r.stderr.contains(words), "\(name): \(r.stderr)")
            }
            if !verify {
                let r = try T.run("ru-knn", ["--index", p, queries.path])
                if IndexFormat.isIndex(Array(data.prefix(8))) {
                    #expect(r.status == 2 && r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(p), "\(name): \(r.stderr)")
                }
            }
        }
        var header = bytes; header[20] ^= 1
        try expectRejected(header, "header.idx", "checksum")
        try expectRejected(bytes.prefix(bytes.count - 1), "truncated.idx", "truncated")
        try expectRejected(bytes.prefix(100), "short.idx", "truncated")
        var version = bytes; version[8] = 9
        try expectRejected(version, "version.idx", "version 9")
        try expectRejected(bytes + Data([0]), "trailing.idx", "after its last section")
        try expectRejected(Data("hello, world\n".utf8), "text.idx", "not an index file")
        try expectRejected(try Data(contentsOf: URL(fileURLWithPath: corpus.path)), "stream.idx", "not an index file")
        // A flipped byte in a section: verify's checksum finds it.
        var body = bytes; body[body.count / 2] ^= 0x40
        try expectRejected(body, "body.idx", "checksum", verify: true)
        // Neighbour numbers past the nodes (the header intact): the search stops with an error.
        let file = try GraphIndexFile(path: good)
        let neighbours = file.sectionSizes[2].bytes
        var wild = bytes
        // The neighbours' offset: the section table's third entry (docs/INDEX.md).
        let offset = Int(UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 64 + 2 * 24, as: UInt64.self) }))
        for i in stride(from: offset, to: offset + neighbours, by: 4) { wild[i] = 0xFE; wild[i + 1] = 0xFF; wild[i + 2] = 0xFF; wild[i + 3] = 0x7F }
        let wp = try T.write(wild, name: "wild.idx")
        let r = try T.run("ru-knn", ["--index", wp, queries.path])
        #expect(r.status == 2 && r.stderr.contains(wp) && r.stderr.contains("corrupt"), "\(r.stderr)")
        let v = try T.run("ru-index", ["verify", wp])
        #expect(v.status == 2 && v.stderr.contains("neighbors"))
    }

    @Test func concurrentReadersShareOneFile() throws {
        let corpus = try clustered(2000, seed: 14, prefix: "d")
        let queries = try clustered(300, seed: 15, prefix: "q")
        let idx = path("shared.idx")
        #expect(try T.run("ru-index", ["build", "-o", idx, corpus.path]).status == 0)
        let reference = try T.run("ru-knn", ["--index", idx, "-k", "5", queries.path]).text
        // One slot per reader, written through a pointer: assigning into a shared Swift array
        // from several threads is a race on the whole array (TSan reported it).
        nonisolated(unsafe) let outputs = UnsafeMutableBufferPointer<String>.allocate(capacity: 6)
        outputs.initialize(repeating: "")
        defer { outputs.deinitialize(); outputs.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 6) { i in
            outputs[i] = (try? T.run("ru-knn", ["--index", idx, "-k", "5", "--threads", "1", queries.path]).text) ?? "failed"
        }
        #expect(!reference.isEmpty)
        for o in outputs { #expect(o == reference) }
    }

    @Test func mixingModelsWarns() throws {
        var m1 = StreamMetadata(); m1["model"] = .object([("id", .string("one")), ("digest", .string("aaaa"))])
        var m2 = StreamMetadata(); m2["model"] = .object([("id", .string("two")), ("digest", .string("bbbb"))])
        let corpus = try clustered(300, seed: 16, prefix: "d", metadata: m1)
        let queries = try clustered(5, seed: 17, prefix: "q", metadata: m2)
        let idx = path("model.idx")
        #expect(try T.run("ru-index", ["build", "-o", idx, corpus.path]).status == 0)
        let info = try T.run("ru-index", ["info", idx])
        #expect(info.text.contains("aaaa"))
        let r = try T.run("ru-knn", ["--index", idx, queries.path])
        #expect(r.status == 0 && r.stderr.contains("different models"), "\(r.stderr)")
        let add = try T.run("ru-index", ["add", idx, queries.path])
        #expect(add.status == 0 && add.stderr.contains("different models"), "\(add.stderr)")
    }
}
