import Foundation
import Testing
@testable import RuCore
@testable import RuEncoder

/// The restricted reader of torch.save files (scripts/make-torch-fixtures.py): a real
/// state dict, LaBSE's Dense head as sentence-transformers 2.x saved it, and hostile copies.
enum TorchFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/torch")
    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
    static func json(_ name: String) throws -> JSONValue {
        let bytes = Array(try Data(contentsOf: directory.appendingPathComponent(name)))
        return try bytes.withUnsafeBytes { try JSONValue.parse($0) }
    }
}

@Suite struct TorchCheckpointTests {
    /// Every tensor of a real Module.state_dict() (f32, f16, bf16, 0-d, empty, two views at
    /// offsets into one shared storage) has the shape and values torch had.
    @Test func readsARealStateDict() throws {
        let checkpoint = try TorchCheckpoint(path: TorchFixtures.path("state.bin"))
        guard case .object(let want) = try TorchFixtures.json("state.json") else { Issue.record("state.json"); return }
        #expect(Set(checkpoint.tensors.keys) == Set(want.map(\.key)))
        #expect(want.count == 8)
        for (name, desc) in want {
            let t = try #require(checkpoint.tensors[name], "\(name)")
            let shape = desc["shape"]!.arrayValue!.map { Int($0.numberValue!) }
            #expect(t.shape == shape, "\(name)")
            #expect(t.dtype.rawValue == desc["dtype"]!.stringValue!, "\(name)")
            let values = try checkpoint.floats(name, shape: shape)
            #expect(values == desc["values"]!.arrayValue!.map { Float($0.numberValue!) }, "\(name)")
        }
        #expect(checkpoint.tensors["view_b"]!.shape == [3, 2] && checkpoint.tensors["scalar"]!.shape == [])
        // A wrong shape or name is an error naming the file and the tensor.
        #expect(throws: RuEmbedError.self) { try checkpoint.floats("linear.weight", shape: [3, 2]) }
        do { _ = try checkpoint.floats("nope", shape: [1]); Issue.record("no error") } catch let e as RuEmbedError {
            #expect(e.message.contains("state.bin") && e.message.contains("\"nope\""))
        }
    }

    /// Each hostile file is refused with one RuEmbedError naming the file and the problem
    /// (cases.json: file → phrase; "" is the hand-made pickle that torch itself loads, which
    /// must load here too, or the variants built from it would prove nothing).
    @Test func refusesHostileFiles() throws {
        guard case .object(let cases) = try TorchFixtures.json("hostile/cases.json") else { Issue.record("cases.json"); return }
        #expect(cases.count >= 25)
        for (file, phrase) in cases {
            let path = TorchFixtures.path("hostile/" + file)
            let phrase = phrase.stringValue!
            if phrase.isEmpty {
                let c = try TorchCheckpoint(path: path)
                #expect(try c.floats("w", shape: [2, 2]) == [1, 2, 3, 4], "\(file)")
                continue
            }
            do {
                _ = try TorchCheckpoint(path: path)
                Issue.record("\(file): loaded")
            } catch let e as RuEmbedError {
                #expect(e.message.contains(path), "\(file): \(e.message)")
                #expect(e.message.lowercased().contains(phrase.lowercased()), "\(file): \(e.message) lacks \"\(phrase)\"")
                #expect(e.kind == .invalidData)
            }
        }
    }

    /// Never a trap or over-read: every prefix of a real file and every single-byte change
    /// of it either loads or throws RuEmbedError (a crash would end the test process).
    @Test func everyPrefixAndByteFlipIsSafe() throws {
        let bytes = Array(try Data(contentsOf: TorchFixtures.directory.appendingPathComponent("state.bin")))
        var loaded = 0, refused = 0
        for n in 0..<bytes.count {
            do { _ = try TorchCheckpoint(bytes: Array(bytes[..<n]), name: "prefix"); loaded += 1 } catch is RuEmbedError { refused += 1 }
        }
        #expect(loaded == 0 && refused == bytes.count, "a truncated archive never loads")
        for k in 0..<bytes.count {
            for v: UInt8 in [0xFF, bytes[k] ^ 0x01] where v != bytes[k] {
                var copy = bytes
                copy[k] = v
                do { _ = try TorchCheckpoint(bytes: copy, name: "flip") } catch is RuEmbedError {}
            }
        }
        #expect(try TorchCheckpoint(bytes: bytes, name: "whole").tensors.count == 8)
    }

    /// A byte-level pickle with deep nesting, a self-containing dict and a huge memo index is
    /// refused by the caps, not by running out of stack or memory.
    @Test func capsHoldForHandMadePickles() throws {
        func archive(_ pickle: [UInt8]) -> [UInt8] { StoredZip.make([("a/data.pkl", pickle)]) }
        func refusal(_ pickle: [UInt8]) -> String {
            do { _ = try TorchCheckpoint(bytes: archive(pickle), name: "p.bin"); return "loaded" } catch { return "\(error)" }
        }
        #expect(refusal([0x80, 2] + [UInt8](repeating: 0x28, count: 100) + [0x2e]).contains("MARKs nest"))
        // [] memo 0, then l.append(l): a cycle.
        #expect(refusal([0x80, 2, 0x5d, 0x71, 0, 0x68, 0, 0x61, 0x2e]).contains("inside itself"))
        // {} memo 0, then d[0] = d: a cycle.
        #expect(refusal([0x80, 2, 0x7d, 0x71, 0, 0x4b, 1, 0x68, 0, 0x73, 0x2e]).contains("inside itself"))
        #expect(refusal([0x80, 2, 0x7d, 0x6a, 0xff, 0xff, 0xff, 0xff, 0x2e]).contains("memo index 4294967295"))
        #expect(refusal([0x80, 2, 0x8a, 9] + [UInt8](repeating: 0, count: 9) + [0x2e]).contains("LONG1"))
        #expect(refusal([0x80, 2, 0x7d, 0x7d, 0x2e]).contains("STOP with 2 values"))
        // A plain dict (not OrderedDict) of nothing loads as an empty checkpoint.
        #expect(try TorchCheckpoint(bytes: archive([0x80, 2, 0x7d, 0x2e]), name: "e").tensors.isEmpty)
    }

    /// The ZIP64 records (end record, locator, extra fields) give the same entries as the
    /// 32-bit ones; a ZIP64 directory offset past the file is refused.
    @Test func readsZip64Archives() throws {
        let entries = [("a/data.pkl", StoredZip.tensorPickle), ("a/byteorder", Array("little".utf8)), ("a/data/0", StoredZip.floats1234)]
        for zip64 in [false, true] {
            let c = try TorchCheckpoint(bytes: StoredZip.make(entries, zip64: zip64), name: "z.bin")
            #expect(try c.floats("w", shape: [2, 2]) == [1, 2, 3, 4], "zip64 \(zip64)")
        }
        do { _ = try TorchCheckpoint(bytes: StoredZip.make(entries, zip64: true, cdOffsetShift: 1 << 40), name: "z.bin"); Issue.record("loaded") } catch let e as RuEmbedError {
            #expect(e.message.contains("z.bin: the zip central directory"), "\(e.message)")
        }
    }

    /// LaBSE's Dense(48→32, Tanh) with its weights only in 2.x's pytorch_model.bin gives
    /// sentence-transformers' vectors for it.
    @Test func denseFromPytorchModelBinMatchesSentenceTransformers() throws {
        let dir = try FamilyFixtures.copy("bert-labse")
        let dense = dir.appendingPathComponent("2_Dense")
        try FileManager.default.removeItem(at: dense.appendingPathComponent("model.safetensors"))
        try FileManager.default.copyItem(at: TorchFixtures.directory.appendingPathComponent("labse-dense/pytorch_model.bin"),
                                         to: dense.appendingPathComponent("pytorch_model.bin"))
        let json = try TorchFixtures.json("labse-dense/expected.json")
        let texts = json["texts"]!.arrayValue!.map { $0.stringValue! }
        for (key, normalize) in [("vectors", true), ("raw", false)] {
            let want = json[key]!.arrayValue!.map { $0.arrayValue!.map { Float($0.numberValue!) } }
            let encoder = try SentenceEncoder(model: dir.path, options: EncoderOptions(normalize: normalize, batchSize: 3))
            #expect(encoder.model.dense.count == 1 && encoder.model.dimension == 32)
            let got = try encoder.embed(texts, prompt: .noPrompt)
            #expect(got.count == want.count && want.count == texts.count)
            for (k, (g, w)) in zip(got, want).enumerated() {
                #expect(cosine(g, w) >= 0.99999, "\(key) text \(k): cosine \(cosine(g, w))")
                if normalize { #expect(maxAbsDifference(g, w) <= 1e-4, "\(key) text \(k)") }
            }
        }
        // The .bin is what was read: with a broken one the folder is refused, naming it.
        try Data([0x50, 0x4b, 3, 4]).write(to: dense.appendingPathComponent("pytorch_model.bin"))
        do { _ = try SentenceEncoder(model: dir.path); Issue.record("loaded") } catch let e as RuEmbedError {
            #expect(e.message.contains("2_Dense/pytorch_model.bin"), "\(e.message)")
        }
    }
}

/// A zip archive of stored entries, as torch.save lays them out (for hand-made pickles);
/// `zip64`: every size, offset and count in the ZIP64 records, the 32-bit fields 0xFFFF…,
/// as torch writes archives past 4 GiB.
enum StoredZip {
    static func le(_ v: Int, _ n: Int) -> [UInt8] { (0..<n).map { UInt8((v >> (8 * $0)) & 0xFF) } }

    static func make(_ entries: [(String, [UInt8])], zip64: Bool = false, cdOffsetShift: Int = 0) -> [UInt8] {
        var out: [UInt8] = [], directory: [UInt8] = []
        for (name, data) in entries {
            let offset = out.count
            let n = Array(name.utf8)
            let head = le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(0, 4)
            out += le(0x0403_4b50, 4) + head + le(data.count, 4) + le(data.count, 4) + le(n.count, 2) + le(0, 2) + n + data
            let big = zip64 ? 0xFFFF_FFFF : -1
            let extra = zip64 ? le(1, 2) + le(24, 2) + le(data.count, 8) + le(data.count, 8) + le(offset, 8) : []
            directory += le(0x0201_4b50, 4) + le(45, 2) + head + le(zip64 ? big : data.count, 4) + le(zip64 ? big : data.count, 4)
                + le(n.count, 2) + le(extra.count, 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(zip64 ? big : offset, 4) + n + extra
        }
        let cd = out.count + cdOffsetShift
        out += directory
        if zip64 {
            let record = out.count
            out += le(0x0606_4b50, 4) + le(44, 8) + le(45, 2) + le(45, 2) + le(0, 4) + le(0, 4)
                + le(entries.count, 8) + le(entries.count, 8) + le(directory.count, 8) + le(cd, 8)
            out += le(0x0706_4b50, 4) + le(0, 4) + le(record, 8) + le(1, 4)
            out += le(0x0605_4b50, 4) + le(0, 2) + le(0, 2) + le(0xFFFF, 2) + le(0xFFFF, 2) + le(0xFFFF_FFFF, 4) + le(0xFFFF_FFFF, 4) + le(0, 2)
        } else {
            out += le(0x0605_4b50, 4) + le(0, 2) + le(0, 2) + le(entries.count, 2) + le(entries.count, 2) + le(directory.count, 4) + le(cd, 4) + le(0, 2)
        }
        return out
    }

    /// The pickle torch.save writes for {"w": a 2×2 f32 tensor in storage "0"}.
    static let tensorPickle: [UInt8] = {
        func u(_ s: String) -> [UInt8] { [0x58] + le(s.utf8.count, 4) + Array(s.utf8) }
        func global(_ m: String, _ n: String) -> [UInt8] { [0x63] + Array("\(m)\n\(n)\n".utf8) }
        let od = global("collections", "OrderedDict") + [0x29, 0x52]
        let pid = [0x28] + u("storage") + global("torch", "FloatStorage") + u("0") + u("cpu") + [0x4b, 4, 0x74, 0x51]
        let t = global("torch._utils", "_rebuild_tensor_v2") + [0x28] + pid + [0x4b, 0, 0x4b, 2, 0x4b, 2, 0x86, 0x4b, 2, 0x4b, 1, 0x86, 0x89] + od + [0x74, 0x52]
        return [0x80, 2] + od + [0x28] + u("w") + t + [0x75, 0x2e]
    }()

    static let floats1234: [UInt8] = [1, 2, 3, 4].flatMap { (f: Float) in le(Int(f.bitPattern), 4) }
}
