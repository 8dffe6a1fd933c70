//! A real server on a loopback port, started by each test: round trips, auth, limits,
//! deadlines, load shedding, disconnects, drain on shutdown, and a remote sub-pipeline.

mod common;

use common::TestServer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use remotemedia_core::data::{AudioBuffer, Data};
use remotemedia_core::Pipeline;
use remotemedia_grpc::config::ServerConfig;
use remotemedia_grpc::convert::default_renderer;
use remotemedia_grpc::{ClientError, RemoteClient};
use tonic::Code;

fn tone(frames: usize, rate: u32) -> Data {
    Data::Audio(AudioBuffer::mono_f32(
        (0..frames)
            .map(|i| 0.4 * (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin())
            .collect(),
        rate,
    ))
}

const RESAMPLE_VAD: &str = r#"{"version": "v1", "nodes": [
    {"id": "resample", "node_type": "AudioResampleNode", "params": {"target_rate": 16000}},
    {"id": "vad", "node_type": "VADNode"},
    {"id": "i16", "node_type": "FormatConverterNode", "params": {"target_format": "i16"}}],
  "connections": [{"from": "resample", "to": "vad"}, {"from": "resample", "to": "i16"}]}"#;

fn status(e: ClientError) -> (Code, String, Option<String>) {
    match e {
        ClientError::Status {
            code,
            message,
            node_id,
            ..
        } => (code, message, node_id),
        other => panic!("expected a status, got {other}"),
    }
}

fn config() -> ServerConfig {
    ServerConfig::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_gives_the_same_outputs_as_a_local_run() {
    let server = TestServer::start(config()).await;
    let mut client = server.client().await;
    let input = tone(48_000, 48_000);
    let remote = client.execute(RESAMPLE_VAD, &input, None).await.unwrap();
    let local = Pipeline::from_json(RESAMPLE_VAD, &remotemedia_nodes::builtin_registry())
        .unwrap()
        .run(input)
        .await
        .unwrap();
    assert_eq!(remote.outputs, local.outputs);
    assert!(remote.metrics_json.contains("\"node_id\": \"resample\""));
    let version = client.get_version().await.unwrap();
    assert_eq!(version.manifest_version, "v1");
    let nodes = client.list_nodes().await.unwrap();
    assert!(nodes
        .iter()
        .any(|n| n.node_type == "AudioResampleNode" && n.runtime == "rust"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_gives_the_same_outputs_as_a_local_session() {
    let server = TestServer::start(config()).await;
    let mut client = server.client().await;
    let input = tone(48_000, 48_000);
    let audio = input.as_audio().unwrap().clone();
    let mut remote = client.open_stream(RESAMPLE_VAD).await.unwrap();
    let pipeline =
        Pipeline::from_json(RESAMPLE_VAD, &remotemedia_nodes::builtin_registry()).unwrap();
    let mut local = pipeline.session().unwrap();
    let (mut r_out, mut l_out) = (Vec::new(), Vec::new());
    for start in (0..48_000).step_by(960) {
        let chunk = Data::Audio(audio.slice_frames(start, start + 960));
        r_out.extend(remote.push(&chunk).await.unwrap());
        l_out.extend(local.push(chunk).await.unwrap());
    }
    r_out.extend(remote.finish().await.unwrap());
    l_out.extend(local.finish().await.unwrap());
    assert_eq!(r_out, l_out);
    assert!(remote.metrics_json().unwrap().contains("\"chunks\": 50"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_checked_before_the_manifest_is_parsed() {
    let mut cfg = config();
    cfg.auth.tokens = vec!["s3cret".into()];
    let server = TestServer::start(cfg).await;
    let input = tone(480, 48_000);
    for token in [None, Some("wrong".to_string())] {
        let mut client = RemoteClient::connect(&server.addr, token).await.unwrap();
        // An invalid manifest: still UNAUTHENTICATED, so it was never read.
        let (code, message, _) =
            status(client.execute("not json", &input, None).await.unwrap_err());
        assert_eq!(code, Code::Unauthenticated, "{message}");
        let e = client.open_stream(RESAMPLE_VAD).await.err().unwrap();
        assert_eq!(status(e).0, Code::Unauthenticated);
    }
    let mut client = RemoteClient::connect(&server.addr, Some("s3cret".into()))
        .await
        .unwrap();
    client.execute(RESAMPLE_VAD, &input, None).await.unwrap();
    let (code, message, _) = status(client.execute("not json", &input, None).await.unwrap_err());
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("not valid JSON"), "{message}");
    assert!(server
        .telemetry
        .render()
        .contains("remotemedia_rejected_total{reason=\"unauthenticated\"} 4"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_map_to_status_codes_naming_the_node() {
    let server = TestServer::start(config()).await;
    let mut client = server.client().await;
    let input = tone(480, 48_000);
    let bad = r#"{"version": "v1", "nodes": [{"id": "r", "node_type": "AudioResampleNode", "params": {"target_rate": 5}}]}"#;
    let (code, message, node) = status(client.execute(bad, &input, None).await.unwrap_err());
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        message.contains("node 'r' (AudioResampleNode): params.target_rate"),
        "{message}"
    );
    assert_eq!(node.as_deref(), Some("r"));

    // A huge value quoted in the error is cut, so the status still fits in HTTP/2 headers
    // (it used to reach the client as RESOURCE_EXHAUSTED "metadata size exceeds hard limit").
    let huge = format!(
        r#"{{"version": "v1", "nodes": [{{"id": "r", "node_type": "AudioResampleNode", "params": {{"target_rate": 5, "quality": "{}"}}}}]}}"#,
        "é".repeat(450_000)
    );
    let (code, message, _) = status(client.execute(&huge, &input, None).await.unwrap_err());
    assert_eq!(
        code,
        Code::InvalidArgument,
        "{}",
        &message[..200.min(message.len())]
    );
    // The value is cut where it is quoted (remotemedia_core::text::bounded), so the message
    // keeps what is valid; the 4 KiB cut of whole status messages stays as a backstop.
    assert!(message.len() < 1_000, "{} bytes", message.len());
    assert!(message.contains("characters)"), "{message}");
    assert!(message.contains("expected one of"), "{message}");

    let panics = r#"{"version": "v1", "nodes": [{"id": "boom", "node_type": "TestPanicNode"}]}"#;
    let (code, message, node) = status(client.execute(panics, &input, None).await.unwrap_err());
    assert_eq!(code, Code::Internal);
    assert!(message.contains("panicked: injected panic"), "{message}");
    assert_eq!(node.as_deref(), Some("boom"));
    // The server carries on.
    client.execute(RESAMPLE_VAD, &input, None).await.unwrap();

    let wrong_input = Data::Json(serde_json::json!({"not": "audio"}));
    let (code, message, node) = status(
        client
            .execute(RESAMPLE_VAD, &wrong_input, None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        message.contains("(AudioResampleNode) failed: expected audio"),
        "{message}"
    );
    assert_eq!(node.as_deref(), Some("resample"));

    // The first stream message must open it.
    let canary = r#"{"version": "v1", "nodes": [{"id": "x", "node_type": "os:system"}]}"#;
    let (code, message, _) = status(client.execute(canary, &input, None).await.unwrap_err());
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        message.contains("unknown node type 'os:system'"),
        "{message}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_streams_inputs_over_one_message_by_itself() {
    // 60 s of 48 kHz f32 is 11.5 MB: over the default 4 MiB message limit.
    let server = TestServer::start(config()).await;
    let mut client = server.client().await;
    let input = tone(60 * 48_000, 48_000);
    let remote = client.execute(RESAMPLE_VAD, &input, None).await.unwrap();
    let local = Pipeline::from_json(RESAMPLE_VAD, &remotemedia_nodes::builtin_registry())
        .unwrap()
        .run(input.clone())
        .await
        .unwrap();
    assert_eq!(remote.outputs, local.outputs);
    let Some(Data::Audio(out)) = remote.outputs.get("i16") else {
        panic!("no audio from i16: {:?}", remote.outputs.keys());
    };
    assert_eq!(out.frames(), 60 * 16_000);
    assert!(remote.metrics_json.contains("\"node_id\": \"resample\""));
    // The deadline covers the whole stream.
    let (code, message, _) = status(
        client
            .execute(RESAMPLE_VAD, &input, Some(Duration::from_millis(1)))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, Code::DeadlineExceeded, "{message}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_messages_are_refused() {
    let mut cfg = config();
    cfg.limits.max_message_bytes = 64 * 1024;
    let server = TestServer::start(cfg).await;
    let mut client = server.client().await;
    let (code, message, _) = status(
        client
            .execute(RESAMPLE_VAD, &tone(48_000, 48_000), None)
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(code, Code::ResourceExhausted | Code::OutOfRange),
        "{code:?} {message}"
    );
    assert!(
        message.contains("limits.max_message_bytes") && message.contains("stream the input"),
        "the refusal names the setting and the way out: {message}"
    );
    client
        .execute(RESAMPLE_VAD, &tone(4_800, 48_000), None)
        .await
        .unwrap();
    server.shutdown().await;
}

const SLOW: &str = r#"{"version": "v1", "nodes": [{"id": "slow", "node_type": "TestSleepNode", "params": {"ms": 5000}}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_from_the_server_and_the_client() {
    let mut cfg = config();
    cfg.limits.deadline_ms = 300;
    let server = TestServer::start(cfg).await;
    let mut client = server.client().await;
    let t = Instant::now();
    let (code, message, _) = status(
        client
            .execute(SLOW, &tone(480, 48_000), None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, Code::DeadlineExceeded, "{message}");
    assert!(t.elapsed() < Duration::from_millis(2000));
    let t = Instant::now();
    let e = client
        .execute(SLOW, &tone(480, 48_000), Some(Duration::from_millis(100)))
        .await
        .unwrap_err();
    // The server answers DEADLINE_EXCEEDED at the client's deadline; tonic's client may get
    // there first and report its own timer as CANCELLED ("Timeout expired").
    let (code, message, _) = status(e);
    assert!(
        matches!(code, Code::DeadlineExceeded | Code::Cancelled),
        "{code:?} {message}"
    );
    assert!(t.elapsed() < Duration::from_millis(290));
    // The executions were cancelled, not left running (also when the client gave up first).
    let t = Instant::now();
    while server.telemetry.active_executions.get() != 0 {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "an execution was left running"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_is_shed_without_disturbing_open_sessions() {
    let mut cfg = config();
    cfg.limits.max_concurrent = 2;
    let server = TestServer::start(cfg).await;
    let mut client = server.client().await;
    let mut a = client.open_stream(RESAMPLE_VAD).await.unwrap();
    let mut b = client.open_stream(RESAMPLE_VAD).await.unwrap();
    // A burst beyond the limit is refused at once.
    let mut refused = 0;
    for _ in 0..5 {
        match client.execute(RESAMPLE_VAD, &tone(480, 48_000), None).await {
            Err(e) => {
                assert_eq!(status(e).0, Code::ResourceExhausted);
                refused += 1;
            }
            Ok(_) => panic!("a call beyond the limit ran"),
        }
    }
    assert_eq!(refused, 5);
    // The open sessions are unaffected.
    a.push(&tone(960, 48_000)).await.unwrap();
    b.push(&tone(960, 48_000)).await.unwrap();
    a.finish().await.unwrap();
    b.finish().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    client
        .execute(RESAMPLE_VAD, &tone(480, 48_000), None)
        .await
        .unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_stream_releases_its_session() {
    let server = TestServer::start(config()).await;
    let mut client = server.client().await;
    let mut s = client.open_stream(RESAMPLE_VAD).await.unwrap();
    s.push(&tone(960, 48_000)).await.unwrap();
    assert_eq!(server.telemetry.active_streams.get(), 1);
    s.abort();
    drop(client);
    let t = Instant::now();
    while server.telemetry.active_streams.get() != 0 {
        assert!(t.elapsed() < Duration::from_secs(5), "stream not released");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_are_closed() {
    let mut cfg = config();
    cfg.limits.stream_idle_timeout_ms = 150;
    let server = TestServer::start(cfg).await;
    let mut client = server.client().await;
    let mut s = client.open_stream(RESAMPLE_VAD).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (code, message, _) = status(s.push(&tone(960, 48_000)).await.unwrap_err());
    assert_eq!(code, Code::DeadlineExceeded, "{message}");
    assert!(message.contains("stream_idle_timeout_ms"), "{message}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flips_health_refuses_new_calls_and_drains_streams() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let mut cfg = config();
    cfg.limits.drain_ms = 600;
    let mut server = TestServer::start(cfg).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let check = |svc: &str| HealthCheckRequest {
        service: svc.to_string(),
    };
    let serving = health
        .check(check("remotemedia.v1.RemoteMedia"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(serving.status, ServingStatus::Serving as i32);

    let mut client = server.client().await;
    let mut open = client.open_stream(RESAMPLE_VAD).await.unwrap();
    open.push(&tone(960, 48_000)).await.unwrap();

    let _ = server.stop.take().unwrap().send(());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status_now = health.check(check("")).await.unwrap().into_inner();
    assert_eq!(status_now.status, ServingStatus::NotServing as i32);
    let (code, _, _) = status(
        client
            .execute(RESAMPLE_VAD, &tone(480, 48_000), None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, Code::Unavailable);
    // The open stream keeps working during the drain period...
    open.push(&tone(960, 48_000)).await.unwrap();
    // ...and is closed when it ends.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (code, message, _) = status(open.push(&tone(960, 48_000)).await.unwrap_err());
    assert_eq!(code, Code::Unavailable, "{message}");
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("server stopped after the drain")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_are_served() {
    let mut cfg = config();
    let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics_listener.local_addr().unwrap();
    cfg.metrics_listen = Some(metrics_addr);
    let server = TestServer::start(cfg).await;
    let telemetry = Arc::clone(&server.telemetry);
    tokio::spawn(remotemedia_grpc::telemetry::serve_metrics(
        metrics_listener,
        telemetry,
        std::future::pending(),
    ));
    let mut client = server.client().await;
    client
        .execute(RESAMPLE_VAD, &tone(4_800, 48_000), None)
        .await
        .unwrap();
    let _ = client.execute("{}", &tone(480, 48_000), None).await;
    // A plain HTTP/1.1 GET.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(metrics_addr).await.unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).await.unwrap();
    assert!(
        body.contains("remotemedia_requests_total{rpc=\"Execute\"} 2"),
        "{body}"
    );
    assert!(
        body.contains("remotemedia_errors_total{code=\"manifest\",rpc=\"Execute\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("remotemedia_node_seconds_count{node_type=\"AudioResampleNode\"} 1"),
        "{body}"
    );
    assert!(body.contains("remotemedia_active_streams 0"), "{body}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_pipeline_node_runs_a_sub_pipeline_on_another_server() {
    let a = TestServer::start(config()).await;
    let b = TestServer::start(config()).await;
    let sub_a = r#"{"version": "v1", "nodes": [{"id": "r", "node_type": "AudioResampleNode", "params": {"target_rate": 16000}}]}"#;
    let sub_b = r#"{"version": "v1", "nodes": [{"id": "v", "node_type": "VADNode", "params": {"emit": "speech"}}]}"#;
    let local_manifest = format!(
        r#"{{"version": "v1", "nodes": [
            {{"id": "on_a", "node_type": "RemotePipelineNode", "params": {{"address": "{}", "manifest": {sub_a}}}}},
            {{"id": "on_b", "node_type": "RemotePipelineNode", "params": {{"address": "{}", "manifest": {sub_b}}}}}],
          "connections": [{{"from": "on_a", "to": "on_b"}}]}}"#,
        a.addr, b.addr
    );
    let mut registry = remotemedia_nodes::builtin_registry();
    remotemedia_grpc::remote_node::register(&mut registry);
    let remote = Pipeline::from_json(&local_manifest, &registry).unwrap();
    let all_local = Pipeline::from_json(
        r#"{"version": "v1", "nodes": [
            {"id": "r", "node_type": "AudioResampleNode", "params": {"target_rate": 16000}},
            {"id": "v", "node_type": "VADNode", "params": {"emit": "speech"}}],
          "connections": [{"from": "r", "to": "v"}]}"#,
        &registry,
    )
    .unwrap();
    let input = tone(48_000, 48_000);
    let got = remote.run(input.clone()).await.unwrap();
    let want = all_local.run(input).await.unwrap();
    assert_eq!(got.outputs["on_b"], want.outputs["v"]);
    let m = got.metrics;
    assert_eq!(
        serde_json::to_value(m.node("on_a").unwrap().runtime).unwrap(),
        "remote"
    );
    // A server that is down is a clear, retryable error naming the node.
    let dead = format!(
        r#"{{"version": "v1", "nodes": [{{"id": "gone", "node_type": "RemotePipelineNode",
            "params": {{"address": "127.0.0.1:1", "manifest": {sub_a}}}, "retry": {{"max_attempts": 2, "initial_delay_ms": 1}}}}]}}"#
    );
    let err = Pipeline::from_json(&dead, &registry)
        .unwrap()
        .run(tone(480, 48_000))
        .await
        .unwrap_err();
    assert_eq!(err.node_id(), Some("gone"));
    assert!(
        err.to_string().contains("cannot connect to 127.0.0.1:1"),
        "{err}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_is_served_only_when_enabled() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    async fn services(addr: &str) -> Result<Vec<String>, tonic::Status> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = ServerReflectionClient::new(channel);
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = client
            .server_reflection_info(tokio_stream::iter([req]))
            .await?
            .into_inner();
        match responses.message().await?.and_then(|r| r.message_response) {
            Some(MessageResponse::ListServicesResponse(list)) => {
                Ok(list.service.into_iter().map(|s| s.name).collect())
            }
            other => panic!("unexpected reflection response {other:?}"),
        }
    }

    let mut cfg = config();
    cfg.reflection = true;
    let on = TestServer::start(cfg).await;
    let names = services(&on.addr).await.unwrap();
    for service in ["remotemedia.v1.RemoteMedia", "grpc.health.v1.Health"] {
        assert!(names.contains(&service.to_string()), "{names:?}");
    }
    // The older v1alpha protocol (what grpcio's reflection client speaks) answers too.
    {
        use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", on.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = ServerReflectionClient::new(channel)
            .server_reflection_info(tokio_stream::iter([req]))
            .await
            .unwrap()
            .into_inner();
        match responses
            .message()
            .await
            .unwrap()
            .and_then(|r| r.message_response)
        {
            Some(MessageResponse::ListServicesResponse(list)) => {
                let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
                assert!(
                    names.contains(&"remotemedia.v1.RemoteMedia".to_string()),
                    "{names:?}"
                );
            }
            other => panic!("unexpected v1alpha reflection response {other:?}"),
        }
    }
    on.shutdown().await;

    let off = TestServer::start(config()).await;
    assert_eq!(
        services(&off.addr).await.unwrap_err().code(),
        Code::Unimplemented
    );
    off.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_held_back_not_buffered() {
    use remotemedia_grpc::pb;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio_stream::wrappers::ReceiverStream;

    let mut cfg = config();
    // Long enough that the stall is seen (within a second) while the session still exists.
    cfg.limits.stream_idle_timeout_ms = 3_000;
    cfg.limits.drain_ms = 500;
    let server = TestServer::start(cfg).await;
    let mut raw =
        pb::remote_media_client::RemoteMediaClient::connect(format!("http://{}", server.addr))
            .await
            .unwrap();
    // Requests go through a one-slot channel: `accepted` counts the chunks the transport took.
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::StreamRequest>(1);
    let accepted = Arc::new(AtomicUsize::new(0));
    let chunk = pb::StreamRequest {
        msg: Some(pb::stream_request::Msg::Chunk(pb::StreamChunk {
            seq: 0,
            input: remotemedia_grpc::convert::data_to_pb(&tone(960, 48_000), &default_renderer()),
        })),
    };
    const TOTAL: usize = 20_000; // 400 s of audio, 77 MB
    let producer = {
        let accepted = Arc::clone(&accepted);
        tokio::spawn(async move {
            let open = pb::StreamRequest {
                msg: Some(pb::stream_request::Msg::Open(pb::StreamOpen {
                    manifest: RESAMPLE_VAD.to_string(),
                })),
            };
            tx.send(open).await.unwrap();
            for _ in 0..TOTAL {
                if tx.send(chunk.clone()).await.is_err() {
                    break;
                }
                accepted.fetch_add(1, Ordering::Relaxed);
            }
            tx
        })
    };
    // The call is open but its responses are never read.
    let call = tokio::spawn(async move {
        let _responses = raw.stream(ReceiverStream::new(rx)).await.unwrap();
        std::future::pending::<()>().await;
    });
    let t = Instant::now();
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = accepted.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the sender is never held back"
        );
    }
    assert!(
        last < TOTAL / 4,
        "{last} chunks accepted from a client that reads nothing"
    );
    assert_eq!(server.telemetry.active_streams.get(), 1);
    // Other clients are served meanwhile.
    let mut other = server.client().await;
    other
        .execute(RESAMPLE_VAD, &tone(480, 48_000), None)
        .await
        .unwrap();
    // A client that takes no response for stream_idle_timeout_ms loses its session, even
    // though its connection (and this half-open call) stays up.
    let t = Instant::now();
    while server.telemetry.active_streams.get() != 0 {
        assert!(t.elapsed() < Duration::from_secs(10), "stream not released");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let not_reading = server
        .telemetry
        .errors
        .with_label_values(&["Stream", "client_not_reading"])
        .get();
    assert_eq!(not_reading, 1);
    // The stalled HTTP/2 stream does not keep the server from stopping after the drain.
    let t = Instant::now();
    tokio::time::timeout(Duration::from_secs(15), server.shutdown())
        .await
        .expect("shutdown is not held up by a client that reads nothing");
    assert!(t.elapsed() < Duration::from_secs(10));
    producer.abort();
    call.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_runs_carry_the_request_id() {
    use remotemedia_grpc::pb;
    let server = TestServer::start(config()).await;
    let mut raw =
        pb::remote_media_client::RemoteMediaClient::connect(format!("http://{}", server.addr))
            .await
            .unwrap();
    let panics = r#"{"version": "v1", "nodes": [{"id": "boom", "node_type": "TestPanicNode"}]}"#;
    let request = |id: Option<&str>| {
        let mut r = tonic::Request::new(pb::ExecuteRequest {
            manifest: panics.to_string(),
            input: remotemedia_grpc::convert::data_to_pb(&tone(480, 48_000), &default_renderer()),
        });
        if let Some(id) = id {
            r.metadata_mut().insert("x-request-id", id.parse().unwrap());
        }
        r
    };
    let id_of = |s: &tonic::Status| {
        s.metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    // The client's own id comes back; an unusable one (or none) is replaced by the server's.
    let s = raw.execute(request(Some("abc-123"))).await.unwrap_err();
    assert_eq!(s.code(), Code::Internal);
    assert_eq!(id_of(&s).as_deref(), Some("abc-123"));
    for given in [None, Some("has space"), Some("x".repeat(129).as_str())] {
        let s = raw.execute(request(given)).await.unwrap_err();
        let id = id_of(&s).unwrap();
        assert!(id.starts_with("rm-"), "{id}");
    }
    server.shutdown().await;
}
