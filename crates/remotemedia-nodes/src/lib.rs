//! remotemedia's built-in nodes. Each node type is defined once, by its
//! [`NodeDef`](remotemedia_core::NodeDef) implementation next to its code (name, description,
//! typed parameters, outputs, constructor); [`register_builtins`] takes the types. The manifest
//! schema, `remotemedia nodes`, the Python classes and the node docs are generated from those
//! definitions.
//!
//! ```
//! use remotemedia_core::{data::{AudioBuffer, Data}, executor::Pipeline};
//!
//! let manifest = r#"{"version": "v1",
//!   "nodes": [{"id": "resample", "node_type": "AudioResampleNode", "params": {"target_rate": 16000}}]}"#;
//! let pipeline = Pipeline::from_json(manifest, &remotemedia_nodes::builtin_registry()).unwrap();
//! let input = AudioBuffer::mono_f32(vec![0.0; 48_000], 48_000);
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! let out = rt.block_on(pipeline.run(Data::Audio(input))).unwrap();
//! assert_eq!(out.outputs["resample"].as_audio().unwrap().frames(), 16_000);
//! ```
#![warn(missing_docs)]

pub mod audio;
mod dsp;

mod passthrough;

pub use passthrough::{PassThroughNode, PassThroughParams};

use remotemedia_core::registry::NodeRegistry;

/// A registry holding every built-in node type.
pub fn builtin_registry() -> NodeRegistry {
    let mut r = NodeRegistry::empty();
    register_builtins(&mut r);
    r
}

/// Registers every built-in native node type.
pub fn register_builtins(registry: &mut NodeRegistry) {
    use audio::*;
    registry.register_type::<ResampleNode>();
    registry.register_type::<VadNode>();
    registry.register_type::<SpeechVadNode>();
    registry.register_type::<FormatConverterNode>();
    registry.register_type::<ChannelMixNode>();
    registry.register_type::<GainNode>();
    registry.register_type::<LoudnessNormalizeNode>();
    registry.register_type::<HighPassNode>();
    registry.register_type::<LowPassNode>();
    registry.register_type::<BiquadNode>();
    registry.register_type::<MixNode>();
    registry.register_type::<TrimSilenceNode>();
    registry.register_type::<FadeNode>();
    registry.register_type::<DenoiseNode>();
    registry.register_type::<AutoGainNode>();
    registry.register_type::<EchoCancelNode>();
    registry.register_type::<PassThroughNode>();
}
