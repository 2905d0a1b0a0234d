//! Git redirection for build steps: a step that runs `git clone <upstream>` itself (torch's
//! NCCL, CMake FetchContent, a `git submodule update`) must reach jetforge's mirror cache, not
//! the network, or an air-gapped build fails hours in.
//!
//! Every git repository the set declares — recipe sources, their selected submodules (as the
//! cached mirrors record them) and `[[repository]]` entries — whose mirror is in the cache gets
//! `url.file://<mirror>.insteadOf <upstream>` (for the URL with and without `.git`), handed to
//! git through `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n` by `env`. Repositories
//! not in the cache yet are left alone (an online build still reaches them) and listed, so `plan`
//! can say what an offline build would miss. Nothing here fetches or writes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::recipe::{RecipeSet, Source, Submodules};
use crate::redact::redact;
use crate::repo_url::repo_key;
use crate::source::git::MirrorCache;

/// How many repositories not fetched yet the one-line summary names.
const SHOWN: usize = 3;

/// The redirects for one set, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Redirects {
    /// (upstream URL as declared, its mirror), one per repository whose mirror is cached.
    pub mirrors: Vec<(String, PathBuf)>,
    /// Declared repositories whose mirror is not in the cache.
    pub not_fetched: Vec<String>,
}

/// The redirects for every repository `set` declares.
pub fn for_set(set: &RecipeSet, cache: &MirrorCache) -> Redirects {
    // Keyed by repository, so `X` and `X.git` declared by two recipes are one redirect.
    let mut declared: BTreeMap<String, String> = BTreeMap::new();
    let mut add = |url: &str| {
        declared
            .entry(repo_key(url))
            .or_insert_with(|| url.to_string());
    };
    for r in &set.recipes {
        let mut pins: Vec<(&str, &str, &Submodules)> = Vec::new();
        if let Source::Git {
            url,
            commit,
            submodules,
            ..
        } = &r.source
        {
            pins.push((url, commit, submodules));
        }
        for x in &r.repositories {
            pins.push((&x.url, &x.commit, &x.submodules));
        }
        for (url, commit, submodules) in pins {
            add(url);
            for s in cache.cached_submodules(url, commit, submodules) {
                add(&s.url);
            }
        }
    }
    let mut out = Redirects::default();
    for url in declared.into_values() {
        let mirror = cache.mirror_path(&url);
        if mirror.join("HEAD").is_file() {
            out.mirrors.push((url, mirror));
        } else {
            out.not_fetched.push(url);
        }
    }
    out
}

impl Redirects {
    /// Git config (key, value) pairs: the `insteadOf` rules, and `protocol.file.allow` so that
    /// `git submodule update` accepts the redirected (file://) URLs too. Empty without mirrors.
    pub fn git_config(&self) -> Vec<(String, String)> {
        if self.mirrors.is_empty() {
            return Vec::new();
        }
        let mut out = vec![("protocol.file.allow".to_string(), "always".to_string())];
        for (url, mirror) in &self.mirrors {
            let key = format!("url.file://{}.insteadOf", mirror.display());
            // git picks the longest matching prefix, so `X.git` maps to the mirror itself
            // rather than to `<mirror>.git`.
            for variant in spellings(url) {
                out.push((key.clone(), variant));
            }
        }
        out
    }

    /// One line for people: "build steps clone N repositories from the mirror cache".
    pub fn summary(&self) -> String {
        let mut s = format!(
            "build steps clone {} repositor{} from the mirror cache",
            self.mirrors.len(),
            if self.mirrors.len() == 1 { "y" } else { "ies" }
        );
        if !self.not_fetched.is_empty() {
            let mut names: Vec<String> = self
                .not_fetched
                .iter()
                .take(SHOWN)
                .map(|u| redact(u))
                .collect();
            if self.not_fetched.len() > SHOWN {
                names.push(format!("and {} more", self.not_fetched.len() - SHOWN));
            }
            s.push_str(&format!(
                "; {} not fetched yet (offline builds cannot clone them): {}",
                self.not_fetched.len(),
                names.join(", ")
            ));
        }
        s
    }
}

/// The URL as declared and its twin with/without `.git`.
fn spellings(url: &str) -> Vec<String> {
    let bare = url.trim_end_matches('/');
    let twin = match bare.strip_suffix(".git") {
        Some(without) => without.to_string(),
        None => format!("{bare}.git"),
    };
    vec![bare.to_string(), twin]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mirror_answers_for_x_and_x_git() {
        let r = Redirects {
            mirrors: vec![(
                "https://github.com/NVIDIA/nccl".into(),
                PathBuf::from("/c/git-v1/nccl.git"),
            )],
            not_fetched: vec![],
        };
        let key = "url.file:///c/git-v1/nccl.git.insteadOf".to_string();
        assert_eq!(
            r.git_config(),
            vec![
                ("protocol.file.allow".into(), "always".into()),
                (key.clone(), "https://github.com/NVIDIA/nccl".into()),
                (key, "https://github.com/NVIDIA/nccl.git".into()),
            ]
        );
        assert!(Redirects::default().git_config().is_empty());
    }

    #[test]
    fn the_summary_names_what_an_offline_build_would_miss() {
        let r = Redirects {
            mirrors: vec![("https://h/a".into(), PathBuf::from("/m/a.git"))],
            not_fetched: vec!["https://h/b".into()],
        };
        assert_eq!(
            r.summary(),
            "build steps clone 1 repository from the mirror cache; 1 not fetched \
             yet (offline builds cannot clone them): https://h/b"
        );
    }
}
