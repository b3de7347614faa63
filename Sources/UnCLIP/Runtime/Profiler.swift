import Foundation

/// Per-operation wall-time totals, on when UNCLIP_PROFILE is set (any value); printed to stderr at exit as a table.
/// For finding where a pipeline step's time goes; costs two clock reads per op when on, one branch when off.
public enum Profiler {
    public static let enabled = ProcessInfo.processInfo.environment["UNCLIP_PROFILE"] != nil
    nonisolated(unsafe) static var totals: [String: (seconds: Double, calls: Int)] = [:]
    nonisolated(unsafe) static var registered = false
    static let lock = NSLock()
    nonisolated(unsafe) static var current: [String] = []
    nonisolated(unsafe) static var liveBytes = 0, peakBytes = 0
    nonisolated(unsafe) static var peakAt = ""

    @inline(__always)
    static func measure<R>(_ name: String, _ body: () throws -> R) rethrows -> R {
        guard enabled else { return try body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        lock.lock()
        current.append(name)
        if !registered {
            registered = true
            atexit { Profiler.report() }
        }
        lock.unlock()
        defer {
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
            lock.lock()
            current.removeLast()
            totals[name, default: (0, 0)].seconds += dt
            totals[name, default: (0, 0)].calls += 1
            lock.unlock()
        }
        return try body()
    }

    nonisolated(unsafe) static var macCount: Int64 = 0
    static let macLock = NSLock()

    /// Multiply-accumulates run by the matrix operations (linear, convolution, attention) in this process so far;
    /// always counted (one locked add per operation). For a benchmark's achieved-GOPS figures.
    public static var macs: Int64 {
        macLock.lock()
        defer { macLock.unlock() }
        return macCount
    }

    @inline(__always)
    static func count(macs n: Int) {
        macLock.lock()
        macCount += Int64(n)
        macLock.unlock()
    }

    /// Names the part of a model `body` runs (for the peak-memory line of the report); not timed.
    @inline(__always)
    static func label<R>(_ name: @autoclosure () -> String, _ body: () throws -> R) rethrows -> R {
        guard enabled else { return try body() }
        lock.lock()
        current.append(name())
        lock.unlock()
        defer {
            lock.lock()
            current.removeLast()
            lock.unlock()
        }
        return try body()
    }

    /// Tensor storage taken (+) or given back (−), when profiling: the report gives the peak of live tensor bytes
    /// and the operations that were running when it was reached.
    static func track(bytes: Int) {
        lock.lock()
        liveBytes += bytes
        if liveBytes > peakBytes {
            // the process around it, read again only every MiB of new peak (a /proc read per tensor would dominate)
            if liveBytes >= peakBytes + (1 << 20) || peakRSS == 0 { peakRSS = residentBytes(); peakPoolHeld = BufferPool.shared.heldBytes }
            peakBytes = liveBytes
            peakAt = current.joined(separator: " > ")
        }
        lock.unlock()
    }

    nonisolated(unsafe) static var peakRSS = 0, peakPoolHeld = 0

    /// The process's resident bytes now (/proc/self/statm's second field, in pages); 0 where it cannot be read.
    static func residentBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = s.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    public static func report() {
        let total = totals.values.reduce(0) { $0 + $1.seconds }
        var out = "unclip profile (UNCLIP_PROFILE): op, seconds, calls, share of profiled time\n"
        for (k, v) in totals.sorted(by: { $0.value.seconds > $1.value.seconds }) {
            out += "  " + k.padding(toLength: 24, withPad: " ", startingAt: 0)
                + String(format: "%9.3f s %7d  %5.1f%%\n", v.seconds, v.calls, total > 0 ? 100 * v.seconds / total : 0)
        }
        out += String(format: "  peak of live tensor memory: %.1f MiB, in ", Double(peakBytes) / 1048576)
            + (peakAt.isEmpty ? "(no operation)" : peakAt) + "\n"
            + String(format: "  process resident then: %.1f MiB, of it %.1f MiB of freed buffers kept for reuse\n",
                     Double(peakRSS) / 1048576, Double(peakPoolHeld) / 1048576)
        FileHandle.standardError.write(Data(out.utf8))
    }
}
