import Foundation

/// transformers' CLIPImageProcessor with the PIL backend (image_processing_pil_clip.py): RGB, resize the shortest
/// edge with PIL's bicubic (Pillow's libImaging/Resample.c in its 8-bit fixed-point form, so pixels match PIL
/// exactly), centre crop, rescale by 1/255, normalise by mean/std → NHWC [1, H, W, 3].
public struct CLIPImageProcessor: Sendable {
    public let shortestEdge: Int
    public let cropHeight, cropWidth: Int
    public let doResize, doCenterCrop, doRescale, doNormalize: Bool
    public let rescaleFactor: Double
    public let mean, std: [Double]

    public init(config c: JSON) throws {
        func bad(_ d: String) -> UnCLIPError { .invalidArgument(name: "preprocessor_config", detail: d) }
        doResize = c["do_resize"]?.bool ?? true
        doCenterCrop = c["do_center_crop"]?.bool ?? true
        doRescale = c["do_rescale"]?.bool ?? true
        doNormalize = c["do_normalize"]?.bool ?? true
        rescaleFactor = c["rescale_factor"]?.double ?? 1.0 / 255
        // size: {"shortest_edge": n} (or an int, older configs)
        guard let se = c["size"]?["shortest_edge"]?.int ?? c["size"]?.int, se > 0, se <= 4096 else { throw bad("size.shortest_edge is missing or invalid") }
        shortestEdge = Int(se)
        let crop = c["crop_size"]
        guard let ch = crop?["height"]?.int ?? crop?.int, let cw = crop?["width"]?.int ?? crop?.int, ch > 0, cw > 0, ch <= 4096, cw <= 4096 else {
            throw bad("crop_size is missing or invalid")
        }
        cropHeight = Int(ch)
        cropWidth = Int(cw)
        if let r = c["resample"]?.int, r != 3 { throw bad("resample \(r) is not supported (bicubic = 3)") }
        // OpenAI CLIP's mean/std: transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD, the processor's defaults.
        mean = c["image_mean"]?.array?.compactMap(\.double) ?? [0.48145466, 0.4578275, 0.40821073]
        std = c["image_std"]?.array?.compactMap(\.double) ?? [0.26862954, 0.26130258, 0.27577711]
        guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 > 0 }) else { throw bad("image_mean/image_std must have 3 values, std > 0") }
    }

    /// The PNG (RGB or RGBA; alpha dropped like PIL's convert("RGB")) → [1, cropH, cropW, 3].
    public func callAsFunction(_ image: PNGImage) throws -> Tensor {
        var (w, h) = (image.width, image.height)
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        for i in 0..<(w * h) { for c in 0..<3 { rgb[i * 3 + c] = image.pixels[i * image.channels + c] } }
        if doResize {
            // transformers get_resize_output_image_size: the short side to `shortestEdge`, the long side int(s·long/short)
            let short = min(w, h), long = max(w, h)
            let newLong = Int(Double(shortestEdge) * Double(long) / Double(short))
            // the resized image must stay within PNGImage.maxPixels (a 1×1,000,000 input would ask for 224 million rows)
            guard newLong * shortestEdge <= PNGImage.maxPixels else {
                throw UnCLIPError.image(path: "input", detail: "a \(w)x\(h) image is too elongated (resized to \(shortestEdge) on its short side it would be \(newLong) pixels long); crop it to an aspect ratio below \(PNGImage.maxPixels / shortestEdge / shortestEdge):1")
            }
            let (nw, nh) = w <= h ? (shortestEdge, newLong) : (newLong, shortestEdge)
            rgb = PILResample.bicubicRGB(rgb, width: w, height: h, newWidth: nw, newHeight: nh)
            (w, h) = (nw, nh)
        }
        if doCenterCrop {
            guard cropWidth <= w, cropHeight <= h else {
                throw UnCLIPError.image(path: "input", detail: "a \(w)x\(h) image is smaller than the \(cropWidth)x\(cropHeight) crop")
            }
            let top = (h - cropHeight) / 2, left = (w - cropWidth) / 2
            var out = [UInt8](repeating: 0, count: cropWidth * cropHeight * 3)
            for y in 0..<cropHeight { for x in 0..<cropWidth { for c in 0..<3 {
                out[(y * cropWidth + x) * 3 + c] = rgb[((y + top) * w + x + left) * 3 + c]
            } } }
            rgb = out
            (w, h) = (cropWidth, cropHeight)
        }
        let values = rgb.enumerated().map { i, v -> Float in
            var x = Double(v)
            if doRescale { x *= rescaleFactor }
            if doNormalize { x = (x - mean[i % 3]) / std[i % 3] }
            return Float(x)
        }
        return try Tensor(shape: [1, h, w, 3], values: values)
    }
}

/// Pillow's resampling of 8-bit images (libImaging/Resample.c): separable, horizontal pass first, coefficients in
/// double normalised per output pixel then rounded to 22-bit fixed point, each pass rounded and clipped to uint8.
enum PILResample {
    static let precisionBits = 32 - 8 - 2

    static func bicubic(_ x: Double) -> Double {
        let a = -0.5, x = abs(x)
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }

    /// (first input index, integer weights) per output index.
    static func coefficients(inSize: Int, outSize: Int) -> [(Int, [Int32])] {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = 2.0 * filterScale
        return (0..<outSize).map { xx in
            let center = (Double(xx) + 0.5) * scale
            let ss = 1 / filterScale
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var w = (0..<max(xmax, 0)).map { bicubic((Double($0 + xmin) - center + 0.5) * ss) }
            let total = w.reduce(0, +)
            if total != 0 { w = w.map { $0 / total } }
            let one = Double(1 << precisionBits)
            return (xmin, w.map { $0 < 0 ? Int32(-0.5 + $0 * one) : Int32(0.5 + $0 * one) })
        }
    }

    static func clip8(_ v: Int) -> UInt8 { UInt8(max(0, min(255, v >> precisionBits))) }

    static func bicubicRGB(_ src: [UInt8], width: Int, height: Int, newWidth: Int, newHeight: Int) -> [UInt8] {
        var img = src, w = width
        if newWidth != width {
            let cx = coefficients(inSize: width, outSize: newWidth)
            var out = [UInt8](repeating: 0, count: newWidth * height * 3)
            for y in 0..<height { for (xx, (xmin, k)) in cx.enumerated() { for c in 0..<3 {
                var s = 1 << (precisionBits - 1)
                for (j, kj) in k.enumerated() { s += Int(img[(y * w + xmin + j) * 3 + c]) * Int(kj) }
                out[(y * newWidth + xx) * 3 + c] = clip8(s)
            } } }
            img = out
            w = newWidth
        }
        if newHeight != height {
            let cy = coefficients(inSize: height, outSize: newHeight)
            var out = [UInt8](repeating: 0, count: w * newHeight * 3)
            for (yy, (ymin, k)) in cy.enumerated() { for x in 0..<w { for c in 0..<3 {
                var s = 1 << (precisionBits - 1)
                for (j, kj) in k.enumerated() { s += Int(img[((ymin + j) * w + x) * 3 + c]) * Int(kj) }
                out[(yy * w + x) * 3 + c] = clip8(s)
            } } }
            img = out
        }
        return img
    }
}
