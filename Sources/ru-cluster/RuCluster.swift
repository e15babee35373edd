import ArgumentParser
import RuCore
import RuVectors
import RuSearch
import RuCLI
#if canImport(Glibc)
import Glibc
#endif

@main
struct RuCluster: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ru-cluster",
        abstract: "Spherical k-means and near-duplicate grouping of vector streams.",
        discussion: """
        Reads vector streams (any element type; every record normalised first) and prints one `id<TAB>cluster<TAB>score` line per record, in input order: the cluster from 0, the score the record's cosine to its cluster's centroid with 6 decimals. With --format jsonl: {"id": "...", "cluster": 3, "score": 0.912345} per record.

        -k K: spherical k-means (cosine), in two passes over the input. The first pass keeps a uniform sample of 256*K records (reservoir sampling; FAISS's default size too: every round costs time in proportion to the records trained on, while the others are assigned once). Training seeds by greedy k-means++ from a subset of at most 16*K sampled records, runs up to 10 rounds on that subset, then alternates assignment and update over the sample for --iterations rounds or until no record changes cluster (-v prints the mean cosine of each round and where the time went; without it, when standard error is a terminal and the lines go elsewhere, a status line says what it is doing). An empty cluster is re-seeded with the record farthest from its centroid. The second pass assigns every record to the trained centroids and prints the lines. --sample N trains on N records instead; --sample 0 on all of them.

        When every input is a regular file, the second pass reads the files again, so memory is the sample, not the input (a file whose records or ids change between the passes is an error, once the lines before are printed); standard input and pipes are held in memory. The same --seed gives the same clusters whatever the thread count and whichever way the input comes.

        Assignment scores blocks of records against every centroid with one int8 matrix product whose error is bounded rigorously, and computes the f32 cosine only for the centroids that could be the best: the clusters are those of f32 products (--no-screen computes every cosine in f32). During training, bounds on how far the centroids moved skip the records that cannot change cluster.

        --centroids FILE writes the centroids as a normalised f32 vector stream with ids 0 to K-1, so `ru-knn --index FILE -k 1 new.vec` assigns new records.

        --threshold T: near-duplicate groups instead: records with cosine >= T are linked, and a group is a connected component of those links (union-find over all pairs, exactly: so a chain a~b~c is one group even when a and c are further apart). Groups are numbered by their first record, which is the group's representative; the score is the cosine to it. The records are held in memory. From 16,384 records on, a k-means partition prunes the comparisons without losing a pair: two records with cosine >= T lie within sqrt(2-2T) of each other, so a record is compared only with its own cluster and with the clusters whose boundary it lies that close to (on 200,000 embedding-like records at T = 0.95, 12 % of all pairs); the work still grows faster than the records, and at low thresholds, when the partition would not save half, every pair is compared.

        Examples:
          ru-embed < docs.txt | ru-cluster -k 50 --centroids topics.vec > topics.tsv
          ru-embed < new.txt | ru-knn --index topics.vec -k 1
          ru-cluster --threshold 0.95 docs.vec | awk -F'\\t' '!seen[$2]++' | cut -f1   # one id per group

        Exit status: 0 on success, 2 on bad data, 64 on a usage error.
        """,
        version: RuEmbedVersion.string
    )

    @Option(name: .short, help: "Clusters for k-means.")
    var k: Int?

    @Option(help: "Near-duplicate grouping: link records whose cosine is at least this (instead of -k).")
    var threshold: Float?

    @Option(help: "k-means rounds at most (it stops early when no record changes cluster).")
    var iterations: Int = 20

    @Option(help: "Seed for the sample and k-means++.")
    var seed: UInt64 = 1

    @Option(help: "Train on this many records drawn with --seed, then assign all (default: 256*K; 0: train on all).")
    var sample: Int?

    @Option(help: ArgumentHelp("Write the centroids to this file as a vector stream (f32, normalised, ids 0 to K-1).", valueName: "file"))
    var centroids: String?

    @Flag(help: "Score records against the centroids with f32 products instead of screening with int8 first (same clusters, slower).")
    var noScreen = false

    @Option(help: "Output: tsv (id, cluster, score lines) or jsonl (one JSON object per record).")
    var format: ClusterFormat = .tsv

    @OptionGroup var threads: ThreadOptions

    @OptionGroup var verbose: VerboseOptions

    @Argument(help: "Input vector streams; '-' or none for standard input.")
    var inputs: [String] = []

    func validate() throws {
        if (k == nil) == (threshold == nil) { throw ValidationError("give either -k (k-means) or --threshold (near duplicates)") }
        if let k, k < 1 { throw ValidationError("-k must be at least 1") }
        if let threshold, !(threshold >= -1 && threshold <= 1) { throw ValidationError("--threshold must be between -1 and 1") }
        if iterations < 0 { throw ValidationError("--iterations must be 0 or more") }
        if let sample, sample < 0 { throw ValidationError("--sample must be 0 or more") }
        if threshold != nil && (centroids != nil || sample != nil) {
            throw ValidationError("--centroids and --sample go with -k, not --threshold")
        }
        if inputs.filter({ $0 == "-" }).count > 1 { throw ValidationError("standard input can be read only once") }
    }

    func run() throws {
        ToolRuntime.start("ru-cluster")
        threads.apply()
        try ToolRuntime.run {
            let paths = inputs.isEmpty ? ["-"] : inputs
            if let threshold { try groupNearDuplicates(paths, threshold: threshold) } else { try kMeans(paths, k: k!) }
        }
    }

    /// Records read a block at a time: small enough that normalising and sampling a block
    /// happen in the L2 cache (reading 256-row blocks took 0.45–0.53 s of bench/cluster's first
    /// pass where 4,096-row blocks took 0.63–0.65 s, Zen 3).
    static let readRows = 256

    private func names(_ paths: [String]) -> String {
        paths.map { $0 == "-" ? "standard input" : $0 }.joined(separator: ", ")
    }

    /// The sum of the regular files' sizes (nil when one cannot be read).
    private static func totalBytes(_ paths: [String]) -> Int? {
        var total = 0
        for path in paths {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            total += Int(info.st_size)
        }
        return total
    }

    /// k-means in two passes over the input. The first keeps a uniform sample (reservoir
    /// sampling: the input's length is not known before its end), normalised once drawn; the
    /// centroids are trained on the sample; the second pass assigns every record not in the
    /// sample and prints the lines. When every input is a regular file the second pass reads the
    /// files again, so memory is the sample and a block whatever the input's size; otherwise
    /// (standard input, a pipe) the records are held from the first pass.
    private func kMeans(_ paths: [String], k: Int) throws {
        let started = monotonicSeconds()
        // stat, not open: opening a FIFO to look at it would end its writer's stream.
        let rereadable = paths.allSatisfy { path in
            var info = stat()
            return path != "-" && stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        }
        // 256·K saturates: a huge -k is refused below, once the records are counted.
        let capacity = sample == 0 ? Int.max : max(k, sample ?? (k > Int.max / 256 ? Int.max : 256 * k))
        // What it is doing, on a terminal when the lines go elsewhere and without -v (which
        // prints each round instead).
        let status = ToolRuntime.TerminalProgress(enabled: isatty(2) == 1 && isatty(1) == 0 && !verbose.verbose)
        defer { status.finish() }
        var reservoir: ReservoirSample?
        var workspace: SphericalKMeans.Workspace?
        var held: RowBuffer?
        var heldIDs: [String] = []
        var shape = InputShape()
        var counts: [Int] = []
        // The ids of a pass (within this process): the second reading must see the same records.
        var idHash = Hasher()
        for path in paths {
            let records = try VectorRecords(path: path)
            if try shape.check(records) {
                reservoir = ReservoirSample(capacity: capacity, dim: shape.dim, seed: seed)
                if !rereadable { held = RowBuffer(dim: shape.dim) }
                // Regular files: at most their bytes / (4·dim) records (f32 rows; fewer for
                // narrower types), so the sample's pages can be faulted in ahead of it.
                // The training's bounds too, after them (one thread faults both in turn).
                if rereadable, let bytes = Self.totalBytes(paths) {
                    let rows = min(capacity, bytes / (4 * shape.dim))
                    try reservoir!.rows.prefault(rows: rows)
                    workspace = SphericalKMeans.Workspace(records: rows, k: k)
                    workspace!.prefault()
                }
            }
            let dim = shape.dim
            var count = 0
            // The rows as they are: the sample is normalised once it is drawn (most rows read
            // are not kept), the held ones as they are assigned.
            try records.forEachBlockView(maxRows: Self.readRows) { rows, n, ids in
                try reservoir!.offer(rows, count: n)
                try held?.append(rows, rows: n)
                if held != nil { heldIDs.append(contentsOf: ids) } else { for id in ids { idHash.combine(id) } }
                count += n
                status.show("read \(counts.reduce(count, +)) records")
            }
            counts.append(count)
        }
        let firstIDs = idHash.finalize()
        let total = counts.reduce(0, +), dim = shape.dim
        if total == 0 { throw RuEmbedError("\(names(paths)): no records to cluster") }
        if k > total { throw RuEmbedError("\(names(paths)): -k \(k) is more than the \(total) records") }
        let sampled = reservoir!
        try sampled.rows.withRows { rows in
            let n = sampled.rows.count
            Parallel.forPieces(n, piece: 256) { _, lo, hi in VectorMath.l2NormalizeRows(rows + lo * dim, count: hi - lo, dim: dim) }
        }
        let read = monotonicSeconds()
        let result = try sampled.rows.withRows { rows in
            try SphericalKMeans.train(
                points: rows, count: sampled.rows.count, dim: dim, k: k, iterations: iterations, seed: seed,
                screened: !noScreen, workspace: workspace,
                progress: { iteration, objective, recomputed in
                    if verbose.verbose {
                        ToolRuntime.warn("iteration \(iteration): mean cosine \(NumberFormat.fixed(objective)), \(recomputed) records compared with every centroid")
                    }
                    status.show("training on \(sampled.rows.count) records: round \(iteration) of at most \(iterations), mean cosine \(NumberFormat.fixed(objective, decimals: 4))", force: true)
                })
        }
        let trained = monotonicSeconds()

        // The second pass: the sampled records have their clusters from training; the others
        // are gathered into blocks (`AssignmentQueue`), assigned together, and every line
        // printed in input order once its block is done.
        let assigner = SphericalKMeans.Assigner(centroids: result.centroids, dim: dim, k: k, screened: !noScreen)
        let order = sampled.inputOrder
        var next = 0
        var position = 0
        let queue = try AssignmentQueue(assigner: assigner, dim: dim, format: format, background: Parallel.threads >= 2)
        defer { queue.stop() }
        // Rows as read (the queue normalises those it assigns); the runs between sampled
        // records are handed over whole.
        func emit(_ rows: UnsafePointer<Float>, _ n: Int, _ ids: ArraySlice<String>) throws {
            var r = 0
            while r < n {
                if next < order.count && sampled.origins[order[next]] == position + r {
                    queue.add(id: ids[ids.startIndex + r], cluster: result.assignment[order[next]], score: result.scores[order[next]])
                    next += 1
                    r += 1
                    continue
                }
                let end = next < order.count ? min(n, sampled.origins[order[next]] - position) : n
                try queue.add(ids: ids[(ids.startIndex + r)..<(ids.startIndex + end)], rows: rows + r * dim)
                r = end
            }
            position += n
            status.show("assigned \(position) / \(total)")
        }
        if let held {
            try held.withRows { rows in
                var start = 0
                while start < total {
                    let n = min(Self.readRows, total - start)
                    try emit(rows + start * dim, n, heldIDs[start..<start + n])
                    start += n
                }
            }
        } else {
            idHash = Hasher()
            for (path, count) in zip(paths, counts) {
                let records = try VectorRecords(path: path)
                let changed = RuEmbedError("\(records.name) changed while ru-cluster read it (read twice: the records, then their clusters)")
                if try records.peek(), records.shape!.dim != dim { throw changed }
                var again = 0
                try records.forEachBlockView(maxRows: Self.readRows) { rows, n, ids in
                    if again + n > count { throw changed }
                    again += n
                    for id in ids { idHash.combine(id) }
                    try emit(rows, n, ids)
                }
                if again != count {
                    throw RuEmbedError("\(records.name) changed while ru-cluster read it (\(count) records, then \(again))")
                }
            }
            if idHash.finalize() != firstIDs {
                throw RuEmbedError("\(names(paths)) changed while ru-cluster read them (other ids the second time)")
            }
        }
        try queue.finish()
        status.finish()
        if let centroids { try write(result.centroids, dim: dim, k: k, to: centroids) }
        if verbose.verbose {
            let t = result.seconds
            let seconds = { (s: Double) in NumberFormat.fixed(s, decimals: 2) }
            ToolRuntime.warn("largest centroid move per round: " + result.largestDrift.map { NumberFormat.fixed(Double($0), decimals: 4) }.joined(separator: " "))
            if result.reseeded > 0 { ToolRuntime.warn("\(result.reseeded) empty clusters re-seeded") }
            if assigner.screenedRows > 0 {
                ToolRuntime.warn("int8 screen: \(NumberFormat.fixed(Double(assigner.candidates) / Double(assigner.screenedRows), decimals: 2)) centroids scored in f32 per record assigned")
            }
            ToolRuntime.warn("trained on \(sampled.rows.count) of \(total) records; \(rereadable ? "the input read twice" : "the input held in memory")")
            ToolRuntime.warn("seconds: reading and sampling \(seconds(read - started)), seeding \(seconds(t.seeding)), rounds on the seeding pool \(seconds(t.poolRounds)), training \(seconds(t.training)), reading again, assigning and writing \(seconds(monotonicSeconds() - trained)) (waiting for assignments \(seconds(queue.waited))\(queue.switchedToCaller ? ", then assigning on every thread between reads" : ""))")
            ToolRuntime.warn("\(total) records of \(dim) dimensions in \(seconds(monotonicSeconds() - started)) s")
        }
    }

    private func groupNearDuplicates(_ paths: [String], threshold: Float) throws {
        let started = monotonicSeconds()
        var points: RowBuffer?
        var ids: [String] = []
        var shape = InputShape()
        for path in paths {
            let records = try VectorRecords(path: path)
            if try shape.check(records) { points = RowBuffer(dim: shape.dim) }
            try records.forEachBlock(maxRows: Self.readRows) { rows, n, blockIDs in
                try points!.append(rows, rows: n)
                ids.append(contentsOf: blockIDs)
            }
        }
        let n = ids.count, dim = shape.dim
        guard let points, n > 0 else { throw RuEmbedError("\(names(paths)): no records to cluster") }
        let groups = try points.withRows { rows in
            VectorMath.l2NormalizeRows(rows, count: n, dim: dim)
            return NearDuplicates.group(points: rows, count: n, dim: dim, threshold: threshold)
        }
        var lines = ClusterLines(format: format)
        for i in 0..<n {
            lines.append(id: ids[i], cluster: groups.group[i], score: groups.scores[i])
            try lines.writeWhenFull()
        }
        try lines.write()
        if verbose.verbose {
            let share = NumberFormat.fixed(Double(groups.compared) / Double(max(1, n * (n - 1) / 2)) * 100, decimals: 1)
            ToolRuntime.warn("\(n) records, \(groups.edges) pairs with cosine ≥ \(threshold), \((groups.group.max() ?? -1) + 1) groups; \(groups.compared) pairs compared (\(share) % of all\(groups.partitioned ? ", partitioned" : ""))")
            ToolRuntime.warn("\(n) records of \(dim) dimensions in \(NumberFormat.fixed(monotonicSeconds() - started, decimals: 2)) s")
        }
    }

    /// The centroids as a stream, through `OutputFile` (a temporary renamed into place: never
    /// written through a link planted at the name, and the old file kept if this fails).
    private func write(_ centroids: [Float], dim: Int, k: Int, to path: String) throws {
        try OutputFile.write(path: path) { file in
            let writer = VectorStreamWriter(output: file, dtype: .f32, dim: dim, flags: .normalized)
            for j in 0..<k {
                try writer.append(id: String(j), vector: Array(centroids[j * dim..<(j + 1) * dim]))
            }
            try writer.finish()
        }
    }

}

/// The inputs' common dimension: the first input with records sets it, the others must agree.
struct InputShape {
    private(set) var dim = 0
    private var first = ""

    /// Reads up to `records`' first chunk; true when it is the first input with records.
    mutating func check(_ records: VectorRecords) throws -> Bool {
        guard try records.peek() else { return false }
        let d = records.shape!.dim
        if dim == 0 {
            (dim, first) = (d, records.name)
            return true
        }
        if d != dim { throw RuEmbedError("\(records.name) has \(d)-d vectors, \(first) has \(dim)-d") }
        return false
    }
}

/// Output lines as bytes: `id<TAB>cluster<TAB>score` or JSON lines.
struct ClusterLines {
    let format: ClusterFormat
    private(set) var bytes: [UInt8] = []

    init(format: ClusterFormat) { self.format = format }

    mutating func append(id: String, cluster: Int32, score: Float) {
        if format == .jsonl {
            var text = "{\"id\": "
            JSONValue.writeString(id, to: &text)
            bytes.append(contentsOf: text.utf8)
            bytes.append(contentsOf: ", \"cluster\": ".utf8)
            NumberFormat.appendInteger(cluster, to: &bytes)
            bytes.append(contentsOf: ", \"score\": ".utf8)
            NumberFormat.appendFixed(Double(score), to: &bytes)
            bytes.append(contentsOf: "}\n".utf8)
        } else {
            TSV.appendEscaped(id, to: &bytes)
            bytes.append(0x09)
            NumberFormat.appendInteger(cluster, to: &bytes)
            bytes.append(0x09)
            NumberFormat.appendFixed(Double(score), to: &bytes)
            bytes.append(0x0A)
        }
    }

    /// Writes what is held to standard output when it reaches 64 KB.
    mutating func writeWhenFull() throws {
        if bytes.count >= 1 << 16 { try write() }
    }

    /// Writes what is held to standard output.
    mutating func write() throws {
        try ByteOutput.standardOutput.write(bytes)
        bytes.removeAll(keepingCapacity: true)
    }
}

enum ClusterFormat: String, ExpressibleByArgument, CaseIterable {
    case tsv, jsonl
}
