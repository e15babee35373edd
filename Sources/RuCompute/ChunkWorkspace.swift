import RuCore

/// Per-thread scratch of the int8 and bf16 layers' per-thread path, shared by every such layer
/// (they run one after another): a chunk's narrow rows (int8's u8 codes or bf16's rounded
/// values), int8's per-row scales and zero points, and a fused feed-forward pair's
/// intermediate rows as floats.
final class ChunkWorkspace: @unchecked Sendable {
    /// Rows per chunk: 32 rows × 3,072 inputs of codes or bf16 stay in L2 while every panel
    /// of the weights passes over them.
    static let rows = 32

    private(set) var bytes: UnsafeMutableRawPointer
    private(set) var floats: UnsafeMutablePointer<Float>
    let scales: UnsafeMutablePointer<Float>
    let zeroPoints: UnsafeMutablePointer<Int32>
    private var byteCapacity = 0, floatCapacity = 0

    /// The narrow rows as u8 codes (int8 layers) or as bf16 values (bf16 layers).
    var codes: UnsafeMutablePointer<UInt8> { bytes.bindMemory(to: UInt8.self, capacity: byteCapacity) }
    var rounded: UnsafeMutablePointer<UInt16> { bytes.bindMemory(to: UInt16.self, capacity: byteCapacity / 2) }

    nonisolated(unsafe) private static var all: [ChunkWorkspace] = []

    /// Held for a whole layer call: the workspaces (and each layer's own scratch) serve one
    /// caller at a time, so layers called from several threads at once (tests, a library
    /// user) take turns instead of sharing scratch.
    static let lock = Lock(())

    /// `count` workspaces with room for `bytes` bytes of narrow rows and `floats` floats; call
    /// with `lock` held, outside the parallel region.
    static func perThread(_ count: Int, bytes: Int, floats: Int) -> [ChunkWorkspace] {
        while all.count < count { all.append(ChunkWorkspace()) }
        for ws in all.prefix(count) { ws.reserve(bytes: bytes, floats: floats) }
        return Array(all.prefix(count))
    }

    private init() {
        bytes = .allocate(byteCount: 64, alignment: 64)
        floats = .allocate(capacity: 1)
        scales = .allocate(capacity: ChunkWorkspace.rows)
        zeroPoints = .allocate(capacity: ChunkWorkspace.rows)
    }

    private func reserve(bytes byteCount: Int, floats floatCount: Int) {
        if byteCount > byteCapacity {
            bytes.deallocate()
            bytes = .allocate(byteCount: byteCount, alignment: 64)
            byteCapacity = byteCount
        }
        if floatCount > floatCapacity {
            floats.deallocate()
            floats = .allocate(capacity: floatCount)
            floatCapacity = floatCount
        }
    }
}
