//! jetforge: builds the LLM serving stack for NVIDIA Jetson Orin from declarative recipes.
//!
//! The library holds every engine (recipes, host facts, sources, builds, wheelhouse); the
//! `jetforge` binary only parses arguments, calls into it and renders results.

pub mod build;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cross;
pub mod doctor;
pub mod env;
pub mod envvars;
pub mod error;
pub mod fetch_pins;
pub mod fingerprint;
pub mod host;
pub mod jobs;
pub mod layout;
pub mod net;
pub mod pins;
pub mod plan;
pub mod recipe;
pub mod redact;
pub mod source;
pub mod target;
pub mod verify;
pub mod wheelhouse;
