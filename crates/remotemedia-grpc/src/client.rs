//! The Rust client: unary `execute`, streaming sessions, node listing, version.

use std::collections::BTreeMap;
use std::time::Duration;

use remotemedia_core::data::{AudioBuffer, Data};
use remotemedia_core::error::ExecutorError;
use remotemedia_core::executor::{SinkCollector, SinkOutput, StreamPosition, StreamSession};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status, Streaming};

use crate::convert::{data_from_pb, data_to_pb, default_renderer, JsonRenderer};
use crate::pb;
use crate::pb::remote_media_client::RemoteMediaClient;
use crate::status::{ERROR_CODE_KEY, ERROR_KIND_KEY, NODE_ID_KEY};

/// Audio inputs larger than this (bytes of samples) are sent by [`RemoteClient::execute`] as a
/// stream of chunks: below a server's default 4 MiB message limit with room for the manifest.
pub const UNARY_INPUT_LIMIT: usize = 3 << 20;

/// Chunk size of an input [`RemoteClient::execute`] streams.
const STREAM_CHUNK_BYTES: usize = 1 << 20;

/// A failed client call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error("cannot connect to {address}: {message}")]
    Connect {
        /// The address tried.
        address: String,
        /// Why.
        message: String,
    },
    /// The server answered with an error status.
    #[error("{message}")]
    Status {
        /// The gRPC code.
        code: Code,
        /// The server's message.
        message: String,
        /// The node concerned, when the server named one.
        node_id: Option<String>,
        /// The remotemedia error code (`ExecutorError::code`), when the server gave one.
        error_code: Option<String>,
        /// The node error's kind (`ExecutorError::kind`), when the server gave one.
        kind: Option<String>,
    },
    /// The server broke the protocol, or a value could not be sent.
    #[error("{0}")]
    Protocol(String),
}

impl From<ClientError> for ExecutorError {
    /// A remote failure in the core's terms: the server's own error code when it sent one
    /// (so a binding raises the same exception class as for a local run), `transport`
    /// otherwise.
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Status {
                code,
                message,
                node_id,
                error_code,
                kind,
            } => ExecutorError::Remote {
                code: error_code.unwrap_or_else(|| "transport".to_string()),
                status: format!("{code:?}"),
                message,
                node_id,
                kind,
            },
            ClientError::Connect { .. } => ExecutorError::Remote {
                code: "transport".to_string(),
                status: "Unavailable".to_string(),
                message: e.to_string(),
                node_id: None,
                kind: None,
            },
            ClientError::Protocol(message) => ExecutorError::Remote {
                code: "transport".to_string(),
                status: "Internal".to_string(),
                message,
                node_id: None,
                kind: None,
            },
        }
    }
}

impl From<Status> for ClientError {
    fn from(s: Status) -> Self {
        let get = |k: &str| {
            s.metadata()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let mut message = s.message().to_string();
        let code = if tonic_deadline(&s) {
            Code::DeadlineExceeded
        } else if transport_cancelled(&s) {
            message = format!(
                "the connection closed before the server answered: the server, or a proxy on \
                 the way, went away; the call can be retried ({message})"
            );
            Code::Unavailable
        } else {
            s.code()
        };
        // tonic's own words name no setting; say which limit it is and what to do.
        if matches!(code, Code::ResourceExhausted | Code::OutOfRange)
            && message.contains("message length too large")
        {
            message.push_str(
                "; the server refuses gRPC messages over its `limits.max_message_bytes` (server \
                 config, 4 MiB by default): stream the input (Pipeline.stream / open_stream; \
                 execute streams audio over 3 MiB itself) or raise that limit",
            );
        }
        ClientError::Status {
            code,
            message,
            node_id: get(NODE_ID_KEY),
            error_code: get(ERROR_CODE_KEY),
            kind: get(ERROR_KIND_KEY),
        }
    }
}

/// The result of [`RemoteClient::execute`].
#[derive(Debug, Clone)]
pub struct RemoteRun {
    /// Each sink's output, by node id.
    pub outputs: BTreeMap<String, Data>,
    /// The server's metrics (JSON text).
    pub metrics_json: String,
}

/// A connection to a remotemedia server.
#[derive(Clone)]
pub struct RemoteClient {
    client: RemoteMediaClient<Channel>,
    token: Option<String>,
    render: JsonRenderer,
    stream_above: usize,
}

/// Accepts `host:port`, `http://host:port` or `https://host:port`.
fn endpoint_uri(address: &str) -> String {
    if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    }
}

impl RemoteClient {
    /// Connects (eagerly, so a wrong address fails here with a clear error).
    pub async fn connect(address: &str, token: Option<String>) -> Result<Self, ClientError> {
        let connect_err = |message: String| ClientError::Connect {
            address: address.to_string(),
            message,
        };
        let channel = Endpoint::from_shared(endpoint_uri(address))
            .map_err(|e| connect_err(e.to_string()))?
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| connect_err(format!("{e}: is a remotemedia server listening there?")))?;
        Ok(Self {
            client: RemoteMediaClient::new(channel)
                .max_decoding_message_size(256 << 20)
                .max_encoding_message_size(256 << 20),
            token,
            render: default_renderer(),
            stream_above: UNARY_INPUT_LIMIT,
        })
    }

    /// Sends audio inputs of `execute` larger than `bytes` as a stream (default
    /// [`UNARY_INPUT_LIMIT`]; `usize::MAX` always sends one message).
    pub fn with_stream_above(mut self, bytes: usize) -> Self {
        self.stream_above = bytes;
        self
    }

    /// Uses `render` for host values sent to the server (e.g. Python objects as JSON).
    pub fn with_renderer(mut self, render: JsonRenderer) -> Self {
        self.render = render;
        self
    }

    fn request<T>(&self, msg: T, timeout: Option<Duration>) -> Request<T> {
        let mut req = Request::new(msg);
        if let Some(t) = &self.token {
            if let Ok(v) = MetadataValue::try_from(format!("Bearer {t}")) {
                req.metadata_mut().insert("authorization", v);
            }
        }
        if let Some(t) = timeout {
            req.set_timeout(t);
        }
        req
    }

    fn value(&self, d: &Data) -> Result<pb::Value, ClientError> {
        data_to_pb(d, &self.render).ok_or_else(|| {
            ClientError::Protocol(format!("{} cannot be sent to a server", d.describe()))
        })
    }

    /// Runs a whole input remotely. Audio larger than [`UNARY_INPUT_LIMIT`] bytes (see
    /// [`with_stream_above`](Self::with_stream_above)) goes as a
    /// stream of 1 MiB chunks instead of one message (a server refuses messages over its
    /// `limits.max_message_bytes`, 4 MiB by default); the streamed result is the same, by the
    /// streaming contract, and `timeout` covers the whole stream.
    pub async fn execute(
        &mut self,
        manifest: &str,
        input: &Data,
        timeout: Option<Duration>,
    ) -> Result<RemoteRun, ClientError> {
        if let Data::Audio(audio) = input {
            if audio.byte_len() > self.stream_above {
                let streamed = self.execute_streamed(manifest, audio);
                return match timeout {
                    None => streamed.await,
                    Some(t) => tokio::time::timeout(t, streamed).await.unwrap_or_else(|_| {
                        Err(ClientError::Status {
                            code: Code::DeadlineExceeded,
                            message: format!(
                                "no result within {:.3} s (the input, {:.1} MiB, went as a \
                                 stream of chunks)",
                                t.as_secs_f64(),
                                audio.byte_len() as f64 / (1 << 20) as f64,
                            ),
                            node_id: None,
                            error_code: Some("timeout".to_string()),
                            kind: None,
                        })
                    }),
                };
            }
        }
        let req = pb::ExecuteRequest {
            manifest: manifest.to_string(),
            input: Some(self.value(input)?),
        };
        let resp = self
            .client
            .execute(self.request(req, timeout))
            .await?
            .into_inner();
        let mut outputs = BTreeMap::new();
        for o in resp.outputs {
            let data =
                data_from_pb(o.value.as_ref(), "output.value").map_err(ClientError::Protocol)?;
            outputs.insert(o.node_id, data);
        }
        Ok(RemoteRun {
            outputs,
            metrics_json: resp.metrics_json,
        })
    }

    async fn execute_streamed(
        &mut self,
        manifest: &str,
        audio: &AudioBuffer,
    ) -> Result<RemoteRun, ClientError> {
        let mut stream = self.open_stream(manifest).await?;
        let frame_bytes = usize::from(audio.channels().max(1)) * audio.format().bytes_per_sample();
        let per_chunk = (STREAM_CHUNK_BYTES / frame_bytes).max(1);
        let mut sinks = SinkCollector::default();
        let mut start = 0;
        while start < audio.frames() {
            let end = (start + per_chunk).min(audio.frames());
            sinks.extend(
                stream
                    .push(&Data::Audio(audio.slice_frames(start, end)))
                    .await?,
            );
            start = end;
        }
        sinks.extend(stream.finish().await?);
        Ok(RemoteRun {
            outputs: sinks.finish(),
            metrics_json: stream.metrics_json.take().unwrap_or_default(),
        })
    }

    /// Opens a streaming session.
    pub async fn open_stream(&mut self, manifest: &str) -> Result<RemoteStream, ClientError> {
        let (tx, rx) = mpsc::channel(16);
        tx.send(pb::StreamRequest {
            msg: Some(pb::stream_request::Msg::Open(pb::StreamOpen {
                manifest: manifest.to_string(),
            })),
        })
        .await
        .map_err(|_| ClientError::Protocol("stream request channel closed".into()))?;
        let mut inbound = self
            .client
            .stream(self.request(ReceiverStream::new(rx), None))
            .await?
            .into_inner();
        let sink_ids = match inbound.message().await? {
            Some(pb::StreamResponse {
                msg: Some(pb::stream_response::Msg::Opened(o)),
            }) => o.sink_ids,
            other => {
                return Err(ClientError::Protocol(format!(
                    "expected `opened` as the first response, got {other:?}"
                )))
            }
        };
        Ok(RemoteStream {
            tx: Some(tx),
            inbound,
            seq: 0,
            sink_ids,
            metrics_json: None,
            render: self.render.clone(),
        })
    }

    /// The server's node types.
    pub async fn list_nodes(&mut self) -> Result<Vec<pb::NodeType>, ClientError> {
        Ok(self
            .client
            .list_nodes(self.request(pb::ListNodesRequest {}, None))
            .await?
            .into_inner()
            .nodes)
    }

    /// The server's versions.
    pub async fn get_version(&mut self) -> Result<pb::GetVersionResponse, ClientError> {
        Ok(self
            .client
            .get_version(self.request(pb::GetVersionRequest {}, None))
            .await?
            .into_inner())
    }
}

/// A streaming session on a server: `push` waits for the chunk's outputs (the server
/// acknowledges each chunk), so remote output arrives in the same steps as local output.
pub struct RemoteStream {
    tx: Option<mpsc::Sender<pb::StreamRequest>>,
    inbound: Streaming<pb::StreamResponse>,
    seq: u64,
    /// The remote pipeline's sink ids.
    pub sink_ids: Vec<String>,
    metrics_json: Option<String>,
    render: JsonRenderer,
}

/// A call hyper cancelled because its connection closed before the server answered ("operation
/// was canceled"; seen when a replica dies under load with the call in flight). Our servers never
/// answer CANCELLED (no status names our error metadata) and this client never cancels a call it
/// still waits for, so it is a lost transport, transient for the caller.
fn transport_cancelled(s: &Status) -> bool {
    s.code() == Code::Cancelled && !tonic_deadline(s) && s.metadata().get(ERROR_CODE_KEY).is_none()
}

/// tonic enforces the call's `grpc-timeout` itself and reports it as CANCELLED ("Timeout
/// expired"); to the caller it is a missed deadline.
fn tonic_deadline(s: &Status) -> bool {
    s.code() == Code::Cancelled && s.message() == "Timeout expired"
}

/// A stream cut off without a final status: the server (or a proxy on the way, which then
/// ends the stream cleanly, so tonic can only say Unknown) went away mid-stream, or hyper
/// cancelled the call as its connection closed. Our servers always end a stream with a status
/// and never answer Unknown or CANCELLED, so this is a lost transport, transient for the
/// caller: UNAVAILABLE, as for a refused call, with what to do about it.
fn stream_lost(s: Status) -> ClientError {
    let unknown = s.code() == Code::Unknown
        && s.metadata().get(ERROR_CODE_KEY).is_none()
        && s.metadata().get(NODE_ID_KEY).is_none();
    if !unknown && !transport_cancelled(&s) {
        return s.into();
    }
    ClientError::Status {
        code: Code::Unavailable,
        message: format!(
            "the stream was cut off: its server, or a proxy on the way, went away, and the \
             session state with it; open a new stream and send again from the start ({})",
            s.message()
        ),
        node_id: None,
        error_code: None,
        kind: None,
    }
}

impl RemoteStream {
    /// The next response, a cut-off stream reported as UNAVAILABLE.
    async fn next(&mut self) -> Result<Option<pb::StreamResponse>, ClientError> {
        self.inbound.message().await.map_err(stream_lost)
    }

    fn output(o: pb::Output) -> Result<SinkOutput, ClientError> {
        let data = data_from_pb(o.value.as_ref(), "output.value").map_err(ClientError::Protocol)?;
        let position = match (&data, o.start_frame) {
            (Data::Audio(a), Some(start)) => Some(StreamPosition {
                start_frame: start,
                frames: a.frames() as u64,
                sample_rate: a.sample_rate(),
            }),
            _ => None,
        };
        Ok(SinkOutput {
            node_id: o.node_id,
            data,
            position,
        })
    }

    async fn send(&mut self, msg: pb::stream_request::Msg) -> Result<(), ClientError> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| ClientError::Protocol("the stream is closed".into()))?;
        if tx.send(pb::StreamRequest { msg: Some(msg) }).await.is_err() {
            // The server ended the call; its status explains why.
            return Err(match self.next().await {
                Err(e) => e,
                Ok(_) => ClientError::Protocol("the server closed the stream".into()),
            });
        }
        Ok(())
    }

    /// Sends one chunk and returns the outputs it produced.
    pub async fn push(&mut self, input: &Data) -> Result<Vec<SinkOutput>, ClientError> {
        self.seq += 1;
        let value = data_to_pb(input, &self.render).ok_or_else(|| {
            ClientError::Protocol(format!("{} cannot be sent to a server", input.describe()))
        })?;
        let seq = self.seq;
        self.send(pb::stream_request::Msg::Chunk(pb::StreamChunk {
            seq,
            input: Some(value),
        }))
        .await?;
        let mut outputs = Vec::new();
        loop {
            match self.next().await?.and_then(|r| r.msg) {
                Some(pb::stream_response::Msg::Output(o)) => outputs.push(Self::output(o)?),
                Some(pb::stream_response::Msg::ChunkDone(d)) if d.seq == seq => return Ok(outputs),
                Some(other) => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected response {other:?}"
                    )))
                }
                None => return Err(ClientError::Protocol("the server ended the stream".into())),
            }
        }
    }

    /// Ends the stream: the server flushes every node; returns the tail.
    pub async fn finish(&mut self) -> Result<Vec<SinkOutput>, ClientError> {
        self.send(pb::stream_request::Msg::Close(pb::StreamClose {}))
            .await?;
        self.tx = None;
        let mut outputs = Vec::new();
        loop {
            match self.next().await?.and_then(|r| r.msg) {
                Some(pb::stream_response::Msg::Output(o)) => outputs.push(Self::output(o)?),
                Some(pb::stream_response::Msg::Closed(c)) => {
                    self.metrics_json = Some(c.metrics_json);
                    return Ok(outputs);
                }
                Some(other) => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected response {other:?}"
                    )))
                }
                None => return Err(ClientError::Protocol("the server ended the stream".into())),
            }
        }
    }

    /// Ends the stream without flushing: the call is cancelled and the server releases the
    /// session.
    pub fn abort(self) {
        drop(self);
    }

    /// The server's metrics, after `finish`.
    pub fn metrics_json(&self) -> Option<&str> {
        self.metrics_json.as_deref()
    }
}

#[async_trait::async_trait]
impl StreamSession for RemoteStream {
    async fn push(&mut self, chunk: Data) -> Result<Vec<SinkOutput>, ExecutorError> {
        RemoteStream::push(self, &chunk).await.map_err(Into::into)
    }
    async fn finish(&mut self) -> Result<Vec<SinkOutput>, ExecutorError> {
        RemoteStream::finish(self).await.map_err(Into::into)
    }
    async fn abort(&mut self) {
        // Closing our side ends the call; the server releases the session.
        self.tx = None;
    }
    fn metrics_json(&self) -> Option<String> {
        self.metrics_json.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_cancelled_by_a_closed_connection_is_unavailable() {
        let code_of = |e: ClientError| match e {
            ClientError::Status { code, message, .. } => (code, message),
            other => panic!("{other}"),
        };
        // hyper's words when the connection closes under a call in flight.
        let (code, message) = code_of(Status::cancelled("operation was canceled").into());
        assert_eq!(code, Code::Unavailable);
        assert!(message.contains("can be retried"), "{message}");
        assert!(message.contains("operation was canceled"), "{message}");
        let (code, message) = code_of(stream_lost(Status::cancelled("operation was canceled")));
        assert_eq!(code, Code::Unavailable);
        assert!(message.contains("open a new stream"), "{message}");
        // tonic's own deadline is a missed deadline, in a stream too.
        let (code, _) = code_of(Status::cancelled("Timeout expired").into());
        assert_eq!(code, Code::DeadlineExceeded);
        let (code, _) = code_of(stream_lost(Status::cancelled("Timeout expired")));
        assert_eq!(code, Code::DeadlineExceeded);
        // A status carrying our error metadata is the server's own answer: kept.
        let mut answered = Status::cancelled("stopped");
        answered
            .metadata_mut()
            .insert(ERROR_CODE_KEY, "cancelled".parse().unwrap());
        let (code, _) = code_of(answered.into());
        assert_eq!(code, Code::Cancelled);
    }

    #[test]
    fn a_stream_cut_off_without_status_is_unavailable_and_server_errors_are_kept() {
        let cut = Status::unknown("protocol error: missing grpc-status trailer");
        match stream_lost(cut) {
            ClientError::Status { code, message, .. } => {
                assert_eq!(code, Code::Unavailable);
                assert!(message.contains("open a new stream"), "{message}");
                assert!(message.contains("missing grpc-status trailer"), "{message}");
            }
            other => panic!("{other}"),
        }
        let mut node_failed = Status::unknown("boom");
        node_failed
            .metadata_mut()
            .insert(ERROR_CODE_KEY, "node_failed".parse().unwrap());
        let kept = stream_lost(node_failed);
        assert!(matches!(
            kept,
            ClientError::Status {
                code: Code::Unknown,
                ..
            }
        ));
        let invalid = stream_lost(Status::invalid_argument("bad"));
        assert!(matches!(
            invalid,
            ClientError::Status {
                code: Code::InvalidArgument,
                ..
            }
        ));
    }
}
