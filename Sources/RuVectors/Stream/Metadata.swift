import RuCore
/// The optional JSON extension of a chunk: facts about how the vectors were made.
///
/// Known keys (all optional): `model` {`id`, `digest`}, `prompt`, `pooling`, `normalize`,
/// `truncate_dim`, `tokenizer_digest`, `precision`, `int8` {`starts`, `steps`}.
/// Unknown keys are kept and passed on unchanged.
public struct StreamMetadata: Equatable, Sendable {
    package var object: [(key: String, value: JSONValue)]

    /// Metadata with these keys, in this order.
    public init(_ object: [(key: String, value: JSONValue)] = []) {
        self.object = object
    }

    public static func == (a: StreamMetadata, b: StreamMetadata) -> Bool {
        JSONValue.object(a.object) == JSONValue.object(b.object)
    }

    /// Whether there are no keys.
    public var isEmpty: Bool { object.isEmpty }

    /// The value of a key; setting nil removes the key, setting a new key appends it.
    public subscript(key: String) -> JSONValue? {
        get { JSONValue.object(object)[key] }
        set {
            object.removeAll { $0.key == key }
            if let newValue { object.append((key, newValue)) }
        }
    }

    /// The digest of the model that made the vectors; chunks of one stream must agree on it.
    public var modelDigest: String? { self["model"]?["digest"]?.stringValue }
    /// The model as it was asked for (`model.id`): a folder or a hub id.
    public var modelID: String? { self["model"]?["id"]?.stringValue }

    /// The same metadata without the per-chunk int8 calibration.
    package var withoutCalibration: StreamMetadata {
        var copy = self
        copy["int8"] = nil
        return copy
    }

    func encoded() -> [UInt8] {
        isEmpty ? [] : Array(JSONValue.object(object).serialized.utf8)
    }

    static func decode(_ bytes: UnsafeRawBufferPointer) throws -> StreamMetadata {
        if bytes.isEmpty { return StreamMetadata() }
        let value: JSONValue
        do { value = try JSONValue.parse(bytes) } catch {
            throw ChunkDecodeError("bad extension JSON: \(error)")
        }
        guard case .object(let pairs) = value else { throw ChunkDecodeError("extension JSON is not an object") }
        return StreamMetadata(pairs)
    }
}
