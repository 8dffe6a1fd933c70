//! remotemedia core, the framework: manifest -> graph -> registry -> executor, with data
//! types, retries, a circuit breaker and per-node metrics. The built-in nodes live in
//! `remotemedia-nodes`; Python and gRPC in their own crates. None of them is a dependency here.
//!
//! A node type is defined once, by implementing [`NodeDef`](registry::NodeDef):
//!
//! ```
//! use async_trait::async_trait;
//! use remotemedia_core::registry::{NodeDef, NodeParams, NodeRegistry};
//! use remotemedia_core::{data::{AudioBuffer, Data}, executor::Pipeline, Node, NodeError};
//!
//! #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct HalveParams {}
//! impl NodeParams for HalveParams {}
//!
//! struct Halve;
//! #[async_trait]
//! impl Node for Halve {
//!     async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
//!         let a = input.as_audio().expect("audio");
//!         let half: Vec<f32> = a.samples().to_f64_vec().iter().map(|s| (s / 2.0) as f32).collect();
//!         Ok(Some(Data::Audio(AudioBuffer::mono_f32(half, a.sample_rate()))))
//!     }
//! }
//! impl NodeDef for Halve {
//!     const NAME: &'static str = "HalveNode";
//!     const DESCRIPTION: &'static str = "Halves mono audio.";
//!     type Params = HalveParams;
//!     fn build(_: HalveParams) -> Self { Halve }
//! }
//!
//! let mut registry = NodeRegistry::empty();
//! registry.register_type::<Halve>();
//! let manifest = r#"{"version": "v1", "nodes": [{"id": "h", "node_type": "HalveNode"}]}"#;
//! let pipeline = Pipeline::from_json(manifest, &registry).unwrap();
//! let input = AudioBuffer::mono_f32(vec![0.5; 480], 48_000);
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! let out = rt.block_on(pipeline.run(Data::Audio(input))).unwrap();
//! assert_eq!(out.outputs["h"].as_audio().unwrap().samples().to_f64_vec()[0], 0.25);
//! ```
#![warn(missing_docs)]

pub mod cpu;
pub mod data;
pub mod error;
pub mod executor;
pub mod graph;
pub mod manifest;
pub mod node;
pub mod registry;
pub mod schema;
#[cfg(feature = "test-nodes")]
pub mod testing;
pub mod text;

pub use data::{AudioBuffer, Data, SampleFormat, Samples, Segment};
pub use error::{ExecutorError, NodeError, NodeErrorKind};
pub use executor::{Pipeline, PipelineMetrics, RunOutput, Session, SinkOutput};
pub use manifest::{Manifest, ManifestError};
pub use node::{Node, Runtime};
pub use registry::{NodeDef, NodeRegistry};
