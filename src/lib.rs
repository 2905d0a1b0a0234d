//! jetforge: builds the LLM serving stack for NVIDIA Jetson Orin from declarative recipes.
//!
//! The library holds every engine (recipes, host facts, sources, builds, wheelhouse); the
//! `jetforge` binary only parses arguments, calls into it and renders results.

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

pub mod build;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cross;
pub mod doctor;
pub mod env;
pub mod envvars;
pub mod error;
pub mod fingerprint;
pub mod host;
pub mod jobs;
pub mod layout;
pub mod net;
pub mod out;
pub mod paths;
pub mod pins;
pub mod plan;
pub mod recipe;
pub mod redact;
pub mod source;
pub mod target;
pub mod verify;
pub mod wheelhouse;
