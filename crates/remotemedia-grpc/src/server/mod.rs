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

mod admission;
mod auth;
mod conn;
mod layer;
mod serve;
mod stream;

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use remotemedia_core::error::ExecutorError;
use remotemedia_core::executor::SinkOutput;
use remotemedia_core::manifest::MANIFEST_VERSION;
use remotemedia_core::registry::NodeRegistry;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

pub use admission::Phase;
pub use auth::Auth;
pub use serve::{serve, termination_signal, ServeError, ServerParts};

use crate::cache::PipelineCache;
use crate::config::ServerConfig;
use crate::convert::{data_from_pb, data_to_pb, JsonRenderer};
use crate::pb;
use crate::pb::remote_media_server::RemoteMedia;
use crate::status::{invalid, to_status};
use crate::telemetry::Telemetry;

/// The target of the server's log events, from whichever of its files: this module's path, as
/// before the server was split into files (log filters and collectors match on it).
const LOG_TARGET: &str = module_path!();

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
    fn failed(&self, rpc: &'static str, status: Status) -> Status {
        let status = cut_message(status);
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

/// The longest status message sent, in bytes. Messages travel in HTTP/2 headers, whose limits
/// (16 KiB by default in tonic and grpcio) a message quoting a huge manifest value would pass:
/// the client then got RESOURCE_EXHAUSTED or a protocol error instead of the real status.
const MAX_STATUS_MESSAGE: usize = 4096;

/// `status` with its message cut to [`MAX_STATUS_MESSAGE`] bytes (at a character boundary,
/// saying how much was cut); code and metadata kept.
fn cut_message(status: Status) -> Status {
    let m = status.message();
    if m.len() <= MAX_STATUS_MESSAGE {
        return status;
    }
    let mut end = MAX_STATUS_MESSAGE;
    while !m.is_char_boundary(end) {
        end -= 1;
    }
    let message = format!(
        "{} ... ({} more bytes cut: status messages are limited to {MAX_STATUS_MESSAGE} bytes)",
        &m[..end],
        m.len() - end
    );
    let mut out = Status::new(status.code(), message);
    *out.metadata_mut() = status.metadata().clone();
    out
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
        let response = pb::ExecuteResponse {
            outputs,
            metrics_json: out.metrics.to_json(),
        };
        // The backstop of the headroom kept for ids and metrics: a clear limit error rather than
        // tonic's "encoded message length too large".
        let size = prost::Message::encoded_len(&response);
        let max = self.shared.config.limits.max_message_bytes;
        if size > max {
            let e = ExecutorError::LimitExceeded {
                node_id: None,
                node_type: None,
                limit: "max_output_bytes",
                max: max as u64,
                requested: size as u64,
                message: format!(
                    "the response would be {size} bytes with its sink ids and metrics, over \
                     the message limit of {max} bytes; send the audio as a stream of smaller \
                     chunks (the Stream RPC), or return fewer or smaller sink outputs, or raise \
                     the limit"
                ),
            };
            return Err(self.failed("Execute", run_failed("Execute", &rid, &e)));
        }
        Ok(Response::new(response))
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
