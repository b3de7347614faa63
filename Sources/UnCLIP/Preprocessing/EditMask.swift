import Foundation

/// Which pixels of an image an edit keeps, DALL·E 2's way: a mask pixel with alpha 0 is regenerated, every other pixel
/// is kept (byte for byte in the result). Masks painted in other tools can be read by luminance (white = regenerate).
public struct EditMask: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable { case alpha, luminance }

    public let width: Int
    public let height: Int
    /// true = keep, row-major.
    public let keep: [Bool]

    public init(width: Int, height: Int, keep: [Bool]) throws {
        guard width >= 1, height >= 1, keep.count == width * height else {
            throw UnCLIPError.invalidArgument(name: "mask", detail: "\(keep.count) values for \(width)x\(height)")
        }
        (self.width, self.height, self.keep) = (width, height, keep)
    }

    /// From a mask image (alpha: alpha 0 = regenerate, needs an alpha channel; luminance: Rec. 601 luma ≥ 128 = regenerate).
    public init(image m: PNGImage, mode: Mode, path: String = "mask") throws {
        var keep = [Bool](repeating: true, count: m.width * m.height)
        switch mode {
        case .alpha:
            guard m.channels == 4 else {
                throw UnCLIPError.image(path: path, detail: "has no alpha channel, so no pixel is marked for editing (alpha 0 = regenerate); give --mask-mode luminance for a black-and-white mask (white = regenerate)")
            }
            for i in 0..<keep.count { keep[i] = m.pixels[i * 4 + 3] != 0 }
        case .luminance:
            for i in 0..<keep.count {
                let p = i * m.channels
                let y = 299 * Int(m.pixels[p]) + 587 * Int(m.pixels[p + 1]) + 114 * Int(m.pixels[p + 2])  // ×1000
                keep[i] = y < 128_000
            }
        }
        try self.init(width: m.width, height: m.height, keep: keep)
    }

    /// The image's own alpha as the mask (an edit without --mask).
    public init(alphaOf image: PNGImage, path: String = "image") throws {
        guard image.channels == 4 else {
            throw UnCLIPError.image(path: path, detail: "has no alpha channel to use as the mask: give --mask <mask.png> (alpha 0 = regenerate)")
        }
        try self.init(image: image, mode: .alpha, path: path)
    }

    public var regenerated: Int { keep.lazy.filter { !$0 }.count }

    /// The mask at another resolution: a pixel is known only if every source pixel inside its filter support is kept
    /// (the support of PyTorch/PIL's antialiased bicubic, a = −0.5: ±2 input pixels around the centre when enlarging,
    /// ±2·scale when shrinking) — or, with `footprintOnly`, every source pixel its own area covers — so the region to
    /// regenerate is only ever dilated, never eroded.
    public func resized(width w: Int, height h: Int, footprintOnly: Bool = false) -> [Bool] {
        // summed-area table of regenerated pixels
        var sat = [Int](repeating: 0, count: (width + 1) * (height + 1))
        for y in 0..<height {
            var row = 0
            for x in 0..<width {
                row += keep[y * width + x] ? 0 : 1
                sat[(y + 1) * (width + 1) + x + 1] = sat[y * (width + 1) + x + 1] + row
            }
        }
        func span(_ i: Int, _ outSize: Int, _ inSize: Int) -> (Int, Int) {
            if outSize == inSize { return (i, i) }  // the same size: the image is not resampled
            let scale = Double(inSize) / Double(outSize)
            let support = footprintOnly ? max(scale, 1) / 2 : 2 * max(scale, 1)
            let centre = (Double(i) + 0.5) * scale
            // input pixel j has its centre at j + 0.5; it contributes if |j + 0.5 − centre| < support
            let lo = max(0, Int((centre - support - 0.5).rounded(.down)) + 1)
            let hi = min(inSize - 1, Int((centre + support - 0.5).rounded(.up)) - 1)
            return (lo, max(lo, hi))
        }
        let xs = (0..<w).map { span($0, w, width) }, ys = (0..<h).map { span($0, h, height) }
        var out = [Bool](repeating: true, count: w * h)
        for y in 0..<h {
            let (y0, y1) = ys[y]
            for x in 0..<w {
                let (x0, x1) = xs[x]
                let n = sat[(y1 + 1) * (width + 1) + x1 + 1] - sat[y0 * (width + 1) + x1 + 1] - sat[(y1 + 1) * (width + 1) + x0] + sat[y0 * (width + 1) + x0]
                out[y * w + x] = n == 0
            }
        }
        return out
    }

    /// `rgb` (w×h×3, the mask's size) with every regenerated pixel replaced by the nearest kept pixel's colour
    /// (4-neighbour rings, in scan order), so that resizing the image does not bleed the hidden content — often black
    /// or garbage under a transparent mask — into the known region's border.
    public func filled(_ rgb: [Float]) -> [Float] {
        var out = rgb
        var known = keep
        var frontier = (0..<keep.count).filter { keep[$0] }
        guard !frontier.isEmpty else { return rgb }
        while !frontier.isEmpty {
            var next: [Int] = []
            for p in frontier {
                let (x, y) = (p % width, p / width)
                for (dx, dy) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
                    let (nx, ny) = (x + dx, y + dy)
                    guard nx >= 0, ny >= 0, nx < width, ny < height else { continue }
                    let q = ny * width + nx
                    if !known[q] {
                        known[q] = true
                        for c in 0..<3 { out[q * 3 + c] = out[p * 3 + c] }
                        next.append(q)
                    }
                }
            }
            frontier = next
        }
        return out
    }
}
