//! The executor through real pipelines: topology, concurrency, retries, circuit breaker,
//! panics, timeouts, metrics and trace.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::*;
use remotemedia_core::data::{AudioBuffer, Data, SampleFormat};
use remotemedia_core::executor::{BreakerState, ExecutionStatus, Pipeline};
use remotemedia_core::node::Node;
use remotemedia_core::registry::{NodeParams, NodeRegistry, TypedFactory};
use remotemedia_core::{ExecutorError, NodeError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn audio(frames: usize, rate: u32) -> Data {
    Data::Audio(AudioBuffer::mono_f32(
        sine(440.0, rate, frames as f64 / rate as f64, 0.5, 1),
        rate,
    ))
}

#[test]
fn linear_pipeline_runs_in_order() {
    let p = pipeline(
        r#"{"version": "v1", "metadata": {"name": "demo"},
            "nodes": [
              {"id": "resample", "node_type": "AudioResampleNode", "params": {"target_rate": 16000, "quality": "high"}},
              {"id": "to_i16", "node_type": "FormatConverterNode", "params": {"target_format": "i16"}}],
            "connections": [{"from": "resample", "to": "to_i16"}]}"#,
    );
    let out = rt().block_on(p.run(audio(48_000, 48_000))).unwrap();
    assert_eq!(out.outputs.keys().collect::<Vec<_>>(), vec!["to_i16"]);
    let a = out.outputs["to_i16"].as_audio().unwrap();
    assert_eq!(
        (a.sample_rate(), a.frames(), a.format()),
        (16_000, 16_000, SampleFormat::I16)
    );
    assert_eq!(out.metrics.pipeline, "demo");
}

#[test]
fn fan_out_returns_every_sink_by_id() {
    let p = pipeline(
        r#"{"version": "v1", "nodes": [
              {"id": "src", "node_type": "PassThroughNode"},
              {"id": "r16", "node_type": "AudioResampleNode", "params": {"target_rate": 16000}},
              {"id": "vad", "node_type": "VADNode"}],
            "connections": [{"from": "src", "to": "r16"}, {"from": "src", "to": "vad"}]}"#,
    );
    let out = rt().block_on(p.run(audio(48_000, 48_000))).unwrap();
    assert_eq!(out.outputs.len(), 2);
    assert_eq!(out.outputs["r16"].as_audio().unwrap().frames(), 16_000);
    assert!(matches!(out.outputs["vad"], Data::Segments(ref s) if s.len() == 1));
}

/// A test node that records what it receives and emits the number of inputs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoParams {}
impl NodeParams for NoParams {}

struct Recorder(Arc<Mutex<Vec<String>>>);

#[async_trait]
impl Node for Recorder {
    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let desc = match &input {
            Data::Map(m) => m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.kind()))
                .collect::<Vec<_>>()
                .join(","),
            other => other.kind().to_string(),
        };
        self.0.lock().unwrap().push(desc);
        Ok(Some(Data::Json(serde_json::json!("seen"))))
    }
}

#[test]
fn fan_in_node_receives_inputs_keyed_by_upstream_id() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut registry = registry();
    let s = Arc::clone(&seen);
    registry.register(Arc::new(TypedFactory::new(
        "Recorder",
        "test",
        move |_, _: NoParams| Box::new(Recorder(Arc::clone(&s))),
    )));
    let p = Pipeline::from_json(
        r#"{"version": "v1", "nodes": [
              {"id": "a", "node_type": "VADNode"},
              {"id": "b", "node_type": "AudioResampleNode", "params": {"target_rate": 16000}},
              {"id": "join", "node_type": "Recorder"}],
            "connections": [{"from": "a", "to": "join"}, {"from": "b", "to": "join"}]}"#,
        &registry,
    )
    .unwrap();
    let out = rt().block_on(p.run(audio(4_800, 48_000))).unwrap();
    assert_eq!(out.outputs.keys().collect::<Vec<_>>(), vec!["join"]);
    // One call for the chunk, one for the flushed tails.
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            "a=segments,b=audio".to_string(),
            "a=segments,b=audio".to_string()
        ]
    );
}

#[test]
fn independent_branches_run_concurrently() {
    let p = pipeline(
        r#"{"version": "v1", "nodes": [
              {"id": "src", "node_type": "PassThroughNode"},
              {"id": "s1", "node_type": "TestSleepNode", "params": {"ms": 300}},
              {"id": "s2", "node_type": "TestSleepNode", "params": {"ms": 300}},
              {"id": "s3", "node_type": "TestSleepNode", "params": {"ms": 300}}],
            "connections": [{"from": "src", "to": "s1"}, {"from": "src", "to": "s2"},
                            {"from": "src", "to": "s3"}]}"#,
    );
    let t = Instant::now();
    let out = rt().block_on(p.run(audio(160, 16_000))).unwrap();
    let elapsed = t.elapsed();
    assert_eq!(out.outputs.len(), 3);
    // Sequential would take 900 ms.
    assert!(elapsed < Duration::from_millis(700), "took {elapsed:?}");
    for id in ["s1", "s2", "s3"] {
        assert!(out.metrics.node(id).unwrap().execution_time_us >= 300_000);
    }
}

fn flaky(fail_times: u32, extra: &str) -> Pipeline {
    pipeline(&format!(
        r#"{{"version": "v1", "nodes": [
              {{"id": "flaky", "node_type": "TestFlakyNode", "params": {{"fail_times": {fail_times}}}{extra}}}]}}"#
    ))
}

#[test]
fn retryable_failures_are_retried_with_backoff_and_counted() {
    let p = flaky(2, "");
    let t = Instant::now();
    let out = rt().block_on(p.run(audio(160, 16_000))).unwrap();
    let elapsed = t.elapsed();
    let m = out.metrics.node("flaky").unwrap();
    assert_eq!(m.retry_count, 2);
    assert_eq!(m.calls, 4); // 3 process attempts + flush
    assert_eq!(m.status, ExecutionStatus::Success);
    // Default backoff: 100 ms then 200 ms.
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(out.outputs.contains_key("flaky"));
}

#[test]
fn retries_stop_at_max_attempts() {
    let p = flaky(
        5,
        r#", "retry": {"max_attempts": 3, "initial_delay_ms": 1, "max_delay_ms": 2}"#,
    );
    let err = rt().block_on(p.run(audio(160, 16_000))).unwrap_err();
    match &err {
        ExecutorError::RetriesExhausted {
            node_id,
            attempts,
            max_attempts,
            ..
        } => {
            assert_eq!(
                (node_id.as_str(), *attempts, *max_attempts),
                ("flaky", 3, 3)
            );
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    assert_eq!(
        p.last_metrics().unwrap().node("flaky").unwrap().retry_count,
        2
    );
}

#[test]
fn non_retryable_errors_fail_at_once() {
    let p = pipeline(
        r#"{"version": "v1", "nodes": [
            {"id": "f", "node_type": "TestFlakyNode", "params": {"fail_times": 1, "retryable": false}}]}"#,
    );
    let err = rt().block_on(p.run(audio(160, 16_000))).unwrap_err();
    assert!(
        matches!(err, ExecutorError::NodeError { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(err.node_id(), Some("f"));
}

#[test]
fn circuit_breaker_opens_rejects_at_once_and_half_opens() {
    let p = pipeline(
        r#"{"version": "v1", "nodes": [
            {"id": "bad", "node_type": "TestFailNode", "params": {"retryable": false},
             "circuit_breaker": {"failure_threshold": 5, "cooldown_ms": 300}}]}"#,
    );
    let rt = rt();
    for _ in 0..5 {
        let e = rt.block_on(p.run(audio(160, 16_000))).unwrap_err();
        assert!(matches!(e, ExecutorError::NodeError { .. }), "{e:?}");
    }
    assert!(matches!(
        p.breaker_state("bad"),
        Some(BreakerState::Open { .. })
    ));
    let t = Instant::now();
    let e = rt.block_on(p.run(audio(160, 16_000))).unwrap_err();
    assert!(t.elapsed() < Duration::from_millis(50));
    match &e {
        ExecutorError::CircuitOpen {
            node_id,
            consecutive_failures,
            retry_after_ms,
            ..
        } => {
            assert_eq!(node_id, "bad");
            assert_eq!(*consecutive_failures, 5);
            assert!(*retry_after_ms <= 300);
        }
        other => panic!("expected CircuitOpen, got {other:?}"),
    }
    assert!(
        e.to_string()
            .contains("circuit breaker open for node 'bad'"),
        "{e}"
    );
    // The rejected run is visible in metrics as a failure of the node.
    let m = p.last_metrics().unwrap();
    assert!(matches!(
        m.node("bad").unwrap().status,
        ExecutionStatus::Failed { .. }
    ));
    // After the cool-down one trial call goes through (and fails again here).
    std::thread::sleep(Duration::from_millis(350));
    let e = rt.block_on(p.run(audio(160, 16_000))).unwrap_err();
    assert!(matches!(e, ExecutorError::NodeError { .. }), "{e:?}");
    assert!(matches!(
        p.breaker_state("bad"),
        Some(BreakerState::Open { .. })
    ));
}

#[test]
fn breaker_closes_after_a_successful_trial() {
    let p = flaky(
        5,
        r#", "retry": {"max_attempts": 1}, "circuit_breaker": {"failure_threshold": 5, "cooldown_ms": 100}"#,
    );
    let rt = rt();
    for _ in 0..5 {
        rt.block_on(p.run(audio(160, 16_000))).unwrap_err();
    }
    assert!(matches!(
        rt.block_on(p.run(audio(160, 16_000))).unwrap_err(),
        ExecutorError::CircuitOpen { .. }
    ));
    std::thread::sleep(Duration::from_millis(150));
    rt.block_on(p.run(audio(160, 16_000))).unwrap();
    assert_eq!(
        p.breaker_state("flaky"),
        Some(BreakerState::Closed {
            consecutive_failures: 0
        })
    );
}

#[test]
fn a_panicking_node_is_an_error_naming_it_and_others_carry_on() {
    let bad = pipeline(
        r#"{"version": "v1", "nodes": [
              {"id": "ok", "node_type": "PassThroughNode"},
              {"id": "boom", "node_type": "TestPanicNode"}],
            "connections": [{"from": "ok", "to": "boom"}]}"#,
    );
    let good = pipeline(&one_node("AudioResampleNode", r#"{"target_rate": 16000}"#));
    let rt = rt();
    let (b, g) = rt.block_on(async {
        tokio::join!(bad.run(audio(480, 48_000)), good.run(audio(48_000, 48_000)))
    });
    let err = b.unwrap_err();
    assert_eq!(err.node_id(), Some("boom"));
    assert!(
        err.to_string().contains("panicked: injected panic"),
        "{err}"
    );
    assert_eq!(g.unwrap().outputs["n"].as_audio().unwrap().frames(), 16_000);
    // The failed pipeline is not stuck: it can run again (and fails the same way).
    let again = rt.block_on(bad.run(audio(480, 48_000))).unwrap_err();
    assert_eq!(again.node_id(), Some("boom"));
}

#[test]
fn timeouts_apply_per_attempt_and_are_retried() {
    let p = pipeline(
        r#"{"version": "v1", "nodes": [
            {"id": "slow", "node_type": "TestSleepNode", "params": {"ms": 5000}, "timeout_ms": 50,
             "retry": {"max_attempts": 2, "initial_delay_ms": 10}}]}"#,
    );
    let t = Instant::now();
    let err = rt().block_on(p.run(audio(160, 16_000))).unwrap_err();
    assert!(t.elapsed() < Duration::from_millis(1000));
    match err {
        ExecutorError::Timeout {
            node_id,
            timeout_ms,
            attempts,
            ..
        } => {
            assert_eq!((node_id.as_str(), timeout_ms, attempts), ("slow", 50, 2));
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
}

#[test]
fn timeouts_are_not_retried_by_the_default_policy() {
    // No `retry` in the manifest: the default policy retries errors a node marks retryable,
    // but a call that timed out fails at once (issue 9: a hung call is not tried 3 times).
    let p = pipeline(
        r#"{"version": "v1", "nodes": [
            {"id": "slow", "node_type": "TestSleepNode", "params": {"ms": 5000}, "timeout_ms": 50}]}"#,
    );
    match rt().block_on(p.run(audio(160, 16_000))).unwrap_err() {
        ExecutorError::Timeout {
            node_id, attempts, ..
        } => assert_eq!((node_id.as_str(), attempts), ("slow", 1)),
        other => panic!("expected Timeout, got {other:?}"),
    }
}

#[test]
fn metrics_hold_real_per_node_timings_and_a_perfetto_trace() {
    let p = pipeline(
        r#"{"version": "v1", "nodes": [
              {"id": "resample", "node_type": "AudioResampleNode", "params": {"target_rate": 16000}},
              {"id": "vad", "node_type": "VADNode"}],
            "connections": [{"from": "resample", "to": "vad"}]}"#,
    );
    rt().block_on(p.run(audio(480_000, 48_000))).unwrap();
    let m = p.last_metrics().unwrap();
    let r = m.node("resample").unwrap();
    assert_eq!(r.node_type, "AudioResampleNode");
    assert!(r.execution_time_us > 100, "{r:?}");
    assert_eq!(r.execution_time_ms, r.execution_time_us / 1000);
    assert!(r.calls >= 2);
    assert!(r.memory_mb > 0.05, "{r:?}"); // 10 s at 16 kHz f32 = 0.61 MiB
    assert_eq!(serde_json::to_value(r.runtime).unwrap(), "rust");
    assert!(m.total_time_us >= r.execution_time_us);
    let json: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
    assert_eq!(json["nodes"][0]["status"]["state"], "success");

    let trace = p.last_trace().unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let slices: Vec<_> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert!(slices.iter().any(|e| e["name"] == "resample.process"));
    assert!(slices.iter().any(|e| e["name"] == "resample.flush"));
    for s in &slices {
        assert!(s["ts"].as_f64().unwrap() >= 0.0 && s["dur"].as_f64().unwrap() >= 0.0);
        assert!(s["tid"].as_u64().unwrap() >= 1);
    }
    assert!(events
        .iter()
        .any(|e| e["ph"] == "M" && e["args"]["name"] == "resample (AudioResampleNode)"));
}

#[test]
fn a_node_downstream_of_a_failure_is_reported_skipped() {
    let p = pipeline(
        r#"{"version": "v1", "nodes": [
              {"id": "bad", "node_type": "TestFailNode", "params": {"retryable": false}},
              {"id": "after", "node_type": "PassThroughNode"}],
            "connections": [{"from": "bad", "to": "after"}]}"#,
    );
    rt().block_on(p.run(audio(160, 16_000))).unwrap_err();
    let m = p.last_metrics().unwrap();
    assert!(matches!(
        m.node("after").unwrap().status,
        ExecutionStatus::Skipped { .. }
    ));
}

#[test]
fn wrong_output_type_gets_a_clear_error_naming_the_consumer() {
    let p = pipeline(
        r#"{"version": "v1", "nodes": [
              {"id": "json", "node_type": "TestJsonNode"},
              {"id": "vad", "node_type": "VADNode"}],
            "connections": [{"from": "json", "to": "vad"}]}"#,
    );
    let err = rt().block_on(p.run(audio(160, 16_000))).unwrap_err();
    assert_eq!(err.node_id(), Some("vad"));
    assert_eq!(err.code(), "invalid_input");
    assert!(
        err.to_string()
            .contains("node 'vad' (VADNode) failed: expected audio, got json"),
        "{err}"
    );
    // The kind, for programs; the message names the node once.
    assert_eq!(err.kind(), Some("not_audio"));
    assert_eq!(err.to_string().matches("VADNode").count(), 1, "{err}");
}

#[test]
fn sessions_stream_with_positions_and_guard_their_state() {
    let p = pipeline(&one_node("AudioResampleNode", r#"{"target_rate": 16000}"#));
    let rt = rt();
    rt.block_on(async {
        let mut s = p.session().unwrap();
        assert!(matches!(p.session(), Err(ExecutorError::Busy { .. })));
        let mut next = 0;
        for _ in 0..10 {
            for out in s.push(audio(960, 48_000)).await.unwrap() {
                let pos = out.position.unwrap();
                assert_eq!(pos.start_frame, next);
                next += pos.frames;
            }
        }
        for out in s.finish().await.unwrap() {
            next += out.position.unwrap().frames;
        }
        assert_eq!(next, 3_200);
        assert!(matches!(
            s.push(audio(10, 48_000)).await,
            Err(ExecutorError::SessionClosed { .. })
        ));
        // Finished: the pipeline is free again.
        drop(p.session().unwrap());
    });
}

#[test]
fn dropping_an_open_session_frees_the_pipeline_and_state_is_reset() {
    let p = pipeline(&one_node("AudioResampleNode", r#"{"target_rate": 16000}"#));
    let rt = rt();
    let whole = rt.block_on(p.run(audio(4_800, 48_000))).unwrap();
    rt.block_on(async {
        let mut s = p.session().unwrap();
        s.push(audio(1_000, 48_000)).await.unwrap();
    });
    // A new run starts from a clean state: same result as before the abandoned session.
    let again = rt.block_on(p.run(audio(4_800, 48_000))).unwrap();
    assert_eq!(whole.outputs, again.outputs);
}

#[test]
fn custom_native_nodes_can_be_registered() {
    let mut r = NodeRegistry::empty();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    r.register(Arc::new(TypedFactory::new(
        "Recorder",
        "test",
        move |_, _: NoParams| Box::new(Recorder(Arc::clone(&s))),
    )));
    let p = Pipeline::from_json(&one_node("Recorder", "{}"), &r).unwrap();
    rt().block_on(p.run(audio(10, 16_000))).unwrap();
    assert_eq!(*seen.lock().unwrap(), vec!["audio"]);
}

/// A test node that records whether it received its audio buffer uniquely owned (it can take
/// the allocation without a copy) and emits a fresh buffer.
struct Owner(Arc<Mutex<Vec<bool>>>);

#[async_trait]
impl Node for Owner {
    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let Data::Audio(a) = input else {
            return Ok(None);
        };
        let rate = a.sample_rate();
        let owned = match a.into_samples() {
            remotemedia_core::data::Samples::F32(buf) => buf.try_into_vec().is_ok(),
            _ => false,
        };
        self.0.lock().unwrap().push(owned);
        Ok(Some(Data::Audio(AudioBuffer::mono_f32(
            vec![0.25; 160],
            rate,
        ))))
    }
}

#[test]
fn the_last_reader_of_a_value_owns_it() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut registry = registry();
    let s = Arc::clone(&seen);
    registry.register(Arc::new(TypedFactory::new(
        "Owner",
        "test",
        move |_, _: NoParams| Box::new(Owner(Arc::clone(&s))),
    )));
    let once = r#""retry": {"max_attempts": 1}"#;
    let run = |manifest: String| {
        seen.lock().unwrap().clear();
        let p = Pipeline::from_json(&manifest, &registry).unwrap();
        let input = Data::Audio(AudioBuffer::mono_f32(vec![0.5; 160], 16_000));
        rt().block_on(p.run(input)).unwrap();
        std::mem::take(&mut *seen.lock().unwrap())
    };
    // A chain: each node is the only reader of what it gets, the input included.
    let chain = run(format!(
        r#"{{"version": "v1", "nodes": [
              {{"id": "a", "node_type": "Owner", {once}}},
              {{"id": "b", "node_type": "Owner", {once}}}],
            "connections": [{{"from": "a", "to": "b"}}]}}"#
    ));
    assert_eq!(chain, vec![true, true]);
    // Fan-out: one branch reads a shared value, the last one takes it.
    let fan = run(format!(
        r#"{{"version": "v1", "nodes": [
              {{"id": "a", "node_type": "Owner", {once}}},
              {{"id": "b", "node_type": "Owner", {once}}},
              {{"id": "c", "node_type": "Owner", {once}}}],
            "connections": [{{"from": "a", "to": "b"}}, {{"from": "a", "to": "c"}}]}}"#
    ));
    assert_eq!(fan.len(), 3);
    assert!(fan[0]);
    assert_eq!(fan[1..].iter().filter(|&&o| o).count(), 1, "{fan:?}");
}
