#if canImport(Glibc)
import Glibc
#endif

/// Reads records separated by a byte (newline, or NUL), across files, numbering them from 1
/// within each file: the one record reader of the tools. A CR before a newline is dropped;
/// a last record without its separator counts.
///
/// A batch owns a copy of its records' bytes, so the read buffer can move on while workers
/// read the batch (slices of the read buffer would make every refill copy it).
package final class RecordReader {
    package struct Record: Sendable {
        package var file: String
        package var number: Int      // 1-based within its file, for messages
        package var range: Range<Int> // in the batch's bytes
    }

    package struct Batch: Sendable {
        package var bytes: [UInt8] = []
        package var records: [Record] = []
        package init() {}
        package func text(_ k: Int) -> ArraySlice<UInt8> { bytes[records[k].range] }
    }

    private enum Source { case path(String), opened(ByteInput) }
    private let sources: [Source]
    private let separator: UInt8
    private let stripCarriageReturn: Bool
    private var fileIndex = -1
    private var input: ByteInput?
    private var pending: [UInt8] = []
    private var pendingStart = 0
    private var atEOF = true
    private var lineInFile = 0
    private var chunk = [UInt8](repeating: 0, count: 1 << 20)
    package private(set) var bytesRead = 0

    /// Called with each input when it is opened (e.g. to set its `beforeWaiting` hook).
    package var onOpen: ((ByteInput) -> Void)?

    /// Standard input when the caller has opened it already (and put back what it read to
    /// look at it, `ByteInput.unread`).
    private let standardInput: ByteInput?

    package init(paths: [String], separator: UInt8, standardInput: ByteInput? = nil) {
        sources = (paths.isEmpty ? ["-"] : paths).map(Source.path)
        self.separator = separator
        self.standardInput = standardInput
        stripCarriageReturn = separator == UInt8(ascii: "\n")
    }

    /// The records of one input already opened.
    package init(input: ByteInput, separator: UInt8) {
        sources = [.opened(input)]
        self.separator = separator
        standardInput = nil
        stripCarriageReturn = separator == UInt8(ascii: "\n")
    }

    /// The next batch of at most `maxRecords` records or about `maxBytes` bytes; empty at the end.
    package func nextBatch(maxRecords: Int, maxBytes: Int) throws -> Batch {
        var batch = Batch()
        batch.bytes.reserveCapacity(min(maxBytes, 1 << 20))
        while batch.records.count < maxRecords && batch.bytes.count < maxBytes {
            guard try next(into: &batch) else { break }
        }
        return batch
    }

    /// Appends the next record to `batch`; false at the end of the last input.
    private func next(into batch: inout Batch) throws -> Bool {
        while true {
            if let input {
                let found = pending.withUnsafeBufferPointer { p -> Int? in
                    guard pendingStart < p.count else { return nil }
                    guard let hit = memchr(p.baseAddress! + pendingStart, Int32(separator), p.count - pendingStart) else { return nil }
                    return p.baseAddress!.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                }
                if let cut = found {
                    append(input.name, pendingStart..<cut, to: &batch)
                    pendingStart = cut + 1
                    return true
                }
                if !atEOF {
                    if pendingStart > 0 {
                        pending.removeSubrange(0..<pendingStart)
                        pendingStart = 0
                    }
                    let n = try chunk.withUnsafeMutableBytes { try input.read(into: $0) }
                    bytesRead += n
                    if n == 0 { atEOF = true } else { pending.append(contentsOf: chunk[0..<n]) }
                    continue
                }
                // The end of a file: a last record without its separator still counts.
                if pendingStart < pending.count {
                    append(input.name, pendingStart..<pending.count, to: &batch)
                    pendingStart = pending.count
                    return true
                }
                self.input = nil
            }
            fileIndex += 1
            guard fileIndex < sources.count else { return false }
            pending.removeAll(keepingCapacity: true)
            switch sources[fileIndex] {
            case .path(let path):
                input = try path == "-" ? standardInput ?? ByteInput.open(path) : ByteInput.open(path)
            case .opened(let opened):
                input = opened
            }
            onOpen?(input!)
            pendingStart = 0
            atEOF = false
            lineInFile = 0
        }
    }

    private func append(_ file: String, _ range: Range<Int>, to batch: inout Batch) {
        var end = range.upperBound
        if stripCarriageReturn && end > range.lowerBound && pending[end - 1] == 0x0D { end -= 1 }
        let start = batch.bytes.count
        batch.bytes.append(contentsOf: pending[range.lowerBound..<end])
        lineInFile += 1
        batch.records.append(Record(file: file, number: lineInFile, range: start..<batch.bytes.count))
    }
}

