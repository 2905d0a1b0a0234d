//! `check` and `check --deep` on fixture repositories that mimic the layouts of vLLM and
//! flash-attention (written here, not copied), and the two real recipe sets: they load, check,
//! and plan on the faked Orin hosts in the right order with the right environment.

use std::path::Path;

use serde_json::Value;

use crate::util::{host, in_project, jetforge, plan_recipe, repo, stderr, stdout, tree};

const VLLM_SETUP: &str = "from setuptools import setup\n# CUDA_SUPPORTED_ARCHS lives in CMake\nsetup(name='vllm-like')\n";
const VLLM_CMAKE: &str = "set(CUDA_SUPPORTED_ARCHS \"8.0;8.6;9.0\")\n";

/// A vLLM-like and a flash-attn-like upstream, and a set building `torch_version` around them.
/// `strip` adds the `use_existing_torch.py` step to the vLLM-like recipe.
fn fixture(torch_version: &str, strip: bool) -> tempfile::TempDir {
    let dir = tree(&[("src/torch/setup.py", "from setuptools import setup\n")]);
    let up = dir.path().join("upstream");
    let (vllm_url, vllm_commit) = repo(
        &up,
        "vllm-like",
        &[
            (
                "requirements/cuda.txt",
                "# GPU deps\n-r common.txt\ntorch==2.9.0\nx86-only-kernels; platform_machine == \"x86_64\"\n",
            ),
            (
                "requirements/common.txt",
                "numpy\nflash-attn-like==1.0.0 ; platform_machine == \"x86_64\"\n",
            ),
            ("requirements/rocm.txt", "torch==2.9.0+rocm6.4\n"),
            (
                "pyproject.toml",
                "[build-system]\nrequires = [\n  \"setuptools>=77\",\n  \"torch == 2.9.0\",\n]\n",
            ),
            (
                "use_existing_torch.py",
                "# drops torch lines from the requirement files\n",
            ),
            ("setup.py", VLLM_SETUP),
            ("CMakeLists.txt", VLLM_CMAKE),
        ],
    );
    let (fa_url, fa_commit) = repo(
        &up,
        "flash-attn-like",
        &[(
            "setup.py",
            "from setuptools import setup\nsetup(\n    name=\"flash-attn-like\",\n    install_requires=[\"torch == 2.3.0\"],\n)\n",
        )],
    );
    let steps = if strip {
        r#"["python use_existing_torch.py", "python -m pip wheel --no-build-isolation --no-deps -w ${{ out }} ."]"#
    } else {
        r#"["python -m pip wheel --no-build-isolation --no-deps -w ${{ out }} ."]"#
    };
    let recipes = [
        (
            "torch.toml".to_string(),
            format!(
                "[package]\nname = \"torch\"\nversion = \"{torch_version}\"\n[source]\npath = \"../src/torch\"\n[build]\nsteps = [\"true\"]\n"
            ),
        ),
        (
            "flash-attn-like.toml".to_string(),
            format!(
                "[package]\nname = \"flash-attn-like\"\nversion = \"1.0.0\"\n[source]\ngit = \"{fa_url}\"\ncommit = \"{fa_commit}\"\n[depends]\nrecipes = [\"torch\"]\n[build]\nsteps = [\"true\"]\n"
            ),
        ),
        (
            "vllm-like.toml".to_string(),
            format!(
                "[package]\nname = \"vllm-like\"\nversion = \"0.1.0\"\n[source]\ngit = \"{vllm_url}\"\ncommit = \"{vllm_commit}\"\n[[edit]]\nfile = \"CMakeLists.txt\"\nfind = '\"8.0;8.6;9.0\"'\nreplace = '\"8.0;8.6;9.0;${{{{ cuda_arch_list }}}}\"'\n[depends]\nrecipes = [\"torch\", \"flash-attn-like\"]\n[build]\nsteps = {steps}\n"
            ),
        ),
    ];
    for (name, text) in recipes {
        let p = dir.path().join("recipes").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    in_project(dir)
        .env("JETFORGE_HOST_ROOT", host("orin-nano-8g"))
        .args(args)
        .output()
        .unwrap()
}

fn fetched(torch_version: &str, strip: bool) -> tempfile::TempDir {
    let dir = fixture(torch_version, strip);
    let out = run(dir.path(), &["fetch"]);
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

#[test]
fn deep_check_reports_a_setup_py_pin_the_set_does_not_satisfy() {
    let dir = fetched("2.3.1", true);
    let out = run(dir.path(), &["check", "--deep"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("flash-attn-like 1.0.0 requires torch==2.3.0 (setup.py:4); the set builds torch 2.3.1 ✘"),
        "{text}"
    );
}

#[test]
fn use_existing_torch_strips_requirement_pins_but_not_setup_py() {
    let dir = fetched("2.9.0", true);
    let text = stdout(&run(dir.path(), &["check", "--deep"]));
    assert!(
        text.contains("vllm-like 0.1.0 requires torch==2.9.0 (requirements/cuda.txt:3); stripped by use_existing_torch.py"),
        "{text}"
    );
    assert!(
        text.contains("vllm-like 0.1.0 requires torch == 2.9.0 (pyproject.toml:4); stripped by use_existing_torch.py"),
        "{text}"
    );
    assert!(
        !text.contains("rocm"),
        "other devices' files are not read: {text}"
    );
}

#[test]
fn without_use_existing_torch_the_requirement_pins_are_checked() {
    let dir = fetched("2.9.0", false);
    let text = stdout(&run(dir.path(), &["check", "--deep"]));
    assert!(
        text.contains("vllm-like 0.1.0 requires torch==2.9.0 (requirements/cuda.txt:3); the set builds torch 2.9.0 ✔"),
        "{text}"
    );
}

#[test]
fn an_x86_only_requirement_is_skipped_on_orin() {
    let dir = fetched("2.9.0", true);
    let text = stdout(&run(dir.path(), &["check", "--deep"]));
    assert!(
        text.contains("vllm-like 0.1.0 requires flash-attn-like==1.0.0 ; platform_machine == \"x86_64\" (requirements/common.txt:2); marker is false for the target, skipped"),
        "{text}"
    );
}

#[test]
fn a_good_set_passes_and_edits_are_checked_against_the_commit() {
    let dir = fetched("2.3.0", false);
    let out = run(dir.path(), &["check", "--deep"]);
    let text = stdout(&out);
    // torch 2.3.0 satisfies flash-attn-like but not vllm-like's 2.9.0: strip that one.
    assert_eq!(out.status.code(), Some(1), "{text}");
    let dir = fetched("2.3.0", true);
    let out = run(dir.path(), &["check", "--deep"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("flash-attn-like 1.0.0 requires torch==2.3.0 (setup.py:4); the set builds torch 2.3.0 ✔"),
        "{text}"
    );
    assert!(
        text.contains("vllm-like 0.1.0: 0 patch(es) and 1 edit(s) apply at the pinned commit"),
        "{text}"
    );
}

#[test]
fn deep_check_before_fetch_names_the_recipe_to_fetch() {
    let dir = fixture("2.9.0", true);
    let out = run(dir.path(), &["check", "--deep"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("is not in the git cache; run `jetforge fetch vllm-like` first"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_declared_pin_the_set_does_not_satisfy_fails_plain_check() {
    let dir = fixture("2.9.0", true);
    let p = dir.path().join("recipes/flash-attn-like.toml");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("[depends]\n", "[depends]\npython = [\"torch>=2.10\"]\n");
    std::fs::write(&p, text).unwrap();
    let out = run(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let want = "flash-attn-like 1.0.0 requires torch>=2.10 (recipes/flash-attn-like.toml:8); \
                the set builds torch 2.9.0 ✘";
    assert!(stdout(&out).contains(want), "{}", stdout(&out));
}

/// The real sets, as embedded in the binary.
fn real(args: &[&str], host_name: &str) -> std::process::Output {
    jetforge()
        .env("JETFORGE_HOST_ROOT", host(host_name))
        .env("JETFORGE_CONFIG", "/nonexistent/jetforge.toml")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn both_real_sets_pass_check() {
    for set in ["jp6-vllm-0.12", "jp6-vllm-0.5"] {
        let out = real(&["--set", set, "check"], "agx-orin-64g");
        let text = stdout(&out);
        assert!(text.contains(&format!("ok: set `{set}`")), "{text}");
        assert!(out.status.success(), "{text}\n{}", stderr(&out));
        assert!(!text.contains("placeholder"), "{text}");
        assert!(!text.contains('✘'), "{text}");
    }
}

fn plan(set: &str, host_name: &str) -> Value {
    let out = real(&["--set", set, "plan", "all", "--json"], host_name);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn real_sets_plan_in_order_for_sm87_with_memory_aware_jobs() {
    for (set, torch) in [("jp6-vllm-0.12", "2.9.0"), ("jp6-vllm-0.5", "2.3.1")] {
        let nano = plan(set, "orin-nano-8g");
        let agx = plan(set, "agx-orin-64g");
        let names: Vec<&str> = agx["recipes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert!(
            at("torch") < at("torchvision") && at("torch") < at("triton"),
            "{names:?}"
        );
        for before in ["torch", "torchvision", "triton", "vllm-flash-attn"] {
            assert!(at(before) < at("vllm"), "{before} after vllm: {names:?}");
        }
        for r in agx["recipes"].as_array().unwrap() {
            if r["output"] == "wheel" {
                assert_eq!(r["env"]["TORCH_CUDA_ARCH_LIST"], "8.7", "{set}: {r}");
            }
        }
        assert_eq!(
            plan_recipe(&agx, "torch")["env"]["PYTORCH_BUILD_VERSION"],
            torch
        );
        let jobs = |p: &Value, n: &str| plan_recipe(p, n)["jobs"]["jobs"].as_u64().unwrap();
        for n in ["torch", "vllm"] {
            assert!(jobs(&nano, n) < jobs(&agx, n), "{set} {n}");
        }
    }
}

/// The recipes #11 added: LLVM (an installed tree) before triton in the 0.5 set, NCCL (a source
/// tree torch's build copies in) before torch in the 0.12 set, with MAX_JOBS from memory that
/// never exceeds the CPUs and grows with the machine.
#[test]
fn real_sets_plan_llvm_and_nccl_before_their_users_with_sane_jobs() {
    for (set, dep, user, kind) in [
        ("jp6-vllm-0.5", "llvm", "triton", "tree"),
        ("jp6-vllm-0.12", "nccl", "torch", "source"),
    ] {
        let agx = plan(set, "agx-orin-64g");
        let names: Vec<&str> = agx["recipes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert!(at(dep) < at(user), "{set}: {names:?}");
        assert_eq!(plan_recipe(&agx, dep)["output"], kind, "{set}");
        assert!(
            plan_recipe(&agx, user)["depends"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d == dep),
            "{set}"
        );
    }
    // LLVM: the install prefix reaches triton as LLVM_SYSPATH; links run one at a time.
    for host_name in ["orin-nano-8g", "agx-orin-64g"] {
        let p = plan("jp6-vllm-0.5", host_name);
        let llvm = plan_recipe(&p, "llvm");
        let jobs = llvm["jobs"]["jobs"].as_u64().unwrap();
        assert!((1..=12).contains(&jobs), "{host_name}: {jobs}");
        let prefix = plan_recipe(&p, "triton")["env"]["LLVM_SYSPATH"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(prefix.ends_with("/out/llvm"), "{prefix}");
        let configure = llvm["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "configure")
            .unwrap()
            .to_string();
        assert!(
            configure.contains("-DLLVM_PARALLEL_LINK_JOBS=1"),
            "{configure}"
        );
        assert!(
            configure.contains(&format!("-DCMAKE_INSTALL_PREFIX={prefix}")),
            "{configure}"
        );
    }
    let jobs = |p: &Value| plan_recipe(p, "llvm")["jobs"]["jobs"].as_u64().unwrap();
    assert!(
        jobs(&plan("jp6-vllm-0.5", "orin-nano-8g")) < jobs(&plan("jp6-vllm-0.5", "agx-orin-64g"))
    );
    // NCCL: torch's first step puts the nccl recipe's tree where checkout_nccl() looks.
    let p = plan("jp6-vllm-0.12", "agx-orin-64g");
    let nccl_dir = plan_recipe(&p, "nccl")["source_dir"]
        .as_str()
        .unwrap()
        .to_string();
    let step = plan_recipe(&p, "torch")["steps"][0].to_string();
    assert!(
        step.contains(&format!("cp -a {nccl_dir} third_party/nccl")),
        "{step}"
    );
}
