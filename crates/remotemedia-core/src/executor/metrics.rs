//! Per-node metrics (the seed's `PipelineMetrics`), filled in by the executor on every call,
//! and a Chrome trace-event export (opens in Perfetto / chrome://tracing).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::node::Runtime;

/// Most trace slices kept per session; later ones are counted, not stored, so a long stream
/// cannot grow memory without bound.
pub const MAX_TRACE_EVENTS: usize = 100_000;

/// Outcome of a node over a run or session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Every call succeeded.
    Success,
    /// A call failed (after any retries).
    Failed {
        /// The error.
        error: String,
    },
    /// The node was never called.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// Metrics of one node over a run or session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeMetrics {
    /// The node's id.
    pub node_id: String,
    /// The node's type.
    pub node_type: String,
    /// Where it ran ("rust", "python", "remote").
    pub runtime: Runtime,
    /// Time spent inside the node's calls (every attempt), in microseconds.
    pub execution_time_us: u64,
    /// The same in whole milliseconds (the seed's field).
    pub execution_time_ms: u64,
    /// Calls made (process and flush, every attempt).
    pub calls: u64,
    /// Longest single call, in microseconds.
    pub max_call_us: u64,
    /// Largest output the node produced in one call, in MiB (the memory its output holds).
    pub memory_mb: f64,
    /// Outcome.
    pub status: ExecutionStatus,
    /// Retries made (attempts beyond the first).
    pub retry_count: u32,
}

/// Metrics of a whole run or session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineMetrics {
    /// The pipeline's name.
    pub pipeline: String,
    /// Wall time from session start to end, in microseconds.
    pub total_time_us: u64,
    /// The same in whole milliseconds (the seed's field).
    pub total_time_ms: u64,
    /// Peak resident memory of the process in MiB (`getrusage` max RSS), when known.
    pub total_memory_mb: Option<f64>,
    /// Chunks pushed (a whole-input run is 1).
    pub chunks: u64,
    /// Trace slices dropped beyond [`MAX_TRACE_EVENTS`].
    pub trace_events_dropped: u64,
    /// Per node, in manifest order.
    pub nodes: Vec<NodeMetrics>,
}

impl PipelineMetrics {
    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("metrics serialize")
    }

    /// The metrics of one node.
    pub fn node(&self, node_id: &str) -> Option<&NodeMetrics> {
        self.nodes.iter().find(|n| n.node_id == node_id)
    }
}

/// What a call was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// `process(chunk)`.
    Process,
    /// `flush()`.
    Flush,
}

/// One node call, as measured by the executor.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// Node index.
    pub node: usize,
    /// Which method.
    pub kind: CallKind,
    /// When it started.
    pub start: Instant,
    /// How long it took.
    pub duration: Duration,
    /// Attempt number (1-based).
    pub attempt: u32,
    /// Error message, if it failed.
    pub error: Option<String>,
    /// Bytes of output it produced.
    pub output_bytes: usize,
}

#[derive(Debug, Clone)]
struct TraceSlice {
    node: usize,
    name: &'static str,
    start: Instant,
    duration: Duration,
    attempt: u32,
    error: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct NodeAcc {
    time: Duration,
    max_call: Duration,
    calls: u64,
    max_output: usize,
    retries: u32,
    error: Option<String>,
}

/// Accumulates call records into [`PipelineMetrics`] and trace slices.
#[derive(Debug, Clone)]
pub struct MetricsCollector {
    pipeline: String,
    nodes: Vec<(String, String, Runtime)>,
    acc: Vec<NodeAcc>,
    start: Instant,
    end: Option<Instant>,
    chunks: u64,
    trace: Vec<TraceSlice>,
    trace_capacity: usize,
    dropped: u64,
}

impl MetricsCollector {
    /// A collector for nodes `(id, type, runtime)`, starting now.
    pub fn new(pipeline: &str, nodes: Vec<(String, String, Runtime)>) -> Self {
        let n = nodes.len();
        Self {
            pipeline: pipeline.to_string(),
            nodes,
            acc: vec![NodeAcc::default(); n],
            start: Instant::now(),
            end: None,
            chunks: 0,
            trace: Vec::new(),
            trace_capacity: MAX_TRACE_EVENTS,
            dropped: 0,
        }
    }

    /// Keeps at most `slices` trace slices (later calls are counted in
    /// `trace_events_dropped`); 0 records no trace.
    pub fn with_trace_capacity(mut self, slices: usize) -> Self {
        self.set_trace_capacity(slices);
        self
    }

    /// In-place [`MetricsCollector::with_trace_capacity`]; slices already kept beyond `slices`
    /// are dropped (and counted).
    pub fn set_trace_capacity(&mut self, slices: usize) {
        self.trace_capacity = slices;
        if self.trace.len() > slices {
            self.dropped += (self.trace.len() - slices) as u64;
            self.trace.truncate(slices);
            self.trace.shrink_to_fit();
        }
    }

    /// Records one call.
    pub fn record(&mut self, r: CallRecord) {
        let acc = &mut self.acc[r.node];
        acc.time += r.duration;
        acc.max_call = acc.max_call.max(r.duration);
        acc.calls += 1;
        acc.max_output = acc.max_output.max(r.output_bytes);
        if r.attempt > 1 {
            acc.retries += 1;
        }
        if r.error.is_none() {
            // A later success after a retried failure clears the failure.
            acc.error = None;
        } else {
            acc.error.clone_from(&r.error);
        }
        if self.trace.len() < self.trace_capacity {
            self.trace.push(TraceSlice {
                node: r.node,
                name: match r.kind {
                    CallKind::Process => "process",
                    CallKind::Flush => "flush",
                },
                start: r.start,
                duration: r.duration,
                attempt: r.attempt,
                error: r.error,
            });
        } else {
            self.dropped += 1;
        }
    }

    /// Marks a node failed with the final error (e.g. circuit open, which makes no call).
    pub fn fail(&mut self, node: usize, error: String) {
        self.acc[node].error = Some(error);
    }

    /// Counts a pushed chunk.
    pub fn count_chunk(&mut self) {
        self.chunks += 1;
    }

    /// Marks the end of the session.
    pub fn finish(&mut self) {
        self.end.get_or_insert_with(Instant::now);
    }

    /// The metrics so far.
    pub fn snapshot(&self) -> PipelineMetrics {
        let total = self.end.unwrap_or_else(Instant::now) - self.start;
        let nodes = self
            .nodes
            .iter()
            .zip(&self.acc)
            .map(|((id, ty, runtime), acc)| NodeMetrics {
                node_id: id.clone(),
                node_type: ty.clone(),
                runtime: *runtime,
                execution_time_us: acc.time.as_micros() as u64,
                execution_time_ms: acc.time.as_millis() as u64,
                calls: acc.calls,
                max_call_us: acc.max_call.as_micros() as u64,
                memory_mb: acc.max_output as f64 / (1024.0 * 1024.0),
                status: match (&acc.error, acc.calls) {
                    (Some(e), _) => ExecutionStatus::Failed { error: e.clone() },
                    (None, 0) => ExecutionStatus::Skipped {
                        reason: "never called: no input reached it".to_string(),
                    },
                    (None, _) => ExecutionStatus::Success,
                },
                retry_count: acc.retries,
            })
            .collect();
        PipelineMetrics {
            pipeline: self.pipeline.clone(),
            total_time_us: total.as_micros() as u64,
            total_time_ms: total.as_millis() as u64,
            total_memory_mb: peak_rss_mb(),
            chunks: self.chunks,
            trace_events_dropped: self.dropped,
            nodes,
        }
    }

    /// A Chrome trace-event JSON document: one complete ("X") slice per node call, one track
    /// per node, timestamps in microseconds from the session start.
    pub fn chrome_trace(&self) -> Value {
        let pid = std::process::id();
        let mut events: Vec<Value> = vec![json!({
            "ph": "M", "name": "process_name", "pid": pid, "tid": 0,
            "args": {"name": format!("remotemedia: {}", self.pipeline)}
        })];
        for (i, (id, ty, _)) in self.nodes.iter().enumerate() {
            events.push(json!({
                "ph": "M", "name": "thread_name", "pid": pid, "tid": i + 1,
                "args": {"name": format!("{id} ({ty})")}
            }));
            events.push(json!({
                "ph": "M", "name": "thread_sort_index", "pid": pid, "tid": i + 1,
                "args": {"sort_index": i}
            }));
        }
        for s in &self.trace {
            let (id, ty, runtime) = &self.nodes[s.node];
            let mut args = json!({"node_type": ty, "runtime": runtime, "attempt": s.attempt});
            if let Some(e) = &s.error {
                args["error"] = Value::String(e.clone());
            }
            events.push(json!({
                "ph": "X",
                "name": format!("{id}.{}", s.name),
                "cat": ty,
                "pid": pid,
                "tid": s.node + 1,
                "ts": (s.start - self.start).as_secs_f64() * 1e6,
                "dur": s.duration.as_secs_f64() * 1e6,
                "args": args,
            }));
        }
        json!({"traceEvents": events, "displayTimeUnit": "ms"})
    }
}

/// Peak resident set size of this process in MiB (`getrusage`; one system call, no file
/// read, so it is cheap enough to take at the end of every run).
#[cfg(unix)]
pub fn peak_rss_mb() -> Option<f64> {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    // Linux reports kilobytes, macOS bytes.
    let kb = if cfg!(target_os = "macos") {
        usage.ru_maxrss as f64 / 1024.0
    } else {
        usage.ru_maxrss as f64
    };
    Some(kb / 1024.0)
}

/// Peak resident set size: not measured on this platform.
#[cfg(not(unix))]
pub fn peak_rss_mb() -> Option<f64> {
    None
}
