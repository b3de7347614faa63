import Foundation
import Synchronization
import UnCLIPAPI

/// A bounded queue of jobs and the worker threads that run them, one job per worker at a time (on a 2-core box the
/// default single worker keeps generations from competing for the same cores). Full → 429 with an estimate of when
/// to retry; shutting down → queued jobs answered 503, running ones finish.
public final class JobQueue: Sendable {
    /// Runs one job on a worker's thread (blocking), reporting progress to the job.
    public typealias Runner = @Sendable (_ job: Job, _ worker: Int) throws -> JobResult

    public let capacity: Int
    public let workers: Int
    let runner: Runner

    struct State {
        var waiting: [Job] = []
        var running: [Job] = []
        /// Jobs by id, finished ones kept a while for late readers of their events (bounded).
        var known: [String: Job] = [:]
        var finishedOrder: [String] = []
        var closed = false
        var liveWorkers = 0
        /// Mean seconds per finished job (for Retry-After and queue ETAs).
        var meanSeconds = 0.0
        var finishedCount = 0
    }

    let state = Mutex(State())
    let wake = NSCondition()
    static let keepFinished = 64

    public init(capacity: Int, workers: Int, runner: @escaping Runner) {
        precondition(capacity >= 0 && workers >= 1)
        self.capacity = capacity
        self.workers = workers
        self.runner = runner
    }

    public func start() {
        for w in 0..<workers {
            state.withLock { $0.liveWorkers += 1 }
            let t = Thread { [self] in work(w) }
            t.name = "unclip-worker-\(w)"
            t.stackSize = 8 << 20
            t.start()
        }
    }

    /// Queues a job; `capacity` jobs may wait besides the running ones.
    public func submit(_ job: Job) throws(APIError) {
        let outcome: APIError? = state.withLock { s in
            if s.closed { return .shuttingDown() }
            if s.known[job.id] != nil { return .invalid(nil, "a job with the id '\(job.id)' already exists (X-Unclip-Job-Id must be new)") }
            let free = s.running.count < workers && s.waiting.isEmpty
            guard free || s.waiting.count < capacity else {
                let per = s.meanSeconds > 0 ? s.meanSeconds : 10
                return .queueFull(retryAfter: max(1, Int((per * Double(s.waiting.count + 1) / Double(workers)).rounded(.up))))
            }
            s.waiting.append(job)
            s.known[job.id] = job
            return nil
        }
        if let outcome { throw outcome }
        job.publish(.queued(position: position(of: job) ?? 0))
        signalWorkers()
    }

    public func job(_ id: String) -> Job? { state.withLock { $0.known[id] } }
    public var running: [Job] { state.withLock { $0.running } }
    public var waiting: [Job] { state.withLock { $0.waiting } }
    public var isIdle: Bool { state.withLock { $0.running.isEmpty && $0.waiting.isEmpty } }

    /// 1-based place among the waiting jobs (nil: not waiting).
    public func position(of job: Job) -> Int? {
        state.withLock { s in s.waiting.firstIndex { $0 === job }.map { $0 + 1 } }
    }

    /// A queued job is taken off the queue and ends cancelled; a running one is asked to stop.
    public func cancel(_ job: Job) {
        job.cancel()
        let removed = state.withLock { s -> Bool in
            guard let i = s.waiting.firstIndex(where: { $0 === job }) else { return false }
            s.waiting.remove(at: i)
            remember(&s, job)
            return true
        }
        if removed { job.finish(.failure(.cancelled())) }
    }

    /// No new jobs; every waiting job ends with 503; running jobs go on. Returns once the workers have stopped.
    public func shutdown() async {
        let dropped: [Job] = state.withLock { s in
            s.closed = true
            let w = s.waiting
            s.waiting = []
            return w
        }
        for j in dropped { j.finish(.failure(.shuttingDown())) }
        signalWorkers()
        while state.withLock({ $0.liveWorkers > 0 }) { try? await Task.sleep(nanoseconds: 20_000_000) }
    }

    /// Wakes the idle workers (a synchronous function: NSCondition is not for async contexts).
    func signalWorkers() {
        wake.lock()
        wake.broadcast()
        wake.unlock()
    }

    func work(_ worker: Int) {
        while true {
            wake.lock()
            var next: Job?
            while true {
                let (job, stop) = state.withLock { s -> (Job?, Bool) in
                    if s.closed { return (nil, true) }
                    guard !s.waiting.isEmpty else { return (nil, false) }
                    let j = s.waiting.removeFirst()
                    s.running.append(j)
                    return (j, false)
                }
                if stop { wake.unlock(); state.withLock { $0.liveWorkers -= 1 }; return }
                if let job { next = job; break }
                wake.wait()
            }
            wake.unlock()
            guard let job = next else { continue }
            for (k, j) in waiting.enumerated() { j.publish(.queued(position: k + 1)) }
            let outcome: Result<JobResult, APIError>
            if job.isCancelled {
                outcome = .failure(.cancelled())
            } else {
                job.markRunning()
                let t0 = Date()
                do {
                    outcome = .success(try runner(job, worker))
                } catch let e as APIError {
                    outcome = .failure(e)
                } catch {
                    outcome = .failure(job.isCancelled ? .cancelled() : Self.describe(error))
                }
                let dt = Date().timeIntervalSince(t0)
                state.withLock { s in
                    s.finishedCount += 1
                    s.meanSeconds += (dt - s.meanSeconds) / Double(min(s.finishedCount, 20))
                }
            }
            state.withLock { s in
                s.running.removeAll { $0 === job }
                remember(&s, job)
            }
            job.finish(outcome)
        }
    }

    /// A failure inside the engine: the request was valid (it was checked before queueing), so it is a 500 with the
    /// engine's own message (a typed UnCLIPError says what went wrong).
    static func describe(_ error: any Error) -> APIError {
        if error is CancellationError { return .cancelled() }
        return .server("the engine failed: \(error)")
    }

    func remember(_ s: inout State, _ job: Job) {
        s.finishedOrder.append(job.id)
        while s.finishedOrder.count > Self.keepFinished {
            let old = s.finishedOrder.removeFirst()
            s.known.removeValue(forKey: old)
        }
    }
}
