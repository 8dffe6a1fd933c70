//! `remotemedia nodes`: the available node types and their parameters, as text or JSON.

use anyhow::Result;

use crate::Host;

pub(crate) fn nodes(json: bool, host: &dyn Host) -> Result<()> {
    let registry = host.registry();
    if json {
        let infos: Vec<_> = registry.infos().collect();
        println!("{}", serde_json::to_string_pretty(&infos)?);
        return Ok(());
    }
    for info in registry.infos() {
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
        println!();
    }
    Ok(())
}
