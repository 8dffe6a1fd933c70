//! The executor: a validated manifest becomes a [`Pipeline`] of live nodes; a [`Session`]
//! pushes chunks through it; [`Pipeline::run`] is a session with one chunk plus the flush.
//!
//! Each pushed chunk is one *step*: nodes run in dependency order, a node starts as soon as
//! all its upstream nodes are done with the step, and nodes that are ready at the same time
//! (independent branches) run concurrently on the tokio runtime. A lone ready node runs inline
//! on the caller's task, so a linear pipeline pays no task-spawn cost.
//!
//! Every node call goes through the node's circuit breaker, its timeout, and its retry policy,
//! and is measured into the session's metrics.

mod circuit_breaker;
mod limits;
mod metrics;
mod retry;

use std::collections::{BTreeMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use smallvec::{smallvec, SmallVec};

pub use circuit_breaker::{BreakerConfig, BreakerState, CircuitBreaker, Rejected};
pub use limits::ResourceLimits;
pub use metrics::{
    peak_rss_mb, CallKind, CallRecord, ExecutionStatus, MetricsCollector, NodeMetrics,
    PipelineMetrics, MAX_TRACE_EVENTS,
};
pub use retry::RetryPolicy;

use crate::data::Data;
use crate::error::{panic_message, ExecutorError, NodeError, NodeErrorKind};
use crate::graph::PipelineGraph;
use crate::manifest::{self, Manifest, ManifestError, ManifestIssue};
use crate::node::{data_bytes, Node, Runtime};
use crate::registry::NodeRegistry;

/// A live node with its policies.
struct NodeSlot {
    index: usize,
    id: String,
    node_type: String,
    runtime: Runtime,
    node: tokio::sync::Mutex<Box<dyn Node>>,
    retry: RetryPolicy,
    /// Whether a timed-out call is retried: only when the manifest gives `retry` explicitly
    /// (a call that hung once is likely to hang again; the default policy fails at once).
    retry_timeouts: bool,
    timeout: Option<Duration>,
    /// Shared by every fork of the pipeline.
    breaker: Arc<Mutex<CircuitBreaker>>,
    /// Whether its outputs are the pipeline's (counted against `max_output_bytes`).
    sink: bool,
}

/// What every fork of a pipeline shares: the validated manifest and graph, the registry that
/// builds its nodes, the circuit breakers, and the last metrics.
struct Shared {
    name: String,
    manifest: Manifest,
    graph: PipelineGraph,
    registry: NodeRegistry,
    breakers: Vec<Arc<Mutex<CircuitBreaker>>>,
    sinks: Vec<usize>,
    last_metrics: Mutex<Option<MetricsCollector>>,
    limits: Mutex<ResourceLimits>,
}

struct Inner {
    shared: Arc<Shared>,
    slots: Vec<Arc<NodeSlot>>,
    busy: AtomicBool,
    /// A session ended without `finish`/`abort`: nodes must be stopped before the next start.
    dirty: AtomicBool,
}

impl std::ops::Deref for Inner {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// A built pipeline: validated graph plus live node instances. Cheap to clone (shared).
///
/// Node state lives for one session at a time; [`Pipeline::fork`] builds another set of node
/// instances for concurrent runs. Circuit breakers live as long as the pipeline and are shared
/// by its forks, so a node that keeps failing stays open across runs.
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

/// Gathers sink outputs over a run and joins each sink's values (see [`Data::join`]): the one
/// place a stream's outputs become a whole-input result (runs, the CLI, remote nodes).
#[derive(Debug, Default)]
pub struct SinkCollector {
    by_sink: BTreeMap<String, Vec<Data>>,
}

impl SinkCollector {
    /// Adds outputs in the order they were emitted.
    pub fn extend(&mut self, outputs: impl IntoIterator<Item = SinkOutput>) {
        for o in outputs {
            self.by_sink.entry(o.node_id).or_default().push(o.data);
        }
    }

    /// Each sink's joined output; a sink that emitted nothing is absent.
    pub fn finish(self) -> BTreeMap<String, Data> {
        self.by_sink
            .into_iter()
            .filter_map(|(id, values)| Data::join(values).map(|d| (id, d)))
            .collect()
    }
}

/// A stream through a pipeline, local or remote: what bindings drive without knowing where
/// the pipeline runs.
#[async_trait::async_trait]
pub trait StreamSession: Send {
    /// Pushes one chunk; returns what the sinks emitted for it.
    async fn push(&mut self, chunk: Data) -> Result<Vec<SinkOutput>, ExecutorError>;
    /// Ends the stream, flushing every node; returns the tail.
    async fn finish(&mut self) -> Result<Vec<SinkOutput>, ExecutorError>;
    /// Ends the stream without flushing.
    async fn abort(&mut self);
    /// Metrics so far (JSON text), when available.
    fn metrics_json(&self) -> Option<String>;
}

#[async_trait::async_trait]
impl StreamSession for Session {
    async fn push(&mut self, chunk: Data) -> Result<Vec<SinkOutput>, ExecutorError> {
        Session::push(self, chunk).await
    }
    async fn finish(&mut self) -> Result<Vec<SinkOutput>, ExecutorError> {
        Session::finish(self).await
    }
    async fn abort(&mut self) {
        Session::abort(self).await
    }
    fn metrics_json(&self) -> Option<String> {
        Some(self.metrics().to_json())
    }
}

/// An output of a sink node during a session.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkOutput {
    /// The sink's node id.
    pub node_id: String,
    /// The value.
    pub data: Data,
    /// For audio: where this chunk sits in the sink's output stream.
    pub position: Option<StreamPosition>,
}

/// Where an audio chunk sits in a sink's output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPosition {
    /// Index of the chunk's first frame in the sink's output.
    pub start_frame: u64,
    /// Frames in the chunk.
    pub frames: u64,
    /// The output sample rate.
    pub sample_rate: u32,
}

impl StreamPosition {
    /// Start time in milliseconds.
    pub fn start_ms(&self) -> f64 {
        self.start_frame as f64 * 1000.0 / self.sample_rate as f64
    }
}

/// One node's circuit breaker, as [`Pipeline::breakers`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerInfo {
    /// The node's index in the manifest.
    pub node_index: usize,
    /// The node's id.
    pub node_id: String,
    /// The node's type.
    pub node_type: String,
    /// Whether the manifest configured a breaker (one that is not never opens).
    pub configured: bool,
    /// Its state now.
    pub state: BreakerState,
    /// Consecutive failures behind the last opening.
    pub opened_after: u32,
    /// Times it opened.
    pub times_opened: u64,
}

/// The result of [`Pipeline::run`].
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Each sink's output joined over the run (see [`Data::join`]), keyed by node id.
    /// A sink that emitted nothing is absent.
    pub outputs: BTreeMap<String, Data>,
    /// Metrics of the run.
    pub metrics: PipelineMetrics,
}

impl RunOutput {
    /// The only output, when the pipeline has exactly one sink that produced something.
    pub fn single(&self) -> Option<&Data> {
        match self.outputs.len() {
            1 => self.outputs.values().next(),
            _ => None,
        }
    }
}

impl Pipeline {
    /// Validates `manifest` against `registry` and builds every node.
    pub fn new(manifest: Manifest, registry: &NodeRegistry) -> Result<Self, ExecutorError> {
        let graph = manifest::validate(&manifest, registry)?;
        let breakers = manifest
            .nodes
            .iter()
            .map(|spec| {
                Arc::new(Mutex::new(CircuitBreaker::new(BreakerConfig::from_spec(
                    spec.circuit_breaker.as_ref(),
                ))))
            })
            .collect();
        let sinks = graph.sinks().collect();
        let shared = Arc::new(Shared {
            name: manifest.name().to_string(),
            manifest,
            graph,
            registry: registry.clone(),
            breakers,
            sinks,
            last_metrics: Mutex::new(None),
            limits: Mutex::new(ResourceLimits::default()),
        });
        Self::build(shared)
    }

    /// Another instance of this pipeline: fresh node state (for a concurrent run or session),
    /// the same manifest, and the same circuit breakers.
    pub fn fork(&self) -> Result<Self, ExecutorError> {
        Self::build(Arc::clone(&self.inner.shared))
    }

    fn build(shared: Arc<Shared>) -> Result<Self, ExecutorError> {
        let mut slots = Vec::with_capacity(shared.manifest.nodes.len());
        let mut issues = Vec::new();
        for (index, spec) in shared.manifest.nodes.iter().enumerate() {
            let factory = shared
                .registry
                .get(&spec.node_type)
                .expect("validate checked node types");
            match factory.create(&spec.id, &spec.params) {
                Ok(mut node) => slots.push(Arc::new(NodeSlot {
                    index,
                    id: spec.id.clone(),
                    node_type: spec.node_type.clone(),
                    runtime: node.runtime(),
                    node: {
                        let ups = shared.graph.upstream(index).iter();
                        node.connect_inputs(
                            &ups.map(|&u| shared.graph.ids()[u].clone())
                                .collect::<Vec<_>>(),
                        );
                        tokio::sync::Mutex::new(node)
                    },
                    retry: RetryPolicy::from_spec(spec.retry.as_ref()),
                    retry_timeouts: spec.retry.is_some(),
                    timeout: spec.timeout_ms.map(Duration::from_millis),
                    breaker: Arc::clone(&shared.breakers[index]),
                    sink: shared.sinks.contains(&index),
                })),
                Err(errs) => issues.extend(errs.into_iter().map(|p| {
                    ManifestIssue::node(
                        &spec.id,
                        Some(&spec.node_type),
                        format!("params.{}", p.field),
                        p.message,
                    )
                })),
            }
        }
        if !issues.is_empty() {
            return Err(ManifestError::new(issues).into());
        }
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                slots,
                busy: AtomicBool::new(false),
                dirty: AtomicBool::new(false),
            }),
        })
    }

    /// Sets the memory and size limits of this pipeline and its forks (checked before each
    /// node call; see [`ResourceLimits`]). Sessions opened later use them.
    pub fn with_limits(self, limits: ResourceLimits) -> Self {
        self.set_limits(limits);
        self
    }

    /// Sets the limits in place (see [`Pipeline::with_limits`]).
    pub fn set_limits(&self, limits: ResourceLimits) {
        *self.inner.limits.lock().expect("limits lock") = limits;
    }

    /// The limits in force.
    pub fn limits(&self) -> ResourceLimits {
        *self.inner.limits.lock().expect("limits lock")
    }

    /// Parses, validates and builds a pipeline from manifest JSON.
    pub fn from_json(text: &str, registry: &NodeRegistry) -> Result<Self, ExecutorError> {
        Self::new(manifest::parse(text)?, registry)
    }

    /// The pipeline's name (manifest `metadata.name`, or "pipeline").
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The manifest it was built from.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// The graph.
    pub fn graph(&self) -> &PipelineGraph {
        &self.inner.graph
    }

    /// Ids of the sink nodes (whose outputs a run returns).
    pub fn sink_ids(&self) -> Vec<&str> {
        self.inner
            .sinks
            .iter()
            .map(|&i| self.inner.slots[i].id.as_str())
            .collect()
    }

    /// Where each node runs, by id, in manifest order.
    pub fn runtimes(&self) -> Vec<(&str, Runtime)> {
        self.inner
            .slots
            .iter()
            .map(|s| (s.id.as_str(), s.runtime))
            .collect()
    }

    /// The circuit-breaker state of a node.
    pub fn breaker_state(&self, node_id: &str) -> Option<BreakerState> {
        self.inner
            .slots
            .iter()
            .find(|s| s.id == node_id)
            .map(|s| s.breaker.lock().expect("breaker lock").state())
    }

    /// Every node's circuit breaker, in manifest order (shared by all forks).
    pub fn breakers(&self) -> Vec<BreakerInfo> {
        self.inner
            .slots
            .iter()
            .map(|s| {
                let b = s.breaker.lock().expect("breaker lock");
                BreakerInfo {
                    node_index: s.index,
                    node_id: s.id.clone(),
                    node_type: s.node_type.clone(),
                    configured: b.config().failure_threshold.is_some(),
                    state: b.state(),
                    opened_after: b.opened_after(),
                    times_opened: b.times_opened(),
                }
            })
            .collect()
    }

    /// Opens a streaming session. Fails with [`ExecutorError::Busy`] while another session
    /// of this pipeline is open (node state belongs to one stream at a time).
    pub fn session(&self) -> Result<Session, ExecutorError> {
        if self
            .inner
            .busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(ExecutorError::Busy {
                pipeline: self.inner.name.clone(),
            });
        }
        let nodes = self
            .inner
            .slots
            .iter()
            .map(|s| (s.id.clone(), s.node_type.clone(), s.runtime))
            .collect();
        let limits = self.limits();
        Ok(Session {
            inner: Arc::clone(&self.inner),
            state: SessionState::New,
            metrics: MetricsCollector::new(&self.inner.name, nodes)
                .with_trace_capacity(limits.max_trace_events),
            emitted_frames: vec![0; self.inner.slots.len()],
            limits,
            budget: Arc::default(),
            whole_run: false,
            scratch: StepScratch::default(),
        })
    }

    /// Runs the whole input through the pipeline (one chunk, then flush). The limits apply to
    /// the run as a whole, and input longer than `max_run_input_secs` is refused.
    pub async fn run(&self, input: Data) -> Result<RunOutput, ExecutorError> {
        limits::check_run_input(&self.limits(), &input)?;
        let mut session = self.session()?;
        session.whole_run = true;
        let mut collected = SinkCollector::default();
        collected.extend(session.push(input).await?);
        collected.extend(session.finish().await?);
        Ok(RunOutput {
            outputs: collected.finish(),
            metrics: session.metrics(),
        })
    }

    /// Metrics of the last finished (or failed) session.
    pub fn last_metrics(&self) -> Option<PipelineMetrics> {
        self.inner
            .last_metrics
            .lock()
            .expect("metrics lock")
            .as_ref()
            .map(MetricsCollector::snapshot)
    }

    /// Chrome trace of the last finished (or failed) session.
    pub fn last_trace(&self) -> Option<serde_json::Value> {
        self.inner
            .last_metrics
            .lock()
            .expect("metrics lock")
            .as_ref()
            .map(MetricsCollector::chrome_trace)
    }
}

enum SessionState {
    New,
    Running,
    Failed(Box<ExecutorError>),
    Finished,
}

/// A stream through a [`Pipeline`]: `push` chunks, then `finish` to flush.
pub struct Session {
    inner: Arc<Inner>,
    state: SessionState,
    metrics: MetricsCollector,
    emitted_frames: Vec<u64>,
    limits: ResourceLimits,
    /// What the current run (or chunk) has claimed against `limits`.
    budget: Arc<limits::Budget>,
    /// A whole-input run: push and flush share one budget.
    whole_run: bool,
    /// Bookkeeping of a step, kept between steps so a chunk allocates none of it.
    scratch: StepScratch,
}

/// Values one node emitted in a step (almost always one).
type Values = SmallVec<[Data; 1]>;
/// Call records of one node in a step (one per call: process, flush, retries); the usual
/// single record is kept inline (no allocation per chunk).
type Records = SmallVec<[CallRecord; 1]>;

/// Per-step bookkeeping, reused from step to step.
#[derive(Default)]
struct StepScratch {
    /// What each node emitted this step (`None` until it ran or once taken).
    emitted: Vec<Option<Values>>,
    /// Upstream nodes each node still waits for.
    waiting: Vec<usize>,
    /// Downstream nodes that have not read each node's output yet: the last one takes it
    /// instead of cloning (unless the node is a sink, whose output is the session's).
    readers: Vec<usize>,
    /// Sources that have not read the step's input yet (the last one takes it).
    sources_left: usize,
    ready: VecDeque<usize>,
}

impl StepScratch {
    fn reset(&mut self, graph: &PipelineGraph) {
        let n = graph.len();
        self.emitted.clear();
        self.emitted.resize(n, None);
        self.waiting.clear();
        self.waiting.extend((0..n).map(|i| graph.upstream(i).len()));
        self.readers.clear();
        self.readers
            .extend((0..n).map(|i| graph.downstream(i).len()));
        self.ready.clear();
        self.ready.extend(graph.sources());
        self.sources_left = self.ready.len();
    }
}

impl Session {
    /// Pushes one chunk and returns what the sinks emitted for it.
    pub async fn push(&mut self, chunk: Data) -> Result<Vec<SinkOutput>, ExecutorError> {
        self.ensure_started().await?;
        self.metrics.count_chunk();
        if !self.whole_run {
            self.budget.reset();
        }
        self.step(Some(chunk), false).await
    }

    /// Flushes every node (end of stream) and returns the tail. Closes the session; the
    /// metrics remain available from [`Session::metrics`] and [`Pipeline::last_metrics`].
    pub async fn finish(&mut self) -> Result<Vec<SinkOutput>, ExecutorError> {
        self.ensure_started().await?;
        if !self.whole_run {
            self.budget.reset();
        }
        let result = self.step(None, true).await;
        if result.is_ok() {
            self.end(SessionState::Finished).await;
        }
        result
    }

    /// Ends the session without flushing (e.g. the client went away).
    pub async fn abort(&mut self) {
        if matches!(self.state, SessionState::New | SessionState::Running) {
            self.end(SessionState::Finished).await;
        }
    }

    /// Metrics so far.
    pub fn metrics(&self) -> PipelineMetrics {
        self.metrics.snapshot()
    }

    /// Chrome trace so far.
    pub fn chrome_trace(&self) -> serde_json::Value {
        self.metrics.chrome_trace()
    }

    /// Keeps at most `slices` trace slices (one per node call) from now on, overriding
    /// [`ResourceLimits::max_trace_events`] for this session; 0 keeps none, so a long stream
    /// whose trace nobody reads holds no memory for it.
    pub fn set_trace_capacity(&mut self, slices: usize) {
        self.metrics.set_trace_capacity(slices);
    }

    /// Whether the session can take more chunks.
    pub fn is_open(&self) -> bool {
        matches!(self.state, SessionState::New | SessionState::Running)
    }

    async fn ensure_started(&mut self) -> Result<(), ExecutorError> {
        match &self.state {
            SessionState::Running => return Ok(()),
            SessionState::Failed(e) => {
                return Err(ExecutorError::SessionClosed {
                    reason: format!("an earlier chunk failed: {e}"),
                })
            }
            SessionState::Finished => {
                return Err(ExecutorError::SessionClosed {
                    reason: "the session already finished".to_string(),
                })
            }
            SessionState::New => {}
        }
        if self.inner.dirty.swap(false, Ordering::AcqRel) {
            for slot in &self.inner.slots {
                slot.node.lock().await.stop().await;
            }
        }
        for slot in &self.inner.slots {
            let started = AssertUnwindSafe(async { slot.node.lock().await.start().await })
                .catch_unwind()
                .await
                .unwrap_or_else(|p| {
                    Err(NodeError::new(NodeErrorKind::Panicked, panic_message(&*p)))
                });
            if let Err(e) = started {
                let err = node_failure(slot, e, 1);
                self.end(SessionState::Failed(Box::new(err.clone()))).await;
                return Err(err);
            }
        }
        self.state = SessionState::Running;
        Ok(())
    }

    async fn end(&mut self, state: SessionState) {
        for slot in &self.inner.slots {
            slot.node.lock().await.stop().await;
        }
        self.state = state;
        self.metrics.finish();
        *self.inner.last_metrics.lock().expect("metrics lock") = Some(self.metrics.clone());
        self.inner.busy.store(false, Ordering::Release);
    }

    async fn step(
        &mut self,
        input: Option<Data>,
        flush: bool,
    ) -> Result<Vec<SinkOutput>, ExecutorError> {
        match self.run_step(input, flush).await {
            Ok(outputs) => Ok(outputs),
            Err(e) => {
                self.end(SessionState::Failed(Box::new(e.clone()))).await;
                Err(e)
            }
        }
    }

    async fn run_step(
        &mut self,
        input: Option<Data>,
        flush: bool,
    ) -> Result<Vec<SinkOutput>, ExecutorError> {
        if self.inner.slots.len() == 1 {
            return self.run_only_node(input, flush).await;
        }
        // Taken for the step and put back after it, so its buffers are reused; a step that
        // fails or is cancelled just leaves a fresh one behind.
        let mut sc = std::mem::take(&mut self.scratch);
        let result = self.run_step_in(&mut sc, input, flush).await;
        self.scratch = sc;
        result
    }

    async fn run_step_in(
        &mut self,
        sc: &mut StepScratch,
        mut input: Option<Data>,
        flush: bool,
    ) -> Result<Vec<SinkOutput>, ExecutorError> {
        let inner = Arc::clone(&self.inner);
        let graph = &inner.graph;
        sc.reset(graph);
        // Looked up only when two nodes are ready at once with enough work for a task (a
        // thread-local lookup per step otherwise, for nothing in a linear pipeline).
        let mut can_spawn: Option<bool> = None;
        // Made only when two nodes are ready at once (a linear pipeline never needs it).
        let mut running: Option<FuturesUnordered<NodeFuture>> = None;
        let mut aborts = Vec::new();

        loop {
            while let Some(i) = sc.ready.pop_front() {
                let events = gather(&inner.slots, graph, i, sc, &mut input);
                let slot = Arc::clone(&inner.slots[i]);
                let (budget, limits) = (Arc::clone(&self.budget), self.limits);
                let fut = async move {
                    let (result, records) = run_node(&slot, events.0, flush, &budget, limits).await;
                    (i, result, records)
                };
                if sc.ready.is_empty() && running.as_ref().is_none_or(|r| r.is_empty()) {
                    // The only runnable node: run it inline, no task or boxing.
                    let done = fut.await;
                    self.complete(done, graph, sc)?;
                } else if events.1 >= PARALLEL_MIN_SAMPLES
                    && *can_spawn
                        .get_or_insert_with(|| tokio::runtime::Handle::try_current().is_ok())
                {
                    // Enough work to pay for a task: run on another worker thread.
                    let handle = tokio::spawn(fut);
                    aborts.push(handle.abort_handle());
                    running
                        .get_or_insert_with(FuturesUnordered::new)
                        .push(Box::pin(async move {
                            handle.await.unwrap_or_else(|e| {
                                (
                                    usize::MAX,
                                    Err(ExecutorError::Internal {
                                        message: format!("a node task ended abnormally: {e}"),
                                    }),
                                    Records::new(),
                                )
                            })
                        }));
                } else {
                    // Small work: interleave on this task. Nodes that wait (sleeps, I/O,
                    // Python in a blocking thread) still overlap; no cross-thread hop.
                    running
                        .get_or_insert_with(FuturesUnordered::new)
                        .push(Box::pin(fut));
                }
            }
            let next = match running.as_mut() {
                Some(r) => r.next().await,
                None => None,
            };
            let Some(done) = next else {
                break;
            };
            if let Err(e) = self.complete(done, graph, sc) {
                aborts.iter().for_each(|a| a.abort());
                return Err(e);
            }
        }

        let mut outputs = Vec::new();
        for &s in &inner.sinks {
            for data in sc.emitted[s].take().unwrap_or_default() {
                outputs.push(sink_output(&mut self.emitted_frames, &inner.slots[s], data));
            }
        }
        Ok(outputs)
    }

    /// A step of a one-node pipeline (the node is the source and the sink): the same calls,
    /// limits and records as the general step, without its scheduling (ready queue, per-node
    /// scratch, output hand-over), which was a large part of a small chunk's cost.
    async fn run_only_node(
        &mut self,
        input: Option<Data>,
        flush: bool,
    ) -> Result<Vec<SinkOutput>, ExecutorError> {
        // Fields borrowed apart (no `Arc` count per chunk): the slot stays borrowed while the
        // metrics and positions are written.
        let slot = &self.inner.slots[0];
        let events = Events::Each(input.into_iter().collect());
        let (result, records) = run_node(slot, events, flush, &self.budget, self.limits).await;
        for r in records {
            self.metrics.record(r);
        }
        let values = result.inspect_err(|e| self.metrics.fail(0, e.to_string()))?;
        Ok(values
            .into_iter()
            .map(|data| sink_output(&mut self.emitted_frames, slot, data))
            .collect())
    }

    /// Records a finished node's calls and outputs and releases the nodes waiting on it.
    fn complete(
        &mut self,
        (i, result, records): NodeDone,
        graph: &PipelineGraph,
        sc: &mut StepScratch,
    ) -> Result<(), ExecutorError> {
        for r in records {
            self.metrics.record(r);
        }
        let out = result.inspect_err(|e| {
            if i != usize::MAX {
                self.metrics.fail(i, e.to_string());
            }
        })?;
        sc.emitted[i] = Some(out);
        for &d in graph.downstream(i) {
            sc.waiting[d] -= 1;
            if sc.waiting[d] == 0 {
                sc.ready.push_back(d);
            }
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if matches!(self.state, SessionState::New | SessionState::Running) {
            // Dropped without finish/abort: stop() cannot run here (it is async), so the next
            // session stops the nodes before starting them.
            if matches!(self.state, SessionState::Running) {
                self.inner.dirty.store(true, Ordering::Release);
            }
            self.metrics.finish();
            *self.inner.last_metrics.lock().expect("metrics lock") = Some(self.metrics.clone());
            self.inner.busy.store(false, Ordering::Release);
        }
    }
}

/// A sink's value as a session output, advancing the sink's audio position in `emitted`
/// (frames emitted so far, per node).
fn sink_output(emitted: &mut [u64], slot: &NodeSlot, data: Data) -> SinkOutput {
    let s = slot.index;
    let position = data.as_audio().map(|a| {
        let start = emitted[s];
        emitted[s] += a.frames() as u64;
        StreamPosition {
            start_frame: start,
            frames: a.frames() as u64,
            sample_rate: a.sample_rate(),
        }
    });
    SinkOutput {
        node_id: slot.id.clone(),
        data,
        position,
    }
}

/// A node's result for one step: (index, outputs or error, call records).
type NodeDone = (usize, Result<Values, ExecutorError>, Records);
type NodeFuture = std::pin::Pin<Box<dyn std::future::Future<Output = NodeDone> + Send>>;

/// Nodes that are ready together run on separate worker threads only when their input holds
/// at least this many samples; below it a task hop costs more than it saves.
const PARALLEL_MIN_SAMPLES: usize = 16_384;

/// What a node receives in one step.
enum Events {
    /// Values to process one by one (single upstream, or the pipeline input).
    Each(Values),
    /// One fan-in call with each upstream's joined output (only upstreams that emitted).
    Fan(BTreeMap<String, Data>),
}

/// The node's events for this step, and how many audio samples they hold. The last reader
/// of a value takes it rather than cloning it, so a node can own its input outright (in-place
/// work without a copy) unless another node or the session still needs the value.
fn gather(
    slots: &[Arc<NodeSlot>],
    graph: &PipelineGraph,
    i: usize,
    sc: &mut StepScratch,
    input: &mut Option<Data>,
) -> (Events, usize) {
    let mut read = |u: usize| -> Values {
        sc.readers[u] -= 1;
        if sc.readers[u] == 0 && !slots[u].sink {
            sc.emitted[u].take().unwrap_or_default()
        } else {
            sc.emitted[u].clone().unwrap_or_default()
        }
    };
    let events = match graph.upstream(i) {
        [] => {
            sc.sources_left -= 1;
            let value = if sc.sources_left == 0 {
                input.take()
            } else {
                input.clone()
            };
            Events::Each(value.into_iter().collect())
        }
        [u] => Events::Each(read(*u)),
        many => Events::Fan(
            many.iter()
                .filter_map(|&u| {
                    let joined = Data::join(read(u).into_vec())?;
                    Some((graph.ids()[u].clone(), joined))
                })
                .collect(),
        ),
    };
    let audio = |d: &Data| d.as_audio().map_or(0, |a| a.samples().len());
    let samples = match &events {
        Events::Each(v) => v.iter().map(audio).sum(),
        Events::Fan(m) => m.values().map(audio).sum(),
    };
    (events, samples)
}

/// Runs one node for one step: each event through `process`, then `flush` at end of stream.
async fn run_node(
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
                    tracing::debug!(node = %slot.id, attempt, error = %e, "retrying");
                    Box::pin(tokio::time::sleep(slot.retry.delay_after(attempt))).await;
                    continue;
                }
                return Err(node_failure(slot, e, attempt));
            }
        }
    }
}

/// Wraps a node's final error into the executor error that names it.
fn node_failure(slot: &NodeSlot, e: NodeError, attempts: u32) -> ExecutorError {
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
