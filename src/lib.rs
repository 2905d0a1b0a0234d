//! jetforge: builds the LLM serving stack for NVIDIA Jetson Orin from declarative recipes.
//!
//! The library holds every engine (recipes, host facts, sources, builds, wheelhouse); the
//! `jetforge` binary only parses arguments, calls into it and renders results.

pub mod recipe;
pub mod host;
pub mod jobs;
pub mod net;
pub mod redact;
pub mod source;
