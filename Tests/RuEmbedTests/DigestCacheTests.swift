import Foundation
import Testing
import Crypto
@testable import RuCore
@testable import RuTokenizer
@testable import RuVectors
@testable import RuCompute
@testable import RuSearch
@testable import RuHub
@testable import RuEncoder
@testable import RuEmbed
@testable import RuCLI

/// File digests kept between runs: used only while the file is as it was when recorded.
@Suite struct DigestCacheTests {
    @Test func aRecordedDigestServesOnlyTheUnchangedFile() throws {
        let folder = TestSupport.temporaryDirectory()
        let cache = DigestCache(file: folder.appendingPathComponent("digests").path)
        let file = folder.appendingPathComponent("tokenizer.json").path
        let first = Array("{\"a\": 1}".utf8)
        try Data(first).write(to: URL(fileURLWithPath: file))

        let key = try DigestCache.key([file])
        #expect(cache.digest(of: file, keyBeforeReading: key, bytes: first) == SHA256.hex(first))
        // Recorded: the same key gives the recorded digest without hashing the bytes given.
        #expect(cache.digest(of: file, keyBeforeReading: key, bytes: [1, 2, 3]) == SHA256.hex(first))

        // Rewritten with another size: a new key, so the bytes are hashed again.
        let second = Array("{\"a\": 22}".utf8)
        try Data(second).write(to: URL(fileURLWithPath: file))
        let newKey = try DigestCache.key([file])
        #expect(newKey != key)
        #expect(cache.digest(of: file, keyBeforeReading: newKey, bytes: second) == SHA256.hex(second))
        // A file that changed while being read (the key taken before no longer matches) is
        // hashed and not recorded.
        #expect(cache.digest(of: file, keyBeforeReading: key, bytes: first) == SHA256.hex(first))
        #expect(cache.lookup(newKey) == SHA256.hex(second))
        #expect(try String(contentsOfFile: cache.file!, encoding: .utf8).split(separator: "\n").count == 2)
    }

    @Test func withoutACacheFileDigestsAreComputed() throws {
        let folder = TestSupport.temporaryDirectory()
        let file = folder.appendingPathComponent("t.json").path
        let bytes = Array("x".utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let none = DigestCache(file: nil)
        let key = try DigestCache.key([file])
        #expect(none.digest(of: file, keyBeforeReading: key, bytes: bytes) == SHA256.hex(bytes))
        #expect(none.digest(of: file, keyBeforeReading: key, bytes: [9]) == SHA256.hex([9]))
    }

    @Test func aLinkPlantedAsTheCacheFileIsNotWrittenThrough() throws {
        let folder = TestSupport.temporaryDirectory()
        let victim = folder.appendingPathComponent("victim").path
        try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
        let cacheFile = folder.appendingPathComponent("digests").path
        try FileManager.default.createSymbolicLink(atPath: cacheFile, withDestinationPath: victim)
        let file = folder.appendingPathComponent("t.json").path
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let cache = DigestCache(file: cacheFile)
        let key = try DigestCache.key([file])
        #expect(cache.digest(of: file, keyBeforeReading: key, bytes: Array("x".utf8)) == SHA256.hex(Array("x".utf8)))
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        #expect(cache.lookup(key) == nil)
    }
}
