//! DenoiseNode (issue 37): noise pulled down on real recorded speech, output aligned with the
//! input at every rate, the length and format kept, streaming == whole input, the attenuation
//! limit, channels kept apart, bad parameters and input named.

#[path = "../../remotemedia-core/tests/common/mod.rs"]
mod common;
#[path = "support/clip.rs"]
mod support;

use common::*;
use remotemedia_core::data::{AudioBuffer, Data, SampleFormat};
use remotemedia_core::Pipeline;
use remotemedia_nodes::audio::DenoiseNode;
use support::{at_rate, clip};

/// White noise at `rms`.
fn noise(n: usize, rms_level: f64, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            // Sum of 4 uniforms: near-Gaussian, unit variance after scaling.
            let s: f64 = (0..4).map(|_| rng.unit() - 0.5).sum::<f64>() * (3.0f64).sqrt();
            (s * rms_level) as f32
        })
        .collect()
}

fn node(params: &str) -> Pipeline {
    pipeline(&one_node("DenoiseNode", params))
}

fn denoise(params: &str, x: &[f32], rate: u32, ch: u16) -> Vec<f32> {
    let input = AudioBuffer::new(x.to_vec().into(), rate, ch).unwrap();
    f32_samples(&run_whole(&node(params), input))
}

/// Error energy of `got` against `want`, relative to `want`'s energy, in dB.
fn error_db(want: &[f32], got: &[f32]) -> f64 {
    let e: f64 = want
        .iter()
        .zip(got)
        .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
        .sum();
    let s: f64 = want.iter().map(|a| (*a as f64).powi(2)).sum();
    10.0 * (e / s).log10()
}

#[test]
fn noisy_speech_comes_out_closer_to_the_clean_speech_at_every_rate() {
    let clean48 = clip();
    for rate in [48_000, 16_000, 44_100, 8_000] {
        let clean = at_rate(&clean48, rate);
        let level = rms(&clean) / 10f64.powf(5.0 / 20.0); // 5 dB SNR
        let n = noise(clean.len(), level, 7);
        let noisy: Vec<f32> = clean.iter().zip(&n).map(|(a, b)| a + b).collect();
        let out = denoise("{}", &noisy, rate, 1);
        assert_eq!(out.len(), noisy.len(), "{rate} Hz: length kept");
        let before = error_db(&clean, &noisy);
        let after = error_db(&clean, &out);
        assert!(
            after < before - 3.0,
            "{rate} Hz: error {before:.1} dB -> {after:.1} dB"
        );
    }
}

#[test]
fn output_lines_up_with_the_input() {
    // Speech alone goes through nearly unchanged and with no delay: the best match is at
    // lag 0, at 48 kHz and through the resamplers.
    let clean48 = clip();
    for rate in [48_000, 16_000] {
        let clean = at_rate(&clean48, rate);
        let out = denoise("{}", &clean, rate, 1);
        let corr = |lag: isize| -> f64 {
            (2000..clean.len() - 2000)
                .map(|i| clean[i] as f64 * out[(i as isize + lag) as usize] as f64)
                .sum()
        };
        let best = (-600..=600)
            .max_by(|a, b| corr(*a).total_cmp(&corr(*b)))
            .unwrap();
        assert_eq!(best, 0, "{rate} Hz: output lags by {best} frames");
    }
}

#[test]
fn streamed_output_equals_whole_input_output_in_every_format() {
    let clean = at_rate(&clip()[..48_000], 16_000);
    let n = noise(clean.len(), 0.02, 3);
    let x: Vec<f32> = clean.iter().zip(&n).map(|(a, b)| a + b).collect();
    let stereo: Vec<f32> = x.iter().flat_map(|s| [*s, -0.5 * s]).collect();
    for (rate, data, ch) in [(16_000, stereo, 2), (48_000, clip()[..30_000].to_vec(), 1)] {
        for format in SampleFormat::ALL {
            let input = AudioBuffer::new(data.clone().into(), rate, ch)
                .unwrap()
                .to_format(format);
            let p = node("{\"attenuation_limit_db\": 20}");
            let whole = run_whole(&p, input.clone());
            let audio = whole.as_audio().unwrap();
            assert_eq!(audio.format(), format);
            assert_eq!(audio.frames(), input.frames());
            for (max_chunk, seed) in [(37, 1), (480, 2), (3000, 3)] {
                let streamed = run_streamed(&p, &input, max_chunk, seed);
                assert_eq!(
                    streamed, whole,
                    "{rate} Hz {format}: chunks up to {max_chunk}"
                );
            }
        }
    }
}

#[test]
fn stationary_noise_is_pulled_down_and_the_limit_caps_it() {
    let n = noise(48_000 * 3, 0.03, 11);
    let tail = |y: &[f32]| rms(&y[48_000..]); // after the first second
    let full = denoise("{}", &n, 48_000, 1);
    let limited = denoise("{\"attenuation_limit_db\": 6}", &n, 48_000, 1);
    let in_level = tail(&n);
    let full_db = db(tail(&full) / in_level);
    let limited_db = db(tail(&limited) / in_level);
    assert!(full_db < -6.0, "noise only down {full_db:.1} dB");
    // At most 6 dB of attenuation anywhere (the input mixed back in at -6 dB).
    assert!(
        limited_db >= -6.5 && limited_db > full_db + 1.0,
        "with a 6 dB limit noise is down {limited_db:.1} dB (unlimited {full_db:.1} dB)"
    );
}

#[test]
fn channels_are_denoised_apart() {
    // Noise in the left channel only: the right stays silent, and the left matches a mono run.
    let n = noise(24_000, 0.05, 5);
    let stereo: Vec<f32> = n.iter().flat_map(|s| [*s, 0.0]).collect();
    let out = denoise("{}", &stereo, 48_000, 2);
    let mono = denoise("{}", &n, 48_000, 1);
    let left: Vec<f32> = out.iter().step_by(2).copied().collect();
    let right: Vec<f32> = out.iter().skip(1).step_by(2).copied().collect();
    assert!(right.iter().all(|s| *s == 0.0));
    assert_eq!(left, mono);
}

#[test]
fn bad_parameters_and_input_are_named() {
    let e = Pipeline::from_json(
        &one_node("DenoiseNode", "{\"attenuation_limit_db\": 0}"),
        &registry(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("attenuation_limit_db"), "{e}");
    assert!(e.contains("1") && e.contains("100"), "{e}");
    let e = Pipeline::from_json(&one_node("DenoiseNode", "{\"strength\": 1}"), &registry())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("strength"), "{e}");
    let mut x = vec![0.0f32; 4800];
    x[100] = f32::NAN;
    let input = AudioBuffer::new(x.into(), 48_000, 1).unwrap();
    let err = rt()
        .block_on(node("{}").run(Data::Audio(input)))
        .expect_err("NaN refused")
        .to_string();
    assert!(
        err.contains("(DenoiseNode)") && err.contains("NaN"),
        "{err}"
    );
}

#[test]
fn latency_is_one_frame_at_48_khz_and_more_through_the_resamplers() {
    assert_eq!(DenoiseNode::latency_frames(48_000), 480);
    let at16 = DenoiseNode::latency_frames(16_000);
    assert!(at16 > 160 && at16 < 16_000 / 20, "{at16} frames at 16 kHz");
}

#[test]
fn emit_probabilities_gives_rnnoise_s_speech_probability_per_10_ms() {
    let probabilities = |x: &[f32], rate: u32| -> Vec<f64> {
        let p = node("{\"emit\": \"probabilities\"}");
        let input = AudioBuffer::new(x.to_vec().into(), rate, 1).unwrap();
        let out = run_whole(&p, input.clone());
        let Data::Json(serde_json::Value::Array(items)) = &out else {
            panic!("{out:?}")
        };
        // Streamed: the same list.
        assert_eq!(run_streamed(&p, &input, 700, 4), out);
        assert_eq!(items[1]["start_ms"], 10.0);
        items
            .iter()
            .map(|i| i["probability"].as_f64().unwrap())
            .collect()
    };
    let speech = at_rate(&clip(), 16_000);
    let probs = probabilities(&speech, 16_000);
    // One per 10 ms of input (the last partial one included), each in [0, 1].
    assert_eq!(probs.len(), speech.len().div_ceil(160));
    assert!(probs.iter().all(|p| (0.0..=1.0).contains(p)));
    // Higher where the recording speaks (loud 10 ms) than in its pauses (quiet 10 ms).
    let level: Vec<f64> = speech.chunks(160).map(|c| db(rms(c))).collect();
    let loudest = level.iter().cloned().fold(f64::MIN, f64::max);
    let mean = |keep: &dyn Fn(f64) -> bool| {
        let v: Vec<f64> = probs
            .iter()
            .zip(&level)
            .filter(|(_, l)| keep(**l))
            .map(|(p, _)| *p)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (talk, pause) = (mean(&|l| l > loudest - 15.0), mean(&|l| l < loudest - 40.0));
    assert!(talk > pause + 0.3, "speech {talk:.2}, pauses {pause:.2}");
}
