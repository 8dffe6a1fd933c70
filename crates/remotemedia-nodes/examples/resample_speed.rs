//! Time per second of audio of each resampling engine, per rate pair and channel count (the
//! Rust side of `benchmarks/resample_bench.py`, without Python in the way):
//!
//! `cargo run --release -p remotemedia-nodes --example resample_speed [-- ROUNDS [in:out,...] [default|polyphase|rubato|all [fast|medium|high]]]`
//!
//! 10 s of a music-like f32 signal, pushed whole ("call") or in 20 ms chunks ("stream"),
//! plus `flush`; best of interleaved rounds, in microseconds per second of audio.

use std::time::Instant;

use remotemedia_nodes::audio::{ResampleEngine, ResampleQuality, StreamResampler};

const SECS: usize = 10;

fn music(rate: u32, ch: usize) -> Vec<f32> {
    let n = rate as usize * SECS;
    let mut seed = 0x1234_5678u32;
    let mut x = Vec::with_capacity(n * ch);
    let mut lp = 0f32;
    for i in 0..n {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
        lp = 0.9 * lp + 0.1 * noise;
        let t = i as f32 / rate as f32;
        let v = 0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
            + 0.1 * (2.0 * std::f32::consts::PI * 3100.0 * t).sin()
            + lp;
        for c in 0..ch {
            x.push(if c == 0 { v } else { -v });
        }
    }
    x
}

fn run(
    q: ResampleQuality,
    engine: Option<ResampleEngine>,
    rin: u32,
    rout: u32,
    ch: usize,
    x: &[f32],
    chunk: usize,
) -> f64 {
    let r = match engine {
        Some(e) => StreamResampler::<f32>::with_engine(e, q, rin, rout, ch),
        None => StreamResampler::<f32>::new(q, rin, rout, ch),
    };
    let Ok(mut r) = r else {
        return f64::NAN; // engine not available for this pair
    };
    let mut out = Vec::with_capacity(x.len() * rout as usize / rin as usize + 4096);
    let t = Instant::now();
    for c in x.chunks(chunk * ch) {
        r.push(c, &mut out);
    }
    r.flush(&mut out);
    std::hint::black_box(&out);
    t.elapsed().as_secs_f64() * 1e6 / SECS as f64
}

/// Best of the rounds (the machine is shared; the minimum is the least disturbed run).
fn best(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[0]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(7);
    let q = match args.get(4).map(String::as_str) {
        Some("fast") => ResampleQuality::Fast,
        Some("medium") => ResampleQuality::Medium,
        _ => ResampleQuality::High,
    };
    let pairs: Vec<(u32, u32)> = match args.get(2) {
        Some(p) => p
            .split(',')
            .map(|s| {
                let (a, b) = s.split_once(':').expect("in:out");
                (a.parse().unwrap(), b.parse().unwrap())
            })
            .collect(),
        None => vec![
            (48_000, 16_000),
            (44_100, 16_000),
            (16_000, 48_000),
            (22_050, 16_000),
            (8_000, 16_000),
            (48_000, 44_100),
        ],
    };
    println!("| pair | ch | engine | call us/s | stream us/s |");
    println!("|---|---|---|---|---|");
    for (rin, rout) in pairs {
        for ch in [1usize, 2] {
            let x = music(rin, ch);
            let only = args.get(3).map(String::as_str);
            let engines: Vec<(&str, Option<ResampleEngine>)> = [
                ("default", None),
                ("polyphase", Some(ResampleEngine::Polyphase)),
                ("rubato", Some(ResampleEngine::RubatoFft)),
            ]
            .into_iter()
            .filter(|(name, _)| only.is_none_or(|o| o == "all" || o == *name))
            .collect();
            let mut times = vec![(Vec::new(), Vec::new()); engines.len()];
            let whole = x.len() / ch;
            let step = rin as usize / 50;
            for _ in 0..rounds {
                for (i, (_, e)) in engines.iter().enumerate() {
                    times[i].0.push(run(q, *e, rin, rout, ch, &x, whole));
                    times[i].1.push(run(q, *e, rin, rout, ch, &x, step));
                }
            }
            for ((name, _), (a, b)) in engines.iter().zip(times) {
                println!(
                    "| {rin} -> {rout} | {ch} | {name} | {:.0} | {:.0} |",
                    best(a),
                    best(b)
                );
            }
        }
    }
}
