//! The manifest's JSON Schema, generated from the Rust types (schemars) so it cannot drift.
//! A copy is checked in at `schema/manifest.v1.schema.json`; a test fails when it is stale.

use serde_json::{json, Map, Value};

use crate::manifest::Manifest;
use crate::registry::NodeRegistry;

/// JSON Schema (draft 2020-12) of manifest v1, with each native node type's `params` schema
/// attached by an `if node_type == X then params: ...` rule. Other node types (e.g. Python
/// nodes) accept any `params` object.
pub fn manifest_schema(registry: &NodeRegistry) -> Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(Manifest)).expect("schema serializes");
    let mut extra_defs = Map::new();
    let mut rules = Vec::new();
    for info in registry.infos() {
        let mut params = info.params_schema.clone();
        if let Value::Object(obj) = &mut params {
            obj.remove("$schema");
            obj.remove("title");
            if let Some(Value::Object(defs)) = obj.remove("$defs") {
                extra_defs.extend(defs);
            }
            obj.insert(
                "description".into(),
                Value::String(format!("Parameters of {}.", info.node_type)),
            );
        }
        rules.push(json!({
            "if": {
                "properties": {"node_type": {"const": info.node_type}},
                "required": ["node_type"]
            },
            "then": {"properties": {"params": params}}
        }));
    }
    let defs = schema
        .get_mut("$defs")
        .and_then(Value::as_object_mut)
        .expect("Manifest schema has $defs");
    if let Some(Value::Object(node)) = defs.get_mut("NodeSpec") {
        node.insert("allOf".into(), Value::Array(rules));
    }
    defs.extend(extra_defs);
    schema
}

/// [`manifest_schema`] pretty-printed with a trailing newline (the form checked into the
/// repository, for the built-in registry).
pub fn manifest_schema_pretty(registry: &NodeRegistry) -> String {
    let schema = manifest_schema(registry);
    let mut text = serde_json::to_string_pretty(&schema).expect("schema serializes");
    text.push('\n');
    text
}
