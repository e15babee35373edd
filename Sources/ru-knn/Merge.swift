import ArgumentParser
import RuCore
import RuVectors
import RuSearch
import RuCLI

/// `ru-knn merge`: the results of the same queries searched against shards of a corpus, merged
/// into what one search over the shards concatenated in argument order prints.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge results of the same queries over different shards into the global top K.",
        discussion: """
        Each RESULTS file is `ru-knn search` output (tsv or jsonl, all files the same) for the same queries in the same order, each against one shard of a corpus. For every query the neighbours of all files are ranked by score, and the best K are printed in the same format, ranks renumbered; ids and scores are copied byte for byte.

        Ties: a higher score first; equal scores in the order of the files on the command line, then in each file's own order. One search keeps equal scores in corpus order, so the merge prints exactly what `ru-knn search` prints for the shards concatenated in the order given (`cat shard1.vec shard2.vec …`), byte for byte, when the shards were searched with --exact-scores: with the default 6 decimals, two neighbours from different shards whose scores differ by less than 5e-7 can come out in the other order. Scores agree across hosts when their CPUs run the same kernels (the same instruction set: AVX-512, AVX2 or neither).

        The files are read in step, one query at a time, so memory holds K neighbours per file. In tsv a query without neighbours has no line, so with --min-score (which can leave a shard without any) search with --format jsonl, which lists every query: tsv files whose next queries differ are refused.

        Examples:
          ru-knn --index shard1.vec -k 10 --exact-scores q.vec > hits1.tsv   # on host 1
          ru-knn --index shard2.vec -k 10 --exact-scores q.vec > hits2.tsv   # on host 2
          ru-knn merge -k 10 hits1.tsv hits2.tsv > hits.tsv
        """)

    @Option(name: .short, help: "Neighbours per query.")
    var k: Int = 10

    @Argument(help: "Result files, in shard order (`-` for standard input, once).")
    var results: [String]

    func validate() throws {
        if k < 1 { throw ValidationError("-k must be at least 1") }
        if results.isEmpty { throw ValidationError("give at least one result file") }
        if results.filter({ $0 == "-" }).count > 1 { throw ValidationError("standard input can be only one of the files") }
    }

    func run() throws {
        ToolRuntime.start("ru-knn")
        try ToolRuntime.run {
            let files = try results.map { try ResultFile(path: $0) }
            let out = ByteOutput.standardOutput
            while true {
                let groups = try files.map { try $0.nextGroup() }
                let present = groups.compactMap { $0 }
                if present.isEmpty { return }
                if present.count < groups.count {
                    let ended = files[groups.firstIndex { $0 == nil }!]
                    let going = files[groups.firstIndex { $0 != nil }!]
                    throw RuEmbedError("\(ended.name) ends before query \(going.lastQueryText) of \(going.name) (\(going.where)): the files must hold the same queries")
                }
                if files.dropFirst().contains(where: { $0.format != files[0].format }) {
                    throw RuEmbedError("\(files.first { $0.format != files[0].format }!.name) is not in the \(files[0].format.rawValue) format of \(files[0].name)")
                }
                let first = present[0]
                for (file, group) in zip(files, present) where group.queryID != first.queryID {
                    throw RuEmbedError("\(file.name) (\(file.where)) has query \(file.lastQueryText) where \(files[0].name) has \(files[0].lastQueryText): the files must hold the same queries in the same order\(file.format == .tsv ? " (with --min-score, search with --format jsonl)" : "")")
                }
                // Score first, then file order, then each file's own order: a stable sort of
                // the concatenation by score alone.
                let merged = present.flatMap(\.neighbors).enumerated()
                    .sorted { $0.element.score != $1.element.score ? $0.element.score > $1.element.score : $0.offset < $1.offset }
                    .prefix(k).map(\.element)
                try out.write(files[0].format == .jsonl ? Self.jsonLine(first.queryID, merged) : Self.tsvLines(first.queryID, merged))
            }
        }
    }

    static func tsvLines(_ query: String, _ neighbors: [ResultNeighbor]) -> String {
        var text = ""
        for (rank, n) in neighbors.enumerated() { text += "\(query)\t\(rank + 1)\t\(n.id)\t\(n.scoreText)\n" }
        return text
    }

    static func jsonLine(_ query: String, _ neighbors: [ResultNeighbor]) -> String {
        var line = "{\"query_id\": \(query), \"neighbors\": ["
        for (rank, n) in neighbors.enumerated() {
            if rank > 0 { line += ", " }
            line += "{\"rank\": \(rank + 1), \"doc_id\": \(n.id), \"score\": \(n.scoreText)}"
        }
        return line + "]}\n"
    }
}

/// One neighbour as a result file has it: the id as written (TSV-escaped, or a JSON string
/// with its quotes), the score's text and its value.
struct ResultNeighbor {
    let id: String
    let scoreText: String
    let score: Float
}

/// One query's neighbours from one file; `queryID` as written (like `ResultNeighbor.id`).
struct ResultGroup {
    let queryID: String
    let neighbors: [ResultNeighbor]
}

/// A result file read one query at a time.
final class ResultFile {
    let name: String
    private let lines: LineReader
    private(set) var format: ResultFormat = .tsv
    private var formatKnown = false
    /// TSV: the first line of the next query, read ahead.
    private var pending: (line: Int, fields: [Substring])?
    private(set) var lastQueryText = ""
    private var groupLine = 0

    init(path: String) throws {
        let input = try ByteInput.open(path)
        name = input.name
        lines = LineReader(input: input)
    }

    /// Where the last query read starts.
    var `where`: String { "line \(groupLine)" }

    func nextGroup() throws -> ResultGroup? {
        if !formatKnown {
            guard let line = try readLine() else { return nil }
            format = line.hasPrefix("{") ? .jsonl : .tsv
            formatKnown = true
            if format == .jsonl { return try jsonGroup(line, at: lines.lineNumber) }
            pending = (lines.lineNumber, try tsvFields(line, at: lines.lineNumber))
        }
        if format == .jsonl {
            guard let line = try readLine() else { return nil }
            return try jsonGroup(line, at: lines.lineNumber)
        }
        guard let (start, head) = pending else { return nil }
        pending = nil
        groupLine = start
        lastQueryText = String(head[0])
        var neighbors = [try tsvNeighbor(head, at: start)]
        while let line = try readLine() {
            let at = lines.lineNumber
            let fields = try tsvFields(line, at: at)
            // The same query continues while the rank goes on by one; rank 1 starts the next
            // query (which may carry the same id).
            if fields[0] == head[0] && Int(fields[1]) == neighbors.count + 1 {
                neighbors.append(try tsvNeighbor(fields, at: at))
            } else {
                pending = (at, fields)
                break
            }
        }
        return ResultGroup(queryID: String(head[0]), neighbors: neighbors)
    }

    private func readLine() throws -> String? {
        while let line = try lines.nextString() {
            if !line.isEmpty { return line }
        }
        return nil
    }

    private func tsvFields(_ line: String, at number: Int) throws -> [Substring] {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard fields.count == 4, let rank = Int(fields[1]), rank >= 1 else {
            throw RuEmbedError("\(name) line \(number): not a result line (query_id, rank, doc_id, score separated by tabs)")
        }
        return fields
    }

    private func tsvNeighbor(_ fields: [Substring], at number: Int) throws -> ResultNeighbor {
        let text = String(fields[3])
        guard let score = Float(text), !score.isNaN else {
            throw RuEmbedError("\(name) line \(number): the score \(text.debugDescription) is not a number")
        }
        return ResultNeighbor(id: String(fields[2]), scoreText: text, score: score)
    }

    /// A line of `ru-knn --format jsonl`: parsed for its structure, while the ids and scores
    /// are copied as written (their text is what the merged line must repeat).
    private func jsonGroup(_ line: String, at number: Int) throws -> ResultGroup {
        groupLine = number
        let bad = { (why: String) in RuEmbedError("\(self.name) line \(number): \(why)") }
        let value: JSONValue
        do { value = try JSONValue.parse(line) } catch { throw bad("not JSON (\(error))") }
        guard case .object(let fields) = value,
              let query = fields.first(where: { $0.key == "query_id" })?.value, case .string = query,
              let list = fields.first(where: { $0.key == "neighbors" })?.value, case .array(let items) = list else {
            throw bad("not a result object ({\"query_id\": ..., \"neighbors\": [...]})")
        }
        var raw = RawJSONScanner(line)
        let queryText = try raw.valueText(after: "\"query_id\": ") ?? { throw bad("the query_id is not where ru-knn writes it") }()
        lastQueryText = queryText
        var neighbors: [ResultNeighbor] = []
        for (i, item) in items.enumerated() {
            guard case .object(let n) = item,
                  let s = n.first(where: { $0.key == "score" })?.value, case .number(let score) = s, !score.isNaN,
                  let d = n.first(where: { $0.key == "doc_id" })?.value, case .string = d else {
                throw bad("neighbour \(i + 1) is not {\"rank\": ..., \"doc_id\": \"...\", \"score\": ...}")
            }
            guard let idText = try raw.valueText(after: "\"doc_id\": "), let scoreText = try raw.valueText(after: "\"score\": "),
                  let parsed = Float(scoreText) else {
                throw bad("neighbour \(i + 1) is not laid out as ru-knn writes it")
            }
            neighbors.append(ResultNeighbor(id: idText, scoreText: scoreText, score: parsed))
        }
        return ResultGroup(queryID: queryText, neighbors: neighbors)
    }
}

/// Finds, in a JSON line written by ru-knn, the raw text of the value after a key, in order.
/// A key's quoted text cannot occur inside a string value (a quote there is escaped), so the
/// first occurrence after the cursor is the key itself.
struct RawJSONScanner {
    private let bytes: [UInt8]
    private var cursor = 0

    init(_ line: String) { bytes = Array(line.utf8) }

    mutating func valueText(after key: String) throws -> String? {
        let k = Array(key.utf8)
        guard bytes.count >= k.count, cursor <= bytes.count - k.count else { return nil }
        var i = cursor
        while i <= bytes.count - k.count {
            if bytes[i] == k[0] && Array(bytes[i..<(i + k.count)]) == k { break }
            i += 1
        }
        guard i <= bytes.count - k.count else { return nil }
        let start = i + k.count
        var end = start
        if end < bytes.count && bytes[end] == UInt8(ascii: "\"") {
            end += 1
            while end < bytes.count && bytes[end] != UInt8(ascii: "\"") {
                end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1
            }
            end = min(end + 1, bytes.count)
        } else {
            while end < bytes.count && !",}] ".utf8.contains(bytes[end]) { end += 1 }
        }
        cursor = end
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }
}
