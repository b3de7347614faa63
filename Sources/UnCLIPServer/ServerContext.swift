import Hummingbird
import NIOCore

/// The request context of every route: Hummingbird's basic one plus the connection, so a handler waiting on a job
/// can see the client go away (and cancel the job).
struct ServerContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
