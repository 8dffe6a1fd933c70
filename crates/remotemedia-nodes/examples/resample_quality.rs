//! Measures AudioResampleNode's quality levels: alias (or image) rejection, passband gain,
//! latency and speed, for common rate pairs. The numbers in `docs/resampling.md` come from
//! this program:
//!
//! `cargo run --release -p remotemedia-nodes --example resample_quality`
//!
//! Quality and latency are the default engine's (`StreamResampler::new`); speed is given for
//! both engines.
//!
//! Method: 2 s sine tones at amplitude 0.5 through the streaming resampler (20 ms chunks, as
//! a live stream would feed it); the middle half of the output is analysed in f64. Rejection
//! is the RMS of what remains after removing the best-fitting sine at the expected output
//! frequency (or all of the output, for tones that must vanish), relative to the input RMS.
//! Tones are offset from round frequencies so they do not fit the FFT blocks exactly (which
//! would flatter the result).

use std::time::Instant;

use remotemedia_nodes::audio::{ResampleEngine, ResampleQuality, StreamResampler};

#[path = "common/tones.rs"]
mod tones;
use tones::{analyse, tone, total_level};

fn resample(q: ResampleQuality, rin: u32, rout: u32, x: &[f32]) -> Vec<f32> {
    let mut r = StreamResampler::<f32>::new(q, rin, rout, 1).unwrap();
    let mut out = Vec::new();
    for chunk in x.chunks((rin / 50) as usize) {
        r.push(chunk, &mut out);
    }
    r.flush(&mut out);
    out
}

/// (latency in ms, best-of-5 us per second of mono audio) on one engine.
fn speed(engine: ResampleEngine, q: ResampleQuality, rin: u32, rout: u32) -> (f64, f64) {
    let mut r = StreamResampler::<f32>::with_engine(engine, q, rin, rout, 1).unwrap();
    let latency_ms = r.delay_frames() as f64 * 1000.0 / rout as f64;
    let x = tone(1000.0, rin, 1.0);
    let mut best = f64::MAX;
    let mut out = Vec::with_capacity(rout as usize * 2);
    // Best of 5 rounds of 8 pushes (a round spans several FFT blocks for every pair, so the
    // cost is amortised even where a block is longer than a push).
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..8 {
            out.clear();
            r.push(&x, &mut out);
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / 8.0);
    }
    (latency_ms, best)
}

fn main() {
    println!("| rate pair | quality | engine | passband gain at 0.875 x Nyquist | worst alias/image | latency | polyphase: taps, latency, us per s | rubato FFT: latency, us per s |");
    println!("|---|---|---|---|---|---|---|---|");
    for (rin, rout) in [
        (48_000u32, 16_000u32),
        (44_100, 16_000),
        (16_000, 48_000),
        (22_050, 16_000),
        (8_000, 16_000),
        (22_050, 44_100),
        (48_000, 44_100),
        (44_100, 48_000),
        // No common factor beyond 1: interpolated phase table (see docs/resampling.md).
        (48_000, 44_101),
    ] {
        let nyq = rin.min(rout) as f64 / 2.0;
        for q in [
            ResampleQuality::Fast,
            ResampleQuality::Medium,
            ResampleQuality::High,
        ] {
            let pass_f = 0.875 * nyq + 13.7;
            let (gain, _) = analyse(
                &resample(q, rin, rout, &tone(pass_f, rin, 2.0)),
                rout,
                pass_f,
            );
            // Downsampling: tones above the output Nyquist must vanish. Upsampling: a tone
            // below the input Nyquist must come out alone (its images are the residual).
            let worst = if rout < rin {
                // Tones between the output and input Nyquist frequencies; for close rates
                // (48k -> 44.1k) the one tone halfway between them.
                let nyq_in = rin as f64 / 2.0;
                let mut tones: Vec<f64> = [1.125 * nyq + 13.7, 1.5 * nyq + 101.3]
                    .into_iter()
                    .filter(|&f| f < 0.98 * nyq_in)
                    .collect();
                if tones.is_empty() {
                    tones.push((nyq + nyq_in) / 2.0);
                }
                tones
                    .iter()
                    .map(|&f| total_level(&resample(q, rin, rout, &tone(f, rin, 2.0))))
                    .fold(f64::MIN, f64::max)
            } else {
                let f = 0.45 * rin as f64 + 13.7;
                analyse(&resample(q, rin, rout, &tone(f, rin, 2.0)), rout, f).1
            };
            let (poly_ms, poly_us) = speed(ResampleEngine::Polyphase, q, rin, rout);
            let (rubato_ms, rubato_us) = speed(ResampleEngine::RubatoFft, q, rin, rout);
            let taps = remotemedia_nodes::audio::polyphase_taps(q, rin, rout);
            let r = StreamResampler::<f32>::new(q, rin, rout, 1).unwrap();
            let engine = r.engine();
            let latency_ms = r.delay_frames() as f64 * 1000.0 / rout as f64;
            println!(
                "| {rin} -> {rout} | {q:?} | {engine:?} | {gain:+.3} dB | {worst:.1} dB | {latency_ms:.1} ms | {taps}, {poly_ms:.1} ms, {poly_us:.0} | {rubato_ms:.1} ms, {rubato_us:.0} |"
            );
        }
    }
}
