//! Progress reporting at the CLI edge. Engines talk to a [`Reporter`] (see `crate::report`); the
//! CLI picks the implementation here: indicatif bars on a terminal, plain timestamped lines
//! otherwise (CI, pipes, `--no-progress`).
//! Neither uses colour, so NO_COLOR holds trivially and output reads the same everywhere.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{format_duration, Reporter};

/// Progress counters in build tool output: ninja's `[123/4567]`, CMake/make's `[ 45%]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Counter {
    Steps { done: u64, total: u64 },
    Percent(u8),
}

impl Counter {
    pub fn fraction(self) -> f64 {
        match self {
            Counter::Steps { done, total } => done as f64 / total.max(1) as f64,
            Counter::Percent(p) => f64::from(p) / 100.0,
        }
    }
}

/// Parses a counter at the start of a line (after leading spaces).
pub fn parse_counter(line: &str) -> Option<Counter> {
    let rest = line.trim_start().strip_prefix('[')?;
    let (inner, _) = rest.split_once(']')?;
    let inner = inner.trim();
    if let Some(p) = inner.strip_suffix('%') {
        let p: u8 = p.trim().parse().ok()?;
        return (p <= 100).then_some(Counter::Percent(p));
    }
    let (done, total) = inner.split_once('/')?;
    let done: u64 = done.trim().parse().ok()?;
    let total: u64 = total.trim().parse().ok()?;
    (total > 0 && done <= total).then_some(Counter::Steps { done, total })
}

/// Time left, from elapsed time per finished unit (a ninja edge, a CMake percent).
///
/// A build's first units are rarely typical (configure output, cached objects, small files
/// first), and its last ones often are the big kernels, so a wrong number is worse than none:
/// the estimate is `Unknown` until [`Estimator::WARMUP_UNITS`] units and
/// [`Estimator::WARMUP`] have passed since the first counter, and whenever the recent rate
/// and the overall rate differ by more than [`Estimator::UNSTABLE`]× or the wait since the
/// last finished unit already exceeds what the estimate allows.
#[derive(Debug, Clone, Default)]
pub struct Estimator {
    total: u64,
    /// (time since the step started, units done), one per counter line that moved.
    samples: Vec<(Duration, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eta {
    Unknown,
    Left(Duration),
}

impl std::fmt::Display for Eta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Eta::Unknown => write!(f, "eta unknown"),
            Eta::Left(d) => write!(f, "about {} left", format_duration(*d)),
        }
    }
}

impl Estimator {
    pub const WARMUP_UNITS: u64 = 10;
    pub const WARMUP: Duration = Duration::from_secs(10);
    pub const UNSTABLE: f64 = 2.0;

    /// Records that `done` of `total` units had finished at `at`. A new total or a count
    /// going back (the next ninja run of the same step) starts over.
    pub fn observe(&mut self, at: Duration, done: u64, total: u64) {
        let back = self.samples.last().is_some_and(|&(_, d)| done < d);
        if total != self.total || back {
            self.total = total;
            self.samples.clear();
        }
        if self.samples.last().is_none_or(|&(_, d)| done > d) {
            self.samples.push((at, done));
        }
    }

    pub fn eta(&self, now: Duration) -> Eta {
        let (Some(&(t0, d0)), Some(&(t1, d1))) = (self.samples.first(), self.samples.last()) else {
            return Eta::Unknown;
        };
        let units = d1 - d0;
        let span = t1.saturating_sub(t0);
        if units < Self::WARMUP_UNITS || span < Self::WARMUP || d1 >= self.total {
            return Eta::Unknown;
        }
        let per_unit = span.as_secs_f64() / units as f64;
        // The recent rate: over the second half of the time counted so far.
        let mid = t0 + span / 2;
        let i = self.samples.partition_point(|&(t, _)| t < mid);
        let (tm, dm) = self.samples[i.min(self.samples.len() - 1)];
        if d1 > dm && t1 > tm {
            let recent = (t1 - tm).as_secs_f64() / (d1 - dm) as f64;
            let ratio = recent / per_unit;
            if !(1.0 / Self::UNSTABLE..=Self::UNSTABLE).contains(&ratio) {
                return Eta::Unknown;
            }
        }
        let left = per_unit * (self.total - d1) as f64;
        let waited = now.saturating_sub(t1).as_secs_f64();
        if waited > left.max(per_unit * Self::UNSTABLE) {
            return Eta::Unknown;
        }
        Eta::Left(Duration::from_secs_f64((left - waited).max(0.0)))
    }
}

/// The units a counter counts: ninja edges, or CMake percents.
fn units(c: Counter) -> (u64, u64) {
    match c {
        Counter::Steps { done, total } => (done, total),
        Counter::Percent(p) => (u64::from(p), 100),
    }
}

/// Picks the reporter for this run.
pub fn for_terminal(no_progress: bool, verbose: bool) -> Box<dyn Reporter> {
    let ci = std::env::var_os(crate::envvars::CI).is_some();
    if no_progress || ci || !std::io::stderr().is_terminal() {
        Box::new(PlainReporter::new(
            Box::new(std::io::stderr()),
            verbose,
            true,
        ))
    } else {
        Box::new(BarReporter::new(verbose))
    }
}

/// Plain lines: `[12:01:02] torch: step 1/2: wheel`. Step output is shown with `-v`; otherwise
/// only counter progress every 10 %, so a CI log shows movement without the compiler noise.
pub struct PlainReporter {
    out: Mutex<Box<dyn Write + Send>>,
    verbose: bool,
    timestamps: bool,
    /// Last 10 % bucket printed, when the current step started and its estimator, per recipe.
    state: Mutex<BTreeMap<String, (u8, Instant, Estimator)>>,
}

impl PlainReporter {
    pub fn new(out: Box<dyn Write + Send>, verbose: bool, timestamps: bool) -> Self {
        Self {
            out: Mutex::new(out),
            verbose,
            timestamps,
            state: Mutex::new(BTreeMap::new()),
        }
    }

    fn emit(&self, text: &str) {
        let stamp = if self.timestamps {
            let now = time::OffsetDateTime::now_utc();
            format!(
                "[{:02}:{:02}:{:02}] ",
                now.hour(),
                now.minute(),
                now.second()
            )
        } else {
            String::new()
        };
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{stamp}{}", crate::redact::redact(text));
    }
}

impl Reporter for PlainReporter {
    fn phase(&self, recipe: &str, phase: &str) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).insert(
            recipe.to_string(),
            (0, Instant::now(), Estimator::default()),
        );
        self.emit(&format!("{recipe}: {phase}"));
    }

    fn line(&self, recipe: &str, line: &str) {
        if self.verbose {
            self.emit(&format!("{recipe} | {line}"));
        }
        let Some(c) = parse_counter(line) else { return };
        let bucket = (c.fraction() * 10.0).floor() as u8;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let entry = state
            .entry(recipe.to_string())
            .or_insert_with(|| (0, Instant::now(), Estimator::default()));
        let now = entry.1.elapsed();
        let (done, total) = units(c);
        entry.2.observe(now, done, total);
        if bucket > entry.0 {
            entry.0 = bucket;
            let left = match bucket {
                10 => String::new(),
                _ => format!(", {}", entry.2.eta(now)),
            };
            drop(state);
            self.emit(&format!("{recipe}: {}%{left}", bucket * 10));
        }
    }

    fn message(&self, text: &str) {
        self.emit(text);
    }

    fn finished(&self, recipe: &str, outcome: &str) {
        self.emit(&format!("{recipe}: {outcome}"));
    }
}

/// indicatif bars, one per recipe, with phase, elapsed time and a real percentage + ETA when
/// the step prints ninja/CMake counters. Messages print above the bars without tearing them.
pub struct BarReporter {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
    /// Per recipe: the phase shown, when it started and its estimator.
    phases: Mutex<BTreeMap<String, (String, Instant, Estimator)>>,
    /// `-v`: step output printed above the bars, which stay.
    verbose: bool,
}

impl BarReporter {
    pub fn new(verbose: bool) -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(BTreeMap::new()),
            phases: Mutex::new(BTreeMap::new()),
            verbose,
        }
    }

    fn bar(&self, recipe: &str) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        bars.entry(recipe.to_string())
            .or_insert_with(|| {
                let b = self.multi.add(ProgressBar::new_spinner());
                b.set_style(spinner_style());
                b.set_prefix(recipe.to_string());
                b.enable_steady_tick(Duration::from_millis(200));
                b
            })
            .clone()
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:>16} [{elapsed_precise}] {wide_msg}")
        .expect("static template")
}

fn counter_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {prefix:>16} [{elapsed_precise}] {bar:30} {percent:>3}% {wide_msg}",
    )
    .expect("static template")
}

impl Reporter for BarReporter {
    fn phase(&self, recipe: &str, phase: &str) {
        let b = self.bar(recipe);
        b.set_style(spinner_style());
        b.set_length(0);
        b.set_position(0);
        b.set_message(phase.to_string());
        self.phases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                recipe.to_string(),
                (phase.to_string(), Instant::now(), Estimator::default()),
            );
    }

    fn line(&self, recipe: &str, line: &str) {
        if self.verbose {
            let _ = self
                .multi
                .println(crate::redact::redact(&format!("{recipe} | {line}")));
        }
        let Some(c) = parse_counter(line) else { return };
        let b = self.bar(recipe);
        let (done, total) = units(c);
        if b.length() != Some(total) {
            b.set_style(counter_style());
            b.set_length(total);
        }
        b.set_position(done);
        let mut phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        let (phase, start, est) = phases
            .entry(recipe.to_string())
            .or_insert_with(|| (String::new(), Instant::now(), Estimator::default()));
        let now = start.elapsed();
        est.observe(now, done, total);
        b.set_message(format!("{}  {phase}", est.eta(now)));
    }

    fn message(&self, text: &str) {
        let _ = self.multi.println(crate::redact::redact(text));
    }

    fn finished(&self, recipe: &str, outcome: &str) {
        let b = self.bar(recipe);
        b.set_style(spinner_style());
        b.finish_with_message(outcome.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ninja_and_cmake_counters() {
        assert_eq!(
            parse_counter("[123/4567] Building CXX object x.o"),
            Some(Counter::Steps {
                done: 123,
                total: 4567
            })
        );
        assert_eq!(
            parse_counter("  [ 45%] Building CUDA object"),
            Some(Counter::Percent(45))
        );
        assert_eq!(parse_counter("[100%] Linking"), Some(Counter::Percent(100)));
        for no in [
            "[x/y] a",
            "[5/0]",
            "[9/3] done",
            "no counter [1/2]",
            "[101%]",
            "[]",
        ] {
            assert_eq!(parse_counter(no), None, "{no}");
        }
        assert!((Counter::Steps { done: 1, total: 4 }.fraction() - 0.25).abs() < 1e-9);
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn eta_is_unknown_until_warmed_up_then_follows_time_per_unit() {
        let mut e = Estimator::default();
        assert_eq!(e.eta(secs(0)), Eta::Unknown);
        // A slow configure before the first counter does not count; 1 unit a second after.
        for i in 0..=9 {
            e.observe(secs(300 + i), i, 100);
        }
        assert_eq!(e.eta(secs(309)), Eta::Unknown, "9 units: still warming up");
        for i in 10..=20 {
            e.observe(secs(300 + i), i, 100);
        }
        assert_eq!(e.eta(secs(320)), Eta::Left(secs(80)));
        assert_eq!(e.eta(secs(330)), Eta::Left(secs(70)), "waiting counts down");
        assert_eq!(format_duration(secs(3725)), "1h02m");
        assert_eq!(format_duration(secs(75)), "1m15s");
    }

    #[test]
    fn eta_is_unknown_when_the_rate_changes() {
        // 70 fast units in 14 s, then the big kernels: 1 unit every 30 s. The old fraction
        // estimate said "about 6s left" at 70 %; this one says it does not know.
        let mut e = Estimator::default();
        for i in 0..=70 {
            e.observe(Duration::from_millis(200 * i), i, 100);
        }
        assert_eq!(e.eta(secs(14)), Eta::Left(Duration::from_secs(6)));
        assert_eq!(
            e.eta(secs(60)),
            Eta::Unknown,
            "waited far longer than the estimate"
        );
        for (k, i) in (71..=75).enumerate() {
            e.observe(secs(14 + 30 * (k as u64 + 1)), i, 100);
        }
        assert_eq!(e.eta(secs(165)), Eta::Unknown, "recent rate 10x slower");
        // A new counter (the next ninja run) starts over.
        e.observe(secs(200), 1, 50);
        assert_eq!(e.eta(secs(200)), Eta::Unknown);
        assert_eq!(Eta::Unknown.to_string(), "eta unknown");
        assert_eq!(Eta::Left(secs(75)).to_string(), "about 1m15s left");
    }

    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_output_snapshot() {
        let buf = Buf::default();
        let r = PlainReporter::new(Box::new(buf.clone()), false, false);
        r.phase("torch", "step 1/2: wheel");
        for i in 1..=20 {
            r.line("torch", &format!("[{i}/20] Building CXX object aten/{i}.o"));
            r.line("torch", "warning: noise that only -v shows");
        }
        r.message("proxy http://u:secret@p:3128");
        r.finished("torch", "built in 1m02s");
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let text: String = text
            .lines()
            .map(|l| l.split(", ").next().unwrap().to_string() + "\n")
            .collect();
        insta::assert_snapshot!(text, @r"
        torch: step 1/2: wheel
        torch: 10%
        torch: 20%
        torch: 30%
        torch: 40%
        torch: 50%
        torch: 60%
        torch: 70%
        torch: 80%
        torch: 90%
        torch: 100%
        proxy http://u:****@p:3128
        torch: built in 1m02s
        ");
    }
}
