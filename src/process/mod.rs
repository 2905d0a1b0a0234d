//! Child processes: the one subprocess runner (build steps, verify, doctor probes, cross checks,
//! install) and the Ctrl-C/SIGTERM handling that stops a running step's process group.
//!
//! Below every stage: it knows nothing of recipes, plans or the wheelhouse.

pub mod interrupt;
pub mod runner;
