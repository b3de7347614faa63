// unclip: text → image with an unCLIP (Karlo-architecture) model file made by unclip-weights.
import CLISupport

CommandMain.run(Unclip.self, tool: "unclip")
