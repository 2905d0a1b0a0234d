//! Sources: the git mirror cache and work trees checked out from it, patches and edits applied
//! to those trees, and the locks that keep two jetforge processes out of each other's way.
//!
//! `fetch` fills the cache ([`git::MirrorCache::fetch`]); `prepare` turns the cache into a
//! patched work tree ([`prepare::prepare_all`]). Nothing here reads the environment: network
//! decisions come from a [`crate::net::UrlPolicy`].

pub mod git;
pub mod lock;
pub mod patch;
pub mod prepare;
