//! The published manifest: how fingerprints travel with wheels to a package index or a static
//! tree, so another machine's `build` can find the wheel its recipe would produce.
//!
//! ```text
//! jetforge-manifest.json
//! {"format": 1, "entries": [{"fingerprint", "package", "version", "file", "sha256",
//!                            "commit", "target"}, …]}
//! ```
//!
//! A static tree (`publish --dir`) carries it at its root. A package index only stores package
//! files, so there each fingerprint gets a *sidecar wheel*
//! `jetforge_manifest-0+<fingerprint>-py3-none-any.whl` (project `jetforge-manifest`) holding
//! the entries of that fingerprint in `<dist-info>/jetforge-manifest.json`: one page,
//! `simple/jetforge-manifest/`, lists every fingerprint the index holds, and a hit downloads one
//! tiny file. Sidecars are byte-for-byte reproducible, so publishing again skips them like any
//! identical file. Entries carry no build time for the same reason.
//!
//! This module is plain data: encoding and decoding. Fetching and uploading live in `remote`
//! and `publish`.

use std::io::{Cursor, Read, Write};

use serde::{Deserialize, Serialize};

use super::store::ManifestEntry;
use super::verified::VerifyState;
use crate::hash::sha256_hex;

pub const FORMAT: u32 = 1;
/// File name of the manifest at a tree's root and inside a sidecar.
pub const MANIFEST_FILE: &str = "jetforge-manifest.json";
/// PEP 503 normalized project name of the sidecar wheels.
pub const SIDECAR_PROJECT: &str = "jetforge-manifest";
const SIDECAR_DIST: &str = "jetforge_manifest";
const SIDECAR_TAG: &str = "py3-none-any";

/// One wheel and the fingerprint it was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedEntry {
    pub fingerprint: String,
    /// PEP 503 normalized project name.
    pub package: String,
    pub version: String,
    /// Wheel file name, as listed on the index's project page.
    pub file: String,
    pub sha256: String,
    pub commit: Option<String>,
    /// Target profile name of the machine that built it.
    pub target: String,
    /// How far the build machine verified it (see `verified`); absent when not recorded
    /// (built before states were recorded), which never counts as passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyState>,
}

impl From<&ManifestEntry> for PublishedEntry {
    fn from(e: &ManifestEntry) -> Self {
        PublishedEntry {
            fingerprint: e.fingerprint.clone(),
            package: e.package.clone(),
            version: e.version.clone(),
            file: e.file.clone(),
            sha256: e.sha256.clone(),
            commit: e.commit.clone(),
            target: e.target.clone(),
            verify: e.verify.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PublishedManifest {
    pub format: u32,
    pub entries: Vec<PublishedEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("not a jetforge manifest: {0}")]
    Json(#[from] serde_json::Error),
    #[error("manifest format {found}; this jetforge reads format {FORMAT}")]
    Format { found: u32 },
    #[error("sidecar wheel: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// The sidecar lacks the JSON file its kind carries (`jetforge-manifest.json`, …).
    #[error("sidecar wheel holds no <dist-info>/{0}: not made by `jetforge publish`")]
    NoManifest(String),
    #[error("sidecar wheel: {0}")]
    Io(#[from] std::io::Error),
}

impl PublishedManifest {
    pub fn new(entries: Vec<PublishedEntry>) -> Self {
        let mut m = PublishedManifest {
            format: FORMAT,
            entries: Vec::new(),
        };
        m.merge(entries);
        m
    }

    /// Adds `entries`, replacing those with the same fingerprint and file; keeps a stable order.
    pub fn merge(&mut self, entries: Vec<PublishedEntry>) {
        for e in entries {
            self.entries
                .retain(|o| !(o.fingerprint == e.fingerprint && o.file == e.file));
            self.entries.push(e);
        }
        self.entries.sort_by(|a, b| {
            (&a.package, &a.fingerprint, &a.file).cmp(&(&b.package, &b.fingerprint, &b.file))
        });
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        #[derive(Deserialize)]
        struct Head {
            format: u32,
        }
        let head: Head = serde_json::from_slice(bytes)?;
        if head.format != FORMAT {
            return Err(ManifestError::Format { found: head.format });
        }
        Ok(serde_json::from_slice(bytes)?)
    }

    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("plain data serializes");
        json.push('\n');
        json
    }

    /// The entries of one fingerprint.
    pub fn find(&self, fingerprint: &str) -> Vec<PublishedEntry> {
        self.entries
            .iter()
            .filter(|e| e.fingerprint == fingerprint)
            .cloned()
            .collect()
    }
}

/// Version of the sidecar of `fingerprint`: a PEP 440 local version, so any index accepts it.
pub fn sidecar_version(fingerprint: &str) -> String {
    format!("0+{fingerprint}")
}

pub fn sidecar_file(fingerprint: &str) -> String {
    format!(
        "{SIDECAR_DIST}-{}-{SIDECAR_TAG}.whl",
        sidecar_version(fingerprint)
    )
}

/// The fingerprint a sidecar file name stands for.
pub fn sidecar_fingerprint(file: &str) -> Option<&str> {
    let fp = file
        .strip_prefix(&format!("{SIDECAR_DIST}-0+"))?
        .strip_suffix(&format!("-{SIDECAR_TAG}.whl"))?;
    (!fp.is_empty() && fp.bytes().all(|b| b.is_ascii_hexdigit())).then_some(fp)
}

/// A minimal valid wheel holding the manifest of one fingerprint's entries; the same entries
/// always give the same bytes (fixed timestamps, sorted entries).
pub fn sidecar_wheel(fingerprint: &str, entries: &[PublishedEntry]) -> Vec<u8> {
    let manifest = PublishedManifest::new(entries.to_vec()).to_json();
    data_wheel(
        &Sidecar {
            dist: SIDECAR_DIST,
            project: SIDECAR_PROJECT,
            summary: "jetforge cache manifest (which wheel a build fingerprint produced)",
            member: MANIFEST_FILE,
        },
        &sidecar_version(fingerprint),
        &manifest,
    )
}

/// What kind of data a sidecar wheel carries: its distribution and project names, the
/// `Summary` of its METADATA and the JSON file inside its dist-info.
pub struct Sidecar {
    pub dist: &'static str,
    pub project: &'static str,
    pub summary: &'static str,
    pub member: &'static str,
}

/// A minimal valid wheel `<dist>-<version>-py3-none-any.whl` holding `json` as
/// `<dist-info>/<member>`; the same input always gives the same bytes (fixed timestamps).
pub fn data_wheel(kind: &Sidecar, version: &str, json: &str) -> Vec<u8> {
    let dist_info = format!("{}-{version}.dist-info", kind.dist);
    let files = [
        (
            format!("{dist_info}/METADATA"),
            format!(
                "Metadata-Version: 2.1\nName: {}\nVersion: {version}\nSummary: {}\n",
                kind.project, kind.summary
            ),
        ),
        (
            format!("{dist_info}/WHEEL"),
            format!(
                "Wheel-Version: 1.0\nGenerator: jetforge {}\nRoot-Is-Purelib: true\nTag: {SIDECAR_TAG}\n",
                env!("CARGO_PKG_VERSION")
            ),
        ),
        (format!("{dist_info}/{}", kind.member), json.to_string()),
    ];
    let mut record = String::new();
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    for (name, text) in &files {
        zip.start_file(name.as_str(), options)
            .and_then(|()| zip.write_all(text.as_bytes()).map_err(Into::into))
            .expect("writing to memory cannot fail");
        record.push_str(&format!(
            "{name},sha256={},{}\n",
            urlsafe_digest(text.as_bytes()),
            text.len()
        ));
    }
    record.push_str(&format!("{dist_info}/RECORD,,\n"));
    zip.start_file(format!("{dist_info}/RECORD"), options)
        .and_then(|()| zip.write_all(record.as_bytes()).map_err(Into::into))
        .expect("writing to memory cannot fail");
    zip.finish()
        .expect("writing to memory cannot fail")
        .into_inner()
}

/// Reads the manifest out of a sidecar wheel.
pub fn read_sidecar(bytes: &[u8]) -> Result<PublishedManifest, ManifestError> {
    PublishedManifest::parse(&read_data_wheel(bytes, MANIFEST_FILE)?)
}

/// The bytes of `<dist-info>/<member>` in a sidecar wheel.
pub fn read_data_wheel(bytes: &[u8], member: &str) -> Result<Vec<u8>, ManifestError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))?;
    let name = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .find(|n| n.ends_with(&format!(".dist-info/{member}")))
        .ok_or_else(|| ManifestError::NoManifest(member.to_string()))?;
    let mut text = Vec::new();
    zip.by_name(&name)?.read_to_end(&mut text)?;
    Ok(text)
}

/// RECORD's hash form: urlsafe base64 of the sha256, without padding.
fn urlsafe_digest(bytes: &[u8]) -> String {
    use base64::Engine;
    let digest = hex::decode(sha256_hex(bytes)).expect("hex from sha256_hex");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fp: &str, file: &str) -> PublishedEntry {
        PublishedEntry {
            fingerprint: fp.into(),
            package: "first".into(),
            version: "1.0.0".into(),
            file: file.into(),
            sha256: "ab".repeat(32),
            commit: None,
            target: "host".into(),
            verify: None,
        }
    }

    #[test]
    fn sidecar_names_round_trip() {
        let fp = "0123abcd".repeat(8);
        let file = sidecar_file(&fp);
        assert_eq!(file, format!("jetforge_manifest-0+{fp}-py3-none-any.whl"));
        assert_eq!(sidecar_fingerprint(&file), Some(fp.as_str()));
        assert_eq!(sidecar_fingerprint("first-1.0-py3-none-any.whl"), None);
        assert!(crate::wheelhouse::WheelName::parse(&file).is_ok());
    }

    #[test]
    fn sidecars_are_reproducible_and_readable() {
        let fp = "f".repeat(64);
        let entries = [entry(&fp, "first-1.0.0-cp311-cp311-linux_x86_64.whl")];
        let a = sidecar_wheel(&fp, &entries);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(a, sidecar_wheel(&fp, &entries), "same entries, same bytes");
        assert_eq!(read_sidecar(&a).unwrap().entries, entries);
        let err = crate::wheelhouse::verified::read_sidecar(&a).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "sidecar wheel holds no <dist-info>/jetforge-verified.json: not made by `jetforge publish`"
        );
    }

    #[test]
    fn merge_replaces_the_same_fingerprint_and_file() {
        let mut m = PublishedManifest::new(vec![entry("a", "x.whl"), entry("b", "x.whl")]);
        let mut newer = entry("a", "x.whl");
        newer.sha256 = "cd".repeat(32);
        m.merge(vec![newer.clone()]);
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.find("a"), [newer]);
    }

    #[test]
    fn another_format_is_refused() {
        let err = PublishedManifest::parse(br#"{"format": 2, "entries": []}"#).unwrap_err();
        assert!(err.to_string().contains("format 2"), "{err}");
    }
}
