//! Sources: the git mirror cache and work trees checked out from it, resources downloaded and
//! checksummed, patches and edits applied to the trees, and the locks that keep two jetforge
//! processes out of each other's way.
//!
//! `fetch` fills the caches ([`git::MirrorCache::fetch`], [`resource::fetch_resource`]);
//! `prepare` turns the cache into a patched work tree ([`prepare::prepare_all`]); `phase` is the
//! fetch-then-prepare phase of `fetch`, `prepare` and `build` over many recipes. Nothing here
//! reads the environment: network decisions come from a [`crate::net::UrlPolicy`], and nothing
//! here knows plans: `phase` takes what it needs through [`phase::TreePlan`].

pub mod first_use;
pub mod git;
pub mod lock;
pub mod patch;
pub mod phase;
pub mod prepare;
pub mod redirect;
pub mod resource;
