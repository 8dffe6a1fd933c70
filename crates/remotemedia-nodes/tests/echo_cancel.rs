//! EchoCancelNode (issue 37): the echo of recorded speech through a generated room response
//! (100-300 ms delay) is removed; near-end speech in double talk is kept; a reference that
//! stops counts as silence; streaming == whole input; a missing reference input and bad
//! parameters are named.

#[path = "../../remotemedia-core/tests/common/mod.rs"]
mod common;
#[path = "support/clip.rs"]
mod support;

use std::collections::BTreeMap;

use common::*;
use remotemedia_core::data::{AudioBuffer, Data, SampleFormat};
use remotemedia_core::Pipeline;
use support::{at_rate, clip};

const RATE: u32 = 16_000;

/// The bundled recording at 16 kHz, repeated to `secs`.
fn far_speech(secs: usize) -> Vec<f32> {
    let x = at_rate(&clip(), RATE);
    x.iter()
        .cycle()
        .take(secs * RATE as usize)
        .copied()
        .collect()
}

/// A room: `delay_ms` of pure delay, then a decaying noise tail (RT60 ~ 150 ms), at -6 dB.
fn room(delay_ms: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let d = delay_ms * RATE as usize / 1000;
    let tail = RATE as usize / 5;
    let mut h = vec![0.0f32; d + tail];
    for i in 0..tail {
        let decay = (-6.9 * i as f64 / (0.15 * RATE as f64)).exp();
        h[d + i] = ((rng.unit() - 0.5) * decay) as f32;
    }
    h[d] = 1.0;
    let norm = h.iter().map(|v| v * v).sum::<f32>().sqrt();
    h.iter().map(|v| v / norm * 0.5).collect()
}

fn convolve(x: &[f32], h: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    for (i, &xi) in x.iter().enumerate() {
        if xi == 0.0 {
            continue;
        }
        for (j, &hj) in h.iter().enumerate() {
            if i + j < y.len() {
                y[i + j] += xi * hj;
            }
        }
    }
    y
}

/// A voiced "near-end talker": 140 Hz harmonics, 4 Hz syllables, on in [on, off) seconds.
fn near_talker(n: usize, on: f64, off: f64) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let t = i as f64 / RATE as f64;
            if t < on || t >= off {
                return 0.0;
            }
            let env = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * 4.0 * t).sin();
            let v: f64 = (1..12)
                .map(|k| (2.0 * std::f64::consts::PI * 140.0 * k as f64 * t).sin() / k as f64)
                .sum();
            (0.08 * env * v) as f32
        })
        .collect()
}

fn aec_pipeline() -> Pipeline {
    pipeline(
        r#"{"version": "v1", "nodes": [
            {"id": "mic", "node_type": "PassThroughNode"},
            {"id": "far", "node_type": "PassThroughNode"},
            {"id": "aec", "node_type": "EchoCancelNode", "params": {"mic": "mic", "far": "far"}}],
          "connections": [{"from": "mic", "to": "aec"}, {"from": "far", "to": "aec"}]}"#,
    )
}

fn inputs(mic: &[f32], far: &[f32]) -> Data {
    let a = |v: &[f32]| Data::Audio(AudioBuffer::new(v.to_vec().into(), RATE, 1).unwrap());
    Data::Map(BTreeMap::from([
        ("mic".to_string(), a(mic)),
        ("far".to_string(), a(far)),
    ]))
}

fn energy(v: &[f32]) -> f64 {
    v.iter().map(|x| (*x as f64).powi(2)).sum()
}

#[test]
fn echo_is_removed_and_double_talk_kept_at_several_delays() {
    let secs = 20;
    let far = far_speech(secs);
    for (delay_ms, seed) in [(100, 1), (300, 2)] {
        let echo = convolve(&far, &room(delay_ms, seed));
        // The near end talks from 12 to 16 s (double talk: the far end plays throughout).
        let near = near_talker(far.len(), 12.0, 16.0);
        let mic: Vec<f32> = echo.iter().zip(&near).map(|(e, n)| e + n).collect();
        let out = rt()
            .block_on(aec_pipeline().run(inputs(&mic, &far)))
            .unwrap();
        let y = f32_samples(out.single().unwrap());
        assert_eq!(y.len(), mic.len());
        // Echo return loss enhancement over far-end-only speech after 5 s (converged).
        let s = |a: f64, b: f64| (a * RATE as f64) as usize..(b * RATE as f64) as usize;
        let erle = 10.0 * (energy(&echo[s(5.0, 12.0)]) / energy(&y[s(5.0, 12.0)])).log10();
        assert!(erle > 15.0, "{delay_ms} ms: ERLE {erle:.1} dB");
        // Double talk: the near-end talker is kept: its level, and its syllables (10 ms energy
        // envelope; AEC3's high-pass filter shifts the waveform's phase, so not sample by
        // sample).
        let dt = s(12.5, 15.5);
        let env = |v: &[f32]| -> Vec<f64> { v.chunks(160).map(energy).collect() };
        let (a, b) = (env(&near[dt.clone()]), env(&y[dt.clone()]));
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (ma, mb) = (mean(&a), mean(&b));
        let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let corr = cov
            / (a.iter().map(|x| (x - ma).powi(2)).sum::<f64>()
                * b.iter().map(|y| (y - mb).powi(2)).sum::<f64>())
            .sqrt();
        let kept = 10.0 * (energy(&y[dt.clone()]) / energy(&near[dt])).log10();
        assert!(
            corr > 0.5 && kept > -6.0,
            "{delay_ms} ms: near end in double talk: correlation {corr:.2}, level {kept:.1} dB"
        );
    }
}

#[test]
fn streamed_inputs_in_their_own_chunks_equal_the_whole_run() {
    let far = far_speech(4);
    let echo = convolve(&far, &room(120, 3));
    let mic: Vec<f32> = echo.iter().map(|e| e + 0.001).collect();
    let p = aec_pipeline();
    let whole = rt().block_on(p.run(inputs(&mic, &far))).unwrap();
    let whole = f32_samples(whole.single().unwrap());
    let streamed = rt().block_on(async {
        let mut s = p.session().unwrap();
        let mut outs = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < mic.len() || j < far.len() {
            let mut m = BTreeMap::new();
            if i < mic.len() {
                let n = 160.min(mic.len() - i); // 10 ms
                m.insert(
                    "mic".to_string(),
                    Data::Audio(AudioBuffer::new(mic[i..i + n].to_vec().into(), RATE, 1).unwrap()),
                );
                i += n;
            }
            if j < far.len() {
                let n = 320.min(far.len() - j); // 20 ms
                m.insert(
                    "far".to_string(),
                    Data::Audio(AudioBuffer::new(far[j..j + n].to_vec().into(), RATE, 1).unwrap()),
                );
                j += n;
            }
            outs.extend(s.push(Data::Map(m)).await.unwrap());
        }
        outs.extend(s.finish().await.unwrap());
        let joined = Data::join(outs.into_iter().map(|o| o.data).collect()).unwrap();
        f32_samples(&joined)
    });
    assert_eq!(streamed, whole);
}

#[test]
fn a_reference_that_stops_counts_as_silence_and_formats_are_kept() {
    let far = far_speech(2);
    let mic: Vec<f32> = far.iter().map(|x| x * 0.3).collect();
    let short_far = &far[..far.len() / 2];
    let a = |v: &[f32]| AudioBuffer::new(v.to_vec().into(), RATE, 1).unwrap();
    let input = Data::Map(BTreeMap::from([
        (
            "mic".to_string(),
            Data::Audio(a(&mic).to_format(SampleFormat::I16)),
        ),
        ("far".to_string(), Data::Audio(a(short_far))),
    ]));
    let out = rt().block_on(aec_pipeline().run(input)).unwrap();
    let audio = out.single().unwrap().as_audio().unwrap().clone();
    assert_eq!(audio.frames(), mic.len());
    assert_eq!(audio.format(), SampleFormat::I16);
}

#[test]
fn a_missing_reference_and_bad_parameters_are_named() {
    // The reference named but not connected.
    let p = pipeline(
        r#"{"version": "v1", "nodes": [
            {"id": "mic", "node_type": "PassThroughNode"},
            {"id": "aec", "node_type": "EchoCancelNode", "params": {"mic": "mic", "far": "speaker"}}],
          "connections": [{"from": "mic", "to": "aec"}]}"#,
    );
    let x = AudioBuffer::new(vec![0.0f32; 1600].into(), RATE, 1).unwrap();
    let e = rt()
        .block_on(p.run(Data::Audio(x)))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("params.far names 'speaker', which is not connected")
            && e.contains("far-end reference"),
        "{e}"
    );
    for (params, field) in [
        (r#"{"mic": "a", "far": "a"}"#, "far"),
        (r#"{"far": "a"}"#, "mic"),
        (r#"{"mic": "a", "far": "b", "delay": 3}"#, "delay"),
    ] {
        let e = Pipeline::from_json(&one_node("EchoCancelNode", params), &registry())
            .err()
            .unwrap_or_else(|| panic!("{params} accepted"))
            .to_string();
        assert!(e.contains(field), "{params}: {e}");
    }
    // Different rates.
    let mic = AudioBuffer::new(vec![0.0f32; 1600].into(), RATE, 1).unwrap();
    let far = AudioBuffer::new(vec![0.0f32; 4800].into(), 48_000, 1).unwrap();
    let input = Data::Map(BTreeMap::from([
        ("mic".to_string(), Data::Audio(mic)),
        ("far".to_string(), Data::Audio(far)),
    ]));
    let e = rt()
        .block_on(aec_pipeline().run(input))
        .unwrap_err()
        .to_string();
    assert!(e.contains("must share a rate"), "{e}");
}
