/// The one rule for what a number in a model's configuration files may be (config.json,
/// sentence_bert_config.json, config_sentence_transformers.json, tokenizer.json,
/// tokenizer_config.json, modules.json, a Pooling config, a safetensors header).
///
/// Those files come from whoever published the model: a value is bad data, never a trap or
/// a silent truncation. An integer key takes a JSON number that is a whole number within the
/// key's stated bounds (no fraction, no 1e30, no −1 where −1 means nothing); a float key a
/// finite number within its bounds. Everything else is a `RuEmbedError` (exit 2) that names the
/// file, the key and what was wrong.
package struct ConfigValues {
    /// The file, as messages name it.
    package let path: String
    package let json: JSONValue

    package init(_ json: JSONValue, path: String) {
        self.json = json
        self.path = path
    }

    /// Reads a JSON file (an error naming it when it is not JSON).
    package static func read(_ path: String) throws -> ConfigValues {
        ConfigValues(try JSONValue.read(path), path: path)
    }

    /// The value of `key`, nil when absent or null (a null means "the default" in these files).
    package func value(_ key: String) -> JSONValue? {
        guard let v = json[key], v != .null else { return nil }
        return v
    }

    package func error(_ key: String, _ problem: String) -> RuEmbedError {
        RuEmbedError("\(path): \"\(key)\": \(problem)")
    }

    /// An integer in `range`; `fallback` when the key is absent (an error naming the key
    /// when there is no fallback).
    package func int(_ key: String, _ range: ClosedRange<Int>, default fallback: Int? = nil) throws -> Int {
        if let n = try optionalInt(key, range) { return n }
        if let fallback { return fallback }
        throw RuEmbedError("\(path): no \"\(key)\"")
    }

    /// An integer in `range`, or nil when the key is absent or null.
    package func optionalInt(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard let n = ConfigValues.integer(v, range) else { throw error(key, ConfigValues.notInteger(v, range)) }
        return n
    }

    /// A finite number accepted by `valid` (described by `bounds`, e.g. "> 0 and ≤ 1").
    package func double(_ key: String, default fallback: Double, bounds: String,
                       _ valid: (Double) -> Bool) throws -> Double {
        guard let v = value(key) else { return fallback }
        guard let d = v.numberValue, d.isFinite, valid(d) else {
            throw error(key, "\(v.serialized) is not a finite number \(bounds)")
        }
        return d
    }

    package func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let v = value(key) else { return fallback }
        guard case .bool(let b) = v else { throw error(key, "\(v.serialized) is not true or false") }
        return b
    }

    package func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.stringValue else { throw error(key, "\(v.serialized) is not a string") }
        return s
    }

    // MARK: The rule itself, for readers that walk arrays or nested objects

    /// `v` as an Int when it is a whole number within `range`; nil otherwise. The range is
    /// checked on the Double before converting, so 1e19 or inf never reach `Int(_:)` (a trap).
    package static func integer(_ v: JSONValue, _ range: ClosedRange<Int>) -> Int? {
        guard let d = v.numberValue, d.isFinite, d == d.rounded(.towardZero),
              d >= Double(range.lowerBound), d <= Double(range.upperBound) else { return nil }
        // Double(upperBound) may round up past upperBound (Int.max): compare again as Int.
        guard let n = Int(exactly: d), range.contains(n) else { return nil }
        return n
    }

    /// What is wrong with `v` for an integer key, for messages.
    package static func notInteger(_ v: JSONValue, _ range: ClosedRange<Int>) -> String {
        let bounds = range.upperBound == Int.max ? "≥ \(range.lowerBound)" : "in \(range.lowerBound)...\(range.upperBound)"
        return "\(v.serialized) is not an integer \(bounds)"
    }

    /// The largest token id a tokenizer's table may hold for `entries` listed tokens: ids may
    /// leave gaps (tokens added after the vocabulary), but a table never grows to more than
    /// twice the entries the file lists (or 65,536 slots), so a 40 KB file cannot ask for
    /// gigabytes through one id of 4,000,000,000.
    package static func tokenIDLimit(entries: Int) -> Int {
        max(2 * entries, 1 << 16) - 1
    }
}
