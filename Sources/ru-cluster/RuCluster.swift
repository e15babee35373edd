import ArgumentParser
import RuEmbed
import RuCLI

@main
struct RuCluster: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ru-cluster",
        abstract: "Spherical k-means and near-duplicate grouping of vector streams.",
        discussion: """
        Reads vector streams (any element type; every record normalised first) and prints one
        `id<TAB>cluster<TAB>score` line per record, in input order: the cluster from 0, the score
        the record's cosine to its cluster's centroid with 6 decimals. With --format jsonl:
        {"id": "...", "cluster": 3, "score": 0.912345} per record.

        -k K: spherical k-means (cosine). Seeds by greedy k-means++ (from a seeded subset of at most
        16*K records), then alternates assignment and update for --iterations rounds or until no
        record changes cluster (-v prints the mean cosine of each round). An empty cluster is
        re-seeded with the record farthest from its centroid. Assignment scores blocks of
        records with one matrix product, and bounds on how far the centroids moved skip the
        records that cannot change cluster. The same --seed gives the same clusters whatever the
        thread count. By default training uses a seeded sample of 256*K records (FAISS's default
        too: every round costs time in proportion to the records trained on, while the records
        left out are assigned once), then every record is assigned to the trained centroids;
        --sample 0 trains on all of them.
        --centroids FILE writes the centroids as a normalised f32 vector stream with ids 0 to K-1,
        so `ru-knn --index FILE -k 1 new.vec` assigns new records.

        --threshold T: near-duplicate groups instead: records with cosine >= T are linked, and a
        group is a connected component of those links (union-find over all pairs, exactly: so a
        chain a~b~c is one group even when a and c are further apart). Groups are numbered by
        their first record, which is the group's representative; the score is the cosine to
        it. All pairs are compared: the work grows with the square of the records.

        The streams are read into memory whole.

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
            let started = monotonicSeconds()
            var values: [Float] = []
            var ids: [String] = []
            var dim = 0
            var first = ""
            for path in inputs.isEmpty ? ["-"] : inputs {
                let records = try VectorRecords(path: path)
                if try records.peek() {
                    let d = records.shape!.dim
                    if dim == 0 {
                        dim = d
                        first = records.name
                    } else if d != dim {
                        throw RuEmbedError("\(records.name) has \(d)-d vectors, \(first) has \(dim)-d")
                    }
                }
                while try records.nextBlock(maxRows: 1 << 16, values: &values, ids: &ids) > 0 {}
            }
            let n = ids.count
            let names = (inputs.isEmpty ? ["-"] : inputs).map { $0 == "-" ? "standard input" : $0 }.joined(separator: ", ")
            if n == 0 { throw RuEmbedError("\(names): no records to cluster") }
            if let k, k > n { throw RuEmbedError("\(names): -k \(k) is more than the \(n) records") }
            values.withUnsafeMutableBufferPointer { v in VectorMath.l2NormalizeRows(v.baseAddress!, count: n, dim: dim) }
            var cluster: [Int32]
            var scores: [Float]
            if let threshold {
                let groups = values.withUnsafeBufferPointer {
                    NearDuplicates.group(points: $0.baseAddress!, count: n, dim: dim, threshold: threshold)
                }
                (cluster, scores) = (groups.group, groups.scores)
                if verbose.verbose {
                    ToolRuntime.warn("\(n) records, \(groups.edges) pairs with cosine ≥ \(threshold), \((cluster.max() ?? -1) + 1) groups")
                }
            } else {
                let k = k!
                let result = try values.withUnsafeBufferPointer {
                    try SphericalKMeans.cluster(
                        points: $0.baseAddress!, count: n, dim: dim, k: k, iterations: iterations, seed: seed,
                        sample: sample == 0 ? nil : (sample ?? 256 * k),
                        progress: verbose.verbose ? { iteration, objective, recomputed in
                            ToolRuntime.warn("iteration \(iteration): mean cosine \(NumberFormat.fixed(objective)), \(recomputed) records compared with every centroid")
                        } : nil)
                }
                (cluster, scores) = (result.assignment, result.scores)
                if let centroids { try write(result.centroids, dim: dim, k: k, to: centroids) }
                if verbose.verbose {
                    ToolRuntime.warn("largest centroid move per round: " + result.largestDrift.map { NumberFormat.fixed(Double($0), decimals: 4) }.joined(separator: " "))
                    if result.reseeded > 0 { ToolRuntime.warn("\(result.reseeded) empty clusters re-seeded") }
                }
            }
            try output(ids: ids, cluster: cluster, scores: scores)
            if verbose.verbose {
                ToolRuntime.warn("\(n) records of \(dim) dimensions in \(NumberFormat.fixed(monotonicSeconds() - started, decimals: 2)) s")
            }
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

    private func output(ids: [String], cluster: [Int32], scores: [Float]) throws {
        let out = ByteOutput.standardOutput
        var text = ""
        for i in 0..<ids.count {
            let score = NumberFormat.fixed(Double(scores[i]))
            if format == .jsonl {
                text += "{\"id\": "
                JSONValue.writeString(ids[i], to: &text)
                text += ", \"cluster\": \(cluster[i]), \"score\": \(score)}\n"
            } else {
                text += "\(TSV.escape(ids[i]))\t\(cluster[i])\t\(score)\n"
            }
            if text.utf8.count >= 1 << 16 {
                try out.write(text)
                text = ""
            }
        }
        try out.write(text)
    }
}

enum ClusterFormat: String, ExpressibleByArgument, CaseIterable {
    case tsv, jsonl
}
