//! The session scheduler: a [`Session`] pushes each chunk through the pipeline as one step,
//! running nodes in dependency order, inline when alone and concurrently when ready together.

use std::collections::{BTreeMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};

use super::call::{node_failure, run_node, Events, Records, Values};
use super::limits::{self, ResourceLimits};
use super::metrics::{MetricsCollector, PipelineMetrics};
use super::sink::{sink_output, SinkOutput};
use super::{Inner, NodeSlot};
use crate::data::Data;
use crate::error::{panic_message, ExecutorError, NodeError, NodeErrorKind};
use crate::graph::PipelineGraph;

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

enum SessionState {
    New,
    Running,
    Failed(Box<ExecutorError>),
    Finished,
}

/// A stream through a [`Pipeline`](super::Pipeline): `push` chunks, then `finish` to flush.
pub struct Session {
    inner: Arc<Inner>,
    state: SessionState,
    metrics: MetricsCollector,
    emitted_frames: Vec<u64>,
    limits: ResourceLimits,
    /// What the current run (or chunk) has claimed against `limits`.
    budget: Arc<limits::Budget>,
    /// A whole-input run: push and flush share one budget.
    pub(super) whole_run: bool,
    /// Bookkeeping of a step, kept between steps so a chunk allocates none of it.
    scratch: StepScratch,
}

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
    /// A new session over `inner`'s nodes; the caller has marked the pipeline busy.
    pub(super) fn new(
        inner: Arc<Inner>,
        metrics: MetricsCollector,
        limits: ResourceLimits,
    ) -> Self {
        Self {
            emitted_frames: vec![0; inner.slots.len()],
            inner,
            state: SessionState::New,
            metrics,
            limits,
            budget: Arc::default(),
            whole_run: false,
            scratch: StepScratch::default(),
        }
    }

    /// Pushes one chunk and returns what the sinks emitted for it.
    ///
    /// Every source node (a node with no upstream) receives the chunk, unless it is a
    /// [`Data::Map`] whose keys all name source nodes: then each named source receives its own
    /// value (a pipeline with several inputs: a microphone and an echo reference, say) and the
    /// others nothing this step. Streams are aligned by position, so the inputs need not come in
    /// equal chunks. With several sources, a map key that names none of them is an
    /// [`ExecutorError::UnknownInput`] (the session stays usable).
    pub async fn push(&mut self, chunk: Data) -> Result<Vec<SinkOutput>, ExecutorError> {
        let feed = self.feed(chunk)?;
        self.ensure_started().await?;
        self.metrics.count_chunk();
        if !self.whole_run {
            self.budget.reset();
        }
        self.step(feed, false).await
    }

    /// The pipeline's inputs: its source nodes' ids, in manifest order.
    pub fn inputs(&self) -> Vec<String> {
        let graph = &self.inner.graph;
        graph.sources().map(|i| graph.ids()[i].clone()).collect()
    }

    /// Checks that a map of named inputs names only this pipeline's inputs (what
    /// [`Session::push`] would refuse with [`ExecutorError::UnknownInput`]), without running it.
    pub fn check_input(&self, chunk: &Data) -> Result<(), ExecutorError> {
        let Data::Map(map) = chunk else {
            return Ok(());
        };
        let inputs = self.inputs();
        match map.keys().find(|k| !inputs.contains(k)) {
            Some(name) if inputs.len() > 1 => Err(ExecutorError::unknown_input(name, inputs)),
            _ => Ok(()),
        }
    }

    /// How a chunk reaches the sources (see [`Session::push`]).
    fn feed(&self, chunk: Data) -> Result<Feed, ExecutorError> {
        self.check_input(&chunk)?;
        match chunk {
            // Every key names a source: each gets its own value.
            Data::Map(m) if !m.is_empty() && m.keys().all(|k| self.is_input(k)) => {
                Ok(Feed::Named(m))
            }
            // One source: a map that does not name it is a value for it.
            other => Ok(Feed::All(Some(other))),
        }
    }

    fn is_input(&self, name: &str) -> bool {
        let graph = &self.inner.graph;
        graph.sources().any(|i| graph.ids()[i] == name)
    }

    /// Flushes every node (end of stream) and returns the tail. Closes the session; the
    /// metrics remain available from [`Session::metrics`] and
    /// [`Pipeline::last_metrics`](super::Pipeline::last_metrics).
    pub async fn finish(&mut self) -> Result<Vec<SinkOutput>, ExecutorError> {
        self.ensure_started().await?;
        if !self.whole_run {
            self.budget.reset();
        }
        let result = self.step(Feed::All(None), true).await;
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

    async fn step(&mut self, input: Feed, flush: bool) -> Result<Vec<SinkOutput>, ExecutorError> {
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
        input: Feed,
        flush: bool,
    ) -> Result<Vec<SinkOutput>, ExecutorError> {
        if self.inner.slots.len() == 1 {
            let input = match input {
                Feed::All(v) => v,
                Feed::Named(mut m) => m.remove(&self.inner.graph.ids()[0]),
            };
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
        mut input: Feed,
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

/// What a step gives the source nodes: the same value to each, or a value per source id.
enum Feed {
    All(Option<Data>),
    Named(BTreeMap<String, Data>),
}

/// A node's result for one step: (index, outputs or error, call records).
type NodeDone = (usize, Result<Values, ExecutorError>, Records);
type NodeFuture = std::pin::Pin<Box<dyn std::future::Future<Output = NodeDone> + Send>>;

/// Nodes that are ready together run on separate worker threads only when their input holds
/// at least this many samples; below it a task hop costs more than it saves.
const PARALLEL_MIN_SAMPLES: usize = 16_384;

/// The node's events for this step, and how many audio samples they hold. The last reader
/// of a value takes it rather than cloning it, so a node can own its input outright (in-place
/// work without a copy) unless another node or the session still needs the value.
fn gather(
    slots: &[Arc<NodeSlot>],
    graph: &PipelineGraph,
    i: usize,
    sc: &mut StepScratch,
    input: &mut Feed,
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
            let value = match input {
                Feed::All(v) if sc.sources_left == 0 => v.take(),
                Feed::All(v) => v.clone(),
                Feed::Named(m) => m.remove(&graph.ids()[i]),
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
