import ArgumentParser
import CLISupport
import Foundation
import UnCLIP

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print an image's generation parameters (its PNG text chunks).")

    @Argument(help: "A PNG written by unclip (any PNG's text chunks are shown).") var image: String
    @Flag(help: "Print one JSON object (keys in file order) instead of text.") var json = false

    func run() throws {
        let entries = try PNGText.read(image)
        if json {
            Terminal.out(JSON.object(entries.map { ($0.key, JSON.string($0.value)) }).text)
            return
        }
        if entries.isEmpty { Terminal.out("\(image): no text chunks") }
        for (k, v) in entries {
            let lines = v.split(separator: "\n", omittingEmptySubsequences: false)
            Terminal.out("\(k): \(lines.first ?? "")" + lines.dropFirst().map { "\n    " + $0 }.joined())
        }
    }
}

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the model tokenizer's ids for each text (77 ids: BOS, tokens, EOS, padding).")

    @Argument(help: "One or more texts.") var texts: [String]
    @OptionGroup(title: "Model") var model: ModelOption

    func validate() throws { if texts.isEmpty { throw ValidationError("tokenize needs at least one text") } }

    func run() throws {
        let tok = try CLIPTokenizer(file: try GGUFFile(path: try model.path()))
        for text in texts { Terminal.out("[" + tok.encode(text).ids.map(String.init).joined(separator: ",") + "]") }
    }
}
