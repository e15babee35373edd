import RuCore

/// How a record's bytes hold its id and text: the text itself, `id<TAB>text`, or a JSON object.
package enum RecordSyntax: Sendable, Equatable {
    case text
    case tsv
    case jsonl(idField: String, textField: String)

    /// A record split into its parts.
    package struct Fields {
        /// The id the record carries; nil for plain text (the caller numbers it).
        package var id: String?
        /// The text as UTF-8 bytes (text, TSV) or as a string (JSON).
        package var textBytes: ArraySlice<UInt8>
        package var textString: String?
        /// The parsed object of a JSONL record.
        package var object: JSONValue?

        /// Calls `body` with the text's UTF-8.
        package func withText<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
            if var s = textString { return try s.withUTF8 { try body(UnsafeRawBufferPointer($0)) } }
            return try textBytes.withUnsafeBytes(body)
        }
    }

    /// Splits `record` into id and text. Errors are messages without the record's place.
    /// With `lossy`, invalid UTF-8 in an id or a JSON line is replaced with U+FFFD (counted in
    /// `replaced`); the text of text and TSV records is left for the tokenizer to check.
    /// `needsText` false: a JSON record's text field is not required (ru-tok --decode).
    package func parse(_ record: ArraySlice<UInt8>, lossy: Bool, replaced: inout Int, needsText: Bool = true) throws -> Fields {
        switch self {
        case .text:
            return Fields(id: nil, textBytes: record, textString: nil, object: nil)
        case .tsv:
            guard let tab = record.firstIndex(of: 0x09) else { throw RuEmbedError("no tab: --tsv wants id<TAB>text") }
            let id = try RecordSyntax.decode(record[record.startIndex..<tab], lossy: lossy, replaced: &replaced)
            return Fields(id: id, textBytes: record[(tab + 1)...], textString: nil, object: nil)
        case .jsonl(let idField, let textField):
            var line = Array(record)
            if lossy, String(validating: line, as: UTF8.self) == nil {
                var repaired: [UInt32] = []
                _ = line.withUnsafeBytes { TextDecoding.scalars($0, lossy: true, into: &repaired, replaced: &replaced) }
                line = UTF8Encoding.bytes(repaired)
            }
            let value: JSONValue
            do { value = try line.withUnsafeBytes { try JSONValue.parse($0) } } catch {
                throw RuEmbedError(String(validating: line, as: UTF8.self) == nil
                    ? "invalid UTF-8 (--lossy replaces bad bytes with U+FFFD)" : "not a JSON object: \(error)")
            }
            guard case .object = value else { throw RuEmbedError("not a JSON object") }
            var id: String? = nil
            if let v = value[idField], v != .null {
                switch v {
                case .string(let s): id = s
                case .number(let d): id = JSONValue.format(d)
                default: throw RuEmbedError("field \"\(idField)\" is neither a string nor a number")
                }
            }
            let text = value[textField]?.stringValue
            if needsText && text == nil { throw RuEmbedError("field \"\(textField)\" is missing or not a string") }
            return Fields(id: id, textBytes: [], textString: text, object: value)
        }
    }

    /// Bytes as a string: strict, or with U+FFFD for invalid UTF-8 when `lossy`.
    package static func decode(_ bytes: ArraySlice<UInt8>, lossy: Bool, replaced: inout Int) throws -> String {
        if let s = String(validating: bytes, as: UTF8.self) { return s }
        if !lossy { throw RuEmbedError("invalid UTF-8 (--lossy replaces bad bytes with U+FFFD)") }
        var scalars: [UInt32] = []
        _ = Array(bytes).withUnsafeBytes { TextDecoding.scalars($0, lossy: true, into: &scalars, replaced: &replaced) }
        return String(String.UnicodeScalarView(scalars.map { Unicode.Scalar($0)! }))
    }
}
