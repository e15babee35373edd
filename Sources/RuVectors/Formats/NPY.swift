import RuCore
#if canImport(Glibc)
import Glibc
#endif

/// NumPy's `.npy` format (version 1.0 and 2.0 headers) for 2-D float matrices.
package enum NPY {
    package struct Header {
        package var descr: String
        package var fortranOrder: Bool
        package var shape: [Int]
    }

    /// Writes a version 1.0 header for a C-order `rows × cols` '<f4' matrix, padded to a fixed
    /// 128 bytes so it can be rewritten in place once the row count is known.
    package static func header(rows: Int, cols: Int) -> [UInt8] {
        var dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(cols)), }"
        let total = 128
        let fixed = 10 // magic (6) + version (2) + header length (2)
        dict += String(repeating: " ", count: total - fixed - dict.utf8.count - 1) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        out.appendLE(UInt16(dict.utf8.count))
        out += Array(dict.utf8)
        return out
    }

    /// Reads and checks the header; leaves the input positioned at the data.
    package static func readHeader(_ read: (Int) throws -> [UInt8], name: String) throws -> Header {
        let prefix = try read(8)
        guard prefix.count == 8, prefix[0] == 0x93, Array(prefix[1..<6]) == Array("NUMPY".utf8) else {
            throw RuEmbedError("\(name): not a .npy file (bad magic)")
        }
        let major = prefix[6]
        let lengthBytes = try read(major == 1 ? 2 : 4)
        var length = 0
        for (i, b) in lengthBytes.enumerated() { length |= Int(b) << (8 * i) }
        guard major >= 1 && major <= 3, length < 1 << 20 else { throw RuEmbedError("\(name): unsupported .npy version \(major)") }
        let dictBytes = try read(length)
        guard dictBytes.count == length, let text = String(validating: dictBytes, as: UTF8.self) else {
            throw RuEmbedError("\(name): truncated .npy header")
        }
        func field(_ key: String) -> Substring? {
            guard let r = text.firstRange(of: "'\(key)':") else { return nil }
            return text[r.upperBound...].drop(while: { $0 == " " })
        }
        guard let descrField = field("descr"), descrField.first == "'",
              let close = descrField.dropFirst().firstIndex(of: "'") else {
            throw RuEmbedError("\(name): .npy header without descr")
        }
        let descr = String(descrField[descrField.index(after: descrField.startIndex)..<close])
        let fortran = field("fortran_order")?.hasPrefix("True") ?? false
        guard let shapeField = field("shape"), shapeField.first == "(", let end = shapeField.firstIndex(of: ")") else {
            throw RuEmbedError("\(name): .npy header without shape")
        }
        let fields = shapeField[shapeField.index(after: shapeField.startIndex)..<end]
            .split(separator: ",").map { $0.trimmingSpaces }.filter { !$0.isEmpty }
        // Every extent a non-negative integer whose product (the element count) fits an Int:
        // the readers size their loops and reads from these.
        var elements = 1
        var shape: [Int] = []
        for field in fields {
            guard let extent = Int(field), extent >= 0 else {
                throw RuEmbedError("\(name): bad .npy shape (\(fields.joined(separator: ", ")))")
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: extent)
            guard !overflow else { throw RuEmbedError("\(name): .npy shape (\(fields.joined(separator: ", "))) is too large") }
            elements = product
            shape.append(extent)
        }
        return Header(descr: descr, fortranOrder: fortran, shape: shape)
    }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
