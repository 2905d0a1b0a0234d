//! The one integration test binary: drives the real `jetforge` CLI against temp dirs.

mod cli;
mod plan;
mod recipe_errors;
mod util;
