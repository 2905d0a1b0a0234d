//! Building: the step runner, progress reporting, and the build driver.

pub mod driver;
