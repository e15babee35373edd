import RuCompute
import RuCore
import RuTokenizer
import RuVectors
import RuHub
#if canImport(Glibc)
import Glibc
#endif

/// One tensor of a safetensors file: where its bytes lie in the mapped file.
package struct TensorInfo {
    package enum DType: String { case f32 = "F32", f16 = "F16", bf16 = "BF16" }
    package let name: String
    package let dtype: DType
    package let shape: [Int]
    package let file: String
    let base: UnsafeRawPointer
    let byteCount: Int
    package var elementCount: Int { shape.reduce(1, *) }
}

/// The tensors of a model folder's safetensors file(s), memory-mapped read-only and used in
/// place: f32 tensors are read straight from the mapping, f16/bf16 ones converted on request.
/// A sharded checkpoint is found through `model.safetensors.index.json`.
package final class SafetensorsArchive {
    private struct Mapping { let path: String; let base: UnsafeMutableRawPointer; let size: Int }
    private var mappings: [Mapping] = []
    package private(set) var tensors: [String: TensorInfo] = [:]
    package private(set) var files: [String] = []

    package init(folder: String) throws {
        files = try SafetensorsArchive.weightFiles(folder: folder)
        for file in files { try map(file) }
    }

    /// The weights files of a folder: model.safetensors, or the shards its index names.
    package static func weightFiles(folder: String) throws -> [String] {
        let single = folder + "/model.safetensors"
        let index = folder + "/model.safetensors.index.json"
        if access(single, R_OK) == 0 { return [single] }
        guard access(index, R_OK) == 0 else {
            let hint = access(folder + "/pytorch_model.bin", R_OK) == 0
                ? " (pytorch_model.bin is not read: PyTorch's pickle format can run code when loaded; convert it to safetensors, e.g. load the folder with transformers' AutoModel.from_pretrained and save_pretrained it again, which writes model.safetensors)"
                : ""
            throw RuEmbedError("\(folder): no model.safetensors or model.safetensors.index.json\(hint)")
        }
        let json = try JSONValue.read(index)
        guard case .object(let map)? = json["weight_map"] else { throw RuEmbedError("\(index): no \"weight_map\" object") }
        var files: [String] = []
        var seen = Set<String>()
        for (_, value) in map {
            // A shard is a file beside the index: no path leads out of the model folder.
            guard let shard = value.stringValue, !shard.isEmpty, !shard.contains("/"), shard != ".", shard != ".." else {
                throw RuEmbedError("\(index): weight_map value \(value.serialized) is not a file name in the model folder")
            }
            if seen.insert(shard).inserted { files.append(folder + "/" + shard) }
        }
        return files
    }

    deinit {
        for m in mappings { munmap(m.base, m.size) }
    }

    /// The tensor called `name`, or an error naming it and the files searched.
    package func tensor(_ name: String) throws -> TensorInfo {
        guard let t = tensors[name] else {
            throw RuEmbedError("\(files.map(basename).joined(separator: ", ")): no tensor \"\(name)\"")
        }
        return t
    }

    /// The tensor's values as f32, checking its shape: the mapped bytes themselves for an
    /// f32 tensor (no copy), a converted copy for f16 and bf16.
    @_optimize(speed)
    package func floats(_ name: String, shape: [Int]) throws -> TensorData {
        let t = try tensor(name)
        guard t.shape == shape else {
            throw RuEmbedError("\(t.file): tensor \"\(name)\" has shape \(t.shape), expected \(shape)")
        }
        switch t.dtype {
        case .f32:
            return TensorData(pointer: t.base.assumingMemoryBound(to: Float.self), count: t.elementCount, owned: false, info: t)
        case .f16:
            let out = UnsafeMutablePointer<Float>.allocate(capacity: t.elementCount)
            let p = t.base.assumingMemoryBound(to: UInt16.self)
            for k in 0..<t.elementCount { out[k] = Float(Float16(bitPattern: UInt16(littleEndian: p[k]))) }
            return TensorData(pointer: out, count: t.elementCount, owned: true, info: t)
        case .bf16:
            let out = UnsafeMutablePointer<Float>.allocate(capacity: t.elementCount)
            let p = t.base.assumingMemoryBound(to: UInt16.self)
            for k in 0..<t.elementCount { out[k] = Float(bitPattern: UInt32(UInt16(littleEndian: p[k])) << 16) }
            return TensorData(pointer: out, count: t.elementCount, owned: true, info: t)
        }
    }

    /// Tells the kernel the mapped pages of `info` are no longer needed (they were copied into
    /// another layout), so they leave the resident set; reading them again would reload them.
    package func release(_ info: TensorInfo) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: info.base) + page - 1) / page * page
        let end = (Int(bitPattern: info.base) + info.byteCount) / page * page
        if end > start { madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_DONTNEED) }
    }

    private func map(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw RuEmbedError.io("\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        // Mapped, so a regular file: a FIFO planted as the weights would block the open's
        // reader forever, a directory or device has no size to map.
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw RuEmbedError("\(path): not a regular file")
        }
        let size = Int(st.st_size)
        guard size >= 8 else { throw RuEmbedError("\(path): too short for a safetensors file") }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw RuEmbedError.io("\(path): cannot map the file: \(String(cString: strerror(errno)))")
        }
        mappings.append(Mapping(path: path, base: base, size: size))
        // The length is a u64 from the file: compared as UInt64 before it becomes an Int,
        // so 2^63 or more is a bad length, not a trap.
        let rawLength = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
        guard rawLength > 0, rawLength <= UInt64(size - 8) else { throw RuEmbedError("\(path): bad safetensors header length \(rawLength)") }
        let headerLength = Int(rawLength)
        let header: JSONValue
        do { header = try JSONValue.parse(UnsafeRawBufferPointer(start: base + 8, count: headerLength)) } catch {
            throw RuEmbedError("\(path): the safetensors header is not valid JSON: \(error)")
        }
        guard case .object(let entries) = header else { throw RuEmbedError("\(path): the safetensors header is not an object") }
        let dataStart = UnsafeRawPointer(base) + 8 + headerLength
        let dataSize = size - 8 - headerLength
        var spans: [(begin: Int, end: Int, name: String)] = []
        for (name, entry) in entries where name != "__metadata__" {
            func bad(_ problem: String) -> RuEmbedError { RuEmbedError("\(path): tensor \"\(name)\" \(problem)") }
            guard let dtypeName = entry["dtype"]?.stringValue else { throw bad("has no dtype") }
            let dtype = TensorInfo.DType(rawValue: dtypeName)
            // Older checkpoints (BERT, RoBERTa) carry transformers' integer buffers
            // `embeddings.position_ids` / `token_type_ids`: never read, so skipped (their
            // bytes still checked below); any other integer tensor is refused.
            let skippedBuffer = dtype == nil && (dtypeName == "I64" || dtypeName == "I32")
                && (name.hasSuffix("embeddings.position_ids") || name.hasSuffix("embeddings.token_type_ids"))
            guard dtype != nil || skippedBuffer else {
                throw bad("has dtype \(dtypeName); F32, F16 and BF16 are supported")
            }
            // Shapes and offsets by the one rule for numbers in model files (whole numbers,
            // no fractions, no 1e30), and every product checked: the tensor's byte count
            // must be exactly its span of the data, which lies inside the file.
            guard let dims = entry["shape"]?.arrayValue else { throw bad("has no \"shape\" list") }
            var shape: [Int] = []
            var count = 1
            for d in dims {
                guard let n = ConfigValues.integer(d, 0...Int.max) else {
                    throw bad("has shape \(JSONValue.array(dims).serialized): \(ConfigValues.notInteger(d, 0...Int.max))")
                }
                let (product, overflow) = count.multipliedReportingOverflow(by: n)
                guard !overflow else { throw bad("has shape \(JSONValue.array(dims).serialized), more elements than a file can hold") }
                shape.append(n)
                count = product
            }
            let elementSize = dtype == .f32 || dtypeName == "I32" ? 4 : dtypeName == "I64" ? 8 : 2
            let (byteCount, overflow) = count.multipliedReportingOverflow(by: elementSize)
            guard !overflow else { throw bad("has shape \(shape), more bytes than a file can hold") }
            guard let offsets = entry["data_offsets"]?.arrayValue, offsets.count == 2,
                  let begin = ConfigValues.integer(offsets[0], 0...dataSize),
                  let end = ConfigValues.integer(offsets[1], begin...dataSize) else {
                throw bad("has data_offsets \(entry["data_offsets"]?.serialized ?? "(none)") that are not [begin, end] with 0 ≤ begin ≤ end ≤ \(dataSize), the data's size")
            }
            guard end - begin == byteCount else {
                throw bad("has data_offsets [\(begin), \(end)] (\(end - begin) bytes) that do not fit its shape \(shape) of \(dtypeName) (\(byteCount) bytes)")
            }
            guard let dtype else { spans.append((begin, end, name)); continue }
            if dtype == .f32 && (Int(bitPattern: dataStart + begin) % 4 != 0) {
                throw bad("is not 4-byte aligned")
            }
            guard tensors[name] == nil else { throw bad("is listed twice (here or in another shard)") }
            spans.append((begin, end, name))
            tensors[name] = TensorInfo(name: name, dtype: dtype, shape: shape, file: path,
                                       base: dataStart + begin, byteCount: byteCount)
        }
        // Tensors may not share bytes: one tensor's weights read as another's are no model.
        spans.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        for (a, b) in zip(spans, spans.dropFirst()) where b.begin < a.end {
            throw RuEmbedError("\(path): tensors \"\(a.name)\" and \"\(b.name)\" overlap (data_offsets [\(a.begin), \(a.end)] and [\(b.begin), \(b.end)])")
        }
    }
}

/// f32 values of one tensor: borrowed from the mapping, or an owned converted copy.
package final class TensorData {
    package let pointer: UnsafePointer<Float>
    package let count: Int
    package let info: TensorInfo
    private let owned: Bool
    init(pointer: UnsafePointer<Float>, count: Int, owned: Bool, info: TensorInfo) {
        self.pointer = pointer
        self.count = count
        self.owned = owned
        self.info = info
    }
    deinit { if owned { UnsafeMutablePointer(mutating: pointer).deallocate() } }
    package subscript(k: Int) -> Float { pointer[k] }
    package var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

func basename(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}
