//! Issue 9 on the server: no request can abort the process (memory limits checked before a
//! node allocates), caps on output, Execute input and stream duration, a stream whose client
//! stops reading ends with a status that says so, and circuit breakers that persist across
//! calls of one manifest and are exported in the metrics.

mod common;

use common::TestServer;

use std::time::{Duration, Instant};

use remotemedia_core::data::{AudioBuffer, Data, Samples};
use remotemedia_grpc::config::ServerConfig;
use remotemedia_grpc::convert::default_renderer;
use remotemedia_grpc::{pb, ClientError, Telemetry};
use tonic::Code;

/// (gRPC code, message, node id, remotemedia error code)
fn status(e: ClientError) -> (Code, String, Option<String>, Option<String>) {
    match e {
        ClientError::Status {
            code,
            message,
            node_id,
            error_code,
            ..
        } => (code, message, node_id, error_code),
        other => panic!("expected a status, got {other}"),
    }
}

fn i16_mono(frames: usize, rate: u32) -> Data {
    let samples: Vec<i16> = (0..frames)
        .map(|i| ((i % 200) as i16 - 100) * 100)
        .collect();
    Data::Audio(AudioBuffer::new(Samples::I16(samples.into()), rate, 1).unwrap())
}

const KILLER: &str = r#"{"version": "v1", "nodes": [
    {"id": "up", "node_type": "AudioResampleNode", "params": {"target_rate": 384000}},
    {"id": "mix", "node_type": "ChannelMixNode", "params": {"channels": 64}}],
  "connections": [{"from": "up", "to": "mix"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_that_killed_the_server_is_refused_and_the_server_lives() {
    let server = TestServer::start(ServerConfig::default()).await;
    // One message, as a hostile client sends it (our client would stream an input this big).
    let mut client = server.client().await.with_stream_above(usize::MAX);
    // Just under the 4 MiB message limit: 262 s of 8 kHz 16-bit mono.
    let input = i16_mono(((4 << 20) - 4096) / 2, 8_000);
    let t = Instant::now();
    let e = client.execute(KILLER, &input, None).await.unwrap_err();
    let (code, message, node, error_code) = status(e.clone());
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert_eq!(error_code.as_deref(), Some("limit"));
    assert_eq!(node.as_deref(), Some("up"));
    assert!(
        message.contains("node 'up' (AudioResampleNode) would allocate"),
        "{message}"
    );
    assert!(
        message.contains("max_call_bytes = 268435456 bytes (256.0 MiB)"),
        "{message}"
    );
    assert!(message.contains("stream of smaller chunks"), "{message}");
    assert!(
        message.contains("server setting: [limits] max_call_bytes"),
        "{message}"
    );
    // Refused before the work: no 48x resample was computed.
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // Sending it again cannot help, so the client does not call it retryable.
    assert!(!e.is_retryable());
    // The server is still up and serves the next call.
    let small = client
        .execute(KILLER, &i16_mono(400, 8_000), None)
        .await
        .unwrap();
    let a = small.outputs["mix"].as_audio().unwrap();
    assert_eq!((a.frames(), a.channels()), (19_200, 64));
    assert_eq!(
        server
            .telemetry
            .errors
            .with_label_values(&["Execute", "limit"])
            .get(),
        1
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_memory_limits_raised_the_upmix_is_the_call_refused() {
    let mut cfg = ServerConfig::default();
    cfg.limits.max_call_bytes = 4 << 30;
    cfg.limits.max_run_bytes = 8 << 30;
    let server = TestServer::start(cfg).await;
    let mut client = server.client().await;
    // 60 s rather than 262 s keeps the test quick: still 2.9 GB for the 64-channel up-mix.
    let input = i16_mono(480_000, 8_000);
    let e = client.execute(KILLER, &input, None).await.unwrap_err();
    let (code, message, node, _) = status(e);
    assert_eq!(
        (code, node.as_deref()),
        (Code::ResourceExhausted, Some("mix"))
    );
    assert!(
        message.contains("max_run_bytes") || message.contains("max_output_bytes"),
        "{message}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_48x_upsample_too_big_for_a_response_is_refused_before_it_runs() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut client = server.client().await;
    let up = r#"{"version": "v1", "nodes": [
        {"id": "up", "node_type": "AudioResampleNode", "params": {"target_rate": 384000}}]}"#;
    // 30 s at 8 kHz f32 (960 kB) would come back as 46 MB.
    let input = Data::Audio(AudioBuffer::mono_f32(vec![0.1; 240_000], 8_000));
    let e = client.execute(up, &input, None).await.unwrap_err();
    let (code, message, node, error_code) = status(e);
    assert_eq!(
        (code, error_code.as_deref()),
        (Code::ResourceExhausted, Some("limit"))
    );
    assert_eq!(node.as_deref(), Some("up"));
    assert!(
        message.contains("max_output_bytes = 4128768 bytes"),
        "{message}"
    );
    assert!(
        message.contains("server setting: [limits] max_message_bytes"),
        "{message}"
    );
    assert!(message.contains("stream"), "{message}");
    // Streamed, the same audio goes through.
    let mut stream = client.open_stream(up).await.unwrap();
    let mut frames = 0;
    for _ in 0..30 {
        let chunk = Data::Audio(AudioBuffer::mono_f32(vec![0.1; 8_000], 8_000));
        for o in stream.push(&chunk).await.unwrap() {
            frames += o.data.as_audio().unwrap().frames();
        }
    }
    for o in stream.finish().await.unwrap() {
        frames += o.data.as_audio().unwrap().frames();
    }
    assert_eq!(frames, 30 * 384_000);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_input_duration_is_capped() {
    let mut cfg = ServerConfig::default();
    cfg.limits.max_run_input_secs = 2.0;
    let server = TestServer::start(cfg).await;
    let mut client = server.client().await;
    let pass = r#"{"version": "v1", "nodes": [{"id": "p", "node_type": "PassThroughNode"}]}"#;
    let e = client
        .execute(pass, &i16_mono(24_000, 8_000), None)
        .await
        .unwrap_err();
    let (code, message, _, _) = status(e);
    assert_eq!(code, Code::ResourceExhausted);
    assert!(message.contains("3.0 s of audio"), "{message}");
    assert!(
        message.contains("server setting: [limits] max_run_input_secs"),
        "{message}"
    );
    client
        .execute(pass, &i16_mono(16_000, 8_000), None)
        .await
        .unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_past_its_maximum_duration_is_ended_saying_how_far_it_got() {
    let mut cfg = ServerConfig::default();
    cfg.limits.max_stream_duration_ms = 400;
    let server = TestServer::start(cfg).await;
    let mut client = server.client().await;
    let pass = r#"{"version": "v1", "nodes": [{"id": "p", "node_type": "PassThroughNode"}]}"#;
    let mut stream = client.open_stream(pass).await.unwrap();
    stream.push(&i16_mono(800, 8_000)).await.unwrap();
    stream.push(&i16_mono(800, 8_000)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let e = stream.push(&i16_mono(800, 8_000)).await.unwrap_err();
    let (code, message, _, _) = status(e);
    assert_eq!(code, Code::DeadlineExceeded, "{message}");
    assert!(message.contains("maximum duration of 400 ms"), "{message}");
    assert!(
        message.contains("limits.max_stream_duration_ms"),
        "{message}"
    );
    assert!(
        message.contains("2 chunks were processed, the last with seq 2"),
        "{message}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_gets_a_status_saying_how_many_chunks_were_processed() {
    use tokio_stream::wrappers::ReceiverStream;
    let mut cfg = ServerConfig::default();
    cfg.limits.stream_idle_timeout_ms = 500;
    cfg.limits.stream_buffer = 4;
    let server = TestServer::start(cfg).await;
    let mut raw =
        pb::remote_media_client::RemoteMediaClient::connect(format!("http://{}", server.addr))
            .await
            .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::StreamRequest>(256);
    let pass = r#"{"version": "v1", "nodes": [{"id": "p", "node_type": "PassThroughNode"}]}"#;
    tx.send(pb::StreamRequest {
        msg: Some(pb::stream_request::Msg::Open(pb::StreamOpen {
            manifest: pass.to_string(),
        })),
    })
    .await
    .unwrap();
    // 155 chunks of 1 s (192 kB each, more than HTTP/2 windows hold), queued before anything
    // is read.
    const SENT: u64 = 155;
    for seq in 0..SENT {
        tx.send(pb::StreamRequest {
            msg: Some(pb::stream_request::Msg::Chunk(pb::StreamChunk {
                seq,
                input: remotemedia_grpc::convert::data_to_pb(
                    &Data::Audio(AudioBuffer::mono_f32(vec![0.1; 48_000], 48_000)),
                    &default_renderer(),
                ),
            })),
        })
        .await
        .unwrap();
    }
    let mut responses = raw
        .stream(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    // Nothing is read until the server has given up on this client.
    let t = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if server.telemetry.active_streams.get() == 0 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the stream is never closed"
        );
    }
    let mut done = Vec::new();
    let end = loop {
        match responses.message().await {
            Ok(Some(pb::StreamResponse {
                msg: Some(pb::stream_response::Msg::ChunkDone(d)),
            })) => done.push(d.seq),
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended with OK after {} chunks", done.len()),
            Err(s) => break s,
        }
    };
    assert_eq!(end.code(), Code::DeadlineExceeded, "{}", end.message());
    let message = end.message();
    assert!(message.contains("took no response for 500 ms"), "{message}");
    assert!(
        message.contains("limits.stream_idle_timeout_ms"),
        "{message}"
    );
    // The status counts the chunks that went through the pipeline; the client saw chunk_done
    // for those whose responses fitted in the buffer.
    let processed: u64 = message
        .split(" chunks were processed")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count in {message}"));
    assert!(processed < SENT, "{processed}");
    assert!(
        done.len() as u64 <= processed,
        "{} > {processed}",
        done.len()
    );
    assert_eq!(done, (0..done.len() as u64).collect::<Vec<_>>());
    assert!(
        message.contains(&format!("the last with seq {}", processed - 1)),
        "{message}"
    );
    server.shutdown().await;
}

async fn metrics_text(telemetry: &Telemetry) -> String {
    telemetry.render()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breakers_persist_across_execute_calls_and_are_exported() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut client = server.client().await;
    let failing = r#"{"version": "v1", "nodes": [{"id": "f", "node_type": "TestFailNode",
        "params": {"retryable": false},
        "circuit_breaker": {"failure_threshold": 3, "cooldown_ms": 60000}}]}"#;
    let input = i16_mono(800, 8_000);
    for _ in 0..3 {
        let (code, message, _, _) =
            status(client.execute(failing, &input, None).await.unwrap_err());
        assert_eq!(code, Code::Internal, "{message}");
    }
    // The fourth call of the same manifest is refused by the breaker the first three opened.
    let (code, message, node, error_code) =
        status(client.execute(failing, &input, None).await.unwrap_err());
    assert_eq!(code, Code::Unavailable, "{message}");
    assert_eq!(error_code.as_deref(), Some("circuit_open"));
    assert_eq!(node.as_deref(), Some("f"));
    assert!(
        message.contains("after 3 consecutive failures"),
        "{message}"
    );
    let text = metrics_text(&server.telemetry).await;
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains("node_type=\"TestFailNode\""))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_string()
    };
    assert!(line("remotemedia_breaker_state{").ends_with(" 1"), "{text}");
    assert!(
        line("remotemedia_breaker_opened{").ends_with(" 1"),
        "{text}"
    );
    assert!(
        line("remotemedia_breaker_consecutive_failures{").ends_with(" 3"),
        "{text}"
    );
    assert!(
        line("remotemedia_breaker_state{").contains("node=\"0\""),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_errors_never_open_a_server_side_breaker() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut client = server.client().await;
    let resample = r#"{"version": "v1", "nodes": [{"id": "r", "node_type": "AudioResampleNode",
        "params": {"target_rate": 16000}, "circuit_breaker": {"failure_threshold": 2}}]}"#;
    let mut bad = vec![0.1f32; 4_800];
    bad[7] = f32::NAN;
    let bad = Data::Audio(AudioBuffer::mono_f32(bad, 48_000));
    for _ in 0..5 {
        let (code, message, _, _) = status(client.execute(resample, &bad, None).await.unwrap_err());
        assert_eq!(code, Code::InvalidArgument, "{message}");
        assert!(message.contains("NaN"), "{message}");
    }
    // Over the limits is the caller's problem too: it never counts against the node.
    let huge = Data::Audio(AudioBuffer::mono_f32(vec![0.0; 1 << 19], 8_000));
    let resample_up = resample.replace("16000", "384000");
    for _ in 0..3 {
        let (code, ..) = status(client.execute(&resample_up, &huge, None).await.unwrap_err());
        assert_eq!(code, Code::ResourceExhausted);
    }
    let good = Data::Audio(AudioBuffer::mono_f32(vec![0.1; 4_800], 48_000));
    let out = client.execute(resample, &good, None).await.unwrap();
    assert_eq!(out.outputs["r"].as_audio().unwrap().frames(), 1_600);
    let text = metrics_text(&server.telemetry).await;
    for l in text
        .lines()
        .filter(|l| l.starts_with("remotemedia_breaker_") && l.contains("AudioResampleNode"))
    {
        assert!(l.ends_with(" 0"), "{l}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_size_messages_are_refused_and_counted_in_the_metrics() {
    let mut cfg = ServerConfig::default();
    cfg.limits.max_message_bytes = 64 << 10;
    let server = TestServer::start(cfg).await;
    let counted = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("remotemedia_rejected_total{reason=\"message_size\"}"))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    assert_eq!(counted(&server.telemetry.render()), None);
    let manifest = r#"{"version": "v1", "nodes": [{"id": "p", "node_type": "PassThroughNode"}]}"#;
    // 128 KB of audio in one message: tonic refuses it before the Execute handler runs.
    let big = i16_mono(64_000, 8_000);
    let mut client = server.client().await.with_stream_above(usize::MAX);
    let (code, message, _, _) = status(client.execute(manifest, &big, None).await.unwrap_err());
    assert_eq!(code, Code::OutOfRange, "{message}");
    assert!(message.contains("limits.max_message_bytes"), "{message}");
    assert_eq!(counted(&server.telemetry.render()).as_deref(), Some("1"));
    // A small call is not counted.
    client
        .execute(manifest, &i16_mono(800, 8_000), None)
        .await
        .unwrap();
    assert_eq!(counted(&server.telemetry.render()).as_deref(), Some("1"));
    // The same chunk in a stream: refused where the handler reads it, counted too.
    let mut stream = client.open_stream(manifest).await.unwrap();
    stream.push(&i16_mono(800, 8_000)).await.unwrap();
    let (code, message, _, _) = status(stream.push(&big).await.unwrap_err());
    assert_eq!(code, Code::OutOfRange, "{message}");
    assert_eq!(counted(&server.telemetry.render()).as_deref(), Some("2"));
    server.shutdown().await;
}

fn fan_out(sinks: usize) -> String {
    let mut nodes = vec![r#"{"id": "src", "node_type": "PassThroughNode"}"#.to_string()];
    let mut conns = Vec::new();
    for i in 0..sinks {
        nodes.push(format!(
            r#"{{"id": "sink{i}", "node_type": "GainNode", "params": {{"db": -1}}}}"#
        ));
        conns.push(format!(r#"{{"from": "src", "to": "sink{i}"}}"#));
    }
    format!(
        r#"{{"version": "v1", "nodes": [{}], "connections": [{}]}}"#,
        nodes.join(","),
        conns.join(",")
    )
}

fn f32_mono(frames: usize) -> Data {
    Data::Audio(AudioBuffer::mono_f32(vec![0.1; frames], 16_000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sinks_over_the_message_limit_are_refused_before_the_work_with_a_clear_error() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut client = server.client().await;
    // 255 sinks x 16 KiB = 4,177,920 bytes of audio: under 4 MiB, but with ids and metrics the
    // response was over it, and failed with tonic's OUT_OF_RANGE after all the work.
    let e = client
        .execute(&fan_out(255), &f32_mono(4096), None)
        .await
        .unwrap_err();
    let (code, message, node, error_code) = status(e);
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert_eq!(error_code.as_deref(), Some("limit"));
    assert!(node.is_some_and(|n| n.starts_with("sink")));
    assert!(
        message.contains("over the limit max_output_bytes"),
        "{message}"
    );
    assert!(message.contains("[limits] max_message_bytes"), "{message}");
    // Well under it, the same graph runs.
    let out = client
        .execute(&fan_out(255), &f32_mono(1024), None)
        .await
        .unwrap();
    assert_eq!(out.outputs.len(), 255);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_the_limit_with_its_metrics_is_a_limit_error_not_a_transport_error() {
    let mut config = ServerConfig::default();
    config.limits.max_message_bytes = 16 << 10;
    let server = TestServer::start(config).await;
    let mut client = server.client().await;
    // 60 sinks x 256 bytes fit the sinks' share; ids and per-node metrics do not.
    let e = client
        .execute(&fan_out(60), &f32_mono(64), None)
        .await
        .unwrap_err();
    let (code, message, _, error_code) = status(e);
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert_eq!(error_code.as_deref(), Some("limit"));
    assert!(
        message.contains("with its sink ids and metrics, over the message limit of 16384 bytes"),
        "{message}"
    );
    server.shutdown().await;
}
