//! Prometheus metrics of the server. Label values come only from the server's own vocabulary
//! (RPC names, error codes, registered node types), never from client-supplied strings.

use std::net::SocketAddr;
use std::sync::Arc;

use std::sync::Mutex;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::cache::BreakerSample;

type BreakerSource = Arc<dyn Fn() -> Vec<BreakerSample> + Send + Sync>;
use remotemedia_core::executor::PipelineMetrics;

/// The server's metrics, in their own registry (several servers can share a process).
pub struct Telemetry {
    registry: Registry,
    /// Calls received, by RPC.
    pub requests: IntCounterVec,
    /// Failed calls, by RPC and error code.
    pub errors: IntCounterVec,
    /// Calls refused before running, by reason ("overloaded", "unauthenticated", "draining").
    pub rejected: IntCounterVec,
    /// Open `Stream` calls.
    pub active_streams: IntGauge,
    /// Running `Execute` calls.
    pub active_executions: IntGauge,
    /// Client connections open (past accept, under `limits.max_connections`).
    pub open_connections: IntGauge,
    /// Connections the server closed, by reason ("limit", "handshake_timeout", "not_http2",
    /// "closed_in_handshake", "idle").
    pub connections_closed: IntCounterVec,
    /// 1 while the server takes calls, 0 once it is shutting down (what `GET /ready` reports).
    pub serving: IntGauge,
    /// Time spent in a node type's calls per run or stream, in seconds.
    pub node_seconds: HistogramVec,
    /// Circuit breakers of cached pipelines (nodes with `circuit_breaker` in their manifest):
    /// 0 closed, 1 open, 2 half-open; labels pipeline (hash), node (index), node_type.
    pub breaker_state: IntGaugeVec,
    /// Consecutive failures each breaker counts now.
    pub breaker_failures: IntGaugeVec,
    /// Times each breaker has opened.
    pub breaker_opened: IntGaugeVec,
    breaker_source: Mutex<Option<BreakerSource>>,
    /// Node calls still running after their caller went away (read at each render).
    pub abandoned_calls: IntGauge,
    abandoned_source: Mutex<Option<fn() -> usize>>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("remotemedia_requests_total", "gRPC calls received"),
            &["rpc"],
        )
        .expect("valid metric");
        let errors = IntCounterVec::new(
            Opts::new("remotemedia_errors_total", "gRPC calls that failed"),
            &["rpc", "code"],
        )
        .expect("valid metric");
        let rejected = IntCounterVec::new(
            Opts::new(
                "remotemedia_rejected_total",
                "gRPC calls refused before running",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let active_streams =
            IntGauge::new("remotemedia_active_streams", "open Stream calls").expect("valid metric");
        let active_executions =
            IntGauge::new("remotemedia_active_executions", "running Execute calls")
                .expect("valid metric");
        let open_connections = IntGauge::new(
            "remotemedia_open_connections",
            "client connections open (under limits.max_connections)",
        )
        .expect("valid metric");
        let connections_closed = IntCounterVec::new(
            Opts::new(
                "remotemedia_connections_closed_total",
                "connections the server closed: over the limit, no HTTP/2 preface in time, idle",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let abandoned_calls = IntGauge::new(
            "remotemedia_abandoned_calls",
            "node calls still running after their client left or their deadline passed \
             (interrupted Python calls blocked in C, and the cleanup() waiting for them)",
        )
        .expect("valid metric");
        let serving = IntGauge::new(
            "remotemedia_serving",
            "1 while the server takes calls, 0 once it is shutting down",
        )
        .expect("valid metric");
        let node_seconds = HistogramVec::new(
            HistogramOpts::new(
                "remotemedia_node_seconds",
                "time spent in a node type's calls per run or stream",
            )
            .buckets(prometheus::exponential_buckets(1e-5, 4.0, 10).expect("valid buckets")),
            &["node_type"],
        )
        .expect("valid metric");
        let breaker = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["pipeline", "node", "node_type"])
                .expect("valid metric")
        };
        let breaker_state = breaker(
            "remotemedia_breaker_state",
            "circuit breaker state per node of a cached pipeline: 0 closed, 1 open, 2 half-open",
        );
        let breaker_failures = breaker(
            "remotemedia_breaker_consecutive_failures",
            "consecutive failures a node's circuit breaker counts",
        );
        let breaker_opened = breaker(
            "remotemedia_breaker_opened",
            "times a node's circuit breaker has opened since its pipeline was cached",
        );
        for c in [
            Box::new(breaker_state.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(breaker_failures.clone()),
            Box::new(breaker_opened.clone()),
            Box::new(requests.clone()),
            Box::new(errors.clone()),
            Box::new(rejected.clone()),
            Box::new(active_streams.clone()),
            Box::new(active_executions.clone()),
            Box::new(serving.clone()),
            Box::new(open_connections.clone()),
            Box::new(abandoned_calls.clone()),
            Box::new(connections_closed.clone()),
            Box::new(node_seconds.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Self {
            registry,
            requests,
            errors,
            rejected,
            active_streams,
            active_executions,
            serving,
            open_connections,
            connections_closed,
            node_seconds,
            breaker_state,
            breaker_failures,
            breaker_opened,
            breaker_source: Mutex::new(None),
            abandoned_calls,
            abandoned_source: Mutex::new(None),
        }
    }

    /// Where the breaker gauges come from (the server's pipeline cache), read at each render.
    pub fn set_breaker_source(
        &self,
        source: impl Fn() -> Vec<BreakerSample> + Send + Sync + 'static,
    ) {
        *self.breaker_source.lock().expect("source lock") = Some(Arc::new(source));
    }

    /// Where the abandoned-calls gauge comes from (the host's count), read at each render.
    pub fn set_abandoned_source(&self, source: fn() -> usize) {
        *self.abandoned_source.lock().expect("source lock") = Some(source);
    }

    fn refresh_breakers(&self) {
        let Some(source) = self.breaker_source.lock().expect("source lock").clone() else {
            return;
        };
        self.breaker_state.reset();
        self.breaker_failures.reset();
        self.breaker_opened.reset();
        for b in source() {
            let index = b.node_index.to_string();
            let labels = [b.pipeline.as_str(), index.as_str(), b.node_type.as_str()];
            self.breaker_state
                .with_label_values(&labels)
                .set(b.state as i64);
            self.breaker_failures
                .with_label_values(&labels)
                .set(b.consecutive_failures as i64);
            self.breaker_opened
                .with_label_values(&labels)
                .set(b.times_opened as i64);
        }
    }

    /// Records the per-node times of a finished run or stream.
    pub fn observe_run(&self, metrics: &PipelineMetrics) {
        for n in &metrics.nodes {
            if n.calls > 0 {
                self.node_seconds
                    .with_label_values(&[n.node_type.as_str()])
                    .observe(n.execution_time_us as f64 / 1e6);
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.refresh_breakers();
        if let Some(count) = *self.abandoned_source.lock().expect("source lock") {
            self.abandoned_calls.set(count() as i64);
        }
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

/// Serves `GET /metrics` and `GET /ready` until `shutdown` resolves. `/ready` answers 200
/// while the server takes calls and 503 from the moment it starts shutting down, for load
/// balancers whose health checks speak plain HTTP (haproxy cannot send a gRPC health request:
/// its check bodies are C strings, and a gRPC frame starts with zero bytes).
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    telemetry: Arc<Telemetry>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let ready = Arc::clone(&telemetry);
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let t = Arc::clone(&telemetry);
                async move { ([("content-type", "text/plain; version=0.0.4")], t.render()) }
            }),
        )
        .route(
            "/ready",
            get(move || {
                let serving = ready.serving.get() == 1;
                async move {
                    if serving {
                        (StatusCode::OK, "serving\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not serving\n")
                    }
                }
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds the metrics listener.
pub async fn bind_metrics(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
