//! Building: the step runner, progress reporting, and the build driver.

pub mod driver;
pub mod progress;
pub mod sources;
pub mod state;
pub mod venv;
