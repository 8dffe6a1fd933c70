//! Why `AudioResampleNode` uses rubato's FFT resampler: rubato's engines side by side at
//! 48 kHz -> 16 kHz, f32 mono, with the node's own quality measure (the numbers in the "How
//! the configuration was chosen" section of `docs/resampling.md` come from this program):
//!
//! `cargo run --release -p remotemedia-nodes --example resample_engines`
//!
//! For each engine: passband gain at 7 kHz, leakage of 9 kHz and 12 kHz tones (which must
//! vanish), and CPU per second of audio (best of 20 runs over 1 s, pushed in 20 ms chunks).
//! Each engine is used directly (no delay trimming), so this measures the engines, not the node.

use std::time::Instant;

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Indexing, PolynomialDegree, Resampler,
    SincInterpolationParameters, SincInterpolationType, WindowFunction,
};

const RATE_IN: u32 = 48_000;
const RATE_OUT: u32 = 16_000;

#[path = "common/tones.rs"]
mod tones;
use tones::{analyse, tone, total_level};

/// Pushes `x` through the engine in fixed chunks; returns the output and seconds taken.
fn run(engine: &mut dyn Resampler<f32>, x: &[f32]) -> (Vec<f32>, f64) {
    let mut out = Vec::new();
    let mut scratch = vec![0f32; engine.output_frames_max()];
    let mut offset = 0;
    let t = Instant::now();
    while x.len() - offset >= engine.input_frames_next() {
        let n = engine.input_frames_next();
        let input = InterleavedSlice::new(x, 1, x.len()).expect("mono");
        let cap = scratch.len();
        let mut output = InterleavedSlice::new_mut(&mut scratch, 1, cap).expect("mono");
        let indexing = Indexing {
            input_offset: offset,
            ..Indexing::default()
        };
        let (_, written) = engine
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .expect("sized from the engine");
        out.extend_from_slice(&scratch[..written]);
        offset += n;
    }
    (out, t.elapsed().as_secs_f64())
}

type Make = Box<dyn Fn() -> Box<dyn Resampler<f32>>>;

fn engines() -> Vec<(&'static str, Make)> {
    let ratio = RATE_OUT as f64 / RATE_IN as f64;
    let chunk = (RATE_IN / 50) as usize;
    let sinc = |len: usize| -> Make {
        Box::new(move || {
            let p = SincInterpolationParameters::new(len, WindowFunction::BlackmanHarris2)
                .interpolation(SincInterpolationType::Cubic);
            Box::new(Async::<f32>::new_sinc(ratio, 1.0, &p, chunk, 1, FixedAsync::Input).unwrap())
        })
    };
    vec![
        (
            "Fft::new_custom, 960-frame block, 1 sub-chunk (our `high`)",
            Box::new(move || {
                Box::new(
                    Fft::<f32>::new_custom(
                        RATE_IN as usize,
                        RATE_OUT as usize,
                        960,
                        1,
                        1,
                        WindowFunction::BlackmanHarris2,
                        FixedSync::Input,
                    )
                    .unwrap(),
                )
            }),
        ),
        (
            "Fft::new, 960-frame chunk (automatic sub-chunks)",
            Box::new(move || {
                Box::new(
                    Fft::<f32>::new(
                        RATE_IN as usize,
                        RATE_OUT as usize,
                        960,
                        1,
                        FixedSync::Input,
                    )
                    .unwrap(),
                )
            }),
        ),
        (
            "Fft::new_custom, 1024-frame block",
            Box::new(move || {
                Box::new(
                    Fft::<f32>::new_custom(
                        RATE_IN as usize,
                        RATE_OUT as usize,
                        1024,
                        1,
                        1,
                        WindowFunction::BlackmanHarris2,
                        FixedSync::Input,
                    )
                    .unwrap(),
                )
            }),
        ),
        ("Async sinc, 256 taps, cubic", sinc(256)),
        ("Async sinc, 512 taps, cubic", sinc(512)),
        (
            "Async polynomial, cubic",
            Box::new(move || {
                Box::new(
                    Async::<f32>::new_poly(
                        ratio,
                        1.0,
                        PolynomialDegree::Cubic,
                        chunk,
                        1,
                        FixedAsync::Input,
                    )
                    .unwrap(),
                )
            }),
        ),
    ]
}

fn main() {
    println!("| engine (48k -> 16k, f32) | gain at 7 kHz | 9 kHz leaks at | 12 kHz leaks at | us per s of audio |");
    println!("|---|---|---|---|---|");
    let one_second = tone(1000.0, RATE_IN, 1.0);
    for (name, make) in engines() {
        let (y, _) = run(make().as_mut(), &tone(7000.0, RATE_IN, 2.0));
        let pass = analyse(&y, RATE_OUT, 7000.0).0;
        let (y, _) = run(make().as_mut(), &tone(9013.7, RATE_IN, 2.0));
        let leak9 = total_level(&y);
        let (y, _) = run(make().as_mut(), &tone(12_013.7, RATE_IN, 2.0));
        let leak12 = total_level(&y);
        let best = (0..20)
            .map(|_| run(make().as_mut(), &one_second).1)
            .fold(f64::MAX, f64::min);
        println!(
            "| {name} | {pass:+.2} dB | {leak9:.1} dB | {leak12:.1} dB | {:.0} |",
            best * 1e6
        );
    }
}
