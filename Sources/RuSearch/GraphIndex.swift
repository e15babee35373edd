import CKernels
import RuCore
import RuVectors
#if canImport(Glibc)
import Glibc
#endif

/// The layout of an index file (docs/INDEX.md): a 320-byte header, then nine sections, each
/// starting on a 64-byte boundary, in this order. Version 1 (read, no longer written): a
/// 256-byte header and the first seven sections, codes of x rather than of x − μ.
public enum IndexFormat {
    /// `\x89RUIDX\r\n`: a non-ASCII first byte and a CR LF, as PNG's, so a text-mode transfer
    /// or a text file never passes for an index.
    public static let magic: [UInt8] = [0x89, 0x52, 0x55, 0x49, 0x44, 0x58, 0x0D, 0x0A]
    /// The version written; readers take 1 and 2.
    public static let version: UInt32 = 2
    public static let headerSize = 320
    static let sectionCount = 9
    static let sectionTable = 64
    static func headerSize(version: UInt32) -> Int { version == 1 ? 256 : 320 }
    static func sectionCount(version: UInt32) -> Int { version == 1 ? 7 : 9 }
    static let alignment = 64
    /// Graph degree and width limits: beyond them a header is refused as corrupt, before any
    /// allocation is sized by it.
    public static let maxDegree = 1024
    public static let maxDim = 65536

    enum Section: Int, CaseIterable {
        case codes, scales, neighbors, idOffsets, idBytes, vectors, metadata, offsets, mean
        var name: String {
            switch self {
            case .codes: "codes"
            case .scales: "scales"
            case .neighbors: "neighbors"
            case .idOffsets: "id offsets"
            case .idBytes: "ids"
            case .vectors: "vectors"
            case .metadata: "metadata"
            case .offsets: "offsets"
            case .mean: "mean"
            }
        }
    }

    /// Code bytes per node: the width rounded up to 32 (one AVX2 register), the rest zero.
    public static func stride(_ dim: Int) -> Int { (dim + 31) / 32 * 32 }

    /// Whether these first bytes are an index file's.
    public static func isIndex(_ prefix: [UInt8]) -> Bool { prefix.count >= 8 && Array(prefix.prefix(8)) == magic }

    /// Whether the file at `path` starts with the index magic (false for `-`, unreadable files
    /// and anything shorter): how ru-knn tells an index from a vector stream.
    public static func fileIsIndex(_ path: String) -> Bool {
        if path == "-" { return false }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 8)
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, 8) }
        return n == 8 && isIndex(bytes)
    }
}

/// The build parameters stored in an index's header.
public struct IndexParameters: Sendable, Equatable {
    /// Neighbour slots per node (R).
    public var degree = 48
    /// The beam width of the searches that place each new node (L).
    public var efConstruction = 128
    /// Vamana's pruning factor α (1 is HNSW's heuristic).
    public var alpha: Float = 1.2
    /// The seed of the insertion order.
    public var seed: UInt64 = 0
    /// Whether the normalised f32 vectors are stored too (exact re-ranking and --exact).
    public var keepVectors = true

    public init() {}
}

/// A read-only, memory-mapped index file. Opening checks the header (magic, version, CRC) and
/// that every section lies inside the file with the size its counts imply; nothing else is
/// read until a search touches it, so opening costs the same for any size. Neighbour numbers
/// and id offsets are checked where they are used; `verify()` checks everything.
public final class GraphIndexFile: @unchecked Sendable {
    public let name: String
    public let count: Int
    public let dim: Int
    public let stride: Int
    public let degree: Int
    public let entry: Int
    public let parameters: IndexParameters
    public let metadata: StreamMetadata
    public let fileSize: Int
    /// The format version of this file (1 or 2).
    public let version: UInt32
    private let base: UnsafeRawPointer?
    private let sections: [(offset: Int, length: Int, crc: UInt32)]
    let codes: UnsafePointer<Int8>
    let scales: UnsafePointer<Float>
    let neighbors: UnsafePointer<UInt32>
    let vectors: UnsafePointer<Float>?
    /// Version 2: per node b = μ·x, and μ (dim floats); nil in version 1 (codes of x).
    let offsets: UnsafePointer<Float>?
    let mean: UnsafePointer<Float>?
    /// |μ|² (0 without a mean).
    let meanNorm2: Float
    private let idOffsets: UnsafeRawPointer
    private let idBytes: UnsafePointer<UInt8>
    private let idByteCount: Int

    public var hasVectors: Bool { vectors != nil }

    public init(path: String) throws {
        name = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileSystem.error(path, errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FileSystem.error(path, errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw RuEmbedError("\(path): not a regular file: an index is memory-mapped") }
        let size = Int(st.st_size)
        fileSize = size
        func bad(_ what: String) -> RuEmbedError { RuEmbedError("\(path): \(what)") }
        var prefix = [UInt8](repeating: 0, count: 8)
        let got = prefix.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 8, 0) }
        guard got == 8, IndexFormat.isIndex(prefix) else { throw bad("not an index file (no ru-index magic)") }
        guard size >= 12 else { throw bad("truncated index file (\(size) bytes)") }
        guard let map = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else {
            throw FileSystem.error(path, errno)
        }
        let raw = UnsafeRawPointer(map)
        var ok = false
        defer { if !ok { munmap(map, size) } }
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        let version = u32(8)
        guard version == 1 || version == IndexFormat.version else {
            throw bad("index format version \(version), this ru-index reads versions 1 and \(IndexFormat.version)")
        }
        self.version = version
        let headerSize = IndexFormat.headerSize(version: version), sectionCount = IndexFormat.sectionCount(version: version)
        guard size >= headerSize else {
            throw bad("truncated index file (\(size) bytes, the header alone is \(headerSize))")
        }
        let headerCRC = ck_crc32c(0, raw, headerSize - 4)
        guard headerCRC == u32(headerSize - 4) else { throw bad("corrupt index header (checksum mismatch)") }
        guard u32(12) == UInt32(headerSize) else { throw bad("corrupt index header (header size \(u32(12)))") }
        let n = u64(16), d = Int(u32(24)), s = Int(u32(28)), r = Int(u32(32)), e = Int(u32(36)), flags = u32(40)
        guard n < UInt64(UInt32.max) else { throw bad("corrupt index header (\(n) nodes)") }
        guard d >= 1 && d <= IndexFormat.maxDim, s == IndexFormat.stride(d) else { throw bad("corrupt index header (dimension \(d), stride \(s))") }
        guard r >= 1 && r <= IndexFormat.maxDegree else { throw bad("corrupt index header (degree \(r))") }
        guard n == 0 ? e == 0 : e < Int(n) else { throw bad("corrupt index header (entry node \(e) of \(n))") }
        guard flags & ~1 == 0 else { throw bad("corrupt index header (unknown flags \(flags))") }
        count = Int(n); dim = d; stride = s; degree = r; entry = e
        var p = IndexParameters()
        p.degree = r
        p.efConstruction = Int(u32(44))
        p.alpha = Float(bitPattern: u32(48))
        p.seed = u64(56)
        p.keepVectors = flags & 1 != 0
        parameters = p
        // Expected lengths, with overflow checks: n < 2^32 and the factors are bounded, so
        // Int's 64 bits hold every product; the sum of sections is checked against the size.
        let expected: [Int?] = [count * s, count * 4, count * r * 4, (count + 1) * 8, nil, p.keepVectors ? count * d * 4 : 0, nil,
                                count * 4, d * 4]
        var table: [(offset: Int, length: Int, crc: UInt32)] = []
        var end = headerSize
        for section in IndexFormat.Section.allCases.prefix(sectionCount) {
            let at = IndexFormat.sectionTable + section.rawValue * 24
            let offset = u64(at), length = u64(at + 8)
            guard offset <= UInt64(size), length <= UInt64(size) - offset else {
                throw bad("truncated index file: section \(section.name) ends past the file's \(size) bytes")
            }
            let (o, l) = (Int(offset), Int(length))
            guard o % IndexFormat.alignment == 0, o >= end else { throw bad("corrupt index header (section \(section.name) at \(o))") }
            if let want = expected[section.rawValue], want != l {
                throw bad("corrupt index header (section \(section.name) is \(l) bytes, \(count) nodes need \(want))")
            }
            table.append((o, l, u32(at + 16)))
            end = o + l
        }
        guard end == size else {
            throw bad(end > size ? "truncated index file" : "index file has \(size - end) bytes after its last section")
        }
        sections = table
        base = raw
        codes = (raw + table[0].offset).assumingMemoryBound(to: Int8.self)
        scales = (raw + table[1].offset).assumingMemoryBound(to: Float.self)
        neighbors = (raw + table[2].offset).assumingMemoryBound(to: UInt32.self)
        idOffsets = raw + table[3].offset
        idBytes = (raw + table[4].offset).assumingMemoryBound(to: UInt8.self)
        idByteCount = table[4].length
        vectors = p.keepVectors ? (raw + table[5].offset).assumingMemoryBound(to: Float.self) : nil
        if sectionCount > IndexFormat.Section.mean.rawValue {
            offsets = (raw + table[7].offset).assumingMemoryBound(to: Float.self)
            let m = (raw + table[8].offset).assumingMemoryBound(to: Float.self)
            mean = m
            var norm2: Float = 0
            for j in 0..<d { norm2 += m[j] * m[j] }
            guard norm2.isFinite else { throw bad("corrupt index: the mean has a non-finite value") }
            meanNorm2 = norm2
        } else {
            offsets = nil
            mean = nil
            meanNorm2 = 0
        }
        let first = UInt64(littleEndian: idOffsets.loadUnaligned(as: UInt64.self))
        let last = UInt64(littleEndian: idOffsets.loadUnaligned(fromByteOffset: count * 8, as: UInt64.self))
        guard first == 0 && last == UInt64(idByteCount) else { throw bad("corrupt index: the id offsets do not span the id bytes") }
        let meta = UnsafeRawBufferPointer(start: raw + table[6].offset, count: table[6].length)
        if meta.isEmpty {
            metadata = StreamMetadata()
        } else {
            guard let value = try? JSONValue.parse(meta), case .object(let object) = value else {
                throw bad("corrupt index: the metadata is not a JSON object")
            }
            metadata = StreamMetadata(object)
        }
        ok = true
    }

    deinit { if let base { munmap(UnsafeMutableRawPointer(mutating: base), fileSize) } }

    var graph: ck_graph {
        ck_graph(codes: codes, scales: scales, neighbors: neighbors, count: count, dim: dim, stride: stride, degree: degree,
                 offsets: offsets, mean_norm2: meanNorm2)
    }

    /// The id of node `i`, its offsets checked against the id bytes.
    public func id(_ i: Int) throws -> String {
        let lo = UInt64(littleEndian: idOffsets.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
        let hi = UInt64(littleEndian: idOffsets.loadUnaligned(fromByteOffset: i * 8 + 8, as: UInt64.self))
        guard lo <= hi, hi <= UInt64(idByteCount) else { throw RuEmbedError("\(name): corrupt index: the id offsets of node \(i) are out of order") }
        return String(decoding: UnsafeBufferPointer(start: idBytes + Int(lo), count: Int(hi - lo)), as: UTF8.self)
    }

    /// The neighbour row of node `i` (for tests and `verify`).
    public func neighbors(of i: Int) -> [Int] {
        (0..<degree).map { neighbors[i * degree + $0] }.prefix { $0 != UInt32.max }.map(Int.init)
    }

    /// Checks every section's CRC-32C and every value a search would trust: neighbours in
    /// range and not the node itself, id offsets in order and ids valid UTF-8, scales and
    /// vectors finite. Throws the first problem found.
    public func verify() throws {
        for section in IndexFormat.Section.allCases.prefix(sections.count) {
            let (o, l, crc) = sections[section.rawValue]
            // In pieces: a CRC over a gigabyte of mapped file is one pass through the page cache.
            var c: UInt32 = 0
            var at = 0
            while at < l {
                let piece = min(l - at, 1 << 24)
                c = ck_crc32c(c, base! + o + at, piece)
                at += piece
            }
            if c != crc { throw RuEmbedError("\(name): corrupt index: section \(section.name) fails its checksum") }
        }
        for i in 0..<count {
            let row = neighbors + i * degree
            var ended = false
            for j in 0..<degree {
                let nb = row[j]
                if nb == UInt32.max { ended = true; continue }
                if ended || Int(nb) >= count || Int(nb) == i {
                    throw RuEmbedError("\(name): corrupt index: node \(i) has a bad neighbour slot \(j) (\(nb))")
                }
            }
            if !scales[i].isFinite || scales[i] < 0 { throw RuEmbedError("\(name): corrupt index: node \(i) has scale \(scales[i])") }
            if let offsets, !offsets[i].isFinite { throw RuEmbedError("\(name): corrupt index: node \(i) has offset \(offsets[i])") }
            let text = try id(i)
            if Array(text.utf8) != idBytesOf(i) { throw RuEmbedError("\(name): corrupt index: the id of node \(i) is not UTF-8") }
        }
        if let vectors {
            for i in 0..<count * dim where !vectors[i].isFinite {
                throw RuEmbedError("\(name): corrupt index: vector \(i / dim) has a non-finite value")
            }
        }
    }

    private func idBytesOf(_ i: Int) -> [UInt8] {
        let lo = Int(UInt64(littleEndian: idOffsets.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))
        let hi = Int(UInt64(littleEndian: idOffsets.loadUnaligned(fromByteOffset: i * 8 + 8, as: UInt64.self)))
        return Array(UnsafeBufferPointer(start: idBytes + lo, count: hi - lo))
    }

    /// Warnings when a stream and an index were made by different models or at different
    /// precisions (VectorRecords.incomparability for an index).
    package static func incomparability(_ a: VectorRecords, _ index: GraphIndexFile) -> [String] {
        var warnings: [String] = []
        if let da = a.shape?.modelDigest, let db = index.metadata.modelDigest, da != db {
            warnings.append("warning: \(a.name) and \(index.name) were made by different models (digest \(da) vs \(db)); their cosines mean little")
        }
        if let pa = a.metadata?["precision"]?.stringValue, let pb = index.metadata["precision"]?.stringValue, pa != pb {
            warnings.append("warning: \(a.name) was computed at \(pa) precision and \(index.name) at \(pb)")
        }
        return warnings
    }

    /// Section sizes, for `info`.
    public var sectionSizes: [(name: String, bytes: Int)] {
        IndexFormat.Section.allCases.prefix(sections.count).map { ($0.name, sections[$0.rawValue].length) }
    }

    /// Node `i`'s code, dequantised (scale · code, plus μ in version 2), into `out` (dim floats).
    func dequantize(_ i: Int, into out: UnsafeMutablePointer<Float>) {
        let s = scales[i], c = codes + i * stride
        if let mean {
            for j in 0..<dim { out[j] = s * Float(c[j]) + mean[j] }
        } else {
            for j in 0..<dim { out[j] = s * Float(c[j]) }
        }
    }
}
