import RuCore
#if canImport(Glibc)
import Glibc
#endif

/// How downloads report themselves (through a `Reporter`).
public enum DownloadReporting: Sendable {
    /// A progress bar (bytes, rate, ETA) redrawn in place: for a terminal (`Reporter.progress`).
    case bar
    /// One line per file once it is done (`Reporter.note`): for logs.
    case lines
    /// Nothing but errors.
    case quiet
}

/// The progress of one file's download.
final class DownloadProgress {
    let reporting: DownloadReporting
    let reporter: Reporter
    let label: String
    let total: Int64?
    let initial: Int64
    private(set) var done: Int64
    private let started = DownloadProgress.now()
    private var lastDraw = 0.0

    init(reporting: DownloadReporting, reporter: Reporter, label: String, total: Int64?, initial: Int64) {
        // A bar is for the big files (weights); config and tokenizer files come and go unseen.
        self.reporting = reporting == .bar && ((total ?? 0) < 1_000_000 || reporter.progress == nil) ? .quiet : reporting
        self.reporter = reporter
        self.label = label
        self.total = total
        self.initial = initial
        done = initial
        if self.reporting == .bar { draw() }
    }

    /// Another `count` bytes arrived (negative when a restart throws bytes away).
    func advance(_ count: Int64) {
        done += count
        guard reporting == .bar else { return }
        let now = DownloadProgress.now()
        if now - lastDraw >= 0.1 { draw() }
    }

    /// A restart from zero (the server ignored our Range, or a resumed file failed its check).
    func restart() {
        done = 0
    }

    /// The file is complete: the bar's last state and a newline, or the file's line.
    func finish() {
        let seconds = max(DownloadProgress.now() - started, 0.001)
        let fetched = done - initial
        switch reporting {
        case .bar:
            draw(final: true)
            reporter.progress?(nil)
        case .lines:
            var line = "downloaded \(label): \(DownloadProgress.bytes(done))"
            if initial > 0 { line += " (resumed at \(DownloadProgress.bytes(initial)))" }
            line += " in \(NumberFormat.fixed(seconds, decimals: 1)) s, \(DownloadProgress.bytes(Int64(Double(fetched) / seconds)))/s"
            reporter.note(line)
        case .quiet:
            break
        }
    }

    /// Clears a half-drawn bar before an error message.
    func abandon() {
        if reporting == .bar { reporter.progress?(nil) }
    }

    private func draw(final: Bool = false) {
        lastDraw = DownloadProgress.now()
        let seconds = max(lastDraw - started, 0.001)
        let rate = Double(done - initial) / seconds
        var line = "\(label) "
        if let total, total > 0 {
            let fraction = min(Double(done) / Double(total), 1)
            let width = 24, filled = Int(fraction * Double(width))
            line += String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            line += " \(Int(fraction * 100))% \(DownloadProgress.bytes(done))/\(DownloadProgress.bytes(total))"
        } else {
            line += DownloadProgress.bytes(done)
        }
        line += " \(DownloadProgress.bytes(Int64(rate)))/s"
        if !final, let total, rate > 0, total > done {
            line += " ETA " + DownloadProgress.duration(Double(total - done) / rate)
        } else if final {
            line += " in " + DownloadProgress.duration(seconds)
        }
        reporter.progress?(line)
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// 512 B, 3.4 kB, 12.0 MB, 1.1 GB (decimal units, as tqdm and the hub show sizes).
    static func bytes(_ n: Int64) -> String {
        if n < 1000 { return "\(n) B" }
        var value = Double(n)
        for unit in ["kB", "MB", "GB", "TB"] {
            value /= 1000
            if value < 999.95 || unit == "TB" { return NumberFormat.fixed(value, decimals: 1) + " " + unit }
        }
        return "\(n) B"
    }

    /// 0:07, 12:34, 1:02:03.
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60)
        let two = { (v: Int) in v < 10 ? "0\(v)" : "\(v)" }
        return h > 0 ? "\(h):\(two(m)):\(two(sec))" : "\(m):\(two(sec))"
    }
}
