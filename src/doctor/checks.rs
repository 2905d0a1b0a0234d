//! The machine checks of `doctor`, one function per section. Pure: they read [`Inputs`] and
//! return findings with fix lines.
//!
//! Blockers are what makes a native build of the selected set fail for certain: no CUDA
//! toolkit or nvcc when the target needs CUDA kernels, a CUDA major version other than the
//! set's on a Jetson, no Python or no Python headers, no C/C++ compiler, too little disk, a
//! target of another CPU architecture. Everything a build can work around (pip supplies cmake
//! and ninja, torch turns cuDNN off, swap only makes things slower) is a warning.
//!
//! Size: about 520 lines of code, one small pure function per check, each turning probed facts
//! into ok/warn/blocker with its fix.

use crate::host::GIB;
use crate::jobs::{self, JobsOverride};

use super::{Check, Inputs, Level, Section};

fn section(title: &str, checks: Vec<Check>) -> Section {
    Section {
        title: title.to_string(),
        checks,
    }
}

/// major.minor of a version string ("12.6.68" → (12, 6)); None if it does not start that way.
fn major_minor(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// A blocker only for a native build; on another machine it is just information.
fn native_blocker(i: &Inputs) -> Level {
    if i.native() {
        Level::Blocker
    } else {
        Level::Info
    }
}

pub fn platform(i: &Inputs) -> Section {
    let mut checks = Vec::new();
    match &i.facts.jetson {
        Some(j) => {
            checks.push(Check::new("model", Level::Ok, j.model.clone()));
            checks.push(jetpack_check(i, j.l4t.as_deref(), j.jetpack.as_deref()));
        }
        None => match &i.facts.l4t_userspace {
            Some(u) => {
                checks.push(Check::new(
                    "model",
                    Level::Ok,
                    format!("{}, {}; from {}", u.describe(), i.facts.arch, u.source),
                ));
                checks.push(jetpack_check(i, Some(&u.l4t), u.jetpack.as_deref()));
            }
            None => checks.push(Check::new(
                "model",
                Level::Info,
                format!("not a Jetson ({})", i.facts.arch),
            )),
        },
    }
    if let Some(c) = build_host_check(i) {
        checks.push(c);
    }
    if !i.native() && i.target.cross.is_some() {
        checks.push(Check::new(
            "target",
            Level::Info,
            format!(
                "target `{}` is {}, this machine is {}: a cross build (see Cross build)",
                i.target.name, i.target.arch, i.facts.arch
            ),
        ));
    } else if !i.native() {
        checks.push(
            Check::new(
                "target",
                Level::Blocker,
                format!(
                    "target `{}` is {}, this machine is {}: a native build is impossible here",
                    i.target.name, i.target.arch, i.facts.arch
                ),
            )
            .fix(
                "run jetforge on the Jetson itself, or pass `--target host` to build for this machine",
            ),
        );
    }
    section("Platform", checks)
}

/// Not a Jetson, but the target's CPU: wheels for a Jetson target are compiled here and
/// verified on the device later. None on a Jetson, for `--target host` or a cross build.
fn build_host_check(i: &Inputs) -> Option<Check> {
    if !i.build_host() {
        return None;
    }
    Some(Check::new(
        "build host",
        Level::Info,
        format!(
            "not a Jetson: wheels for `{}` are compiled here (nvcc needs no GPU) and their GPU checks run later on the device (`jetforge verify --index URL --nccl`)",
            i.target.name
        ),
    ))
}

fn jetpack_check(i: &Inputs, l4t: Option<&str>, jetpack: Option<&str>) -> Check {
    let shown = format!(
        "L4T {} / JetPack {}",
        l4t.unwrap_or("unknown"),
        jetpack.unwrap_or("unknown")
    );
    let Some(needed) = i.set.requires.jetpack.as_deref() else {
        return Check::new("L4T / JetPack", Level::Ok, shown);
    };
    let have = jetpack.and_then(major_minor);
    match (have, major_minor(needed)) {
        (Some(have), Some(need)) if have < need => Check::new(
            "L4T / JetPack",
            Level::Warn,
            format!("{shown}; the set is made for JetPack {needed} or later"),
        )
        .fix(format!(
            "flash JetPack {needed} or later (SDK Manager), or pick an older set with --set"
        )),
        (Some(_), Some(_)) => Check::new(
            "L4T / JetPack",
            Level::Ok,
            format!("{shown} (set needs {needed}+)"),
        ),
        _ => Check::new(
            "L4T / JetPack",
            Level::Warn,
            format!("{shown}; cannot compare with the set's JetPack {needed}"),
        )
        .fix("check /etc/nv_tegra_release (`cat /etc/nv_tegra_release`)"),
    }
}

pub fn cuda(i: &Inputs) -> Section {
    if !i.needs_cuda() {
        return section(
            "CUDA",
            vec![Check::new(
                "toolkit",
                Level::Info,
                "the target builds no CUDA code",
            )],
        );
    }
    let needed = i.set.requires.cuda.as_deref();
    let install = install_cuda_hint(i, needed);
    let toolkit = match &i.facts.cuda {
        None => Check::new(
            "toolkit",
            native_blocker(i),
            format!(
                "no CUDA toolkit at {} (no version.json, version.txt or nvcc)",
                i.target.cuda_home.display()
            ),
        )
        .fix(install.clone()),
        Some(c) => cuda_version_check(i, &c.version, &c.home.display().to_string(), needed),
    };
    let nvcc = match (&i.probes.nvcc.path, &i.probes.nvcc.version) {
        (Some(p), Some(v)) => Check::new("nvcc", Level::Ok, format!("{} ({v})", p.display())),
        (Some(p), None) => Check::new("nvcc", Level::Ok, p.display().to_string()),
        (None, _) => Check::new(
            "nvcc",
            native_blocker(i),
            "nvcc not found in the toolkit's bin/ or on PATH",
        )
        .fix(install),
    };
    section("CUDA", vec![toolkit, nvcc])
}

fn install_cuda_hint(i: &Inputs, needed: Option<&str>) -> String {
    let dashed = needed.unwrap_or("12.6").replace('.', "-");
    if i.facts.jetson.is_some() {
        format!("sudo apt-get install cuda-toolkit-{dashed} (or the whole `nvidia-jetpack`)")
    } else if let Some(image) = jetson_build_image(i, needed) {
        format!(
            "build inside NVIDIA's JetPack container, which carries CUDA {}: `docker run -it -v \"$PWD\":/work -w /work {image}` (see README, Building in CI)",
            needed.unwrap_or("12.6")
        )
    } else {
        format!("install the CUDA toolkit (e.g. `sudo apt-get install cuda-toolkit-{dashed}` from NVIDIA's repository), or set CUDA_HOME")
    }
}

/// `nvcr.io/nvidia/l4t-jetpack:r36.4.0` for an aarch64 machine that is not a Jetson building a
/// Jetson target natively, when the set's CUDA has such an image.
fn jetson_build_image(i: &Inputs, needed: Option<&str>) -> Option<String> {
    if !i.build_host() || i.facts.arch != "aarch64" {
        return None;
    }
    crate::host::jetpack_image_for_cuda(needed.unwrap_or("12.6"))
        .map(|tag| format!("nvcr.io/nvidia/l4t-jetpack:{tag}"))
}

fn cuda_version_check(i: &Inputs, have: &str, home: &str, needed: Option<&str>) -> Check {
    let shown = format!("CUDA {have} at {home}");
    let Some(needed) = needed else {
        return Check::new("toolkit", Level::Ok, shown);
    };
    let (Some(h), Some(n)) = (major_minor(have), major_minor(needed)) else {
        return Check::new("toolkit", Level::Warn, format!("{shown}; cannot compare"));
    };
    if h.0 == n.0 && h.1 == n.1 {
        return Check::new(
            "toolkit",
            Level::Ok,
            format!("{shown} (set needs {needed})"),
        );
    }
    // A build host compiling a Jetson target natively links what it builds against its own
    // toolkit: the wheels then need that CUDA on the device, so only JetPack's release will do.
    if i.build_host() {
        let toolkit = format!("point CUDA_HOME at JetPack's CUDA {needed} toolkit for aarch64 (not the server (sbsa) one)");
        let fix = match jetson_build_image(i, Some(needed)) {
            Some(image) => format!("build inside `{image}` (CUDA {needed}), or {toolkit}"),
            None => toolkit,
        };
        return Check::new(
            "toolkit",
            Level::Blocker,
            format!(
                "{shown}; the wheels for `{}` must be built with JetPack's CUDA {needed}",
                i.target.name
            ),
        )
        .fix(fix);
    }
    // On a Jetson the set's CUDA is JetPack's: another major version cannot work. On other
    // machines the set's pin describes the Jetson, and a host build may well use another CUDA.
    let jetson = i.facts.jetson.is_some() && i.native();
    let level = if jetson && h.0 != n.0 {
        Level::Blocker
    } else {
        Level::Warn
    };
    let detail = format!("{shown}; the set is made for CUDA {needed}");
    let fix = if jetson {
        format!("install CUDA {needed} (JetPack's), or pick the set for this JetPack with --set")
    } else {
        "fine for a host build if torch and the recipes support this CUDA; a Jetson build needs the set's CUDA".to_string()
    };
    Check::new("toolkit", level, detail).fix(fix)
}

pub fn python(i: &Inputs) -> Section {
    let want = &i.target.python_version;
    let mut checks = Vec::new();
    let dev_pkg = format!("sudo apt-get install python{want}-dev python{want}-venv");
    match &i.facts.python {
        None => checks.push(
            Check::new(
                "python",
                native_blocker(i),
                format!("no python3 found (target needs {want})"),
            )
            .fix(format!(
                "sudo apt-get install python{want} python{want}-dev python{want}-venv"
            )),
        ),
        Some(p) => {
            let exe = p
                .executable
                .as_ref()
                .map(|e| format!(" at {}", e.display()))
                .unwrap_or_default();
            let mm = major_minor(&p.version);
            let matches = mm.is_some() && mm == major_minor(want);
            let level = if matches { Level::Ok } else { Level::Warn };
            let mut c = Check::new(
                "python",
                level,
                format!("Python {}{exe} (target needs {want})", p.version),
            );
            if !matches {
                c = c.fix(format!(
                    "install python{want} and pass `--python python{want}` to build/install"
                ));
            }
            checks.push(c);
            checks.push(headers_check(i, &dev_pkg));
        }
    }
    section("Python", checks)
}

fn headers_check(i: &Inputs, dev_pkg: &str) -> Check {
    let dir = i
        .probes
        .python_include
        .as_ref()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| "the include directory".into());
    if i.probes.python_h {
        Check::new("dev headers", Level::Ok, format!("{dir}/Python.h"))
    } else {
        Check::new(
            "dev headers",
            native_blocker(i),
            format!("{dir}/Python.h is missing: no C extension can be compiled"),
        )
        .fix(dev_pkg.to_string())
    }
}

pub fn tools(i: &Inputs) -> Section {
    let checks = i
        .probes
        .tools
        .iter()
        .map(|t| {
            if let Some(chosen) = &t.chosen {
                return match &t.path {
                    Some(p) => Check::new(
                        t.name.clone(),
                        Level::Ok,
                        format!("{chosen}: {}", found_at(p, t.version.as_deref())),
                    ),
                    None => Check::new(
                        t.name.clone(),
                        native_blocker(i),
                        format!("{chosen}, but that compiler is not found"),
                    )
                    .fix("point the variable at an installed compiler, or unset it to use gcc/g++"),
                };
            }
            let Some(path) = &t.path else {
                let (level, why) = match t.name.as_str() {
                    "gcc" | "g++" => (native_blocker(i), "every native extension needs it"),
                    "cmake" | "ninja" => (
                        Level::Warn,
                        "pip installs it into the build venv from [depends] python, unless offline",
                    ),
                    _ => (Level::Warn, "some builds read their version from git"),
                };
                return Check::new(t.name.clone(), level, format!("not found: {why}"))
                    .fix("sudo apt-get install build-essential cmake ninja-build git");
            };
            Check::new(
                t.name.clone(),
                Level::Ok,
                found_at(path, t.version.as_deref()),
            )
        })
        .collect();
    section("Build tools", checks)
}

/// `/usr/bin/gcc: gcc (Debian 12.2.0) 12.2.0`, or the path alone when the version is unknown.
fn found_at(path: &std::path::Path, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("{}: {v}", path.display()),
        None => path.display().to_string(),
    }
}

pub fn libraries(i: &Inputs) -> Section {
    // cuDNN, cuSPARSELt and NCCL matter only to torch's own build.
    if !i.builds_torch() {
        return section(
            "CUDA libraries",
            vec![Check::new(
                "cuDNN etc.",
                Level::Info,
                "not checked: the selection does not build torch",
            )],
        );
    }
    let jetson = i.facts.jetson.is_some();
    let checks = i
        .probes
        .libraries
        .iter()
        .map(|l| {
            if let Some(found) = &l.found {
                return Check::new(l.name.clone(), Level::Ok, found.clone());
            }
            let (detail, fix) = match l.name.as_str() {
                "cuDNN" => (
                    "not found: torch's USE_CUDNN=1 turns itself off silently (no cuDNN in the wheel)",
                    if jetson {
                        "sudo apt-get install libcudnn9-dev-cuda-12 (part of nvidia-jetpack)"
                    } else {
                        "install cuDNN for this CUDA (e.g. sudo apt-get install libcudnn9-dev-cuda-12)"
                    },
                ),
                "cuSPARSELt" => (
                    "not found: torch's USE_CUSPARSELT=1 turns itself off (semi-structured sparsity unavailable)",
                    "sudo apt-get install libcusparselt0 libcusparselt-dev (NVIDIA's CUDA repository)",
                ),
                _ => (
                    "not found: torch compiles its bundled NCCL (longer build); on Tegra NCCL needs NVML lookups made non-fatal",
                    "optional: build NCCL for this GPU and set USE_SYSTEM_NCCL=1",
                ),
            };
            let level = if l.name == "NCCL" { Level::Info } else { Level::Warn };
            Check::new(l.name.clone(), level, detail).fix(fix)
        })
        .collect();
    section("CUDA libraries", checks)
}

pub fn disk(i: &Inputs) -> Section {
    let sizes: Vec<f64> = i.set.recipes.iter().filter_map(|r| r.disk_gib).collect();
    // Without any `disk_gib` the need is unknown, not zero: free space is shown, never judged.
    if sizes.is_empty() {
        let unknown = "the build needs an unknown amount (set [package] disk_gib)";
        let check = match &i.probes.disk {
            Some(d) => Check::new(
                "work dir",
                Level::Info,
                format!(
                    "{:.1} GiB free in {}; {unknown}",
                    d.free_bytes as f64 / GIB,
                    d.path.display()
                ),
            ),
            None => Check::new("work dir", Level::Info, unknown),
        };
        return section("Disk", vec![check]);
    }
    let need: f64 = sizes.iter().sum();
    let check = match &i.probes.disk {
        None if !i.probes.live => Check::new(
            "work dir",
            Level::Info,
            format!("the build needs about {need:.1} GiB; free space not measured under a fake host root"),
        ),
        None => Check::new(
            "work dir",
            Level::Warn,
            format!("could not measure free space in {} (the build needs {need:.1} GiB)", i.work_dir.display()),
        ),
        Some(d) => {
            let free = d.free_bytes as f64 / GIB;
            let shown = format!(
                "{free:.1} GiB free in {} (the build needs about {need:.1} GiB)",
                d.path.display()
            );
            if free < need {
                Check::new("work dir", Level::Blocker, shown).fix(format!(
                    "free {:.0} GiB, or put the work dir on a bigger disk: --work-dir /mnt/nvme/jetforge",
                    (need - free).ceil()
                ))
            } else {
                Check::new("work dir", Level::Ok, shown)
            }
        }
    };
    section("Disk", vec![check])
}

/// Swap that turns a Jetson's shared memory into a workable build machine.
const SWAP_FIX: &str = "sudo fallocate -l 16G /swapfile && sudo chmod 600 /swapfile && sudo mkswap /swapfile && sudo swapon /swapfile && echo '/swapfile none swap sw 0 0' | sudo tee -a /etc/fstab";

pub fn memory(i: &Inputs) -> Section {
    let m = &i.facts.memory;
    let (usable, how) = jobs::usable_memory(i.facts);
    let ram = Check::new(
        "memory",
        Level::Ok,
        format!(
            "{:.1} GiB RAM, {:.1} GiB swap; {usable:.1} GiB usable for a build ({how})",
            m.total as f64 / GIB,
            m.swap_total as f64 / GIB
        ),
    );
    let mut checks = vec![ram];
    let decisions: Vec<(String, u32, f64)> = i
        .set
        .recipes
        .iter()
        .filter(|r| !r.steps.is_empty())
        .map(|r| {
            let d = jobs::decide(&r.jobs, i.facts, &JobsOverride::default());
            (r.name.clone(), d.max_jobs, r.jobs.mem_per_job_gib)
        })
        .collect();
    if !decisions.is_empty() {
        let line = decisions
            .iter()
            .map(|(n, j, _)| format!("{n} {j}"))
            .collect::<Vec<_>>()
            .join(", ");
        checks.push(Check::new("MAX_JOBS", Level::Ok, line));
    }
    let heaviest = decisions.iter().max_by(|a, b| a.2.total_cmp(&b.2)).cloned();
    let torch = decisions
        .iter()
        .find(|d| d.0 == "torch")
        .or(heaviest.as_ref());
    let small = m.total > 0 && (m.total as f64 / GIB) < 16.0;
    let no_swap = m.swap_total < (8u64 << 30);
    if let (true, true, Some((name, jobs, _))) = (small, no_swap, torch) {
        let machine = i
            .facts
            .jetson
            .as_ref()
            .map_or_else(|| "this machine".to_string(), |j| short_model(&j.model));
        checks.push(
            Check::new(
                "swap",
                Level::Warn,
                format!(
                    "{machine} {:.0} GB with {}: {name} will build with MAX_JOBS={jobs}, and a single heavy nvcc job can be OOM-killed",
                    m.total as f64 / 1e9,
                    if m.swap_total == 0 { "no swap".to_string() } else { format!("only {:.1} GiB swap", m.swap_total as f64 / GIB) }
                ),
            )
            .fix(format!("add 16 GB swap: {SWAP_FIX}")),
        );
    }
    if let Some((name, _, per_job)) = heaviest.filter(|h| h.2 > usable) {
        checks.push(
            Check::new(
                "per-job memory",
                Level::Warn,
                format!("one {name} compile job needs about {per_job:.1} GiB, only {usable:.1} GiB is usable"),
            )
            .fix("add swap, stop other programs (a desktop session takes 1-2 GiB), or raise the cgroup limit"),
        );
    }
    section("Memory", checks)
}

/// "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super" → "Jetson Orin Nano".
fn short_model(model: &str) -> String {
    let words: Vec<&str> = model.split_whitespace().collect();
    let start = words.iter().position(|w| *w == "Jetson").unwrap_or(0);
    let end = words
        .iter()
        .position(|w| matches!(*w, "Developer" | "Engineering" | "Module"))
        .unwrap_or(words.len())
        .max(start + 1);
    words[start..end].join(" ")
}

/// The cross toolchain, sysroot and emulator, when the target is another architecture.
pub fn cross(i: &Inputs) -> Section {
    if i.native() {
        let detail = format!("native build ({}): no cross toolchain needed", i.facts.arch);
        return section(
            "Cross build",
            vec![Check::new("platforms", Level::Ok, detail)],
        );
    }
    let checks = crate::cross::cross_report(i.target, i.facts, i.sysroot.as_deref())
        .into_iter()
        .map(|c| {
            let level = if c.ok { Level::Ok } else { Level::Blocker };
            let check = Check::new(c.what, level, c.detail);
            match c.fix {
                Some(fix) => check.fix(fix),
                None => check,
            }
        })
        .collect();
    section("Cross build", checks)
}

pub fn network(i: &Inputs) -> Section {
    let checks = i
        .proxy
        .iter()
        .map(|line| {
            let (name, rest) = line.split_once(": ").unwrap_or(("proxy", line));
            Check::new(name, Level::Info, rest)
        })
        .collect();
    section("Network", checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_major_minor() {
        assert_eq!(major_minor("12.6.68"), Some((12, 6)));
        assert_eq!(major_minor("6.0 DP"), Some((6, 0)));
        assert_eq!(major_minor("6.1/6.2"), Some((6, 1)));
        assert_eq!(major_minor("13"), Some((13, 0)));
        assert_eq!(major_minor("unknown"), None);
    }

    #[test]
    fn model_names_shorten() {
        assert_eq!(
            short_model("NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"),
            "Jetson Orin Nano"
        );
        assert_eq!(
            short_model("NVIDIA Jetson AGX Orin Developer Kit"),
            "Jetson AGX Orin"
        );
        assert_eq!(short_model("Jetson"), "Jetson");
    }
}
