import Foundation

/// Where a pipeline's random draws come from: replayed from a noise file (the contract with the reference
/// oracle: safetensors of F32 tensors named prior.latents, prior.noise.{i}, decoder.latents, decoder.noise.{i},
/// super_res.latents, super_res.noise.{i}; image tensors NCHW) or drawn from a seeded generator.
public protocol NoiseSource: AnyObject {
    /// `count` values for the draw `name` with NCHW shape `shape` (or [B, E]), returned in the engine's layout
    /// (NHWC for images).
    func draw(_ name: String, shape: [Int]) throws -> [Float]
    /// An independent source named `label` whose draws do not disturb this one's: a replayed source reads the
    /// draws `label/<name>` from the same file; a seeded one starts a generator seeded from its state and the label.
    func fork(_ label: String) -> NoiseSource
    /// Whether the draws are replayed by name (so a batch's rows can be taken apart).
    var replayed: Bool { get }
}

extension NoiseSource {
    public func fork(_ label: String) -> NoiseSource { RenamedNoise(self, prefix: label + "/") }
    public var replayed: Bool { false }
}

/// Replays the draws of a noise file; every draw must be present with the expected shape.
public final class ReplayNoise: NoiseSource {
    let file: SafeTensorsFile

    public init(path: String) throws { file = try SafeTensorsFile(path: path) }

    public func draw(_ name: String, shape: [Int]) throws -> [Float] {
        guard let info = file.info(name) else {
            throw WeightsError(.tensor, file: file.path, tensor: name, "missing from the noise file (it must hold every draw of this run: check the step counts)")
        }
        guard info.shape == shape else {
            throw WeightsError(.tensor, file: file.path, tensor: name, "has shape \(info.shape), this run needs \(shape)")
        }
        let v = try file.readFloats(name)
        if let i = v.firstIndex(where: { !$0.isFinite }) {
            throw WeightsError(.tensor, file: file.path, tensor: name, "value \(i) is \(v[i]): a noise file must hold finite numbers (remake it, or generate with --seed)")
        }
        return shape.count == 4 ? NoiseLayout.nchwToNHWC(v, shape) : v
    }

    public var replayed: Bool { true }
}

/// Standard normal draws from a seeded generator (xoshiro256** with splitmix64 seeding, Box–Muller in double).
/// Deterministic for a seed on every machine; not PyTorch's generator, so seeds do not reproduce diffusers' images.
public final class SeededNoise: NoiseSource {
    var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3; s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// A generator seeded from this one's state and `label` (FNV-1a), leaving this one's sequence as it was.
    public func fork(_ label: String) -> NoiseSource {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in label.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return SeededNoise(seed: s.0 ^ s.1 &* 3 ^ s.2 &* 5 ^ s.3 &* 7 ^ h)
    }

    func uniform() -> Double { (Double(next() >> 11) + 0.5) / 9007199254740992.0 }  // (0, 1)

    public func draw(_ name: String, shape: [Int]) throws -> [Float] {
        let n = shape.reduce(1, *)
        var out = [Float]()
        out.reserveCapacity(n + 1)
        while out.count < n {
            let r = (-2 * log(uniform())).squareRoot(), a = 2 * Double.pi * uniform()
            out.append(Float(r * cos(a)))
            out.append(Float(r * sin(a)))
        }
        return Array(out.prefix(n))  // the same values whatever the layout: i.i.d.
    }
}

enum NoiseLayout {
    static func nchwToNHWC(_ v: [Float], _ s: [Int]) -> [Float] {
        let (b, c, h, w) = (s[0], s[1], s[2], s[3])
        var out = [Float](repeating: 0, count: v.count)
        for n in 0..<b { for ch in 0..<c { for y in 0..<h { for x in 0..<w {
            out[((n * h + y) * w + x) * c + ch] = v[((n * c + ch) * h + y) * w + x]
        } } } }
        return out
    }

    /// NHWC tensor → NCHW values (for stage dumps in the reference's layout).
    static func nhwcToNCHW(_ t: Tensor) -> [Float] {
        let (b, h, w, c) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
        let v = t.toArray()
        var out = [Float](repeating: 0, count: v.count)
        for n in 0..<b { for y in 0..<h { for x in 0..<w { for ch in 0..<c {
            out[((n * c + ch) * h + y) * w + x] = v[((n * h + y) * w + x) * c + ch]
        } } } }
        return out
    }
}
