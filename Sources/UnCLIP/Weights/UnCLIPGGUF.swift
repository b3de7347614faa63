import Foundation

/// Storage type of a converted file's large tensors.
public enum WeightType: String, Sendable, CaseIterable {
    case f32, f16, q8
}

/// Names and metadata keys of the unclip GGUF files (written by Converter, read by ModelFile).
public enum UnCLIPGGUF {
    public static let architecture = "unclip"
    public static let components = "unclip.components"
    public static let weightType = "unclip.weight_type"
    public static let modelIndex = "unclip.model_index"
    public static func config(_ c: String) -> String { "unclip.\(c).config" }
    public static func className(_ c: String) -> String { "unclip.\(c).class" }
    public static func library(_ c: String) -> String { "unclip.\(c).library" }
    /// The source shape of an int8 weight (its GGUF tensor holds the packed panels).
    public static func q8Shape(_ tensor: String) -> String { "unclip.q8.shape.\(tensor)" }
    public static let q8Layout = "unclip.q8.layout"
    public static let q8LayoutDescription =
        "int8 panels [ceil(N/32)][Kp/4][32][4], Kp = K rounded up to 64, k = (ky*kw+kx)*Cin+ci for convolutions; "
        + "symmetric per-output-channel scale in <name>.scale (F32 [N]), column sums in <name>.colsum (I32 [N])"
    /// Each tensor's XXH64 (seed 0, its bytes without padding), UInt64 array in descriptor order; checked when a
    /// component is mapped and by `unclip-weights verify`. Files written before it existed load without the check.
    public static let tensorChecksums = "unclip.tensor_xxh64"
    public static func scaleName(_ t: String) -> String { t + ".scale" }
    public static func colsumName(_ t: String) -> String { t + ".colsum" }
}
