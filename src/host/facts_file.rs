//! `--host-facts FILE|PROFILE`: a description of another machine (the Jetson a plan is for)
//! that stands in for this one's facts in `plan` and `env`, so MAX_JOBS and the host line are
//! the device's, not those of the workstation the plan is made on.
//!
//! The file is TOML (or JSON when it ends in `.json`) with these keys; only `cpus` and
//! `memory_gib` are required:
//!
//! ```toml
//! model = "NVIDIA Jetson AGX Orin Developer Kit"  # /proc/device-tree/model; a Jetson model sets the GPU arch
//! arch = "aarch64"            # CPU architecture (default aarch64)
//! cpus = 12                   # CPUs a build may use
//! memory_gib = 61.4           # RAM (MemTotal)
//! available_gib = 58.0        # RAM free for a build (MemAvailable; default memory_gib)
//! swap_gib = 0                # swap, all of it free (default 0)
//! cgroup_limit_gib = 16       # memory limit of the build's cgroup (default none)
//! cuda = "12.6.68"            # CUDA toolkit version (default none)
//! l4t = "36.4.3"              # L4T release (sets the JetPack version)
//! python = "3.10.12"          # the target's Python
//! ```
//!
//! Built-in profiles (typical figures of a freshly booted developer kit with JetPack 6.2):
//! `orin-nano-8g`, `orin-nx-16g`, `agx-orin-32g`, `agx-orin-64g`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use super::{jetson, CgroupMemory, Cpus, Cuda, HostFacts, Jetson, Memory, Python, GIB};

/// Built-in profiles: (name, facts file text).
pub const PROFILES: &[(&str, &str)] = &[
    (
        "orin-nano-8g",
        "model = \"NVIDIA Jetson Orin Nano Developer Kit\"\ncpus = 6\nmemory_gib = 7.4\n\
         available_gib = 6.3\ncuda = \"12.6.68\"\nl4t = \"36.4.3\"\npython = \"3.10.12\"\n",
    ),
    (
        "orin-nx-16g",
        "model = \"NVIDIA Jetson Orin NX Engineering Reference Developer Kit\"\ncpus = 8\n\
         memory_gib = 15.3\navailable_gib = 13.9\ncuda = \"12.6.68\"\nl4t = \"36.4.3\"\n\
         python = \"3.10.12\"\n",
    ),
    (
        "agx-orin-32g",
        "model = \"NVIDIA Jetson AGX Orin Developer Kit\"\ncpus = 8\nmemory_gib = 30.6\n\
         available_gib = 28.5\ncuda = \"12.6.68\"\nl4t = \"36.4.3\"\npython = \"3.10.12\"\n",
    ),
    (
        "agx-orin-64g",
        "model = \"NVIDIA Jetson AGX Orin Developer Kit\"\ncpus = 12\nmemory_gib = 61.4\n\
         available_gib = 58.0\ncuda = \"12.6.68\"\nl4t = \"36.4.3\"\npython = \"3.10.12\"\n",
    ),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FactsFile {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    arch: Option<String>,
    cpus: usize,
    memory_gib: f64,
    #[serde(default)]
    available_gib: Option<f64>,
    #[serde(default)]
    swap_gib: f64,
    #[serde(default)]
    cgroup_limit_gib: Option<f64>,
    #[serde(default)]
    cuda: Option<String>,
    #[serde(default)]
    l4t: Option<String>,
    #[serde(default)]
    python: Option<String>,
}

/// The facts of `spec`: an existing file, else a built-in profile's name.
pub fn load(spec: &str) -> Result<HostFacts> {
    let path = Path::new(spec);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read the host facts `{spec}`"))?;
        return parse(&text, path.extension().is_some_and(|e| e == "json"))
            .with_context(|| format!("host facts `{spec}`"));
    }
    match PROFILES.iter().find(|(name, _)| *name == spec) {
        Some((_, text)) => parse(text, false),
        None => Err(crate::error::input_hint(
            format!("--host-facts `{spec}` is neither a file nor a built-in profile"),
            format!(
                "profiles: {}; or a TOML file with cpus, memory_gib, … (see the README)",
                PROFILES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn parse(text: &str, json: bool) -> Result<HostFacts> {
    let f: FactsFile = if json {
        serde_json::from_str(text).map_err(|e| crate::error::input(e.to_string()))?
    } else {
        toml::from_str(text).map_err(|e| crate::error::input(e.message().to_string()))?
    };
    let gib = |field: &str, v: f64| -> Result<u64> {
        if v.is_finite() && v >= 0.0 {
            Ok((v * GIB) as u64)
        } else {
            Err(crate::error::input(format!(
                "`{field}` must be a number of GiB ≥ 0, not {v}"
            )))
        }
    };
    if f.cpus == 0 {
        return Err(crate::error::input("`cpus` must be at least 1"));
    }
    let total = gib("memory_gib", f.memory_gib)?;
    let swap = gib("swap_gib", f.swap_gib)?;
    let jetson = f.model.map(|model| Jetson {
        model,
        jetpack: f
            .l4t
            .as_deref()
            .and_then(jetson::jetpack_for_l4t)
            .map(str::to_string),
        l4t: f.l4t.clone(),
    });
    let gpu_arch = jetson
        .as_ref()
        .and_then(|j| jetson::gpu_arch_for_model(&j.model))
        .map(str::to_string);
    Ok(HostFacts {
        arch: f.arch.unwrap_or_else(|| "aarch64".to_string()),
        cpus: Cpus {
            online: f.cpus,
            quota: None,
            usable: f.cpus,
        },
        memory: Memory {
            total,
            available: gib("available_gib", f.available_gib.unwrap_or(f.memory_gib))?,
            swap_total: swap,
            swap_free: swap,
        },
        cgroup: f
            .cgroup_limit_gib
            .map(|l| {
                Ok::<_, anyhow::Error>(CgroupMemory {
                    version: 2,
                    path: "/".to_string(),
                    limit: Some(gib("cgroup_limit_gib", l)?),
                    usage: None,
                    inactive_file: None,
                })
            })
            .transpose()?,
        gpu_visible: gpu_arch.is_some(),
        jetson,
        l4t_userspace: None,
        cuda: f.cuda.map(|version| Cuda {
            version,
            home: PathBuf::from("/usr/local/cuda"),
            source: "host facts".to_string(),
        }),
        gpu_arch,
        python: f.python.map(|version| Python {
            version,
            executable: None,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_parses_as_a_jetson_orin() {
        for (name, _) in PROFILES {
            let f = load(name).unwrap();
            assert_eq!(f.gpu_arch.as_deref(), Some("8.7"), "{name}");
            assert_eq!(f.jetson.unwrap().jetpack.as_deref(), Some("6.2"), "{name}");
        }
    }

    #[test]
    fn agx_profile_matches_the_agx_fixture_tree() {
        let file = load("agx-orin-64g").unwrap();
        let tree = super::super::fixtures::facts("agx-orin-64g");
        assert_eq!(file.cpus.usable, tree.cpus.usable);
        let gib = |b: u64| (b as f64 / GIB * 10.0).round();
        assert_eq!(gib(file.memory.available), gib(tree.memory.available));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse("cpus = 0\nmemory_gib = 8\n", false).is_err());
        assert!(parse("cpus = 4\nmemory_gib = -5\n", false).is_err());
        assert!(parse("cpus = 4\nmemory_gib = nan\n", false).is_err());
        assert!(parse("{\"cpus\": 4, \"memory_gib\": 8}", true).is_ok());
        assert!(parse("cpus = 4\nmemory_gb = 8\n", false).is_err());
    }
}
