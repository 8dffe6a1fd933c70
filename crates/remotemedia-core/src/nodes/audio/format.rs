//! `FormatConverterNode`: sample-format conversion (scaling rules in [`crate::data::convert`]).

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::data::{Data, SampleFormat};
use crate::error::NodeError;
use crate::node::{expect_audio, Node};
use crate::registry::NodeParams;

/// Parameters of `FormatConverterNode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FormatConverterParams {
    /// Output sample format: "f32", "i16", "i32" or "f64".
    pub target_format: SampleFormat,
}

impl NodeParams for FormatConverterParams {}

/// Converts audio to `target_format`; a no-op (no copy) when already in it.
#[derive(Debug)]
pub struct FormatConverterNode {
    target: SampleFormat,
}

impl FormatConverterNode {
    /// Builds the node.
    pub fn new(p: FormatConverterParams) -> Self {
        Self {
            target: p.target_format,
        }
    }
}

#[async_trait]
impl Node for FormatConverterNode {
    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let audio = expect_audio("FormatConverterNode", &input)?;
        Ok(Some(Data::Audio(audio.to_format(self.target))))
    }
}
