//! A real server on a loopback port for the integration tests (server.rs, limits.rs).

#![allow(dead_code)] // each test file uses part of it

use std::sync::Arc;

use remotemedia_grpc::config::ServerConfig;
use remotemedia_grpc::convert::default_renderer;
use remotemedia_grpc::{serve, RemoteClient, ServerParts, Telemetry};
use tokio::sync::oneshot;

pub struct TestServer {
    pub addr: String,
    pub telemetry: Arc<Telemetry>,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<Result<(), remotemedia_grpc::ServeError>>,
}

impl TestServer {
    pub async fn start(config: ServerConfig) -> Self {
        let mut registry = remotemedia_nodes::builtin_registry();
        remotemedia_core::testing::register(&mut registry);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let telemetry = Arc::new(Telemetry::new());
        let (stop, stopped) = oneshot::channel::<()>();
        let parts = ServerParts {
            config,
            registry,
            render: default_renderer(),
            telemetry: Arc::clone(&telemetry),
        };
        let task = tokio::spawn(serve(parts, listener, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            telemetry,
            stop: Some(stop),
            task,
        }
    }

    pub async fn client(&self) -> RemoteClient {
        RemoteClient::connect(&self.addr, None).await.unwrap()
    }

    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}
