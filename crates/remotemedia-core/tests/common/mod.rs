//! Shared helpers for the integration tests.
#![allow(dead_code)]

use remotemedia_core::data::{AudioBuffer, Data, Samples};
use remotemedia_core::executor::Pipeline;
use remotemedia_core::registry::NodeRegistry;

/// A deterministic xorshift generator (tests must not depend on rand's API churn).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform in [lo, hi].
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// `secs` seconds of a sine at `freq` Hz, interleaved over `channels` (each channel phase-shifted).
pub fn sine(freq: f64, rate: u32, secs: f64, amp: f64, channels: u16) -> Vec<f32> {
    let frames = (secs * rate as f64).round() as usize;
    let mut v = Vec::with_capacity(frames * channels as usize);
    for n in 0..frames {
        for c in 0..channels {
            let t = n as f64 / rate as f64;
            v.push((amp * (2.0 * std::f64::consts::PI * freq * t + c as f64 * 0.7).sin()) as f32);
        }
    }
    v
}

/// A music-like test signal: a few harmonics with slow amplitude modulation and some noise.
pub fn music(rate: u32, secs: f64, channels: u16, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let frames = (secs * rate as f64).round() as usize;
    let nyq = rate as f64 / 2.0;
    let partials: Vec<(f64, f64)> = [110.0, 220.0, 330.0, 440.0, 660.0, 1250.0, 2500.0, 3100.0]
        .iter()
        .filter(|&&f| f < nyq * 0.4)
        .map(|&f| (f, 0.08))
        .collect();
    let mut v = Vec::with_capacity(frames * channels as usize);
    for n in 0..frames {
        let t = n as f64 / rate as f64;
        let env = 0.6 + 0.4 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
        for c in 0..channels {
            let mut s = 0.0;
            for &(f, a) in &partials {
                s += a * (2.0 * std::f64::consts::PI * f * t + c as f64).sin();
            }
            v.push((env * s + 0.01 * rng.unit()) as f32);
        }
    }
    v
}

pub fn rms(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / x.len() as f64).sqrt()
}

pub fn db(ratio: f64) -> f64 {
    20.0 * ratio.max(1e-300).log10()
}

pub fn pipeline(json: &str) -> Pipeline {
    Pipeline::from_json(json, &registry()).unwrap_or_else(|e| panic!("{e}"))
}

pub fn registry() -> NodeRegistry {
    let mut r = remotemedia_nodes::builtin_registry();
    remotemedia_core::testing::register(&mut r);
    r
}

/// A one-node manifest.
pub fn one_node(node_type: &str, params: &str) -> String {
    format!(
        r#"{{"version": "v1", "nodes": [{{"id": "n", "node_type": "{node_type}", "params": {params}}}]}}"#
    )
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs the whole input and returns the single sink's output.
pub fn run_whole(p: &Pipeline, input: AudioBuffer) -> Data {
    let out = rt()
        .block_on(p.run(Data::Audio(input)))
        .unwrap_or_else(|e| panic!("{e}"));
    out.single().cloned().expect("one sink output")
}

/// Streams `input` in random chunks of 1..=max_chunk frames and joins the sink's outputs.
pub fn run_streamed(p: &Pipeline, input: &AudioBuffer, max_chunk: usize, seed: u64) -> Data {
    let mut rng = Rng::new(seed);
    rt().block_on(async {
        let mut session = p.session().unwrap();
        let mut outs = Vec::new();
        let mut pos = 0;
        let frames = input.frames();
        while pos < frames {
            let n = rng.range(1, max_chunk).min(frames - pos);
            let chunk = input.slice_frames(pos, pos + n);
            outs.extend(session.push(Data::Audio(chunk)).await.unwrap());
            pos += n;
        }
        outs.extend(session.finish().await.unwrap());
        Data::join(outs.into_iter().map(|o| o.data).collect()).expect("some output")
    })
}

pub fn f32_samples(d: &Data) -> Vec<f32> {
    match d.as_audio().expect("audio output").samples() {
        Samples::F32(b) => b.to_vec(),
        other => other.to_f32_vec(),
    }
}
