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

mod call;
mod circuit_breaker;
mod limits;
mod metrics;
mod retry;
mod session;
mod sink;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use circuit_breaker::{BreakerConfig, BreakerState, CircuitBreaker, Rejected};
pub use limits::ResourceLimits;
pub use metrics::{
    peak_rss_mb, CallKind, CallRecord, ExecutionStatus, MetricsCollector, NodeMetrics,
    PipelineMetrics, MAX_TRACE_EVENTS,
};
pub use retry::RetryPolicy;
pub use session::{Session, StreamSession};
pub use sink::{SinkCollector, SinkOutput, StreamPosition};

use crate::data::Data;
use crate::error::ExecutorError;
use crate::graph::PipelineGraph;
use crate::manifest::{self, Manifest, ManifestError, ManifestIssue};
use crate::node::{Node, Runtime};
use crate::registry::NodeRegistry;

/// The target of the executor's log events, from whichever of its files: this module's path,
/// as before the executor was split into files (log filters match on it).
const LOG_TARGET: &str = module_path!();

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
            match factory.create_for(spec) {
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
        Ok(Session::new(
            Arc::clone(&self.inner),
            MetricsCollector::new(&self.inner.name, nodes)
                .with_trace_capacity(limits.max_trace_events),
            limits,
        ))
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
