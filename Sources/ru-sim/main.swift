import ArgumentParser
import RuCore
import RuVectors
import RuSearch
import RuCLI

@main
struct RuSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ru-sim",
        abstract: "Cosine similarity of vectors: record by record, or every pair with --cross.",
        discussion: """
        Prints `idA<TAB>idB<TAB>cosine` lines, the cosine with 6 decimals. By default record i of A is compared with record i of B, and A and B must have the same number of records. With --cross every record of A is compared with every record of B (B is held in memory; A is streamed). Vectors need not be normalised; an all-zero vector has cosine 0. Ids are TSV-escaped (\\, tab, newline, CR as \\\\, \\t, \\n, \\r).

        Examples:
          ru-sim queries.vec passages.vec
          ru-embed < pairs-left.txt | ru-sim - pairs-right.vec
          ru-sim --cross a.vec b.vec | sort -t$'\\t' -k3,3gr | head

        Exit status: 0 on success, 2 on bad data or different record counts, 64 on a usage error.
        """,
        version: RuEmbedVersion.string
    )

    @Flag(help: "Compare every record of A with every record of B.")
    var cross = false

    @OptionGroup var threads: ThreadOptions

    @Argument(help: "The first stream (`-`: standard input).")
    var a: String

    @Argument(help: "The second stream (`-`: standard input).")
    var b: String

    func validate() throws {
        if a == "-" && b == "-" { throw ValidationError("A and B cannot both be standard input") }
    }

    func run() throws {
        ToolRuntime.start("ru-sim")
        threads.apply()
        try ToolRuntime.run {
            let left = try VectorRecords(path: a)
            let right = try VectorRecords(path: b)
            for side in [left, right] {
                side.reader.input.beforeWaiting = { try ByteOutput.standardOutput.flush() }
            }
            if try left.peek(), try right.peek(), let l = left.shape, let r = right.shape {
                if l.dim != r.dim {
                    throw RuEmbedError("\(left.name) has \(l.dim)-d vectors, \(right.name) has \(r.dim)-d")
                }
                VectorRecords.incomparability(left, right).forEach(ToolRuntime.warn)
            }
            if cross {
                try crossSimilarities(left, right)
            } else {
                try pairwiseSimilarities(left, right)
            }
        }
    }

    private func pairwiseSimilarities(_ left: VectorRecords, _ right: VectorRecords) throws {
        let out = ByteOutput.standardOutput
        var record = 0
        while true {
            record += 1
            let l = try left.next { id, v in (id, Array(v)) }
            let line = try right.next { (idB, vB) -> String? in
                guard let (idA, vA) = l else { return nil }
                let cosine = vA.withUnsafeBufferPointer { VectorMath.cosine($0.baseAddress!, vB.baseAddress!, dim: vB.count) }
                return "\(TSV.escape(idA))\t\(TSV.escape(idB))\t\(NumberFormat.fixed(cosine))\n"
            }
            switch (l, line) {
            case (nil, nil): return
            case (_, .some(.some(let text))): try out.write(text)
            case (.some, nil):
                throw RuEmbedError("\(right.name) ends after \(record - 1) records, \(left.name) has more (use --cross for all pairs)")
            default:
                throw RuEmbedError("\(left.name) ends after \(record - 1) records, \(right.name) has more (use --cross for all pairs)")
            }
        }
    }

    private func crossSimilarities(_ left: VectorRecords, _ right: VectorRecords) throws {
        var rightValues: [Float] = []
        var rightIDs: [String] = []
        while try right.nextBlock(maxRows: 1 << 16, values: &rightValues, ids: &rightIDs) > 0 {}
        guard !rightIDs.isEmpty else {
            while try left.next({ _, _ in }) != nil {}   // still check A
            return
        }
        let dim = rightValues.count / rightIDs.count
        let escapedRight = rightIDs.map(TSV.escape)
        let scorer = CrossScorer(right: rightValues, dim: dim)
        let out = ByteOutput.standardOutput
        var block: [Float] = []
        var blockIDs: [String] = []
        let blockRows = max(1, min(4096, (16 << 20) / (4 * rightIDs.count)))
        while true {
            block.removeAll(keepingCapacity: true)
            blockIDs.removeAll(keepingCapacity: true)
            let n = try left.nextBlock(maxRows: blockRows, values: &block, ids: &blockIDs)
            if n == 0 { return }
            let scores = scorer.scores(&block, count: n)
            for i in 0..<n {
                let idA = TSV.escape(blockIDs[i])
                var text = ""
                for j in 0..<rightIDs.count {
                    text += "\(idA)\t\(escapedRight[j])\t\(NumberFormat.fixed(Double(scores[i * rightIDs.count + j])))\n"
                }
                try out.write(text)
            }
        }
    }
}
