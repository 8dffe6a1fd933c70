//! The artifacts generated from the node definitions (each node's `NodeDef`: name, description,
//! typed parameters, outputs): the Python classes (`python/remotemedia/nodes/_generated.py`),
//! the parameter tables of docs/nodes.md and the README's node table. Each test fails when its
//! checked-in copy is stale; `REMOTEMEDIA_BLESS=1 cargo test -p remotemedia-nodes --test
//! generated` rewrites them (`make generate`). Nobody edits them by hand.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use remotemedia_core::registry::{NodeInfo, Output, Outputs};
use remotemedia_nodes::builtin_registry;
use serde_json::Value;

const PYTHON: &str = "python/remotemedia/nodes/_generated.py";
const NODES_MD: &str = "docs/nodes.md";
const README: &str = "README.md";
const BLESS: &str = "REMOTEMEDIA_BLESS=1 cargo test -p remotemedia-nodes --test generated";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bless() -> bool {
    std::env::var_os("REMOTEMEDIA_BLESS").is_some_and(|v| v == "1")
}

/// Writes `fresh` when blessing, else asserts the checked-in file equals it.
fn check(rel: &str, fresh: &str) {
    let path = repo_root().join(rel);
    if bless() {
        std::fs::write(&path, fresh).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != fresh {
        let line = current
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| current.lines().count().min(fresh.lines().count()));
        panic!(
            "{rel} is stale (first difference at line {}): run `{BLESS}`",
            line + 1
        );
    }
}

#[test]
fn python_classes_are_generated_from_the_definitions() {
    check(PYTHON, &python_module(&infos()));
}

#[test]
fn node_docs_parameter_tables_are_generated_from_the_definitions() {
    let path = repo_root().join(NODES_MD);
    let text = std::fs::read_to_string(path).unwrap();
    let mut fresh = text.clone();
    for info in infos() {
        fresh = replace_block(
            &fresh,
            &format!("params {}", info.node_type),
            &params_table(&info),
        )
        .unwrap_or_else(|| {
            panic!(
                "{NODES_MD} has no `<!-- generated: params {} -->` block: every built-in \
                     node has a section with its parameter table",
                info.node_type
            )
        });
    }
    check(NODES_MD, &fresh);
}

#[test]
fn readme_node_table_is_generated_from_the_definitions() {
    let text = std::fs::read_to_string(repo_root().join(README)).unwrap();
    let fresh = replace_block(&text, "node table", &readme_table(&infos()))
        .expect("README.md has a `<!-- generated: node table -->` block");
    check(README, &fresh);
}

fn infos() -> Vec<NodeInfo> {
    builtin_registry().infos().cloned().collect()
}

/// Replaces what lies between `<!-- generated: {name} -->` and `<!-- /generated -->`.
fn replace_block(text: &str, name: &str, body: &str) -> Option<String> {
    let open = format!("<!-- generated: {name} -->\n");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find("<!-- /generated -->")?;
    Some(format!("{}{body}{}", &text[..start], &text[end..]))
}

// ----------------------------------------------------------------------------- the schema

/// One parameter as the generators need it (read from the params schema).
struct Param {
    name: String,
    /// The Python annotation.
    annotation: String,
    /// The Python default (a literal), `None` when the parameter is required.
    default: Option<String>,
    /// Values of an enumeration (in order).
    choices: Vec<String>,
    /// The schema's `$ref` name of an enumeration (its Python alias).
    enum_name: Option<String>,
    nullable: bool,
    description: String,
    /// "8000..=384000 Hz", ">= 0", "" for the docs.
    range: String,
}

fn params(info: &NodeInfo) -> Vec<Param> {
    let schema = &info.params_schema;
    let defs = schema.get("$defs");
    let Some(Value::Object(props)) = schema.get("properties") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, raw) in props {
        let p = info.params.iter().find(|p| &p.name == name).unwrap();
        let mut nullable = false;
        let mut enum_name = None;
        let mut choices = p.choices.clone();
        let mut types: Vec<String> = match raw.get("type") {
            Some(Value::String(t)) => vec![t.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        };
        let refs: Vec<&str> = std::iter::once(raw)
            .chain(
                raw.get("anyOf")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            )
            .filter_map(|v| {
                if v.get("type").and_then(Value::as_str) == Some("null") {
                    nullable = true;
                }
                v.get("$ref").and_then(Value::as_str)
            })
            .collect();
        if let Some(r) = refs.first() {
            let short = r.rsplit('/').next().unwrap().to_string();
            assert!(
                defs.and_then(|d| d.get(&short)).is_some(),
                "{}.{name}: $ref {r} not in $defs",
                info.node_type
            );
            choices = enum_values(&defs.unwrap()[&short]);
            enum_name = Some(short);
            types = vec!["string".into()];
        }
        if types.iter().any(|t| t == "null") {
            nullable = true;
            types.retain(|t| t != "null");
        }
        assert_eq!(types.len(), 1, "{}.{name}: one JSON type", info.node_type);
        let path = raw.get("format").and_then(Value::as_str) == Some("path");
        let base = match (types[0].as_str(), &enum_name) {
            (_, Some(e)) if e == "SampleFormat" => "SampleFormatLike".to_string(),
            (_, Some(e)) => e.clone(),
            ("string", None) if path => "str | os.PathLike[str]".to_string(),
            ("string", None) => "str".to_string(),
            ("integer", _) => "int".to_string(),
            ("number", _) => "float".to_string(),
            ("boolean", _) => "bool".to_string(),
            ("object", _) => {
                let item = raw
                    .pointer("/additionalProperties/type")
                    .and_then(Value::as_str)
                    .unwrap_or("any");
                let item = match item {
                    "number" => "float",
                    "integer" => "int",
                    "string" => "str",
                    _ => "Any",
                };
                format!("dict[str, {item}]")
            }
            (other, _) => panic!("{}.{name}: no Python type for {other}", info.node_type),
        };
        let annotation = if nullable {
            format!("{base} | None")
        } else {
            base
        };
        let default = match (&p.default, p.required) {
            (_, true) => None,
            (Some(v), false) => Some(py_literal(v)),
            (None, false) if nullable => Some("None".to_string()),
            (None, false) => panic!(
                "{}.{name} is optional but its schema gives no default: add \
                 `#[serde(default = ...)]` or `#[schemars(extend(\"default\" = ...))]`",
                info.node_type
            ),
        };
        let unit = p
            .unit
            .as_deref()
            .map(|u| format!(" {u}"))
            .unwrap_or_default();
        let num = |x: f64| {
            if types[0] == "integer" {
                format!("{}", x as i64)
            } else {
                format!("{x:?}")
            }
        };
        let range = match (p.minimum, p.maximum) {
            (Some(lo), Some(hi)) => format!("{}..={}{unit}", num(lo), num(hi)),
            (Some(lo), None) => format!(">= {}{unit}", num(lo)),
            (None, Some(hi)) => format!("<= {}{unit}", num(hi)),
            (None, None) => unit.trim().to_string(),
        };
        out.push(Param {
            name: name.clone(),
            annotation,
            default,
            choices,
            enum_name,
            nullable,
            description: p
                .description
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            range,
        });
    }
    let first_optional = out.iter().position(|p| p.default.is_some());
    if let Some(i) = first_optional {
        assert!(
            out[i..].iter().all(|p| p.default.is_some()),
            "{}: required parameters must come before optional ones (the Python signature \
             follows the params struct's field order)",
            info.node_type
        );
    }
    out
}

/// The values of an enumeration's schema (`enum`, or `oneOf` of `const`s), in order.
fn enum_values(schema: &Value) -> Vec<String> {
    let strings = |a: &Value| -> Vec<String> {
        a.as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    };
    if let Some(e) = schema.get("enum") {
        return strings(e);
    }
    schema
        .get("oneOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|alt| {
            alt.get("const")
                .and_then(Value::as_str)
                .map(|c| vec![c.to_string()])
                .or_else(|| alt.get("enum").map(strings))
                .unwrap_or_default()
        })
        .collect()
}

fn py_literal(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Number(n) => {
            if n.is_f64() {
                format!("{:?}", n.as_f64().unwrap())
            } else {
                n.to_string()
            }
        }
        Value::String(s) => format!("{s:?}"),
        other => panic!("no Python literal for default {other}"),
    }
}

fn output_type(o: Output) -> &'static str {
    match o {
        Output::Audio => "Audio",
        Output::Input | Output::Any => "Any",
        Output::Segments => "list[Segment]",
        Output::Events => "list[VadEvent]",
        Output::Frames => "list[SpeechFrame]",
    }
}

// ----------------------------------------------------------------------------- Python

const PY_HEADER: &str = r#"# Generated from the node definitions in crates/remotemedia-nodes (each node's NodeDef) by
# `REMOTEMEDIA_BLESS=1 cargo test -p remotemedia-nodes --test generated`. Do not edit by hand:
# change the node's Rust definition and regenerate.
"""The built-in node classes, generated from their Rust definitions: names, parameters, their
order, defaults, types (``Literal`` for enumerations) and docs all come from the runtime's own
node definitions, so Python runs what the CLI and the server run."""

from __future__ import annotations

import os
from typing import Any, Literal, overload

from remotemedia._types import Audio, Segment, SpeechFrame, VadEvent
from remotemedia.nodes.base import OutT
from remotemedia.nodes.builtin import BuiltinNode, SampleFormatLike, format_name
"#;

fn python_module(infos: &[NodeInfo]) -> String {
    let mut s = String::from(PY_HEADER);
    // Enumeration aliases, one per schema type, in name order.
    let mut enums: Vec<(String, Vec<String>, String)> = Vec::new();
    for info in infos {
        for p in params(info) {
            if let Some(e) = &p.enum_name {
                if e != "SampleFormat" && !enums.iter().any(|(n, ..)| n == e) {
                    let doc = info.params_schema["$defs"][e]["description"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    enums.push((e.clone(), p.choices.clone(), doc));
                }
            }
        }
    }
    enums.sort();
    let mut all: Vec<String> = enums.iter().map(|(n, ..)| n.clone()).collect();
    all.extend(infos.iter().map(class_name));
    all.sort();
    s.push_str("\n__all__ = [\n");
    for n in &all {
        writeln!(s, "    {n:?},").unwrap();
    }
    s.push_str("]\n");
    for (name, choices, doc) in &enums {
        let values: Vec<String> = choices.iter().map(|c| format!("{c:?}")).collect();
        s.push('\n');
        for line in doc.lines() {
            writeln!(s, "#: {}", line.trim_end()).unwrap();
        }
        let one_line = format!("{name} = Literal[{}]", values.join(", "));
        if one_line.len() <= 100 {
            writeln!(s, "{one_line}").unwrap();
        } else {
            writeln!(s, "{name} = Literal[").unwrap();
            for v in &values {
                writeln!(s, "    {v},").unwrap();
            }
            s.push_str("]\n");
        }
    }
    for info in infos {
        s.push_str("\n\n");
        python_class(&mut s, info);
    }
    s
}

/// The Python class name: the node type (`AudioResampleNode`, `VADNode`).
fn class_name(info: &NodeInfo) -> String {
    info.node_type.clone()
}

fn python_class(s: &mut String, info: &NodeInfo) {
    let ps = params(info);
    let name = class_name(info);
    let generic = match info.outputs {
        Outputs::One(o) => output_type(o).to_string(),
        Outputs::ByParam { .. } => "OutT".to_string(),
    };
    writeln!(s, "class {name}(BuiltinNode[{generic}]):").unwrap();
    s.push_str(&docstring(info, &ps));
    writeln!(s, "\n    node_type = {:?}\n", info.node_type).unwrap();
    if let Outputs::ByParam { param, values } = info.outputs {
        let at = ps.iter().position(|p| p.name == param).unwrap();
        let default = ps[at].default.clone().unwrap();
        for (value, out) in values {
            let literal = format!("{value:?}");
            let is_default = literal == default;
            let mut args = vec![format!("self: {name}[{}]", output_type(*out))];
            for (i, p) in ps.iter().enumerate() {
                if i == at {
                    if is_default {
                        args.push(format!("{}: Literal[{literal}] = {literal}", p.name));
                    } else {
                        args.push("*".into());
                        args.push(format!("{}: Literal[{literal}]", p.name));
                    }
                } else {
                    args.push(signature_arg(p));
                }
            }
            write_def(s, &args, true);
        }
        let mut args = vec![format!("self: {name}[Any]")];
        args.extend(ps.iter().enumerate().map(|(i, p)| {
            if i == at {
                format!("{}: str = {default}", p.name)
            } else {
                signature_arg(p)
            }
        }));
        write_def(s, &args, true);
    }
    let mut args = vec!["self".to_string()];
    args.extend(ps.iter().map(|p| {
        if matches!(info.outputs, Outputs::ByParam { param, .. } if param == p.name) {
            format!("{}: str = {}", p.name, p.default.as_deref().unwrap())
        } else {
            signature_arg(p)
        }
    }));
    write_def(s, &args, false);
    for p in &ps {
        if p.enum_name.as_deref() == Some("SampleFormat") {
            // numpy spellings ("float32", np.int16) are read as the runtime's names.
            writeln!(s, "        self.{0} = format_name({0})", p.name).unwrap();
            writeln!(s, "        self._init_params[{0:?}] = self.{0}", p.name).unwrap();
        } else {
            writeln!(s, "        self.{0} = {0}", p.name).unwrap();
        }
    }
    s.push_str("        self._setup()\n");
}

fn signature_arg(p: &Param) -> String {
    match &p.default {
        Some(d) => format!("{}: {} = {d}", p.name, p.annotation),
        None => format!("{}: {}", p.name, p.annotation),
    }
}

fn write_def(s: &mut String, args: &[String], overload: bool) {
    if overload {
        s.push_str("    @overload\n");
    }
    let one_line = format!("    def __init__({}) -> None:", args.join(", "));
    let body = if overload { " ..." } else { "" };
    if one_line.len() + body.len() <= 100 {
        writeln!(s, "{one_line}{body}").unwrap();
    } else {
        s.push_str("    def __init__(\n");
        for a in args {
            writeln!(s, "        {a},").unwrap();
        }
        writeln!(s, "    ) -> None:{body}").unwrap();
    }
}

fn docstring(info: &NodeInfo, ps: &[Param]) -> String {
    let mut d = String::new();
    for (i, line) in info.description.lines().enumerate() {
        let line = line.replace('\\', "\\\\");
        if i == 0 {
            writeln!(d, "    \"\"\"{line}").unwrap();
        } else if line.is_empty() {
            d.push('\n');
        } else {
            writeln!(d, "    {line}").unwrap();
        }
    }
    if ps.is_empty() {
        // A one-line docstring closes on its line.
        if !d.trim_end().contains('\n') {
            d.truncate(d.trim_end().len());
            d.push_str("\"\"\"\n");
            return d;
        }
    } else {
        d.push_str("\n    Parameters:\n");
        for p in ps {
            let mut head = format!("        {} (``{}``", p.name, p.annotation);
            if let Some(def) = &p.default {
                write!(head, ", default ``{def}``").unwrap();
            }
            if !p.range.is_empty() {
                write!(head, ", {}", p.range).unwrap();
            }
            head.push_str("):");
            wrap(&mut d, &head, &p.description, "            ");
        }
    }
    d.push_str("    \"\"\"\n");
    d
}

/// Writes `head` then `text` wrapped at 100 columns, continuation lines indented by `indent`.
fn wrap(out: &mut String, head: &str, text: &str, indent: &str) {
    let mut line = head.to_string();
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 100 {
            writeln!(out, "{line}").unwrap();
            line = format!("{indent}{word}");
        } else {
            line.push(' ');
            line.push_str(word);
        }
    }
    writeln!(out, "{line}").unwrap();
}

// ----------------------------------------------------------------------------- Markdown

fn md_type(p: &Param) -> String {
    let base = if !p.choices.is_empty() {
        p.choices
            .iter()
            .map(|c| format!("`\"{c}\"`"))
            .collect::<Vec<_>>()
            .join(" \\| ")
    } else {
        let t = p
            .annotation
            .trim_end_matches(" | None")
            .replace("SampleFormatLike", "sample format");
        let t = if t.contains("PathLike") {
            "path".to_string()
        } else {
            t
        };
        if p.range.is_empty() {
            t
        } else {
            format!("{t} {}", p.range)
        }
    };
    if p.nullable {
        format!("{base} or null")
    } else {
        base
    }
}

fn md_default(p: &Param) -> String {
    match p.default.as_deref() {
        None => "required".into(),
        Some("None") => "null".into(),
        Some("True") => "`true`".into(),
        Some("False") => "`false`".into(),
        Some(d) => format!("`{d}`"),
    }
}

fn params_table(info: &NodeInfo) -> String {
    let ps = params(info);
    if ps.is_empty() {
        return "No parameters.\n".into();
    }
    let mut s = String::from("| parameter | values | default | meaning |\n|---|---|---|---|\n");
    for p in &ps {
        writeln!(
            s,
            "| `{}` | {} | {} | {} |",
            p.name,
            md_type(p),
            md_default(p),
            p.description.replace('|', "\\|")
        )
        .unwrap();
    }
    s
}

/// A default as a person reads it: at most four decimals (0.7071067811865476 -> 0.7071).
fn short_number(d: &str) -> String {
    match d.parse::<f64>() {
        Ok(x) if d.contains('.') => format!("{}", (x * 1e4).round() / 1e4),
        _ => d.to_string(),
    }
}

fn readme_table(infos: &[NodeInfo]) -> String {
    let mut s = String::from("| node | what it does | parameters (default) |\n|---|---|---|\n");
    for info in infos {
        let summary = info.description.split("\n\n").next().unwrap_or_default();
        let summary = summary.split_whitespace().collect::<Vec<_>>().join(" ");
        let ps: Vec<String> = params(info)
            .iter()
            .map(|p| match p.default.as_deref() {
                None => format!("`{}`", p.name),
                Some("None") => format!("`{}` (optional)", p.name),
                Some(d) => format!("`{}` ({})", p.name, short_number(d).trim_matches('"')),
            })
            .collect();
        let ps = if ps.is_empty() {
            "none".into()
        } else {
            ps.join(", ")
        };
        writeln!(
            s,
            "| `{}` | {} | {} |",
            info.node_type,
            summary.replace('|', "\\|"),
            ps
        )
        .unwrap();
    }
    s
}
