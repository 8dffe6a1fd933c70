//! remotemedia core: manifest -> graph -> executor, with native audio nodes, retries, a
//! circuit breaker and per-node metrics. No Python and no gRPC here: those live in their own
//! crates and depend on this one.
//!
//! ```
//! use remotemedia_core::{data::{AudioBuffer, Data}, executor::Pipeline, registry::NodeRegistry};
//!
//! let manifest = r#"{"version": "v1",
//!   "nodes": [{"id": "resample", "node_type": "AudioResampleNode", "params": {"target_rate": 16000}}]}"#;
//! let pipeline = Pipeline::from_json(manifest, &NodeRegistry::with_builtins()).unwrap();
//! let input = AudioBuffer::mono_f32(vec![0.0; 48_000], 48_000);
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! let out = rt.block_on(pipeline.run(Data::Audio(input))).unwrap();
//! assert_eq!(out.outputs["resample"].as_audio().unwrap().frames(), 16_000);
//! ```
#![warn(missing_docs)]

pub mod data;
pub mod error;
pub mod executor;
pub mod graph;
pub mod manifest;
pub mod node;
pub mod nodes;
pub mod registry;
pub mod schema;

pub use data::{AudioBuffer, Data, SampleFormat, Samples, Segment};
pub use error::{ExecutorError, NodeError, NodeErrorKind};
pub use executor::{Pipeline, PipelineMetrics, RunOutput, Session, SinkOutput};
pub use manifest::{Manifest, ManifestError};
pub use node::{Node, Runtime};
pub use registry::NodeRegistry;
