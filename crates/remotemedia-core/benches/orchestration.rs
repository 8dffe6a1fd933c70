//! Executor overhead beyond the nodes' own work: a 3-node pipeline of PassThrough nodes
//! (each node's work is a few nanoseconds), per pushed chunk and per whole run.
//!
//! `cargo bench -p remotemedia-core --bench orchestration`

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use remotemedia_core::data::{AudioBuffer, Data};
use remotemedia_core::executor::Pipeline;

const THREE_NODES: &str = r#"{"version": "v1", "nodes": [
    {"id": "a", "node_type": "PassThroughNode"},
    {"id": "b", "node_type": "PassThroughNode"},
    {"id": "c", "node_type": "PassThroughNode"}],
  "connections": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]}"#;

const FAN_OUT: &str = r#"{"version": "v1", "nodes": [
    {"id": "a", "node_type": "PassThroughNode"},
    {"id": "b", "node_type": "PassThroughNode"},
    {"id": "c", "node_type": "PassThroughNode"}],
  "connections": [{"from": "a", "to": "b"}, {"from": "a", "to": "c"}]}"#;

fn orchestration(c: &mut Criterion) {
    let registry = remotemedia_nodes::builtin_registry();
    let chunk = Data::Audio(AudioBuffer::mono_f32(vec![0.1; 320], 16_000)); // 20 ms at 16 kHz
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("orchestration");

    // Each measurement runs its iterations inside one `block_on`, so the runtime's entry
    // cost is not counted per iteration.
    let linear = Pipeline::from_json(THREE_NODES, &registry).unwrap();
    g.bench_function("run_3_node_linear", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(linear.run(chunk.clone()).await.unwrap());
                }
                t.elapsed()
            })
        })
    });
    let mut session = linear.session().unwrap();
    g.bench_function("session_push_3_node_linear_20ms_chunk", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(session.push(chunk.clone()).await.unwrap());
                }
                t.elapsed()
            })
        })
    });
    drop(session);

    let fan = Pipeline::from_json(FAN_OUT, &registry).unwrap();
    g.bench_function("run_3_node_fan_out", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    black_box(fan.run(chunk.clone()).await.unwrap());
                }
                t.elapsed()
            })
        })
    });
    g.bench_function("build_pipeline_from_json_3_nodes", |b| {
        b.iter(|| Pipeline::from_json(THREE_NODES, &registry).unwrap())
    });
    g.finish();
}

criterion_group!(benches, orchestration);
criterion_main!(benches);
