import Foundation
import Synchronization
import UnCLIP
import UnCLIPAPI

/// What a finished job made: each image as delivered (PNG bytes with the run's metadata), its seed, and the engine's
/// native size before any resize.
public struct JobResult: Sendable {
    public let pngs: [[UInt8]]
    public let seeds: [UInt64]
    public let nativeWidth: Int
    public let nativeHeight: Int
    public let width: Int
    public let height: Int
    /// One A1111-style parameters line per image (also in each PNG's `parameters` chunk).
    public let infotexts: [String]
    public let options: GenerationOptions
}

/// One event of a job's stream (Server-Sent Events on /v1/jobs/{id}/events).
public enum JobEvent: Sendable {
    case queued(position: Int)
    case progress(JobProgress)
    case preview(png: [UInt8], step: Int, total: Int)
    case done(JobResult)
    case failed(APIError)

    public var name: String {
        switch self {
        case .queued: return "queued"
        case .progress: return "progress"
        case .preview: return "preview"
        case .done: return "done"
        case .failed: return "error"
        }
    }

    /// The event as SSE text: `event: <name>` and one `data:` line of JSON.
    public func sse(jobID: String) -> String {
        let data: JSON
        switch self {
        case .queued(let p): data = .object([("id", .string(jobID)), ("position", .int(p))])
        case .progress(let p): data = p.json(jobID: jobID)
        case .preview(let png, let step, let total):
            data = .object([("id", .string(jobID)), ("step", .int(step)), ("total", .int(total)),
                            ("b64_png", .string(Data(png).base64EncodedString()))])
        case .done(let r):
            data = .object([("id", .string(jobID)), ("seeds", .array(r.seeds.map { .int(Int($0)) })),
                            ("width", .int(r.width)), ("height", .int(r.height)),
                            ("b64_json", .array(r.pngs.map { .string(Data($0).base64EncodedString()) }))])
        case .failed(let e): data = .object([("id", .string(jobID))] + (e.openAIBody.object ?? []))
        }
        return "event: \(name)\ndata: \(data.text)\n\n"
    }
}

/// Where a running job is.
public struct JobProgress: Sendable {
    public var stage = ""
    public var step = 0
    public var total = 0
    /// 0…1 over the whole job (stages weighted equally, each by its own steps).
    public var fraction = 0.0
    /// Seconds left, from the time per unit of fraction so far (nil before the first step).
    public var eta: Double?
    public var elapsed = 0.0

    func json(jobID: String) -> JSON {
        .object([("id", .string(jobID)), ("stage", .string(stage)), ("step", .int(step)), ("total", .int(total)),
                 ("fraction", .number(double: fraction, int: nil)), ("eta_seconds", eta.map { .number(double: $0, int: nil) } ?? .null),
                 ("elapsed_seconds", .number(double: elapsed, int: nil))])
    }
}

/// A piece of work on the queue: its request, state, progress, subscribers and waiter. Thread-safe; the worker
/// updates it, HTTP handlers read it and wait on it.
public final class Job: Sendable {
    public enum Phase: String, Sendable { case queued, running, done, failed, cancelled }

    public let id: String
    public let request: ImageJobRequest
    public let created = Date()

    struct State {
        var phase: Phase = .queued
        var progress = JobProgress()
        var started: Date?
        var finished: Date?
        var preview: [UInt8]?
        var result: JobResult?
        var error: APIError?
        var cancelRequested = false
        var waiters: [CheckedContinuation<JobResult, any Error>] = []
        var subscribers: [UUID: AsyncStream<JobEvent>.Continuation] = [:]
    }

    let state = Mutex(State())

    public init(id: String, request: ImageJobRequest) {
        self.id = id
        self.request = request
    }

    public var phase: Phase { state.withLock { $0.phase } }
    public var progress: JobProgress { state.withLock { $0.progress } }
    public var preview: [UInt8]? { state.withLock { $0.preview } }
    public var isCancelled: Bool { state.withLock { $0.cancelRequested } }
    public var finished: Date? { state.withLock { $0.finished } }

    /// Waits for the result; cancelling the waiting task (the client went away) cancels the job.
    public func result() async throws -> JobResult {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<JobResult, any Error>) in
                let now: Result<JobResult, any Error>? = state.withLock { s in
                    if let r = s.result { return .success(r) }
                    if let e = s.error { return .failure(e) }
                    s.waiters.append(c)
                    return nil
                }
                if let now { c.resume(with: now) }
            }
        } onCancel: {
            cancel()
        }
    }

    /// The job's events from now on, starting with where it stands.
    public func events() -> AsyncStream<JobEvent> {
        let (stream, continuation) = AsyncStream<JobEvent>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let key = UUID()
        let snapshot: [JobEvent] = state.withLock { s in
            switch s.phase {
            case .queued: s.subscribers[key] = continuation; return []
            case .running:
                s.subscribers[key] = continuation
                return [.progress(s.progress)] + (s.preview.map { [.preview(png: $0, step: s.progress.step, total: s.progress.total)] } ?? [])
            case .done: return s.result.map { [.done($0)] } ?? []
            case .failed, .cancelled: return s.error.map { [.failed($0)] } ?? []
            }
        }
        for e in snapshot { continuation.yield(e) }
        if phase != .queued && phase != .running { continuation.finish() }
        continuation.onTermination = { [weak self] _ in _ = self?.state.withLock { $0.subscribers.removeValue(forKey: key) } }
        return stream
    }

    /// Asks the job to stop: a queued job never starts, a running one stops at its next step.
    public func cancel() { state.withLock { $0.cancelRequested = true } }

    func publish(_ e: JobEvent) {
        let subs = state.withLock { Array($0.subscribers.values) }
        for s in subs { s.yield(e) }
    }

    func markRunning() {
        state.withLock { $0.phase = .running; $0.started = Date() }
    }

    func update(_ p: JobProgress) {
        state.withLock { $0.progress = p }
        publish(.progress(p))
    }

    func setPreview(_ png: [UInt8], step: Int, total: Int) {
        state.withLock { $0.preview = png }
        publish(.preview(png: png, step: step, total: total))
    }

    /// Ends the job once: wakes its waiters and closes its event streams.
    func finish(_ outcome: Result<JobResult, APIError>) {
        let (waiters, subs): ([CheckedContinuation<JobResult, any Error>], [AsyncStream<JobEvent>.Continuation]) = state.withLock { s in
            guard s.result == nil, s.error == nil else { return ([], []) }
            switch outcome {
            case .success(let r): s.result = r; s.phase = .done
            case .failure(let e): s.error = e; s.phase = e.code == "cancelled" ? .cancelled : .failed
            }
            s.finished = Date()
            let w = s.waiters, sub = Array(s.subscribers.values)
            s.waiters = []
            s.subscribers = [:]
            return (w, sub)
        }
        let event: JobEvent
        switch outcome {
        case .success(let r): event = .done(r)
        case .failure(let e): event = .failed(e)
        }
        for s in subs { s.yield(event); s.finish() }
        for w in waiters {
            switch outcome {
            case .success(let r): w.resume(returning: r)
            case .failure(let e): w.resume(throwing: e)
            }
        }
    }

    /// The job as JSON (GET /v1/jobs/{id}).
    public var json: JSON {
        let s = state.withLock { $0 }
        var o: [(String, JSON)] = [("id", .string(id)), ("kind", .string(request.task.kind)), ("status", .string(s.phase.rawValue)),
                                   ("count", .int(request.count)), ("created", .int(Int(created.timeIntervalSince1970)))]
        if s.phase == .running { o.append(("progress", s.progress.json(jobID: id))) }
        if let e = s.error { o.append(("error", e.openAIBody["error"] ?? .null)) }
        return .object(o)
    }
}

extension APIError {
    static func cancelled() -> APIError {
        APIError(status: 499, message: "the job was cancelled", type: "invalid_request_error", code: "cancelled")
    }
}

extension JSON {
    static func int(_ v: Int) -> JSON { .number(double: Double(v), int: Int64(v)) }
}
