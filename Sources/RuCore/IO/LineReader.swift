/// Splits a byte input into records at a delimiter (newline by default, NUL for `-0`).
///
/// A record is handed out as a borrowed byte buffer, valid until the next call. A final
/// record without a delimiter still counts; a trailing delimiter does not start another.
package final class LineReader {
    package let input: ByteInput
    package let delimiter: UInt8
    /// 1-based number of the record last returned.
    package private(set) var lineNumber = 0
    private var buffer: [UInt8]
    private var start = 0, end = 0
    private var atEOF = false

    package init(input: ByteInput, delimiter: UInt8 = 0x0A, bufferSize: Int = 1 << 20) {
        self.input = input
        self.delimiter = delimiter
        buffer = [UInt8](repeating: 0, count: bufferSize)
    }

    /// Calls `body` with the next record (without its delimiter); returns false at the end.
    package func next<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        while true {
            if let i = buffer[start..<end].firstIndex(of: delimiter) {
                let record = start..<i
                start = i + 1
                lineNumber += 1
                return try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[record])) }
            }
            if atEOF {
                guard start < end else { return nil }
                let record = start..<end
                start = end
                lineNumber += 1
                return try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[record])) }
            }
            // Move the partial record to the front and read more, growing for long records.
            if start > 0 {
                buffer.withUnsafeMutableBytes { p in
                    p.baseAddress!.copyMemory(from: p.baseAddress! + start, byteCount: end - start)
                }
                end -= start
                start = 0
            }
            // Doubling in place: a temporary array of the same size would make a long line
            // cost a third more at the moment of growing.
            if end == buffer.count { buffer.append(contentsOf: repeatElement(0, count: buffer.count)) }
            let got = try buffer.withUnsafeMutableBytes { p in
                try input.read(into: UnsafeMutableRawBufferPointer(rebasing: p[end...]))
            }
            if got == 0 { atEOF = true } else { end += got }
        }
    }

    /// The next record as a String, or nil at the end. Invalid UTF-8 is an error naming the line.
    package func nextString(strippingCR: Bool = true) throws -> String? {
        try next { bytes in
            var bytes = bytes
            if strippingCR, let last = bytes.last, last == 0x0D {
                bytes = UnsafeRawBufferPointer(rebasing: bytes.dropLast())
            }
            guard let s = String(validating: bytes, as: UTF8.self) else {
                throw RuEmbedError("\(input.name): line \(lineNumber): invalid UTF-8")
            }
            return s
        }
    }
}
