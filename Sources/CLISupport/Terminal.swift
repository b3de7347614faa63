import Foundation
import UnCLIP
#if canImport(Glibc)
import Glibc
#endif

/// stdout and stderr that never trap: a closed, full or broken descriptor (`2>&-`, `2>/dev/full`, `| head`) loses the
/// text, not the process. Foundation's FileHandle.write traps on a failed write, and SIGPIPE would kill the process,
/// so writes go through write(2) with SIGPIPE ignored.
public enum Terminal {
    /// Call first: ignores SIGPIPE and puts /dev/null on any of the descriptors 0, 1, 2 that is closed, so a file
    /// the tool opens later can never become its "stderr".
    public static func prepare() {
        signal(SIGPIPE, SIG_IGN)
        for fd: Int32 in 0...2 where fcntl(fd, F_GETFD) == -1 {
            let null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY)
            if null >= 0 && null != fd { dup2(null, fd); close(null) }
        }
    }

    /// Writes all of `text` to `fd`, retrying short writes and EINTR; gives up silently on any other failure.
    public static func write(_ text: String, to fd: Int32) {
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n > 0 { off += n } else if n < 0 && errno == EINTR { continue } else { return }
        }
    }

    public static func out(_ line: String) { write(line + "\n", to: 1) }

    public static func err(_ text: String) {
        guard !text.isEmpty else { return }
        lock.lock()
        openLine = !text.hasSuffix("\n")
        lock.unlock()
        write(text, to: 2)
    }

    /// Ends a line that `err` left open (a progress line redrawn with "\r"), so the next message starts on its own
    /// line instead of being glued to the progress.
    public static func endLine() {
        lock.lock()
        let open = openLine
        openLine = false
        lock.unlock()
        if open { write("\n", to: 2) }
    }

    nonisolated(unsafe) static var openLine = false
    static let lock = NSLock()

    public static var stderrIsTerminal: Bool { isatty(2) == 1 }
}
