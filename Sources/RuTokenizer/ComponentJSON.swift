import RuCore
/// One component object of `tokenizer.json` ("normalizer", "model", ...), read strictly:
/// an unknown type, an unknown key or a value of the wrong kind is an error that names it,
/// never a silently different tokenization.
struct ComponentJSON {
    let json: JSONValue
    let family: String
    let type: String
    let pairs: [(key: String, value: JSONValue)]

    init(_ json: JSONValue, family: String, defaultType: String? = nil) throws {
        guard case .object(let pairs) = json else { throw RuEmbedError("\(family): expected a JSON object") }
        self.json = json
        self.family = family
        self.pairs = pairs
        if let type = json["type"]?.stringValue {
            self.type = type
        } else if let defaultType {
            self.type = defaultType
        } else {
            throw RuEmbedError("\(family): no \"type\"")
        }
    }

    var place: String { "\(family) \(type)" }

    func unsupportedType(supported: String) -> RuEmbedError {
        RuEmbedError("\(family) type \"\(type)\" is not supported (supported: \(supported))")
    }

    func unsupported(_ key: String, _ value: JSONValue) -> RuEmbedError {
        RuEmbedError("\(place): option \"\(key)\": \(value.serialized) is not supported")
    }

    /// Fails on keys outside `keys` (and "type").
    func allow(_ keys: [String]) throws {
        for (key, _) in pairs where key != "type" && !keys.contains(key) {
            throw RuEmbedError("\(place): option \"\(key)\" is not supported")
        }
    }

    func value(_ key: String) -> JSONValue? {
        guard let v = json[key], v != .null else { return nil }
        return v
    }

    func bool(_ key: String, default d: Bool) throws -> Bool { try optionalBool(key) ?? d }

    func optionalBool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw RuEmbedError("\(place): \"\(key)\" must be true or false") }
        return b
    }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.stringValue else { throw RuEmbedError("\(place): \"\(key)\" must be a string") }
        return s
    }

    func requiredString(_ key: String) throws -> String {
        guard let s = try string(key) else { throw RuEmbedError("\(place): \"\(key)\" is missing") }
        return s
    }

    /// A whole number in `range`, by the one rule for numbers in model files (ConfigValues).
    func int(_ key: String, _ range: ClosedRange<Int> = 0...999_999_999_999_999) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard let n = ConfigValues.integer(v, range) else {
            throw RuEmbedError("\(place): \"\(key)\": \(ConfigValues.notInteger(v, range))")
        }
        return n
    }

    func requiredArray(_ key: String) throws -> [JSONValue] {
        guard let a = value(key)?.arrayValue else { throw RuEmbedError("\(place): \"\(key)\" must be an array") }
        return a
    }

    /// A pattern object {"String": "..."}; {"Regex": "..."} is refused here.
    func literalPattern(_ key: String) throws -> [UInt32] {
        guard let p = value(key) else { throw RuEmbedError("\(place): \"\(key)\" is missing") }
        if let s = p["String"]?.stringValue { return UTF8Encoding.scalars(s) }
        if let r = p["Regex"]?.stringValue {
            throw RuEmbedError("\(place): regex pattern \(JSONValue.string(r).serialized) is not supported (only literal String patterns)")
        }
        throw RuEmbedError("\(place): \"\(key)\" must be {\"String\": ...}")
    }
}
