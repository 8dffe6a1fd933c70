//! Manifest v1: the typed serde structs. Unknown fields are rejected everywhere.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::limits;

/// The only manifest version this runtime reads.
pub const MANIFEST_VERSION: &str = "v1";

/// A pipeline: nodes and the connections between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "remotemedia pipeline manifest (v1)")]
pub struct Manifest {
    /// Manifest format version; must be "v1".
    #[schemars(extend("const" = "v1"))]
    pub version: String,
    /// Descriptive information; not used for execution.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    /// The nodes, in the order that breaks ties in execution order.
    #[schemars(length(min = 1, max = limits::MAX_NODES))]
    pub nodes: Vec<NodeSpec>,
    /// Directed edges. Without any, a single node is a whole pipeline; several unconnected
    /// nodes each receive the input and are each a sink.
    #[serde(default)]
    #[schemars(length(max = limits::MAX_CONNECTIONS))]
    pub connections: Vec<Connection>,
}

/// Descriptive information about a pipeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Pipeline name, used in metrics and errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-form string labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Metadata {
    fn is_empty(&self) -> bool {
        self.name.is_none() && self.description.is_none() && self.labels.is_empty()
    }
}

/// One node of the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Unique id: 1 to 64 characters from [A-Za-z0-9_.-].
    #[schemars(length(min = 1, max = limits::MAX_ID_LEN), regex(pattern = r"^[A-Za-z0-9_.\-]+$"))]
    pub id: String,
    /// A registered node type (see `remotemedia nodes`).
    #[schemars(length(min = 1, max = limits::MAX_NODE_TYPE_LEN))]
    pub node_type: String,
    /// Constructor parameters of the node type.
    #[serde(default = "empty_params")]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Retry policy for retryable errors; defaults: 3 attempts, 100 ms initial delay, 1600 ms cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// Per-call time limit in milliseconds; none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = limits::MAX_TIMEOUT_MS))]
    pub timeout_ms: Option<u64>,
    /// Circuit breaker settings; defaults: opens after 5 consecutive failures, 30 s cool-down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreakerSpec>,
    /// Where a Python node runs: "none" (in the runtime's process) or "process" (a worker
    /// process of its own, which a crash of the node cannot take down). Locally the default
    /// is "none"; the server's `python_isolation` setting chooses for nodes that do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<Isolation>,
    /// Batching of a Python node's `process` calls across concurrent sessions into one
    /// `process_batch` call (the node's class must define it); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchSpec>,
}

/// How a Python node's calls of concurrent sessions are gathered into `process_batch` calls
/// (`NodeSpec::batch`): the first call of a batch waits until `max_size` calls are queued or
/// `max_delay_ms` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    /// The most calls one `process_batch` call takes, 1..=4096.
    #[schemars(range(min = 1, max = limits::MAX_BATCH_SIZE))]
    pub max_size: u32,
    /// How long a batch's first call waits for others, in ms, 0..=10000. Default 0 (a batch
    /// is what is queued when the previous one ends).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = limits::MAX_BATCH_DELAY_MS))]
    pub max_delay_ms: f64,
}

/// Where a node runs (`NodeSpec::isolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// In the runtime's process (the default).
    None,
    /// In a worker process of its own (Python nodes).
    Process,
}

fn empty_params() -> serde_json::Map<String, serde_json::Value> {
    serde_json::Map::new()
}

/// Retry settings (exponential backoff: `initial_delay_ms * 2^(attempt-1)`, capped).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Total attempts including the first, 1..=10 (1 disables retries). Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = limits::MAX_ATTEMPTS))]
    pub max_attempts: Option<u32>,
    /// Delay before the first retry in ms, 0..=60000. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = limits::MAX_RETRY_DELAY_MS))]
    pub initial_delay_ms: Option<u64>,
    /// Cap on any delay in ms, 0..=60000 and >= initial_delay_ms. Default 1600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = limits::MAX_RETRY_DELAY_MS))]
    pub max_delay_ms: Option<u64>,
}

/// Circuit-breaker settings. Without this object a node has no breaker (it never refuses a
/// call because earlier calls failed); with it, the fields below or their defaults apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerSpec {
    /// Consecutive failed attempts that open the breaker, 1..=1000. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = limits::MAX_BREAKER_THRESHOLD))]
    pub failure_threshold: Option<u32>,
    /// How long the breaker stays open before letting one trial call through, in ms,
    /// 1..=3600000. Default 30000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = limits::MAX_TIMEOUT_MS))]
    pub cooldown_ms: Option<u64>,
}

/// A directed edge: the output of `from` feeds `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// Upstream node id.
    pub from: String,
    /// Downstream node id.
    pub to: String,
}

impl Manifest {
    /// The pipeline's name (metadata.name, or "pipeline").
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("pipeline")
    }

    /// Pretty JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest always serializes")
    }
}
