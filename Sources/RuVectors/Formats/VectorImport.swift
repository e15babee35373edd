import RuCore
/// Readers for the text and binary vector formats `ru-vec import` accepts. Each calls
/// `emit(id, vector, place)` per record, where `place` names the file and line or record
/// for error messages; a nil id means "use the position".
package typealias VectorEmitter = (String?, [Float], String) throws -> Void

package enum VectorTextImport {
    /// JSON lines `{"id": …, "vector": [ … ]}`; the id may be a string or a number.
    package static func jsonl(_ input: ByteInput, _ emit: VectorEmitter) throws {
        let lines = LineReader(input: input)
        while let (value, place) = try lines.next({ bytes -> (JSONValue, String) in
            let place = "\(input.name): line \(lines.lineNumber)"
            do { return (try JSONValue.parse(bytes), place) } catch let error as JSONError {
                throw RuEmbedError("\(place): \(error)")
            }
        }) {
            guard case .object = value else { throw RuEmbedError("\(place): expected a JSON object") }
            let id: String?
            switch value["id"] {
            case .none, .some(.null): id = nil
            case .some(.string(let s)): id = s
            case .some(.number(let d)): id = JSONValue.format(d)
            default: throw RuEmbedError("\(place): \"id\" must be a string or a number")
            }
            guard let items = value["vector"]?.arrayValue else { throw RuEmbedError("\(place): no \"vector\" array") }
            var vector: [Float] = []
            vector.reserveCapacity(items.count)
            for (j, item) in items.enumerated() {
                guard let d = item.numberValue, Float(d).isFinite else {
                    throw RuEmbedError("\(place): vector[\(j)] is not a finite number")
                }
                vector.append(Float(d))
            }
            try emit(id, vector, place)
        }
    }

    /// TSV lines: the (escaped) id, then one column per dimension.
    package static func tsv(_ input: ByteInput, _ emit: VectorEmitter) throws {
        let lines = LineReader(input: input)
        while let (id, vector, place) = try lines.next({ bytes -> (String, [Float], String) in
            let place = "\(input.name): line \(lines.lineNumber)"
            var bytes = bytes
            if bytes.last == 0x0D { bytes = UnsafeRawBufferPointer(rebasing: bytes.dropLast()) }
            let fields = bytes.split(separator: 0x09, omittingEmptySubsequences: false)
            guard fields.count >= 2 else { throw RuEmbedError("\(place): expected an id and at least one value, separated by tabs") }
            guard let id = String(validating: UnsafeRawBufferPointer(rebasing: fields[0]), as: UTF8.self) else {
                throw RuEmbedError("\(place): invalid UTF-8 in the id")
            }
            var vector: [Float] = []
            vector.reserveCapacity(fields.count - 1)
            for (j, field) in fields.dropFirst().enumerated() {
                guard let v = FloatParsing.parse(UnsafeRawBufferPointer(rebasing: field)) else {
                    throw RuEmbedError("\(place): column \(j + 2) is not a finite number")
                }
                vector.append(v)
            }
            return (TSV.unescape(id), vector, place)
        }) {
            try emit(id, vector, place)
        }
    }
}

package enum VectorBinaryImport {
    /// Reads exactly `n` bytes, or fewer only at the end of the input, through a 1 MiB buffer
    /// (binary formats are read a record of a few KiB at a time).
    final class BufferedBytes {
        let input: ByteInput
        private var buffer = [UInt8](repeating: 0, count: 1 << 20)
        private var start = 0, end = 0

        init(_ input: ByteInput) { self.input = input }

        func read(_ n: Int) throws -> [UInt8] {
            var out: [UInt8] = []
            // Sizes come from headers the input declares: memory grows with the bytes that
            // really arrive, never with what a header claims.
            out.reserveCapacity(min(n, 1 << 20))
            while out.count < n {
                if start == end {
                    start = 0
                    end = try buffer.withUnsafeMutableBytes { try input.read(into: $0) }
                    if end == 0 { break }
                }
                let take = min(n - out.count, end - start)
                out.append(contentsOf: buffer[start..<start + take])
                start += take
            }
            return out
        }
    }

    /// A 1-D or 2-D NumPy array of float32, float64 or float16 (either byte order).
    package static func npy(_ input: ByteInput, _ emit: VectorEmitter) throws {
        let bytes = BufferedBytes(input)
        let header = try NPY.readHeader({ try bytes.read($0) }, name: input.name)
        let shape = header.shape
        guard shape.count == 1 || shape.count == 2 else {
            throw RuEmbedError("\(input.name): a .npy array of shape \(shape) is not a list of vectors (need 1 or 2 dimensions)")
        }
        let rows = shape.count == 2 ? shape[0] : 1
        let cols = shape.last!
        // A vector has at least one value: (46666669, 0) would be 46 million empty rows, read
        // for minutes from a 138-byte file (found by the import fuzzer).
        guard cols > 0 else { throw RuEmbedError("\(input.name): a .npy array of shape \(shape) holds vectors of 0 values") }
        let descr = header.descr
        let size: Int
        switch descr.dropFirst() {
        case "f4": size = 4
        case "f8": size = 8
        case "f2": size = 2
        default: throw RuEmbedError("\(input.name): unsupported .npy dtype '\(descr)' (need float16, float32 or float64)")
        }
        let bigEndian = descr.first == ">"
        func value(_ p: UnsafeRawBufferPointer, _ i: Int) -> Float {
            switch size {
            case 4:
                let bits = p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
                return Float(bitPattern: bigEndian ? UInt32(bigEndian: bits) : UInt32(littleEndian: bits))
            case 8:
                let bits = p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)
                return Float(Double(bitPattern: bigEndian ? UInt64(bigEndian: bits) : UInt64(littleEndian: bits)))
            default:
                let bits = p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                return Float(Float16(bitPattern: bigEndian ? UInt16(bigEndian: bits) : UInt16(littleEndian: bits)))
            }
        }
        // The element count fits an Int (NPY.readHeader); the bytes may not.
        let (rowBytes, rowOverflow) = cols.multipliedReportingOverflow(by: size)
        let (allBytes, allOverflow) = rowBytes.multipliedReportingOverflow(by: rows)
        guard !rowOverflow, !allOverflow else { throw RuEmbedError("\(input.name): .npy shape \(shape) is too large") }
        if header.fortranOrder && rows > 1 {
            // Column-major: the whole array must be read before the first row is known.
            let data = try bytes.read(allBytes)
            guard data.count == allBytes else { throw RuEmbedError("\(input.name): truncated .npy data") }
            try data.withUnsafeBytes { p in
                for r in 0..<rows {
                    let vector = try checked((0..<cols).map { value(p, $0 * rows + r) }, place: "\(input.name): row \(r + 1)")
                    try emit(nil, vector, "\(input.name): row \(r + 1)")
                }
            }
            return
        }
        for r in 0..<rows {
            let place = "\(input.name): row \(r + 1)"
            let data = try bytes.read(rowBytes)
            guard data.count == rowBytes else { throw RuEmbedError("\(place): truncated .npy data") }
            let vector = try data.withUnsafeBytes { p in try checked((0..<cols).map { value(p, $0) }, place: place) }
            try emit(nil, vector, place)
        }
        if try !bytes.read(1).isEmpty { throw RuEmbedError("\(input.name): data beyond the \(rows) rows its header declares") }
    }

    /// `.fvecs`: per record a little-endian int32 dimension and that many float32 values.
    package static func fvecs(_ input: ByteInput, _ emit: VectorEmitter) throws {
        let bytes = BufferedBytes(input)
        var record = 0
        while true {
            let head = try bytes.read(4)
            if head.isEmpty { return }
            record += 1
            let place = "\(input.name): record \(record)"
            guard head.count == 4 else { throw RuEmbedError("\(place): truncated dimension") }
            let dim = Int(Int32(littleEndian: head.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }))
            guard dim > 0 && dim < 1 << 20 else { throw RuEmbedError("\(place): bad dimension \(dim)") }
            let data = try bytes.read(4 * dim)
            guard data.count == 4 * dim else { throw RuEmbedError("\(place): truncated vector") }
            let vector = try data.withUnsafeBytes { p in
                try checked((0..<dim).map { Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }, place: place)
            }
            try emit(nil, vector, place)
        }
    }

    static func checked(_ vector: [Float], place: String) throws -> [Float] {
        if let j = vector.firstIndex(where: { !$0.isFinite }) {
            throw RuEmbedError("\(place): value \(j + 1) is not finite")
        }
        return vector
    }
}
