import ArgumentParser
import Foundation
import UnCLIP

/// A failure at run time (bad file, bad model, I/O): exit 1 with "<tool>: <message>".
public struct RuntimeFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// A usage error found after parsing (a combination of flags, a bad value): exit 2 with the message and a hint.
public struct UsageError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// Runs a root command with the project's exit codes: 0 ok (help and --version on stdout), 1 runtime error,
/// 2 usage error (ArgumentParser's own is 64, EX_USAGE), 130 cancelled by a signal. Messages go to stderr prefixed
/// with the tool's name; no trap reaches the user.
public enum CommandMain {
    public static func run<Root: ParsableCommand>(_ root: Root.Type, tool: String, arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
        Terminal.prepare()
        var command: ParsableCommand
        do {
            command = try root.parseAsRoot(arguments)
        } catch {
            finish(root, tool: tool, error: error, parsing: true)
        }
        do {
            try command.run()
        } catch {
            finish(root, tool: tool, error: error, parsing: false)
        }
        exit(0)
    }

    /// Parses only (for tools whose work is top-level code): the parsed command, or the process exits with the
    /// codes above (help and --version: 0 on stdout).
    public static func parse<Root: ParsableCommand>(_ root: Root.Type, tool: String, arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> ParsableCommand {
        Terminal.prepare()
        do {
            var command = try root.parseAsRoot(arguments)
            let leaves = Root.configuration.subcommands.map { ObjectIdentifier($0) }
            if leaves.contains(ObjectIdentifier(type(of: command))) { return command }
            try command.run()  // the root itself, or ArgumentParser's help command: help or a missing-subcommand error
            exit(0)
        } catch {
            finish(root, tool: tool, error: error, parsing: true)
        }
    }

    static func finish<Root: ParsableCommand>(_ root: Root.Type, tool: String, error: Error, parsing: Bool) -> Never {
        Terminal.endLine()  // an error after progress output starts on its own line
        if let e = error as? UsageError {
            Terminal.err("\(tool): \(e.description)\n(see \(tool) --help)\n")
            exit(2)
        }
        let code = root.exitCode(for: error)
        if error is CleanExit || code == .success {
            Terminal.write(root.fullMessage(for: error) + "\n", to: 1)
            exit(0)
        }
        if parsing || error is ValidationError || code == .validationFailure {
            let message = root.fullMessage(for: error)
            Terminal.err("\(tool): " + message.replacingOccurrences(of: "Error: ", with: "") + "\n")
            exit(2)
        }
        if let e = error as? ExitCode { exit(e.rawValue) }
        if error is CancelledError {
            Terminal.err("\(tool): \(error)\n")
            exit(130)
        }
        Terminal.err("\(tool): \(error)\n")
        exit(1)
    }
}

/// `--threads N`: kernel threads, 1…usable cores (default: the usable cores, or $UNCLIP_THREADS, validated the same
/// way); more only with `--oversubscribe`, with a warning.
public struct ThreadOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Kernel threads, at most the usable cores (default: $UNCLIP_THREADS, else the usable cores).", valueName: "n"))
    public var threads: Int?
    @Flag(help: "Allow more threads than usable cores (up to 1024; slower in every measurement here).")
    public var oversubscribe = false
    @Option(name: .customLong("memory"), help: ArgumentHelp("small (default): f16 activations and weights streamed layer by layer for int8 models; fast: f32 activations, weights kept mapped (more memory).", valueName: "small|fast"))
    public var memory: String?
    @Option(name: .customLong("conv"), help: ArgumentHelp("int8 3×3 convolutions: auto (default: $UNCLIP_CONV, else auto), direct, or winograd (F(2×2,3×3): fewer multiplies, one more int8 rounding of the transformed input).", valueName: "auto|direct|winograd"))
    public var conv: String?

    public init() {}

    public func validate() throws {
        if let memory {
            guard let plan = MemoryPlan(rawValue: memory) else { throw ValidationError("--memory must be small or fast, got '\(memory)'") }
            MemoryPlan.set(plan)
        }
        if let conv {
            guard let a = ConvAlgorithm(rawValue: conv) else { throw ValidationError("--conv must be auto, direct or winograd, got '\(conv)'") }
            Runtime.convAlgorithm = a
        }
        do {
            if conv == nil, let a = try Runtime.convAlgorithmFromEnvironment() { Runtime.convAlgorithm = a }
            let n = try threads ?? Runtime.threadsFromEnvironment(oversubscribe: oversubscribe)
            if let n {
                try Runtime.setThreads(n, oversubscribe: oversubscribe)
                if n > Runtime.usableCores {
                    Terminal.err("warning: \(n) threads on \(Runtime.usableCores) usable cores (--oversubscribe): expect every step to be slower\n")
                }
            }
        } catch let e as UnCLIPError {
            guard case let .invalidArgument(name, detail) = e else { throw e }
            throw ValidationError(name == "threads" ? "--threads \(detail)" : "\(name): \(detail)")
        }
    }
}
