//! The `remotemedia` command of the Python package: the Rust CLI plus Python nodes.

use anyhow::anyhow;
use pyo3::prelude::*;
use remotemedia_cli::Host;
use remotemedia_core::data::Data;
use remotemedia_core::manifest::Manifest;
use remotemedia_core::registry::NodeRegistry;

use crate::registry::{base_registry, register_importable};

/// Adds importable Python node classes (`"module:Class"` node types) to the CLI.
pub struct PyHost;

impl Host for PyHost {
    fn registry(&self) -> NodeRegistry {
        base_registry().clone()
    }

    fn prepare(&self, manifest: &Manifest, registry: &mut NodeRegistry) -> anyhow::Result<()> {
        Python::attach(|py| {
            register_importable(py, manifest, registry).map_err(|e| anyhow!("{}", e.value(py)))
        })
    }

    fn register_unbuilt(
        &self,
        manifest: &Manifest,
        registry: &mut NodeRegistry,
    ) -> anyhow::Result<()> {
        // Import each class and check it is a node, but never construct one: validating a
        // manifest must not run its nodes' constructors.
        Python::attach(|py| -> anyhow::Result<()> {
            for spec in &manifest.nodes {
                let t = spec.node_type.as_str();
                if registry.contains(t) || !t.contains(':') {
                    continue;
                }
                crate::registry::import_node_class(py, t).map_err(|e| {
                    anyhow!(
                        "node '{}': cannot import node type '{t}': {}",
                        spec.id,
                        e.value(py)
                    )
                })?;
                registry.register(std::sync::Arc::new(
                    remotemedia_cli::UncheckedNodeType::new(t),
                ));
            }
            Ok(())
        })
    }

    fn to_json(&self, data: &Data) -> Option<serde_json::Value> {
        Python::attach(|py| crate::convert::data_to_json(py, data))
    }

    fn server_registry(
        &self,
        config: &remotemedia_grpc::ServerConfig,
    ) -> anyhow::Result<NodeRegistry> {
        let mut registry = remotemedia_cli::builtin_registry();
        Python::attach(|py| {
            crate::registry::register_allowlisted(py, &config.python_nodes, &mut registry)
                .map_err(|e| anyhow!("{}", e.value(py)))
        })?;
        Ok(registry)
    }

    fn renderer(&self) -> remotemedia_grpc::convert::JsonRenderer {
        crate::convert::renderer()
    }
}
