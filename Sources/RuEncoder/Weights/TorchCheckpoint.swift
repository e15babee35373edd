import RuCore
#if canImport(Glibc)
import Glibc
#endif

/// A state dict of float tensors saved by `torch.save` (torch ≥ 1.6: a zip archive holding
/// `<prefix>/data.pkl` and one `<prefix>/data/<key>` entry per storage), read WITHOUT running
/// Python's unpickler: pickle is a small stack machine whose GLOBAL/REDUCE opcodes import and
/// call anything, so a model file from the internet could run code on load. This reader
/// interprets only the opcodes a plain state dict uses and knows exactly four callables
/// (OrderedDict, `_rebuild_tensor_v2`, the Float/Half/BFloat16 storage types), all by name;
/// nothing is imported or executed, and every other opcode or global is refused by name.
///
/// The file is memory-mapped read-only; every offset and length from it is checked against
/// the mapping with overflow-safe arithmetic before a byte is read, and the interpreter's
/// stack, memo and nesting are capped, so a hostile file ends in one `RuEmbedError` naming
/// the file and the problem, never in a trap, an over-read or an unbounded allocation.
package final class TorchCheckpoint {
    package enum DType: String { case f32 = "float32", f16 = "float16", bf16 = "bfloat16" }
    package struct Tensor {
        package let dtype: DType
        package let shape: [Int]
        /// Where the first element lies in the mapping, and how many bytes the tensor spans.
        let offset: Int
        let byteCount: Int
        package var elementCount: Int { shape.reduce(1, *) }
    }

    package let path: String
    package private(set) var tensors: [String: Tensor] = [:]
    private let base: UnsafeRawPointer
    private let size: Int
    private let mapped: Bool

    /// Reads and checks the whole archive; tensor bytes are converted on request.
    package init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw RuEmbedError.io("\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        // A FIFO planted as the weights would block forever; a directory has nothing to map.
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { throw RuEmbedError("\(path): not a regular file") }
        size = Int(st.st_size)
        guard size >= 22 else { throw RuEmbedError("\(path): too short for a zip archive (no end of central directory record)") }
        guard let m = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw RuEmbedError.io("\(path): cannot map the file: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(m)
        mapped = true
        try load()
    }

    /// The same from bytes in memory (tests: every prefix and byte flip of a real file).
    package init(bytes: [UInt8], name: String) throws {
        path = name
        let n = bytes.count
        size = n
        let copy = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 16)
        bytes.withUnsafeBytes { if let b = $0.baseAddress { copy.copyMemory(from: b, byteCount: n) } }
        base = UnsafeRawPointer(copy)
        mapped = false
        guard size >= 22 else { throw RuEmbedError("\(path): too short for a zip archive (no end of central directory record)") }
        try load()
    }

    deinit {
        if mapped { munmap(UnsafeMutableRawPointer(mutating: base), size) } else { UnsafeMutableRawPointer(mutating: base).deallocate() }
    }

    /// The tensor's values as f32 in row-major order, checking its shape.
    package func floats(_ name: String, shape: [Int]) throws -> [Float] {
        guard let t = tensors[name] else { throw RuEmbedError("\(path): no tensor \"\(name)\"") }
        guard t.shape == shape else { throw RuEmbedError("\(path): tensor \"\(name)\" has shape \(t.shape), expected \(shape)") }
        return values(t)
    }

    /// Any tensor's values as f32 (f16 and bf16 widened), bytes read little-endian.
    package func values(_ t: Tensor) -> [Float] {
        let n = t.elementCount
        let p = base + t.offset
        switch t.dtype {
        case .f32:
            return (0..<n).map { Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        case .f16:
            return (0..<n).map { Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)))) }
        case .bf16:
            return (0..<n).map { Float(bitPattern: UInt32(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
        }
    }

    // MARK: zip

    private struct Entry { let offset: Int; let length: Int }

    private func fail(_ problem: String) -> RuEmbedError { RuEmbedError("\(path): \(problem)") }

    private func u16(_ at: Int) -> Int { Int(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt16.self))) }
    private func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    private func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }

    /// `count` bytes at `at` lie inside the file (UInt64 arithmetic: no sum overflows).
    private func inside(_ at: UInt64, _ count: UInt64) -> Bool {
        at <= UInt64(size) && count <= UInt64(size) - at
    }

    /// The stored entries of the archive, by name, each checked to lie inside the file.
    private func readEntries() throws -> [String: Entry] {
        // The end of central directory record: 22 bytes plus a comment of at most 65535,
        // searched backwards from the end (a longer search would read comments as records).
        var eocd = -1
        var at = size - 22
        while at >= 0 && at >= size - 22 - 65535 {
            if u32(at) == 0x0605_4b50 && at + 22 + u16(at + 20) == size { eocd = at; break }
            at -= 1
        }
        guard eocd >= 0 else {
            throw fail("no zip end of central directory record (truncated, or not the zip archive torch.save writes since torch 1.6; the older format is not read)")
        }
        var count = UInt64(u16(eocd + 10))
        var cdSize = UInt64(u32(eocd + 12))
        var cdOffset = UInt64(u32(eocd + 16))
        guard u16(eocd + 4) == 0, u16(eocd + 6) == 0 else { throw fail("a multi-disk zip archive is not supported") }
        // ZIP64 (torch writes its records): the 32-bit fields read 0xFFFF… and the real values
        // are in the ZIP64 end record, found through the locator just before the end record.
        if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            guard eocd >= 20, u32(eocd - 20) == 0x0706_4b50 else { throw fail("the zip end record needs ZIP64 values but there is no ZIP64 locator") }
            let record = u64(eocd - 20 + 8)
            guard inside(record, 56), u32(Int(record)) == 0x0606_4b50 else { throw fail("bad ZIP64 end of central directory record offset \(record)") }
            let r = Int(record)
            count = u64(r + 32)
            cdSize = u64(r + 40)
            cdOffset = u64(r + 48)
        }
        guard inside(cdOffset, cdSize) else { throw fail("the zip central directory (offset \(cdOffset), \(cdSize) bytes) lies past the end of the file (\(size) bytes)") }
        // Each record is at least 46 bytes: a count the directory cannot hold is refused
        // before anything is allocated for it.
        guard count <= cdSize / 46 else { throw fail("the zip end record claims \(count) entries, more than its \(cdSize)-byte central directory holds") }
        var result: [String: Entry] = [:]
        var p = Int(cdOffset)
        let end = Int(cdOffset + cdSize)
        for index in 0..<Int(count) {
            guard p + 46 <= end, u32(p) == 0x0201_4b50 else { throw fail("zip central directory record \(index) is malformed (bad signature or past the directory's end)") }
            let flags = u16(p + 8), method = u16(p + 10)
            var compressed = UInt64(u32(p + 20)), length = UInt64(u32(p + 24))
            let nameLength = u16(p + 28), extraLength = u16(p + 30), commentLength = u16(p + 32)
            var local = UInt64(u32(p + 42))
            guard p + 46 + nameLength + extraLength + commentLength <= end else { throw fail("zip central directory record \(index) runs past the directory's end") }
            let name = String(decoding: UnsafeRawBufferPointer(start: base + p + 46, count: nameLength), as: UTF8.self)
            // ZIP64 extra field: the 8-byte values of the fields that read 0xFFFFFFFF, in order.
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = u16(e), n = u16(e + 2)
                guard e + 4 + n <= extraEnd else { throw fail("zip entry \(name): malformed extra field") }
                if id == 0x0001 {
                    var q = e + 4
                    func next() throws -> UInt64 {
                        guard q + 8 <= e + 4 + n else { throw fail("zip entry \(name): ZIP64 extra field too short") }
                        defer { q += 8 }
                        return u64(q)
                    }
                    if length == 0xFFFF_FFFF { length = try next() }
                    if compressed == 0xFFFF_FFFF { compressed = try next() }
                    if local == 0xFFFF_FFFF { local = try next() }
                }
                e += 4 + n
            }
            p = extraEnd + commentLength
            guard flags & 1 == 0 else { throw fail("zip entry \(name) is encrypted") }
            // torch.save stores its entries (aligned, uncompressed, so they can be mapped);
            // inflating is a decompressor's attack surface this reader does not need.
            guard method == 0, compressed == length else { throw fail("zip entry \(name) is compressed (method \(method)); torch.save stores entries uncompressed") }
            guard inside(local, 30), u32(Int(local)) == 0x0403_4b50 else { throw fail("zip entry \(name): its local header at \(local) is past the end of the file or malformed") }
            let data = local + 30 + UInt64(u16(Int(local) + 26)) + UInt64(u16(Int(local) + 28))
            guard inside(data, length) else { throw fail("zip entry \(name): its \(length) bytes at \(data) run past the end of the file (\(size) bytes)") }
            guard result.updateValue(Entry(offset: Int(data), length: Int(length)), forKey: name) == nil else {
                throw fail("zip entry \(name) appears twice")
            }
        }
        return result
    }

    private func load() throws {
        let entries = try readEntries()
        // `<prefix>/data.pkl`: torch names the prefix after the file; exactly one is expected.
        let pickles = entries.keys.filter { $0.hasSuffix("/data.pkl") && $0.split(separator: "/", omittingEmptySubsequences: false).count == 2 }
        guard pickles.count == 1, let pkl = pickles.first, let pickle = entries[pkl] else {
            throw fail(pickles.isEmpty ? "no <name>/data.pkl in the zip archive (not a torch.save file)" : "more than one data.pkl in the zip archive")
        }
        let prefix = String(pkl.dropLast("data.pkl".count))
        if let order = entries[prefix + "byteorder"] {
            let text = String(decoding: UnsafeRawBufferPointer(start: base + order.offset, count: min(order.length, 16)), as: UTF8.self)
            guard text == "little" else { throw fail("byteorder is \"\(text.prefix(16))\": only little-endian checkpoints are read (big-endian is not)") }
        }
        var machine = PickleMachine(bytes: UnsafeRawBufferPointer(start: base + pickle.offset, count: pickle.length), fail: { self.fail("\(pkl) at byte \($0): \($1)") })
        let root = try machine.run()
        guard case .dict(let dict) = root else { throw fail("\(pkl) holds \(root.kind), not a dict of tensors") }
        for (key, value) in dict.items {
            guard case .string(let name) = key else { throw fail("\(pkl): a key is \(key.kind), not a string") }
            guard case .tensor(let t) = value else { throw fail("\(pkl): \"\(name)\" is \(value.kind), not a tensor") }
            guard let entry = entries[prefix + "data/" + t.key] else { throw fail("\(pkl): tensor \"\(name)\" needs the entry \(prefix)data/\(t.key), which the archive lacks") }
            let elementSize = t.dtype == .f32 ? 4 : 2
            // The storage holds `numel` elements; the tensor must lie inside both it and the entry.
            let (storageBytes, o1) = t.storageCount.multipliedReportingOverflow(by: elementSize)
            guard !o1, storageBytes <= entry.length else {
                throw fail("\(pkl): tensor \"\(name)\": its storage of \(t.storageCount) \(t.dtype.rawValue) needs more bytes than \(prefix)data/\(t.key) has (\(entry.length))")
            }
            let (last, o2) = t.offset.addingReportingOverflow(t.count)
            guard !o2, last <= t.storageCount else {
                throw fail("\(pkl): tensor \"\(name)\" (offset \(t.offset), \(t.count) elements) runs past its storage of \(t.storageCount) elements")
            }
            guard tensors[name] == nil else { throw fail("\(pkl): tensor \"\(name)\" appears twice") }
            tensors[name] = Tensor(dtype: t.dtype, shape: t.shape, offset: entry.offset + t.offset * elementSize, byteCount: t.count * elementSize)
        }
    }
}

// MARK: pickle

/// A tensor as `_rebuild_tensor_v2` describes it, before its bytes are found.
private struct TensorRef {
    let key: String
    let dtype: TorchCheckpoint.DType
    let storageCount: Int
    let offset: Int
    let shape: [Int]
    let count: Int
}

/// A mutable container (dict, list). It may be changed only until it is put inside another
/// value: then it is frozen, so no container can come to hold itself (no cycles) and the
/// nesting depth recorded when it was frozen stays true (so freeing never recurses deeply).
private final class Container {
    var items: [(PickleValue, PickleValue)] = []
    var elements: [PickleValue] = []
    var frozen = false
    var depth = 1
}

private enum PickleValue {
    case none, bool(Bool), int(Int), string(String)
    case tuple([PickleValue], depth: Int)
    case dict(Container), list(Container)
    case global(Global)
    case storage(key: String, dtype: TorchCheckpoint.DType, count: Int)
    case tensor(TensorRef)

    enum Global { case orderedDict, rebuildTensor, storage(TorchCheckpoint.DType) }

    var kind: String {
        switch self {
        case .none: "None"
        case .bool: "a bool"
        case .int: "an int"
        case .string: "a string"
        case .tuple: "a tuple"
        case .dict: "a dict"
        case .list: "a list"
        case .global: "a class or function"
        case .storage: "a storage"
        case .tensor: "a tensor"
        }
    }

    var depth: Int {
        switch self {
        case .tuple(_, let d): d
        case .dict(let c), .list(let c): c.depth
        default: 1
        }
    }
}

/// The restricted unpickler. Limits: the stack and the memo hold at most `maxItems` values,
/// values nest at most `maxDepth` deep, marks at most `maxDepth` deep.
private struct PickleMachine {
    static let maxItems = 1 << 20
    static let maxDepth = 64
    let bytes: UnsafeRawBufferPointer
    let fail: (Int, String) -> RuEmbedError
    var pos = 0
    var stack: [PickleValue] = []
    var marks: [Int] = []
    var memo: [Int: PickleValue] = [:]

    init(bytes: UnsafeRawBufferPointer, fail: @escaping (Int, String) -> RuEmbedError) {
        self.bytes = bytes
        self.fail = fail
    }

    /// Names of the pickle opcodes this reader refuses, so the error says which one it met.
    static let refusedNames: [UInt8: String] = [
        0x69: "INST", 0x6f: "OBJ", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX", 0x50: "PERSID", 0x82: "EXT1", 0x83: "EXT2",
        0x84: "EXT4", 0x49: "INT", 0x4c: "LONG", 0x8b: "LONG4", 0x53: "STRING", 0x54: "BINSTRING", 0x55: "SHORT_BINSTRING",
        0x56: "UNICODE", 0x8d: "BINUNICODE8", 0x8e: "BINBYTES8", 0x42: "BINBYTES", 0x43: "SHORT_BINBYTES", 0x46: "FLOAT",
        0x47: "BINFLOAT", 0x64: "DICT", 0x6c: "LIST", 0x67: "GET", 0x70: "PUT", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP",
        0x8f: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET", 0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
    ]

    mutating func byte() throws -> UInt8 {
        guard pos < bytes.count else { throw fail(pos, "the pickle ends without STOP") }
        defer { pos += 1 }
        return bytes[pos]
    }

    mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= bytes.count - pos else { throw fail(pos, "an argument of \(n) bytes runs past the end of the pickle") }
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + n)])
    }

    mutating func uint(_ n: Int) throws -> UInt64 {
        let b = try take(n)
        var v: UInt64 = 0
        for (k, x) in b.enumerated() { v |= UInt64(x) << (8 * k) }
        return v
    }

    mutating func text(_ n: Int) throws -> String {
        let b = try take(n)
        guard let s = String(validating: b, as: UTF8.self) else { throw fail(pos, "a string is not valid UTF-8") }
        return s
    }

    /// A newline-terminated line of GLOBAL's argument (module or name), at most 256 bytes.
    mutating func line() throws -> String {
        let start = pos
        while pos < bytes.count && bytes[pos] != 0x0a {
            pos += 1
            guard pos - start <= 256 else { throw fail(start, "a GLOBAL name is longer than 256 bytes") }
        }
        guard pos < bytes.count else { throw fail(start, "a GLOBAL name runs past the end of the pickle") }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
        pos += 1
        return s
    }

    mutating func push(_ v: PickleValue) throws {
        guard stack.count < Self.maxItems else { throw fail(pos, "the stack grows past \(Self.maxItems) values") }
        stack.append(v)
    }

    mutating func pop() throws -> PickleValue {
        if let m = marks.last, stack.count <= m { throw fail(pos, "stack underflow below the last MARK") }
        guard let v = stack.popLast() else { throw fail(pos, "stack underflow (an opcode needs a value the stack does not have)") }
        return v
    }

    /// The values since the last MARK, which is removed.
    mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast() else { throw fail(pos, "an opcode needs a MARK and there is none") }
        defer { stack.removeSubrange(m...) }
        return Array(stack[m...])
    }

    /// `child` goes inside a container or tuple: frozen from now on; too deep is refused,
    /// and so is a container put inside itself.
    func adopt(_ child: PickleValue, into parent: Container? = nil) throws -> Int {
        if let parent, case .dict(let c) = child, c === parent { throw fail(pos, "a dict put inside itself") }
        if let parent, case .list(let c) = child, c === parent { throw fail(pos, "a list put inside itself") }
        if case .dict(let c) = child { c.frozen = true }
        if case .list(let c) = child { c.frozen = true }
        guard child.depth < Self.maxDepth else { throw fail(pos, "values nest more than \(Self.maxDepth) deep") }
        return child.depth + 1
    }

    func tuple(_ items: [PickleValue]) throws -> PickleValue {
        var d = 1
        for v in items { d = max(d, try adopt(v)) }
        return .tuple(items, depth: d)
    }

    func int(_ v: PickleValue, _ what: String) throws -> Int {
        guard case .int(let n) = v else { throw fail(pos, "\(what) is \(v.kind), not an int") }
        return n
    }

    func ints(_ v: PickleValue, _ what: String) throws -> [Int] {
        guard case .tuple(let items, _) = v else { throw fail(pos, "\(what) is \(v.kind), not a tuple") }
        return try items.map { try int($0, what) }
    }

    func global(_ module: String, _ name: String) throws -> PickleValue {
        switch (module, name) {
        case ("collections", "OrderedDict"): return .global(.orderedDict)
        case ("torch._utils", "_rebuild_tensor_v2"): return .global(.rebuildTensor)
        case ("torch", "FloatStorage"): return .global(.storage(.f32))
        case ("torch", "HalfStorage"): return .global(.storage(.f16))
        case ("torch", "BFloat16Storage"): return .global(.storage(.bf16))
        default:
            let why = module == "torch" && name.hasSuffix("Storage")
                ? "only float tensors are read (torch.FloatStorage, HalfStorage, BFloat16Storage)"
                : "only collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch float storages are allowed; nothing is imported or run"
            throw fail(pos, "refuses the global \(module).\(name): \(why)")
        }
    }

    mutating func insert(into target: PickleValue, _ pairs: [PickleValue]) throws {
        guard case .dict(let c) = target else { throw fail(pos, "SETITEM(S) on \(target.kind), not a dict") }
        guard !c.frozen else { throw fail(pos, "SETITEM(S) on a dict already inside another value") }
        guard pairs.count % 2 == 0 else { throw fail(pos, "SETITEMS with an odd number of values") }
        for k in stride(from: 0, to: pairs.count, by: 2) {
            c.depth = max(c.depth, try adopt(pairs[k], into: c), try adopt(pairs[k + 1], into: c))
            guard c.items.count < Self.maxItems else { throw fail(pos, "a dict grows past \(Self.maxItems) items") }
            c.items.append((pairs[k], pairs[k + 1]))
        }
    }

    mutating func reduce(_ callable: PickleValue, _ args: PickleValue) throws -> PickleValue {
        guard case .global(let g) = callable, case .tuple(let a, _) = args else {
            throw fail(pos, "REDUCE of \(callable.kind) with \(args.kind): only an allowed global with a tuple")
        }
        switch g {
        case .orderedDict:
            guard a.isEmpty else { throw fail(pos, "OrderedDict with arguments") }
            return .dict(Container())
        case .rebuildTensor:
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            guard a.count == 6 || a.count == 7 else { throw fail(pos, "_rebuild_tensor_v2 with \(a.count) arguments, not 6 or 7") }
            guard case .storage(let key, let dtype, let storageCount) = a[0] else { throw fail(pos, "_rebuild_tensor_v2's storage is \(a[0].kind)") }
            let offset = try int(a[1], "the storage offset")
            let shape = try ints(a[2], "the size")
            let strides = try ints(a[3], "the stride")
            guard case .bool = a[4] else { throw fail(pos, "requires_grad is \(a[4].kind), not a bool") }
            guard case .dict(let hooks) = a[5], hooks.items.isEmpty else { throw fail(pos, "backward hooks are not an empty OrderedDict") }
            if a.count == 7, case .none = a[6] {} else if a.count == 7 { throw fail(pos, "tensor metadata is \(a[6].kind), not None") }
            guard offset >= 0 else { throw fail(pos, "negative storage offset \(offset)") }
            guard shape.count == strides.count, shape.count <= 16 else { throw fail(pos, "size \(shape) and stride \(strides) do not match (or more than 16 dimensions)") }
            var count = 1
            for d in shape {
                guard d >= 0 else { throw fail(pos, "tensor size \(shape) has a negative dimension") }
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o else { throw fail(pos, "tensor size \(shape): the element count overflows") }
                count = p
            }
            // Row-major contiguity, as torch's is_contiguous sees it: dimensions of size 1
            // may carry any stride; an empty tensor has no layout to check.
            if count > 0 {
                var expected = 1
                for (d, s) in zip(shape, strides).reversed() where d != 1 {
                    guard s == expected else { throw fail(pos, "tensor size \(shape) with stride \(strides) is not contiguous row-major (save it with .contiguous())") }
                    expected *= d
                }
            }
            return .tensor(TensorRef(key: key, dtype: dtype, storageCount: storageCount, offset: offset, shape: shape, count: count))
        case .storage:
            throw fail(pos, "a storage type called as a function")
        }
    }

    mutating func run() throws -> PickleValue {
        while true {
            let at = pos
            let op = try byte()
            switch op {
            case 0x80: // PROTO
                let v = try byte()
                guard v <= 5 else { throw fail(at, "pickle protocol \(v) (0 to 5 are known)") }
            case 0x95: // FRAME: a length hint; the opcodes inside are read as usual
                _ = try take(8)
            case 0x2e: // STOP
                guard marks.isEmpty, stack.count == 1 else { throw fail(at, "STOP with \(stack.count) values on the stack (1 expected) or an open MARK") }
                return stack[0]
            case 0x28: // MARK
                guard marks.count < Self.maxDepth else { throw fail(at, "MARKs nest more than \(Self.maxDepth) deep") }
                marks.append(stack.count)
            case 0x7d: try push(.dict(Container())) // EMPTY_DICT
            case 0x5d: try push(.list(Container())) // EMPTY_LIST
            case 0x29: try push(.tuple([], depth: 1)) // EMPTY_TUPLE
            case 0x74: try push(try tuple(try popMark())) // TUPLE
            case 0x85, 0x86, 0x87: // TUPLE1-3
                let n = Int(op - 0x84)
                var items: [PickleValue] = []
                for _ in 0..<n { items.append(try pop()) }
                try push(try tuple(Array(items.reversed())))
            case 0x58: try push(.string(try text(Int(try uint(4))))) // BINUNICODE
            case 0x8c: try push(.string(try text(Int(try byte())))) // SHORT_BINUNICODE
            case 0x4a: try push(.int(Int(Int32(bitPattern: UInt32(try uint(4)))))) // BININT
            case 0x4b: try push(.int(Int(try byte()))) // BININT1
            case 0x4d: try push(.int(Int(try uint(2)))) // BININT2
            case 0x8a: // LONG1: n bytes of two's complement, little-endian; more than 8 is no size
                let n = Int(try byte())
                guard n <= 8 else { throw fail(at, "LONG1 of \(n) bytes: a number past 64 bits") }
                var v = try uint(n)
                if n > 0 && n < 8 && v & (UInt64(1) << UInt64(8 * n - 1)) != 0 { v |= UInt64.max << UInt64(8 * n) }
                try push(.int(Int(bitPattern: UInt(v))))
            case 0x88: try push(.bool(true))
            case 0x89: try push(.bool(false))
            case 0x4e: try push(.none)
            case 0x63: // GLOBAL "module\nname\n"
                let module = try line()
                try push(try global(module, try line()))
            case 0x93: // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard case .string(let m) = module, case .string(let n) = name else { throw fail(at, "STACK_GLOBAL of \(module.kind) and \(name.kind)") }
                try push(try global(m, n))
            case 0x51: // BINPERSID: ("storage", storage type, key, location, numel)
                let pid = try pop()
                guard case .tuple(let a, _) = pid, a.count == 5, case .string("storage") = a[0],
                      case .global(.storage(let dtype)) = a[1], case .string(let key) = a[2], case .string = a[3],
                      case .int(let numel) = a[4], numel >= 0 else {
                    throw fail(at, "a persistent id that is not (\"storage\", float storage type, key, location, element count)")
                }
                try push(.storage(key: key, dtype: dtype, count: numel))
            case 0x52: // REDUCE
                let args = try pop(), callable = try pop()
                try push(try reduce(callable, args))
            case 0x62: // BUILD: a state dict's instance state, {"_metadata": …} (versions only), or empty
                let state = try pop()
                guard case .dict(let target) = try pop() else { throw fail(at, "BUILD of something not a dict") }
                guard !target.frozen else { throw fail(at, "BUILD on a dict already inside another value") }
                switch state {
                case .none: break
                case .dict(let s) where s.items.allSatisfy({ pair in
                    if case .string("_metadata") = pair.0 { return true }
                    return false
                }): break
                default: throw fail(at, "BUILD with a state other than {\"_metadata\": …}")
                }
                try push(.dict(target))
            case 0x73: // SETITEM: the dict stays on the stack under the key and value
                let value = try pop(), key = try pop()
                guard let target = stack.last else { throw fail(at, "stack underflow: SETITEM without a dict") }
                try insert(into: target, [key, value])
            case 0x75: // SETITEMS
                let pairs = try popMark()
                guard let target = stack.last else { throw fail(at, "stack underflow: SETITEMS without a dict") }
                try insert(into: target, pairs)
            case 0x61, 0x65: // APPEND, APPENDS
                let items = op == 0x61 ? [try pop()] : try popMark()
                guard case .list(let c)? = stack.last, !c.frozen else { throw fail(at, "APPEND(S) to something not a list being built") }
                for v in items {
                    c.depth = max(c.depth, try adopt(v, into: c))
                    guard c.elements.count < Self.maxItems else { throw fail(at, "a list grows past \(Self.maxItems) items") }
                    c.elements.append(v)
                }
            case 0x71, 0x72, 0x94: // BINPUT, LONG_BINPUT, MEMOIZE
                let index = op == 0x71 ? Int(try byte()) : op == 0x72 ? Int(try uint(4)) : memo.count
                guard let top = stack.last else { throw fail(at, "stack underflow: memoizing an empty stack") }
                guard memo.count < Self.maxItems || memo[index] != nil else { throw fail(at, "the memo grows past \(Self.maxItems) values") }
                memo[index] = top
            case 0x68, 0x6a: // BINGET, LONG_BINGET
                let index = op == 0x68 ? Int(try byte()) : Int(try uint(4))
                guard let v = memo[index] else { throw fail(at, "memo index \(index) was never set") }
                try push(v)
            default:
                let name = Self.refusedNames[op].map { " \($0)" } ?? ""
                throw fail(at, "refuses pickle opcode 0x\(String(op, radix: 16))\(name): not one a state dict of tensors needs (nothing is executed)")
            }
        }
    }
}
