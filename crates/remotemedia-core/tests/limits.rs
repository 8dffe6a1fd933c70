//! Issue 9, failure 1: every node states what a call will allocate before it allocates, and
//! the executor refuses calls, runs and outputs over its limits with an error naming the node
//! and the limit, instead of letting the process abort.

mod common;

use common::*;
use remotemedia_core::data::{AudioBuffer, Data, Samples};
use remotemedia_core::error::ExecutorError;
use remotemedia_core::executor::ResourceLimits;
use remotemedia_core::node::Node;
use remotemedia_nodes::audio::{ChannelMixNode, ChannelMixParams, ResampleNode};

/// The request that killed the server: 4 MiB of 8 kHz 16-bit mono (262 s), up to 384 kHz,
/// then up-mixed to 64 channels (12.9 GB).
const KILLER: &str = r#"{"version": "v1", "nodes": [
    {"id": "up", "node_type": "AudioResampleNode", "params": {"target_rate": 384000}},
    {"id": "mix", "node_type": "ChannelMixNode", "params": {"channels": 64}}],
  "connections": [{"from": "up", "to": "mix"}]}"#;

fn killer_input() -> Data {
    let n = (4 << 20) / 2;
    let samples: Vec<i16> = (0..n).map(|i| ((i % 200) as i16 - 100) * 100).collect();
    Data::Audio(AudioBuffer::new(Samples::I16(samples.into()), 8_000, 1).unwrap())
}

fn limit_error(e: ExecutorError) -> (Option<String>, &'static str, u64, u64, String) {
    let text = e.to_string();
    match e {
        ExecutorError::LimitExceeded {
            node_id,
            limit,
            max,
            requested,
            ..
        } => (node_id, limit, max, requested, text),
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
}

#[test]
fn the_request_that_killed_the_server_is_refused_before_the_upmix_allocates() {
    let p = pipeline(KILLER);
    let rt = rt();
    let e = rt.block_on(p.run(killer_input())).unwrap_err();
    assert_eq!(e.code(), "limit");
    assert_eq!(e.node_id(), Some("mix"));
    assert_eq!(e.node_type(), Some("ChannelMixNode"));
    let (_, limit, max, requested, text) = limit_error(e);
    assert_eq!(limit, "max_call_bytes");
    assert_eq!(max, 4 << 30);
    // 2,097,152 frames x 48 = 100,663,296 frames (less the resampler's pending block until
    // the flush), x 64 channels x 2 bytes: 12.9 GB.
    assert!(
        (12_880_000_000..=12_884_901_888).contains(&requested),
        "{requested}"
    );
    assert!(
        text.contains("node 'mix' (ChannelMixNode) would allocate"),
        "{text}"
    );
    assert!(text.contains("(12.0 GiB)"), "{text}");
    assert!(text.contains("stream"), "{text}");
    // The metrics name the node that was refused; the pipeline runs again afterwards.
    let m = p.last_metrics().unwrap();
    let mix = m.nodes.iter().find(|n| n.node_id == "mix").unwrap();
    match &mix.status {
        remotemedia_core::executor::ExecutionStatus::Failed { error } => {
            assert!(error.contains("max_call_bytes"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    let small =
        Data::Audio(AudioBuffer::new(Samples::I16(vec![0i16; 800].into()), 8_000, 1).unwrap());
    let out = rt.block_on(p.run(small)).unwrap();
    let a = out.outputs["mix"].as_audio().unwrap();
    assert_eq!(
        (a.frames(), a.channels(), a.sample_rate()),
        (38_400, 64, 384_000)
    );
}

#[test]
fn server_sized_limits_refuse_the_resampler_first() {
    let p = pipeline(KILLER).with_limits(ResourceLimits {
        max_call_bytes: 256 << 20,
        ..ResourceLimits::default()
    });
    let e = rt().block_on(p.run(killer_input())).unwrap_err();
    let (node, limit, _, requested, _) = limit_error(e);
    assert_eq!((node.as_deref(), limit), (Some("up"), "max_call_bytes"));
    // f32 engine output + i16 output (6 bytes a frame) + the input converted to f32.
    assert!(requested > 100_663_296 * 6, "{requested}");
}

#[test]
fn nodes_state_their_allocation_before_the_call() {
    let mono =
        Data::Audio(AudioBuffer::new(Samples::I16(vec![0; 8_000].into()), 8_000, 1).unwrap());
    let mix = ChannelMixNode::new(ChannelMixParams { channels: 64 });
    assert_eq!(mix.output_bytes(&mono), 8_000 * 64 * 2);
    let keep = ChannelMixNode::new(ChannelMixParams { channels: 1 });
    assert_eq!(keep.output_bytes(&mono), 0);
    let up: ResampleNode =
        ResampleNode::new(serde_json::from_str(r#"{"target_rate": 16000}"#).unwrap());
    // 16,000 frames + 800 of slack, f32 engine + i16 out, plus 8,000 input frames as f32.
    assert_eq!(up.output_bytes(&mono), 16_800 * 6 + 8_000 * 4);
}

#[test]
fn the_run_budget_adds_up_every_node_of_a_run() {
    // Three gains on 1 s of 48 kHz f32: each call claims input + an f64 copy = 576,000 bytes.
    let chain = r#"{"version": "v1", "nodes": [
        {"id": "a", "node_type": "GainNode", "params": {"db": -1}},
        {"id": "b", "node_type": "GainNode", "params": {"db": -1}},
        {"id": "c", "node_type": "GainNode", "params": {"db": -1}}],
      "connections": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]}"#;
    let limits = ResourceLimits {
        max_run_bytes: 2 * 576_000 + 10,
        ..ResourceLimits::default()
    };
    let p = pipeline(chain).with_limits(limits);
    let rt = rt();
    let input = Data::Audio(AudioBuffer::mono_f32(vec![0.1; 48_000], 48_000));
    let (node, limit, max, requested, _) = limit_error(rt.block_on(p.run(input)).unwrap_err());
    assert_eq!(
        (node.as_deref(), limit, max),
        (Some("c"), "max_run_bytes", 2 * 576_000 + 10)
    );
    assert_eq!(requested, 576_000);
    // Streamed in chunks, each chunk has its own budget: the same audio goes through.
    let mut s = p.session().unwrap();
    let mut frames = 0;
    for _ in 0..4 {
        let chunk = Data::Audio(AudioBuffer::mono_f32(vec![0.1; 12_000], 48_000));
        for o in rt.block_on(s.push(chunk)).unwrap() {
            frames += o.data.as_audio().unwrap().frames();
        }
    }
    rt.block_on(s.finish()).unwrap();
    assert_eq!(frames, 48_000);
}

#[test]
fn output_and_input_duration_caps_fail_before_the_work() {
    let p = pipeline(&one_node("AudioResampleNode", r#"{"target_rate": 384000}"#)).with_limits(
        ResourceLimits {
            max_output_bytes: 4 << 20,
            ..ResourceLimits::default()
        },
    );
    let rt = rt();
    // 48x of 1 s at 8 kHz f32: 384,000 frames = 1.5 MB, fits; 10 s does not.
    let one = Data::Audio(AudioBuffer::mono_f32(vec![0.0; 8_000], 8_000));
    assert!(rt.block_on(p.run(one)).is_ok());
    let ten = Data::Audio(AudioBuffer::mono_f32(vec![0.0; 80_000], 8_000));
    let (node, limit, max, _, text) = limit_error(rt.block_on(p.run(ten)).unwrap_err());
    assert_eq!(
        (node.as_deref(), limit, max),
        (Some("n"), "max_output_bytes", 4 << 20)
    );
    assert!(text.contains("of one response"), "{text}");
    // A pass-through sink allocates nothing but still returns its input: counted after.
    let pass = pipeline(&one_node("PassThroughNode", "{}")).with_limits(ResourceLimits {
        max_output_bytes: 1000,
        ..ResourceLimits::default()
    });
    let big = Data::Audio(AudioBuffer::mono_f32(vec![0.0; 251], 8_000));
    let (_, limit, _, requested, _) = limit_error(rt.block_on(pass.run(big)).unwrap_err());
    assert_eq!((limit, requested), ("max_output_bytes", 1004));

    let capped = pipeline(&one_node("PassThroughNode", "{}")).with_limits(ResourceLimits {
        max_run_input_secs: Some(60.0),
        ..ResourceLimits::default()
    });
    let long = Data::Audio(AudioBuffer::mono_f32(vec![0.0; 8_000 * 61], 8_000));
    let (node, limit, max, requested, text) =
        limit_error(rt.block_on(capped.run(long)).unwrap_err());
    assert_eq!(
        (node, limit, max, requested),
        (None, "max_run_input_secs", 60, 61)
    );
    assert!(text.contains("61.0 s of audio"), "{text}");
    let short = Data::Audio(AudioBuffer::mono_f32(vec![0.0; 8_000 * 59], 8_000));
    assert!(rt.block_on(capped.run(short)).is_ok());
}

#[tokio::test]
async fn a_session_keeps_at_most_max_trace_events_slices() {
    // The soak found a long server stream holding 8 MB of trace slices nobody reads.
    let chunk = || Data::Audio(AudioBuffer::mono_f32(vec![0.1; 160], 16_000));
    for (cap, kept) in [(0usize, 0usize), (3, 3), (1000, 10)] {
        let p = pipeline(&one_node("PassThroughNode", "{}")).with_limits(ResourceLimits {
            max_trace_events: cap,
            ..ResourceLimits::default()
        });
        let mut s = p.session().unwrap();
        for _ in 0..10 {
            s.push(chunk()).await.unwrap();
        }
        let slices = s.chrome_trace()["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["ph"] == "X")
            .count();
        assert_eq!(slices, kept, "cap {cap}");
        assert_eq!(s.metrics().trace_events_dropped, (10 - kept) as u64);
        s.finish().await.unwrap();
    }
}

#[tokio::test]
async fn an_analysis_sink_is_not_refused_for_its_input_size() {
    // A VAD emitting events returns a few hundred bytes for 30 s of audio: the output cap
    // (a server's message size) must count what it returns, not what it reads.
    let p =
        pipeline(&one_node("SpeechVADNode", r#"{"emit": "events"}"#)).with_limits(ResourceLimits {
            max_output_bytes: 1 << 20,
            ..ResourceLimits::default()
        });
    let input = Data::Audio(AudioBuffer::mono_f32(vec![0.0; 30 * 48_000], 48_000));
    p.run(input).await.expect("events fit in 1 MiB");
    // Audio that really is over the cap is still refused.
    let pass = pipeline(&one_node("PassThroughNode", "{}")).with_limits(ResourceLimits {
        max_output_bytes: 1 << 20,
        ..ResourceLimits::default()
    });
    let big = Data::Audio(AudioBuffer::mono_f32(vec![0.0; 30 * 48_000], 48_000));
    let (_, limit, ..) = limit_error(pass.run(big).await.unwrap_err());
    assert_eq!(limit, "max_output_bytes");
}

/// The whole-stream nodes (peak normalisation, two-pass loudness, and silence trimming over a
/// long pause) hold a stream until its end: what they hold is counted in every call's claim,
/// so a session that streams past the limit is refused, naming the node, the limit and the
/// mode that does not hold, instead of growing without bound.
#[test]
fn a_stream_held_by_a_whole_stream_node_is_bounded_by_max_call_bytes() {
    // 0.1 s chunks of 48 kHz f32 mono: 19,200 bytes each. A holding call claims three times
    // the stream so far (held, joined and scaled at flush) plus the chunk's f64 copy, so with
    // a 1 MB limit the 17th chunk is refused (3 x 17 x 19,200 + 38,400 = 1,017,600); the
    // trimmer holds from its second chunk on, so it is refused one chunk later.
    let limits = ResourceLimits {
        max_call_bytes: 1_000_000,
        ..ResourceLimits::default()
    };
    let loud = vec![0.25f32; 4_800];
    let quiet = vec![0.0f32; 4_800];
    let cases = [
        (
            "GainNode",
            r#"{"peak_db": -1}"#,
            "use a fixed gain (db or linear)",
        ),
        (
            "LoudnessNormalizeNode",
            r#"{"mode": "whole"}"#,
            "use mode=\"streaming\"",
        ),
        ("TrimSilenceNode", r#"{}"#, "lower threshold_db"),
    ];
    let rt = rt();
    for (node_type, params, advice) in cases {
        let p = pipeline(&one_node(node_type, params)).with_limits(limits);
        let mut s = p.session().unwrap();
        let mut refused = None;
        for i in 0..40 {
            // Trim holds the quiet audio after its first loud chunk.
            let x = if i == 0 || node_type != "TrimSilenceNode" {
                &loud
            } else {
                &quiet
            };
            let chunk = Data::Audio(AudioBuffer::mono_f32(x.clone(), 48_000));
            if let Err(e) = rt.block_on(s.push(chunk)) {
                refused = Some((i, e));
                break;
            }
        }
        let (i, e) = refused.unwrap_or_else(|| panic!("{node_type}: never refused"));
        let expected = if node_type == "TrimSilenceNode" {
            17
        } else {
            16
        };
        assert_eq!(i, expected, "{node_type}");
        let (node, limit, max, requested, text) = limit_error(e);
        assert_eq!(node.as_deref(), Some("n"), "{node_type}");
        assert_eq!((limit, max), ("max_call_bytes", 1_000_000), "{node_type}");
        assert_eq!(requested, 3 * 17 * 19_200 + 38_400, "{node_type}");
        assert!(text.contains(&format!("({node_type})")), "{text}");
        assert!(text.contains(advice), "{text}");
    }
    // The fixed-gain and streaming modes hold nothing: 40 chunks pass.
    for (node_type, params) in [
        ("GainNode", r#"{"db": -1}"#),
        ("LoudnessNormalizeNode", r#"{"mode": "streaming"}"#),
    ] {
        let p = pipeline(&one_node(node_type, params)).with_limits(limits);
        let mut s = p.session().unwrap();
        for _ in 0..40 {
            let chunk = Data::Audio(AudioBuffer::mono_f32(loud.clone(), 48_000));
            rt.block_on(s.push(chunk)).unwrap();
        }
    }
}
