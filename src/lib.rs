//! jetforge: builds the LLM serving stack for NVIDIA Jetson Orin from declarative recipes.
//!
//! The library holds every engine (recipes, host facts, sources, builds, wheelhouse); the
//! `jetforge` binary only parses arguments, calls into it and renders results.

pub mod atomic;
pub mod builder;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cross;
pub mod diag;
pub mod doctor;
pub mod env;
pub mod envvars;
pub mod error;
pub mod fingerprint;
pub mod hash;
pub mod host;
pub mod jobs;
pub mod layout;
pub mod net;
pub mod pins;
pub mod pkgname;
pub mod plan;
pub mod process;
pub mod recipe;
pub mod redact;
pub mod report;
pub mod source;
pub mod state;
pub mod target;
pub mod venv;
pub mod verify;
pub mod wheelhouse;
