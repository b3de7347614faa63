import ArgumentParser
import CLISupport
import Foundation
import UnCLIP
import UnCLIPServer

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "An HTTP server: OpenAI's Images API (dall-e-2: generations, edits, variations), AUTOMATIC1111's API, job events and a web page.",
        discussion: """
            One model is loaded once; jobs run one at a time per worker from a bounded queue (full: 429 with Retry-After). \
            SIGTERM or SIGINT stops it gracefully: queued jobs are answered 503, running ones finish. The listening address \
            is printed on stdout once bound. docs/server.md describes every endpoint.
            """)

    @OptionGroup(title: "Model") var model: ModelOption
    @Option(help: ArgumentHelp("The address to bind (default 127.0.0.1: this machine only; 0.0.0.0 for every interface).", valueName: "addr"))
    var host = "127.0.0.1"
    @Option(help: ArgumentHelp("The port (0: any free one; default 8080).", valueName: "n")) var port = 8080
    @Option(name: .customLong("api-key"), help: ArgumentHelp("Require 'Authorization: Bearer KEY' (repeatable; default: $UNCLIP_API_KEY, else no key).", valueName: "key"))
    var apiKeys: [String] = []
    @Option(help: ArgumentHelp("Jobs that may wait besides the running ones (default 8; more are answered 429).", valueName: "n")) var queue = 8
    @Option(help: ArgumentHelp("Jobs run at once, each with its own pipeline (default 1: generations share the cores otherwise).", valueName: "n")) var workers = 1
    @Option(help: ArgumentHelp("Folder for the images behind response_format url (default: a temporary one, removed at exit).", valueName: "dir")) var store: String?
    @Option(help: ArgumentHelp("The largest request body in MB (default 25).", valueName: "MB")) var maxBody = 25
    @Option(help: ArgumentHelp("The scheme://host[:port] image URLs start with (default: from the request's Host header).", valueName: "url")) var publicURL: String?
    @Flag(name: [.short, .long], help: "Log errors only.") var quiet = false
    @OptionGroup(title: "Runtime") var runtime: ThreadOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535 (got \(port))") }
        guard (0...ServerConfiguration.maxQueue).contains(queue) else { throw ValidationError("--queue must be in 0...\(ServerConfiguration.maxQueue) (got \(queue))") }
        guard (1...ServerConfiguration.maxWorkers).contains(workers) else { throw ValidationError("--workers must be in 1...\(ServerConfiguration.maxWorkers) (got \(workers))") }
        guard (1...(ServerConfiguration.maxBodyLimit >> 20)).contains(maxBody) else { throw ValidationError("--max-body must be in 1...\(ServerConfiguration.maxBodyLimit >> 20) MB (got \(maxBody))") }
        guard !host.isEmpty, host.utf8.count <= 255, !host.contains(" ") else { throw ValidationError("--host must be an address or host name (got '\(host)')") }
        for k in apiKeys where k.isEmpty || k.utf8.contains(where: { $0 < 33 || $0 > 126 }) {
            throw ValidationError("--api-key must be printable ASCII without spaces")
        }
        if let u = publicURL {
            guard let url = URL(string: u), ["http", "https"].contains(url.scheme ?? ""), url.host != nil, url.query == nil else {
                throw ValidationError("--public-url must be http(s)://host[:port][/path] (got '\(u)')")
            }
        }
    }

    func run() throws {
        var config = ServerConfiguration()
        config.host = host
        config.port = port
        config.apiKeys = apiKeys
        if apiKeys.isEmpty, let k = ProcessInfo.processInfo.environment["UNCLIP_API_KEY"], !k.isEmpty { config.apiKeys = [k] }
        config.queue = queue
        config.workers = workers
        config.storeDirectory = store
        config.maxBodyBytes = maxBody << 20
        config.publicURL = publicURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        config.quiet = quiet
        let path = try model.path()
        let file = try model.open(path)
        let server = try ImageServer(config: config, model: file, path: path)
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        let host = self.host
        Task {
            do {
                try await server.run { port in
                    Terminal.out("listening on http://\(host.contains(":") ? "[\(host)]" : host):\(port)")
                }
            } catch {
                outcome.set(error)
            }
            done.signal()
        }
        done.wait()
        if let e = outcome.error { throw RuntimeFailure("the server stopped: \(e)") }
    }

    final class Outcome: @unchecked Sendable {
        let lock = NSLock()
        var error: (any Error)?
        func set(_ e: any Error) { lock.lock(); error = e; lock.unlock() }
    }
}
