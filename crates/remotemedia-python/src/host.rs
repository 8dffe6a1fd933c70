//! The `remotemedia` command of the Python package: the Rust CLI plus Python nodes.

use anyhow::anyhow;
use pyo3::prelude::*;
use remotemedia_cli::Host;
use remotemedia_core::data::Data;
use remotemedia_core::manifest::Manifest;
use remotemedia_core::registry::NodeRegistry;
use remotemedia_core::text::{bounded, shown};

use crate::registry::{base_registry, register_importable};

/// Adds importable Python node classes (`"module:Class"` node types) to the CLI.
pub struct PyHost;

impl Host for PyHost {
    fn registry(&self) -> NodeRegistry {
        base_registry().clone()
    }

    fn abandoned_calls(&self) -> fn() -> usize {
        crate::pynode::abandoned_calls
    }

    fn prepare(&self, manifest: &Manifest, registry: &mut NodeRegistry) -> anyhow::Result<()> {
        Python::attach(|py| {
            register_importable(py, manifest, registry).map_err(|e| anyhow!("{}", e.value(py)))
        })
    }

    fn register_unbuilt(
        &self,
        manifest: &Manifest,
        import: bool,
        registry: &mut NodeRegistry,
    ) -> anyhow::Result<()> {
        // Never construct a node: validating a manifest must not run its nodes' code. By
        // default not even the module's: it is located and its source parsed
        // (`remotemedia._locate`); with `--import` it is imported and the class checked.
        Python::attach(|py| -> anyhow::Result<()> {
            let locate = if import {
                None
            } else {
                Some(py.import("remotemedia._locate")?.getattr("locate_class")?)
            };
            for spec in &manifest.nodes {
                let t = spec.node_type.as_str();
                if registry.contains(t) || !remotemedia_cli::is_import_path(t) {
                    continue;
                }
                let checked = match &locate {
                    Some(locate) => locate.call1((t,)).map(drop),
                    None => crate::registry::import_node_class(py, t).map(drop),
                };
                checked.map_err(|e| {
                    anyhow!(
                        "node '{}': cannot {} node type {}: {}",
                        spec.id,
                        if import { "import" } else { "find" },
                        shown(t),
                        bounded(&e.value(py).to_string())
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
