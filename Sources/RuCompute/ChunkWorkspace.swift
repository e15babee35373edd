import RuCore

/// Per-thread scratch of the int8 and bf16 layers' per-thread path, shared by every such layer
/// (they run one after another): a chunk's narrow rows (int8's u8 codes or bf16's rounded
/// values), int8's per-row scales and zero points, and a fused feed-forward pair's
/// intermediate rows as floats.
final class ChunkWorkspace: @unchecked Sendable {
    /// Rows per chunk: 32 rows × 3,072 inputs of codes or bf16 stay in L2 while every panel
    /// of the weights passes over them.
    static let rows = 32
    /// From this many rows on, each thread takes its own rows, chunk by chunk (else a layer
    /// narrows the rows once and the threads split its columns).
    static let perThreadRows = 64

    /// Whether `m` rows are split between threads (rather than the columns).
    static func splitsRows(_ m: Int) -> Bool { m >= perThreadRows || Parallel.threads == 1 }

    /// Panels a piece when few rows split a layer's columns (`Parallel.forPieces`): about four
    /// pieces a thread, so a thread slowed by a neighbour takes fewer instead of holding the
    /// other at the join (one text at a time spends most of its barriers there).
    static func panelPiece(_ panels: Int) -> Int { max(1, panels / (4 * Parallel.threads)) }

    private(set) var bytes: UnsafeMutableRawPointer
    private(set) var floats: UnsafeMutablePointer<Float>
    let scales: UnsafeMutablePointer<Float>
    let zeroPoints: UnsafeMutablePointer<Int32>
    private var byteCapacity = 0, floatCapacity = 0

    /// The narrow rows as u8 codes (int8 layers). The bf16 layers use `bytes` as their kernel's
    /// form: bf16 values (vdpbf16ps) or bf16 values widened to f32 (the FMA kernel).
    var codes: UnsafeMutablePointer<UInt8> { bytes.bindMemory(to: UInt8.self, capacity: byteCapacity) }

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

/// A linear layer whose per-thread path narrows a chunk of rows into a `ChunkWorkspace` (int8
/// codes, bf16 values) and multiplies the chunk from there: the int8 and bf16 layers.
protocol ChunkedLinear: LinearOperator {
    /// Bytes of one row's narrow form.
    var narrowRowBytes: Int { get }
    /// Whether this layer runs chunks (int8 through oneDNN does not).
    var runsChunks: Bool { get }
    /// The workspace's narrow rows ← `count` rows of input.
    func narrow(rows count: Int, _ input: UnsafePointer<Float>, into ws: ChunkWorkspace)
    /// output rows (`stride` floats apart) ← (or +=) the workspace's narrow rows through this layer.
    func multiply(rows count: Int, _ ws: ChunkWorkspace, output: UnsafeMutablePointer<Float>, stride: Int)
}

extension ChunkWorkspace {
    /// `layers` one after another over `m` rows, 32 at a time (the last few fewer), each thread
    /// taking the next chunk when it has finished one (`Parallel.forPieces`): a chunk goes through every layer
    /// (narrowed, multiplied into the workspace's floats, narrowed again…) while it is in the
    /// core's caches; the last layer writes (or adds to) `output`.
    /// Call with `lock` held.
    static func runChunks(_ layers: [any ChunkedLinear], rows m: Int, input: UnsafePointer<Float>,
                          output: UnsafeMutablePointer<Float>) {
        precondition(zip(layers, layers.dropFirst()).allSatisfy { $0.outputSize == $1.inputSize })
        let threads = Parallel.pieceThreads(m, piece: rows)
        let workspaces = perThread(threads, bytes: rows * (layers.map(\.narrowRowBytes).max() ?? 0),
                                   floats: rows * (layers.dropLast().map(\.outputSize).max() ?? 0))
        let inputSize = layers[0].inputSize, outputSize = layers[layers.count - 1].outputSize
        // The last chunks taper to eight rows (a full tile of the kernels), so the threads reach
        // the join closer together.
        Parallel.forPieces(m, piece: rows, taperingTo: 8, threads: threads) { t, start, end in
            let ws = workspaces[t], count = end - start
            var from = input + start * inputSize
            for (i, layer) in layers.enumerated() {
                layer.narrow(rows: count, from, into: ws)
                if i == layers.count - 1 {
                    layer.multiply(rows: count, ws, output: output + start * outputSize, stride: outputSize)
                } else {
                    layer.multiply(rows: count, ws, output: ws.floats, stride: layer.outputSize)
                    from = UnsafePointer(ws.floats)
                }
            }
        }
    }
}
