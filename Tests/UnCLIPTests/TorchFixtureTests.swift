import Foundation
import XCTest
@testable import UnCLIP

/// Operators against values computed by PyTorch (Fixtures/kernels.json, made by
/// weights-tools/reference/make_kernel_fixtures.py). Activations in the fixture are NHWC.
final class TorchFixtureTests: XCTestCase {
    struct Arr: Decodable {
        let shape: [Int]
        let data: [Float]
        func tensor() throws -> Tensor { try Tensor(shape: shape, values: data) }
    }

    nonisolated(unsafe) static let cases: [String: [String: Any]] = {
        guard let url = try? Fixtures.url("kernels.json"), let data = try? Data(contentsOf: url),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let meta = json["meta"] as? [String: Any], meta["version"] as? Int == 1,
              let cases = json["cases"] as? [String: [String: Any]] else { return [:] }
        return cases
    }()

    func arr(_ c: String, _ k: String) throws -> Tensor {
        guard let entry = TorchFixtureTests.cases[c]?[k] as? [String: Any], let shape = entry["shape"] as? [Int],
              let data = entry["data"] as? [Double] else {
            XCTFail("fixture kernels.json lacks \(c).\(k) or is stale; re-create it with: weights-tools/setup_venv.sh && weights-tools/.venv/bin/python weights-tools/reference/make_kernel_fixtures.py")
            throw XCTSkip("fixture missing")
        }
        return try Tensor(shape: shape, values: data.map { Float($0) })
    }

    func assertClose(_ got: Tensor, _ want: Tensor, _ tol: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.shape, want.shape, what, file: file, line: line)
        guard got.shape == want.shape else { return }
        let e = relMaxError(got.toArray(), want.toArray())
        XCTAssertLessThanOrEqual(e, tol, "\(what): relative error \(e)", file: file, line: line)
    }

    func testGroupNormAgainstTorch() throws {
        let x = try arr("group_norm", "x"), g = try arr("group_norm", "gamma"), b = try arr("group_norm", "beta")
        let s = try arr("group_norm_scale_shift", "scale"), sh = try arr("group_norm_scale_shift", "shift")
        forEachPathAndThreads { path, _ in
            assertClose(try! Ops.groupNorm(x, groups: 32, gamma: g, beta: b), try! arr("group_norm", "y"), Tolerance.torchF32, "gn \(path)")
            assertClose(try! Ops.groupNorm(x, groups: 32, gamma: g, beta: b, silu: true), try! arr("group_norm_silu", "y"), Tolerance.torchF32, "gn+silu \(path)")
            assertClose(try! Ops.groupNorm(x, groups: 32, gamma: g, beta: b, scale: s, shift: sh), try! arr("group_norm_scale_shift", "y"),
                        Tolerance.torchF32, "gn scale-shift \(path)")
        }
    }

    func testLayerNormSoftmaxActivationsAgainstTorch() throws {
        assertClose(try Ops.layerNorm(try arr("layer_norm", "x"), gamma: try arr("layer_norm", "gamma"), beta: try arr("layer_norm", "beta")),
                    try arr("layer_norm", "y"), Tolerance.torchF32, "layer norm")
        assertClose(try Ops.softmax(try arr("softmax", "x")), try arr("softmax", "y"), Tolerance.torchF32, "softmax")
        let x = try arr("activations", "x")
        forEachPathAndThreads { path, _ in
            assertClose(try! Ops.activation(x, .silu), try! arr("activations", "silu"), Tolerance.torchF32, "silu \(path)")
            assertClose(try! Ops.activation(x, .geluErf), try! arr("activations", "gelu"), Tolerance.torchF32, "gelu \(path)")
            assertClose(try! Ops.activation(x, .quickGelu), try! arr("activations", "quick_gelu"), Tolerance.torchF32, "quick_gelu \(path)")
        }
    }

    func testResamplingAgainstTorch() throws {
        let up = try arr("resize_up", "y"), down = try arr("resize_down", "y")
        assertClose(try Ops.resizeBicubicAntialias(try arr("resize_up", "x"), height: up.shape[1], width: up.shape[2]), up,
                    Tolerance.torchF32, "bicubic aa up")
        assertClose(try Ops.resizeBicubicAntialias(try arr("resize_down", "x"), height: down.shape[1], width: down.shape[2]), down,
                    Tolerance.torchF32, "bicubic aa down")
        assertClose(try Ops.avgPool2x2(try arr("avg_pool", "x")), try arr("avg_pool", "y"), 0, "avg pool")
        assertClose(try Ops.upsampleNearest2x(try arr("upsample_nearest", "x")), try arr("upsample_nearest", "y"), 0, "nearest")
    }

    func testTimestepEmbeddingAgainstTorch() throws {
        let t = try arr("timestep", "t").toArray()
        assertClose(try Ops.timestepEmbedding(t, dim: 320), try arr("timestep", "dim320"), Tolerance.timestep, "dim 320")
        assertClose(try Ops.timestepEmbedding(t, dim: 33), try arr("timestep", "dim33"), Tolerance.timestep, "dim 33")
    }

    func testConvAndLinearAgainstTorch() throws {
        for quantize in [false, true] {
            let tol: Float = quantize ? 0.03 : Tolerance.gemmF32
            let w3 = try Conv2dWeight(weight: try arr("conv3x3", "w"), bias: try arr("conv3x3", "b"), padding: 1, quantize: quantize)
            assertClose(try Ops.conv2d(try arr("conv3x3", "x"), w3), try arr("conv3x3", "y"), tol, "conv3x3 q8=\(quantize)")
            let wp = try Conv2dWeight(weight: try arr("conv_patch14", "w"), stride: 14, quantize: quantize)
            assertClose(try Ops.conv2d(try arr("conv_patch14", "x"), wp), try arr("conv_patch14", "y"), tol, "patch14 q8=\(quantize)")
            let wl = try LinearWeight(weight: try arr("linear", "w"), bias: try arr("linear", "b"), quantize: quantize)
            assertClose(try Ops.linear(try arr("linear", "x"), wl), try arr("linear", "y"), tol, "linear q8=\(quantize)")
        }
    }

    func testAttentionAgainstTorch() throws {
        let c = "attention_added_kv"
        let heads = TorchFixtureTests.cases[c]?["heads"] as? Int ?? 0
        let ca = "attention_causal"
        let headsC = TorchFixtureTests.cases[ca]?["heads"] as? Int ?? 0
        forEachPathAndThreads { path, _ in
            let o = try! Ops.attention(q: try! arr(c, "q"), k: try! arr(c, "k_ctx"), v: try! arr(c, "v_ctx"), k2: try! arr(c, "k_self"),
                                       v2: try! arr(c, "v_self"), heads: heads, mask: try! arr(c, "mask"))
            assertClose(o, try! arr(c, "o"), Tolerance.attention, "added-KV \(path)")
            let oc = try! Ops.attention(q: try! arr(ca, "q"), k: try! arr(ca, "k"), v: try! arr(ca, "v"), heads: headsC, causal: true)
            assertClose(oc, try! arr(ca, "o"), Tolerance.attention, "causal \(path)")
        }
    }
}
