import RuCore
/// The fixed parts of a chunk, the unit inside each zstd frame of a vector stream.
/// `docs/FORMAT.md` is the normative description; this file mirrors it.
package enum ChunkFormat {
    /// `\x89 R U V E C \r \n`: a high byte first so text tools see binary, CR LF so
    /// line-ending conversion is caught (the PNG trick).
    package static let magic: [UInt8] = [0x89, 0x52, 0x55, 0x56, 0x45, 0x43, 0x0D, 0x0A]
    package static let majorVersion: UInt16 = 1
    package static let minorVersion: UInt16 = 0
    package static let headerSize = 64
    /// The payload starts on this boundary, counted from the start of the chunk.
    package static let payloadAlignment = 64

    /// Writers close a chunk before it grows past either bound.
    package static let writerMaxBytes = 8 << 20
    package static let writerMaxRecords = 65_536
    /// Readers refuse frames that declare or decompress to more than this (bomb guard).
    /// Writers hold every chunk they write to the same bound (a chunk, header to payload,
    /// is at most this many bytes), so nothing a tool writes is refused by a reader.
    package static let readerMaxBytes = 64 << 20

    /// Flags in the low 16 bits may be ignored by a reader that does not know them;
    /// a set bit in the high 16 bits that the reader does not know makes it refuse the chunk.
    package static let requiredFlagsMask: UInt32 = 0xFFFF_0000
    package static let knownFlags: UInt32 = ChunkFlags.normalized.rawValue

    package static let zstdMagic: UInt32 = 0xFD2F_B528
    package static let skippableMagicMask: UInt32 = 0xFFFF_FFF0
    package static let skippableMagic: UInt32 = 0x184D_2A50

    static func align(_ n: Int) -> Int {
        (n + payloadAlignment - 1) / payloadAlignment * payloadAlignment
    }

    /// The size of a chunk with these sections, or nil when it overflows (sizes given by a
    /// writer's caller are checked before anything is encoded).
    package static func chunkSize(extensionBytes: Int, idsBytes: Int, payloadBytes: Int) -> Int? {
        let (head, o1) = headerSize.addingReportingOverflow(extensionBytes)
        let (withIDs, o2) = head.addingReportingOverflow(idsBytes)
        guard !o1, !o2, withIDs <= Int.max - payloadAlignment else { return nil }
        let (total, o3) = align(withIDs).addingReportingOverflow(payloadBytes)
        return o3 ? nil : total
    }

    /// Bytes to look at before deciding whether an input is a stream (`startsStream`).
    package static let sniffBytes = 8

    /// True when `head`, the first bytes of an input (up to `sniffBytes`, fewer only when the
    /// input is that short), begin a stream: a zstd frame, a skippable frame or a raw chunk,
    /// the three frame kinds a stream may start with. A skippable frame counts even when text
    /// follows it: no text starts with its magic (`5? 2A 4D 18`), and the stream reader then
    /// reports what comes after it as not a frame. A prefix of the chunk magic that the input
    /// ends inside is a (truncated) stream too: text never starts with the byte 0x89.
    package static func startsStream(_ head: some Collection<UInt8>) -> Bool {
        let bytes = Array(head.prefix(sniffBytes))
        if bytes.count >= 4 {
            let magic = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
            if magic == zstdMagic || magic & skippableMagicMask == skippableMagic { return true }
        }
        return !bytes.isEmpty && bytes.count <= magic.count && Array(magic.prefix(bytes.count)) == bytes
    }
}

/// What a chunk holds.
public enum ChunkKind: UInt8, Sendable, CustomStringConvertible {
    /// One vector per record (ru-embed, ru-vec).
    case vectors = 1
    /// One list of token ids per record (ru-tok).
    case tokens = 2

    public var description: String {
        switch self {
        case .vectors: "vectors"
        case .tokens: "tokens"
        }
    }
}

/// The element type of a chunk's payload.
public enum ElementType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// IEEE binary32, little-endian.
    case f32 = 1
    /// IEEE binary16, little-endian (rounded to nearest even from f32).
    case f16 = 2
    /// Signed bytes with a per-dimension affine calibration in the chunk's extension.
    case int8 = 3
    /// One bit per dimension, set when the value is > 0, packed high bit first.
    case binary = 4
    /// Token ids (kind = tokens only).
    case u32 = 5

    public var description: String {
        switch self {
        case .f32: "f32"
        case .f16: "f16"
        case .int8: "int8"
        case .binary: "binary"
        case .u32: "u32"
        }
    }

    /// The type named as in the tools' options and the format (`f32`, `f16`, `int8`, `binary`, `u32`).
    public init?(name: String) {
        guard let match = ElementType.allCases.first(where: { $0.description == name }) else { return nil }
        self = match
    }

    /// Bytes one record of `dim` dimensions takes in the payload.
    package func rowBytes(dim: Int) -> Int {
        switch self {
        case .f32, .u32: 4 * dim
        case .f16: 2 * dim
        case .int8: dim
        case .binary: (dim + 7) / 8
        }
    }

    package static let vectorTypes: [ElementType] = [.f32, .f16, .int8, .binary]
}

/// Flags that a chunk header carries.
public struct ChunkFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Every vector has unit L2 norm (as written; lossy dtypes keep the flag of their source).
    public static let normalized = ChunkFlags(rawValue: 1 << 0)
}

/// The 64-byte chunk header, little-endian.
///
///     0  magic[8]          8  major u16    10 minor u16   12 kind u8   13 dtype u8
///     14 header_size u16   16 dim u32      20 count u32   24 flags u32 28 ext_len u32
///     32 ids_len u64       40 payload_len u64             48 reserved (zero) to 64
package struct ChunkHeader: Sendable, Equatable {
    package var major: UInt16 = ChunkFormat.majorVersion
    package var minor: UInt16 = ChunkFormat.minorVersion
    package var kind: ChunkKind
    package var dtype: ElementType
    package var headerSize: Int = ChunkFormat.headerSize
    package var dim: Int
    package var count: Int
    package var flags: ChunkFlags
    package var extensionLength: Int
    package var idsLength: Int
    package var payloadLength: Int

    package init(kind: ChunkKind, dtype: ElementType, dim: Int, count: Int, flags: ChunkFlags,
                extensionLength: Int, idsLength: Int, payloadLength: Int) {
        self.kind = kind
        self.dtype = dtype
        self.dim = dim
        self.count = count
        self.flags = flags
        self.extensionLength = extensionLength
        self.idsLength = idsLength
        self.payloadLength = payloadLength
    }

    /// Offset of the payload from the start of the chunk.
    package var payloadOffset: Int { ChunkFormat.align(headerSize + extensionLength + idsLength) }
    package var totalSize: Int { payloadOffset + payloadLength }

    package func encode(into bytes: inout [UInt8]) {
        bytes.append(contentsOf: ChunkFormat.magic)
        bytes.appendLE(major)
        bytes.appendLE(minor)
        bytes.append(kind.rawValue)
        bytes.append(dtype.rawValue)
        bytes.appendLE(UInt16(headerSize))
        bytes.appendLE(UInt32(dim))
        bytes.appendLE(UInt32(count))
        bytes.appendLE(flags.rawValue)
        bytes.appendLE(UInt32(extensionLength))
        bytes.appendLE(UInt64(idsLength))
        bytes.appendLE(UInt64(payloadLength))
        bytes.append(contentsOf: [UInt8](repeating: 0, count: ChunkFormat.headerSize - 48))
    }

    /// Parses and checks the fixed header. `available` is the size of the whole chunk.
    /// The error messages are completed with the position by the caller.
    static func decode(_ p: UnsafeRawBufferPointer) throws -> ChunkHeader {
        guard p.count >= 16, Array(p[0..<8]) == ChunkFormat.magic else {
            throw ChunkDecodeError("bad magic: not a ru-embed vector stream chunk")
        }
        let major = p.loadLE(UInt16.self, at: 8)
        guard major == ChunkFormat.majorVersion else {
            throw ChunkDecodeError("unsupported format major version \(major) (this reader knows \(ChunkFormat.majorVersion))")
        }
        guard p.count >= ChunkFormat.headerSize else {
            throw ChunkDecodeError("chunk of \(p.count) bytes is shorter than its \(ChunkFormat.headerSize)-byte header")
        }
        guard let kind = ChunkKind(rawValue: p[12]) else { throw ChunkDecodeError("unknown kind \(p[12])") }
        guard let dtype = ElementType(rawValue: p[13]) else { throw ChunkDecodeError("unknown element type \(p[13])") }
        switch (kind, dtype) {
        case (.tokens, .u32), (.vectors, .f32), (.vectors, .f16), (.vectors, .int8), (.vectors, .binary): break
        default: throw ChunkDecodeError("element type \(dtype) is not valid for kind \(kind)")
        }
        let headerSize = Int(p.loadLE(UInt16.self, at: 14))
        guard headerSize >= ChunkFormat.headerSize, headerSize <= p.count else {
            throw ChunkDecodeError("bad header size \(headerSize)")
        }
        let flags = p.loadLE(UInt32.self, at: 24)
        let unknownRequired = flags & ChunkFormat.requiredFlagsMask & ~ChunkFormat.knownFlags
        if unknownRequired != 0 {
            throw ChunkDecodeError("unknown must-understand flag 0x\(String(unknownRequired, radix: 16))")
        }
        let ids = p.loadLE(UInt64.self, at: 32), payload = p.loadLE(UInt64.self, at: 40)
        guard ids <= UInt64(Int32.max), payload <= UInt64(Int32.max) else {
            throw ChunkDecodeError("section sizes out of range (ids \(ids), payload \(payload) bytes)")
        }
        var header = ChunkHeader(
            kind: kind, dtype: dtype,
            dim: Int(p.loadLE(UInt32.self, at: 16)), count: Int(p.loadLE(UInt32.self, at: 20)),
            flags: ChunkFlags(rawValue: flags),
            extensionLength: Int(p.loadLE(UInt32.self, at: 28)),
            idsLength: Int(ids), payloadLength: Int(payload))
        header.major = major
        header.minor = p.loadLE(UInt16.self, at: 10)
        header.headerSize = headerSize
        if kind == .vectors && header.dim == 0 { throw ChunkDecodeError("vector chunk with dimension 0") }
        if kind == .tokens && header.dim != 0 { throw ChunkDecodeError("token chunk with dimension \(header.dim) (must be 0)") }
        if header.totalSize != p.count {
            throw ChunkDecodeError("sizes do not add up: header \(headerSize) + extension \(header.extensionLength) + ids \(header.idsLength) + payload \(header.payloadLength) (aligned) != chunk size \(p.count)")
        }
        return header
    }
}

/// A chunk-level problem before it is placed in a file and frame.
package struct ChunkDecodeError: Error {
    package var message: String
    package var record: Int?   // 0-based within the chunk
    init(_ message: String, record: Int? = nil) {
        self.message = message
        self.record = record
    }
}

extension Array where Element == UInt8 {
    @inline(__always) mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always) func loadLE<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
