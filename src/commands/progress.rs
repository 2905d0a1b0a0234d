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

/// Estimated time left from the elapsed time and the fraction done.
pub fn eta(elapsed: Duration, fraction: f64) -> Option<Duration> {
    (fraction > 0.01 && fraction < 1.0)
        .then(|| Duration::from_secs_f64(elapsed.as_secs_f64() * (1.0 - fraction) / fraction))
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
        Box::new(BarReporter::new())
    }
}

/// Plain lines: `[12:01:02] torch: step 1/2: wheel`. Step output is shown with `-v`; otherwise
/// only counter progress every 10 %, so a CI log shows movement without the compiler noise.
pub struct PlainReporter {
    out: Mutex<Box<dyn Write + Send>>,
    verbose: bool,
    timestamps: bool,
    /// Last 10 % bucket printed, and when the current step started, per recipe.
    state: Mutex<BTreeMap<String, (u8, Instant)>>,
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
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(recipe.to_string(), (0, Instant::now()));
        self.emit(&format!("{recipe}: {phase}"));
    }

    fn line(&self, recipe: &str, line: &str) {
        if self.verbose {
            self.emit(&format!("{recipe} | {line}"));
            return;
        }
        let Some(c) = parse_counter(line) else { return };
        let bucket = (c.fraction() * 10.0).floor() as u8;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let entry = state
            .entry(recipe.to_string())
            .or_insert((0, Instant::now()));
        if bucket > entry.0 {
            entry.0 = bucket;
            let left = eta(entry.1.elapsed(), c.fraction())
                .map(|d| format!(", about {} left", format_duration(d)))
                .unwrap_or_default();
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
}

impl BarReporter {
    pub fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(BTreeMap::new()),
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

impl Default for BarReporter {
    fn default() -> Self {
        Self::new()
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:>16} [{elapsed_precise}] {wide_msg}")
        .expect("static template")
}

fn counter_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {prefix:>16} [{elapsed_precise}] {bar:30} {percent:>3}% eta {eta} {wide_msg}",
    )
    .expect("static template")
}

impl Reporter for BarReporter {
    fn phase(&self, recipe: &str, phase: &str) {
        let b = self.bar(recipe);
        b.set_style(spinner_style());
        b.set_length(0);
        b.set_position(0);
        b.reset_eta();
        b.set_message(phase.to_string());
    }

    fn line(&self, recipe: &str, line: &str) {
        let b = self.bar(recipe);
        match parse_counter(line) {
            Some(Counter::Steps { done, total }) => {
                if b.length() != Some(total) {
                    b.set_style(counter_style());
                    b.set_length(total);
                }
                b.set_position(done);
            }
            Some(Counter::Percent(p)) => {
                if b.length() != Some(100) {
                    b.set_style(counter_style());
                    b.set_length(100);
                }
                b.set_position(u64::from(p));
            }
            None => {}
        }
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

    #[test]
    fn eta_from_fraction() {
        assert_eq!(
            eta(Duration::from_secs(60), 0.25),
            Some(Duration::from_secs(180))
        );
        assert_eq!(eta(Duration::from_secs(60), 0.0), None);
        assert_eq!(format_duration(Duration::from_secs(3725)), "1h02m");
        assert_eq!(format_duration(Duration::from_secs(75)), "1m15s");
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
            .map(|l| l.split(", about").next().unwrap().to_string() + "\n")
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
