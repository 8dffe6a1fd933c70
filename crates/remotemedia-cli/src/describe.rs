//! One-line pipeline descriptions, as `gst-launch` users write them:
//! `"FormatConverterNode target_format=f32 ! AudioResampleNode target_rate=16000 ! VADNode"`.
//!
//! Elements are separated by a `!` standing alone; each element is a node type followed by
//! `key=value` parameters. A value is read as JSON when it parses as JSON (`16000`, `-35.5`,
//! `true`, `null`, `[1,2]`, `{"a":1}`, `"quoted"`), otherwise as a plain string (`high`). The
//! parameter `id=name` sets the node's id (default: the type in snake case without `Node`,
//! numbered when repeated). Nodes are connected in the order written. The result is an ordinary
//! manifest (`--print-manifest` shows it), checked like any other.
//!
//! Written here rather than with a shell-words crate: the grammar is whitespace-separated
//! tokens (the shell already removed its own quoting), and the interesting part, JSON values
//! and id naming, is ours.

use anyhow::{bail, Result};
use serde_json::{json, Map, Value};

/// Whether `text` looks like a description rather than a manifest path: it contains a `!`
/// element separator, a `key=value` parameter after a node type, or is one node type alone
/// (a name such as `SpeechVADNode`: a capital letter, then letters, digits and `_`; a file
/// name has a `.` or a `/`).
pub fn looks_like_description(text: &str) -> bool {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let node_type = |t: &str| {
        t.starts_with(|c: char| c.is_ascii_uppercase())
            && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    tokens.contains(&"!")
        || (tokens.len() > 1 && tokens[1..].iter().any(|t| t.contains('=')))
        || (tokens.len() == 1 && node_type(tokens[0]))
}

/// Parses a one-line description into a manifest (as JSON, for [`manifest::from_value`]).
///
/// [`manifest::from_value`]: remotemedia_core::manifest::from_value
pub fn parse_description(text: &str) -> Result<Value> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    if tokens.is_empty() {
        bail!("empty pipeline description; write e.g. \"AudioResampleNode target_rate=16000 ! VADNode\"");
    }
    let mut nodes = Vec::new();
    let mut used_ids: Vec<String> = Vec::new();
    for (index, element) in tokens.split(|t| *t == "!").enumerate() {
        let Some((node_type, params)) = element.split_first() else {
            bail!(
                "element {} of the description is empty: two '!' in a row, or one at an end",
                index + 1
            );
        };
        if node_type.contains('=') {
            bail!(
                "element {}: '{node_type}' is a parameter where a node type is expected; \
                 each element starts with a node type (e.g. AudioResampleNode target_rate=16000)",
                index + 1
            );
        }
        let mut map = Map::new();
        let mut id = None;
        for p in params {
            let Some((key, raw)) = p.split_once('=') else {
                bail!(
                    "{node_type}: '{p}' is not key=value; separate nodes with ' ! ' \
                     (a '!' between spaces)"
                );
            };
            if key.is_empty() {
                bail!("{node_type}: '{p}' has no parameter name before '='");
            }
            let value = serde_json::from_str::<Value>(raw).unwrap_or_else(|_| json!(raw));
            if key == "id" {
                id = Some(match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                });
                continue;
            }
            if map.insert(key.to_string(), value).is_some() {
                bail!("{node_type}: parameter '{key}' is given twice");
            }
        }
        let id = match id {
            Some(id) => id,
            None => unique(default_id(node_type), &used_ids),
        };
        used_ids.push(id.clone());
        nodes.push(json!({"id": id, "node_type": node_type, "params": map}));
    }
    let connections: Vec<Value> = used_ids
        .windows(2)
        .map(|w| json!({"from": w[0], "to": w[1]}))
        .collect();
    Ok(json!({
        "version": "v1",
        "metadata": {"name": "command_line"},
        "nodes": nodes,
        "connections": connections,
    }))
}

/// `AudioResampleNode` -> `audio_resample`; `mypkg.nodes:Denoise` -> `denoise`.
fn default_id(node_type: &str) -> String {
    let class = node_type.rsplit([':', '.']).next().unwrap_or(node_type);
    let base = class
        .strip_suffix("Node")
        .filter(|b| !b.is_empty())
        .unwrap_or(class);
    let mut out = String::new();
    let chars: Vec<char> = base.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower = i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_numeric());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_uppercase())) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else if c.is_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    if out.is_empty() {
        "node".to_string()
    } else {
        out
    }
}

fn unique(base: String, used: &[String]) -> String {
    if !used.contains(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}_{n}"))
        .find(|c| !used.contains(c))
        .expect("an unused id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_with_json_and_plain_values() {
        let m = parse_description(
            "FormatConverterNode target_format=f32 ! AudioResampleNode target_rate=16000 \
             quality=high ! VADNode threshold=-35.5 emit=segments ! VADNode id=second",
        )
        .unwrap();
        let nodes = m["nodes"].as_array().unwrap();
        let ids: Vec<&str> = nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["format_converter", "audio_resample", "vad", "second"]);
        assert_eq!(nodes[1]["params"]["target_rate"], json!(16000));
        assert_eq!(nodes[1]["params"]["quality"], json!("high"));
        assert_eq!(nodes[2]["params"]["threshold"], json!(-35.5));
        assert_eq!(nodes[3]["params"], json!({}));
        assert_eq!(
            m["connections"],
            json!([
                {"from": "format_converter", "to": "audio_resample"},
                {"from": "audio_resample", "to": "vad"},
                {"from": "vad", "to": "second"},
            ])
        );
        remotemedia_core::manifest::from_value(m).expect("a valid manifest");
    }

    #[test]
    fn repeated_types_get_numbered_ids() {
        let m = parse_description("GainNode db=-3 ! GainNode db=3 ! mypkg.nodes:Denoise").unwrap();
        let ids: Vec<&str> = m["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["gain", "gain_2", "denoise"]);
        assert_eq!(default_id("VADNode"), "vad");
        assert_eq!(default_id("SpeechVADNode"), "speech_vad");
        assert_eq!(default_id("PassThroughNode"), "pass_through");
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse_description("GainNode db=-3 !! VADNode").unwrap_err();
        assert!(e.to_string().contains("'!!' is not key=value"), "{e}");
        let e = parse_description("GainNode db=-3 ! ! VADNode").unwrap_err();
        assert!(
            e.to_string()
                .contains("element 2 of the description is empty"),
            "{e}"
        );
        let e = parse_description("target_rate=16000 ! VADNode").unwrap_err();
        assert!(
            e.to_string().contains("is a parameter where a node type"),
            "{e}"
        );
        let e = parse_description("GainNode db=1 db=2").unwrap_err();
        assert!(e.to_string().contains("'db' is given twice"), "{e}");
        assert!(parse_description("  ").is_err());
    }

    #[test]
    fn descriptions_are_told_from_paths() {
        assert!(looks_like_description("A ! B"));
        assert!(looks_like_description(
            "AudioResampleNode target_rate=16000"
        ));
        assert!(!looks_like_description("examples/pipeline.json"));
        assert!(!looks_like_description("my pipeline.json"));
        // One node with its defaults; not a file name.
        assert!(looks_like_description("SpeechVADNode"));
        assert!(looks_like_description(" VADNode "));
        assert!(!looks_like_description("pipeline"));
        assert!(!looks_like_description("Pipeline.json"));
        assert!(!looks_like_description("Manifests/vad"));
    }
}
