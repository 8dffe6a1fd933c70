//! Pictures of a pipeline: Mermaid, Graphviz DOT and a self-contained SVG.
//!
//! `remotemedia graph` prints them; the Python SDK's `Pipeline.to_mermaid()`, `.to_dot()`,
//! `.to_svg()` and its notebook display (`_repr_svg_`, `_repr_html_`) call the same code, so
//! every picture of a pipeline is drawn one way.
//!
//! The SVG is laid out here (left to right, one column per depth, nodes in a column ordered by
//! their inputs' positions) rather than by Graphviz: pipelines are small DAGs, and a picture
//! in a notebook or a README must not need a system package.

use std::fmt::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use remotemedia_core::manifest::Manifest;
use serde_json::Value;

use crate::load::load_manifest;
use crate::Host;

/// A picture format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// Mermaid `flowchart LR` (renders in GitHub Markdown and many docs tools).
    Mermaid,
    /// Graphviz DOT (`dot -Tpng`).
    Dot,
    /// Standalone SVG.
    Svg,
}

impl GraphFormat {
    /// Parses "mermaid", "dot" or "svg".
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "mermaid" | "mmd" => Some(Self::Mermaid),
            "dot" | "gv" => Some(Self::Dot),
            "svg" => Some(Self::Svg),
            _ => None,
        }
    }
}

/// One box in the picture.
struct Item<'a> {
    id: &'a str,
    node_type: &'a str,
    params: String,
    native: bool,
    /// A sink: its output is the pipeline's (drawn with a thick border).
    sink: bool,
    /// Extra text under the box's parameters, e.g. the node's time in the last run.
    note: Option<String>,
}

/// Renders `manifest`; `is_native(node_type)` says which nodes run natively (drawn blue) and
/// which are Python nodes (drawn yellow); `note(node_id)` adds a line to a node's box (the
/// Python SDK passes each node's time in the last run).
pub fn render(
    manifest: &Manifest,
    format: GraphFormat,
    is_native: &dyn Fn(&str) -> bool,
    note: &dyn Fn(&str) -> Option<String>,
) -> String {
    let index = |id: &str| manifest.nodes.iter().position(|n| n.id == id);
    let edges: Vec<(usize, usize)> = manifest
        .connections
        .iter()
        .filter_map(|c| Some((index(&c.from)?, index(&c.to)?)))
        .collect();
    let items: Vec<Item<'_>> = manifest
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| Item {
            id: &n.id,
            node_type: &n.node_type,
            params: summary(&n.params),
            native: is_native(&n.node_type),
            sink: !edges.iter().any(|e| e.0 == i),
            note: note(&n.id),
        })
        .collect();
    match format {
        GraphFormat::Mermaid => mermaid(&items, &edges),
        GraphFormat::Dot => dot(manifest.name(), &items, &edges),
        GraphFormat::Svg => svg(manifest.name(), &items, &edges),
    }
}

/// `k=v, k=v` (unset `null` parameters left out), cut to a readable length.
fn summary(params: &serde_json::Map<String, Value>) -> String {
    const MAX: usize = 40;
    let text = params
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn mermaid(items: &[Item<'_>], edges: &[(usize, usize)]) -> String {
    // Mermaid labels: quotes become #quot;, and < > & are entities (labels are HTML).
    let esc = |s: &str| {
        s.replace('&', "#amp;")
            .replace('"', "#quot;")
            .replace('<', "#lt;")
            .replace('>', "#gt;")
    };
    let mut out = String::from("flowchart LR\n");
    for (i, it) in items.iter().enumerate() {
        let mut label = format!("<b>{}</b><br/>{}", esc(it.id), esc(it.node_type));
        if !it.params.is_empty() {
            let _ = write!(label, "<br/><small>{}</small>", esc(&it.params));
        }
        if let Some(note) = &it.note {
            let _ = write!(label, "<br/><i>{}</i>", esc(note));
        }
        let class = if it.native { "native" } else { "python" };
        let _ = writeln!(out, "    n{i}[\"{label}\"]:::{class}");
    }
    for (a, b) in edges {
        let _ = writeln!(out, "    n{a} --> n{b}");
    }
    out.push_str("    classDef native fill:#e8f0fe,stroke:#4a6fd0,color:#1a1a1a\n");
    out.push_str("    classDef python fill:#fff4d6,stroke:#c49a1a,color:#1a1a1a\n");
    for (i, _) in items.iter().enumerate().filter(|(_, it)| it.sink) {
        let _ = writeln!(out, "    style n{i} stroke-width:3px");
    }
    out
}

fn dot(name: &str, items: &[Item<'_>], edges: &[(usize, usize)]) -> String {
    let q = |s: &str| {
        format!(
            "\"{}\"",
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        )
    };
    let mut out = format!("digraph {} {{\n", q(name));
    out.push_str("    rankdir=LR;\n");
    out.push_str(
        "    node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11];\n",
    );
    for it in items {
        let mut label = format!("{}\n{}", it.id, it.node_type);
        if !it.params.is_empty() {
            let _ = write!(label, "\n{}", it.params);
        }
        if let Some(note) = &it.note {
            let _ = write!(label, "\n{note}");
        }
        let (fill, stroke) = colours(it.native);
        let width = if it.sink { 3 } else { 1 };
        let _ = writeln!(
            out,
            "    {} [label={}, fillcolor=\"{fill}\", color=\"{stroke}\", penwidth={width}];",
            q(it.id),
            q(&label)
        );
    }
    for (a, b) in edges {
        let _ = writeln!(out, "    {} -> {};", q(items[*a].id), q(items[*b].id));
    }
    out.push_str("}\n");
    out
}

fn colours(native: bool) -> (&'static str, &'static str) {
    if native {
        ("#e8f0fe", "#4a6fd0")
    } else {
        ("#fff4d6", "#c49a1a")
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Depth of each node (longest path from a source), bounded so that a cyclic (invalid)
/// manifest still draws.
fn depths(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut depth = vec![0usize; n];
    for _ in 0..n {
        let mut changed = false;
        for &(a, b) in edges {
            if depth[b] < depth[a] + 1 && depth[a] + 1 < n.max(1) {
                depth[b] = depth[a] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    depth
}

fn svg(name: &str, items: &[Item<'_>], edges: &[(usize, usize)]) -> String {
    const CHAR_W: f64 = 7.2; // average advance of 12 px sans-serif
    const LINE_H: f64 = 16.0;
    const PAD: f64 = 10.0;
    const COL_GAP: f64 = 56.0;
    const ROW_GAP: f64 = 20.0;
    const MARGIN: f64 = 16.0;

    let n = items.len();
    let depth = depths(n, edges);
    let columns = depth.iter().copied().max().map_or(0, |d| d + 1);
    // Order each column by the mean row of its inputs (one sweep), then manifest order.
    let mut row_of = vec![0.0f64; n];
    let mut cols: Vec<Vec<usize>> = Vec::with_capacity(columns);
    for c in 0..columns {
        let mut members: Vec<usize> = (0..n).filter(|&i| depth[i] == c).collect();
        let key = |i: usize| {
            let ins: Vec<f64> = edges
                .iter()
                .filter(|e| e.1 == i)
                .map(|e| row_of[e.0])
                .collect();
            if ins.is_empty() {
                i as f64
            } else {
                ins.iter().sum::<f64>() / ins.len() as f64
            }
        };
        members.sort_by(|&a, &b| key(a).total_cmp(&key(b)).then(a.cmp(&b)));
        for (r, &i) in members.iter().enumerate() {
            row_of[i] = r as f64;
        }
        cols.push(members);
    }

    let lines = |it: &Item<'_>| {
        2.0 + f64::from(u8::from(!it.params.is_empty())) + f64::from(u8::from(it.note.is_some()))
    };
    let width = |it: &Item<'_>| {
        let longest = [
            it.id,
            it.node_type,
            it.params.as_str(),
            it.note.as_deref().unwrap_or(""),
        ]
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0);
        (longest as f64 * CHAR_W + 2.0 * PAD).max(120.0)
    };
    let height = |it: &Item<'_>| lines(it) * LINE_H + 2.0 * PAD - 4.0;
    let col_w: Vec<f64> = cols
        .iter()
        .map(|m| m.iter().map(|&i| width(&items[i])).fold(0.0, f64::max))
        .collect();
    let col_h: Vec<f64> = cols
        .iter()
        .map(|m| {
            m.iter().map(|&i| height(&items[i])).sum::<f64>()
                + ROW_GAP * m.len().saturating_sub(1) as f64
        })
        .collect();
    let total_h = col_h.iter().copied().fold(0.0, f64::max);
    let mut pos = vec![(0.0, 0.0, 0.0, 0.0); n]; // x, y, w, h
    let mut x = MARGIN;
    for (c, members) in cols.iter().enumerate() {
        let mut y = MARGIN + (total_h - col_h[c]) / 2.0;
        for &i in members {
            let (w, h) = (width(&items[i]), height(&items[i]));
            pos[i] = (x + (col_w[c] - w) / 2.0, y, w, h);
            y += h + ROW_GAP;
        }
        x += col_w[c] + COL_GAP;
    }
    let view_w = (x - COL_GAP + MARGIN).max(2.0 * MARGIN);
    let view_h = total_h + 2.0 * MARGIN;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{view_w:.0}\" height=\"{view_h:.0}\" \
         viewBox=\"0 0 {view_w:.0} {view_h:.0}\" font-family=\"Helvetica, Arial, sans-serif\" \
         font-size=\"12\" role=\"img\" aria-label=\"pipeline {}\">",
        xml(name)
    );
    let _ = writeln!(out, "<title>{}</title>", xml(name));
    out.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
         markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">\
         <path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>\n",
    );
    for &(a, b) in edges {
        let (ax, ay, aw, ah) = pos[a];
        let (bx, by, _, bh) = pos[b];
        let (x1, y1, x2, y2) = (ax + aw, ay + ah / 2.0, bx, by + bh / 2.0);
        let mid = (x1 + x2) / 2.0;
        let _ = writeln!(
            out,
            "<path class=\"edge\" data-from=\"{}\" data-to=\"{}\" d=\"M{x1:.1},{y1:.1} \
             C{mid:.1},{y1:.1} {mid:.1},{y2:.1} {x2:.1},{y2:.1}\" fill=\"none\" stroke=\"#555\" \
             stroke-width=\"1.4\" marker-end=\"url(#arrow)\"/>",
            xml(items[a].id),
            xml(items[b].id)
        );
    }
    for (i, it) in items.iter().enumerate() {
        let (x, y, w, h) = pos[i];
        let (fill, stroke) = colours(it.native);
        let _ = writeln!(
            out,
            "<g class=\"node{}\" data-id=\"{}\" data-runtime=\"{}\">\
             <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" rx=\"6\" \
             fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{}\"/>",
            if it.sink { " sink" } else { "" },
            xml(it.id),
            if it.native { "rust" } else { "python" },
            if it.sink { "2.8" } else { "1.2" },
        );
        let cx = x + w / 2.0;
        let mut ty = y + PAD + 11.0;
        let _ = write!(
            out,
            "<text x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" font-weight=\"bold\" \
             fill=\"#1a1a1a\">{}</text>",
            xml(it.id)
        );
        ty += LINE_H;
        let _ = write!(
            out,
            "<text x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
            xml(it.node_type)
        );
        if !it.params.is_empty() {
            ty += LINE_H;
            let _ = write!(
                out,
                "<text x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" fill=\"#666\" \
                 font-size=\"11\">{}</text>",
                xml(&it.params)
            );
        }
        if let Some(note) = &it.note {
            ty += LINE_H;
            let _ = write!(
                out,
                "<text class=\"note\" x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" \
                 fill=\"#8a3b00\" font-size=\"11\" font-style=\"italic\">{}</text>",
                xml(note)
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

pub(crate) fn draw(
    arg: &str,
    format: Option<&str>,
    output: Option<&Path>,
    host: &dyn Host,
) -> Result<()> {
    let (manifest, _) = load_manifest(arg)?;
    let ext = output
        .and_then(|p| p.extension())
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let format = match (format, ext.as_deref()) {
        (Some(f), _) => f.to_string(),
        (None, Some("svg")) => "svg".into(),
        (None, Some("dot" | "gv")) => "dot".into(),
        (None, Some("png")) => "png".into(),
        (None, Some("pdf")) => "pdf".into(),
        _ => "mermaid".into(),
    };
    let registry = host.registry();
    let is_native = |t: &str| {
        registry
            .get(t)
            .is_some_and(|f| f.info().runtime == remotemedia_core::node::Runtime::Rust)
    };
    let render = |f| self::render(&manifest, f, &is_native, &|_| None);
    if let binary @ ("png" | "pdf") = format.as_str() {
        let Some(path) = output else {
            bail!("--format {binary} needs --output FILE.{binary}");
        };
        return graphviz(&render(GraphFormat::Dot), binary, path);
    }
    let picture = render(GraphFormat::parse(&format).expect("clap checked the format"));
    match output {
        Some(path) => std::fs::write(path, picture)
            .with_context(|| format!("cannot write {}", path.display())),
        None => {
            print!("{picture}");
            Ok(())
        }
    }
}

/// Renders DOT text to PNG or PDF with Graphviz's `dot`, when it is installed.
fn graphviz(dot: &str, format: &str, path: &Path) -> Result<()> {
    use std::io::Write as _;
    let mut child = match std::process::Command::new("dot")
        .arg(format!("-T{format}"))
        .arg("-o")
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "writing {} needs Graphviz's `dot`, which is not installed (Debian: apt-get install \
             graphviz); remotemedia draws SVG itself: use -o pipeline.svg",
            format.to_uppercase()
        ),
        Err(e) => return Err(e).context("cannot start Graphviz's `dot`"),
    };
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(dot.as_bytes())
        .context("cannot write to Graphviz's `dot`")?;
    let status = child.wait().context("Graphviz's `dot` did not finish")?;
    if !status.success() {
        bail!("Graphviz's `dot` failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        remotemedia_core::manifest::parse(
            r#"{"version": "v1", "metadata": {"name": "demo <&>"},
                "nodes": [
                  {"id": "src", "node_type": "PassThroughNode"},
                  {"id": "vad", "node_type": "VADNode", "params": {"threshold": -35}},
                  {"id": "rs", "node_type": "AudioResampleNode", "params": {"target_rate": 16000, "quality": "high"}},
                  {"id": "py", "node_type": "my.nodes:Denoise"}],
                "connections": [{"from": "src", "to": "vad"}, {"from": "src", "to": "rs"},
                                {"from": "rs", "to": "py"}]}"#,
        )
        .unwrap()
    }

    fn native(t: &str) -> bool {
        !t.contains(':')
    }

    #[test]
    fn mermaid_lists_every_node_and_edge() {
        let m = render(&manifest(), GraphFormat::Mermaid, &native, &|_| None);
        assert!(m.starts_with("flowchart LR\n"));
        assert!(m.contains("n2[\"<b>rs</b><br/>AudioResampleNode<br/><small>target_rate=16000, quality=high</small>\"]:::native"), "{m}");
        assert!(m.contains("n3[\"<b>py</b><br/>my.nodes:Denoise\"]:::python"));
        for e in ["n0 --> n1", "n0 --> n2", "n2 --> n3"] {
            assert!(m.contains(e), "{e} in {m}");
        }
    }

    #[test]
    fn dot_quotes_names() {
        let d = render(&manifest(), GraphFormat::Dot, &native, &|_| None);
        assert!(d.starts_with("digraph \"demo <&>\" {"));
        assert!(d.contains("\"src\" -> \"vad\";"));
        assert!(d.contains("label=\"vad\\nVADNode\\nthreshold=-35\""), "{d}");
    }

    #[test]
    fn svg_places_columns_by_depth_and_escapes_text() {
        let s = render(&manifest(), GraphFormat::Svg, &native, &|id| {
            (id == "rs").then(|| "1.5 ms".to_string())
        });
        assert!(s.contains(">1.5 ms</text>"));
        // Sinks (vad, py) have a thick border.
        assert_eq!(s.matches("class=\"node sink\"").count(), 2);
        assert!(s.contains("aria-label=\"pipeline demo &lt;&amp;&gt;\""));
        assert_eq!(s.matches("<g class=\"node").count(), 4);
        assert_eq!(s.matches("class=\"edge\"").count(), 3);
        assert!(s.contains("data-id=\"py\" data-runtime=\"python\""));
        // py (depth 2) is to the right of rs (depth 1), which is right of src.
        let x_of = |id: &str| -> f64 {
            let at = s.find(&format!("data-id=\"{id}\"")).unwrap();
            let rest = &s[at..];
            let x = rest.find("x=\"").unwrap() + 3;
            rest[x..x + rest[x..].find('"').unwrap()].parse().unwrap()
        };
        assert!(x_of("src") < x_of("rs") && x_of("rs") < x_of("py"));
    }

    #[test]
    fn formats_parse() {
        assert_eq!(GraphFormat::parse("SVG"), Some(GraphFormat::Svg));
        assert_eq!(GraphFormat::parse("mermaid"), Some(GraphFormat::Mermaid));
        assert_eq!(GraphFormat::parse("png"), None);
    }
}
