//! The build stage, one concern per module: `driver` (orchestration: order, keep-going, the
//! summary hand-off), `cache` (fingerprints and the one cache decision, which `plan` uses too),
//! `build_venv` (the build venv), `steps` (steps with resume and OOM retry, failure and replay
//! messages), `wheels` (the wheels the steps wrote, their checks, the set-wide pin check),
//! `verify` and `verify_venv` (the hand-off to verify), `summary` (outcomes and the table),
//! `timings` (step measurements and learned memory per job) and `timings_report` (the HTML
//! report).
//! Shared plumbing it uses lives below it: `process` (the runner), `report` (progress events),
//! `venv`, `source::phase` (fetch and prepare), `state` (resume state).
//!
//! Named `builder/`, not `build/`: many `.gitignore` templates and tools skip a `build/` folder.

mod build_venv;
pub mod cache;
pub mod driver;
mod steps;
pub mod summary;
pub mod timings;
pub mod timings_report;
mod verify;
pub mod verify_venv;
mod wheels;
