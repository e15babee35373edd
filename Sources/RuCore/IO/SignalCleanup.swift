#if canImport(Glibc)
import Glibc
#endif

/// Clean-ups that run when SIGINT, SIGTERM or SIGHUP ends the process, before it dies of the
/// signal as it would have (so its parent sees how it ended). One handler runs every action
/// registered (removing the temporary files of uncommitted outputs, giving jobserver tokens
/// back), then a handler that was installed before ours, then the default action; several
/// parts of the library can clean up without replacing each other's handler. A signal ignored
/// at start (nohup, `&` in a script) stays ignored.
package enum SignalCleanup {
    package typealias Action = @convention(c) () -> Void

    static let capacity = 8
    nonisolated(unsafe) static let actions: UnsafeMutablePointer<Action?> = {
        let p = UnsafeMutablePointer<Action?>.allocate(capacity: capacity)
        p.initialize(repeating: nil, count: capacity)
        return p
    }()
    /// The handler each signal had before ours (nil: the default), by signal number.
    nonisolated(unsafe) static let previous: UnsafeMutablePointer<(@convention(c) (Int32) -> Void)?> = {
        let p = UnsafeMutablePointer<(@convention(c) (Int32) -> Void)?>.allocate(capacity: 65)
        p.initialize(repeating: nil, count: 65)
        return p
    }()
    nonisolated(unsafe) static var installed = false
    static let lock = Lock(())
    package static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    /// Registers `action` (async-signal-safe: write(2), unlink(2) on prepared data); at most
    /// `capacity` actions, the same one once.
    package static func add(_ action: Action) {
        lock.withLock { _ in
            install()
            for i in 0..<capacity {
                if let a = actions[i], unsafeBitCast(a, to: Int.self) == unsafeBitCast(action, to: Int.self) { return }
            }
            for i in 0..<capacity where actions[i] == nil {
                actions[i] = action
                return
            }
        }
    }

    private static func install() {
        guard !installed else { return }
        installed = true
        // Made now, not for the first time inside the handler (see PendingTemporaryFiles.install).
        _ = actions; _ = previous; _ = capacity
        for s in signals {
            var old = sigaction()
            guard sigaction(s, nil, &old) == 0 else { continue }
            let handler = old.__sigaction_handler.sa_handler
            if let handler, unsafeBitCast(handler, to: Int.self) == 1 { continue } // SIG_IGN
            previous[Int(s)] = handler
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signal in
                for i in 0..<SignalCleanup.capacity { SignalCleanup.actions[i]?() }
                if let before = SignalCleanup.previous[Int(signal)] { before(signal) }
                Glibc.signal(signal, SIG_DFL)
                raise(signal)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(s, &action, nil)
        }
    }
}
