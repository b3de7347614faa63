import Foundation
import UnCLIP

/// Progress on stderr: on a terminal one line updated in place ("decoder 12/25  3.1 s  ETA 3.2 s"); otherwise one
/// line per finished stage ("decoder: 25 steps in 6.2 s"), so logs stay small; nothing with `quiet`.
public final class ProgressReporter: @unchecked Sendable {
    let quiet: Bool
    let terminal: Bool
    let start = Date()
    var stage = ""
    var stageStart = Date()
    var lastDraw = Date.distantPast
    var lastTotal = 0

    public init(quiet: Bool, terminal: Bool = Terminal.stderrIsTerminal) {
        self.quiet = quiet
        self.terminal = terminal
    }

    public var handler: ProgressHandler {
        { [self] stage, step, total in
            update(stage, step, total)
            return true
        }
    }

    func update(_ s: String, _ step: Int, _ total: Int) {
        guard !quiet else { return }
        let now = Date()
        if s != stage {
            endStage(now)
            stage = s
            stageStart = now
        }
        lastTotal = total
        guard terminal, now.timeIntervalSince(lastDraw) > 0.1 || step == total || step == 1 else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(stageStart)
        let eta = step > 1 ? elapsed / Double(step - 1) * Double(total - step + 1) : 0
        Terminal.err(String(format: "\r\u{1B}[K%@ %d/%d  %.1f s  ETA %.1f s", s, step, total, elapsed, eta))
    }

    func endStage(_ now: Date) {
        guard !stage.isEmpty else { return }
        let line = String(format: "%@: %d steps in %.1f s", stage, lastTotal, now.timeIntervalSince(stageStart))
        Terminal.err(terminal ? "\r\u{1B}[K" + line + "\n" : line + "\n")
    }

    /// Ends the last stage's line and prints the total time.
    public func finish(_ what: String) {
        guard !quiet else { return }
        let now = Date()
        endStage(now)
        stage = ""
        Terminal.err(String(format: "%@ in %.1f s\n", what, now.timeIntervalSince(start)))
    }
}
