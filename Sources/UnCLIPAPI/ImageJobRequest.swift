import UnCLIP

/// What a client asked the engine for, whichever API it spoke: the task, how many images, the output size, and the
/// generation settings it set (nil = the model's defaults, as the CLI's).
public struct ImageJobRequest: Sendable {
    public enum Task: Sendable {
        case generate(prompt: String)
        case vary(image: PNGImage)
        case edit(image: PNGImage, mask: EditMask, prompt: String, maskSHA256: String)

        public var kind: String {
            switch self {
            case .generate: return "generation"
            case .vary: return "variation"
            case .edit: return "edit"
            }
        }

        public var prompt: String? {
            switch self {
            case .generate(let p), .edit(_, _, let p, _): return p
            case .vary: return nil
            }
        }
    }

    public var task: Task
    public var count = 1
    /// The size to deliver (the engine's native output is resized to it; nil = native).
    public var width: Int?
    public var height: Int?
    /// nil: drawn by the server and reported.
    public var seed: UInt64?
    public var priorSteps: Int?
    public var decoderSteps: Int?
    public var superResSteps: Int?
    public var priorGuidance: Float?
    public var decoderGuidance: Float?
    public var sampler: Sampler?

    public init(task: Task) { self.task = task }

    /// The largest upload the image endpoints decode (pixels), checked from the PNG header before any pixel is
    /// allocated: 4096², far above what any unCLIP stage uses (the decoder's 64², super-res's 256²).
    public static let maxImagePixels = 4096 * 4096
}
