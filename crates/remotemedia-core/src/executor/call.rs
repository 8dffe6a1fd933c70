//! One node's calls in a step: the limits claimed before each call, and every call wrapped
//! in the node's circuit breaker, timeout, panic containment and retry policy.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures::FutureExt;
use smallvec::{smallvec, SmallVec};

use super::limits::{self, ResourceLimits};
use super::metrics::{CallKind, CallRecord};
use super::{NodeSlot, LOG_TARGET};
use crate::data::Data;
use crate::error::{panic_message, ExecutorError, NodeError, NodeErrorKind};
use crate::node::{data_bytes, Node};

/// Values one node emitted in a step (almost always one).
pub(super) type Values = SmallVec<[Data; 1]>;
/// Call records of one node in a step (one per call: process, flush, retries); the usual
/// single record is kept inline (no allocation per chunk).
pub(super) type Records = SmallVec<[CallRecord; 1]>;

/// What a node receives in one step.
pub(super) enum Events {
    /// Values to process one by one (single upstream, or the pipeline input).
    Each(Values),
    /// One fan-in call with each upstream's joined output (only upstreams that emitted).
    Fan(BTreeMap<String, Data>),
}

/// Runs one node for one step: each event through `process`, then `flush` at end of stream.
pub(super) async fn run_node(
    slot: &NodeSlot,
    events: Events,
    flush: bool,
    budget: &limits::Budget,
    limits: ResourceLimits,
) -> (Result<Values, ExecutorError>, Records) {
    let mut records = Records::new();
    // Free unless a cancelled step's task still holds it: no lock future to set up then.
    let mut node = match slot.node.try_lock() {
        Ok(node) => node,
        Err(_) => slot.node.lock().await,
    };
    let mut out = Values::new();
    let inputs: Values = match events {
        Events::Each(v) => v,
        Events::Fan(m) if m.is_empty() => Values::new(),
        Events::Fan(m) => smallvec![Data::Map(m)],
    };
    for data in inputs {
        // Before the node allocates: refuse a call over the limits (issue 9).
        let claimed = node.output_bytes(&data);
        let advice = node.holding_advice();
        if let Err(e) = budget.claim(
            &limits,
            &slot.id,
            &slot.node_type,
            claimed,
            advice.as_deref(),
        ) {
            return (Err(e), records);
        }
        // A sink whose output can outgrow its input says how big (a 48x upsample is refused
        // before it runs); any other output is counted as it arrives.
        let announced = match node.output_size(&data) {
            Some(n) if slot.sink => n,
            _ => 0,
        };
        if announced > 0 {
            if let Err(e) = budget.output(&limits, &slot.id, &slot.node_type, announced) {
                return (Err(e), records);
            }
        }
        match call(slot, &mut node, Some(data), &mut records).await {
            Ok(Some(d)) => {
                let extra = data_bytes(&d).saturating_sub(announced);
                if slot.sink && extra > 0 {
                    if let Err(e) = budget.output(&limits, &slot.id, &slot.node_type, extra) {
                        return (Err(e), records);
                    }
                }
                out.push(d)
            }
            Ok(None) => {}
            Err(e) => return (Err(e), records),
        }
    }
    if flush {
        match call(slot, &mut node, None, &mut records).await {
            Ok(Some(d)) => {
                if slot.sink {
                    let bytes = data_bytes(&d);
                    if let Err(e) = budget.output(&limits, &slot.id, &slot.node_type, bytes) {
                        return (Err(e), records);
                    }
                }
                out.push(d)
            }
            Ok(None) => {}
            Err(e) => return (Err(e), records),
        }
    }
    (Ok(out), records)
}

/// One logical call (`process(input)` or `flush()` when `input` is `None`) with breaker,
/// timeout, panic containment and retries.
async fn call(
    slot: &NodeSlot,
    node: &mut Box<dyn Node>,
    input: Option<Data>,
    records: &mut Records,
) -> Result<Option<Data>, ExecutorError> {
    let kind = if input.is_some() {
        CallKind::Process
    } else {
        CallKind::Flush
    };
    let mut input = input;
    let mut attempt = 0;
    loop {
        attempt += 1;
        // One clock read serves the breaker and the call's start (clock reads were a tenth of
        // a pass-through step's cost on a VM).
        let start = Instant::now();
        if let Err(rejected) = slot
            .breaker
            .lock()
            .expect("breaker lock")
            .try_acquire(start)
        {
            return Err(ExecutorError::CircuitOpen {
                node_id: slot.id.clone(),
                node_type: slot.node_type.clone(),
                consecutive_failures: rejected.failures,
                retry_after_ms: rejected.retry_after.as_millis() as u64,
            });
        }
        // The input is kept for a retry only while one may follow: on the last permitted
        // attempt the node gets it by value (a buffer nobody else holds can be worked on in
        // place, `SampleBuf::try_into_vec`).
        let fut = match &input {
            Some(d) if attempt < slot.retry.max_attempts => node.process(d.clone()),
            Some(_) => node.process(input.take().expect("checked")),
            None => node.flush(),
        };
        let guarded = AssertUnwindSafe(fut).catch_unwind();
        let outcome = match slot.timeout {
            // Boxed: a timer is large, and every call's future would carry its size (moved
            // at each step) though most nodes have no timeout.
            Some(limit) => Box::pin(tokio::time::timeout(limit, guarded))
                .await
                .map_err(|_| {
                    NodeError::new(
                        NodeErrorKind::Timeout,
                        format!("no result within {} ms", limit.as_millis()),
                    )
                    .with_retryable(slot.retry_timeouts)
                }),
            None => Ok(guarded.await),
        };
        let result: Result<Option<Data>, NodeError> = match outcome {
            Ok(Ok(r)) => r,
            Ok(Err(panic)) => Err(NodeError::new(
                NodeErrorKind::Panicked,
                panic_message(&*panic),
            )),
            Err(timeout) => Err(timeout),
        };
        let duration = start.elapsed();
        records.push(CallRecord {
            node: slot.index,
            kind,
            start,
            duration,
            attempt,
            error: result.as_ref().err().map(|e| e.to_string()),
            output_bytes: match &result {
                Ok(Some(Data::Audio(a))) => a.byte_len(),
                _ => 0,
            },
        });
        match result {
            Ok(v) => {
                slot.breaker.lock().expect("breaker lock").on_success();
                return Ok(v);
            }
            Err(e) => {
                if *e.kind() != NodeErrorKind::InvalidInput {
                    slot.breaker
                        .lock()
                        .expect("breaker lock")
                        .on_failure(Instant::now());
                }
                if e.is_retryable() && attempt < slot.retry.max_attempts {
                    tracing::debug!(
                        target: LOG_TARGET,
                        node = %slot.id, attempt, error = %e, "retrying"
                    );
                    Box::pin(tokio::time::sleep(slot.retry.delay_after(attempt))).await;
                    continue;
                }
                return Err(node_failure(slot, e, attempt));
            }
        }
    }
}

/// Wraps a node's final error into the executor error that names it.
pub(super) fn node_failure(slot: &NodeSlot, e: NodeError, attempts: u32) -> ExecutorError {
    let node_id = slot.id.clone();
    let node_type = slot.node_type.clone();
    match e.kind().clone() {
        NodeErrorKind::Host { traceback, .. } => ExecutorError::HostError {
            node_id,
            node_type,
            message: e.message().to_string(),
            traceback,
            attempts,
            source: e,
        },
        NodeErrorKind::Timeout => ExecutorError::Timeout {
            node_id,
            node_type,
            timeout_ms: slot.timeout.map(|t| t.as_millis() as u64).unwrap_or(0),
            attempts,
        },
        _ if e.is_retryable() && attempts > 1 => ExecutorError::RetriesExhausted {
            node_id,
            node_type,
            message: e.message().to_string(),
            attempts,
            max_attempts: slot.retry.max_attempts,
            source: e,
        },
        _ => ExecutorError::NodeError {
            node_id,
            node_type,
            attempts,
            source: e,
        },
    }
}
