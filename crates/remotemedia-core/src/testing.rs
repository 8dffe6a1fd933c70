//! Fault-injection nodes for tests (a node that fails N times, always fails, panics, sleeps,
//! or returns the wrong type). Compiled only with the `test-nodes` feature, which only test
//! builds turn on; registered by [`register`] (the CLI does when `REMOTEMEDIA_TEST_NODES=1` in
//! such a build).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::data::Data;
use crate::error::NodeError;
use crate::node::Node;
use crate::registry::{NodeParams, NodeRegistry, TypedFactory};

/// Registers the fault-injection node types.
pub fn register(registry: &mut NodeRegistry) {
    registry.register(Arc::new(TypedFactory::new(
        "TestFlakyNode",
        "Test only: fails `fail_times` calls (retryable by default), then passes input through.",
        |_, p: FlakyParams| {
            Box::new(FlakyNode {
                left: p.fail_times,
                retryable: p.retryable,
            })
        },
    )));
    registry.register(Arc::new(TypedFactory::new(
        "TestFailNode",
        "Test only: every call fails.",
        |_, p: FailParams| {
            Box::new(FailNode {
                retryable: p.retryable,
            })
        },
    )));
    registry.register(Arc::new(TypedFactory::new(
        "TestPanicNode",
        "Test only: every call panics.",
        |_, _: NoParams| Box::new(PanicNode),
    )));
    registry.register(Arc::new(TypedFactory::new(
        "TestSleepNode",
        "Test only: waits `ms` milliseconds (without blocking a thread), then passes input through.",
        |_, p: SleepParams| Box::new(SleepNode { ms: p.ms }),
    )));
    registry.register(Arc::new(TypedFactory::new(
        "TestJsonNode",
        "Test only: emits the JSON value {\"kind\": <input kind>} instead of audio.",
        |_, _: NoParams| Box::new(JsonNode),
    )));
}

fn yes() -> bool {
    true
}

/// Parameters of `TestFlakyNode`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlakyParams {
    /// Calls to fail before succeeding.
    pub fail_times: u32,
    /// Whether the failures are retryable (default true).
    #[serde(default = "yes")]
    pub retryable: bool,
}
impl NodeParams for FlakyParams {}

/// Parameters of `TestFailNode`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailParams {
    /// Whether the failures are retryable (default true).
    #[serde(default = "yes")]
    pub retryable: bool,
}
impl NodeParams for FailParams {}

/// Parameters of `TestSleepNode`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepParams {
    /// Milliseconds to wait per call.
    pub ms: u64,
}
impl NodeParams for SleepParams {}

/// No parameters.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}
impl NodeParams for NoParams {}

struct FlakyNode {
    left: u32,
    retryable: bool,
}

#[async_trait]
impl Node for FlakyNode {
    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        if self.left > 0 {
            self.left -= 1;
            return Err(
                NodeError::failed(format!("injected failure ({} left)", self.left))
                    .with_retryable(self.retryable),
            );
        }
        Ok(Some(input))
    }
}

struct FailNode {
    retryable: bool,
}

#[async_trait]
impl Node for FailNode {
    async fn process(&mut self, _: Data) -> Result<Option<Data>, NodeError> {
        Err(NodeError::failed("injected permanent failure").with_retryable(self.retryable))
    }
}

struct PanicNode;

#[async_trait]
impl Node for PanicNode {
    async fn process(&mut self, _: Data) -> Result<Option<Data>, NodeError> {
        panic!("injected panic");
    }
}

struct SleepNode {
    ms: u64,
}

#[async_trait]
impl Node for SleepNode {
    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        tokio::time::sleep(Duration::from_millis(self.ms)).await;
        Ok(Some(input))
    }
}

struct JsonNode;

#[async_trait]
impl Node for JsonNode {
    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        Ok(Some(Data::Json(serde_json::json!({"kind": input.kind()}))))
    }
}
