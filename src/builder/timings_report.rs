//! The timings report of a build (`build --timings`, and always with `--json`): one
//! self-contained HTML file with inline SVG — no script, no network — showing a Gantt of the
//! recipes and their steps, memory over time against the RAM or cgroup limit with OOM kills
//! marked, the jobs, peaks and compiler cache hits of every step, which recipes came from a
//! cache (and each built recipe's compiler cache total), and the critical path (the chain of
//! dependencies that decided how long the build took).
//!
//! Elements carry ids and classes (`#gantt`, `#memory`, `#mem-limit`, `.oom-kill`, `#steps`,
//! `#cache`, `.compiler-cache`, `#critical-path`, `.critical`) so tests and scripts can read
//! the page.
//!
//! Size: about 599 lines, of which 105 are the unit tests beside the code (494 of code).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde::Serialize;

use super::summary::{Outcome, Summary};
use crate::compiler_cache::Stats as CompilerStats;
use crate::host::{HostFacts, GIB};
use crate::layout::Layout;
use crate::recipe::Recipe;
use crate::state::{RecipeState, StepTiming};

/// One recipe of the build, with the step runs of this build.
#[derive(Debug, Clone, Serialize)]
pub struct RecipeRun {
    pub name: String,
    pub version: String,
    /// `built`, `cached`, `cached-remote`, `prepared`, `failed`, `skipped`.
    pub result: String,
    pub depends: Vec<String>,
    pub steps: Vec<StepTiming>,
    /// The compiler cache's hits and misses of its steps, summed (None without an engine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compiler_cache: Option<CompilerStats>,
}

impl RecipeRun {
    fn wall_secs(&self) -> f64 {
        self.steps.iter().map(|s| s.wall_secs).sum()
    }
}

/// What the report shows.
#[derive(Debug, Clone, Serialize)]
pub struct BuildTimings {
    /// Seconds since the Unix epoch when the build started.
    pub started: f64,
    pub host: String,
    /// The memory limit the build ran under (the cgroup's, else RAM), bytes, and which it is.
    pub limit_bytes: u64,
    pub limit: String,
    pub recipes: Vec<RecipeRun>,
    pub critical_path: Vec<String>,
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl BuildTimings {
    /// Gathers the step runs of the build that started at `started` from the recipes' state.
    pub fn collect(
        layout: &Layout,
        selected: &[&Recipe],
        summary: &Summary,
        started: SystemTime,
        facts: &HostFacts,
    ) -> BuildTimings {
        let started = secs(started);
        let results: BTreeMap<&str, &Outcome> = summary
            .rows
            .iter()
            .map(|(n, _, o)| (n.as_str(), o))
            .collect();
        let recipes: Vec<RecipeRun> = selected
            .iter()
            .map(|r| {
                let state = RecipeState::load(&layout.state_file(&r.name));
                let result = match results.get(r.name.as_str()) {
                    Some(Outcome::Built { .. }) => "built",
                    Some(Outcome::Cached { .. }) => "cached",
                    Some(Outcome::CachedRemote { .. }) => "cached-remote",
                    Some(Outcome::Prepared) => "prepared",
                    Some(Outcome::Failed { .. }) => "failed",
                    Some(Outcome::Skipped { .. }) | None => "skipped",
                };
                // Steps a cached recipe ran in an earlier build are not this build's.
                let steps = if result.starts_with("cached") {
                    Vec::new()
                } else {
                    state
                        .timings
                        .into_iter()
                        .filter(|t| t.started + 1.0 >= started)
                        .collect()
                };
                RecipeRun {
                    name: r.name.clone(),
                    version: r.version.to_string(),
                    result: result.to_string(),
                    depends: r.depends.clone(),
                    compiler_cache: CompilerStats::total(steps.iter().map(|s| s.compiler_cache)),
                    steps,
                }
            })
            .collect();
        let (limit_bytes, limit) = match facts.cgroup.as_ref().and_then(|c| c.limit) {
            Some(l) if l < facts.memory.total || facts.memory.total == 0 => {
                (l, format!("cgroup limit {:.1} GiB", l as f64 / GIB))
            }
            _ => (
                facts.memory.total,
                format!("RAM {:.1} GiB", facts.memory.total as f64 / GIB),
            ),
        };
        let critical_path = critical_path(&recipes);
        BuildTimings {
            started,
            host: crate::jobs::learn::host_key(facts),
            limit_bytes,
            limit,
            recipes,
            critical_path,
        }
    }

    /// Seconds from the build's start to the end of its last step.
    fn span(&self) -> f64 {
        self.recipes
            .iter()
            .flat_map(|r| &r.steps)
            .map(|s| s.started - self.started + s.wall_secs)
            .fold(1.0, f64::max)
    }
}

/// The dependency chain with the most step time: what a faster build must shorten.
fn critical_path(recipes: &[RecipeRun]) -> Vec<String> {
    let mut finish: BTreeMap<&str, (f64, Option<&str>)> = BTreeMap::new();
    for r in recipes {
        let before = r
            .depends
            .iter()
            .filter_map(|d| finish.get(d.as_str()).map(|(t, _)| (*t, d.as_str())))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let (t0, prev) = before.map_or((0.0, None), |(t, d)| (t, Some(d)));
        finish.insert(&r.name, (t0 + r.wall_secs(), prev));
    }
    let Some((mut at, _)) = finish
        .iter()
        .max_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
        .map(|(n, v)| (*n, v))
    else {
        return Vec::new();
    };
    let mut path = vec![at.to_string()];
    while let Some(prev) = finish.get(at).and_then(|(_, p)| *p) {
        path.push(prev.to_string());
        at = prev;
    }
    path.reverse();
    path
}

/// The report's file: `<work-dir>/<set>-<target>/timings.html`.
pub fn path(layout: &Layout) -> PathBuf {
    layout.timings_report()
}

/// Writes the report; returns its path.
pub fn write(layout: &Layout, t: &BuildTimings) -> Result<PathBuf> {
    let p = path(layout);
    crate::private::create_dir(&layout.root)?;
    crate::atomic::write_with_mode(&p, render(t).as_bytes(), crate::private::FILE)?;
    Ok(p)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn gib(b: u64) -> String {
    format!("{:.2} GiB", b as f64 / GIB)
}

fn dur(s: f64) -> String {
    crate::report::format_duration(std::time::Duration::from_secs_f64(s.max(0.0)))
}

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 220.0;
const ROW: f64 = 22.0;

/// The whole page.
pub fn render(t: &BuildTimings) -> String {
    let mut h = String::new();
    let title = format!(
        "jetforge build timings — {} recipes, {}",
        t.recipes.len(),
        dur(t.span())
    );
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
         <style>\nbody{{font-family:sans-serif;margin:16px;color:#222}}\n\
         table{{border-collapse:collapse;font-size:13px}}\ntd,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}\n\
         td:first-child,td:nth-child(2){{text-align:left}}\n.step{{fill:#4a90d9}}\n.step.failed{{fill:#d9534f}}\n\
         .step.oom{{fill:#f0ad4e}}\nrect.critical{{stroke:#000;stroke-width:2}}\n.cached{{fill:#5cb85c}}\n\
         svg text{{font-size:11px}}\n</style>\n</head>\n<body>\n<h1>{}</h1>\n\
         <p id=\"host\">Host: {} · memory limit: {}</p>\n",
        esc(&title),
        esc(&title),
        esc(&t.host),
        esc(&t.limit)
    );
    gantt(&mut h, t);
    memory(&mut h, t);
    critical(&mut h, t);
    cache(&mut h, t);
    steps_table(&mut h, t);
    h.push_str("</body>\n</html>\n");
    h
}

fn x_of(t: &BuildTimings, at: f64) -> f64 {
    LEFT + (at - t.started).max(0.0) / t.span() * (WIDTH - LEFT - 10.0)
}

fn gantt(h: &mut String, t: &BuildTimings) {
    let rows: usize = t.recipes.iter().map(|r| 1 + r.steps.len()).sum();
    let height = (rows as f64 + 1.0) * ROW + 20.0;
    let _ = write!(
        h,
        "<h2>Recipes and steps over time</h2>\n<svg id=\"gantt\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\">\n"
    );
    axis(h, t, height - 6.0);
    let mut y = 10.0;
    for r in &t.recipes {
        let critical = t.critical_path.contains(&r.name);
        let class = if critical { " critical" } else { "" };
        let (x0, x1) = match (r.steps.first(), r.steps.last()) {
            (Some(a), Some(b)) => (x_of(t, a.started), x_of(t, b.started + b.wall_secs)),
            _ => (LEFT, LEFT + 4.0),
        };
        let fill = if r.result.starts_with("cached") {
            "cached"
        } else {
            "recipe"
        };
        let _ = writeln!(
            h,
            "<g class=\"recipe{class}\" data-recipe=\"{n}\" data-result=\"{res}\">\
             <text x=\"4\" y=\"{ty}\">{n} {v} ({res})</text>\
             <rect class=\"{fill}{class}\" x=\"{x0:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{hh}\" fill=\"#bbb\">\
             <title>{n}: {res}, {d}{cc}</title></rect></g>",
            n = esc(&r.name),
            v = esc(&r.version),
            res = r.result,
            ty = y + 14.0,
            w = (x1 - x0).max(2.0),
            hh = ROW - 4.0,
            d = dur(r.wall_secs()),
            cc = cache_phrase(r.compiler_cache),
        );
        y += ROW;
        for s in &r.steps {
            let kind = if s.oom {
                " oom"
            } else if s.exit != crate::process::runner::Status::Success.to_string() {
                " failed"
            } else {
                ""
            };
            let x0 = x_of(t, s.started);
            let x1 = x_of(t, s.started + s.wall_secs);
            let _ = writeln!(
                h,
                "<g class=\"step-row\" data-recipe=\"{n}\" data-step=\"{st}\">\
                 <text x=\"16\" y=\"{ty}\">{st} (MAX_JOBS={mj}{hits})</text>\
                 <rect class=\"step{kind}\" x=\"{x0:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{hh}\">\
                 <title>{st}: {d}, {jobs} jobs, peak {p}, {exit}{cc}</title></rect></g>",
                n = esc(&r.name),
                st = esc(&s.step),
                mj = s.max_jobs,
                ty = y + 14.0,
                w = (x1 - x0).max(1.0),
                hh = ROW - 6.0,
                d = dur(s.wall_secs),
                jobs = s.jobs,
                p = gib(s.peak_bytes),
                exit = esc(&s.exit),
                hits = s
                    .compiler_cache
                    .map_or(String::new(), |c| format!("; {} cache hits", c.hits)),
                cc = cache_phrase(s.compiler_cache),
            );
            y += ROW;
        }
    }
    h.push_str("</svg>\n");
}

/// Seconds since the build started, at the start, middle and end of the time axis.
fn axis(h: &mut String, t: &BuildTimings, y: f64) {
    for f in [0.0, 0.5, 1.0] {
        let at = t.started + f * t.span();
        let _ = writeln!(
            h,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{y:.1}\" fill=\"#666\">{}</text>",
            x_of(t, at) - if f == 1.0 { 24.0 } else { 0.0 },
            dur(f * t.span())
        );
    }
}

fn memory(h: &mut String, t: &BuildTimings) {
    const HEIGHT: f64 = 260.0;
    let peak = t
        .recipes
        .iter()
        .flat_map(|r| &r.steps)
        .map(|s| s.peak_bytes)
        .max()
        .unwrap_or(0);
    let top = (t.limit_bytes.max(peak) as f64 * 1.1).max(1.0);
    let y_of = |b: u64| HEIGHT - 20.0 - b as f64 / top * (HEIGHT - 40.0);
    let _ = write!(
        h,
        "<h2>Memory over time</h2>\n<svg id=\"memory\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\">\n\
         <line x1=\"{LEFT}\" y1=\"{b}\" x2=\"{WIDTH}\" y2=\"{b}\" stroke=\"#999\"/>\n\
         <text x=\"4\" y=\"{b}\">0</text>\n",
        b = y_of(0)
    );
    axis(h, t, HEIGHT - 4.0);
    let ly = y_of(t.limit_bytes);
    let _ = write!(
        h,
        "<line id=\"mem-limit\" x1=\"{LEFT}\" y1=\"{ly:.1}\" x2=\"{WIDTH}\" y2=\"{ly:.1}\" \
         stroke=\"#d9534f\" stroke-dasharray=\"6 3\"/>\n<text x=\"4\" y=\"{ly:.1}\">{}</text>\n",
        esc(&t.limit)
    );
    for r in &t.recipes {
        for s in &r.steps {
            let points: Vec<String> = s
                .series
                .iter()
                .map(|(at, b)| format!("{:.1},{:.1}", x_of(t, s.started + at), y_of(*b)))
                .collect();
            if !points.is_empty() {
                let _ = writeln!(
                    h,
                    "<polyline class=\"rss\" data-step=\"{}/{}\" fill=\"none\" stroke=\"#4a90d9\" points=\"{}\"/>",
                    esc(&r.name),
                    esc(&s.step),
                    points.join(" ")
                );
            }
            let px = x_of(t, s.started + s.wall_secs);
            let _ = writeln!(
                h,
                "<circle class=\"peak\" cx=\"{px:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#4a90d9\"><title>{}/{}: peak {}</title></circle>",
                y_of(s.peak_bytes),
                esc(&r.name),
                esc(&s.step),
                gib(s.peak_bytes)
            );
            if s.oom {
                let _ = writeln!(
                    h,
                    "<g class=\"oom-kill\" data-step=\"{n}/{st}\"><line x1=\"{px:.1}\" y1=\"10\" x2=\"{px:.1}\" \
                     y2=\"{b:.1}\" stroke=\"#d9534f\" stroke-width=\"2\"/><text x=\"{tx:.1}\" y=\"20\" \
                     fill=\"#d9534f\">OOM kill: {n}/{st} at MAX_JOBS={mj}</text></g>",
                    n = esc(&r.name),
                    st = esc(&s.step),
                    b = y_of(0),
                    tx = px + 3.0,
                    mj = s.max_jobs
                );
            }
        }
    }
    h.push_str("</svg>\n");
}

fn critical(h: &mut String, t: &BuildTimings) {
    let total: f64 = t
        .recipes
        .iter()
        .filter(|r| t.critical_path.contains(&r.name))
        .map(RecipeRun::wall_secs)
        .sum();
    let _ = writeln!(
        h,
        "<h2>Critical path</h2>\n<p id=\"critical-path\">{} ({})</p>",
        esc(&t.critical_path.join(" → ")),
        dur(total)
    );
}

/// ", compiler cache: 7 hits, 0 misses", or nothing without figures.
fn cache_phrase(c: Option<CompilerStats>) -> String {
    c.map_or(String::new(), |c| {
        format!(", compiler cache: {}", c.describe())
    })
}

fn cache(h: &mut String, t: &BuildTimings) {
    h.push_str("<h2>Cache hits</h2>\n<ul id=\"cache\">\n");
    for r in &t.recipes {
        if let Some(c) = r.compiler_cache {
            let _ = writeln!(
                h,
                "<li class=\"compiler-cache\" data-recipe=\"{n}\" data-hits=\"{}\" \
                 data-remote-hits=\"{}\" data-misses=\"{}\">{n} {}: compiler cache {}</li>",
                c.hits,
                c.remote_hits,
                c.misses,
                esc(&r.version),
                c.describe(),
                n = esc(&r.name),
            );
        }
        let what = match r.result.as_str() {
            "cached" => "wheelhouse",
            "cached-remote" => "remote cache",
            _ => continue,
        };
        let _ = writeln!(
            h,
            "<li class=\"cache-hit\" data-recipe=\"{}\">{} {}: from the {what}</li>",
            esc(&r.name),
            esc(&r.name),
            esc(&r.version)
        );
    }
    h.push_str("</ul>\n");
}

fn steps_table(h: &mut String, t: &BuildTimings) {
    h.push_str(
        "<h2>Steps</h2>\n<table id=\"steps\">\n<tr><th>recipe</th><th>step</th><th>wall</th>\
         <th>CPU</th><th>jobs</th><th>MAX_JOBS</th><th>nvcc threads</th><th>peak memory</th>\
         <th>peak swap</th><th>measured by</th><th>OOM retries</th><th>cache hits</th>\
         <th>cache misses</th><th>exit</th></tr>\n",
    );
    for r in &t.recipes {
        for s in &r.steps {
            let _ = writeln!(
                h,
                "<tr class=\"step-timing\" data-recipe=\"{n}\" data-step=\"{st}\"><td>{n}</td><td>{st}</td>\
                 <td>{w}</td><td>{c:.1}s</td><td>{j}</td><td>{mj}</td><td>{nv}</td><td>{p}</td><td>{sw}</td>\
                 <td>{by}</td><td>{o}</td><td class=\"cache-hits\">{ch}</td>\
                 <td class=\"cache-misses\">{cm}</td><td>{e}</td></tr>",
                n = esc(&r.name),
                st = esc(&s.step),
                w = dur(s.wall_secs),
                c = s.cpu_secs,
                j = s.jobs,
                mj = s.max_jobs,
                nv = s.nvcc_threads.map_or("-".to_string(), |n| n.to_string()),
                p = gib(s.peak_bytes),
                sw = gib(s.peak_swap_bytes),
                by = if s.cgroup_measured { "cgroup" } else { "sampling" },
                o = s.oom_retries,
                ch = s.compiler_cache.map_or("-".to_string(), |c| cache_cell(c.hits, c.remote_hits)),
                cm = s.compiler_cache.map_or("-".to_string(), |c| c.misses.to_string()),
                e = esc(&s.exit),
            );
        }
    }
    h.push_str("</table>\n");
}

/// "7", or "7 (3 remote)".
fn cache_cell(hits: u64, remote: u64) -> String {
    if remote > 0 {
        format!("{hits} ({remote} remote)")
    } else {
        hits.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build of the one recipe `r` on host "h" with `gib` GiB of RAM.
    fn one(r: RecipeRun, gib: u64, critical_path: &[&str]) -> BuildTimings {
        BuildTimings {
            started: 0.0,
            host: "h".into(),
            limit_bytes: gib << 30,
            limit: format!("RAM {gib}.0 GiB"),
            recipes: vec![r],
            critical_path: critical_path.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn run(name: &str, deps: &[&str], walls: &[f64]) -> RecipeRun {
        RecipeRun {
            name: name.into(),
            version: "1".into(),
            result: "built".into(),
            depends: deps.iter().map(|d| d.to_string()).collect(),
            compiler_cache: None,
            steps: walls
                .iter()
                .map(|w| StepTiming {
                    wall_secs: *w,
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn the_critical_path_follows_the_longest_dependency_chain() {
        let rs = [
            run("torch", &[], &[100.0]),
            run("triton", &[], &[300.0]),
            run("vision", &["torch"], &[50.0]),
            run("vllm", &["torch", "triton"], &[20.0, 10.0]),
        ];
        assert_eq!(critical_path(&rs), ["triton", "vllm"]);
        assert!(critical_path(&[]).is_empty());
    }

    #[test]
    fn an_oom_killed_step_is_marked_on_the_memory_chart() {
        let mut killed = run("torch", &[], &[10.0, 20.0]);
        killed.steps[0].oom = true;
        killed.steps[0].max_jobs = 6;
        killed.steps[0].exit = "killed by signal 9 (SIGKILL)".into();
        killed.steps[1].started = 10.0;
        killed.steps[1].series = vec![(0.0, 1 << 30), (5.0, 3 << 30)];
        let t = one(killed, 4, &["torch"]);
        let html = render(&t);
        assert!(
            html.contains("<g class=\"oom-kill\" data-step=\"torch/\">"),
            "{html}"
        );
        assert!(html.contains("OOM kill: torch/ at MAX_JOBS=6"));
        assert!(html.contains("<rect class=\"step oom\""));
        assert_eq!(html.matches("<polyline class=\"rss\"").count(), 1);
        assert!(html.contains("id=\"mem-limit\""));
    }

    #[test]
    fn compiler_cache_figures_show_per_step_and_per_recipe() {
        let mut r = run("cppx", &[], &[1.0, 2.0, 3.0]);
        let stats = |hits, misses| CompilerStats {
            hits,
            remote_hits: 0,
            misses,
        };
        r.steps[1].compiler_cache = Some(stats(7, 1));
        r.steps[2].compiler_cache = Some(stats(2, 0));
        r.compiler_cache = CompilerStats::total(r.steps.iter().map(|s| s.compiler_cache));
        let t = one(r, 1, &[]);
        let html = render(&t);
        assert!(
            html.contains("data-hits=\"9\" data-remote-hits=\"0\" data-misses=\"1\""),
            "{html}"
        );
        assert!(html.contains("compiler cache: 7 hits, 1 misses</title>"));
        assert!(html.contains("(MAX_JOBS=0; 7 cache hits)"));
        assert!(html.contains("<td class=\"cache-hits\">7</td><td class=\"cache-misses\">1</td>"));
        // A step without figures says so, rather than 0 hits.
        assert!(html.contains("<td class=\"cache-hits\">-</td>"));
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["recipes"][0]["compiler_cache"]["hits"], 9);
        assert_eq!(
            json["recipes"][0]["steps"][1]["compiler_cache"]["misses"],
            1
        );
        assert!(json["recipes"][0]["steps"][0]
            .get("compiler_cache")
            .is_none());
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(esc("<a href=\"x\">&"), "&lt;a href=&quot;x&quot;&gt;&amp;");
    }
}
