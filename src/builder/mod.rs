//! The build stage: orchestration, steps with resume and OOM retry, the hand-off to verify, the
//! summary. Shared plumbing it uses lives below it: `process` (the runner), `report` (progress
//! events), `venv`, `source::phase` (fetch and prepare), `state` (resume state).
//!
//! Named `builder/`, not `build/`: many `.gitignore` templates and tools skip a `build/` folder.

mod build_venv;
pub mod cache;
pub mod driver;
mod steps;
pub mod summary;
mod verify;
pub mod verify_venv;
mod wheels;
