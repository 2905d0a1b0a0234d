//! `doctor`: is this machine ready to build the selected set for the selected target, and if
//! not, what exactly to do about it. It owns the checks (pure functions of [`HostFacts`], the
//! set, the target and [`Probes`]) and their rendering; it does not build, fetch or install.
//!
//! Probing the machine (running `cmake --version`, loading `libcuda`, `statvfs`) happens once, in
//! [`probe`], before any check runs, so every check is plain data in, plain data out. With a
//! fake host root the probes only look at files, which keeps the report deterministic.
//!
//! The report is a list of sections, each produced by one function in [`SECTIONS`]; adding a
//! section (cross toolchains, say) is one more entry there.

mod checks;
pub mod compiler;
pub mod cuda_probe;
mod gpu;
pub mod probe;

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::host::HostFacts;
use crate::recipe::RecipeSet;
use crate::target::Target;

pub use probe::Probes;

/// How much a finding matters for building the selected set on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Info,
    Warn,
    /// The build cannot succeed until this is fixed: `doctor` exits 1.
    Blocker,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Blocker => "BLOCKER",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: String,
    pub level: Level,
    pub detail: String,
    /// A concrete command or action that fixes the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn new(name: impl Into<String>, level: Level, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            level,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    pub title: String,
    pub checks: Vec<Check>,
}

/// Everything the checks look at.
pub struct Inputs<'a> {
    pub facts: &'a HostFacts,
    pub probes: &'a Probes,
    pub set: &'a RecipeSet,
    pub target: &'a Target,
    /// `ProxySettings::describe()`: credentials already masked.
    pub proxy: Vec<String>,
    /// The work directory whose free space counts.
    pub work_dir: PathBuf,
    /// The cross sysroot from `JETFORGE_SYSROOT` / `[cross] sysroot`, for cross targets.
    pub sysroot: Option<PathBuf>,
}

impl Inputs<'_> {
    /// Building on the machine the wheels are for (no cross compiler involved).
    pub fn native(&self) -> bool {
        self.target.arch == self.facts.arch
    }

    /// Compiling a device target's CUDA code natively on a machine that is not that device (an
    /// arm64 server in the `l4t-jetpack` container building for `jetson-orin`): its toolkit
    /// must be the device's, and GPU checks wait for the device.
    pub fn build_host(&self) -> bool {
        self.native()
            && self.facts.jetson.is_none()
            && self.target.name != crate::target::HOST_TARGET
            && self.needs_cuda()
    }

    /// The selection builds torch (a recipe whose wheel is `torch`).
    pub fn builds_torch(&self) -> bool {
        self.set
            .recipes
            .iter()
            .any(|r| r.distributions().iter().any(|d| d == "torch"))
    }

    /// The target needs CUDA kernels compiled.
    pub fn needs_cuda(&self) -> bool {
        !self.target.cuda_arch_list.is_empty()
    }
}

type SectionFn = fn(&Inputs) -> Section;

/// The report's sections, in order.
pub const SECTIONS: &[SectionFn] = &[
    checks::platform,
    checks::cuda,
    checks::python,
    checks::tools,
    checks::libraries,
    checks::disk,
    checks::memory,
    checks::network,
    checks::cross,
    gpu::section,
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub set: String,
    pub target: String,
    pub sections: Vec<Section>,
    pub summary: Summary,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub blockers: usize,
    pub warnings: usize,
    /// The names of the checks that block, for scripts.
    pub blocking: Vec<String>,
}

impl Report {
    /// Appends a section gathered outside [`SECTIONS`] (one that needs the configuration, such
    /// as the compiler cache), counting its findings in the summary.
    pub fn add_section(&mut self, section: Section) {
        for c in &section.checks {
            match c.level {
                Level::Blocker => {
                    self.summary.blockers += 1;
                    self.summary.blocking.push(c.name.clone());
                }
                Level::Warn => self.summary.warnings += 1,
                _ => {}
            }
        }
        self.sections.push(section);
    }

    pub fn has_blockers(&self) -> bool {
        self.summary.blockers > 0
    }
}

pub fn report(inputs: &Inputs) -> Report {
    let sections: Vec<Section> = SECTIONS.iter().map(|f| f(inputs)).collect();
    let all = || sections.iter().flat_map(|s| s.checks.iter());
    let blocking: Vec<String> = all()
        .filter(|c| c.level == Level::Blocker)
        .map(|c| c.name.clone())
        .collect();
    let summary = Summary {
        blockers: blocking.len(),
        warnings: all().filter(|c| c.level == Level::Warn).count(),
        blocking,
    };
    Report {
        set: inputs.set.name.clone(),
        target: inputs.target.summary(),
        sections,
        summary,
    }
}

/// Plain text, readable without colour: one line per check, its fix indented below it.
pub fn render(report: &Report) -> String {
    let mut out = format!(
        "jetforge doctor: set {}, target {}\n",
        report.set, report.target
    );
    let width = report
        .sections
        .iter()
        .flat_map(|s| s.checks.iter())
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    for section in &report.sections {
        let _ = writeln!(out, "\n{}", section.title);
        for c in &section.checks {
            let _ = writeln!(
                out,
                "  {:<7}  {:<width$}  {}",
                c.level.label(),
                c.name,
                c.detail
            );
            if let Some(fix) = &c.fix {
                let _ = writeln!(out, "  {:<7}  {:<width$}  fix: {fix}", "", "");
            }
        }
    }
    let s = &report.summary;
    let verdict = if s.blockers == 0 {
        "ready to build".to_string()
    } else {
        format!("not ready: {}", s.blocking.join(", "))
    };
    let _ = writeln!(
        out,
        "\nsummary: {} blocker(s), {} warning(s): {verdict}",
        s.blockers, s.warnings
    );
    out
}
