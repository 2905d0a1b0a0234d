//! The Python the wheels are built for. On the live root the interpreter is asked, since only
//! it knows its patch version and real path; a fake root is described by its
//! `usr/lib/python3.N` directories, the newest being the distribution's default.

use std::path::{Path, PathBuf};

use super::{host_path, is_live, run_stdout, Python};

const PROBE: &str = "import sys,platform;print(platform.python_version());print(sys.executable)";

pub(super) fn read(root: &Path, interpreter: Option<&Path>) -> Option<Python> {
    if is_live(root) {
        let program = interpreter.unwrap_or(Path::new("python3"));
        parse_probe(&run_stdout(program, &["-c", PROBE])?)
    } else {
        newest_in_tree(root)
    }
}

/// Two lines: version, then sys.executable (empty when Python cannot tell).
fn parse_probe(out: &str) -> Option<Python> {
    let mut lines = out.lines().map(str::trim);
    let version = lines.next().filter(|v| v.starts_with("3."))?;
    let executable = lines.next().filter(|e| !e.is_empty()).map(PathBuf::from);
    Some(Python {
        version: version.to_string(),
        executable,
    })
}

fn newest_in_tree(root: &Path) -> Option<Python> {
    let entries = std::fs::read_dir(host_path(root, "usr/lib")).ok()?;
    let minor = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| minor_of(&e.file_name().to_string_lossy()))
        .max()?;
    Some(Python {
        version: format!("3.{minor}"),
        executable: Some(PathBuf::from(format!("/usr/bin/python3.{minor}"))),
    })
}

/// `python3.12` → 12; `python3`, `python3.12-config` and others → None.
fn minor_of(dir_name: &str) -> Option<u32> {
    let minor = dir_name.strip_prefix("python3.")?;
    minor
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| minor.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_output() {
        let p = parse_probe("3.10.12\n/usr/bin/python3\n").unwrap();
        assert_eq!(p.version, "3.10.12");
        assert_eq!(p.executable.as_deref(), Some(Path::new("/usr/bin/python3")));
        assert_eq!(parse_probe("3.12.3\n\n").unwrap().executable, None);
        assert_eq!(parse_probe("Python was not found"), None);
        assert_eq!(parse_probe(""), None);
    }

    #[test]
    fn minor_versions_compare_as_numbers() {
        assert_eq!(minor_of("python3.9"), Some(9));
        assert_eq!(minor_of("python3.11"), Some(11));
        assert_eq!(minor_of("python3"), None);
        assert_eq!(minor_of("python3.12-config"), None);
        assert_eq!(minor_of("python3."), None);
    }

    #[test]
    fn missing_interpreter_is_unknown() {
        let missing = Path::new("/nonexistent/jetforge/python3");
        assert_eq!(read(Path::new("/"), Some(missing)), None);
    }
}
