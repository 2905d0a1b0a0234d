//! Python package names compared the PEP 503 way (lower case, runs of `-`, `_`, `.` as one `-`),
//! by `pep508_rs::PackageName`, so wheel files, METADATA, recipes and index pages agree.

use std::str::FromStr;

use pep508_rs::PackageName;

/// The normalized form of `name`. A name PEP 508 rejects (never one of a checked recipe or a
/// valid wheel) is only lower-cased.
pub fn normalize(name: &str) -> String {
    PackageName::from_str(name).map_or_else(|_| name.to_ascii_lowercase(), |n| n.to_string())
}

/// `name` as a [`PackageName`], for comparing with requirements; `None` for a name PEP 508
/// rejects, which no requirement can name.
pub fn package_name(name: &str) -> Option<PackageName> {
    PackageName::from_str(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_pep_503() {
        assert_eq!(normalize("Flash_Attn"), "flash-attn");
        assert_eq!(normalize("vllm.flash__attn-x"), "vllm-flash-attn-x");
        assert_eq!(normalize("torch"), "torch");
    }
}
