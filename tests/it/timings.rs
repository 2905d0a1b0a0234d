//! Issue #17: every step measured into the state and `build --json`, memory per job learned
//! per recipe and per host (faked hosts), and the HTML timings report, parsed and rendered in
//! a real browser.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::build::jf_env;
use crate::fixtures::python;
use crate::util::{host, stderr, stdout, work_layout};

/// A project whose one step starts MAX_JOBS children holding 200 MiB each for a moment (a
/// stand-in compiler), then packs a trivial wheel. The recipe claims 40 GiB per job: far too
/// much, so the computed plan is 1 job on every faked host.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "recipes/eater.toml",
            r#"[package]
name = "eater"
version = "1.0.0"

[source]
path = "../src/eater"

[jobs]
mem_per_job_gib = 40.0

[build]
steps = [
  "python eat.py",
  "python -m pip wheel --no-build-isolation --no-deps --no-index -w ${{ out }} .",
]
"#,
        ),
        (
            "src/eater/eat.py",
            "import os, subprocess, sys\n\
             child = \"b = b'x' * (200 << 20); import time; time.sleep(2.5)\"\n\
             jobs = int(os.environ['MAX_JOBS'])\n\
             procs = [subprocess.Popen([sys.executable, '-c', child]) for _ in range(jobs)]\n\
             sys.exit(max(p.wait() for p in procs))\n",
        ),
        (
            "src/eater/setup.py",
            "from setuptools import setup\nsetup(name='eater', version='1.0.0', py_modules=['eat'])\n",
        ),
    ];
    for (rel, text) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn on_host(dir: &Path, name: &str, args: &[&str]) -> Output {
    let root = host(name);
    let root = root.to_str().unwrap();
    jf_env(dir, args, &[("JETFORGE_HOST_ROOT", root), ("MAX_JOBS", "")])
}

fn build_json(dir: &Path, host_name: &str, extra: &[&str]) -> Value {
    let py = python();
    let mut args = vec![
        "--json",
        "build",
        "--python",
        py.as_str(),
        "--system-site-packages",
    ];
    args.extend_from_slice(extra);
    let out = on_host(dir, host_name, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

fn plan_jobs(dir: &Path, host_name: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--json", "plan"];
    args.extend_from_slice(extra);
    let out = on_host(dir, host_name, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["recipes"][0]["jobs"].clone()
}

#[test]
fn memory_per_job_is_learned_per_host_and_used_by_the_next_plan() {
    let p = project();
    let dir = p.path();
    let before = plan_jobs(dir, "agx-orin-64g", &[]);
    assert_eq!(
        (before["jobs"].as_u64(), before["source"].as_str()),
        (Some(1), Some("computed"))
    );

    let built = build_json(dir, "agx-orin-64g", &["--jobs", "2"]);
    let step = &built["timings"]["recipes"][0]["steps"][0];
    assert_eq!(step["step"], "step 1", "{built}");
    assert_eq!(
        (step["jobs"].as_u64(), step["max_jobs"].as_u64()),
        (Some(2), Some(2))
    );
    let peak = step["peak_bytes"].as_u64().unwrap();
    assert!(peak >= 400 << 20, "two jobs of 200 MiB: {step}");
    assert!(step["wall_secs"].as_f64().unwrap() >= 2.5, "{step}");
    assert!(step["cpu_secs"].as_f64().unwrap() > 0.0, "{step}");
    assert_eq!(step["exit"], "exit status 0");
    assert_eq!(step["oom_retries"], 0);
    assert!(Path::new(built["report"].as_str().unwrap()).is_file());

    // The state keeps the same record, and the lesson of the build.
    let state_file = work_layout(dir, "host").state_file("eater");
    let state: Value = serde_json::from_slice(&std::fs::read(state_file).unwrap()).unwrap();
    assert_eq!(state["timings"][0]["peak_bytes"].as_u64(), Some(peak));
    let learned = &state["learned"][0];
    assert_eq!(learned["jobs"], 2);
    let per_job = learned["per_job_gib"].as_f64().unwrap();
    assert!((0.2..2.0).contains(&per_job), "{learned}");

    // Lower than the recipe's 40 GiB: used when the peak is good evidence (the step's cgroup,
    // or enough samples of two jobs), which both are here.
    let after = plan_jobs(dir, "agx-orin-64g", &[]);
    assert_eq!(after["source"], "learned", "{after}");
    assert_eq!(after["jobs"], 12, "CPU-bound now: {after}");
    let reason = after["reason"].as_str().unwrap();
    let expected = format!(
        "learned {per_job:.1} GiB per job from the build of {}; recipe says 40.0",
        learned["date"].as_str().unwrap()
    );
    assert!(reason.starts_with(&expected), "{reason}");
    let text = stdout(&on_host(dir, "agx-orin-64g", &["plan", "--explain-jobs"]));
    assert!(text.contains(&format!("MAX_JOBS=12 ({expected}")), "{text}");
    assert!(text.contains("step `step 1`: peak"), "{text}");
    assert!(text.contains("with 2 jobs"), "{text}");

    // Another machine has not learned anything: the recipe's figure again.
    let nano = plan_jobs(dir, "orin-nano-8g", &[]);
    assert_eq!(
        (nano["jobs"].as_u64(), nano["source"].as_str()),
        (Some(1), Some("computed"))
    );
    let text = stdout(&on_host(dir, "orin-nano-8g", &["plan", "--explain-jobs"]));
    assert!(
        text.contains("no build measured on this host yet"),
        "{text}"
    );
    assert!(
        text.contains("1 build(s) on other hosts, not used here"),
        "{text}"
    );

    // --jobs and MAX_JOBS still win.
    assert_eq!(plan_jobs(dir, "agx-orin-64g", &["--jobs", "3"])["jobs"], 3);
    let root = host("agx-orin-64g");
    let out = jf_env(
        dir,
        &["--json", "plan"],
        &[
            ("JETFORGE_HOST_ROOT", root.to_str().unwrap()),
            ("MAX_JOBS", "5"),
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["recipes"][0]["jobs"]["source"], "env-max-jobs");
}

/// (tag, attributes) of every start tag: enough to check what the page holds.
pub fn tags(html: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for piece in html.split('<').skip(1) {
        let Some(end) = piece.find('>') else { continue };
        let inner = piece[..end].trim_end_matches('/');
        if inner.starts_with(['/', '!']) {
            continue;
        }
        let mut parts = inner.splitn(2, char::is_whitespace);
        let tag = parts.next().unwrap_or_default().to_string();
        let mut attrs = BTreeMap::new();
        let mut rest = parts.next().unwrap_or_default();
        while let Some(eq) = rest.find("=\"") {
            let key = rest[..eq].trim().to_string();
            let after = &rest[eq + 2..];
            let close = after.find('"').expect("a closed attribute");
            attrs.insert(key, after[..close].to_string());
            rest = &after[close + 1..];
        }
        out.push((tag, attrs));
    }
    out
}

fn has(tags: &[(String, BTreeMap<String, String>)], tag: &str, key: &str, value: &str) -> bool {
    tags.iter()
        .any(|(t, a)| t == tag && a.get(key).is_some_and(|v| v.split(' ').any(|w| w == value)))
}

#[test]
fn the_timings_report_shows_steps_memory_limit_cache_hits_and_the_critical_path() {
    let p = project();
    let dir = p.path();
    let py = python();
    // A cgroup-limited fake machine, so the limit line is the cgroup's.
    let out = on_host(
        dir,
        "x86-ci-cgroup6g",
        &[
            "build",
            "--timings",
            "--python",
            &py,
            "--system-site-packages",
            "--jobs",
            "1",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report = work_layout(dir, "host").root.join("timings.html");
    assert!(
        stderr(&out).contains(&format!("timings report: {}", report.display())),
        "{}",
        stderr(&out)
    );
    let where_ = on_host(dir, "x86-ci-cgroup6g", &["report"]);
    assert_eq!(stdout(&where_).trim(), report.display().to_string());
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(!html.contains("<script"), "no script");
    assert!(
        !html.contains("src=\"http"),
        "nothing loaded from the network"
    );
    let t = tags(&html);
    for id in [
        "gantt",
        "memory",
        "mem-limit",
        "steps",
        "cache",
        "critical-path",
    ] {
        assert!(
            has(&t, "svg", "id", id)
                || t.iter()
                    .any(|(_, a)| a.get("id").map(String::as_str) == Some(id)),
            "#{id} missing"
        );
    }
    assert!(has(&t, "g", "data-recipe", "eater"));
    assert!(
        has(&t, "g", "class", "critical"),
        "eater is the critical path"
    );
    let steps: Vec<_> = t
        .iter()
        .filter(|(tag, a)| tag == "tr" && a.get("class").map(String::as_str) == Some("step-timing"))
        .map(|(_, a)| a["data-step"].clone())
        .collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(has(&t, "polyline", "class", "rss"), "memory series drawn");
    assert!(html.contains("cgroup limit 6.0 GiB"), "the limit is named");
    assert!(
        html.contains("<td>1</td><td>1</td>"),
        "jobs and MAX_JOBS per step"
    );

    // A second build takes the wheel from the wheelhouse: a cache hit, no steps.
    let again = on_host(
        dir,
        "x86-ci-cgroup6g",
        &[
            "build",
            "--timings",
            "--python",
            &py,
            "--system-site-packages",
        ],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    let t = tags(&std::fs::read_to_string(&report).unwrap());
    assert!(has(&t, "li", "class", "cache-hit"));
    assert!(!t
        .iter()
        .any(|(tag, a)| tag == "tr" && a.contains_key("data-step")));
}

/// Renders the report of a build with an OOM kill in headless Chromium, and checks the picture
/// is a real page, not a blank or an error screen.
#[test]
fn the_timings_report_renders_in_a_real_browser() {
    if !crate::support::have_tools(
        "the_timings_report_renders_in_a_real_browser",
        &["chromium"],
    ) {
        return;
    }
    let p = project();
    let dir = p.path();
    let py = python();
    let out = on_host(
        dir,
        "agx-orin-64g",
        &[
            "build",
            "--timings",
            "--python",
            &py,
            "--system-site-packages",
            "--jobs",
            "1",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report = work_layout(dir, "host").root.join("timings.html");
    let png = dir.join("report.png");
    let shot = std::process::Command::new(crate::support::find_tool("chromium").unwrap())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            &format!("--screenshot={}", png.display()),
            "--window-size=1400,900",
            &format!("file://{}", report.display()),
        ])
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        png.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1400, 900));
    // A blank page is one colour: its decoded scanlines hold a handful of byte values.
    assert!(bytes.len() > 10_000, "{} bytes: a blank page?", bytes.len());
    let colours = distinct_pixel_bytes(&bytes);
    assert!(colours > 32, "{colours} distinct bytes: a blank page?");
}

/// How many different byte values the PNG's decoded image data holds.
fn distinct_pixel_bytes(png: &[u8]) -> usize {
    use std::io::Read;
    let mut idat = Vec::new();
    let mut at = 8;
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        if &png[at + 4..at + 8] == b"IDAT" {
            idat.extend_from_slice(&png[at + 8..at + 8 + len]);
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let mut seen = [false; 256];
    raw.iter().for_each(|&b| seen[b as usize] = true);
    seen.iter().filter(|&&s| s).count()
}
