//! Bytes on a raw TCP connection to a real server (issue 34): garbage before and after the
//! HTTP/2 preface, truncated and malformed frames. Any outcome for the connection is fine; a
//! panic in the server (its tasks catch panics, so the harness's hook aborts on any), a hang,
//! or a server that stops accepting connections is a bug.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use remotemedia_grpc::config::ServerConfig;
use remotemedia_grpc::convert::default_renderer;
use remotemedia_grpc::{serve, ServerParts, Telemetry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct Harness {
    rt: tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            std::process::abort();
        }));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let addr = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let mut config = ServerConfig::default();
            config.limits.handshake_timeout_ms = 200;
            config.limits.connection_idle_timeout_ms = 500;
            let parts = ServerParts {
                config,
                registry: remotemedia_nodes::builtin_registry(),
                render: default_renderer(),
                telemetry: Arc::new(Telemetry::new()),
            };
            tokio::spawn(serve(parts, listener, std::future::pending()));
            addr
        });
        Harness { rt, addr }
    })
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    h.rt.block_on(async {
        let mut s = tokio::net::TcpStream::connect(h.addr)
            .await
            .expect("the server stopped accepting connections");
        // Odd first bytes: the preface first, so the fuzzer reaches the HTTP/2 frame layer.
        if data.first().is_some_and(|b| b & 1 == 1) {
            let _ = s.write_all(PREFACE).await;
        }
        let _ = s.write_all(data).await;
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(50), async {
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    });
});
