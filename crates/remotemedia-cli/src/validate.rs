//! `remotemedia validate`: checks manifests without building their nodes, and the node type
//! that stands in for a Python node it does not build.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use remotemedia_core::manifest::{self, Manifest};
use remotemedia_core::text::{bounded, shown};

use crate::{error_text, Host};

/// Checks manifests without building their nodes: nothing a manifest names is imported or
/// run (a Python node type is only checked for its form, `module:Class`).
/// With `import`, a host may import them to check more (the Python package does).
pub(crate) fn validate(paths: &[PathBuf], import: bool, host: &dyn Host) -> Result<()> {
    let mut failed = 0;
    for path in paths {
        match check_manifest(path, import, host) {
            Ok((manifest, graph)) => {
                let edges: usize = (0..graph.len()).map(|i| graph.downstream(i).len()).sum();
                let sinks: Vec<&str> = graph.sinks().map(|i| graph.ids()[i].as_str()).collect();
                println!(
                    "{}: ok ({}: {} node(s), {} connection(s); sink(s): {})",
                    bounded(&path.display().to_string()),
                    shown(manifest.name()),
                    graph.len(),
                    edges,
                    sinks.join(", ")
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {}", error_text(&e));
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} manifest(s) invalid", paths.len());
    }
    Ok(())
}

fn check_manifest(
    path: &Path,
    import: bool,
    host: &dyn Host,
) -> Result<(Manifest, remotemedia_core::graph::PipelineGraph)> {
    let text = crate::load::read_manifest_file(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let manifest = manifest::parse(&text).with_context(|| path.display().to_string())?;
    let mut registry = host.registry();
    host.register_unbuilt(&manifest, import, &mut registry)
        .with_context(|| path.display().to_string())?;
    let graph =
        manifest::validate(&manifest, &registry).with_context(|| path.display().to_string())?;
    Ok((manifest, graph))
}

/// `package.module:Class`: dotted identifiers, one colon.
pub fn is_import_path(t: &str) -> bool {
    let ident = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|p| {
                p.chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                    && p.chars().all(|c| c.is_alphanumeric() || c == '_')
            })
    };
    matches!(t.split_once(':'), Some((m, c)) if ident(m) && ident(c))
}

/// A node type seen by `validate` that is not built in: accepted, never built.
pub struct UncheckedNodeType {
    info: remotemedia_core::registry::NodeInfo,
}

impl UncheckedNodeType {
    /// Accepts `node_type` without building it.
    pub fn new(node_type: &str) -> Self {
        Self {
            info: remotemedia_core::registry::NodeInfo::untyped(
                node_type,
                "a Python node type (not built by validate)".to_string(),
                remotemedia_core::node::Runtime::Host("python"),
            ),
        }
    }
}

impl remotemedia_core::registry::NodeFactory for UncheckedNodeType {
    fn info(&self) -> &remotemedia_core::registry::NodeInfo {
        &self.info
    }
    fn check(
        &self,
        _: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<remotemedia_core::registry::ParamIssue> {
        Vec::new()
    }
    fn create(
        &self,
        _: &str,
        _: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Box<dyn remotemedia_core::Node>, Vec<remotemedia_core::registry::ParamIssue>> {
        Err(vec![remotemedia_core::registry::ParamIssue::new(
            "",
            "validate does not build Python nodes",
        )])
    }
}
