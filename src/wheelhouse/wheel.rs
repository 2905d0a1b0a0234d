//! Wheel files as data: the PEP 427 file name, the `METADATA` and `WHEEL` members of the
//! archive, and the SHA-256 of the file. Reading only; deciding whether a wheel is acceptable is
//! `check`'s job, keeping it is `store`'s.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep440_rs::Version;
use pep508_rs::Requirement;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    #[error("`{file}` is not a wheel file name ({reason})")]
    BadFileName { file: String, reason: String },
    #[error("failed to read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{}` is not a readable zip archive", path.display())]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("`{}` has no `{member}`", path.display())]
    MissingMember { path: PathBuf, member: String },
    #[error("`{}`: {member}: {reason}", path.display())]
    BadMetadata {
        path: PathBuf,
        member: String,
        reason: String,
    },
}

/// PEP 503 normalized project name: lowercase, runs of `-`, `_`, `.` become one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_run = false;
        }
    }
    out
}

/// The parts of a wheel file name: `name-version(-build)?-pyver-abi-plat.whl`. Each tag part may
/// be a compressed set (`py2.py3`), kept here expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    /// The full file name, as on disk.
    pub file: String,
    /// The name as written in the file name (`_` for `-`).
    pub name: String,
    pub version: Version,
    pub build: Option<String>,
    pub python_tags: Vec<String>,
    pub abi_tags: Vec<String>,
    pub platform_tags: Vec<String>,
}

impl WheelName {
    pub fn parse(file: &str) -> Result<Self, WheelError> {
        let bad = |reason: &str| WheelError::BadFileName {
            file: file.to_string(),
            reason: reason.to_string(),
        };
        let stem = file
            .strip_suffix(".whl")
            .ok_or_else(|| bad("it does not end in `.whl`"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build, tags) = match parts.as_slice() {
            [n, v, py, abi, plat] => (*n, *v, None, [*py, *abi, *plat]),
            [n, v, b, py, abi, plat] => (*n, *v, Some(*b), [*py, *abi, *plat]),
            _ => return Err(bad("expected name-version(-build)-python-abi-platform")),
        };
        if name.is_empty() || tags.iter().any(|t| t.is_empty()) {
            return Err(bad("a part is empty"));
        }
        if build.is_some_and(|b| !b.starts_with(|c: char| c.is_ascii_digit())) {
            return Err(bad("the build tag must start with a digit"));
        }
        let version = Version::from_str(version)
            .map_err(|e| bad(&format!("`{version}` is not a PEP 440 version: {e}")))?;
        let split = |t: &str| t.split('.').map(str::to_string).collect();
        Ok(Self {
            file: file.to_string(),
            name: name.to_string(),
            version,
            build: build.map(str::to_string),
            python_tags: split(tags[0]),
            abi_tags: split(tags[1]),
            platform_tags: split(tags[2]),
        })
    }

    /// The PEP 503 normalized project name.
    pub fn normalized(&self) -> String {
        normalize_name(&self.name)
    }

    /// Every `python-abi-platform` triple the name stands for.
    pub fn tags(&self) -> Vec<String> {
        let mut out = Vec::new();
        for py in &self.python_tags {
            for abi in &self.abi_tags {
                for plat in &self.platform_tags {
                    out.push(format!("{py}-{abi}-{plat}"));
                }
            }
        }
        out
    }
}

/// The fields of `*.dist-info/METADATA` jetforge uses.
#[derive(Debug, Clone)]
pub struct WheelMetadata {
    pub name: String,
    pub version: Version,
    pub requires_dist: Vec<Requirement>,
    pub requires_python: Option<String>,
}

/// A wheel on disk: its file name parts, its metadata and the `Tag` lines of its `WHEEL` file.
#[derive(Debug, Clone)]
pub struct WheelInfo {
    pub path: PathBuf,
    pub name: WheelName,
    pub metadata: WheelMetadata,
    pub wheel_tags: Vec<String>,
}

impl WheelInfo {
    pub fn read(path: &Path) -> Result<Self, WheelError> {
        let file_name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = WheelName::parse(&file_name)?;
        let file = File::open(path).map_err(|source| WheelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let zip_err = |source| WheelError::Zip {
            path: path.to_path_buf(),
            source,
        };
        let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(zip_err)?;
        let dist_info = dist_info_dir(&archive, path)?;
        let metadata_member = format!("{dist_info}/METADATA");
        let metadata_text = read_member(&mut archive, path, &metadata_member)?;
        let metadata =
            parse_metadata(&metadata_text).map_err(|reason| WheelError::BadMetadata {
                path: path.to_path_buf(),
                member: metadata_member,
                reason,
            })?;
        let wheel_text = read_member(&mut archive, path, &format!("{dist_info}/WHEEL"))?;
        Ok(Self {
            path: path.to_path_buf(),
            name,
            metadata,
            wheel_tags: header_values(&wheel_text, "Tag"),
        })
    }

    /// The file name, e.g. `torch-2.9.0-cp310-cp310-linux_aarch64.whl`.
    pub fn file(&self) -> &str {
        &self.name.file
    }

    /// The PEP 503 normalized project name, from `METADATA`.
    pub fn package(&self) -> String {
        normalize_name(&self.metadata.name)
    }
}

/// The one top-level `*.dist-info` directory that holds a `METADATA`.
fn dist_info_dir<R: Read + io::Seek>(
    archive: &zip::ZipArchive<R>,
    path: &Path,
) -> Result<String, WheelError> {
    let mut dirs: Vec<String> = archive
        .file_names()
        .filter_map(|n| n.ok())
        .filter_map(|n| n.strip_suffix("/METADATA").map(str::to_string))
        .filter(|d| d.ends_with(".dist-info") && !d.contains('/'))
        .collect();
    match dirs.len() {
        1 => Ok(dirs.remove(0)),
        0 => Err(WheelError::MissingMember {
            path: path.to_path_buf(),
            member: "*.dist-info/METADATA".to_string(),
        }),
        _ => Err(WheelError::BadMetadata {
            path: path.to_path_buf(),
            member: "*.dist-info".to_string(),
            reason: format!("more than one dist-info directory: {}", dirs.join(", ")),
        }),
    }
}

fn read_member<R: Read + io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    path: &Path,
    member: &str,
) -> Result<String, WheelError> {
    let mut entry = archive.by_name(member).map_err(|e| match e {
        zip::result::ZipError::FileNotFound => WheelError::MissingMember {
            path: path.to_path_buf(),
            member: member.to_string(),
        },
        source => WheelError::Zip {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let mut text = String::new();
    entry
        .read_to_string(&mut text)
        .map_err(|source| WheelError::Io {
            path: path.join(member),
            source,
        })?;
    Ok(text)
}

/// Values of header `key` in an email-style header block (stops at the first blank line, where
/// `METADATA` puts the description). Continuation lines are folded in.
fn header_values(text: &str, key: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current_matches = false;
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let (true, Some(last)) = (current_matches, out.last_mut()) {
                last.push(' ');
                last.push_str(line.trim());
            }
            continue;
        }
        current_matches = false;
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case(key) {
                out.push(v.trim().to_string());
                current_matches = true;
            }
        }
    }
    out
}

fn parse_metadata(text: &str) -> Result<WheelMetadata, String> {
    let one = |key: &str| {
        header_values(text, key)
            .into_iter()
            .next()
            .ok_or_else(|| format!("no `{key}:` header"))
    };
    let name = one("Name")?;
    let version_text = one("Version")?;
    let version = Version::from_str(&version_text)
        .map_err(|e| format!("`Version: {version_text}` is not PEP 440: {e}"))?;
    let requires_dist = header_values(text, "Requires-Dist")
        .iter()
        .map(|r| Requirement::from_str(r).map_err(|e| format!("`Requires-Dist: {r}`: {e}")))
        .collect::<Result<_, _>>()?;
    Ok(WheelMetadata {
        name,
        version,
        requires_dist,
        requires_python: header_values(text, "Requires-Python").into_iter().next(),
    })
}

/// Lowercase hex SHA-256 of a file, read in chunks.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let file = File::open(path).map_err(crate::paths::io_context("open", path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        hasher.update(chunk);
        let n = chunk.len();
        reader.consume(n);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wheelhouse::fixtures::TestWheel;

    #[test]
    fn normalizes_names_per_pep_503() {
        assert_eq!(normalize_name("Flash_Attn"), "flash-attn");
        assert_eq!(normalize_name("vllm.flash__attn-x"), "vllm-flash-attn-x");
        assert_eq!(normalize_name("torch"), "torch");
    }

    #[test]
    fn parses_plain_wheel_name() {
        let w = WheelName::parse("torch-2.9.0+cu126-cp310-cp310-linux_aarch64.whl").unwrap();
        assert_eq!(w.name, "torch");
        assert_eq!(w.version.to_string(), "2.9.0+cu126");
        assert_eq!(w.build, None);
        assert_eq!(w.tags(), ["cp310-cp310-linux_aarch64"]);
    }

    #[test]
    fn parses_build_tag_and_compressed_tags() {
        let w = WheelName::parse("Vllm_Flash_Attn-2.7.4-1local-py2.py3-none-any.whl").unwrap();
        assert_eq!(w.normalized(), "vllm-flash-attn");
        assert_eq!(w.build.as_deref(), Some("1local"));
        assert_eq!(w.tags(), ["py2-none-any", "py3-none-any"]);
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in [
            "torch-2.9.0.tar.gz",
            "torch-2.9.0-cp310-linux_aarch64.whl",
            "torch-2.9.0-x1-cp310-cp310-linux_aarch64.whl",
            "torch-notaversion-cp310-cp310-linux_aarch64.whl",
        ] {
            let err = WheelName::parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn reads_metadata_and_wheel_tags() {
        let dir = tempfile::tempdir().unwrap();
        let path = TestWheel::new("My_Pkg", "1.2.0")
            .requires(&["numpy<2", "triton==3.5.0; platform_machine == \"x86_64\""])
            .requires_python(">=3.9")
            .write(dir.path());
        let info = WheelInfo::read(&path).unwrap();
        assert_eq!(info.package(), "my-pkg");
        assert_eq!(info.metadata.version.to_string(), "1.2.0");
        assert_eq!(info.metadata.requires_dist.len(), 2);
        assert_eq!(info.metadata.requires_python.as_deref(), Some(">=3.9"));
        assert_eq!(info.wheel_tags, ["cp310-cp310-linux_aarch64"]);
        assert_eq!(info.file(), "My_Pkg-1.2.0-cp310-cp310-linux_aarch64.whl");
    }

    #[test]
    fn a_zip_without_metadata_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x-1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        zip.start_file("x/__init__.py", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.finish().unwrap();
        let err = WheelInfo::read(&path).unwrap_err().to_string();
        assert!(err.contains("has no `*.dist-info/METADATA`"), "{err}");
    }

    #[test]
    fn sha256_matches_known_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
