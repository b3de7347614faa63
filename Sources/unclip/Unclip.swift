import ArgumentParser
import UnCLIP

struct Unclip: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unclip",
        abstract: "unCLIP (DALL·E 2-family) text → image on the CPU, from one model file.",
        discussion: """
            Without -m the model is $UNCLIP_MODEL, else the embedded models/\(ModelOption.defaultModelName). Defaults are \
            diffusers' UnCLIPPipeline's unless the model file sets its own (the embedded model: decoder guidance 4); \
            flags override both. Every written file's path is printed on stdout, one per line; progress goes to stderr. \
            Exit codes: 0 ok, 1 runtime error, 2 usage error.
            """,
        version: "unclip \(UnCLIPVersion.string)",
        subcommands: [Generate.self, Vary.self, Edit.self, Extend.self, Interpolate.self, TextDiff.self, Serve.self, Info.self, Tokenize.self])
}
