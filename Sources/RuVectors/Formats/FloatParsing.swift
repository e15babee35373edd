import RuCore
#if canImport(Glibc)
import Glibc
#endif

enum FloatParsing {
    /// Parses a whole field as a finite Float; nil when it is not a number or not finite.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> Float? {
        guard !bytes.isEmpty, bytes.count < 64 else { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: bytes.count + 1) { tmp in
            UnsafeMutableRawPointer(tmp.baseAddress!).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            tmp[bytes.count] = 0
            var end: UnsafeMutablePointer<CChar>?
            let v = strtof(tmp.baseAddress!, &end)
            guard end == tmp.baseAddress! + bytes.count, v.isFinite else { return nil }
            return v
        }
    }
}
