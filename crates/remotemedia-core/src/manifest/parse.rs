//! JSON text -> [`Manifest`], collecting every structural problem with its node id and path.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ManifestError, ManifestIssue};
use super::limits::MAX_MANIFEST_BYTES;
use super::types::{Connection, Manifest, Metadata, NodeSpec, MANIFEST_VERSION};

const TOP_LEVEL_FIELDS: [&str; 4] = ["version", "metadata", "nodes", "connections"];

/// Parses manifest JSON. Checks structure and types only; [`super::validate`] checks meaning.
/// A leading byte-order mark (what some Windows editors write) is skipped.
pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::single(ManifestIssue::root(
            "",
            format!(
                "manifest is {} bytes; the limit is {MAX_MANIFEST_BYTES} bytes (1 MiB)",
                text.len()
            ),
        )));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde::de::DeserializeSeed::deserialize(NoDuplicateKeys { path: "" }, &mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| {
            ManifestError::single(ManifestIssue::root("", format!("not valid JSON: {e}")))
        })?;
    from_value(value)
}

/// Reads a JSON value like `serde_json::Value` does, but refuses an object with the same key
/// twice (serde_json keeps the last silently: `{"id": "a", "id": "b"}` would run node "b"),
/// naming the key and where it is.
struct NoDuplicateKeys<'a> {
    path: &'a str,
}

impl<'de> serde::de::DeserializeSeed<'de> for NoDuplicateKeys<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(NoDuplicateKeys {
            path: &format!("{}[{}]", self.path, items.len()),
        })? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut obj = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if obj.contains_key(&key) {
                let at = if self.path.is_empty() {
                    "the top level".to_string()
                } else {
                    format!("{:?}", self.path.chars().take(128).collect::<String>())
                };
                // Debug-quoted (control characters escaped) and cut: keys come from anyone.
                let shown: String = key.chars().take(64).collect();
                return Err(serde::de::Error::custom(format!(
                    "duplicate key {shown:?} in {at} (JSON would keep only the last; remove one)"
                )));
            }
            let value = map.next_value_seed(NoDuplicateKeys { path: &path })?;
            obj.insert(key, value);
        }
        Ok(Value::Object(obj))
    }
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
            let hint = crate::text::closest(key, TOP_LEVEL_FIELDS.iter().copied())
                .map(|f| format!("; did you mean \"{f}\"?"))
                .unwrap_or_default();
            issues.push(ManifestIssue::root(
                key.clone(),
                format!(
                    "unknown field; valid fields are {}{hint}",
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
        let message = with_suggestion(message);
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

/// serde's "unknown field `treshold`, expected one of `threshold`, ..." (or "unknown variant")
/// with "; did you mean `threshold`?" added when one expected name is close.
fn with_suggestion(message: String) -> String {
    let parse = |m: &str| -> Option<(String, Vec<String>)> {
        let rest = m
            .strip_prefix("unknown field `")
            .or_else(|| m.strip_prefix("unknown variant `"))?;
        let (given, expected) = rest.split_once('`')?;
        let names: Vec<String> = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect();
        Some((given.to_string(), names))
    };
    match parse(&message) {
        Some((given, names)) => {
            match crate::text::closest(&given, names.iter().map(String::as_str)) {
                Some(best) => format!("{message}; did you mean `{best}`?"),
                None => message,
            }
        }
        None => message,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_refused_naming_it_and_where() {
        let e = parse(
            r#"{"version": "v1", "nodes": [{"id": "a", "node_type": "VADNode", "id": "b"}],
                "connections": []}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(r#"duplicate key "id" in "nodes[0]" (JSON would keep only the last"#),
            "{e}"
        );
        let e = parse(r#"{"version": "v1", "version": "v1", "nodes": []}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(r#"duplicate key "version" in the top level"#),
            "{e}"
        );
        // The same key in different objects is fine, and values parse as serde_json's do.
        let m = parse(
            r#"{"version": "v1", "nodes": [{"id": "a", "node_type": "VADNode",
                "params": {"threshold": -30.5, "frame_length_ms": 20}}], "connections": []}"#,
        )
        .unwrap();
        assert_eq!(m.nodes[0].params["threshold"], serde_json::json!(-30.5));
        assert!(parse(r#"{"version": "v1"} trailing"#).is_err());
    }

    #[test]
    fn issue_messages_never_carry_control_characters_or_huge_values() {
        let text = format!(
            r#"{{"version": "v1", "metadata": {{"name": 5}}, "nodes": [
                {{"id": "a\u001b[2J", "node_type": "T\u0007{}", "{}": 1}}]}}"#,
            "t".repeat(50_000),
            "k".repeat(50_000)
        );
        let e = parse(&text).unwrap_err().to_string();
        for line in e.lines() {
            assert!(!line.chars().any(char::is_control), "{line:?}");
            assert!(line.len() < 2_400, "{} bytes", line.len());
        }
        assert!(e.contains(r"node 'a\u{1b}[2J'"), "{e}");
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        let m = parse("\u{feff}{\"version\": \"v1\", \"nodes\": []}").unwrap();
        assert!(m.nodes.is_empty());
        // Only at the start.
        assert!(parse("{\"version\": \"v1\", \"nodes\": []}\u{feff}").is_err());
    }
}
