//! `remotemedia nodes`: the available node types and their parameters, as text or JSON.

use anyhow::{bail, Result};
use remotemedia_core::registry::NodeInfo;
use remotemedia_core::text::shown;

use crate::Host;

pub(crate) fn nodes(name: Option<&str>, json: bool, host: &dyn Host) -> Result<()> {
    let registry = host.registry();
    let infos: Vec<&NodeInfo> = match name {
        None => registry.infos().collect(),
        Some(n) => match registry.infos().find(|i| i.node_type == n) {
            Some(info) => vec![info],
            None => {
                let hint = registry
                    .suggest(n)
                    .map(|s| format!("did you mean {s}? "))
                    .unwrap_or_default();
                bail!(
                    "unknown node type {}; {hint}`remotemedia nodes` lists them all",
                    shown(n)
                );
            }
        },
    };
    if json {
        match (name, infos.as_slice()) {
            (Some(_), [one]) => println!("{}", serde_json::to_string_pretty(one)?),
            _ => println!("{}", serde_json::to_string_pretty(&infos)?),
        }
        return Ok(());
    }
    for info in &infos {
        println!("{} [{:?}]", info.node_type, info.runtime);
        println!("    {}", info.description);
        if info.params.is_empty() {
            println!("    (no parameters)");
        }
        for p in &info.params {
            let mut line = format!("    - {}: {}", p.name, p.kind);
            if !p.choices.is_empty() {
                line += &format!(" ({})", p.choices.join(" | "));
            }
            match (p.minimum, p.maximum) {
                (Some(lo), Some(hi)) => line += &format!(" in {lo}..={hi}"),
                (Some(lo), None) => line += &format!(" >= {lo}"),
                _ => {}
            }
            if p.required {
                line += ", required";
            } else if let Some(d) = &p.default {
                line += &format!(", default {d}");
            }
            println!("{line}");
            if !p.description.is_empty() {
                println!("        {}", p.description);
            }
        }
        if name.is_some() {
            println!("\n    Example:\n      {}", example(info));
        }
        println!();
    }
    Ok(())
}

/// A command that runs the node: its required parameters (or, without any, the first one
/// that has a default or a range) with a valid value, in the one-line pipeline form; audio
/// output to a file, anything else as JSON lines on stdout.
fn example(info: &NodeInfo) -> String {
    use remotemedia_core::registry::{Output, Outputs};
    if let Some(e) = &info.example {
        return e.clone();
    }
    fn value(p: &remotemedia_core::registry::ParamInfo) -> Option<String> {
        if let Some(c) = p.choices.first() {
            return Some(c.trim_matches('"').to_string());
        }
        if let Some(d) = p
            .default
            .as_ref()
            .filter(|d| d.is_number() || d.is_string())
        {
            return Some(d.to_string().trim_matches('"').to_string());
        }
        if !(p.kind.contains("integer") || p.kind.contains("number")) {
            // A string is the user's to give; lists and objects are left out.
            return p.kind.contains("string").then(|| format!("<{}>", p.name));
        }
        let (lo, hi) = (p.minimum.unwrap_or(f64::MIN), p.maximum.unwrap_or(f64::MAX));
        let v = if p.name.ends_with("_hz") {
            1000f64.clamp(lo, hi) // a frequency
        } else if lo >= 1000.0 {
            16000f64.clamp(lo, hi) // a sample rate
        } else {
            0f64.clamp(lo, hi)
        };
        Some(format!("{v}"))
    }
    let mut line = info.node_type.clone();
    let required: Vec<_> = info.params.iter().filter(|p| p.required).collect();
    let shown = if required.is_empty() {
        info.params.iter().take(1).collect()
    } else {
        required
    };
    for p in shown {
        if let Some(v) = value(p) {
            line += &format!(" {}={v}", p.name);
        }
    }
    let audio = match &info.outputs {
        Outputs::One(o) => matches!(o, Output::Audio | Output::Any),
        Outputs::ByParam { values, .. } => values.first().is_some_and(|(_, o)| *o == Output::Audio),
    };
    let out = if audio { " -o out.wav" } else { "" };
    format!("remotemedia run \"{line}\" -i in.wav{out}")
}
