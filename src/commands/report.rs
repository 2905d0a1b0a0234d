//! `jetforge report [--open]`: where the last build's timings report is.

use anyhow::Result;

use super::Session;
use crate::builder::timings_report;
use crate::cli::{GlobalArgs, ReportArgs};

pub fn run(g: &GlobalArgs, a: &ReportArgs) -> Result<()> {
    let s = Session::load(g)?;
    let path = timings_report::path(&s.layout);
    if !path.is_file() {
        return Err(crate::error::input_hint(
            format!("no timings report at `{}`", path.display()),
            "run `jetforge build --timings` (or `build --json`) first, with the same --work-dir, --set and --target",
        ));
    }
    println!("{}", path.display());
    if a.open {
        let status = std::process::Command::new("xdg-open")
            .arg(&path)
            .status()
            .map_err(|e| anyhow::anyhow!("failed to start `xdg-open`: {e}"))?;
        if !status.success() {
            return Err(crate::error::failure_hint(
                format!("`xdg-open {}` failed ({status})", path.display()),
                "open the file above in a browser yourself",
            ));
        }
    }
    Ok(())
}
