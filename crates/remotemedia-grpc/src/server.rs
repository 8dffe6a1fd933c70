//! The gRPC server: `Execute`, `Stream`, `ListNodes`, `GetVersion`, plus `grpc.health.v1`
//! and (optionally) server reflection.
//!
//! What keeps it standing on a network: bearer-token auth checked before a request body is
//! read; a message size limit; a deadline on `Execute`; a concurrency limit that refuses new
//! calls at once (RESOURCE_EXHAUSTED) without touching running ones; bounded per-stream
//! buffering (a stream that cannot send stops reading, and HTTP/2 flow control pushes back on
//! the client); an idle timeout on streams; every pipeline run in its own task, so a panicking
//! node fails its call only; and a graceful shutdown (health NOT_SERVING, new calls taken for
//! `shutdown_grace_ms` more so a load balancer can take the replica out, then refused; open
//! streams get `drain_ms` to finish, then are closed).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use remotemedia_core::error::ExecutorError;
use remotemedia_core::executor::{Session, SinkOutput};
use remotemedia_core::manifest::MANIFEST_VERSION;
use remotemedia_core::registry::NodeRegistry;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::Interceptor;
use tonic::{Request, Response, Status, Streaming};

use crate::cache::PipelineCache;
use crate::config::ServerConfig;
use crate::convert::{data_from_pb, data_to_pb, JsonRenderer};
use crate::pb;
use crate::pb::remote_media_server::{RemoteMedia, RemoteMediaServer};
use crate::status::{invalid, to_status};
use crate::telemetry::Telemetry;

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Taking calls.
    Serving,
    /// Shutting down: new calls are refused; open streams may finish.
    Draining,
    /// Open streams are being closed.
    Closing,
}

struct Shared {
    config: ServerConfig,
    registry: Arc<NodeRegistry>,
    render: JsonRenderer,
    telemetry: Arc<Telemetry>,
    permits: Arc<Semaphore>,
    phase: watch::Receiver<Phase>,
    pipelines: Arc<PipelineCache>,
}

/// The `RemoteMedia` service.
#[derive(Clone)]
pub struct Service {
    shared: Arc<Shared>,
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<pb::StreamResponse, Status>> + Send>>;

impl Service {
    fn admit(&self, rpc: &'static str) -> Result<OwnedSemaphorePermit, Status> {
        let t = &self.shared.telemetry;
        t.requests.with_label_values(&[rpc]).inc();
        if *self.shared.phase.borrow() != Phase::Serving {
            t.rejected.with_label_values(&["draining"]).inc();
            return Err(Status::unavailable(
                "the server is shutting down; retry on another replica",
            ));
        }
        Arc::clone(&self.shared.permits)
            .try_acquire_owned()
            .map_err(|_| {
                t.rejected.with_label_values(&["overloaded"]).inc();
                Status::resource_exhausted(format!(
                    "the server is running its limit of {} calls; retry later",
                    self.shared.config.limits.max_concurrent
                ))
            })
    }

    fn failed(&self, rpc: &'static str, status: Status) -> Status {
        let code = status
            .metadata()
            .get(crate::status::ERROR_CODE_KEY)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| format!("{:?}", status.code()).to_lowercase());
        // Error codes come from a fixed vocabulary (ExecutorError::code or gRPC code names).
        self.shared
            .telemetry
            .errors
            .with_label_values(&[rpc, code.as_str()])
            .inc();
        status
    }

    fn output(&self, o: SinkOutput) -> Result<pb::Output, Status> {
        let value = data_to_pb(&o.data, &self.shared.render).ok_or_else(|| {
            Status::internal(format!(
                "sink '{}' produced {}, which has no wire form (audio or JSON)",
                o.node_id,
                o.data.describe()
            ))
        })?;
        Ok(pb::Output {
            node_id: o.node_id,
            value: Some(value),
            start_frame: o.position.map(|p| p.start_frame),
        })
    }
}

/// Metadata key with the request's id: the client's own when it sent a usable one (1 to 128
/// characters among letters, digits and `-_.:`), else one made by the server. Error statuses
/// carry it back, and the server's log lines about the request name it.
pub const REQUEST_ID_KEY: &str = "x-request-id";

/// The id of a request (see [`REQUEST_ID_KEY`]).
fn request_id<T>(req: &Request<T>) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let given = req
        .metadata()
        .get(REQUEST_ID_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        });
    match given {
        Some(v) => v.to_string(),
        None => format!(
            "rm-{:x}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ),
    }
}

/// A pipeline's failure as a status carrying the request id, logged: a Python (host) node's
/// exception at warn with its traceback, other failures at info.
fn run_failed(rpc: &'static str, request_id: &str, e: &ExecutorError) -> Status {
    match e {
        ExecutorError::HostError {
            node_id,
            node_type,
            message,
            traceback,
            source,
            ..
        } => {
            let exc_type = match source.kind() {
                remotemedia_core::error::NodeErrorKind::Host { exc_type, .. } => exc_type.as_str(),
                _ => "exception",
            };
            tracing::warn!(
                request_id = %request_id,
                rpc = %rpc,
                node_id = %node_id,
                node_type = %node_type,
                "request {request_id}: node '{node_id}' ({node_type}) raised {exc_type}: \
                 {message}\n{}",
                traceback.as_deref().unwrap_or("(no traceback)").trim_end()
            );
        }
        other => tracing::info!(
            request_id = %request_id,
            rpc = %rpc,
            error = %other,
            "request {request_id}: the pipeline failed"
        ),
    }
    with_request_id(to_status(e), request_id)
}

fn with_request_id(mut status: Status, request_id: &str) -> Status {
    if let Ok(v) = tonic::metadata::MetadataValue::try_from(request_id) {
        status.metadata_mut().insert(REQUEST_ID_KEY, v);
    }
    status
}

/// The client's deadline from the `grpc-timeout` header ("100m", "5S", ...).
fn client_deadline<T>(req: &Request<T>) -> Option<Duration> {
    let v = req.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (num, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A running `Execute`: counted in `active_executions`, aborted when dropped.
struct RunningExecution {
    abort: tokio::task::AbortHandle,
    telemetry: Arc<Telemetry>,
}

impl RunningExecution {
    fn new(abort: tokio::task::AbortHandle, telemetry: Arc<Telemetry>) -> Self {
        telemetry.active_executions.inc();
        Self { abort, telemetry }
    }
}

impl Drop for RunningExecution {
    fn drop(&mut self) {
        self.abort.abort();
        self.telemetry.active_executions.dec();
    }
}

fn join_error(e: tokio::task::JoinError) -> Status {
    Status::internal(format!("the pipeline task ended abnormally: {e}"))
}

#[tonic::async_trait]
impl RemoteMedia for Service {
    async fn execute(
        &self,
        request: Request<pb::ExecuteRequest>,
    ) -> Result<Response<pb::ExecuteResponse>, Status> {
        let _permit = self.admit("Execute")?;
        let rid = request_id(&request);
        let deadline = client_deadline(&request).map_or(self.shared.config.deadline(), |d| {
            d.min(self.shared.config.deadline())
        });
        let req = request.into_inner();
        let pipeline = self
            .shared
            .pipelines
            .get(&req.manifest, &self.shared.registry)
            .map_err(|e| self.failed("Execute", to_status(&e)))?;
        let input = data_from_pb(req.input.as_ref(), "input")
            .map_err(|m| self.failed("Execute", invalid(m)))?;
        let t = &self.shared.telemetry;
        // Its own task: a panic or a deadline ends this call only. The guard aborts the task
        // and counts it finished even when this handler is dropped (client cancelled).
        let task = tokio::spawn(async move { pipeline.run(input).await });
        let guard = RunningExecution::new(task.abort_handle(), Arc::clone(t));
        let result = tokio::time::timeout(deadline, task).await;
        drop(guard);
        let out = match result {
            Err(_) => {
                return Err(self.failed(
                    "Execute",
                    Status::deadline_exceeded(format!(
                        "the pipeline did not finish within {} ms",
                        deadline.as_millis()
                    )),
                ));
            }
            Ok(joined) => joined
                .map_err(join_error)
                .map_err(|s| self.failed("Execute", s))?
                .map_err(|e| self.failed("Execute", run_failed("Execute", &rid, &e)))?,
        };
        t.observe_run(&out.metrics);
        let mut outputs = Vec::with_capacity(out.outputs.len());
        for (node_id, data) in out.outputs {
            outputs.push(self.output(SinkOutput {
                node_id,
                data,
                position: None,
            })?);
        }
        Ok(Response::new(pb::ExecuteResponse {
            outputs,
            metrics_json: out.metrics.to_json(),
        }))
    }

    type StreamStream = ResponseStream;

    async fn stream(
        &self,
        request: Request<Streaming<pb::StreamRequest>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let permit = self.admit("Stream")?;
        let rid = request_id(&request);
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(self.shared.config.limits.stream_buffer);
        // The final status travels apart from the (bounded) response buffer: a stream that
        // failed because its client stopped reading must still end with that error once the
        // client reads what is buffered, and the session must not wait for room to say so.
        let (final_tx, final_rx) = tokio::sync::oneshot::channel::<Status>();
        let service = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let telemetry = Arc::clone(&service.shared.telemetry);
            telemetry.active_streams.inc();
            let result = service.run_stream(inbound, &tx, &rid).await;
            drop(tx);
            if let Err(status) = result {
                let _ = final_tx.send(service.failed("Stream", status));
            }
            telemetry.active_streams.dec();
        });
        let ending =
            futures::stream::once(final_rx).filter_map(|r| std::future::ready(r.ok().map(Err)));
        Ok(Response::new(Box::pin(
            ReceiverStream::new(rx).chain(ending),
        )))
    }

    async fn list_nodes(
        &self,
        _: Request<pb::ListNodesRequest>,
    ) -> Result<Response<pb::ListNodesResponse>, Status> {
        self.shared
            .telemetry
            .requests
            .with_label_values(&["ListNodes"])
            .inc();
        let nodes = self
            .shared
            .registry
            .infos()
            .map(|i| pb::NodeType {
                node_type: i.node_type.clone(),
                description: i.description.clone(),
                runtime: serde_json::to_value(i.runtime)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                params_schema_json: i.params_schema.to_string(),
            })
            .collect();
        Ok(Response::new(pb::ListNodesResponse { nodes }))
    }

    async fn get_version(
        &self,
        _: Request<pb::GetVersionRequest>,
    ) -> Result<Response<pb::GetVersionResponse>, Status> {
        Ok(Response::new(pb::GetVersionResponse {
            server_version: env!("CARGO_PKG_VERSION").to_string(),
            manifest_version: MANIFEST_VERSION.to_string(),
            api_version: "remotemedia.v1".to_string(),
        }))
    }
}

type Tx = mpsc::Sender<Result<pb::StreamResponse, Status>>;

fn response(msg: pb::stream_response::Msg) -> Result<pb::StreamResponse, Status> {
    Ok(pb::StreamResponse { msg: Some(msg) })
}

impl Service {
    /// Sends a response; `Gone` when the client has gone, `NotReading` when it has not taken
    /// a response for `stream_idle_timeout_ms` while the stream's buffer is full (a client
    /// that stops reading would otherwise hold its session, and its slot, for as long as its
    /// connection lives).
    async fn send(&self, tx: &Tx, msg: pb::stream_response::Msg) -> Result<(), Unsent> {
        let idle = Duration::from_millis(self.shared.config.limits.stream_idle_timeout_ms);
        match tokio::time::timeout(idle, tx.send(response(msg))).await {
            Ok(sent) => sent.map_err(|_| Unsent::Gone),
            Err(_) => {
                tracing::warn!(
                    "a stream client took no response for {} ms; its session was closed \
                     (stream_idle_timeout_ms)",
                    idle.as_millis()
                );
                self.shared
                    .telemetry
                    .errors
                    .with_label_values(&["Stream", "client_not_reading"])
                    .inc();
                Err(Unsent::NotReading(idle.as_millis() as u64))
            }
        }
    }

    async fn send_outputs(&self, tx: &Tx, outputs: Vec<SinkOutput>) -> Result<(), Unsent> {
        for o in outputs {
            let msg = self.output(o).map_err(Unsent::Failed)?;
            self.send(tx, pb::stream_response::Msg::Output(msg)).await?;
        }
        Ok(())
    }

    /// Waits for the next client message within the idle timeout; `None` when the client
    /// ended its side.
    async fn next(
        &self,
        inbound: &mut Streaming<pb::StreamRequest>,
        phase: &mut watch::Receiver<Phase>,
        ends: tokio::time::Instant,
    ) -> Result<Option<pb::StreamRequest>, Status> {
        let idle = Duration::from_millis(self.shared.config.limits.stream_idle_timeout_ms);
        tokio::select! {
            _ = tokio::time::sleep_until(ends) => Err(Status::deadline_exceeded(format!(
                "the stream reached its maximum duration of {} ms (limits.max_stream_duration_ms \
                 in the server config); open a new stream to go on",
                self.shared.config.limits.max_stream_duration_ms
            ))),
            msg = tokio::time::timeout(idle, inbound.message()) => match msg {
                Err(_) => Err(Status::deadline_exceeded(format!(
                    "no message for {} ms; the stream was closed (stream_idle_timeout_ms)",
                    idle.as_millis()
                ))),
                Ok(Err(status)) => {
                    if is_message_size_refusal(&status) {
                        self.shared
                            .telemetry
                            .rejected
                            .with_label_values(&[MESSAGE_SIZE])
                            .inc();
                    }
                    Err(status)
                }
                Ok(r) => r,
            },
            _ = phase.wait_for(|p| *p == Phase::Closing) => {
                Err(Status::unavailable("the server is shutting down; the stream was closed"))
            }
        }
    }

    async fn run_stream(
        &self,
        mut inbound: Streaming<pb::StreamRequest>,
        tx: &Tx,
        rid: &str,
    ) -> Result<(), Status> {
        use pb::stream_request::Msg;
        let mut phase = self.shared.phase.clone();
        let ends = tokio::time::Instant::now()
            + Duration::from_millis(self.shared.config.limits.max_stream_duration_ms);
        let open = match self.next(&mut inbound, &mut phase, ends).await? {
            Some(pb::StreamRequest {
                msg: Some(Msg::Open(open)),
            }) => open,
            Some(_) => return Err(invalid("the first message of a stream must be `open`")),
            None => return Ok(()),
        };
        let pipeline = self
            .shared
            .pipelines
            .get(&open.manifest, &self.shared.registry)
            .map_err(|e| to_status(&e))?;
        let mut session = pipeline.session().map_err(|e| to_status(&e))?;
        let sink_ids = pipeline.sink_ids().into_iter().map(String::from).collect();
        let opened = self
            .send(
                tx,
                pb::stream_response::Msg::Opened(pb::StreamOpened { sink_ids }),
            )
            .await;
        if let Err(unsent) = opened {
            session.abort().await;
            return unsent.into_result(&Progress::default());
        }
        let mut progress = Progress::default();
        let outcome = self
            .pump(
                &mut inbound,
                &mut phase,
                ends,
                tx,
                &mut session,
                &mut progress,
                rid,
            )
            .await;
        if session.is_open() {
            session.abort().await;
        }
        self.shared.telemetry.observe_run(&session.metrics());
        outcome
    }

    /// Moves chunks through the session until the client closes or goes away.
    // The stream's state, passed apart so each piece is borrowed as it must be.
    #[allow(clippy::too_many_arguments)]
    async fn pump(
        &self,
        inbound: &mut Streaming<pb::StreamRequest>,
        phase: &mut watch::Receiver<Phase>,
        ends: tokio::time::Instant,
        tx: &Tx,
        session: &mut Session,
        progress: &mut Progress,
        rid: &str,
    ) -> Result<(), Status> {
        use pb::stream_request::Msg;
        loop {
            let msg = match self.next(inbound, phase, ends).await {
                Ok(m) => m,
                // The client cancelled or the connection broke: nobody to answer.
                Err(s)
                    if s.code() == tonic::Code::Cancelled || s.code() == tonic::Code::Unknown =>
                {
                    return Ok(())
                }
                Err(s) => return Err(progress.annotate(s)),
            };
            match msg.and_then(|m| m.msg) {
                Some(Msg::Chunk(chunk)) => {
                    let input =
                        data_from_pb(chunk.input.as_ref(), "chunk.input").map_err(invalid)?;
                    let outputs = session
                        .push(input)
                        .await
                        .map_err(|e| run_failed("Stream", rid, &e))?;
                    progress.processed += 1;
                    progress.last_seq = Some(chunk.seq);
                    let sent = match self.send_outputs(tx, outputs).await {
                        Ok(()) => {
                            let done = pb::ChunkDone { seq: chunk.seq };
                            self.send(tx, pb::stream_response::Msg::ChunkDone(done))
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    if let Err(unsent) = sent {
                        return unsent.into_result(progress);
                    }
                }
                Some(Msg::Close(_)) | None => {
                    let outputs = session
                        .finish()
                        .await
                        .map_err(|e| run_failed("Stream", rid, &e))?;
                    let sent = match self.send_outputs(tx, outputs).await {
                        Ok(()) => {
                            let metrics_json = session.metrics().to_json();
                            let closed = pb::StreamClosed { metrics_json };
                            self.send(tx, pb::stream_response::Msg::Closed(closed))
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    if let Err(unsent) = sent {
                        return unsent.into_result(progress);
                    }
                    return Ok(());
                }
                Some(Msg::Open(_)) => return Err(invalid("a stream can be opened only once")),
            }
        }
    }
}

/// Why a stream response was not sent.
enum Unsent {
    /// The client went away: nobody to tell.
    Gone,
    /// The client took no response for `stream_idle_timeout_ms` (this many ms).
    NotReading(u64),
    /// The response could not be built.
    Failed(Status),
}

impl Unsent {
    fn into_result(self, progress: &Progress) -> Result<(), Status> {
        match self {
            Unsent::Gone => Ok(()),
            Unsent::Failed(s) => Err(s),
            Unsent::NotReading(ms) => Err(progress.annotate(Status::deadline_exceeded(format!(
                "the client took no response for {ms} ms (limits.stream_idle_timeout_ms) while \
                 the server's buffer of responses (limits.stream_buffer) was full, so the \
                 stream was closed; read responses while sending chunks"
            )))),
        }
    }
}

/// What a stream has done, for the status that ends it.
#[derive(Debug, Default)]
struct Progress {
    /// Chunks pushed through the pipeline.
    processed: u64,
    /// The last of them.
    last_seq: Option<u64>,
}

impl Progress {
    /// Adds how far the stream got: chunks sent after these were not processed.
    fn annotate(&self, s: Status) -> Status {
        let how_far = match self.last_seq {
            Some(seq) => format!(
                "{} chunks were processed, the last with seq {seq}; chunks sent after it were \
                 not",
                self.processed
            ),
            None => "no chunk was processed".to_string(),
        };
        let mut out = Status::new(s.code(), format!("{} ({how_far})", s.message()));
        *out.metadata_mut() = s.metadata().clone();
        out
    }
}

/// Checks `authorization: Bearer <token>` before a request body is read.
#[derive(Clone)]
pub struct Auth {
    tokens: Arc<Vec<String>>,
    telemetry: Arc<Telemetry>,
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Interceptor for Auth {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        if self.tokens.is_empty() {
            return Ok(req);
        }
        let presented = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            Some(p)
                if self
                    .tokens
                    .iter()
                    .any(|t| constant_time_eq(t.as_bytes(), p.as_bytes())) =>
            {
                Ok(req)
            }
            _ => {
                self.telemetry
                    .rejected
                    .with_label_values(&["unauthenticated"])
                    .inc();
                Err(Status::unauthenticated(
                    "missing or invalid bearer token; send the metadata `authorization: Bearer <token>`",
                ))
            }
        }
    }
}

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
    let pipelines = Arc::new(PipelineCache::new(
        limits.pipeline_cache_size,
        config.resource_limits(),
    ));
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
        tracing::info!("shutting down: draining open streams for up to {drain:?}");
        health.set_not_serving::<RemoteMediaServer<Service>>().await;
        health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        telemetry.serving.set(0);
        // Still Serving: a balancer that has not yet seen NOT_SERVING keeps sending new calls
        // here for a health interval or two, and they should not fail.
        if !grace.is_zero() {
            tracing::info!("taking new calls for {grace:?} more while balancers notice");
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
    let server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_optional_service(reflection)
        .add_optional_service(reflection_alpha)
        .add_service(CountRefused {
            inner: tonic::service::interceptor::InterceptedService::new(service, auth),
            telemetry: Arc::clone(&shared.telemetry),
        })
        .serve_with_incoming_shutdown(
            // Small chunks must not wait for Nagle's algorithm.
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
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
            tracing::warn!("connections still open after the drain period were closed");
        }
    }
    Ok(())
}

/// `remotemedia_rejected_total` reason of a message over `limits.max_message_bytes`.
const MESSAGE_SIZE: &str = "message_size";

/// Whether `status` is tonic's refusal of a message over the decoding limit.
fn is_message_size_refusal(status: &Status) -> bool {
    status.code() == tonic::Code::OutOfRange
        && status.message().contains("message length too large")
}

/// Counts the calls tonic refuses before our handler runs because their request message is
/// over `limits.max_message_bytes` (an `Execute` with too large an input): their status is
/// in the response headers (a trailers-only response). Streams' refusals are counted where
/// the handler reads the message.
#[derive(Clone)]
struct CountRefused<S> {
    inner: S,
    telemetry: Arc<Telemetry>,
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for CountRefused<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, R, B> tonic::codegen::Service<R> for CountRefused<S>
where
    S: tonic::codegen::Service<R, Response = tonic::codegen::http::Response<B>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let response = self.inner.call(request);
        let telemetry = Arc::clone(&self.telemetry);
        Box::pin(async move {
            let response = response.await?;
            if Status::from_header_map(response.headers())
                .is_some_and(|s| is_message_size_refusal(&s))
            {
                telemetry.rejected.with_label_values(&[MESSAGE_SIZE]).inc();
            }
            Ok(response)
        })
    }
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
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only");
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
