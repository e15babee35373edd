// The samples of the library's getting-started article (Sources/RuEmbed/RuEmbed.docc), run
// against the public API only: this package depends on ru-embed by URL and version, so it
// sees what an app sees. If the library's public surface loses something the article uses,
// this file stops compiling and CI (scripts/check-example) fails. Each step prints one line
// starting "tour:"; the last is "tour: ok".
import Foundation
import RuEmbed

/// Runs the tour in a scratch folder, removed afterwards.
func runTour(_ encoder: SentenceEncoder) throws {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("embed-app-\(getpid())").path
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    try tour(encoder, in: scratch)
}

func tour(_ encoder: SentenceEncoder, in folder: String) throws {
    // Prompts.
    let raw = try encoder.embed(["Привет, мир"], prompt: .noPrompt)
    let custom = try encoder.embed(["Привет, мир"], prompt: .text("query: "))
    let named = try encoder.embed(["Привет, мир"], prompt: "query")
    check(raw[0] != named[0] && custom[0] == named[0], "a custom \"query: \" prompt gives the named prompt's vector")
    let passagePrompt = try encoder.promptText(.named("passage"))
    check(passagePrompt == "passage: ", "the passage prompt's text")
    print("tour: prompts")

    // Compare two vectors.
    let pair = try encoder.embed(["Кошка спит на диване.", "На диване дремлет кот."], prompt: "query")
    let dot = zip(pair[0], pair[1]).reduce(Float(0)) { $0 + $1.0 * $1.1 }
    let cosine = VectorMath.cosine(pair[0], pair[1], dim: encoder.dimension)
    check(abs(Double(dot) - cosine) < 1e-5, "dot product of normalised vectors = cosine")
    print("tour: compare")

    // Write and read a vector stream, through a file committed into place.
    let path = folder + "/notes.vec"
    let ids = ["doc1", "doc2", "doc3"]
    let vectors = try encoder.embed(["Первый документ.", "Второй документ.", "Рецепт борща."], prompt: "passage")
    let file = try OutputFile(path: path)
    let writer = VectorStreamWriter(
        output: file.output, dtype: .f32, dim: encoder.dimension, flags: [.normalized],
        metadata: try encoder.streamMetadata(promptText: try encoder.promptText(.named("passage"))))
    for (id, vector) in zip(ids, vectors) {
        try writer.append(id: id, vector: vector)
    }
    try writer.finish()
    try file.commit()
    let reader = try VectorStreamReader(path: path)
    var readIDs: [String] = []
    var readRows: [Float] = []
    while let chunk = try reader.next() {
        guard chunk.kind == .vectors else { break }
        readIDs += chunk.ids
        readRows += chunk.floats()
    }
    check(readIDs == ids && readRows == vectors.flatMap { $0 }, "the stream reads back as written")
    let digest = try encoder.modelDigest()
    check(reader.shape?.modelDigest == digest, "the stream records the model's digest")
    print("tour: write and read")

    // Search it.
    let queries = try encoder.embed(["Второй документ."], prompt: "passage")
    let search = ExactSearch(queries: queries.flatMap { $0 }, dim: encoder.dimension, k: 2)
    let records = try VectorRecords(path: path)
    var block: [Float] = []
    var blockIDs: [String] = []
    while try records.peek() {
        _ = try records.next { id, vector in
            blockIDs.append(id)
            block += vector
        }
    }
    block.withUnsafeMutableBufferPointer { rows in
        search.add(block: rows.baseAddress!, count: blockIDs.count, ids: blockIDs)
    }
    let best = search.results()[0]
    check(best.count == 2 && best[0].id == "doc2" && abs(best[0].score - 1) < 1e-5, "the text itself is its nearest neighbour")
    print("tour: search")

    // Stream texts straight to a file.
    let linesPath = folder + "/lines.vec"
    let lines = ["Первая строка.", "Вторая строка."]
    let linesFile = try OutputFile(path: linesPath)
    let stream = try encoder.makeStreamEncoder(output: linesFile.output, dtype: .f16, prompt: .named("passage"))
    for (k, line) in lines.enumerated() {
        try stream.add(id: "line\(k + 1)", text: line, place: "lines.txt: line \(k + 1)")
    }
    try stream.finish()
    try linesFile.commit()
    check(stream.records == 2 && stream.truncated == 0, "two records streamed")
    let firstChunk = try VectorStreamReader(path: linesPath).next()
    check(firstChunk?.dtype == .f16, "the stream is f16")
    print("tour: stream encoder")

    // Tokenize in batches.
    let batches = BatchEncoder(tokenizer: encoder.tokenizer.tokenizer)
    let encodings = batches.encode(lines, prompt: try encoder.promptText(.modelDefault), maxLength: encoder.maxLength)
    check(encodings.count == 2 && encodings.allSatisfy { !$0.ids.isEmpty }, "batch tokenization")
    print("tour: tokenize")

    // Errors.
    do {
        _ = try encoder.embed(["Текст"], prompt: "qeury")
        check(false, "an unknown prompt name throws")
    } catch let error as RuEmbedError {
        check(error.kind == .invalidArgument && error.message.contains("qeury"), "an unknown prompt is an invalid argument")
    }
    print("tour: errors")

    // Options: int8, the hub settings passed in, notes to a reporter.
    Parallel.setThreads(2)
    var options = EncoderOptions(precision: .int8)
    options.hub = ModelLocator.Options(
        verbose: true,
        settings: HubSettings(cacheDirectory: ProcessInfo.processInfo.environment["HF_HUB_CACHE"] ?? folder, offline: true),
        reporter: Reporter(note: { line in print("tour: note:", line) }))
    let fast = try SentenceEncoder(model: encoder.modelID, options: options)
    let int8 = try fast.embed(["Привет, мир"], prompt: "query")[0]
    let agreement = VectorMath.cosine(int8, named[0], dim: encoder.dimension)
    check(agreement > 0.9, "int8 agrees with f32 (cosine \(agreement))")
    print("tour: int8 (cosine \(agreement) to f32)")
    print("tour: ok")
}

func check(_ condition: Bool, _ what: String) {
    if !condition {
        FileHandle.standardError.write(Data("embed-app: tour failed: \(what)\n".utf8))
        exit(1)
    }
}
