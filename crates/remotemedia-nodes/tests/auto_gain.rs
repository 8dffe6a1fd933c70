//! AutoGainNode (issue 37): recorded speech at -45..-5 dBFS comes out at the target level,
//! noise alone is not raised, peaks stay under the limiter, streaming == whole input in every
//! format, bad parameters named.

#[path = "../../remotemedia-core/tests/common/mod.rs"]
mod common;
#[path = "support/clip.rs"]
mod support;

use common::*;
use remotemedia_core::data::{AudioBuffer, SampleFormat};
use remotemedia_core::Pipeline;
use support::{at_rate, clip};

/// The bundled recording at `rate`, repeated to about 19 s.
fn speech(rate: u32) -> Vec<f32> {
    at_rate(&clip(), rate).repeat(3)
}

const W: usize = 512;

/// Power mean over the windows where `reference` is active (within 30 dB of its loudest
/// window), of `x`, in dBFS, from `from` on.
fn speech_level_db(reference: &[f32], x: &[f32], from: usize) -> f64 {
    let power = |s: &[f32]| s.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / s.len() as f64;
    let wins: Vec<(f64, f64)> = reference[from..]
        .chunks_exact(W)
        .zip(x[from..].chunks_exact(W))
        .map(|(r, y)| (power(r), power(y)))
        .collect();
    let loudest = wins.iter().map(|w| w.0).fold(0.0, f64::max);
    let active: Vec<f64> = wins
        .iter()
        .filter(|w| w.0 > loudest * 1e-3)
        .map(|w| w.1)
        .collect();
    10.0 * (active.iter().sum::<f64>() / active.len() as f64).log10()
}

fn agc(params: &str, x: &[f32], rate: u32, ch: u16) -> Vec<f32> {
    let p = pipeline(&one_node("AutoGainNode", params));
    let input = AudioBuffer::new(x.to_vec().into(), rate, ch).unwrap();
    f32_samples(&run_whole(&p, input))
}

#[test]
fn speech_at_any_level_comes_out_at_the_target() {
    let clean = speech(16_000);
    let level = speech_level_db(&clean, &clean, 0);
    for input_db in [-45.0, -35.0, -25.0, -15.0, -5.0] {
        let k = 10f64.powf((input_db - level) / 20.0) as f32;
        let x: Vec<f32> = clean.iter().map(|s| s * k).collect();
        let y = agc("{}", &x, 16_000, 1);
        assert_eq!(y.len(), x.len());
        // After the first pass of the clip (6.4 s) the gain has settled.
        let out = speech_level_db(&clean, &y, clean.len() / 3);
        assert!(
            (out - (-20.0)).abs() <= 2.0,
            "speech at {input_db} dBFS came out at {out:.1} dBFS (target -20)"
        );
    }
}

#[test]
fn another_target_and_rate_are_reached() {
    let clean = speech(48_000);
    let level = speech_level_db(&clean, &clean, 0);
    let k = 10f64.powf((-40.0 - level) / 20.0) as f32;
    let x: Vec<f32> = clean.iter().map(|s| s * k).collect();
    let y = agc("{\"target_db\": -26}", &x, 48_000, 1);
    let out = speech_level_db(&clean, &y, clean.len() / 3);
    assert!(
        (out + 26.0).abs() <= 2.0,
        "{out:.1} dBFS at 48 kHz (target -26)"
    );
}

#[test]
fn noise_alone_is_not_raised() {
    let mut rng = Rng::new(9);
    for level in [0.003f64, 0.03] {
        let x: Vec<f32> = (0..16_000 * 10)
            .map(|_| ((rng.unit() - 0.5) * 3.46 * level) as f32)
            .collect();
        let y = agc("{}", &x, 16_000, 1);
        let raised = db(rms(&y) / rms(&x));
        assert!(raised <= 6.0, "noise at {level} rms raised {raised:.1} dB");
    }
}

#[test]
fn peaks_stay_under_the_limiter() {
    let clean = speech(16_000);
    let peak = clean.iter().fold(0f32, |m, s| m.max(s.abs()));
    let x: Vec<f32> = clean.iter().map(|s| s / peak * 0.9).collect();
    let y = agc("{\"target_db\": -3, \"limiter_db\": -6}", &x, 16_000, 1);
    let out_peak = y.iter().fold(0f32, |m, s| m.max(s.abs()));
    assert!(
        out_peak <= 10f32.powf(-6.0 / 20.0) + 1e-6,
        "peak {out_peak}"
    );
}

#[test]
fn streamed_output_equals_whole_input_output_in_every_format() {
    let mono = speech(16_000)[..16_000 * 4].to_vec();
    let stereo48: Vec<f32> = speech(48_000)[..48_000 * 3]
        .iter()
        .flat_map(|s| [*s * 0.05, *s * 0.02])
        .collect();
    for (x, rate, ch) in [(mono, 16_000, 1u16), (stereo48, 48_000, 2)] {
        for format in SampleFormat::ALL {
            let input = AudioBuffer::new(x.clone().into(), rate, ch)
                .unwrap()
                .to_format(format);
            let p = pipeline(&one_node("AutoGainNode", "{}"));
            let whole = run_whole(&p, input.clone());
            assert_eq!(whole.as_audio().unwrap().format(), format);
            assert_eq!(whole.as_audio().unwrap().frames(), input.frames());
            for (max_chunk, seed) in [(41, 1), (320, 2), (5000, 3)] {
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
fn bad_parameters_are_named() {
    for (params, field) in [
        ("{\"target_db\": 3}", "target_db"),
        ("{\"max_gain_db\": 100}", "max_gain_db"),
        ("{\"limiter_db\": 1}", "limiter_db"),
        ("{\"target\": -20}", "target"),
    ] {
        let e = Pipeline::from_json(&one_node("AutoGainNode", params), &registry())
            .err()
            .unwrap_or_else(|| panic!("{params} accepted"))
            .to_string();
        assert!(e.contains(field), "{params}: {e}");
    }
}
