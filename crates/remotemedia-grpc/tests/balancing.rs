//! What a load balancer needs from a replica (see docs/deploy.md): `GET /ready` on the
//! metrics port, and a shutdown grace period in which health already says NOT_SERVING while
//! new calls still succeed, so the balancer takes the replica out before it refuses anything.

use std::sync::Arc;
use std::time::Duration;

use remotemedia_core::data::{AudioBuffer, Data};
use remotemedia_grpc::config::ServerConfig;
use remotemedia_grpc::convert::default_renderer;
use remotemedia_grpc::{serve, ClientError, RemoteClient, ServerParts, Telemetry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const RESAMPLE: &str = r#"{"version": "v1", "nodes": [
    {"id": "resample", "node_type": "AudioResampleNode", "params": {"target_rate": 16000}}]}"#;

fn tone(frames: usize) -> Data {
    Data::Audio(AudioBuffer::mono_f32(
        (0..frames)
            .map(|i| 0.4 * (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin())
            .collect(),
        48_000,
    ))
}

/// A server with its metrics endpoint, both on loopback ports.
struct Replica {
    addr: String,
    metrics: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), remotemedia_grpc::ServeError>>,
}

impl Replica {
    async fn start(config: ServerConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = metrics_listener.local_addr().unwrap();
        let telemetry = Arc::new(Telemetry::new());
        tokio::spawn(remotemedia_grpc::telemetry::serve_metrics(
            metrics_listener,
            Arc::clone(&telemetry),
            std::future::pending(),
        ));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let parts = ServerParts {
            config,
            registry: remotemedia_nodes::builtin_registry(),
            render: default_renderer(),
            telemetry,
        };
        let task = tokio::spawn(serve(parts, listener, async {
            let _ = stopped.await;
        }));
        let replica = Self {
            addr,
            metrics,
            stop: Some(stop),
            task,
        };
        // The server task marks itself ready once it runs: at once on a quiet machine, a
        // little later on a loaded one. Tests start from a ready replica.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while replica.get("/ready").await.0 != 200 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        replica
    }

    /// `GET path` on the metrics port: (status code, body).
    async fn get(&self, path: &str) -> (u16, String) {
        let mut conn = tokio::net::TcpStream::connect(self.metrics).await.unwrap();
        conn.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).await.unwrap();
        let code = text[9..12].parse().unwrap();
        (code, text)
    }

    async fn health(&self) -> i32 {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
    }
}

fn code(e: &ClientError) -> Code {
    match e {
        ClientError::Status { code, .. } => *code,
        other => panic!("expected a status, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_health_and_new_calls_succeed_during_the_grace_period() {
    let mut cfg = ServerConfig::default();
    cfg.limits.shutdown_grace_ms = 800;
    cfg.limits.drain_ms = 300;
    let mut replica = Replica::start(cfg).await;
    let (status, body) = replica.get("/ready").await;
    assert_eq!(status, 200, "{body}");
    assert!(replica
        .get("/metrics")
        .await
        .1
        .contains("remotemedia_serving 1"));
    assert_eq!(replica.health().await, ServingStatus::Serving as i32);
    let mut client = RemoteClient::connect(&replica.addr, None).await.unwrap();

    let _ = replica.stop.take().unwrap().send(());
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Out of rotation for every kind of health check...
    assert_eq!(replica.health().await, ServingStatus::NotServing as i32);
    let (status, body) = replica.get("/ready").await;
    assert_eq!(status, 503, "{body}");
    assert!(replica
        .get("/metrics")
        .await
        .1
        .contains("remotemedia_serving 0"));
    // ...yet a call the balancer sent before it noticed still runs.
    let run = client.execute(RESAMPLE, &tone(4_800), None).await.unwrap();
    assert_eq!(run.outputs["resample"].as_audio().unwrap().frames(), 1_600);
    let mut stream = client.open_stream(RESAMPLE).await.unwrap();
    stream.push(&tone(960)).await.unwrap();

    // After the grace period new calls are refused, retryably; the open stream may finish.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let e = client
        .execute(RESAMPLE, &tone(4_800), None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::Unavailable, "{e}");
    assert!(e.is_retryable());
    stream.push(&tone(960)).await.unwrap();
    stream.finish().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), replica.task)
        .await
        .expect("server stopped after grace + drain")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_grace_period_new_calls_are_refused_at_once() {
    let mut cfg = ServerConfig::default();
    cfg.limits.drain_ms = 300;
    let mut replica = Replica::start(cfg).await;
    let mut client = RemoteClient::connect(&replica.addr, None).await.unwrap();
    let _ = replica.stop.take().unwrap().send(());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let e = client
        .execute(RESAMPLE, &tone(4_800), None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::Unavailable, "{e}");
    assert!(e.is_retryable());
    // A bad manifest is not worth retrying anywhere.
    let replica2 = Replica::start(ServerConfig::default()).await;
    let mut client2 = RemoteClient::connect(&replica2.addr, None).await.unwrap();
    let e = client2.execute("{}", &tone(480), None).await.unwrap_err();
    assert_eq!(code(&e), Code::InvalidArgument, "{e}");
    assert!(!e.is_retryable());
}
