//! Issue #12, security and silent wrong results: every path a recipe names stays inside its root
//! (refused by `check` at file:line:col, and at prepare time through symlinks), credentials
//! never show in diagnostics, logs or printed plans, `eval "$(jetforge env X)"` gets a working
//! proxy, logs and state are private, a CUDA build never gets an empty arch list, and a plan for
//! another machine says whose figures MAX_JOBS comes from.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use crate::fixtures::python;
use crate::util::{check_recipes, git, host, in_project, jetforge, stderr, stdout, tree};

const RECIPE: &str = r#"[package]
name = "first"
version = "1.0.0"

[source]
git = "https://example.invalid/first.git"
commit = "0123456789abcdef0123456789abcdef01234567"

[build]
steps = ["true"]
"#;

const PATCH: &str = "--- a/x.txt\n+++ b/x.txt\n@@ -1 +1 @@\n-a\n+b\n";

/// `check` on `text` as recipes/first.toml: asserts exit 2, a message holding `message` and
/// a pointer at `needle` (file:line:col and a caret). Returns stderr.
fn check_refuses(text: &str, needle: &str, message: &str) -> String {
    let dir = tree(&[("recipes/first.toml", text), ("patches/ok.patch", PATCH)]);
    let out = check_recipes(dir.path()).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} in {text}"));
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    assert!(err.contains(&format!("first.toml:{line}:{col}")), "{err}");
    assert!(err.contains(message), "{err}");
    assert!(err.contains(" ^"), "{err}");
    err
}

#[test]
fn edit_of_an_absolute_file_is_refused_by_check() {
    let text = format!("{RECIPE}[[edit]]\nfile = \"/etc/hostname\"\nfind = \"a\"\n");
    check_refuses(
        &text,
        "\"/etc/hostname\"",
        "the edited file `/etc/hostname` is an absolute path",
    );
}

#[test]
fn edit_climbing_out_with_dotdot_is_refused_by_check() {
    let text = format!("{RECIPE}[[edit]]\nfile = \"../../../../x\"\nfind = \"a\"\n");
    check_refuses(&text, "\"../../../../x\"", "climbs out with `..`");
    // `..` that stays inside is fine.
    let ok = format!("{RECIPE}[[edit]]\nfile = \"a/../x.txt\"\nfind = \"a\"\n");
    let dir = tree(&[("recipes/first.toml", &ok)]);
    check_recipes(dir.path()).assert().success();
}

#[test]
fn patch_directory_outside_the_tree_is_refused_by_check() {
    let up = format!("{RECIPE}[[patch]]\nfile = \"ok.patch\"\ndirectory = \"../../..\"\n");
    check_refuses(
        &up,
        "\"../../..\"",
        "the patch directory `../../..` climbs out",
    );
    let abs = format!("{RECIPE}[[patch]]\nfile = \"ok.patch\"\ndirectory = \"/tmp\"\n");
    check_refuses(
        &abs,
        "\"/tmp\"",
        "the patch directory `/tmp` is an absolute path",
    );
    let file = format!("{RECIPE}[[patch]]\nfile = \"../recipes/first.toml\"\n");
    check_refuses(&file, "\"../recipes/first.toml\"", "the patch file");
}

#[test]
fn step_cwd_outside_the_tree_is_refused_by_check() {
    let text = RECIPE.replace(
        "steps = [\"true\"]",
        "steps = [{ run = \"touch x\", cwd = \"../..\" }]",
    );
    check_refuses(
        &text,
        "\"../..\"",
        "the cwd of build step 1 `../..` climbs out",
    );
}

#[test]
fn resource_subdir_and_source_path_outside_their_roots_are_refused_by_check() {
    let res = format!(
        "{RECIPE}[[resource]]\nname = \"r\"\nurl = \"https://example.invalid/r.tar.gz\"\n\
         sha256 = \"{}\"\nextract = true\nsubdir = \"../..\"\n",
        "0".repeat(64)
    );
    check_refuses(&res, "\"../..\"", "the resource subdir `../..` climbs out");
    let path = |p: &str| {
        RECIPE.replace(
            "git = \"https://example.invalid/first.git\"\ncommit = \"0123456789abcdef0123456789abcdef01234567\"",
            &format!("path = \"{p}\""),
        )
    };
    check_refuses(
        &path("/usr/src/x"),
        "\"/usr/src/x\"",
        "source.path `/usr/src/x` is an absolute path",
    );
    // recipes/first.toml may reach src/ beside recipes/, not above the project.
    check_refuses(
        &path("../../x"),
        "\"../../x\"",
        "source.path `../../x` climbs out",
    );
}

/// A source repository whose tree holds `link -> <outside>`: an edit of `link/victim.txt` and a
/// patch applied in `directory = "link"` would write outside the source tree.
#[test]
fn prepare_refuses_paths_that_leave_the_tree_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim.txt"), "a\n").unwrap();
    std::fs::write(outside.join("x.txt"), "a\n").unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("README"), "hi\n").unwrap();
    std::os::unix::fs::symlink(&outside, repo.join("link")).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "with a symlink"]);
    let commit = git(&repo, &["rev-parse", "HEAD"]);
    let source = format!(
        "[source]\ngit = \"file://{}\"\ncommit = \"{commit}\"\n[output]\nkind = \"source\"\n",
        repo.display()
    );
    let recipes = [
        (
            "edited",
            "[[edit]]\nfile = \"link/victim.txt\"\nfind = \"a\"\nreplace = \"pwned\"\n",
        ),
        (
            "patched",
            "[[patch]]\nfile = \"ok.patch\"\ndirectory = \"link\"\n",
        ),
    ];
    for (name, extra) in recipes {
        std::fs::create_dir_all(dir.path().join("recipes")).unwrap();
        std::fs::write(
            dir.path().join(format!("recipes/{name}.toml")),
            format!("[package]\nname = \"{name}\"\nversion = \"1.0\"\n{source}{extra}"),
        )
        .unwrap();
    }
    std::fs::create_dir_all(dir.path().join("patches")).unwrap();
    std::fs::write(dir.path().join("patches/ok.patch"), PATCH).unwrap();
    for name in ["edited", "patched"] {
        let out = jetforge()
            .arg("--recipes")
            .arg(dir.path().join("recipes"))
            .arg("--work-dir")
            .arg(dir.path().join("work"))
            .env("JETFORGE_CACHE_DIR", dir.path().join("cache"))
            .env("JETFORGE_CONFIG", dir.path().join("none.toml"))
            .args(["--no-progress", "prepare", name])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains("leads out of the source tree") && err.contains("through a symlink"),
            "{name}: {err}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(outside.join("victim.txt")).unwrap(),
        "a\n"
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("x.txt")).unwrap(),
        "a\n"
    );
}

#[test]
fn config_typo_does_not_print_the_proxy_password() {
    let dir = tree(&[
        ("recipes/first.toml", RECIPE),
        (
            "user.toml",
            "[network]\nproxxy = \"http://a:hunter2@b:1\"\n",
        ),
    ]);
    let out = jetforge()
        .arg("--recipes")
        .arg(dir.path().join("recipes"))
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .env("JETFORGE_CONFIG", dir.path().join("user.toml"))
        .arg("plan")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown field `proxxy`"), "{err}");
    assert!(err.contains("proxxy = \"http://a:****@b:1\""), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn recipe_diagnostics_mask_credentials_and_known_secrets() {
    let url = format!(
        "{RECIPE}[[resource]]\nname = \"r\"\nurl = \"ftp://bob:hunter2@mirror/r.tgz\"\nsha256 = \"{}\"\n",
        "0".repeat(64)
    );
    let err = check_refuses(&url, "\"ftp://", "is not http(s):// or file://");
    assert!(err.contains("ftp://bob:****@mirror/r.tgz"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // The index password is known to jetforge: masked even where it stands on its own.
    let bare = format!("{RECIPE}[env]\nMAX_JOBS = \"IdxS3cret\"\n");
    let dir = tree(&[("recipes/first.toml", &bare)]);
    let out = jetforge()
        .arg("--recipes")
        .arg(dir.path().join("recipes"))
        .env("JETFORGE_INDEX_PASSWORD", "IdxS3cret")
        .arg("check")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("MAX_JOBS = \"****\""), "{err}");
    assert!(!err.contains("IdxS3cret"), "{err}");
}

/// A fixture with a local source and one step that prints the proxy, its bare password, and
/// then fails (so a replay script is written too).
fn leaky_project() -> tempfile::TempDir {
    tree(&[
        (
            "recipes/leaky.toml",
            r#"[package]
name = "leaky"
version = "1.0.0"
[source]
path = "../src/leaky"
[build]
steps = ['echo "proxy is $https_proxy"; echo "password is ${https_proxy#http://u:}"; exit 3']
"#,
        ),
        ("src/leaky/setup.py", "raise SystemExit('not built here')\n"),
    ])
}

fn jf(dir: &Path, args: &[&str]) -> Output {
    in_project(dir)
        .args(["--proxy", "http://u:hunter2@127.0.0.1:9"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn env_eval_gets_the_real_proxy_and_says_so_on_stderr() {
    let p = leaky_project();
    let dir = p.path();
    let out = jf(dir, &["--target", "host", "env", "leaky"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning:") && err.contains("https_proxy"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let got = std::process::Command::new("bash")
        .args([
            "-c",
            "eval \"$1\"; printf '%s|%s' \"$https_proxy\" \"$HTTP_PROXY\"",
            "bash",
            &stdout(&out),
        ])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(got.stdout).unwrap(),
        "http://u:hunter2@127.0.0.1:9|http://u:hunter2@127.0.0.1:9"
    );
    for args in [
        &["--target", "host", "env", "leaky", "--format", "json"][..],
        &["--target", "host", "env", "leaky", "--format", "dotenv"],
        &["--target", "host", "plan", "-v"],
        &["--target", "host", "--json", "plan"],
    ] {
        let out = jf(dir, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!text.contains("hunter2"), "{args:?}: {text}");
        assert!(text.contains("u:****@127.0.0.1:9"), "{args:?}: {text}");
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn step_logs_replay_and_state_are_private_and_mask_the_proxy_password() {
    let p = leaky_project();
    let dir = p.path();
    let py = python();
    let out = jf(
        dir,
        &[
            "--target",
            "host",
            "build",
            "--python",
            &py,
            "--system-site-packages",
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        !err.contains("hunter2") && !stdout(&out).contains("hunter2"),
        "{err}"
    );
    let root = dir.join("work/recipes-host");
    let logs = root.join("logs/leaky");
    let log = logs.join("01-step-1.log");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text,
        "proxy is http://u:****@127.0.0.1:9\npassword is ****@127.0.0.1:9\n"
    );
    for entry in std::fs::read_dir(&logs).unwrap() {
        let path = entry.unwrap().path();
        let body = std::fs::read_to_string(&path).unwrap();
        assert!(!body.contains("hunter2"), "{}: {body}", path.display());
        let want = if path.extension().is_some_and(|e| e == "sh")
            && path.file_name().unwrap() != "build_env.sh"
        {
            0o700
        } else {
            0o600
        };
        assert_eq!(mode(&path), want, "{}", path.display());
    }
    assert!(logs.join("replay-step-1.sh").is_file());
    assert_eq!(mode(&logs), 0o700);
    assert_eq!(mode(&root.join("state")), 0o700);
    assert_eq!(mode(&root.join("state/leaky.json")), 0o600);
}

/// Build recipes for `--target host` on a machine without a GPU and without `--cuda-arch`.
fn host_without_gpu(recipe_extra: &str) -> Output {
    let dir = tree(&[(
        "recipes/kern.toml",
        &format!(
            "[package]\nname = \"kern\"\nversion = \"1.0\"\n[source]\npath = \"../src/kern\"\n\
             [build]\nsteps = [\"true\"]\n{recipe_extra}"
        ),
    )]);
    jetforge()
        .arg("--recipes")
        .arg(dir.path().join("recipes"))
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .env("JETFORGE_HOST_ROOT", host("cgroup-v2-host"))
        .args(["--target", "host", "plan"])
        .output()
        .unwrap()
}

#[test]
fn cuda_recipe_for_a_gpuless_host_without_cuda_arch_is_an_error() {
    for extra in [
        "[env]\nTORCH_CUDA_ARCH_LIST = \"${{ cuda_arch_list }}\"\n",
        "[verify]\npython = \"import kern\"\ngpu = true\n",
    ] {
        let out = host_without_gpu(extra);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{extra}: {err}");
        assert!(err.contains("no GPU is visible"), "{err}");
        assert!(err.contains("kern compiles CUDA code"), "{err}");
        assert!(err.contains("--cuda-arch 8.7"), "{err}");
    }
    // A recipe that builds no CUDA code plans as before.
    let out = host_without_gpu("");
    assert!(out.status.success(), "{}", stderr(&out));
}

fn plan_orin(host_root: &str, extra: &[&str]) -> Output {
    let dir = crate::plan::fixture_set();
    jetforge()
        .arg("--recipes")
        .arg(dir.path().join("recipes"))
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .env("JETFORGE_HOST_ROOT", host(host_root))
        .args(["--target", "jetson-orin"])
        .args(extra)
        .args(["plan", "first"])
        .output()
        .unwrap()
}

#[test]
fn plan_for_an_orin_on_an_x86_machine_says_whose_figures_max_jobs_uses() {
    let out = plan_orin("cgroup-v2-host", &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: this machine is not a jetson-orin device")
            && err.contains("x86_64, 3 CPUs"),
        "{err}"
    );
    // On the Orin itself nothing to say.
    let out = plan_orin("agx-orin-64g", &[]);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn host_facts_profile_stands_in_for_the_agx_orin() {
    let on_device = stdout(&plan_orin("agx-orin-64g", &[]));
    let jobs = |plan: &str| {
        plan.lines()
            .find(|l| l.trim_start().starts_with("jobs"))
            .unwrap_or_else(|| panic!("{plan}"))
            .to_string()
    };
    let out = plan_orin("cgroup-v2-host", &["--host-facts", "agx-orin-64g"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let faked = stdout(&out);
    assert_eq!(jobs(&faked), jobs(&on_device));
    assert!(
        faked.contains("Host: NVIDIA Jetson AGX Orin Developer Kit"),
        "{faked}"
    );
    // The same from a file.
    let dir = tree(&[(
        "agx.toml",
        "model = \"NVIDIA Jetson AGX Orin Developer Kit\"\ncpus = 12\nmemory_gib = 61.4\navailable_gib = 58.0\n",
    )]);
    let file = dir.path().join("agx.toml").display().to_string();
    let out = plan_orin("cgroup-v2-host", &["--host-facts", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(jobs(&stdout(&out)), jobs(&on_device));
}
