//! The wheelhouse: where built wheels are kept, checked and indexed.
//!
//! `wheel` reads wheel files (name, `METADATA`, `WHEEL`, hash), `check` decides whether a built
//! wheel is acceptable for its recipe, target and set, `store` keeps accepted wheels (atomic
//! adds, `broken/`, `manifest.json`) and `index` writes a PEP 503 simple index from what is on
//! disk. `published` is the manifest format that carries fingerprints to other machines,
//! `remote` looks up the build's remote wheel caches (through `net::index`, the package-index
//! client) and `publish` fills an index or a static tree. `verified` is the verification state of
//! a wheel and the attestations of a verification finished later on a device. Building wheels and running import
//! checks live elsewhere.

pub mod check;
pub mod export;
pub mod index;
pub mod publish;
pub mod published;
pub mod remote;
pub mod store;
pub mod verified;
pub mod wheel;

#[cfg(test)]
mod fixtures;

pub use check::{check_requirements, check_wheel, CheckError, CheckErrors};
pub use index::{write_index, write_simple_index, IndexedWheel};
pub use store::{EntryMeta, ManifestEntry, StoredWheel, Wheelhouse};
pub use wheel::{normalize_name, sha256_file, WheelInfo, WheelName};

// The crate's one atomic-write helper, under the name this module's files have always used.
use crate::atomic;
