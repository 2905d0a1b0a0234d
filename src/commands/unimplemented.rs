//! Subcommands that exist in the CLI but whose engine is not written yet say so plainly.

use anyhow::Result;

pub fn run(name: &str) -> Result<()> {
    Err(crate::error::input_hint(
        format!("`jetforge {name}` is not implemented yet"),
        "`jetforge plan` shows what a build would do; see the README for what works today",
    ))
}
