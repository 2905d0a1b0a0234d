//! Building: the step runner, progress reporting, and the build driver.

pub mod driver;
pub mod interrupt;
pub mod progress;
pub mod runner;
pub mod sources;
pub mod state;
pub mod venv;
pub mod verify_venv;
