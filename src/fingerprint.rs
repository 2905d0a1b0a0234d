//! Cache keys: a recipe's fingerprint decides whether a wheel in the wheelhouse (or a remote
//! cache) is the one this build would produce.
//!
//! | input                        | part name              | why                                        |
//! |------------------------------|------------------------|--------------------------------------------|
//! | format version               | (prefix)               | a change of this scheme never matches old keys |
//! | recipe content, canonical    | `recipe`               | env, steps, edits, pins, resource hashes; comments and layout don't count |
//! | each patch's bytes           | `patch <file>`         | a changed patch changes the code           |
//! | resolved source commit       | `commit`               | the code itself                            |
//! | each submodule's commit      | `submodule <path>`     | recorded by the superproject, but say which one moved |
//! | first-use resource digests   | `resource <name>`      | not in the recipe: recorded by the first `fetch` |
//! | target profile               | `target`               | arch, CUDA archs, Python ABI, platform tag |
//! | CUDA toolkit version         | `cuda`                 | the same source builds different binaries  |
//! | each dependency's fingerprint| `dependency <name>`    | a rebuilt torch means rebuilding vLLM      |
//!
//! Not included: MAX_JOBS, proxy settings, mirrors, work-dir paths, timestamps — they do not
//! change what is built. Hashing is SHA-256 over a canonical byte form (never std's hashers,
//! which differ between runs), so keys are stable across runs and machines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hash::sha256_hex;

use crate::recipe::Recipe;
use crate::target::Target;

/// Bump when the inputs or their encoding change.
pub const FORMAT: &str = "jetforge-fingerprint-v1";

/// What goes into one recipe's key.
pub struct Inputs<'a> {
    pub recipe: &'a Recipe,
    /// The commit actually checked out (None for local path sources: their content is hashed
    /// by the caller into `tree_hash`).
    pub commit: Option<&'a str>,
    /// (path, commit) of every submodule, recursively.
    pub submodules: &'a [(String, String)],
    /// A content hash of a local source tree, for `path` sources.
    pub tree_hash: Option<&'a str>,
    pub target: &'a Target,
    pub cuda_version: Option<&'a str>,
    /// (name, fingerprint) of each dependency recipe.
    pub deps: &'a [(String, String)],
    /// (name, recorded sha256) of each resource trusted on first use.
    pub first_use: &'a [(String, String)],
}

/// A fingerprint with the hash of each part, so a rebuild can say what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub hash: String,
    pub parts: BTreeMap<String, String>,
}

/// The recipe text in a canonical form: parsed and re-serialized as JSON with sorted keys, so
/// comments, whitespace and key order do not matter.
pub fn canonical_recipe(text: &str) -> String {
    match toml::from_str::<toml::Value>(text) {
        Ok(v) => canonical_json(&serde_json::to_value(v).unwrap_or_default()),
        Err(_) => text.to_string(),
    }
}

fn canonical_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let sorted: BTreeMap<&String, String> =
                m.iter().map(|(k, v)| (k, canonical_json(v))).collect();
            let items: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::Value::String((*k).clone())))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        serde_json::Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical_json).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

pub fn compute(i: &Inputs) -> Fingerprint {
    let mut parts = BTreeMap::new();
    parts.insert(
        "recipe".to_string(),
        sha256_hex(canonical_recipe(&i.recipe.text).as_bytes()),
    );
    for p in &i.recipe.patches {
        parts.insert(format!("patch {}", p.file), sha256_hex(&p.bytes));
    }
    if let Some(c) = i.commit {
        parts.insert("commit".to_string(), c.to_string());
    }
    if let Some(t) = i.tree_hash {
        parts.insert("source tree".to_string(), t.to_string());
    }
    for (path, commit) in i.submodules {
        parts.insert(format!("submodule {path}"), commit.clone());
    }
    for (name, sha256) in i.first_use {
        parts.insert(format!("resource {name}"), sha256.clone());
    }
    let target = serde_json::json!({
        "arch": i.target.arch,
        "cuda_arch_list": i.target.cuda_arch_list,
        "python": i.target.python_version,
        "platform_tag": i.target.platform_tag,
        "cuda_home": i.target.cuda_home,
    });
    parts.insert(
        "target".to_string(),
        sha256_hex(canonical_json(&target).as_bytes()),
    );
    parts.insert(
        "cuda".to_string(),
        i.cuda_version.unwrap_or("none").to_string(),
    );
    for (name, fp) in i.deps {
        parts.insert(format!("dependency {name}"), fp.clone());
    }
    let mut h = Sha256::new();
    h.update(FORMAT.as_bytes());
    for (k, v) in &parts {
        // Length-prefixed so no two different part lists encode to the same bytes.
        h.update((k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
        h.update((v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    }
    Fingerprint {
        hash: hex::encode(h.finalize()),
        parts,
    }
}

/// Why a recipe must rebuild, comparing the fingerprint of the last build with the new one.
pub fn explain(old: Option<&Fingerprint>, new: &Fingerprint) -> Vec<String> {
    let Some(old) = old else {
        return vec!["not built before".to_string()];
    };
    if old.hash == new.hash {
        return Vec::new();
    }
    let mut why = Vec::new();
    for (k, v) in &new.parts {
        match old.parts.get(k) {
            None => why.push(format!("{k} added")),
            Some(o) if o != v => why.push(match k.strip_prefix("dependency ") {
                Some(dep) => format!("dependency {dep} rebuilt"),
                None => format!("{k} changed"),
            }),
            Some(_) => {}
        }
    }
    why.extend(
        old.parts
            .keys()
            .filter(|k| !new.parts.contains_key(*k))
            .map(|k| format!("{k} removed")),
    );
    if why.is_empty() {
        why.push("the fingerprint format changed".to_string());
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::tree::FileTree;

    fn recipe(text: &str) -> Recipe {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("r")).unwrap();
        std::fs::write(dir.path().join("r/x.toml"), text).unwrap();
        std::fs::create_dir_all(dir.path().join("patches/x")).unwrap();
        std::fs::write(dir.path().join("patches/x/0001-a.patch"), "diff").unwrap();
        let tree = FileTree::read_dir(&dir.path().join("r")).unwrap();
        let patches = FileTree::read_dir(&dir.path().join("patches")).unwrap();
        let sets = crate::recipe::load_sets(&tree, &patches, "s").unwrap();
        sets.sets[0].recipes[0].clone()
    }

    const TEXT: &str = "[package]\nname = \"x\"\nversion = \"1\"\n[source]\ngit = \"https://h/x\"\ncommit = \"0123456789012345678901234567890123456789\"\n[[patch]]\nfile = \"x/0001-a.patch\"\n[build]\nsteps = [\"true\"]\n";

    fn target() -> Target {
        crate::target::load_targets(&FileTree::empty("x"))
            .unwrap()
            .into_iter()
            .find(|t| t.name == crate::target::DEFAULT_TARGET)
            .unwrap()
    }

    fn fp(r: &Recipe, deps: &[(String, String)]) -> Fingerprint {
        compute(&Inputs {
            recipe: r,
            commit: Some("0123456789012345678901234567890123456789"),
            submodules: &[("third_party/a".into(), "aa".into())],
            tree_hash: None,
            target: &target(),
            cuda_version: Some("12.6.68"),
            deps,
            first_use: &[],
        })
    }

    /// A first-use resource has no digest in the recipe text; the recorded one must count.
    #[test]
    fn a_recorded_first_use_digest_is_part_of_the_key() {
        let r = recipe(TEXT);
        let with = |sha: &str| {
            compute(&Inputs {
                recipe: &r,
                commit: None,
                submodules: &[],
                tree_hash: None,
                target: &target(),
                cuda_version: None,
                deps: &[],
                first_use: &[("llvm".into(), sha.into())],
            })
        };
        let (a, b) = (with("aa"), with("bb"));
        assert_ne!(a.hash, b.hash);
        assert_eq!(a.parts["resource llvm"], "aa");
    }

    #[test]
    fn stable_and_blind_to_comments_and_layout() {
        let a = fp(&recipe(TEXT), &[]);
        let b = fp(
            &recipe(&format!("# a comment\n{}", TEXT.replace(" = ", "="))),
            &[],
        );
        assert_eq!(a.hash, b.hash);
        // A fixed value: the key must not change between runs, machines or releases by accident.
        assert_eq!(
            a.hash,
            "20f61123aa6fc984c5422bf2f740132c9df8e7519cfa20ad06a8b3d59dd65c10"
        );
        assert_eq!(a, fp(&recipe(TEXT), &[]));
    }

    #[test]
    fn explains_what_changed() {
        let r = recipe(TEXT);
        let base = fp(&r, &[("torch".into(), "1".into())]);
        let dep = fp(&r, &[("torch".into(), "2".into())]);
        assert_eq!(explain(Some(&base), &dep), ["dependency torch rebuilt"]);
        let mut patched = r.clone();
        patched.patches[0].bytes = b"other".to_vec();
        assert_eq!(
            explain(Some(&base), &fp(&patched, &[("torch".into(), "1".into())])),
            ["patch x/0001-a.patch changed"]
        );
        assert_eq!(explain(None, &base), ["not built before"]);
        assert!(explain(Some(&base), &base).is_empty());
        let env = recipe(&TEXT.replace("[build]", "[env]\nA = \"1\"\n[build]"));
        assert_eq!(
            explain(Some(&base), &fp(&env, &[("torch".into(), "1".into())])),
            ["recipe changed"]
        );
    }
}
