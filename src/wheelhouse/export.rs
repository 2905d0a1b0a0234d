//! What a uv or pip project needs to consume the built set instead of PyPI's builds of the
//! same packages (a CPU torch of the same version would otherwise win: PyPI's manylinux tags
//! rank above the set's `linux_*` ones). Rendered from the manifest's wheels for one target.

use std::collections::BTreeMap;

use crate::wheelhouse::store::ManifestEntry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `pyproject.toml` tables for uv.
    Uv,
    /// A requirements file for pip: index lines and the set's pins.
    Pip,
    /// `name==version` lines (`pip install -c`, `uv pip install -c`, `UV_CONSTRAINT`).
    Constraints,
}

/// Where the consumer finds the set's wheels.
pub struct Source<'a> {
    /// A PEP 503 index: the wheelhouse's `simple/` as a file URL, or a published cache.
    pub index: &'a str,
    /// The wheelhouse directory as a file URL, for pip's `--find-links` (local only).
    pub find_links: Option<&'a str>,
    /// The target's CPU (`aarch64`), so that uv resolves only for the platform the wheels fit.
    pub arch: &'a str,
    /// Set and target, for the header.
    pub what: &'a str,
}

/// The set's packages and versions for `target`, one per package (the newest build).
pub fn pins(entries: &[ManifestEntry], target: &str) -> Vec<(String, String)> {
    let mut newest: BTreeMap<&str, &ManifestEntry> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.target == target) {
        let keep = newest
            .get(e.package.as_str())
            .is_none_or(|old| old.built_at <= e.built_at);
        if keep {
            newest.insert(&e.package, e);
        }
    }
    newest
        .into_values()
        .map(|e| (e.package.clone(), e.version.clone()))
        .collect()
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

pub fn render(format: Format, pins: &[(String, String)], src: &Source) -> String {
    let pinned: Vec<String> = pins.iter().map(|(n, v)| format!("{n}=={v}")).collect();
    match format {
        Format::Constraints => {
            let mut out = format!("# the set's exact versions: {}\n", src.what);
            for p in &pinned {
                out.push_str(&format!("{p}\n"));
            }
            out
        }
        Format::Pip => {
            let mut out = format!(
                "# {}: `pip install -r` this file. The set's index is the only one: pip picks\n\
                 # by version and platform tag, not by index, so with PyPI beside it a PyPI build of\n\
                 # the same version could win; add `--extra-index-url` only with these pins kept.\n\
                 --index-url {}\n",
                src.what, src.index
            );
            if let Some(f) = src.find_links {
                out.push_str(&format!("--find-links {f}\n"));
            }
            for p in &pinned {
                out.push_str(&format!("{p}\n"));
            }
            out
        }
        Format::Uv => {
            let list = |items: &[String]| {
                let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
                format!("[{}]", quoted.join(", "))
            };
            let names: Vec<String> = pins.iter().map(|(n, _)| n.clone()).collect();
            let mut out = format!(
                "# {}: merge into the project's pyproject.toml. The set's packages come only\n\
                 # from its index (explicit: nothing else is looked up there), at the set's versions,\n\
                 # and are never built in isolation (which would fetch another torch).\n\
                 [tool.uv]\n\
                 override-dependencies = {}\n\
                 no-build-isolation-package = {}\n\
                 environments = [{}]\n\n\
                 [[tool.uv.index]]\n\
                 name = \"jetforge\"\n\
                 url = {}\n\
                 explicit = true\n\n\
                 [tool.uv.sources]\n",
                src.what,
                list(&pinned),
                list(&names),
                quote(&format!(
                    "sys_platform == 'linux' and platform_machine == '{}'",
                    src.arch
                )),
                quote(src.index),
            );
            for n in &names {
                out.push_str(&format!("{n} = {{ index = \"jetforge\" }}\n"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(package: &str, version: &str, target: &str, at: &str) -> ManifestEntry {
        ManifestEntry {
            package: package.into(),
            version: version.into(),
            file: format!("{package}-{version}-py3-none-any.whl"),
            sha256: String::new(),
            fingerprint: String::new(),
            commit: None,
            target: target.into(),
            built_at: at.into(),
            recipe: None,
            stat: None,
            verify: None,
        }
    }

    #[test]
    fn pins_take_the_newest_build_of_the_target() {
        let entries = [
            entry("torch", "2.8.0", "jetson-orin", "2026-01-01T00:00:00Z"),
            entry("torch", "2.9.0", "jetson-orin", "2026-02-01T00:00:00Z"),
            entry("torch", "9.9.9", "host", "2026-03-01T00:00:00Z"),
            entry("vllm", "0.12.0", "jetson-orin", "2026-02-01T00:00:00Z"),
        ];
        assert_eq!(
            pins(&entries, "jetson-orin"),
            [
                ("torch".to_string(), "2.9.0".to_string()),
                ("vllm".to_string(), "0.12.0".to_string())
            ]
        );
    }

    #[test]
    fn uv_tables_parse_and_name_every_package() {
        let pins = [("torch".to_string(), "2.9.0".to_string())];
        let src = Source {
            index: "file:///w/wheelhouse/simple/",
            find_links: Some("file:///w/wheelhouse/"),
            arch: "aarch64",
            what: "set s for target t",
        };
        let text = render(Format::Uv, &pins, &src);
        let v: toml::Table = toml::from_str(&text).unwrap();
        let uv = &v["tool"]["uv"];
        assert_eq!(
            uv["override-dependencies"][0].as_str(),
            Some("torch==2.9.0")
        );
        assert_eq!(uv["index"][0]["explicit"].as_bool(), Some(true));
        assert_eq!(uv["sources"]["torch"]["index"].as_str(), Some("jetforge"));
        let pip = render(Format::Pip, &pins, &src);
        assert!(pip.contains("\n--index-url file:///w/wheelhouse/simple/\n--find-links file:///w/wheelhouse/\ntorch==2.9.0\n"));
    }
}
