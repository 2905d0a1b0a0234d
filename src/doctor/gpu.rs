//! GPU visibility, path by path: device nodes, the kernel driver's version file, nvidia-smi,
//! the CUDA driver library and torch. Each is reported on its own, then a diagnosis names the
//! pattern (a container without the NVIDIA runtime breaks some paths and not others). A build
//! needs no GPU (nvcc compiles without one), so nothing here is a blocker; verify needs one.

use super::probe::{GpuPaths, PathResult};
use super::{Check, Inputs, Level, Section};

const RUNTIME_FIX: &str = "start the container with the NVIDIA runtime: `docker run --runtime nvidia …` (Jetson) or `docker run --gpus all …` (NVIDIA Container Toolkit)";

pub fn section(i: &Inputs) -> Section {
    let g = &i.probes.gpu;
    let jetson = i.facts.jetson.is_some();
    let nodes = if g.device_nodes.is_empty() {
        Check::new(
            "device nodes",
            Level::Warn,
            "none of /dev/nvidia*, /dev/nvhost-*, /dev/nvmap",
        )
    } else {
        Check::new("device nodes", Level::Ok, g.device_nodes.join(" "))
    };
    // Jetson's integrated GPU has no /proc/driver/nvidia and a limited nvidia-smi.
    let optional_on_jetson = |r: &PathResult| match r {
        PathResult::Missing { .. } if jetson => Level::Info,
        other => level_of(other),
    };
    let checks = vec![
        nodes,
        path_check("driver", &g.driver, optional_on_jetson(&g.driver)),
        path_check(
            "nvidia-smi",
            &g.nvidia_smi,
            optional_on_jetson(&g.nvidia_smi),
        ),
        path_check("libcuda", &g.libcuda, level_of(&g.libcuda)),
        path_check("torch", &g.torch, level_of(&g.torch)),
        diagnose(g, jetson, i.build_host()),
    ];
    Section {
        title: "GPU".into(),
        checks,
    }
}

fn level_of(r: &PathResult) -> Level {
    match r {
        PathResult::Ok { .. } => Level::Ok,
        PathResult::NotRun { .. } => Level::Info,
        PathResult::Missing { .. } | PathResult::Failed { .. } => Level::Warn,
    }
}

fn path_check(name: &str, r: &PathResult, level: Level) -> Check {
    Check::new(name, level, r.detail())
}

/// What the combination of paths means, with the fix for it.
fn diagnose(g: &GpuPaths, jetson: bool, build_host: bool) -> Check {
    let nodes = !g.device_nodes.is_empty();
    // A build host has no GPU by design; JetPack's libcuda may well be in its image (the
    // `nvidia-l4t-cuda` package) without a device to open, which is not a container mistake.
    if build_host && !nodes {
        return Check::new(
            "diagnosis",
            Level::Warn,
            "no GPU visible: builds work (nvcc needs no GPU), verify snippets that need one are skipped",
        )
        .fix("verify the built wheels on the device: `jetforge verify --index URL --nccl` on the Orin");
    }
    let lib_missing = matches!(g.libcuda, PathResult::Missing { .. });
    let lib_failed = matches!(g.libcuda, PathResult::Failed { .. });
    let torch_ok = g.torch.is_ok();
    let count = [&g.nvidia_smi, &g.libcuda, &g.torch]
        .iter()
        .filter_map(|r| r.devices())
        .max();
    let name = "diagnosis";
    if nodes && lib_missing {
        return Check::new(
            name,
            Level::Warn,
            "device nodes present but libcuda missing: the container was started without the NVIDIA runtime (it mounts the driver libraries)",
        )
        .fix(RUNTIME_FIX);
    }
    if !nodes && !lib_missing && !matches!(g.libcuda, PathResult::NotRun { .. }) {
        return Check::new(
            name,
            Level::Warn,
            "the driver library is there but no GPU device nodes: the container was started without the devices",
        )
        .fix(RUNTIME_FIX);
    }
    if !nodes && lib_missing {
        let fix = if jetson {
            "reflash or repair JetPack (`sudo apt-get install --reinstall nvidia-l4t-cuda`); in a container add `--runtime nvidia`"
        } else {
            "install the NVIDIA driver, or build here and verify on a machine with a GPU"
        };
        return Check::new(
            name,
            Level::Warn,
            "no GPU visible: builds work (nvcc needs no GPU), verify snippets that need one are skipped",
        )
        .fix(fix);
    }
    if lib_failed && torch_ok {
        return Check::new(
            name,
            Level::Warn,
            "torch sees the GPU but the driver library's own cuInit/cuDeviceGetCount fails: tools that call libcuda directly will not see it",
        )
        .fix("compare the container's libcuda with the host driver (`ls -l /usr/lib/*/libcuda.so*`, /proc/driver/nvidia/version); a forward-compat libcuda in the image often causes this");
    }
    if lib_failed {
        return Check::new(
            name,
            Level::Warn,
            "the driver library is present but cannot initialise the GPU",
        )
        .fix("check that libcuda matches the kernel driver (`cat /proc/driver/nvidia/version`) and that the user may open /dev/nvidia* (group `video`)");
    }
    if g.libcuda.is_ok() && matches!(g.torch, PathResult::Failed { .. }) {
        return Check::new(
            name,
            Level::Warn,
            "the driver sees the GPU but torch does not: torch is a CPU-only build or built for another CUDA",
        )
        .fix("install the set's torch into this Python: `jetforge install torch --venv DIR`");
    }
    match count {
        Some(n) => Check::new(name, Level::Ok, format!("{n} GPU(s) visible")),
        None => Check::new(
            name,
            Level::Info,
            "the GPU paths were not all probed (fake host root or nothing to run)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(nodes: &[&str], libcuda: PathResult, torch: PathResult) -> GpuPaths {
        GpuPaths {
            device_nodes: nodes.iter().map(|s| s.to_string()).collect(),
            driver: PathResult::missing("x"),
            nvidia_smi: PathResult::missing("x"),
            libcuda,
            torch,
        }
    }

    #[test]
    fn container_without_runtime() {
        let c = diagnose(
            &paths(
                &["/dev/nvidia0"],
                PathResult::missing("no lib"),
                PathResult::not_run(""),
            ),
            false,
            false,
        );
        assert!(c.detail.contains("without the NVIDIA runtime"), "{c:?}");
        assert!(c.fix.unwrap().contains("--gpus all"));
    }

    #[test]
    fn error_304_with_working_torch() {
        let c = diagnose(
            &paths(
                &["/dev/nvidia0"],
                PathResult::failed("cuInit returned 304"),
                PathResult::ok("torch", Some(1)),
            ),
            false,
            false,
        );
        assert!(c.detail.contains("torch sees the GPU"), "{c:?}");
    }

    #[test]
    fn all_paths_agree() {
        let c = diagnose(
            &paths(
                &["/dev/nvidia0"],
                PathResult::ok("lib", Some(2)),
                PathResult::ok("torch", Some(2)),
            ),
            false,
            false,
        );
        assert_eq!(
            (c.level, c.detail.as_str()),
            (Level::Ok, "2 GPU(s) visible")
        );
    }

    #[test]
    fn build_host_without_gpu_is_not_a_container_mistake() {
        let c = diagnose(
            &paths(
                &[],
                PathResult::failed("cuInit returned 100"),
                PathResult::not_run(""),
            ),
            false,
            true,
        );
        assert!(c.detail.starts_with("no GPU visible: builds work"), "{c:?}");
        assert!(c
            .fix
            .unwrap()
            .contains("jetforge verify --index URL --nccl"));
    }

    #[test]
    fn cpu_only_torch() {
        let c = diagnose(
            &paths(
                &["/dev/nvidia0"],
                PathResult::ok("lib", Some(1)),
                PathResult::failed("not available"),
            ),
            false,
            false,
        );
        assert!(c.detail.contains("CPU-only"), "{c:?}");
    }
}
