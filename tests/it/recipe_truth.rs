//! Guards for the facts the real recipes encode (issue #11): per-arch gencode edits, where the
//! triton wheels bundle ptxas, CMake < 4 for torch 2.3.1, the FetchContent pins `check --deep`
//! compares, and a placeholder commit named by file:line.

use std::path::Path;
use std::str::FromStr;

use serde_json::Value;

use crate::util::{host, in_project, jetforge, plan_recipe, repo, stderr, stdout, tree};

fn real_recipe(rel: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("recipes")
            .join(rel),
    )
    .unwrap()
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    in_project(dir)
        .env("JETFORGE_HOST_ROOT", host("agx-orin-64g"))
        .args(args)
        .output()
        .unwrap()
}

fn real_plan(set: &str, extra: &[&str]) -> Value {
    let out = jetforge()
        .env("JETFORGE_HOST_ROOT", host("agx-orin-64g"))
        .env("JETFORGE_CONFIG", "/nonexistent/jetforge.toml")
        .args(["--set", set])
        .args(extra)
        .args(["plan", "all", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The lines of flash-attention v2.5.9.post1's setup.py the 0.5 set edits (setup.py:119-126).
const FA_SETUP: &str = r#"    cc_flag = []
    # cc_flag.append("-gencode")
    # cc_flag.append("arch=compute_75,code=sm_75")
    cc_flag.append("-gencode")
    cc_flag.append("arch=compute_80,code=sm_80")
    if CUDA_HOME is not None:
        if bare_metal_version >= Version("11.8"):
            cc_flag.append("-gencode")
            cc_flag.append("arch=compute_90,code=sm_90")
"#;

/// The real vllm-flash-attn (0.5) edits applied to its setup.py lines for `--cuda-arch 8.7,9.0`:
/// one -gencode pair per arch, nothing for sm_80, and the hard-coded sm_90 block switched off.
#[test]
fn vllm_flash_attn_edit_writes_one_gencode_pair_per_cuda_arch() {
    let real = real_recipe("jp6-vllm-0.5/vllm-flash-attn.toml");
    let edits = &real[real.find("[[edit]]").unwrap()..real.find("[depends]").unwrap()];
    let dir = tree(&[
        ("src/fa/setup.py", FA_SETUP),
        (
            "recipes/vllm-flash-attn.toml",
            &format!(
                "[package]\nname = \"vllm-flash-attn\"\nversion = \"2.5.9.post1\"\n[source]\npath = \"../src/fa\"\n{edits}\n[build]\nsteps = [\"true\"]\n"
            ),
        ),
    ]);
    for (archs, want, absent) in [
        ("8.7,9.0", vec!["87", "90"], vec!["80"]),
        ("8.7", vec!["87"], vec!["80", "90"]),
    ] {
        let out = run(dir.path(), &["--cuda-arch", archs, "prepare"]);
        assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
        let plan = run(dir.path(), &["--cuda-arch", archs, "plan", "--json"]);
        let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
        let src = plan_recipe(&plan, "vllm-flash-attn")["source_dir"]
            .as_str()
            .unwrap()
            .to_string();
        let setup = std::fs::read_to_string(Path::new(&src).join("setup.py")).unwrap();
        for a in &want {
            let pair = format!(
                "    cc_flag.append(\"-gencode\")\n    cc_flag.append(\"arch=compute_{a},code=sm_{a}\")\n"
            );
            assert_eq!(setup.matches(&pair).count(), 1, "{archs}: {setup}");
        }
        for a in &absent {
            assert!(
                !setup.contains(&format!(
                    "    cc_flag.append(\"arch=compute_{a},code=sm_{a}\")\n    if CUDA_HOME"
                )),
                "{archs}: {setup}"
            );
        }
        assert!(!setup.contains("compute_80"), "{archs}: {setup}");
        assert!(setup.contains("if False:  # jetforge"), "{setup}");
    }
}

/// Where each triton version's runtime looks for ptxas (and cuobjdump, nvdisasm) when no
/// TRITON_*_PATH is set, relative to the source tree the wheel is built from:
/// - 3.5 (triton/knobs.py env_nvidia_tool: `triton/backends/nvidia/bin/<tool>`; setup.py packages
///   triton.backends.nvidia from third_party/nvidia/backend);
/// - 2.3 (triton/common/backend.py _path_to_binary: `triton/third_party/cuda/bin/<tool>`, with
///   the package under python/).
///
/// The recipes' bundle steps must copy JetPack's tools exactly there, before the wheel step.
#[test]
fn triton_recipes_bundle_cuda_tools_where_the_runtime_looks() {
    for (set, runtime_dir) in [
        ("jp6-vllm-0.12", "third_party/nvidia/backend/bin"),
        ("jp6-vllm-0.5", "python/triton/third_party/cuda/bin"),
    ] {
        let plan = real_plan(set, &[]);
        let triton = plan_recipe(&plan, "triton");
        let src = triton["source_dir"].as_str().unwrap();
        let steps = triton["steps"].as_array().unwrap();
        let bundle = steps
            .iter()
            .position(|s| s["name"] == "bundle CUDA tools")
            .unwrap_or_else(|| panic!("{set}: no bundle step in {steps:?}"));
        let wheel = steps.iter().position(|s| s["name"] == "wheel").unwrap();
        assert!(bundle < wheel, "{set}");
        let step = &steps[bundle];
        let cwd = step["cwd"].as_str().unwrap();
        let rel_cwd = cwd.strip_prefix(src).unwrap().trim_start_matches('/');
        let script = step["script"].as_str().unwrap();
        let dest = script
            .lines()
            .find(|l| l.contains("install -m 0755"))
            .and_then(|l| l.split('"').nth(3))
            .unwrap_or_else(|| panic!("{set}: {script}"));
        let dest_dir = Path::new(rel_cwd).join(dest);
        assert_eq!(
            dest_dir.parent().unwrap(),
            Path::new(runtime_dir),
            "{set}: {script}"
        );
        assert!(dest.ends_with("/$tool"), "{set}: {dest}");
        assert!(
            script.contains("for tool in ptxas cuobjdump nvdisasm"),
            "{script}"
        );
        assert!(script.contains("/usr/local/cuda/bin/$tool"), "{script}");
    }
}

#[test]
fn torch_2_3_1_build_requirements_never_admit_cmake_4() {
    let plan = real_plan("jp6-vllm-0.5", &[]);
    let torch = plan_recipe(&plan, "torch");
    let cmake: Vec<pep508_rs::Requirement> = torch["python_requires"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| pep508_rs::Requirement::from_str(r.as_str().unwrap()).unwrap())
        .filter(|r| r.name.as_ref() == "cmake")
        .collect();
    assert_eq!(cmake.len(), 1, "{torch}");
    let Some(pep508_rs::VersionOrUrl::VersionSpecifier(spec)) = &cmake[0].version_or_url else {
        panic!("{torch}")
    };
    for v in ["4.0.0", "4.0.3", "4.1.2", "5.0"] {
        assert!(
            !spec.contains(&pep440_rs::Version::from_str(v).unwrap()),
            "{spec} admits {v}"
        );
    }
    assert!(
        spec.contains(&pep440_rs::Version::from_str("3.31.6").unwrap()),
        "{spec}"
    );
    // A CMake 4 already on the machine still configures: setup.py forwards CMAKE_* to CMake.
    assert_eq!(torch["env"]["CMAKE_POLICY_VERSION_MINIMUM"], "3.5");
}

#[test]
fn a_placeholder_commit_is_named_by_file_and_line() {
    let dir = tree(&[(
        "recipes/thing.toml",
        "[package]\nname = \"thing\"\nversion = \"1.0\"\n\n[source]\ngit = \"https://example.invalid/thing\"\ntag = \"v1.0\"\ncommit = \"0000000000000000000000000000000000000000\"\n[build]\nsteps = [\"true\"]\n",
    )]);
    let out = run(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    // The path as given: `in_project` runs with `--recipes recipes`.
    let want = "recipes/thing.toml:8: set `";
    let text = stdout(&out);
    assert!(text.contains(want), "{text}");
    assert!(text.contains("placeholder commit"), "{text}");
}

/// A vLLM-like tree that FetchContents a CUTLASS-like repository at `pin` (through a
/// `set(CUTLASS_REVISION …)` variable, as vLLM writes it), and a set whose cutlass-like source
/// recipe pins the fixture's real commit.
fn fetch_content_fixture(pin: Option<&str>) -> tempfile::TempDir {
    let dir = tree(&[("src/torch/setup.py", "from setuptools import setup\n")]);
    let up = dir.path().join("upstream");
    let (cut_url, cut_commit) = repo(
        &up,
        "cutlass-like",
        &[("include/cutlass.h", "// headers\n")],
    );
    let tag = pin.unwrap_or(&cut_commit);
    let cmake = format!(
        "set(CUTLASS_REVISION \"{tag}\" CACHE STRING \"CUTLASS revision to use\")\n\
         if(VLLM_CUTLASS_SRC_DIR)\n  FetchContent_Declare(cutlass SOURCE_DIR ${{VLLM_CUTLASS_SRC_DIR}})\nelse()\n\
         FetchContent_Declare(\n        cutlass\n        GIT_REPOSITORY {cut_url}.git\n        # a comment\n        GIT_TAG ${{CUTLASS_REVISION}}\n)\nendif()\n"
    );
    let (vllm_url, vllm_commit) = repo(
        &up,
        "vllm-like",
        &[
            ("CMakeLists.txt", &cmake),
            (
                "setup.py",
                "from setuptools import setup\nsetup(name='vllm-like')\n",
            ),
        ],
    );
    let recipes = [
        (
            "torch.toml",
            "[package]\nname = \"torch\"\nversion = \"2.9.0\"\n[source]\npath = \"../src/torch\"\n[build]\nsteps = [\"true\"]\n".to_string(),
        ),
        (
            "cutlass-like.toml",
            format!("[package]\nname = \"cutlass-like\"\nversion = \"1.0\"\n[source]\ngit = \"{cut_url}\"\ncommit = \"{cut_commit}\"\n[output]\nkind = \"source\"\n"),
        ),
        (
            "vllm-like.toml",
            format!("[package]\nname = \"vllm-like\"\nversion = \"0.1.0\"\n[source]\ngit = \"{vllm_url}\"\ncommit = \"{vllm_commit}\"\n[depends]\nrecipes = [\"torch\", \"cutlass-like\"]\n[build]\nsteps = [\"true\"]\n"),
        ),
    ];
    for (name, text) in recipes {
        let p = dir.path().join("recipes").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let out = run(dir.path(), &["fetch"]);
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

#[test]
fn deep_check_passes_a_fetch_content_pin_the_source_recipe_matches() {
    let dir = fetch_content_fixture(None);
    let out = run(dir.path(), &["check", "--deep"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("vllm-like 0.1.0: CMakeLists.txt:9 FetchContent `cutlass` GIT_TAG ")
            && text.contains(" = recipe `cutlass-like` commit ✔"),
        "{text}"
    );
}

#[test]
fn deep_check_fails_a_fetch_content_pin_that_differs_from_the_source_recipe() {
    let other = "0123456789abcdef0123456789abcdef01234567";
    let dir = fetch_content_fixture(Some(other));
    let out = run(dir.path(), &["check", "--deep"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(
        text.contains(&format!(
            "vllm-like 0.1.0: CMakeLists.txt:9 FetchContent `cutlass` GIT_TAG {other}; `cutlass-like` pins "
        )) && text.contains('✘'),
        "{text}"
    );
}

/// The tag/commit pairs confirmed by a source other than a wheel's `git_version` (see each
/// recipe's comment and the README's provenance table). torch 2.3.1's wheels carry d44533f9…,
/// which is not what tag v2.3.1 peels to; triton 2.3.1 has no tag, only release/2.3.x.
#[test]
fn pinned_commits_are_the_independently_verified_ones() {
    for (set, name, tag, branch, commit) in [
        (
            "jp6-vllm-0.5",
            "torch",
            Some("v2.3.1"),
            None,
            "63d5e9221bedd1546b7d364b5ce4171547db12a9",
        ),
        (
            "jp6-vllm-0.5",
            "torchvision",
            Some("v0.18.1"),
            None,
            "126fc22ce33e6c2426edcf9ed540810c178fe9ce",
        ),
        (
            "jp6-vllm-0.5",
            "triton",
            None,
            Some("release/2.3.x"),
            "958fccea74da58e7e0595ab88ae6cd3f6795a173",
        ),
        (
            "jp6-vllm-0.5",
            "vllm-flash-attn",
            Some("v2.5.9.post1"),
            None,
            "537f75eb14bf91e582202f4632e5337adbd2b79e",
        ),
        (
            "jp6-vllm-0.5",
            "cutlass",
            Some("v3.5.0"),
            None,
            "7d49e6c7e2f8896c47f586706e67e1fb215529dc",
        ),
        (
            "jp6-vllm-0.12",
            "triton",
            Some("v3.5.0"),
            None,
            "c3c476f357f1e9768ea4e45aa5c17528449ab9ef",
        ),
        (
            "jp6-vllm-0.12",
            "nccl",
            Some("v2.27.5-1"),
            None,
            "3ea7eedf3b9b94f1d9f99f4e55536dfcbd23c1ca",
        ),
        (
            "jp6-vllm-0.12",
            "cutlass",
            Some("v4.2.1"),
            None,
            "f3fde58372d33e9a5650ba7b80fc48b3b49d40c8",
        ),
        (
            "jp6-vllm-0.12",
            "bitsandbytes",
            Some("0.48.2"),
            None,
            "b48ecdb3c7fe7bc0c467a015177258b35dfbc3ce",
        ),
    ] {
        let plan = real_plan(set, &[]);
        let r = plan_recipe(&plan, name);
        assert_eq!(r["commit"], commit, "{set} {name}");
        assert_eq!(r["source"]["tag"].as_str(), tag, "{set} {name}");
        assert_eq!(r["source"]["branch"].as_str(), branch, "{set} {name}");
    }
}
