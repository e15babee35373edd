import RuCore
/// A hash table from byte strings to UInt32, for vocabularies.
///
/// Keys are raw UTF-8 bytes, so "ё" (U+0451) and "е\u{0308}" stay two different tokens:
/// a `[String: Int]` would merge them, since String compares by canonical equivalence.
/// Lookups take a pointer and a length, so hot loops look up slices without allocating.
package struct ByteKeyTable: Sendable {
    private var keyBytes: [UInt8] = []
    private var keyStarts: [Int32] = []
    private var keyLengths: [Int32] = []
    private var values: [UInt32] = []
    /// Open addressing with linear probing; each slot holds an entry index + 1, 0 when empty.
    private var slots: [Int32]
    private var mask: Int

    package init(capacity: Int = 16) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: 0, count: size)
        mask = size - 1
    }

    package var count: Int { values.count }

    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int {
        // FNV-1a, 64-bit; vocabulary keys are short.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<n { h = (h ^ UInt64(p[i])) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    @inline(__always)
    package func lookup(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt32? {
        var i = ByteKeyTable.hash(p, n) & mask
        return slots.withUnsafeBufferPointer { slots in
            keyBytes.withUnsafeBufferPointer { bytes in
                while true {
                    let e = Int(slots[i])
                    if e == 0 { return nil }
                    let k = e - 1
                    if Int(keyLengths[k]) == n && (n == 0 || memcmp(bytes.baseAddress! + Int(keyStarts[k]), p, n) == 0) {
                        return values[k]
                    }
                    i = (i + 1) & mask
                }
            }
        }
    }

    package func lookup(_ key: [UInt8]) -> UInt32? {
        key.withUnsafeBufferPointer { b in
            if let base = b.baseAddress { return lookup(base, b.count) }
            var empty: UInt8 = 0
            return lookup(&empty, 0)
        }
    }

    package func lookup(_ key: String) -> UInt32? { lookup(Array(key.utf8)) }

    /// Inserts or replaces; returns the previous value.
    @discardableResult
    package mutating func insert(_ key: [UInt8], _ value: UInt32) -> UInt32? {
        if (values.count + 1) * 2 > slots.count { grow() }
        var i = key.withUnsafeBufferPointer { ByteKeyTable.hash($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) } & mask
        while true {
            let e = Int(slots[i])
            if e == 0 { break }
            let k = e - 1
            if Int(keyLengths[k]) == key.count && keyBytes[Int(keyStarts[k])..<Int(keyStarts[k]) + key.count].elementsEqual(key) {
                let old = values[k]
                values[k] = value
                return old
            }
            i = (i + 1) & mask
        }
        keyStarts.append(Int32(keyBytes.count))
        keyLengths.append(Int32(key.count))
        keyBytes.append(contentsOf: key)
        values.append(value)
        slots[i] = Int32(values.count)
        return nil
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = [Int32](repeating: 0, count: size)
        mask = size - 1
        for k in 0..<values.count {
            let start = Int(keyStarts[k]), n = Int(keyLengths[k])
            var i = keyBytes.withUnsafeBufferPointer { ByteKeyTable.hash($0.baseAddress! + start, n) } & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = Int32(k + 1)
        }
    }

    /// Every key with its value, in insertion order.
    package func forEach(_ body: (ArraySlice<UInt8>, UInt32) -> Void) {
        for k in 0..<values.count {
            let start = Int(keyStarts[k])
            body(keyBytes[start..<start + Int(keyLengths[k])], values[k])
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
