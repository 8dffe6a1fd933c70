//! [`serve`]: the server's assembly (service, health, reflection, auth, limits) and its
//! graceful shutdown with the drain; [`termination_signal`] for SIGTERM and Ctrl-C.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use remotemedia_core::registry::NodeRegistry;
use tokio::sync::{watch, Semaphore};

use super::auth::Auth;
use super::conn::{ConnLimits, TrackCallsLayer};
use super::layer::CountRefused;
use super::{Phase, Service, Shared, LOG_TARGET};
use crate::cache::PipelineCache;
use crate::config::ServerConfig;
use crate::convert::JsonRenderer;
use crate::pb::remote_media_server::RemoteMediaServer;
use crate::telemetry::Telemetry;

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// An I/O error (binding a port).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Reflection could not be set up.
    #[error("reflection: {0}")]
    Reflection(String),
}

/// Everything `serve` needs besides the listener.
pub struct ServerParts {
    /// The configuration.
    pub config: ServerConfig,
    /// The node types manifests may use (built-ins plus the operator's Python nodes).
    pub registry: NodeRegistry,
    /// JSON rendering of non-audio outputs.
    pub render: JsonRenderer,
    /// Metrics (shared with the metrics endpoint).
    pub telemetry: Arc<Telemetry>,
}

/// Serves on `listener` until `shutdown` resolves, then drains (see module docs).
pub async fn serve(
    parts: ServerParts,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let ServerParts {
        config,
        registry,
        render,
        telemetry,
    } = parts;
    let (phase_tx, phase_rx) = watch::channel(Phase::Serving);
    let limits = config.limits.clone();
    let tokens = config.tokens();
    let reflection = config.reflection;
    let pipelines = Arc::new(
        PipelineCache::new(limits.pipeline_cache_size, config.resource_limits())
            .with_node_timeout(
                (limits.node_timeout_ms > 0).then(|| Duration::from_millis(limits.node_timeout_ms)),
            )
            .with_isolation(config.python_isolation),
    );
    {
        let pipelines = Arc::clone(&pipelines);
        telemetry.set_breaker_source(move || pipelines.breakers());
    }
    let shared = Arc::new(Shared {
        pipelines,
        permits: Arc::new(Semaphore::new(limits.max_concurrent)),
        config,
        registry: Arc::new(registry),
        render,
        telemetry: Arc::clone(&telemetry),
        phase: phase_rx,
    });
    let service = RemoteMediaServer::new(Service {
        shared: Arc::clone(&shared),
    })
    .max_decoding_message_size(limits.max_message_bytes)
    .max_encoding_message_size(limits.max_message_bytes);
    let (health, health_service) = tonic_health::server::health_reporter();
    telemetry.serving.set(1);
    health.set_serving::<RemoteMediaServer<Service>>().await;
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    // Both reflection versions (grpcurl speaks v1; grpcio's and older tools' clients still
    // ask v1alpha), each listing our service and grpc.health.v1.Health.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let (reflection, reflection_alpha) = if reflection {
        (
            Some(
                reflection_builder()
                    .build_v1()
                    .map_err(|e| ServeError::Reflection(e.to_string()))?,
            ),
            Some(
                reflection_builder()
                    .build_v1alpha()
                    .map_err(|e| ServeError::Reflection(e.to_string()))?,
            ),
        )
    } else {
        (None, None)
    };
    let auth = Auth {
        tokens: Arc::new(tokens),
        telemetry: Arc::clone(&telemetry),
    };
    let drain = Duration::from_millis(limits.drain_ms);
    let grace = Duration::from_millis(limits.shutdown_grace_ms);
    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
    let graceful = async move {
        shutdown.await;
        tracing::info!(
            target: LOG_TARGET,
            "shutting down: draining open streams for up to {drain:?}"
        );
        health.set_not_serving::<RemoteMediaServer<Service>>().await;
        health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        telemetry.serving.set(0);
        // Still Serving: a balancer that has not yet seen NOT_SERVING keeps sending new calls
        // here for a health interval or two, and they should not fail.
        if !grace.is_zero() {
            tracing::info!(
                target: LOG_TARGET,
                "taking new calls for {grace:?} more while balancers notice"
            );
            tokio::time::sleep(grace).await;
        }
        let _ = phase_tx.send(Phase::Draining);
        let started = Instant::now();
        while started.elapsed() < drain && telemetry.active_streams.get() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = phase_tx.send(Phase::Closing);
        // Give closing streams a moment to send their final status.
        while telemetry.active_streams.get() > 0
            && started.elapsed() < drain + Duration::from_secs(2)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = drained_tx.send(());
    };
    let conn_limits = ConnLimits {
        max_connections: limits.max_connections,
        handshake: Duration::from_millis(limits.handshake_timeout_ms),
        idle: Duration::from_millis(limits.connection_idle_timeout_ms),
    }
    .fitted_to_fd_limit();
    let keepalive = (limits.keepalive_interval_ms > 0)
        .then(|| Duration::from_millis(limits.keepalive_interval_ms));
    let server = tonic::transport::Server::builder()
        // A unary call's request is read in full before its handler (and the handler's own
        // deadline) starts: this bounds a client that sends headers and never the body.
        // A second over `deadline_ms`, so a call that did arrive gets the handler's message.
        .timeout(Duration::from_millis(limits.deadline_ms) + Duration::from_secs(1))
        .http2_keepalive_interval(keepalive)
        .http2_keepalive_timeout(Some(Duration::from_millis(limits.keepalive_timeout_ms)))
        .layer(TrackCallsLayer)
        .add_service(health_service)
        .add_optional_service(reflection)
        .add_optional_service(reflection_alpha)
        .add_service(CountRefused {
            inner: tonic::service::interceptor::InterceptedService::new(service, auth),
            telemetry: Arc::clone(&shared.telemetry),
        })
        .serve_with_incoming_shutdown(
            super::conn::incoming(listener, conn_limits, Arc::clone(&shared.telemetry)),
            graceful,
        );
    // A graceful shutdown waits for every HTTP/2 stream to end, and a client that stops
    // reading never lets its stream end: after the drain, such connections are dropped.
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result?,
        _ = async {
            if drained_rx.await.is_ok() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::warn!(
                target: LOG_TARGET,
                "connections still open after the drain period were closed"
            );
        }
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT). The handlers are installed when this is *called*
/// (inside a tokio runtime), not when the future is first polled: call it before the server
/// starts listening, so a SIGTERM that arrives as soon as the port accepts connections is a
/// graceful shutdown rather than the default action (killing the process).
pub fn termination_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let handlers = signal(SignalKind::terminate())
            .and_then(|term| signal(SignalKind::interrupt()).map(|int| (term, int)));
        async move {
            match handlers {
                Ok((mut term, mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        target: LOG_TARGET,
                        error = %e, "cannot listen for SIGTERM; Ctrl-C only"
                    );
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
