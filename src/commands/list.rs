//! `jetforge list`: the sets, their recipes, versions and dependencies.

use anyhow::Result;
use serde_json::json;

use super::load_all_sets;
use crate::cli::GlobalArgs;
use crate::recipe::{OutputKind, Source};

pub fn run(g: &GlobalArgs) -> Result<()> {
    let (sets, _) = load_all_sets(g)?;
    if g.json {
        let v: Vec<_> = sets
            .sets
            .iter()
            .map(|s| {
                json!({
                    "set": s.name,
                    "default": sets.default.as_deref() == Some(s.name.as_str()),
                    "description": s.description,
                    "recipes": s.recipes.iter().map(|r| json!({
                        "name": r.name, "version": r.version, "output": r.output,
                        "commit": r.source.commit(), "depends": r.depends,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for (i, s) in sets.sets.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let mark = if sets.default.as_deref() == Some(s.name.as_str()) {
            " (default)"
        } else {
            ""
        };
        println!("{}{mark}", s.name);
        if let Some(d) = &s.description {
            println!("  {d}");
        }
        let width = s.recipes.iter().map(|r| r.name.len()).max().unwrap_or(0);
        for r in &s.recipes {
            let kind = match r.output {
                OutputKind::Wheel => "",
                OutputKind::Source => " [source]",
                OutputKind::Tree => " [tree]",
            };
            let deps = if r.depends.is_empty() {
                String::new()
            } else {
                format!("  <- {}", r.depends.join(", "))
            };
            let pin = match &r.source {
                Source::Git {
                    branch: Some(b),
                    commit,
                    ..
                } => format!("  ({})", crate::recipe::branch_pin(b, commit)),
                _ => String::new(),
            };
            println!("  {:width$}  {}{kind}{pin}{deps}", r.name, r.version);
        }
    }
    Ok(())
}
