//! Meaning checks on a parsed [`Manifest`]: ids, node types, parameters, policies, graph.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::error::{ManifestError, ManifestIssue, ParamIssue};
use super::limits::*;
use super::types::{Manifest, NodeSpec};
use crate::graph::{Cycle, PipelineGraph};
use crate::text::shown;

/// What the checks need to know about node types (implemented by
/// [`NodeRegistry`](crate::registry::NodeRegistry)).
pub trait NodeCatalog {
    /// Checks `params` for `node_type`: `None` when the type is unknown, else every problem.
    fn check_params(&self, node_type: &str, params: &Map<String, Value>)
        -> Option<Vec<ParamIssue>>;
    /// The closest known type name, for "did you mean" hints.
    fn suggest(&self, node_type: &str) -> Option<&str>;
    /// Every known type name, sorted.
    fn node_types(&self) -> Vec<&str>;
    /// Whether nodes of `node_type` are Python nodes, which can run in a worker process
    /// (`"isolation": "process"`) and be batched (`"batch"`).
    fn can_isolate(&self, node_type: &str) -> bool {
        let _ = node_type;
        false
    }
}

/// Checks everything that can be checked before running; returns the graph on success.
/// Every problem is reported, each naming the node id and field and what would be valid.
pub fn validate(
    manifest: &Manifest,
    registry: &dyn NodeCatalog,
) -> Result<PipelineGraph, ManifestError> {
    let mut issues = Vec::new();
    if manifest.nodes.is_empty() {
        issues.push(ManifestIssue::root(
            "nodes",
            "a pipeline needs at least one node",
        ));
    }
    if manifest.nodes.len() > MAX_NODES as usize {
        issues.push(ManifestIssue::root(
            "nodes",
            format!("{} nodes; the limit is {MAX_NODES}", manifest.nodes.len()),
        ));
    }
    if manifest.connections.len() > MAX_CONNECTIONS as usize {
        issues.push(ManifestIssue::root(
            "connections",
            format!(
                "{} connections; the limit is {MAX_CONNECTIONS}",
                manifest.connections.len()
            ),
        ));
    }

    let mut first_use: HashMap<&str, usize> = HashMap::new();
    for (i, node) in manifest.nodes.iter().enumerate() {
        check_id(i, node, &mut issues);
        if let Some(&prev) = first_use.get(node.id.as_str()) {
            issues.push(ManifestIssue::root(
                format!("nodes[{i}].id"),
                format!(
                    "'{}' is already the id of nodes[{prev}]; ids must be unique",
                    node.id
                ),
            ));
        } else {
            first_use.insert(&node.id, i);
        }
        check_node(node, registry, &mut issues);
    }

    for (i, c) in manifest.connections.iter().enumerate() {
        for (field, id) in [("from", &c.from), ("to", &c.to)] {
            if !first_use.contains_key(id.as_str()) {
                issues.push(ManifestIssue::root(
                    format!("connections[{i}].{field}"),
                    format!(
                        "no node has id {}; node ids are: {}",
                        shown(id),
                        manifest
                            .nodes
                            .iter()
                            .map(|n| n.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        if c.from == c.to {
            issues.push(ManifestIssue::root(
                format!("connections[{i}]"),
                format!(
                    "'{}' is connected to itself; a node cannot feed itself",
                    c.from
                ),
            ));
        }
        if let Some(j) = manifest.connections[..i].iter().position(|d| d == c) {
            issues.push(ManifestIssue::root(
                format!("connections[{i}]"),
                format!(
                    "{} -> {} repeats connections[{j}]; each connection may appear once",
                    c.from, c.to
                ),
            ));
        }
    }
    if !issues.is_empty() {
        return Err(ManifestError::new(issues));
    }

    let ids: Vec<String> = manifest.nodes.iter().map(|n| n.id.clone()).collect();
    let edges: Vec<(usize, usize)> = manifest
        .connections
        .iter()
        .map(|c| (first_use[c.from.as_str()], first_use[c.to.as_str()]))
        .collect();
    PipelineGraph::new(ids, &edges).map_err(|Cycle(cycle)| {
        let names: Vec<&str> = cycle
            .iter()
            .map(|&i| manifest.nodes[i].id.as_str())
            .collect();
        ManifestError::single(ManifestIssue::root(
            "connections",
            format!(
                "cycle detected: {}; a pipeline must be acyclic",
                names.join(" -> ")
            ),
        ))
    })
}

fn check_id(i: usize, node: &NodeSpec, issues: &mut Vec<ManifestIssue>) {
    let id = &node.id;
    let valid_chars = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if id.is_empty() || id.len() > MAX_ID_LEN as usize || !valid_chars {
        issues.push(ManifestIssue::root(
            format!("nodes[{i}].id"),
            format!(
                "{:?} is not a valid id; use 1 to {MAX_ID_LEN} characters from A-Z a-z 0-9 _ . -",
                id
            ),
        ));
    }
}

fn check_node(node: &NodeSpec, registry: &dyn NodeCatalog, issues: &mut Vec<ManifestIssue>) {
    let id = node.id.as_str();
    let ty = node.node_type.as_str();
    let type_len = ty.chars().count();
    let checked = registry.check_params(ty, &node.params);
    let known_type = checked.is_some().then_some(ty);
    match checked {
        // Checked first so that neither message echoes the value raw: it goes to terminals
        // (CLI) and gRPC status messages, where control characters and megabytes do harm.
        None if type_len == 0 || type_len > MAX_NODE_TYPE_LEN as usize => {
            issues.push(ManifestIssue::node(
                id,
                None,
                "node_type",
                format!(
                    "{} is {type_len} characters; a node type has 1 to {MAX_NODE_TYPE_LEN}",
                    shown(ty)
                ),
            ));
        }
        None if ty.chars().any(char::is_control) => {
            issues.push(ManifestIssue::node(
                id,
                None,
                "node_type",
                format!(
                    "{} contains control characters (newline, escape, NUL, ...); a node type is \
                     a registered name or a Python 'module:Class' path",
                    shown(ty)
                ),
            ));
        }
        None => {
            let hint = registry
                .suggest(ty)
                .map(|s| format!("did you mean '{s}'? "))
                .unwrap_or_default();
            issues.push(ManifestIssue::node(
                id,
                None,
                "node_type",
                format!(
                    "unknown node type {}; {hint}known types: {}",
                    shown(ty),
                    registry.node_types().join(", ")
                ),
            ));
        }
        Some(param_issues) => {
            for p in param_issues {
                issues.push(ManifestIssue::node(
                    id,
                    Some(ty),
                    if p.field.is_empty() {
                        "params".to_string()
                    } else {
                        format!("params.{}", p.field)
                    },
                    p.message,
                ));
            }
        }
    }
    if let Some(retry) = &node.retry {
        if let Some(n) = retry.max_attempts {
            if !(1..=MAX_ATTEMPTS).contains(&n) {
                issues.push(ManifestIssue::node(
                    id,
                    known_type,
                    "retry.max_attempts",
                    format!(
                        "{n} is out of range; expected 1..={MAX_ATTEMPTS} (1 disables retries)"
                    ),
                ));
            }
        }
        for (field, v) in [
            ("retry.initial_delay_ms", retry.initial_delay_ms),
            ("retry.max_delay_ms", retry.max_delay_ms),
        ] {
            if let Some(v) = v {
                if v > MAX_RETRY_DELAY_MS {
                    issues.push(ManifestIssue::node(
                        id,
                        known_type,
                        field,
                        format!("{v} is out of range; expected 0..={MAX_RETRY_DELAY_MS} ms"),
                    ));
                }
            }
        }
        let initial = retry
            .initial_delay_ms
            .unwrap_or(DEFAULT_RETRY_INITIAL_DELAY_MS);
        let max = retry.max_delay_ms.unwrap_or(DEFAULT_RETRY_MAX_DELAY_MS);
        if max < initial {
            issues.push(ManifestIssue::node(
                id,
                known_type,
                "retry.max_delay_ms",
                format!("{max} is below initial_delay_ms ({initial}); the cap must be >= the initial delay"),
            ));
        }
    }
    if node.isolation == Some(super::types::Isolation::Process)
        && known_type.is_some()
        && !registry.can_isolate(ty)
    {
        issues.push(ManifestIssue::node(
            id,
            known_type,
            "isolation",
            "\"process\" runs a Python node in a worker process; this node type cannot run \
             there (native nodes run in the runtime, which they cannot crash; the plain Rust \
             `remotemedia` binary runs no Python nodes): remove it",
        ));
    }
    if let Some(b) = &node.batch {
        if known_type.is_some() && !registry.can_isolate(ty) {
            issues.push(ManifestIssue::node(
                id,
                known_type,
                "batch",
                "batching gathers a Python node's calls into its process_batch method; this \
                 node type is not a Python node: remove it",
            ));
        }
        if !(1..=MAX_BATCH_SIZE).contains(&b.max_size) {
            issues.push(ManifestIssue::node(
                id,
                known_type,
                "batch.max_size",
                format!(
                    "{} is out of range; expected 1..={MAX_BATCH_SIZE}",
                    b.max_size
                ),
            ));
        }
        if !(0.0..=MAX_BATCH_DELAY_MS).contains(&b.max_delay_ms) {
            issues.push(ManifestIssue::node(
                id,
                known_type,
                "batch.max_delay_ms",
                format!(
                    "{} is out of range; expected 0..={MAX_BATCH_DELAY_MS} ms",
                    b.max_delay_ms
                ),
            ));
        }
    }
    if let Some(t) = node.timeout_ms {
        if !(1..=MAX_TIMEOUT_MS).contains(&t) {
            issues.push(ManifestIssue::node(
                id,
                known_type,
                "timeout_ms",
                format!("{t} is out of range; expected 1..={MAX_TIMEOUT_MS} ms"),
            ));
        }
    }
    if let Some(cb) = &node.circuit_breaker {
        if let Some(n) = cb.failure_threshold {
            if !(1..=MAX_BREAKER_THRESHOLD).contains(&n) {
                issues.push(ManifestIssue::node(
                    id,
                    known_type,
                    "circuit_breaker.failure_threshold",
                    format!("{n} is out of range; expected 1..={MAX_BREAKER_THRESHOLD}"),
                ));
            }
        }
        if let Some(ms) = cb.cooldown_ms {
            if !(1..=MAX_TIMEOUT_MS).contains(&ms) {
                issues.push(ManifestIssue::node(
                    id,
                    known_type,
                    "circuit_breaker.cooldown_ms",
                    format!("{ms} is out of range; expected 1..={MAX_TIMEOUT_MS} ms"),
                ));
            }
        }
    }
}
