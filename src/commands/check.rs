//! `jetforge check`: load and validate every recipe of every set (syntax, schema, pins,
//! patches, graph, templates) and the target profiles, without network or building.

use anyhow::Result;

use super::load_all_sets;
use crate::cli::{CheckArgs, GlobalArgs};
use crate::target;

pub fn run(g: &GlobalArgs, a: &CheckArgs) -> Result<()> {
    if a.deep {
        return super::unimplemented::run("check --deep");
    }
    let (sets, tree) = load_all_sets(g)?;
    let targets = target::load_targets(&tree)?;
    for s in &sets.sets {
        if let Some(name) = &g.set {
            if &s.name != name {
                continue;
            }
        }
        let patches: usize = s.recipes.iter().map(|r| r.patches.len()).sum();
        let edits: usize = s.recipes.iter().map(|r| r.edits.len()).sum();
        println!(
            "ok: set `{}`: {} recipes, {patches} patches, {edits} edits; order: {}",
            s.name,
            s.recipes.len(),
            s.recipes
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(" -> ")
        );
    }
    sets.pick(g.set.as_deref()).map_err(crate::error::input)?;
    println!(
        "ok: {} target profiles ({})",
        targets.len() + 1,
        targets
            .iter()
            .map(|t| t.name.as_str())
            .chain([target::HOST_TARGET])
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
