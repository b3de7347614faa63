import Foundation
import XCTest
@testable import UnCLIP

/// The decoder and super-res stages under DDIMScheduler (eta 0 and 0.5 with recorded noise, every timestep spacing,
/// steps_offset, set_alpha_to_one, clip_sample off, prediction type sample) and the decoder's DDIMInverseScheduler
/// inversion, against diffusers' own schedulers and modules on the tiny fixtures
/// (weights-tools/reference/make_ddim_fixtures.py → Fixtures/<config>-ddim.safetensors). Every step's sample is
/// compared (NMSE ≤ 1e-6), the final image as uint8 (≥ 40 dB).
final class DDIMParityTests: XCTestCase {
    static let stepNMSE = 1e-6
    static let minPSNR = 40.0

    /// Replays `<run>.<name>` of the fixture for the loop's draw `<name>`.
    final class RunNoise: NoiseSource {
        let file: SafeTensorsFile, run: String
        init(_ file: SafeTensorsFile, run: String) { (self.file, self.run) = (file, run) }
        func draw(_ name: String, shape: [Int]) throws -> [Float] {
            XCTAssertEqual(file.shape("\(run).\(name)"), shape, name)
            return nchwToNHWC(try file.readFloats("\(run).\(name)"), shape)
        }
    }

    struct Fixture {
        let file: SafeTensorsFile
        let model: StageModel
        let tokenizer: CLIPTokenizer
        let prompt: String
        let imageEmbeds: Tensor

        init(_ config: String) throws {
            let url = try Fixtures.url("\(config)-ddim.safetensors")
            file = try SafeTensorsFile(path: url.path)
            let version = file.metadata.first { $0.0 == "fixture_version" }?.1
            guard version == "1" else {
                XCTFail("\(url.path) is fixture version \(version ?? "none"), want 1: re-create with weights-tools/.venv/bin/python weights-tools/reference/make_ddim_fixtures.py Tests/UnCLIPTests/Fixtures/\(config) Tests/UnCLIPTests/Fixtures/\(config)-ddim.safetensors")
                throw XCTSkip("stale fixture")
            }
            let m = try TinyKarlo.model(.f32, config: config)
            model = StageModel(m)
            tokenizer = try CLIPTokenizer(file: m.gguf)
            prompt = file.metadata.first { $0.0 == "prompt" }!.1
            imageEmbeds = try Tensor(shape: file.shape("inputs.image_embeds"), values: try file.readFloats("inputs.image_embeds"))
        }

        func nhwc(_ name: String) throws -> [Float] { nchwToNHWC(try file.readFloats(name), file.shape(name)) }
        func tensor(_ name: String) throws -> Tensor {
            let s = file.shape(name)
            return try Tensor(shape: [s[0], s[2], s[3], s[1]], values: try nhwc(name))
        }
        func text(guided: Bool) throws -> TextConditioning { try TextEncoderStage(model, tokenizer: tokenizer)(prompts: [prompt], guided: guided) }
        func timesteps(_ name: String) throws -> [Int] { try file.readFloats(name).map { Int($0) } }
    }

    /// A hook that checks every step's sample against `<prefix>.sample.<i>`.
    func stepChecker(_ f: Fixture, _ prefix: String, worst: UnsafeMutablePointer<Double>) -> StepHook {
        { step, sample in
            let e = nmse(sample, try f.nhwc("\(prefix).sample.\(step.index)"))
            worst.pointee = max(worst.pointee, e)
            XCTAssertLessThanOrEqual(e, DDIMParityTests.stepNMSE, "\(prefix) step \(step.index) (t = \(step.timestep))")
        }
    }

    func testDecoderAndSuperResUnderDDIM() throws {
        let runs: [(run: String, steps: Int, guidance: Float?, options: DDIMScheduler.Options)] = [
            ("a", 6, 8, .init(eta: 0, timestepSpacing: .leading, stepsOffset: 0, setAlphaToOne: true)),
            ("b", 6, 8, .init(eta: 0.5, timestepSpacing: .trailing, setAlphaToOne: false)),
            ("c", 5, nil, .init(eta: 0, timestepSpacing: .linspace, clipSample: false)),
            ("d", 4, 4, .init(eta: 0, timestepSpacing: .leading, stepsOffset: 1, setAlphaToOne: false)),
        ]
        let superRes: [String: (steps: Int, options: DDIMScheduler.Options)] = [
            "a": (4, .init(eta: 0, timestepSpacing: .leading, stepsOffset: 0, setAlphaToOne: true)),
            "b": (3, .init(eta: 0.5, timestepSpacing: .trailing, setAlphaToOne: false, predictionType: .sample)),
        ]
        for config in TinyKarlo.configs {
            let f = try Fixture(config)
            for r in runs {
                let text = try f.text(guided: r.guidance != nil)
                let noise = try NoiseSet([RunNoise(f.file, run: r.run)], batch: 1)
                let sched = try DDIMScheduler(config: try f.model.config("decoder_scheduler"), options: r.options)
                XCTAssertEqual(try sched.timesteps(r.steps), try f.timesteps("\(r.run).decoder.timesteps"), "\(config) \(r.run)")
                var worst = 0.0
                let image = try DecoderStage(f.model)(imageEmbeds: f.imageEmbeds, text: text,
                                                      settings: SamplingSettings(steps: r.steps, sampler: .ddim(r.options), guidance: r.guidance),
                                                      noise: noise, latents: try f.nhwc("\(r.run).decoder.latents"),
                                                      onStep: stepChecker(f, "\(r.run).decoder", worst: &worst))
                let e = nmse(image.toArray(), try f.nhwc("\(r.run).decoder.image"))
                print("\(config) DDIM run \(r.run) decoder: worst step NMSE \(worst), image NMSE \(e)")
                XCTAssertLessThanOrEqual(e, DDIMParityTests.stepNMSE, "\(config) \(r.run)")
                guard let sr = superRes[r.run] else { continue }
                var worstSR = 0.0
                let final = try SuperResStage(f.model)(try f.tensor("\(r.run).decoder.image"),
                                                       settings: SamplingSettings(steps: sr.steps, sampler: .ddim(sr.options)), noise: noise,
                                                       latents: try f.nhwc("\(r.run).super_res.latents"),
                                                       onStep: stepChecker(f, "\(r.run).super_res", worst: &worstSR))
                let got = try UnCLIPPipeline.toImages(final)[0].pixels
                let want = try f.nhwc("\(r.run).image.uint8").map { UInt8($0) }
                let p = psnr(got, want), same = zip(got, want).filter { $0 == $1 }.count
                print("\(config) DDIM run \(r.run) super-res: worst step NMSE \(worstSR), final image \(p) dB, \(same)/\(want.count) bytes identical")
                XCTAssertGreaterThanOrEqual(p, DDIMParityTests.minPSNR, "\(config) \(r.run)")
            }
        }
    }

    func testDecoderInversionUnderDDIMInverse() throws {
        for config in TinyKarlo.configs {
            let f = try Fixture(config)
            for (run, guidance) in [("inv1", nil), ("inv8", Float(8))] as [(String, Float?)] {
                let sched = try DDIMInverseScheduler(config: try f.model.config("decoder_scheduler"))
                XCTAssertEqual(try sched.timesteps(6), try f.timesteps("\(run).decoder.timesteps"), "\(config) \(run)")
                var worst = 0.0
                let xT = try DecoderStage(f.model).invert(image: try f.tensor("a.decoder.image"), imageEmbeds: f.imageEmbeds,
                                                          text: try f.text(guided: guidance != nil), steps: 6, guidance: guidance,
                                                          onStep: stepChecker(f, "\(run).decoder", worst: &worst))
                let e = nmse(xT, try f.nhwc("\(run).decoder.latents_T"))
                print("\(config) DDIM inversion \(run): worst step NMSE \(worst), x_T NMSE \(e)")
                XCTAssertLessThanOrEqual(e, DDIMParityTests.stepNMSE, "\(config) \(run)")
            }
        }
    }

    /// Scheduler rules that need no model: timesteps of each spacing, add_noise, and bad settings.
    func testDDIMSchedulerRules() throws {
        let cfg = try JSON.parse(#"{"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2", "clip_sample": true}"#)
        XCTAssertEqual(try DDIMScheduler(config: cfg).timesteps(4), [750, 500, 250, 0])
        XCTAssertEqual(try DDIMScheduler(config: cfg, options: .init(stepsOffset: 1)).timesteps(4), [751, 501, 251, 1])
        XCTAssertEqual(try DDIMScheduler(config: cfg, options: .init(timestepSpacing: .trailing)).timesteps(3), [999, 666, 332])
        XCTAssertEqual(try DDIMInverseScheduler(config: cfg).timesteps(4), [0, 250, 500, 750])
        XCTAssertThrowsError(try DDIMScheduler(config: cfg, options: .init(eta: -1)))
        XCTAssertThrowsError(try DDIMScheduler(config: cfg, options: .init(eta: .nan)))
        XCTAssertThrowsError(try DDIMScheduler(config: cfg).timesteps(0))
        XCTAssertThrowsError(try DDIMScheduler(config: cfg).timesteps(1001))
        XCTAssertThrowsError(try DDIMInverseScheduler(config: cfg, options: .init(timestepSpacing: .linspace)))
        // numpy's arange gives 62 of the trailing step counts 2...1000 one timestep too many (the extra one is −1)
        for n in [61, 103, 121] {
            XCTAssertThrowsError(try DDIMScheduler(config: cfg, options: .init(timestepSpacing: .trailing)).timesteps(n), "\(n)")
            XCTAssertThrowsError(try DDIMInverseScheduler(config: cfg, options: .init(timestepSpacing: .trailing)).timesteps(n), "\(n)")
        }
        XCTAssertEqual(try DDIMScheduler(config: cfg, options: .init(timestepSpacing: .trailing)).timesteps(60).count, 60)
        XCTAssertThrowsError(try DDIMScheduler(config: try JSON.parse(#"{"beta_schedule": "linear"}"#)))
        // add_noise: √ᾱ·x₀ + √(1−ᾱ)·ε; t = −1 is x₀ itself
        let s = try DDIMScheduler(config: cfg)
        let a = s.alphasCumprod[500]
        XCTAssertEqual(try s.addNoise([1, 2], noise: [0.5, -1], timestep: 500), [a.squareRoot() + (1 - a).squareRoot() * 0.5,
                                                                                  2 * a.squareRoot() - (1 - a).squareRoot()])
        XCTAssertEqual(try s.addNoise([1, 2], noise: [0, 0], timestep: -1), [1, 2])
        XCTAssertThrowsError(try s.addNoise([1], noise: [1, 2], timestep: 10))
        // eta 0 draws nothing; eta > 0 draws at every step; an inverse step never draws
        XCTAssertFalse(s.drawsNoise(step: 0, timesteps: [500, 0]))
        XCTAssertTrue(try DDIMScheduler(config: cfg, options: .init(eta: 0.3)).drawsNoise(step: 1, timesteps: [500, 0]))
        XCTAssertThrowsError(try DDIMScheduler(config: cfg, options: .init(eta: 0.3)).step(modelOutput: [0], predictedVariance: nil, step: 0,
                                                                                           timesteps: [500, 0], sample: [1], noise: nil))
    }
}
