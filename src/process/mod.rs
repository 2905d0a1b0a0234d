//! Child processes: the one subprocess runner (build steps, verify, doctor probes, cross checks,
//! install) and the Ctrl-C/SIGTERM handling that stops a running step's process group.
//!
//! Below every stage: it knows nothing of recipes, plans or the wheelhouse.

pub mod interrupt;
pub mod runner;
pub mod sampler;

/// Single-quotes a value for POSIX shells; `'` becomes `'\''`.
pub fn shell_quote(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        return v.to_string();
    }
    format!("'{}'", v.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_simple_values_bare() {
        assert_eq!(shell_quote("8.7"), "8.7");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
