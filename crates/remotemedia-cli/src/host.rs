//! What the embedding program adds to the CLI ([`Host`]), the plain native host, and the
//! built-in node registry.

use anyhow::{bail, Result};
use remotemedia_core::data::Data;
use remotemedia_core::manifest::Manifest;
use remotemedia_core::registry::NodeRegistry;

use crate::validate::{is_import_path, UncheckedNodeType};

/// The built-in nodes, plus the fault-injection nodes when `REMOTEMEDIA_TEST_NODES=1` in a
/// test build (release builds do not contain them).
pub fn builtin_registry() -> NodeRegistry {
    let mut r = remotemedia_nodes::builtin_registry();
    if std::env::var_os("REMOTEMEDIA_TEST_NODES").is_some_and(|v| v == "1") {
        remotemedia_core::registry::register_test_nodes(&mut r);
    }
    r
}

/// What the embedding program adds to the CLI (e.g. Python nodes).
pub trait Host {
    /// The node types available to local runs before looking at a manifest.
    fn registry(&self) -> NodeRegistry {
        let mut r = builtin_registry();
        remotemedia_grpc::remote_node::register(&mut r);
        r
    }

    /// The node types a server offers to its clients: the built-ins and the operator's
    /// `python_nodes`. Never anything a manifest names on its own.
    fn server_registry(&self, config: &remotemedia_grpc::ServerConfig) -> Result<NodeRegistry> {
        if !config.python_nodes.is_empty() {
            bail!(
                "python_nodes in the server config need the Python package's `remotemedia serve` \
                 (pip install remotemedia); this binary runs native nodes only"
            );
        }
        Ok(builtin_registry())
    }

    /// How non-audio values are rendered on the wire.
    fn renderer(&self) -> remotemedia_grpc::convert::JsonRenderer {
        remotemedia_grpc::convert::default_renderer()
    }

    /// Registers node types a manifest needs that are not built in (e.g. Python classes).
    fn prepare(&self, _manifest: &Manifest, _registry: &mut NodeRegistry) -> Result<()> {
        Ok(())
    }

    /// Registers, for `validate`, the node types a manifest names that are not built in,
    /// without building any node: by default an import path is accepted by its form; a host
    /// may check more without running code (the Python package finds the module and reads
    /// its source), and with `import`, by importing (the Python package checks the class).
    fn register_unbuilt(
        &self,
        manifest: &Manifest,
        import: bool,
        registry: &mut NodeRegistry,
    ) -> Result<()> {
        let _ = import;
        for spec in &manifest.nodes {
            let t = spec.node_type.as_str();
            if !registry.contains(t) && is_import_path(t) {
                registry.register(std::sync::Arc::new(UncheckedNodeType::new(t)));
            }
        }
        Ok(())
    }

    /// JSON for a non-audio result (a host can render its own objects).
    fn to_json(&self, data: &Data) -> Option<serde_json::Value> {
        data.to_json()
    }

    /// Counts the node calls still running after what called them went away (a stream
    /// cancelled, a deadline passed), for the server's metrics; native nodes have none.
    fn abandoned_calls(&self) -> fn() -> usize {
        || 0
    }
}

/// The plain Rust host: native nodes only.
pub struct NativeHost;
impl Host for NativeHost {}
