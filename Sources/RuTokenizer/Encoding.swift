import RuCore
/// The tokens of one text: ids and, for each, the range of original Unicode scalars it
/// covers (Python's character offsets); special tokens added around the text cover (0, 0).
public struct Encoding: Equatable {
    /// Token ids, special tokens included.
    public var ids: [UInt32] = []
    /// Each token's first byte in the UTF-8 of the input text (0 for added special tokens).
    public var starts: [Int32] = []
    /// Each token's end (one past its last byte) in the UTF-8 of the input text.
    public var ends: [Int32] = []
    /// True for tokens the post-processor added.
    public var special: [Bool] = []
    /// For an added token found in the text: the White_Space scalars its matched text
    /// begins and ends with (lstrip/rstrip take spaces along), packed as lead << 16 | trail;
    /// -1 for tokens whose text is their vocabulary entry. Offset trimming looks at it.
    package var matchedSpaces: [Int32] = []

    /// An empty encoding.
    public init() {}

    /// The number of tokens.
    public var count: Int { ids.count }

    package mutating func append(_ id: UInt32, start: Int32, end: Int32, special isSpecial: Bool = false, matchedSpaces spaces: Int32 = -1) {
        ids.append(id)
        starts.append(start)
        ends.append(end)
        special.append(isSpecial)
        matchedSpaces.append(spaces)
    }

    package mutating func removeAll() {
        ids.removeAll(keepingCapacity: true)
        starts.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
        special.removeAll(keepingCapacity: true)
        matchedSpaces.removeAll(keepingCapacity: true)
    }

    /// Keeps `count` tokens from the end given (the Rust library's truncation directions).
    package mutating func truncate(to count: Int, fromLeft: Bool) {
        guard ids.count > count else { return }
        if fromLeft {
            let drop = ids.count - count
            ids.removeFirst(drop); starts.removeFirst(drop); ends.removeFirst(drop); special.removeFirst(drop)
            matchedSpaces.removeFirst(drop)
        } else {
            ids.removeLast(ids.count - count); starts.removeLast(starts.count - count)
            ends.removeLast(ends.count - count); special.removeLast(special.count - count)
            matchedSpaces.removeLast(matchedSpaces.count - count)
        }
    }
}
