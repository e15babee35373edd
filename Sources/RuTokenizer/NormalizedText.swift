import RuCore
/// Text as the pipeline transforms it: Unicode scalar values, each remembering the range
/// of original scalars it came from, so token offsets point into the caller's text.
///
/// The Rust library keeps byte offsets and Python converts them to character offsets;
/// keeping scalar offsets throughout gives the same numbers as Python directly.
package struct NormalizedText {
    package var scalars: [UInt32] = []
    package var starts: [Int32] = []
    package var ends: [Int32] = []

    package init() {}

    /// Original scalars `range` of `text`, each aligned to itself.
    package init(_ text: UnsafeBufferPointer<UInt32>, range: Range<Int>) {
        scalars = Array(text[range])
        starts = (range.lowerBound..<range.upperBound).map { Int32($0) }
        ends = starts.map { $0 + 1 }
    }

    package init(scalars: [UInt32]) {
        self.scalars = scalars
        starts = (0..<scalars.count).map { Int32($0) }
        ends = starts.map { $0 + 1 }
    }

    package var count: Int { scalars.count }
    package var isEmpty: Bool { scalars.isEmpty }

    package mutating func removeAll() {
        scalars.removeAll(keepingCapacity: true)
        starts.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    package mutating func append(_ scalar: UInt32, start: Int32, end: Int32) {
        scalars.append(scalar)
        starts.append(start)
        ends.append(end)
    }

    /// Appends `source[i]` with its alignment.
    @inline(__always)
    package mutating func append(from source: NormalizedText, at i: Int) {
        append(source.scalars[i], start: source.starts[i], end: source.ends[i])
    }

    /// Rebuilds the text scalar by scalar: `body` gets each scalar and appends what replaces it
    /// (nothing to remove it, several to expand it) through the sink, which gives every
    /// replacement the alignment of the scalar it came from.
    package mutating func map(_ body: (UInt32, (UInt32) -> Void) -> Void) {
        var out = NormalizedText()
        out.scalars.reserveCapacity(scalars.count)
        out.starts.reserveCapacity(scalars.count)
        out.ends.reserveCapacity(scalars.count)
        for i in 0..<scalars.count {
            let s = starts[i], e = ends[i]
            body(scalars[i]) { out.append($0, start: s, end: e) }
        }
        self = out
    }

    /// Puts `prefix` in front; the new scalars take the alignment of the first scalar
    /// (the Rust library's `prepend`). Does nothing to empty text.
    package mutating func prepend(_ prefix: [UInt32]) {
        guard !scalars.isEmpty, !prefix.isEmpty else { return }
        scalars.insert(contentsOf: prefix, at: 0)
        starts.insert(contentsOf: repeatElement(starts[0], count: prefix.count), at: 0)
        ends.insert(contentsOf: repeatElement(ends[0], count: prefix.count), at: 0)
    }

    package func slice(_ range: Range<Int>) -> NormalizedText {
        var out = NormalizedText()
        out.scalars = Array(scalars[range])
        out.starts = Array(starts[range])
        out.ends = Array(ends[range])
        return out
    }
}

/// Text cut into pieces. A piece is either text still to be tokenized (a range of the
/// shared scalars) or a token already decided (an added token found in the text).
package struct PieceList {
    package struct Piece {
        package var lower: Int32
        package var upper: Int32
        /// The added token this piece is, or -1 for text.
        package var token: Int32
        /// Original offsets of a decided token.
        package var originalStart: Int32
        package var originalEnd: Int32
        /// Leading << 16 | trailing White_Space scalars of a decided token's matched text.
        package var matchedSpaces: Int32 = 0

        package var isText: Bool { token < 0 }
        package var range: Range<Int> { Int(lower)..<Int(upper) }
    }

    package var text = NormalizedText()
    package var pieces: [Piece] = []

    package init() {}

    package mutating func removeAll() {
        text.removeAll()
        pieces.removeAll(keepingCapacity: true)
    }

    /// Appends a text piece copied from `source[range]`.
    package mutating func appendText(_ source: NormalizedText, _ range: Range<Int>) {
        guard !range.isEmpty else { return }
        let lower = Int32(text.count)
        text.scalars.append(contentsOf: source.scalars[range])
        text.starts.append(contentsOf: source.starts[range])
        text.ends.append(contentsOf: source.ends[range])
        pieces.append(Piece(lower: lower, upper: Int32(text.count), token: -1, originalStart: 0, originalEnd: 0))
    }

    /// Appends the decided token of `piece` (from another list).
    package mutating func appendToken(of piece: Piece) {
        appendToken(UInt32(piece.token), originalStart: piece.originalStart, originalEnd: piece.originalEnd, matchedSpaces: piece.matchedSpaces)
    }

    package mutating func appendToken(_ id: UInt32, originalStart: Int32, originalEnd: Int32, matchedSpaces: Int32) {
        let at = Int32(text.count)
        pieces.append(Piece(lower: at, upper: at, token: Int32(id), originalStart: originalStart, originalEnd: originalEnd,
                            matchedSpaces: matchedSpaces))
    }
}
