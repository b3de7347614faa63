import CKernels
import CPeaks
import Foundation

/// What a case's work is measured in, and which ceiling it is compared with.
enum Ceiling: String {
    case fmaZmm = "fp32 FMA zmm", fmaYmm = "fp32 FMA ymm", vnni = "VNNI zmm", maddYmm = "vpmaddwd ymm", amx = "AMX int8"
    case bandwidth = "memory triad"
}

/// One benchmark case: a labelled real-model shape, run on the active kernel path.
struct BenchCase {
    /// Keeps the case's buffers alive as long as the case.
    let owner: AnyObject
    let label: String
    let op: String
    let path: String
    /// The kernel path the case runs on (the active one when it was built).
    let isa: ck_isa = ck_isa_active()
    /// FLOPs (or int8 OPs, 2 per MAC) per run; bytes per run for memory-bound cases.
    let work: Double
    let ceiling: Ceiling
    let run: () -> Void
    /// Checks the dispatched kernel against the scalar reference on this shape (sampled where the full
    /// reference would take minutes). Returns a description of the check, or throws on mismatch.
    let validate: () throws -> String
    /// The same work through OpenBLAS sgemm (im2col in tiles + sgemm for convolutions), when it applies.
    let openblas: (() -> Void)?
}

struct ValidationFailure: Error, CustomStringConvertible {
    let description: String
}

/// Median, min and max of repeated timings in seconds.
struct Timing {
    let samples: [Double]
    var median: Double {
        let s = samples.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    var min: Double { samples.min() ?? 0 }
    var max: Double { samples.max() ?? 0 }

    /// One warm-up run, then `repeats` timed runs.
    static func measure(repeats: Int, _ body: () -> Void) -> Timing {
        body()
        var s: [Double] = []
        for _ in 0..<repeats {
            let t0 = cpk_now()
            body()
            s.append(cpk_now() - t0)
        }
        return Timing(samples: s)
    }
}

/// The machine's own ceilings, measured in the same run.
struct Peaks {
    var values: [Ceiling: Double] = [:]

    static func measure(threads: Int, quick: Bool, hasAVX512: Bool, hasAMX: Bool) -> Peaks {
        let t = Int32(threads), sec = quick ? 0.1 : 0.4
        var p = Peaks()
        // Best of three runs each: these are ceilings, and a shared machine only ever makes them lower.
        func best(_ f: () -> Double) -> Double { (0..<3).map { _ in f() }.max() ?? 0 }
        p.values[.fmaYmm] = best { cpk_fma_f32_ymm(t, sec) }
        p.values[.maddYmm] = best { cpk_madd_ymm(t, sec) }
        if hasAVX512 {
            p.values[.fmaZmm] = best { cpk_fma_f32_zmm(t, sec) }
            p.values[.vnni] = best { cpk_vnni_zmm(t, sec) }
        }
        if hasAMX { p.values[.amx] = best { cpk_amx_int8(t, sec) } }
        p.values[.bandwidth] = best { cpk_triad_bandwidth(t, 384 << 20, sec) }
        p.values[.bandwidth] = Swift.max(p.values[.bandwidth] ?? 0, 0)
        return p
    }
}
