//! Issue 34, failure 2: connections cannot hold the server. A socket that never sends the
//! HTTP/2 preface is closed after `handshake_timeout_ms`; connections over `max_connections`
//! are closed at once; a connection with no call in progress is closed after
//! `connection_idle_timeout_ms`, but never while a call (a long stream) is open on it.

mod common;

use common::TestServer;

use std::time::{Duration, Instant};

use remotemedia_core::data::{AudioBuffer, Data, Samples};
use remotemedia_grpc::config::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const RESAMPLE: &str = r#"{"version": "v1", "nodes": [
    {"id": "r", "node_type": "AudioResampleNode", "params": {"target_rate": 16000}}]}"#;

fn tone(frames: usize) -> Data {
    let s: Vec<f32> = (0..frames).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
    Data::Audio(AudioBuffer::new(Samples::F32(s.into()), 48_000, 1).unwrap())
}

fn config(max_connections: usize, handshake_ms: u64, idle_ms: u64) -> ServerConfig {
    let mut c = ServerConfig::default();
    c.limits.max_connections = max_connections;
    c.limits.handshake_timeout_ms = handshake_ms;
    c.limits.connection_idle_timeout_ms = idle_ms;
    c
}

/// Reads until the server closes the socket (EOF or reset), or `within` passes: how long
/// that took, or `None` if it stayed open.
async fn closed_within(sock: &mut TcpStream, within: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(within.saturating_sub(t.elapsed()), sock.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t.elapsed()),
            Ok(Ok(_)) => continue, // the server's SETTINGS/GOAWAY frames
        }
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_garbage_connections_are_closed_after_the_handshake_deadline() {
    let server = TestServer::start(config(100, 300, 60_000)).await;
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(&server.addr).await.unwrap());
    }
    // Half a preface, then nothing (slow loris).
    let mut partial = TcpStream::connect(&server.addr).await.unwrap();
    partial.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    wait_for("21 connections open", || {
        server.telemetry.open_connections.get() == 21
    })
    .await;
    for sock in silent.iter_mut().chain([&mut partial]) {
        let took = closed_within(sock, Duration::from_secs(5))
            .await
            .expect("a silent connection was not closed");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    // Not HTTP/2 at all: closed as soon as 24 bytes show it.
    let mut http1 = TcpStream::connect(&server.addr).await.unwrap();
    http1
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let took = closed_within(&mut http1, Duration::from_secs(5))
        .await
        .expect("an HTTP/1 connection was not closed");
    assert!(took < Duration::from_millis(250), "{took:?}");
    wait_for("no connection open", || {
        server.telemetry.open_connections.get() == 0
    })
    .await;
    let closed = &server.telemetry.connections_closed;
    assert_eq!(closed.with_label_values(&["handshake_timeout"]).get(), 21);
    assert_eq!(closed.with_label_values(&["not_http2"]).get(), 1);
    // The server answers a normal call.
    let mut client = server.client().await;
    let out = client.execute(RESAMPLE, &tone(4_800), None).await.unwrap();
    assert_eq!(out.outputs["r"].as_audio().unwrap().frames(), 1_600);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_closed_at_once_and_the_slots_come_back() {
    let server = TestServer::start(config(4, 400, 60_000)).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(&server.addr).await.unwrap());
    }
    wait_for("4 connections open", || {
        server.telemetry.open_connections.get() == 4
    })
    .await;
    let mut over = TcpStream::connect(&server.addr).await.unwrap();
    let took = closed_within(&mut over, Duration::from_secs(2))
        .await
        .expect("a connection over the limit stayed open");
    assert!(took < Duration::from_millis(200), "{took:?}");
    let limit = server
        .telemetry
        .connections_closed
        .with_label_values(&["limit"]);
    assert_eq!(limit.get(), 1);
    // Real clients are served once the silent ones hit their handshake deadline.
    wait_for("held connections closed", || {
        server.telemetry.open_connections.get() == 0
    })
    .await;
    let mut client = server.client().await;
    let out = client.execute(RESAMPLE, &tone(4_800), None).await.unwrap();
    assert_eq!(out.outputs["r"].as_audio().unwrap().frames(), 1_600);
    drop(held);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_but_not_while_a_stream_is_open_on_them() {
    let server = TestServer::start(config(100, 5_000, 300)).await;
    let mut client = server.client().await;
    let mut stream = client.open_stream(RESAMPLE).await.unwrap();
    // Three idle periods with the stream open: the connection stays.
    for _ in 0..3 {
        stream.push(&tone(960)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    stream.push(&tone(960)).await.unwrap();
    let outs = stream.finish().await.unwrap();
    assert!(!outs.is_empty());
    let idle = server
        .telemetry
        .connections_closed
        .with_label_values(&["idle"]);
    assert_eq!(idle.get(), 0, "closed while a stream was open");
    // With nothing in progress, it goes after the idle deadline.
    wait_for("idle connection closed", || idle.get() == 1).await;
    wait_for("no connection open", || {
        server.telemetry.open_connections.get() == 0
    })
    .await;
    // The same client reconnects for its next call.
    let out = client.execute(RESAMPLE, &tone(4_800), None).await;
    let out = match out {
        Ok(out) => out,
        // A call racing the close may see it once; the next one connects anew.
        Err(_) => client.execute(RESAMPLE, &tone(4_800), None).await.unwrap(),
    };
    assert_eq!(out.outputs["r"].as_audio().unwrap().frames(), 1_600);
    server.shutdown().await;
}

#[test]
fn connection_limits_of_zero_are_refused() {
    let mut c = ServerConfig::default();
    c.limits.max_connections = 0;
    let e = c.check().unwrap_err().to_string();
    assert!(e.contains("limits.max_connections"), "{e}");
}
