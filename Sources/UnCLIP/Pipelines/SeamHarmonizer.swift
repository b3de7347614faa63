import Foundation

/// Border feathering in the manner of Poisson image editing (Pérez, Gangnet and Blake, SIGGRAPH 2003): the
/// regenerated pixels get a harmonic colour correction c (Δc = 0 inside the region) pinned, across each border edge,
/// to the step between the kept pixel and the regenerated one, so a background drawn a few levels lighter or darker
/// than the source's fades into it instead of meeting it in a line. (Not exact cloning: at the final step the model's
/// own image already equals the source on kept pixels, so the step itself is the only mismatch there is to spread.) A step larger than `edgeLevels` in any channel is an edge the model drew on
/// purpose (an object meeting the border) and gets no correction, so objects keep their colours. Kept pixels are
/// never changed (the caller pastes them afterwards).
enum SeamHarmonizer {
    /// Steps above this (in 0…255 levels, any channel) are edges, not tone mismatches.
    static let edgeLevels: Float = 32
    /// Successive over-relaxation: iterations and factor.
    static let iterations = 400
    static let omega: Float = 1.9

    /// Regions larger than this are left as they are (memory and time grow with the region; 400 sweeps would not
    /// reach across them anyway).
    static let maxRegion = 1 << 20

    static func apply(generated: [UInt8], source: PNGImage, mask: EditMask) -> [UInt8] {
        let (w, h) = (mask.width, mask.height)
        let region = (0..<(w * h)).filter { !mask.keep[$0] }
        guard !region.isEmpty, region.count < w * h, region.count <= maxRegion else { return generated }
        let gen = generated.map { Float($0) }
        func src(_ i: Int, _ c: Int) -> Float { Float(source.pixels[i * source.channels + c]) }
        // neighbours of each region pixel: another region pixel (index into c) or a kept pixel (a fixed boundary value)
        var index = [Int](repeating: -1, count: w * h)
        for (k, p) in region.enumerated() { index[p] = k }
        var neighbours = [[Int]](repeating: [], count: region.count)            // region neighbours
        var boundary = [[Float]](repeating: [0, 0, 0], count: region.count)     // sum of boundary values
        var degree = [Float](repeating: 0, count: region.count)
        for (k, p) in region.enumerated() {
            let (x, y) = (p % w, p / w)
            for (dx, dy) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
                let (nx, ny) = (x + dx, y + dy)
                guard nx >= 0, ny >= 0, nx < w, ny < h else { continue }
                let q = ny * w + nx
                degree[k] += 1
                if index[q] >= 0 { neighbours[k].append(index[q]); continue }
                let d = (0..<3).map { src(q, $0) - gen[p * 3 + $0] }
                if d.allSatisfy({ abs($0) <= edgeLevels }) { for c in 0..<3 { boundary[k][c] += d[c] } }
            }
        }
        var corr = [Float](repeating: 0, count: region.count * 3)
        for _ in 0..<iterations {
            for k in 0..<region.count where degree[k] > 0 {
                for c in 0..<3 {
                    var sum = boundary[k][c]
                    for n in neighbours[k] { sum += corr[n * 3 + c] }
                    let target = sum / degree[k]
                    corr[k * 3 + c] += omega * (target - corr[k * 3 + c])
                }
            }
        }
        var out = generated
        for (k, p) in region.enumerated() {
            for c in 0..<3 { out[p * 3 + c] = UInt8(min(max(gen[p * 3 + c] + corr[k * 3 + c], 0), 255).rounded(.toNearestOrEven)) }
        }
        return out
    }
}
