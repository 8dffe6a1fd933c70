//! Where `SpeechVADNode`'s CPU goes: earshot's frame classifier alone, the node with the
//! light engine (`engine="earshot"`) on whole input (16 kHz i16, as the benchmark feeds it;
//! 48 kHz f32 stereo, with downmix and resampling) and streamed in 20 ms chunks, and the node
//! with its default engine (Silero, bundled weights) the same two ways.
//!
//! `cargo run --release -p remotemedia-nodes --example vad_profile`
//!
//! Prints the best of 5 runs (thread CPU time) over 60 s of synthetic speech-like audio (noise bursts shaped
//! by a syllable-rate envelope over a quiet noise floor), in microseconds per second of audio.

use remotemedia_core::data::{AudioBuffer, Data, Samples};
use remotemedia_core::node::Node;
use remotemedia_nodes::audio::{SpeechVadEngine, SpeechVadNode, SpeechVadParams};

#[path = "common/speechlike.rs"]
mod speechlike;

const SECS: usize = 60;
const RUNS: usize = 5;

/// CPU time of this thread, in seconds (wall time is meaningless on a shared machine).
fn cpu_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn best(mut f: impl FnMut()) -> f64 {
    (0..RUNS)
        .map(|_| {
            let t = cpu_now();
            f();
            cpu_now() - t
        })
        .fold(f64::INFINITY, f64::min)
        / SECS as f64
        * 1e6
}

/// The light engine's parameters (its defaults otherwise).
fn earshot() -> SpeechVadParams {
    SpeechVadParams {
        engine: SpeechVadEngine::Earshot,
        ..SpeechVadParams::default()
    }
}

fn run_node(rt: &tokio::runtime::Runtime, input: &AudioBuffer, chunk: usize) -> usize {
    run_with(rt, input, chunk, earshot())
}

fn run_with(
    rt: &tokio::runtime::Runtime,
    input: &AudioBuffer,
    chunk: usize,
    params: SpeechVadParams,
) -> usize {
    rt.block_on(async {
        let mut node = SpeechVadNode::new(params);
        node.start().await.unwrap();
        let mut outs = 0;
        let frames = input.frames();
        let mut pos = 0;
        while pos < frames {
            let end = (pos + chunk).min(frames);
            let part = Data::Audio(input.slice_frames(pos, end));
            outs += node.process(part).await.unwrap().is_some() as usize;
            pos = end;
        }
        outs + node.flush().await.unwrap().is_some() as usize
    })
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let x16 = speechlike::signal(SECS, 16_000, 1);
    let frame: Vec<Vec<f32>> = x16.chunks_exact(256).map(|c| c.to_vec()).collect();
    let us = best(|| {
        let mut d = earshot::Detector::default_boxed();
        let mut acc = 0.0;
        for f in &frame {
            acc += d.predict_f32(f);
        }
        std::hint::black_box(acc);
    });
    println!("earshot predict_f32 alone, 16 kHz:          {us:7.1} us/s");

    let i16s: Vec<i16> = x16.iter().map(|&v| (v * 32767.0) as i16).collect();
    let a16 = AudioBuffer::new(Samples::from(i16s), 16_000, 1).unwrap();
    let whole = best(|| {
        std::hint::black_box(run_node(&rt, &a16, a16.frames()));
    });
    let streamed = best(|| {
        std::hint::black_box(run_node(&rt, &a16, 320));
    });
    println!(
        "node, 16 kHz i16 mono: whole {whole:7.1} us/s, 20 ms chunks {streamed:7.1} us/s ({:+.1}%)",
        (streamed / whole - 1.0) * 100.0
    );
    let energy_only = best(|| {
        let params = SpeechVadParams {
            min_voicing: None,
            ..earshot()
        };
        std::hint::black_box(run_with(&rt, &a16, a16.frames(), params));
    });
    println!(
        "node, 16 kHz i16 mono, min_voicing null: whole {energy_only:7.1} us/s (voicing costs {:.1} us/s)",
        whole - energy_only
    );

    let x48 = speechlike::signal(SECS, 48_000, 2);
    let a48 = AudioBuffer::new(Samples::from(x48), 48_000, 2).unwrap();
    let whole = best(|| {
        std::hint::black_box(run_node(&rt, &a48, a48.frames()));
    });
    let streamed = best(|| {
        std::hint::black_box(run_node(&rt, &a48, 960));
    });
    println!(
        "node, 48 kHz f32 stereo: whole {whole:7.1} us/s, 20 ms chunks {streamed:7.1} us/s ({:+.1}%)",
        (streamed / whole - 1.0) * 100.0
    );

    let whole = best(|| {
        std::hint::black_box(run_with(
            &rt,
            &a16,
            a16.frames(),
            SpeechVadParams::default(),
        ));
    });
    let streamed = best(|| {
        std::hint::black_box(run_with(&rt, &a16, 320, SpeechVadParams::default()));
    });
    println!(
        "node, default engine (silero), 16 kHz i16 mono: whole {whole:7.1} us/s, \
         20 ms chunks {streamed:7.1} us/s ({:+.1}%)",
        (streamed / whole - 1.0) * 100.0
    );
}
