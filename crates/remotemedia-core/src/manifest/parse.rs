//! JSON text -> [`Manifest`], collecting every structural problem with its node id and path.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ManifestError, ManifestIssue};
use super::limits::MAX_MANIFEST_BYTES;
use super::types::{Connection, Manifest, Metadata, NodeSpec, MANIFEST_VERSION};

const TOP_LEVEL_FIELDS: [&str; 4] = ["version", "metadata", "nodes", "connections"];

/// Parses manifest JSON. Checks structure and types only; [`super::validate`] checks meaning.
pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::single(ManifestIssue::root(
            "",
            format!(
                "manifest is {} bytes; the limit is {MAX_MANIFEST_BYTES} bytes (1 MiB)",
                text.len()
            ),
        )));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ManifestError::single(ManifestIssue::root("", format!("not valid JSON: {e}")))
    })?;
    from_value(value)
}

/// Reads a manifest from an already-parsed JSON value.
pub fn from_value(value: Value) -> Result<Manifest, ManifestError> {
    let Value::Object(mut obj) = value else {
        return Err(ManifestError::single(ManifestIssue::root(
            "",
            format!(
                "a manifest must be a JSON object with \"version\", \"nodes\" and \"connections\", got {}",
                json_kind(&value)
            ),
        )));
    };
    let mut issues = Vec::new();

    for key in obj.keys() {
        if !TOP_LEVEL_FIELDS.contains(&key.as_str()) {
            issues.push(ManifestIssue::root(
                key.clone(),
                format!(
                    "unknown field; valid fields are {}",
                    TOP_LEVEL_FIELDS.join(", ")
                ),
            ));
        }
    }

    let version = match obj.remove("version") {
        None => {
            issues.push(ManifestIssue::root(
                "version",
                format!("missing; expected \"{MANIFEST_VERSION}\""),
            ));
            String::new()
        }
        Some(Value::String(v)) if v == MANIFEST_VERSION => v,
        Some(Value::String(v)) => {
            issues.push(ManifestIssue::root(
                "version",
                format!("\"{v}\" is not supported; expected \"{MANIFEST_VERSION}\""),
            ));
            v
        }
        Some(other) => {
            issues.push(ManifestIssue::root(
                "version",
                format!(
                    "expected the string \"{MANIFEST_VERSION}\", got {}",
                    json_kind(&other)
                ),
            ));
            String::new()
        }
    };

    let metadata = match obj.remove("metadata") {
        None => Metadata::default(),
        Some(v) => typed::<Metadata>(v)
            .map_err(|(path, msg)| issues.push(ManifestIssue::root(join("metadata", &path), msg)))
            .unwrap_or_default(),
    };

    let mut nodes = Vec::new();
    match obj.remove("nodes") {
        None => issues.push(ManifestIssue::root(
            "nodes",
            "missing; expected a list of nodes like {\"id\": \"resample\", \"node_type\": \"AudioResampleNode\", \"params\": {...}}",
        )),
        Some(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                let id = item.get("id").and_then(Value::as_str).map(str::to_string);
                let node_type = item
                    .get("node_type")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                match typed::<NodeSpec>(item) {
                    Ok(spec) => nodes.push(spec),
                    Err((path, msg)) => issues.push(match id {
                        Some(id) => ManifestIssue::node(id, node_type.as_deref(), path, msg),
                        None => ManifestIssue::root(join(&format!("nodes[{i}]"), &path), msg),
                    }),
                }
            }
        }
        Some(other) => issues.push(ManifestIssue::root(
            "nodes",
            format!("expected a list of nodes, got {}", json_kind(&other)),
        )),
    }

    let mut connections = Vec::new();
    match obj.remove("connections") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                match typed::<Connection>(item) {
                    Ok(c) => connections.push(c),
                    Err((path, msg)) => issues.push(ManifestIssue::root(
                        join(&format!("connections[{i}]"), &path),
                        msg,
                    )),
                }
            }
        }
        Some(other) => issues.push(ManifestIssue::root(
            "connections",
            format!(
                "expected a list of {{\"from\": id, \"to\": id}} objects, got {}",
                json_kind(&other)
            ),
        )),
    }

    if !issues.is_empty() {
        return Err(ManifestError::new(issues));
    }
    Ok(Manifest {
        version,
        metadata,
        nodes,
        connections,
    })
}

/// Deserializes `value` as `T`; on failure returns the path inside `value` and serde's message
/// (which lists the valid field names for unknown fields).
pub(crate) fn typed<T: DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut path = e.path().to_string();
        // serde speaks Rust ("a map"); manifests are JSON ("an object").
        let message = e
            .inner()
            .to_string()
            .replace("expected a map", "expected an object");
        if path == "." {
            path.clear();
        }
        // serde reports a missing field at the parent; name the field itself.
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            return (join(&path, field), "missing (required)".to_string());
        }
        (path, message)
    })
}

fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (_, true) => prefix.to_string(),
        _ if path.starts_with('[') => format!("{prefix}{path}"),
        _ => format!("{prefix}.{path}"),
    }
}

/// "a string", "a number", ... for error messages.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
