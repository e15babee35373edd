import RuCore
import RuTokenizer

/// How a long record is cut into windows, one vector each (`ru-embed --split TOKENS[:OVERLAP]`,
/// `EncoderOptions.split`, `SentenceEncoder.embedDocuments`).
///
/// The record is tokenized whole, without truncation (prompt and special tokens as usual).
/// Its content tokens, those that are neither added by the post-processor nor wholly inside
/// the prompt, are cut into windows of at most `tokens` content tokens, each window starting
/// `tokens - overlap` after the one before and the last one ending with the last content
/// token: consecutive windows share `overlap` tokens, and a record of n > `tokens` content
/// tokens gives ceil((n − overlap) / (tokens − overlap)) windows (else one). Each window goes
/// through the model as the record's own leading special tokens, the prompt's tokens, the
/// window's tokens and the record's trailing special tokens (e.g. `[CLS] query: … [SEP]`).
/// An empty text gives one window with no content tokens, as the model embeds an empty text.
public struct DocumentSplit: Sendable, Equatable {
    /// Content tokens per window, 1 or more.
    public var tokens: Int
    /// Content tokens consecutive windows share, 0 ≤ overlap < tokens.
    public var overlap: Int

    /// Windows of `tokens` content tokens sharing `overlap` tokens (checked when an encoder
    /// is made with it).
    public init(tokens: Int, overlap: Int = 0) {
        self.tokens = tokens
        self.overlap = overlap
    }

    /// Parses `TOKENS` or `TOKENS:OVERLAP` (the `--split` argument); throws `.invalidArgument`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let t = Int(parts[0]), parts.count == 1 || Int(parts[1]) != nil else {
            throw RuEmbedError.invalidArgument("--split \(text): expected TOKENS or TOKENS:OVERLAP (whole numbers)")
        }
        self.init(tokens: t, overlap: parts.count == 2 ? Int(parts[1])! : 0)
        if let problem { throw RuEmbedError.invalidArgument("--split \(text): \(problem)") }
    }

    /// Why these numbers cannot cut a record, or nil.
    public var problem: String? {
        if tokens < 1 { return "TOKENS must be 1 or more" }
        if overlap < 0 || overlap >= tokens { return "OVERLAP must be 0 or more and less than TOKENS (\(tokens))" }
        return nil
    }

    /// How many windows a record of `n` content tokens gives.
    public func windowCount(contentTokens n: Int) -> Int {
        n <= tokens ? 1 : (n - overlap + (tokens - overlap) - 1) / (tokens - overlap)
    }

    /// The content-token ranges of the windows of a record of `n` content tokens, in order.
    public func windows(contentTokens n: Int) -> [Range<Int>] {
        var out: [Range<Int>] = [], start = 0
        while true {
            let end = min(start + tokens, n)
            out.append(start..<end)
            if end >= n { return out }
            start += tokens - overlap
        }
    }

    /// The token ids of each window of `encoding` (a whole record, special tokens added, the
    /// prompt's `promptScalars` scalars first): leading special tokens + prompt tokens +
    /// window + trailing special tokens. Prompt tokens are the leading non-special tokens that
    /// end within the prompt (a token that spans the prompt's end belongs to the text).
    package func cut(_ encoding: Encoding, promptScalars: Int) -> [[UInt32]] {
        let ids = encoding.ids, special = encoding.special
        var lead = 0
        while lead < ids.count && special[lead] { lead += 1 }
        var trail = ids.count
        while trail > lead && special[trail - 1] { trail -= 1 }
        var p = lead
        while p < trail && Int(encoding.ends[p]) <= promptScalars { p += 1 }
        let head = ids[..<p], tail = ids[trail...]
        return windows(contentTokens: trail - p).map { w in
            Array(head) + ids[(p + w.lowerBound)..<(p + w.upperBound)] + Array(tail)
        }
    }
}
