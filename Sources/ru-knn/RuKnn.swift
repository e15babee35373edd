import ArgumentParser
import RuCore
import RuVectors
import RuSearch
import RuCLI

@main
struct RuKnn: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ru-knn",
        abstract: "Nearest-neighbour search by cosine similarity (exact over vector streams, approximate over ru-index files), and the merging of searches over shards.",
        discussion: """
        `ru-knn [search] --index CORPUS QUERIES` searches (the subcommand name may be left out); `ru-knn merge RESULTS…` merges the results of the same queries searched against shards of a corpus into the results of one search over all of them.

        Examples:
          ru-embed < questions.txt | ru-knn --index docs.vec -k 5
          ru-index build -o docs.idx docs.vec; ru-knn --index docs.idx -k 5 q.vec
          for s in 1 2 3; do ru-knn --index shard$s.vec -k 5 q.vec > hits$s.tsv; done
          ru-knn merge -k 5 hits1.tsv hits2.tsv hits3.tsv > hits.tsv

        Exit status: 0 on success, 2 on bad data, 64 on a usage error.
        """,
        version: RuEmbedVersion.string,
        subcommands: [Search.self, Merge.self],
        defaultSubcommand: Search.self
    )
}

struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Nearest-neighbour search by cosine similarity: exact over a vector stream, approximate over index files.",
        discussion: """
        For every query vector, finds the K corpus vectors with the highest cosine and prints `query_id<TAB>rank<TAB>doc_id<TAB>score` lines, rank from 1, score with 6 decimals; equal scores keep corpus order. With --format jsonl it prints one object per query: {"query_id": "...", "neighbors": [{"rank": 1, "doc_id": "...", "score": 0.93}, ...]} (a query with no neighbour gets an empty list).

        The corpus is streamed in blocks and scored against a batch of queries with one matrix product per block, so memory is bounded by the block, the batch and K, not by the corpus. The product is int8 (VNNI) with a rigorous bound on its error: only documents that could enter a query's top K are scored again in f32, so the result is the exact f32 one (--no-screen scores everything in f32). When the queries exceed one batch the corpus is read again for each batch, so it must then be a regular file.

        An --index file made by ru-index (recognised by its magic, whatever its name) is memory-mapped and searched approximately: a beam search of width --ef over its graph and int8 codes, the beam then re-scored with the stored f32 vectors (exact cosines) or, in an index built with --vectors none, with the codes. Several --index files are shards, searched as one index (equal scores in argument order). --exact scores every stored vector instead (docs/INDEX.md).

        Examples:
          ru-embed --prompt passage < docs.txt > docs.vec
          ru-embed < questions.txt | ru-knn --index docs.vec -k 5
          ru-knn --index docs.vec --format jsonl --min-score 0.5 queries.vec > hits.jsonl
          ru-knn --index part1.idx --index part2.idx --ef 32 -k 10 queries.vec

        Exit status: 0 on success, 2 on bad data, 64 on a usage error.
        """
    )

    @Option(name: .customLong("index"), help: "The corpus: a vector stream (`-`: standard input), or an index file made by ru-index, recognised by its magic; repeat --index for index shards, searched as one.")
    var index: [String]

    @Option(help: "Index files: the search's beam width (at least -k; default \(Search.defaultEf)). Higher finds more of the true neighbours, more slowly (docs/INDEX.md has the curve).")
    var ef: Int?

    @Flag(help: "Index files: score every stored vector instead of searching the graph (exact when the index keeps its f32 vectors).")
    var exact = false

    @Option(name: .short, help: "Neighbours per query.")
    var k: Int = 10

    @Option(help: "Leave out neighbours scoring below this.")
    var minScore: Float?

    @Option(help: "Output: tsv (query_id, rank, doc_id, score lines) or jsonl (one JSON object per query).")
    var format: ResultFormat = .tsv

    // In ru-tok and ru-embed --jsonl says the input is JSON lines: here it was the output, so
    // it is --format jsonl now and the old spelling stays, hidden, for existing scripts.
    @Flag(help: ArgumentHelp("The same as --format jsonl.", visibility: .hidden))
    var jsonl = false

    @Option(help: "Queries scored per pass over the corpus.")
    var batch: Int = 4096

    @Option(help: "Corpus vectors per matrix product.")
    var block: Int = 8192

    @OptionGroup var threads: ThreadOptions

    @Flag(help: "Score every document with f32 products instead of screening with int8 first (same results, slower).")
    var noScreen = false

    @Flag(help: "Print each score as the shortest decimal that reads back as the same f32 (instead of 6 decimals): what `ru-knn merge` needs to order shards' results exactly as one search would.")
    var exactScores = false

    @OptionGroup var verbose: VerboseOptions

    @Argument(help: "The query stream (`-` or none: standard input).")
    var queries: String = "-"

    func validate() throws {
        if k < 1 { throw ValidationError("-k must be at least 1") }
        if batch < 1 || block < 1 { throw ValidationError("--batch and --block must be at least 1") }
        if index.contains("-") && queries == "-" { throw ValidationError("the index and the queries cannot both be standard input") }
        if let ef, ef < 1 { throw ValidationError("--ef must be at least 1") }
    }

    static let defaultEf = 64

    func run() throws {
        ToolRuntime.start("ru-knn")
        threads.apply()
        try ToolRuntime.run {
            let indexFiles = index.map(IndexFormat.fileIsIndex)
            if indexFiles.contains(true) { return try searchIndexes() }
            if index.count > 1 {
                throw RuEmbedError.invalidArgument("several --index are shards of an index made by ru-index; \(index[0]) is a vector stream (search each stream, then ru-knn merge)")
            }
            if ef != nil || exact {
                throw RuEmbedError.invalidArgument("--ef and --exact are for index files; \(index[0]) is a vector stream, searched exactly")
            }
            let index = self.index[0]
            let queryRecords = try VectorRecords(path: queries)
            queryRecords.reader.input.beforeWaiting = { try ByteOutput.standardOutput.flush() }
            var pass = 0
            while true {
                var queryValues: [Float] = []
                var queryIDs: [String] = []
                let n = try queryRecords.nextBlock(maxRows: batch, values: &queryValues, ids: &queryIDs, stopBeforeWaiting: true)
                if n == 0 && pass > 0 { return }
                pass += 1
                let corpus = try VectorRecords(path: index)
                if pass > 1 && !corpus.reader.input.isRegularFile {
                    throw RuEmbedError("\(corpus.name): the queries exceed one batch (--batch \(batch)), so the index must be a regular file that can be read again")
                }
                if try corpus.peek(), n > 0 {
                    let dim = corpus.shape!.dim
                    if dim != queryValues.count / n {
                        throw RuEmbedError("\(corpus.name) has \(dim)-d vectors, the queries in \(queryRecords.name) are \(queryValues.count / n)-d")
                    }
                    if pass == 1 { VectorRecords.incomparability(queryRecords, corpus).forEach(ToolRuntime.warn) }
                }
                guard n > 0 else {
                    // No queries: still read the corpus through, so a bad index is reported.
                    while try corpus.next({ _, _ in }) != nil {}
                    return
                }
                // Per pass, not per block: the search keeps its matmuls, made for one thread count.
                Parallel.rebalance(force: true)
                let search = ExactSearch(queries: queryValues, dim: queryValues.count / n, k: k,
                                         method: noScreen ? .f32 : .int8Screened)
                // f32 vectors flagged normalized are used as they are; others are normalised here.
                let normalized = corpus.shape.map { $0.normalized && $0.dtype == .f32 } ?? false
                try corpus.forEachBlock(maxRows: block) { rows, m, ids in
                    search.add(block: rows, count: m, ids: ids, normalized: normalized)
                }
                if verbose.verbose {
                    let pairs = max(1, search.corpusCount * n)
                    let share = NumberFormat.fixed(100 * Double(search.exactScores) / Double(pairs), decimals: 3)
                    ToolRuntime.warn("\(n) queries × \(search.corpusCount) documents; \(noScreen ? "all scored in f32" : "\(search.exactScores) pairs (\(share) %) passed the int8 screen")")
                }
                try write(search.results(), queryIDs: queryIDs)
                try ByteOutput.standardOutput.flush()
            }
        }
    }

    /// Searches index files (shards searched one after another and merged by score, then by
    /// position with the shards in argument order), one batch of queries at a time.
    private func searchIndexes() throws {
        let files = try index.map { path -> GraphIndexFile in
            guard IndexFormat.fileIsIndex(path) else {
                if path == "-" { throw RuEmbedError.invalidArgument("an index file cannot be standard input (it is memory-mapped)") }
                return try GraphIndexFile(path: path)  // reports what is wrong with it
            }
            return try GraphIndexFile(path: path)
        }
        for f in files.dropFirst() {
            if f.dim != files[0].dim { throw RuEmbedError("\(f.name) has \(f.dim)-d vectors, \(files[0].name) \(files[0].dim)-d") }
            if let a = files[0].metadata.modelDigest, let b = f.metadata.modelDigest, a != b {
                ToolRuntime.warn("warning: \(files[0].name) and \(f.name) were made by different models (digest \(a) vs \(b)); their cosines mean little")
            }
        }
        var bases: [Int] = []
        var total = 0
        for f in files { bases.append(total); total += f.count }
        let queryRecords = try VectorRecords(path: queries)
        queryRecords.reader.input.beforeWaiting = { try ByteOutput.standardOutput.flush() }
        var pass = 0
        var distances: UInt64 = 0
        var searched = 0
        let started = monotonicSeconds()
        // One buffer for every batch: a fresh one per batch is faulted in again.
        var queryValues: [Float] = []
        var queryIDs: [String] = []
        while true {
            queryValues.removeAll(keepingCapacity: true)
            queryIDs.removeAll(keepingCapacity: true)
            let n = try queryRecords.nextBlock(maxRows: batch, values: &queryValues, ids: &queryIDs, stopBeforeWaiting: true)
            if n == 0 { break }
            pass += 1
            let dim = queryValues.count / n
            if dim != files[0].dim {
                throw RuEmbedError("\(files[0].name) has \(files[0].dim)-d vectors, the queries in \(queryRecords.name) are \(dim)-d")
            }
            if pass == 1 { files.forEach { GraphIndexFile.incomparability(queryRecords, $0).forEach(ToolRuntime.warn) } }
            Parallel.rebalance(force: true)
            var perFile: [[[Neighbor]]] = []
            if exact {
                for (f, base) in zip(files, bases) {
                    let search = ExactSearch(queries: queryValues, dim: dim, k: k, method: noScreen ? .f32 : .int8Screened)
                    try f.exactSearch(search)
                    perFile.append(search.results().map { $0.map { var n = $0; n.index += base; return n } })
                }
            } else {
                queryValues.withUnsafeMutableBufferPointer { VectorMath.l2NormalizeRows($0.baseAddress!, count: n, dim: dim) }
                for (f, base) in zip(files, bases) {
                    perFile.append(try queryValues.withUnsafeBufferPointer {
                        try f.search(queries: $0.baseAddress!, count: n, k: k, ef: ef ?? Search.defaultEf, base: base, distances: &distances)
                    })
                }
            }
            let merged = files.count == 1 ? perFile[0] : (0..<n).map { q in mergeNeighbors(perFile.map { $0[q] }, k: k) }
            searched += n
            try write(merged, queryIDs: queryIDs)
            try ByteOutput.standardOutput.flush()
        }
        if verbose.verbose {
            let seconds = monotonicSeconds() - started
            ToolRuntime.warn("\(searched) queries × \(total) indexed vectors in \(files.count) file\(files.count == 1 ? "" : "s"): \(exact ? "exhaustive" : "\(Int((Double(distances) / Double(max(1, searched))).rounded())) int8 similarities per query"), \(NumberFormat.fixed(seconds, decimals: 3)) s")
        }
    }

    private func write(_ results: [[Neighbor]], queryIDs: [String]) throws {
        // Formatted on every thread, written in order: formatting 100,000 lines took 0.029 s
        // on one thread of 0.36 s for 10,000 queries against a 100,000-vector index (perf,
        // 2026-12-03 Zen 5), the other core idle meanwhile.
        let jsonl = self.jsonl || format == .jsonl
        let piece = 64
        nonisolated(unsafe) var texts = [String](repeating: "", count: results.count)
        texts.withUnsafeMutableBufferPointer { texts in
            let texts = texts
            Parallel.forPieces(results.count, piece: piece) { _, lo, hi in
                for q in lo..<hi { texts[q] = lines(results[q], queryID: queryIDs[q], jsonl: jsonl) }
            }
        }
        let out = ByteOutput.standardOutput
        for text in texts { try out.write(text) }
    }

    /// One query's output: TSV lines, or one JSON line.
    private func lines(_ neighbors: [Neighbor], queryID: String, jsonl: Bool) -> String {
        let kept = minScore.map { min in neighbors.filter { $0.score >= min } } ?? neighbors
        if jsonl {
            var line = "{\"query_id\": "
            JSONValue.writeString(queryID, to: &line)
            line += ", \"neighbors\": ["
            for (rank, n) in kept.enumerated() {
                if rank > 0 { line += ", " }
                line += "{\"rank\": \(rank + 1), \"doc_id\": "
                JSONValue.writeString(n.id, to: &line)
                line += ", \"score\": \(scoreText(n.score))}"
            }
            line += "]}\n"
            return line
        }
        let queryID = TSV.escape(queryID)
        var text = ""
        for (rank, n) in kept.enumerated() {
            text += "\(queryID)\t\(rank + 1)\t\(TSV.escape(n.id))\t\(scoreText(n.score))\n"
        }
        return text
    }
}

extension Search {
    func scoreText(_ score: Float) -> String {
        exactScores ? "\(score)" : NumberFormat.fixed(Double(score))
    }
}

enum ResultFormat: String, ExpressibleByArgument, CaseIterable {
    case tsv, jsonl
}
