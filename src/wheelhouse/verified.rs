//! Verification state: how far a wheel's `[verify]` checks ran, and the results that finish a
//! deferred verification later, on a device.
//!
//! Each manifest entry (local `manifest.json`, published `jetforge-manifest.json` and sidecars)
//! records the state its build reached, [`VerifyState`]: `passed` when every check of the
//! recipe ran and passed, `pending` with the reason when one was skipped (a GPU snippet on a
//! machine without a GPU, a cross build without an emulator), `no-check` when the recipe has
//! no `[verify]`. An entry without the field (written before states were recorded) is
//! *unknown*, never passed. The state is fixed when the wheel is stored: published entries and
//! sidecars stay byte-for-byte what they were.
//!
//! A later `jetforge verify --index/--find-links` on a device saves its results locally
//! ([`LocalResults`], `<work>/<set>-<target>/verify-results.json`), keyed by fingerprint and
//! wheel sha256; `publish --verified` turns the passed ones into [`Attestation`]s next to the
//! published manifest:
//!
//! ```text
//! jetforge-verified.json   (static tree; merged, existing records kept as they are)
//! {"format": 1, "attestations": [{"fingerprint", "package", "version", "file", "sha256",
//!   "target", "host", "verified_at", "checks": ["snippet", "nccl-1"], "jetforge"}, …]}
//! jetforge_verified-0+<fingerprint>-py3-none-any.whl   (index; project `jetforge-verified`,
//!   the attestations of that fingerprint in <dist-info>/jetforge-verified.json)
//! ```
//!
//! Plain records, not signatures: whoever can write the cache (the index's upload credentials,
//! write access to the tree) can already replace what the attestation is about — the wheels and
//! the manifest, which are not signed either — so a signature would only move trust to a key
//! jetforge has no way to distribute or revoke. An attestation names the wheel's sha256, so it
//! can never vouch for other bytes than the ones that ran. Readers treat an entry as verified
//! when its state is `passed` or `no-check`, or an attestation with the same fingerprint and
//! sha256 exists.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::atomic;
use crate::error;

pub const FORMAT: u32 = 1;
/// File name of the attestations at a tree's root and inside a sidecar.
pub const VERIFIED_FILE: &str = "jetforge-verified.json";
/// PEP 503 normalized project name of the attestation sidecars.
pub const VERIFIED_PROJECT: &str = "jetforge-verified";
pub const VERIFIED_DIST: &str = "jetforge_verified";
/// The local results' file name under the set's work dir.
pub const RESULTS_FILE: &str = "verify-results.json";

/// How far a wheel's checks ran when it was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum VerifyState {
    /// Every check of the recipe ran and passed.
    Passed,
    /// A check was skipped: why, and which (e.g. "no GPU: the [verify] snippet needs one").
    Pending { reason: String },
    /// The recipe has no `[verify]`: nothing to run, nothing to defer.
    NoCheck,
}

impl VerifyState {
    /// What `install` and the build summary say about it; `None` for the states that need no
    /// warning.
    pub fn warning(state: Option<&VerifyState>) -> Option<String> {
        match state {
            Some(VerifyState::Passed | VerifyState::NoCheck) => None,
            Some(VerifyState::Pending { reason }) => Some(format!("verify pending ({reason})")),
            None => Some("verify state not recorded".to_string()),
        }
    }
}

/// A wheel and the checks that ran on it: what a local result and a published attestation
/// both say (serialized inline, as their own fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checked {
    pub fingerprint: String,
    pub package: String,
    pub version: String,
    pub file: String,
    pub sha256: String,
    pub target: String,
    /// Where it ran (hostname, machine, GPU).
    pub host: String,
    /// RFC 3339, UTC.
    pub verified_at: String,
    /// What ran: `snippet`, and the NCCL check when it ran and passed with it: `nccl` (the
    /// 2-process all-reduce) or `nccl-1` (the single-process check of a one-GPU device).
    pub checks: Vec<String>,
}

/// One result of `jetforge verify` against a cache, kept locally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResult {
    #[serde(flatten)]
    pub run: Checked,
    pub passed: bool,
    /// The failure or skip, when it did not pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A passed result as published next to a cache's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    #[serde(flatten)]
    pub run: Checked,
    /// The jetforge version that ran the checks.
    pub jetforge: String,
}

impl Checked {
    /// The order records are kept in: by package, fingerprint, file.
    fn order(&self) -> (&str, &str, &str) {
        (&self.package, &self.fingerprint, &self.file)
    }
}

impl From<&VerifyResult> for Attestation {
    fn from(r: &VerifyResult) -> Self {
        Attestation {
            run: r.run.clone(),
            jetforge: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Attestations {
    pub format: u32,
    pub attestations: Vec<Attestation>,
}

impl Attestations {
    pub fn new(list: Vec<Attestation>) -> Self {
        let mut a = Attestations {
            format: FORMAT,
            attestations: Vec::new(),
        };
        a.merge(list);
        a
    }

    /// Adds the attestations of wheels not attested yet; one already there (same fingerprint
    /// and sha256) is kept as it is, so a published record never changes. Returns how many
    /// were added.
    pub fn merge(&mut self, list: Vec<Attestation>) -> usize {
        let mut added = 0;
        for a in list {
            if !self.attests(&a.run.fingerprint, &a.run.sha256) {
                self.attestations.push(a);
                added += 1;
            }
        }
        self.attestations
            .sort_by(|a, b| a.run.order().cmp(&b.run.order()));
        added
    }

    /// Whether the wheel of `fingerprint` with these bytes is attested.
    pub fn attests(&self, fingerprint: &str, sha256: &str) -> bool {
        self.attestations
            .iter()
            .any(|a| a.run.fingerprint == fingerprint && a.run.sha256 == sha256)
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct Head {
            format: u32,
        }
        let head: Head =
            serde_json::from_slice(bytes).context("not a jetforge attestation file")?;
        if head.format != FORMAT {
            anyhow::bail!(
                "attestation format {}; this jetforge reads format {FORMAT}",
                head.format
            );
        }
        serde_json::from_slice(bytes).context("not a jetforge attestation file")
    }

    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("plain data serializes");
        json.push('\n');
        json
    }
}

/// Whether an entry counts as verified: its build passed every check (or its recipe has none),
/// or a device attested these bytes since.
pub fn is_verified(
    state: Option<&VerifyState>,
    fingerprint: &str,
    sha256: &str,
    attested: &Attestations,
) -> bool {
    matches!(state, Some(VerifyState::Passed | VerifyState::NoCheck))
        || attested.attests(fingerprint, sha256)
}

/// The sidecar wheel of one fingerprint's attestations (see the module comment).
pub fn sidecar_wheel(fingerprint: &str, list: &[Attestation]) -> (String, Vec<u8>) {
    let version = super::published::sidecar_version(fingerprint);
    let json = Attestations::new(list.to_vec()).to_json();
    let bytes = super::published::data_wheel(
        &super::published::Sidecar {
            dist: VERIFIED_DIST,
            project: VERIFIED_PROJECT,
            summary: "jetforge verification records (wheels of a build fingerprint that passed their checks on a device)",
            member: VERIFIED_FILE,
        },
        &version,
        &json,
    );
    (sidecar_file(fingerprint), bytes)
}

pub fn sidecar_file(fingerprint: &str) -> String {
    format!(
        "{VERIFIED_DIST}-{}-py3-none-any.whl",
        super::published::sidecar_version(fingerprint)
    )
}

/// The fingerprint an attestation sidecar's file name stands for.
pub fn sidecar_fingerprint(file: &str) -> Option<&str> {
    let fp = file
        .strip_prefix(&format!("{VERIFIED_DIST}-0+"))?
        .strip_suffix("-py3-none-any.whl")?;
    (!fp.is_empty() && fp.bytes().all(|b| b.is_ascii_hexdigit())).then_some(fp)
}

pub fn read_sidecar(bytes: &[u8]) -> Result<Attestations> {
    let json = super::published::read_data_wheel(bytes, VERIFIED_FILE)?;
    Attestations::parse(&json)
}

/// The results `jetforge verify` saved in a work dir.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LocalResults {
    pub results: Vec<VerifyResult>,
}

impl LocalResults {
    pub fn path(root: &Path) -> PathBuf {
        root.join(RESULTS_FILE)
    }

    /// The saved results; none when the file is not there.
    pub fn load(path: &Path) -> Result<Self> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                error::failure_hint(
                    format!(
                        "`{}` is not a jetforge verify results file: {e}",
                        path.display()
                    ),
                    "delete it and run `jetforge verify` again",
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("failed to read `{}`", path.display())),
        }
    }

    /// Records `new`: a newer result for the same fingerprint and sha256 replaces the older one
    /// (a failure after a pass is what holds now).
    pub fn merge(&mut self, new: Vec<VerifyResult>) {
        for r in new {
            self.results.retain(|o| {
                !(o.run.fingerprint == r.run.fingerprint && o.run.sha256 == r.run.sha256)
            });
            self.results.push(r);
        }
        self.results
            .sort_by(|a, b| a.run.order().cmp(&b.run.order()));
    }

    /// Written atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .with_context(|| format!("failed to create `{}`", dir.display()))?;
        }
        let mut json = serde_json::to_string_pretty(self).context("serializing verify results")?;
        json.push('\n');
        atomic::write(path, json.as_bytes())
    }

    /// The passed results, as attestations.
    pub fn attestations(&self) -> Attestations {
        Attestations::new(
            self.results
                .iter()
                .filter(|r| r.passed)
                .map(Attestation::from)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(fp: &str, sha: &str, passed: bool, at: &str) -> VerifyResult {
        VerifyResult {
            run: Checked {
                fingerprint: fp.into(),
                package: "gpupkg".into(),
                version: "1.0.0".into(),
                file: "gpupkg-1.0.0-py3-none-any.whl".into(),
                sha256: sha.into(),
                target: "host".into(),
                host: "orin".into(),
                verified_at: at.into(),
                checks: vec!["snippet".into()],
            },
            passed,
            detail: None,
        }
    }

    #[test]
    fn states_serialize_as_tagged_objects_and_missing_is_unknown() {
        let pending = VerifyState::Pending {
            reason: "no GPU".into(),
        };
        let json = serde_json::to_value(&pending).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"state": "pending", "reason": "no GPU"})
        );
        assert_eq!(
            serde_json::to_value(VerifyState::Passed).unwrap(),
            serde_json::json!({"state": "passed"})
        );
        assert_eq!(
            VerifyState::warning(Some(&pending)).as_deref(),
            Some("verify pending (no GPU)")
        );
        assert_eq!(
            VerifyState::warning(None).as_deref(),
            Some("verify state not recorded")
        );
        assert_eq!(VerifyState::warning(Some(&VerifyState::Passed)), None);
        let none = Attestations::default();
        assert!(
            !is_verified(None, "fp", "sha", &none),
            "unknown is not passed"
        );
        assert!(!is_verified(Some(&pending), "fp", "sha", &none));
        assert!(is_verified(Some(&VerifyState::Passed), "fp", "sha", &none));
    }

    #[test]
    fn a_newer_local_result_replaces_the_older_one_of_the_same_wheel() {
        let mut local = LocalResults::default();
        local.merge(vec![
            result("a", "1", true, "t1"),
            result("b", "2", true, "t1"),
        ]);
        local.merge(vec![result("a", "1", false, "t2")]);
        assert_eq!(local.results.len(), 2);
        let a = local
            .results
            .iter()
            .find(|r| r.run.fingerprint == "a")
            .unwrap();
        assert!(!a.passed, "a failure after a pass is what holds");
        let att = local.attestations();
        assert!(!att.attests("a", "1"), "only passed results are attested");
        assert!(att.attests("b", "2"));
        assert!(!att.attests("b", "3"), "other bytes are not attested");
    }

    #[test]
    fn published_attestations_are_never_rewritten() {
        let first = Attestation::from(&result("a", "1", true, "t1"));
        let mut published = Attestations::new(vec![first.clone()]);
        let again = Attestation::from(&result("a", "1", true, "t2"));
        let other = Attestation::from(&result("b", "2", true, "t2"));
        assert_eq!(published.merge(vec![again, other.clone()]), 1);
        assert_eq!(published.attestations, [first, other]);
        let parsed = Attestations::parse(published.to_json().as_bytes()).unwrap();
        assert_eq!(parsed, published);
        assert!(Attestations::parse(br#"{"format": 9, "attestations": []}"#).is_err());
    }

    #[test]
    fn attestation_sidecars_round_trip() {
        let fp = "ab".repeat(32);
        let list = [Attestation::from(&result(&fp, "1", true, "t1"))];
        let (file, bytes) = sidecar_wheel(&fp, &list);
        assert_eq!(sidecar_fingerprint(&file), Some(fp.as_str()));
        assert!(crate::wheelhouse::WheelName::parse(&file).is_ok());
        assert_eq!(read_sidecar(&bytes).unwrap().attestations, list);
        assert_eq!(sidecar_wheel(&fp, &list).1, bytes, "reproducible");
    }
}
