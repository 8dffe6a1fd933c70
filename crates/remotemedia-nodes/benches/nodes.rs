//! Native node kernels, in the units of the seed's performance table:
//! VAD per 30 ms frame, resampling per second of audio, i16 -> f32 per 1M samples.
//!
//! `cargo bench -p remotemedia-nodes --bench nodes`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use remotemedia_core::data::{convert, AudioBuffer, Data};
use remotemedia_core::node::Node;
use remotemedia_nodes::audio::{ResampleQuality, StreamResampler, VadNode, VadParams};

fn signal(rate: u32, secs: f64) -> Vec<f32> {
    let n = (rate as f64 * secs) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            (0.3 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                + 0.1 * (2.0 * std::f64::consts::PI * 3_000.0 * t).sin()) as f32
        })
        .collect()
}

fn resample(c: &mut Criterion) {
    let mut g = c.benchmark_group("resample_per_second_of_audio");
    for (rin, rout) in [(48_000u32, 16_000u32), (44_100, 16_000), (16_000, 48_000)] {
        let input = signal(rin, 1.0);
        for q in [
            ResampleQuality::Fast,
            ResampleQuality::Medium,
            ResampleQuality::High,
        ] {
            let mut r = StreamResampler::<f32>::new(q, rin, rout, 1).unwrap();
            let mut out = Vec::with_capacity(rout as usize * 2);
            g.bench_function(
                BenchmarkId::new(format!("{rin}->{rout}"), format!("{q:?}")),
                |b| {
                    b.iter(|| {
                        out.clear();
                        r.push(&input, &mut out);
                        std::hint::black_box(&out);
                    })
                },
            );
        }
    }
    g.finish();
}

fn vad(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("vad");
    // One 30 ms frame at 16 kHz per call: the per-frame cost including the node call.
    let frame = Data::Audio(AudioBuffer::mono_f32(signal(16_000, 0.03), 16_000));
    let mut node = VadNode::new(VadParams::default());
    g.bench_function("per_30ms_frame_16k", |b| {
        b.iter(|| rt.block_on(node.process(frame.clone())).unwrap())
    });
    // Ten seconds in one call, reported per frame via throughput (333 frames).
    let ten = Data::Audio(AudioBuffer::mono_f32(signal(16_000, 9.99), 16_000));
    g.throughput(Throughput::Elements(333));
    let mut node = VadNode::new(VadParams::default());
    g.bench_function("10s_16k_in_one_call", |b| {
        b.iter(|| rt.block_on(node.process(ten.clone())).unwrap())
    });
    g.finish();
}

fn format(c: &mut Criterion) {
    let mut g = c.benchmark_group("format_1M_samples");
    let ints: Vec<i16> = (0..1_000_000)
        .map(|i| (i * 7919 % 65_536 - 32_768) as i16)
        .collect();
    let floats: Vec<f32> = convert::i16_to_f32(&ints);
    g.throughput(Throughput::Elements(1_000_000));
    let mut out_f = vec![0.0f32; ints.len()];
    g.bench_function("i16_to_f32_into_buffer", |b| {
        b.iter(|| convert::i16_to_f32_into(&ints, &mut out_f))
    });
    g.bench_function("i16_to_f32_allocating", |b| {
        b.iter(|| convert::i16_to_f32(&ints))
    });
    let mut out_i = vec![0i16; ints.len()];
    g.bench_function("f32_to_i16_into_buffer", |b| {
        b.iter(|| convert::f32_to_i16_into(&floats, &mut out_i))
    });
    g.finish();
}

criterion_group!(benches, resample, vad, format);
criterion_main!(benches);
