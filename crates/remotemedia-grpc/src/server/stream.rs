//! The `Stream` pump: reads a client's chunks into a session and sends its outputs, with the
//! idle timeout, the maximum duration, bounded buffering and the drain phase.

use std::time::Duration;

use remotemedia_core::executor::{Session, SinkOutput};
use tokio::sync::{mpsc, watch};
use tonic::{Status, Streaming};

use super::layer::{is_message_size_refusal, MESSAGE_SIZE};
use super::{run_failed, Phase, Service, LOG_TARGET};
use crate::convert::data_from_pb;
use crate::pb;
use crate::status::{invalid, to_status};

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
                    target: LOG_TARGET,
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

    pub(super) async fn run_stream(
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
                    // A client that goes away (cancel, disconnect, its deadline) while a node
                    // works is noticed at once: the call is dropped, which interrupts a Python
                    // node's call, and the stream's slot is freed (as for Execute). Waiting for
                    // the node to return kept the slot for good with a node that never does.
                    let outputs = tokio::select! {
                        r = session.push(input) => r.map_err(|e| run_failed("Stream", rid, &e))?,
                        () = tx.closed() => return Ok(()),
                    };
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
                    let outputs = tokio::select! {
                        r = session.finish() => r.map_err(|e| run_failed("Stream", rid, &e))?,
                        () = tx.closed() => return Ok(()),
                    };
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
