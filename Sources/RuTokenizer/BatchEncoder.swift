import RuCore

/// Tokenizes many records at once on `Parallel`'s threads: each thread takes a range of the
/// records and a workspace of its own from a pool, results land at their record's index, so
/// the output order is the input order whatever the thread count. What ru-tok runs.
public final class BatchEncoder: Sendable {
    /// The tokenizer every text goes through.
    public let tokenizer: Tokenizer
    private let pool = Lock<[EncodeWorkspace]>([])
    private let made = Lock<[EncodeWorkspace]>([])

    /// A batch encoder over `tokenizer`; its per-thread workspaces are made on first use.
    public init(tokenizer: Tokenizer) {
        self.tokenizer = tokenizer
    }

    /// Runs `body(k, workspace, &encoding, &scalars)` for every k in 0..<count, in parallel,
    /// and stores its result at index k.
    package func map<T>(_ count: Int, _ body: (Int, EncodeWorkspace, inout Encoding, inout [UInt32]) -> T) -> [T] {
        var results = [T?](repeating: nil, count: count)
        withoutActuallyEscaping(body) { body in
          results.withUnsafeMutableBufferPointer { out in
            let out = out
            Parallel.forRanges(count) { lo, hi in
                let workspace = self.takeWorkspace()
                var encoding = Encoding()
                var scalars: [UInt32] = []
                for k in lo..<hi { out[k] = body(k, workspace, &encoding, &scalars) }
                self.returnWorkspace(workspace)
            }
          }
        }
        return results.map { $0! }
    }

    /// Encodings of `texts` with `prompt` in front, cut to `maxLength` tokens.
    public func encode(_ texts: [String], prompt: String = "", maxLength: Int? = nil) -> [Encoding] {
        let promptScalars = prompt.unicodeScalars.map(\.value)
        return map(texts.count) { k, workspace, encoding, scalars in
            var text = texts[k], replaced = 0
            _ = text.withUTF8 {
                tokenizer.encode(utf8: UnsafeRawBufferPointer($0), prompt: promptScalars, lossy: false, replaced: &replaced,
                                 maxLength: maxLength, workspace: workspace, scalars: &scalars, into: &encoding)
            }
            return encoding
        }
    }

    /// Every workspace made so far (their counters: truncations, dropped characters).
    package var workspaces: [EncodeWorkspace] { made.withLock { $0 } }

    private func takeWorkspace() -> EncodeWorkspace {
        if let w = pool.withLock({ $0.popLast() }) { return w }
        let w = EncodeWorkspace()
        made.withLock { $0.append(w) }
        return w
    }

    private func returnWorkspace(_ w: EncodeWorkspace) {
        pool.withLock { $0.append(w) }
    }
}
