//! The one integration test binary: drives the real `jetforge` CLI (and, where a server is
//! involved, the library) against temp dirs and servers on 127.0.0.1.

mod build;
mod cli;
mod cross;
mod doctor;
mod fixtures;
mod git;
mod net;
mod noop;
mod plan;
mod publish;
mod recipe_errors;
mod sets;
mod src_e2e;
mod support;
mod util;
