//! `PassThroughNode`: emits its input unchanged, without copying.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use remotemedia_core::data::Data;
use remotemedia_core::error::NodeError;
use remotemedia_core::node::{Node, StreamShape};
use remotemedia_core::registry::{NodeDef, NodeParams, Output, Outputs};

/// `PassThroughNode` takes no parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PassThroughParams {}

impl NodeParams for PassThroughParams {}

/// Emits its input unchanged.
#[derive(Debug, Default)]
pub struct PassThroughNode {
    /// The rate and channels of a stream's first audio chunk.
    shape: StreamShape,
}

impl PassThroughNode {
    /// Builds the node.
    pub fn new(_: PassThroughParams) -> Self {
        Self::default()
    }
}

impl NodeDef for PassThroughNode {
    const NAME: &'static str = "PassThroughNode";
    const DESCRIPTION: &'static str =
        "Emits its input unchanged, without a copy (so its output is its input's type).";
    const OUTPUTS: Outputs = Outputs::One(Output::Input);
    type Params = PassThroughParams;
    fn build(params: PassThroughParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for PassThroughNode {
    /// Nothing: the input is passed on without a copy.
    fn output_bytes(&self, _: &Data) -> u64 {
        0
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        // Non-audio data passes as it is; audio must have a rate every other node accepts,
        // and keep its stream's rate and channels, or the error would surface later, far from
        // its cause (a stream of mixed rates would be returned as if it were one).
        if matches!(input, Data::Audio(_)) {
            self.shape.accept(&input)?;
        }
        Ok(Some(input))
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        self.shape.reset();
        Ok(None)
    }
}
