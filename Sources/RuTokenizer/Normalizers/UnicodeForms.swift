import RuCore
import Foundation

/// NFC, NFD, NFKC and NFKD with alignments.
///
/// Decomposition goes scalar by scalar (each part keeps the alignment of the scalar it
/// came from), then canonical reordering, then, for the composed forms, canonical
/// composition where a composite takes the alignment of its starter — what the Rust
/// library's `unicode-normalization-alignments` does. The per-scalar mappings come from
/// Foundation and are cached, so text that is already normalized costs a table lookup.
struct UnicodeFormNormalizer: Normalizer {
    enum Form { case nfc, nfd, nfkc, nfkd }
    let form: Form
    init(_ form: Form) { self.form = form }

    func normalize(_ text: inout NormalizedText) {
        UnicodeForms.decompose(&text, compatibility: form == .nfkc || form == .nfkd)
        if form == .nfc || form == .nfkc { UnicodeForms.compose(&text) }
    }
}

enum UnicodeForms {
    private static let canonicalCache = Lock<[UInt32: [UInt32]]>([:])
    private static let compatibilityCache = Lock<[UInt32: [UInt32]]>([:])
    private static let compositionCache = Lock<[UInt64: UInt32]>([:])

    static func decomposition(_ v: UInt32, compatibility: Bool) -> [UInt32] {
        func cached() -> [UInt32]? {
            compatibility ? compatibilityCache.withLock { $0[v] } : canonicalCache.withLock { $0[v] }
        }
        if let hit = cached() { return hit }
        let s = String(Character(Unicode.Scalar(v)!))
        let d = compatibility ? s.decomposedStringWithCompatibilityMapping : s.decomposedStringWithCanonicalMapping
        let parts = d.unicodeScalars.map(\.value)
        if compatibility { compatibilityCache.withLock { $0[v] = parts } } else { canonicalCache.withLock { $0[v] = parts } }
        return parts
    }

    @inline(__always)
    static func combiningClass(_ v: UInt32) -> UInt8 {
        v < 0x300 ? 0 : Unicode.Scalar(v)!.properties.canonicalCombiningClass.rawValue
    }

    static func decompose(_ text: inout NormalizedText, compatibility: Bool) {
        // Hangul syllables and most of the BMP decompose; ASCII never does.
        if text.scalars.allSatisfy({ $0 < 0xA0 }) { return }
        text.map { v, emit in
            if v < 0xA0 { emit(v); return }
            for part in decomposition(v, compatibility: compatibility) { emit(part) }
        }
        reorder(&text)
    }

    /// Canonical ordering: a run of non-starters is sorted by combining class, stably.
    static func reorder(_ text: inout NormalizedText) {
        var i = 0
        let n = text.count
        while i < n {
            guard combiningClass(text.scalars[i]) != 0 else { i += 1; continue }
            var j = i
            while j < n && combiningClass(text.scalars[j]) != 0 { j += 1 }
            if j - i > 1 {
                let order = (i..<j).sorted { a, b in
                    let ca = combiningClass(text.scalars[a]), cb = combiningClass(text.scalars[b])
                    return ca != cb ? ca < cb : a < b
                }
                let copy = text
                for (k, from) in order.enumerated() {
                    text.scalars[i + k] = copy.scalars[from]
                    text.starts[i + k] = copy.starts[from]
                    text.ends[i + k] = copy.ends[from]
                }
            }
            i = j
        }
    }

    /// The primary composite of `a` + `b`, if any.
    static func composite(_ a: UInt32, _ b: UInt32) -> UInt32? {
        let key = UInt64(a) << 32 | UInt64(b)
        if let hit = compositionCache.withLock({ $0[key] }) { return hit == 0 ? nil : hit }
        var s = String.UnicodeScalarView()
        s.append(Unicode.Scalar(a)!)
        s.append(Unicode.Scalar(b)!)
        let c = String(s).precomposedStringWithCanonicalMapping.unicodeScalars.map(\.value)
        let result: UInt32 = c.count == 1 ? c[0] : 0
        compositionCache.withLock { $0[key] = result }
        return result == 0 ? nil : result
    }

    /// Whether `v` can be the second part of a composition. Every such scalar is either a
    /// combining mark or lies at U+0900 and above (Indic vowel signs, Hangul jamo, ...), so
    /// plain Latin and Cyrillic letters skip the lookup.
    @inline(__always)
    static func mayComposeAsSecond(_ v: UInt32, combiningClass: UInt8) -> Bool {
        combiningClass != 0 || v >= 0x900
    }

    static func compose(_ text: inout NormalizedText) {
        guard text.scalars.contains(where: { $0 >= 0x300 }) else { return }
        var out = NormalizedText()
        var starter = -1
        var lastClass: UInt8 = 0
        for i in 0..<text.count {
            let v = text.scalars[i]
            let cc = combiningClass(v)
            if starter >= 0 && mayComposeAsSecond(v, combiningClass: cc) {
                let adjacent = out.count - 1 == starter
                let blocked = !adjacent && (lastClass == 0 || lastClass >= cc)
                if !blocked, let p = composite(out.scalars[starter], v) {
                    out.scalars[starter] = p
                    continue
                }
            }
            if cc == 0 { starter = out.count }
            out.append(from: text, at: i)
            lastClass = cc
        }
        text = out
    }
}
