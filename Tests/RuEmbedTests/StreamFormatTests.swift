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

/// Round trips and every rejection rule of docs/FORMAT.md, at the library level.
@Suite struct StreamFormatTests {
    typealias T = TestSupport

    // MARK: Round trips

    @Test(arguments: ElementType.vectorTypes)
    func roundTripEveryElementType(dtype: ElementType) throws {
        var random = T.Random(seed: 7)
        let dim = 13 // not a multiple of 8: binary rows end in a partial byte
        let ids = T.awkwardIDs
        let values = random.vectors(ids.count, dim)
        let metadata = StreamMetadata([("model", .object([("id", .string("test/model")), ("digest", .string("abc"))])), ("prompt", .string("query: "))])
        let chunk = T.vectorChunk(ids: ids, values: values, dim: dim, dtype: dtype, metadata: metadata)
        let chunks = try T.readAll(try T.stream([chunk]))
        #expect(chunks.count == 1)
        let back = chunks[0]
        #expect(back.ids == ids)
        #expect(back.ids.map { Array($0.utf8) } == ids.map { Array($0.utf8) })
        #expect(back.dtype == dtype && back.dim == dim)
        #expect(back.metadata.modelDigest == "abc")
        #expect(back.metadata["prompt"]?.stringValue == "query: ")
        let decoded = back.floats()
        for (i, (a, b)) in zip(values, decoded).enumerated() {
            switch dtype {
            case .f32: #expect(a == b)
            case .f16: #expect(abs(a - b) <= abs(a) * 1e-3 + 1e-4, "value \(i)")
            case .int8:
                // Half a step of the per-dimension calibration: range / 255 / 2.
                let column = stride(from: i % dim, to: values.count, by: dim).map { values[$0] }
                let halfStep = (column.max()! - column.min()!) / 255 / 2
                #expect(abs(a - b) <= halfStep * 1.001 + 1e-7, "value \(i)")
            case .binary: #expect(b == (a > 0 ? 1 : -1))
            case .u32: Issue.record("not a vector type")
            }
        }
    }

    @Test func tokenChunksRoundTrip() throws {
        let lists: [[UInt32]] = [[0, 5, 2], [], [0, 4_000_000_000, 17, 2]]
        let chunk = Chunk.tokens(ids: ["a", "b", "c"], lists: lists, metadata: StreamMetadata())
        let back = try T.readAll(try T.stream([chunk]))
        #expect(back.count == 1 && back[0].kind == .tokens)
        #expect(back[0].tokenLists() == lists)
    }

    @Test func concatenatedStreamsAreOneStream() throws {
        let a = try T.stream([T.vectorChunk(ids: ["1", "2"], values: [1, 2, 3, 4], dim: 2)])
        let b = try T.stream([T.vectorChunk(ids: ["3"], values: [5, 6], dim: 2),
                              T.vectorChunk(ids: ["4"], values: [7, 8], dim: 2)])
        let chunks = try T.readAll(a + b)
        #expect(chunks.map(\.ids) == [["1", "2"], ["3"], ["4"]])
        #expect(chunks.flatMap { $0.floats() } == [1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test func decompressedChunksAndSkippableFramesRead() throws {
        let chunk = T.vectorChunk(ids: ["x", "y"], values: [1, 2, 3, 4], dim: 2)
        let raw = Data(chunk.encode())              // what `zstd -dc` of a stream gives
        var skippable = Data([0x50, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 9, 9, 9])
        skippable += try T.stream([chunk])
        let chunks = try T.readAll(raw + skippable + raw)
        #expect(chunks.count == 3)
        #expect(chunks.allSatisfy { $0.ids == ["x", "y"] && $0.floats() == [1, 2, 3, 4] })
    }

    @Test func zeroBytesIsAnEmptyStream() throws {
        #expect(try T.readAll(Data()).isEmpty)
    }

    @Test func writerBoundsChunks() throws {
        let dir = T.temporaryDirectory()
        let path = dir.appendingPathComponent("w.vec").path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let out = ByteOutput(fd: fd, name: path, ownsDescriptor: true)
        let dim = 1024
        let writer = VectorStreamWriter(output: out, dtype: .f32, dim: dim)
        let vector = [Float](repeating: 0.5, count: dim)
        for i in 0..<5000 { try writer.append(id: String(i), vector: vector) }
        try writer.finish()
        let chunks = try T.readAll(path)
        // 8 MiB of 4 KiB rows: 2048 records per chunk.
        #expect(chunks.map(\.count) == [2048, 2048, 904])
        #expect(chunks.allSatisfy { $0.encode().count <= ChunkFormat.writerMaxBytes + 64 * 1024 })
    }

    // MARK: Rejections

    /// Compresses raw chunk bytes into one frame, as a writer would.
    func frame(_ bytes: [UInt8]) throws -> Data {
        let compressor = ZstdCompressor(level: 3)
        return try bytes.withUnsafeBytes { Data(try compressor.compress($0)) }
    }

    func basicChunkBytes() -> [UInt8] {
        T.vectorChunk(ids: ["a", "b"], values: [1, 2, 3, 4], dim: 2).encode()
    }

    func expectRejected(_ data: Data, _ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try T.readAll(data)
            Issue.record("accepted a bad stream, expected: \(fragments)", sourceLocation: sourceLocation)
        } catch let error as RuEmbedError {
            for fragment in fragments {
                #expect(error.message.contains(fragment), "\(error.message) lacks \(fragment)", sourceLocation: sourceLocation)
            }
            #expect(!error.message.contains("\n"), sourceLocation: sourceLocation)
            #expect(ExitStatus.of(error) == ExitStatus.dataError, sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    func patched(_ offset: Int, _ values: [UInt8]) -> [UInt8] {
        var bytes = basicChunkBytes()
        bytes.replaceSubrange(offset..<offset + values.count, with: values)
        return bytes
    }

    @Test func rejectsBadMagic() throws {
        expectRejected(Data("hello, world\n".utf8), "in.vec", "not a vector stream", "bad magic")
        expectRejected(try frame(patched(1, [0x51])), "frame 1", "bad magic")
    }

    @Test func rejectsUnknownVersionKindTypeAndFlags() throws {
        expectRejected(try frame(patched(8, [2, 0])), "frame 1", "major version 2")
        expectRejected(try frame(patched(12, [9])), "unknown kind 9")
        expectRejected(try frame(patched(13, [42])), "unknown element type 42")
        expectRejected(try frame(patched(13, [5])), "not valid for kind vectors")
        expectRejected(try frame(patched(24, [0, 0, 1, 0])), "must-understand flag 0x10000")
        // An unknown optional flag (low 16 bits) and a newer minor version are accepted.
        #expect(try T.readAll(try frame(patched(10, [7, 0]))).count == 1)
        #expect(try T.readAll(try frame(patched(24, [0, 0x80, 0, 0]))).count == 1)
    }

    @Test func rejectsChecksumFailure() throws {
        // Random floats are stored raw by zstd, so a flipped byte is caught only by the checksum.
        var random = T.Random(seed: 3)
        let chunk = T.vectorChunk(ids: ["a"], values: random.vectors(1, 4096), dim: 4096)
        var data = try frame(chunk.encode())
        data[data.count / 2] ^= 0x01
        expectRejected(data, "frame 1", "checksum")
    }

    @Test func rejectsTruncatedFrames() throws {
        let data = try T.stream([T.vectorChunk(ids: ["a"], values: [1, 2], dim: 2),
                                 T.vectorChunk(ids: ["b"], values: [3, 4], dim: 2)])
        expectRejected(data.dropLast(3), "frame 2", "truncated")
        expectRejected(data.prefix(6), "frame 1", "truncated")
        expectRejected(Data(basicChunkBytes().dropLast(1)), "frame 1", "truncated")
    }

    @Test func rejectsSizesThatDoNotAddUp() throws {
        // count says 3 records, but the ids section holds 2.
        expectRejected(try frame(patched(20, [3, 0, 0, 0])), "frame 1", "do not add up")
        // payload length one float short.
        var bytes = basicChunkBytes()
        bytes.removeLast(4)
        bytes.replaceSubrange(40..<48, with: [12, 0, 0, 0, 0, 0, 0, 0])
        expectRejected(try frame(bytes), "frame 1", "do not add up")
        // an id length running past the ids section.
        expectRejected(try frame(patched(64, [200, 0, 0, 0])), "frame 1", "record 1", "do not add up")
    }

    @Test func rejectsChangesBetweenChunks() throws {
        let base = T.vectorChunk(ids: ["a"], values: [1, 0], dim: 2, flags: .normalized,
                                 metadata: StreamMetadata([("model", .object([("digest", .string("d1"))]))]))
        func second(dim: Int = 2, dtype: ElementType = .f32, flags: ChunkFlags = .normalized, digest: String = "d1") -> Chunk {
            T.vectorChunk(ids: ["b"], values: [Float](repeating: 0.5, count: dim), dim: dim, dtype: dtype, flags: flags,
                          metadata: StreamMetadata([("model", .object([("digest", .string(digest))]))]))
        }
        expectRejected(try T.stream([base, second(dim: 3)]), "frame 2", "dimension changes from 2 to 3")
        expectRejected(try T.stream([base, second(dtype: .f16)]), "frame 2", "element type changes")
        expectRejected(try T.stream([base, second(flags: [])]), "frame 2", "normalisation changes")
        expectRejected(try T.stream([base, second(digest: "d2")]), "frame 2", "model digest changes")
        expectRejected(try T.stream([base, Chunk.tokens(ids: ["t"], lists: [[1]], metadata: StreamMetadata())]), "frame 2", "kind changes")
        // Other metadata (a prompt) may change between chunks.
        var other = second()
        other.metadata["prompt"] = .string("passage: ")
        #expect(try T.readAll(try T.stream([base, other])).count == 2)
    }

    @Test func rejectsInvalidUTF8Ids() throws {
        let good = try T.stream([T.vectorChunk(ids: ["x", "y", "z"], values: [1, 2, 3], dim: 1)])
        var bytes = T.vectorChunk(ids: ["ok", "\u{44F}"], values: [1, 2], dim: 1).encode()
        // ids section: two lengths (8 bytes) then "ok" then the two bytes of я; break the second.
        bytes[64 + 8 + 2 + 1] = 0x41
        expectRejected(good + (try frame(bytes)), "frame 2", "record 5", "invalid UTF-8")
    }

    @Test func rejectsBadExtensionAndMissingCalibration() throws {
        var chunk = T.vectorChunk(ids: ["a"], values: [1, 2], dim: 2, dtype: .int8)
        chunk.metadata = StreamMetadata()
        expectRejected(try frame(chunk.encode()), "frame 1", "calibration")
        var bytes = T.vectorChunk(ids: ["a"], values: [1, 2], dim: 2, metadata: StreamMetadata([("k", .string("v"))])).encode()
        bytes[64] = UInt8(ascii: "[")
        expectRejected(try frame(bytes), "frame 1", "extension JSON")
    }

    @Test func rejectsDecompressionBombs() throws {
        // 65 MiB of zeros compress to a few KiB but declare a size over the 64 MiB limit.
        let big = [UInt8](repeating: 0, count: 65 << 20)
        expectRejected(try frame(big), "frame 1", "over the limit")
        // Without a declared size the reader stops at the limit while decompressing.
        expectRejected(try unsizedFrame(big), "frame 1", "more than")
    }

    /// A frame written by streaming compression, which declares no content size.
    func unsizedFrame(_ bytes: [UInt8]) throws -> Data {
        Data(try ZstdCompressor.streamingFrameForTests(bytes))
    }

    @Test func rejectsTrailingGarbage() throws {
        let data = try T.stream([T.vectorChunk(ids: ["a"], values: [1], dim: 1)])
        expectRejected(data + Data("junk".utf8), "trailing garbage after frame 1")
        expectRejected(data + Data([0x28]), "trailing garbage after frame 1")
    }

    @Test func errorsNameTheFile() throws {
        let path = try T.write(Data("nope".utf8), name: "named-file.vec")
        #expect(throws: RuEmbedError.self) { try T.readAll(path) }
        do { _ = try T.readAll(path) } catch let error as RuEmbedError {
            #expect(error.message.hasPrefix(path + ": "))
        }
    }
}
