//! Jetson identity: the module from the device tree, the L4T release from
//! /etc/nv_tegra_release and the JetPack that release belongs to. The model also fixes the
//! GPU's compute capability, which a Jetson's `nvidia-smi` cannot report.

use std::path::Path;

use super::{read_text, Jetson};

/// Words in /proc/device-tree/model that mark an NVIDIA Jetson module; other arm64 boards
/// (Raspberry Pi, Ampere servers) have a model string too.
const JETSON_MARKERS: &[&str] = &["Jetson", "Orin", "Xavier"];

/// L4T release → JetPack, from NVIDIA's JetPack archive. Exact releases first; an entry
/// ending in '.' or a bare major matches any later release of that series whose JetPack is
/// unknown here (e.g. a new 36.4.x point release), giving a deliberately vague answer.
const JETPACK_FOR_L4T: &[(&str, &str)] = &[
    ("36.4.4", "6.2.1"),
    ("36.4.3", "6.2"),
    ("36.4.0", "6.1"),
    ("36.4.", "6.1/6.2"),
    ("36.3.", "6.0"),
    ("36.2.", "6.0 DP"),
    ("35.6.1", "5.1.5"),
    ("35.6.0", "5.1.4"),
    ("35.5.0", "5.1.3"),
    ("35.4.1", "5.1.2"),
    ("35.3.1", "5.1.1"),
    ("35.2.1", "5.1"),
    ("35.1.0", "5.0.2"),
    ("35.", "5.x"),
    ("32.", "4.x"),
];

/// Compute capability by module family; checked in order, so "Orin Nano" is Orin.
const GPU_ARCH_FOR_MODEL: &[(&str, &str)] = &[
    ("Orin", "8.7"),
    ("Xavier", "7.2"),
    ("TX2", "6.2"),
    ("Nano", "5.3"),
    ("TX1", "5.3"),
];

pub(super) fn read(root: &Path) -> Option<Jetson> {
    let model = read_text(root, "proc/device-tree/model")?;
    // The device tree stores the string NUL-terminated.
    let model = model.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if !JETSON_MARKERS.iter().any(|m| model.contains(m)) {
        return None;
    }
    let l4t = read_text(root, "etc/nv_tegra_release").and_then(|t| parse_l4t(&t));
    Some(Jetson {
        model: model.to_string(),
        jetpack: l4t.as_deref().and_then(jetpack_for_l4t).map(str::to_string),
        l4t,
    })
}

/// `# R36 (release), REVISION: 4.3, GCID: …` → "36.4.3". A one-part revision ("4") gets
/// ".0", as NVIDIA's numbering has three parts.
pub fn parse_l4t(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.trim_start().starts_with("# R"))?;
    let major = line
        .trim_start()
        .strip_prefix("# R")?
        .split_whitespace()
        .next()?;
    let revision = line
        .split(',')
        .find_map(|part| part.trim().strip_prefix("REVISION:"))?
        .trim();
    let parts: Vec<&str> = revision.split('.').collect();
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !numeric(major) || parts.len() > 2 || !parts.iter().all(|p| numeric(p)) {
        return None;
    }
    let minor = parts[0];
    let patch = parts.get(1).copied().unwrap_or("0");
    Some(format!("{major}.{minor}.{patch}"))
}

/// The JetPack release for an L4T release ("36.4.3" → "6.2"), None for unknown series.
pub fn jetpack_for_l4t(l4t: &str) -> Option<&'static str> {
    let exact = JETPACK_FOR_L4T.iter().find(|(k, _)| *k == l4t);
    let series = || {
        JETPACK_FOR_L4T
            .iter()
            .find(|(k, _)| k.ends_with('.') && l4t.starts_with(k))
    };
    exact.or_else(series).map(|(_, jp)| *jp)
}

pub(super) fn gpu_arch_for_model(model: &str) -> Option<&'static str> {
    GPU_ARCH_FOR_MODEL
        .iter()
        .find(|(family, _)| model.contains(family))
        .map(|(_, arch)| *arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const R36_4_3: &str = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, \
                           EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n\
                           # KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n";

    #[test]
    fn l4t_releases() {
        assert_eq!(parse_l4t(R36_4_3).as_deref(), Some("36.4.3"));
        let r = "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64";
        assert_eq!(parse_l4t(r).as_deref(), Some("36.4.0"));
        let r = "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64";
        assert_eq!(parse_l4t(r).as_deref(), Some("35.4.1"));
        let r = "# R32 (release), REVISION: 7, GCID: 1, BOARD: t210ref, EABI: aarch64";
        assert_eq!(parse_l4t(r).as_deref(), Some("32.7.0"));
    }

    #[test]
    fn garbled_l4t_is_unknown() {
        for text in [
            "",
            "R36 4.3",
            "# R36 (release), GCID: 1",
            "# Rxx (release), REVISION: 4.3",
            "# R36 (release), REVISION: four",
            "# R36 (release), REVISION: 4.3.1.2",
        ] {
            assert_eq!(parse_l4t(text), None, "{text:?}");
        }
    }

    #[test]
    fn jetpack_mapping() {
        let cases = [
            ("36.4.3", Some("6.2")),
            ("36.4.0", Some("6.1")),
            ("36.4.4", Some("6.2.1")),
            ("36.4.9", Some("6.1/6.2")),
            ("36.3.0", Some("6.0")),
            ("36.2.0", Some("6.0 DP")),
            ("35.6.0", Some("5.1.4")),
            ("35.5.0", Some("5.1.3")),
            ("35.4.1", Some("5.1.2")),
            ("35.3.1", Some("5.1.1")),
            ("35.2.1", Some("5.1")),
            ("35.1.0", Some("5.0.2")),
            ("35.9.9", Some("5.x")),
            ("32.7.1", Some("4.x")),
            ("38.2.0", None),
            ("3", None),
        ];
        for (l4t, jp) in cases {
            assert_eq!(jetpack_for_l4t(l4t), jp, "{l4t}");
        }
    }

    #[test]
    fn gpu_arch_by_module() {
        assert_eq!(
            gpu_arch_for_model("NVIDIA Jetson Orin Nano Developer Kit"),
            Some("8.7")
        );
        assert_eq!(gpu_arch_for_model("NVIDIA Jetson AGX Xavier"), Some("7.2"));
        assert_eq!(
            gpu_arch_for_model("NVIDIA Jetson Nano Developer Kit"),
            Some("5.3")
        );
        assert_eq!(gpu_arch_for_model("Raspberry Pi 5 Model B Rev 1.0"), None);
    }

    #[test]
    fn other_boards_are_not_jetsons() {
        let dir = tempfile::tempdir().unwrap();
        let dt = dir.path().join("proc/device-tree");
        std::fs::create_dir_all(&dt).unwrap();
        std::fs::write(dt.join("model"), "Raspberry Pi 5 Model B Rev 1.0\0").unwrap();
        assert_eq!(read(dir.path()), None);
        std::fs::write(dt.join("model"), "NVIDIA Jetson AGX Orin\0").unwrap();
        let j = read(dir.path()).unwrap();
        assert_eq!(
            (j.model.as_str(), j.l4t, j.jetpack),
            ("NVIDIA Jetson AGX Orin", None, None)
        );
    }
}
