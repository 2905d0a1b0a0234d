//! jetforge: builds the LLM serving stack for NVIDIA Jetson Orin from declarative recipes.
//!
//! The library holds every engine (recipes, host facts, sources, builds, wheelhouse); the
//! `jetforge` binary only parses arguments, calls into it and renders results.
//!
//! Modules import only from the layers below them, so there are no cycles (README, "Layout of
//! this repository"):
//! 1. plumbing with no jetforge imports, or only each other: `envvars`, `redact`, `diag`, `hash`,
//!    `pkgname`, `repo_url`, `atomic`, `private`, `paths`, `out`, `layout`, `process`, `report`;
//! 2. facts and settings: `recipe`, `host`, `config`, `error`, `venv`, `target` (with its
//!    `CrossSpec`), `jobs`, `net`, `fingerprint`, `state`, `compiler_cache`;
//! 3. engines: `build_reqs`, `cross`, `env`, `source`, `verify`, `wheelhouse`;
//! 4. `plan`, `pins`, `fetch_pins`, `doctor`;
//! 5. the build stage, `builder`;
//! 6. the CLI edge: `cli`, `commands` (with the terminal progress reporters).

/// Every `println!` of the crate writes through [`out`], which survives a closed stdout.
macro_rules! println {
    () => {
        $crate::out::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Every `print!` of the crate writes through [`out`], which survives a closed stdout.
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*))
    };
}

pub mod atomic;
pub mod build_reqs;
pub mod builder;
pub mod cli;
pub mod commands;
pub mod compiler_cache;
pub mod config;
pub mod cross;
pub mod diag;
pub mod doctor;
pub mod env;
pub mod envvars;
pub mod error;
pub mod fetch_pins;
pub mod fingerprint;
pub mod hash;
pub mod host;
pub mod jobs;
pub mod layout;
pub mod net;
pub mod out;
pub mod paths;
pub mod pins;
pub mod pkgname;
pub mod plan;
pub mod private;
pub mod process;
pub mod recipe;
pub mod redact;
pub mod repo_url;
pub mod report;
pub mod source;
pub mod state;
pub mod target;
#[cfg(test)]
mod testutil;
pub mod venv;
pub mod verify;
pub mod wheelhouse;
