//! `PassThroughNode`: emits its input unchanged, without copying.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::data::Data;
use crate::error::NodeError;
use crate::node::Node;
use crate::registry::NodeParams;

/// `PassThroughNode` takes no parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PassThroughParams {}

impl NodeParams for PassThroughParams {}

/// Emits its input unchanged.
#[derive(Debug, Default)]
pub struct PassThroughNode;

impl PassThroughNode {
    /// Builds the node.
    pub fn new(_: PassThroughParams) -> Self {
        Self
    }
}

#[async_trait]
impl Node for PassThroughNode {
    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        Ok(Some(input))
    }
}
