import Foundation

/// Outpainting (DALL·E 2's murals): the canvas grows by the given margins and is painted window by window, each window
/// the model's output size (or the canvas, if smaller), overlapping what is already painted, and each an edit whose
/// mask is the part not yet painted; windows run one after another, so each sees the last. The source's pixels stay
/// byte-identical at their new offset.
public struct CanvasGrowth: Sendable, Equatable {
    public var left = 0, right = 0, up = 0, down = 0
    public init(left: Int = 0, right: Int = 0, up: Int = 0, down: Int = 0) { (self.left, self.right, self.up, self.down) = (left, right, up, down) }

    public static let maxPerSide = 2048

    public func validate() throws {
        for (name, v) in [("left", left), ("right", right), ("up", up), ("down", down)] where !(0...Self.maxPerSide).contains(v) {
            throw UnCLIPError.invalidArgument(name: name, detail: "\(v) must be in 0...\(Self.maxPerSide) pixels")
        }
        guard left + right + up + down > 0 else {
            throw UnCLIPError.invalidArgument(name: "growth", detail: "the canvas does not grow: give --left, --right, --up or --down (pixels > 0)")
        }
    }
}

extension UnCLIPPipeline {
    /// A window's own draws: window n > 0 of an extension names its draws `extend.window.<n>.<name>`, so no two
    /// windows replay the same noise from a noise file (a seeded source draws afresh anyway; window 0 draws as a
    /// plain edit).
    static func windowNoise(_ image: NoiseSet, window n: Int) throws -> NoiseSet {
        n == 0 ? image : try NoiseSet([RenamedNoise(image.sources[0], prefix: "extend.window.\(n).")], batch: 1)
    }

    /// The most windows one extension paints.
    public static let maxWindows = 256

    /// The windows' origins in painting order: of the candidate positions (a grid with stride window·(1 − overlap),
    /// plus the canvas edges), the next is always the one with the largest painted share among those that still hold
    /// unpainted pixels.
    static func nextWindow(painted: [Bool], width: Int, height: Int, window: (w: Int, h: Int), overlap: Double) -> (x: Int, y: Int)? {
        func positions(_ size: Int, _ win: Int) -> [Int] {
            let step = max(1, Int(Double(win) * (1 - overlap)))
            var p = Array(stride(from: 0, through: size - win, by: step))
            if p.last != size - win { p.append(size - win) }
            return p
        }
        var best: (x: Int, y: Int, share: Double)? = nil
        for y in positions(height, window.h) {
            for x in positions(width, window.w) {
                var done = 0
                for yy in y..<(y + window.h) { for xx in x..<(x + window.w) where painted[yy * width + xx] { done += 1 } }
                let total = window.w * window.h
                guard done < total else { continue }
                let share = Double(done) / Double(total)
                if best == nil || share > best!.share { best = (x, y, share) }
            }
        }
        return best.map { ($0.x, $0.y) }
    }

    /// `options.count` extensions of `image` (image k uses noise source k for all its windows). `prompts`: one per
    /// window in order (the last repeats). Returns RGB images of the grown size and the number of windows painted.
    public func extend(image: PNGImage, growth: CanvasGrowth, prompts: [String], overlap: Double = 0.5,
                       options: GenerationOptions = GenerationOptions(), noises: NoiseSet,
                       progress: ProgressHandler? = nil) throws -> (images: [PNGImage], windows: Int) {
        try growth.validate()
        try options.validate()
        guard overlap.isFinite, (0.25...0.9).contains(overlap) else {
            throw UnCLIPError.invalidArgument(name: "overlap", detail: "\(overlap) must be in 0.25...0.9 (the share of each window already painted)")
        }
        try require(!prompts.isEmpty, "extend", "no prompt")
        try require(noises.batch == options.count && noises.splittable, "extend", "one noise source per image is needed")
        let (w, h) = (image.width + growth.left + growth.right, image.height + growth.up + growth.down)
        guard w <= 8192, h <= 8192 else {
            throw UnCLIPError.invalidArgument(name: "growth", detail: "the canvas would be \(w)x\(h); at most 8192 on a side")
        }
        let size = try SuperResStage(stageModel).firstConfig.sampleSize
        let window = (w: min(size, w), h: min(size, h))
        // each window paints about (1 − overlap) of its area: refuse growth that would take more than maxWindows edits
        let estimate = Int((Double(w * h - image.width * image.height) / (Double(window.w * window.h) * (1 - overlap))).rounded(.up))
        guard estimate <= Self.maxWindows else {
            throw UnCLIPError.invalidArgument(name: "growth", detail: "about \(estimate) windows of \(window.w)x\(window.h) would be needed (at most \(Self.maxWindows) per call): grow less, or lower --overlap, and chain calls")
        }
        var one = options
        one.count = 1
        var results: [PNGImage] = [], windows = 0
        for k in 0..<options.count {
            var canvas = [UInt8](repeating: 127, count: w * h * 3)
            var painted = [Bool](repeating: false, count: w * h)
            for y in 0..<image.height {
                for x in 0..<image.width {
                    let d = (y + growth.up) * w + x + growth.left
                    // a transparent source pixel is painted over too
                    painted[d] = image.channels == 3 || image.pixels[(y * image.width + x) * 4 + 3] != 0
                    for c in 0..<3 { canvas[d * 3 + c] = image.pixels[(y * image.width + x) * image.channels + c] }
                }
            }
            var n = 0
            while let (x0, y0) = Self.nextWindow(painted: painted, width: w, height: h, window: window, overlap: overlap) {
                var crop = [UInt8](repeating: 0, count: window.w * window.h * 3), keep = [Bool](repeating: false, count: window.w * window.h)
                for y in 0..<window.h {
                    for x in 0..<window.w {
                        let s = (y0 + y) * w + x0 + x, d = y * window.w + x
                        keep[d] = painted[s]
                        for c in 0..<3 { crop[d * 3 + c] = canvas[s * 3 + c] }
                    }
                }
                let (out, _) = try edit(image: try PNGImage(width: window.w, height: window.h, channels: 3, pixels: crop),
                                        mask: try EditMask(width: window.w, height: window.h, keep: keep),
                                        prompt: prompts[min(n, prompts.count - 1)], options: one,
                                        noises: try Self.windowNoise(try noises.slice(k..<(k + 1)), window: n),
                                        progress: progress)
                for y in 0..<window.h {
                    for x in 0..<window.w where !keep[y * window.w + x] {
                        let s = (y0 + y) * w + x0 + x
                        painted[s] = true
                        for c in 0..<3 { canvas[s * 3 + c] = out[0].pixels[(y * window.w + x) * 3 + c] }
                    }
                }
                n += 1
            }
            windows = n
            results.append(try PNGImage(width: w, height: h, channels: 3, pixels: canvas))
        }
        return (results, windows)
    }
}
