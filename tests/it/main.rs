//! The one integration test binary: drives the real `jetforge` CLI (and, where a server is
//! involved, the library) against temp dirs and servers on 127.0.0.1.

mod build;
mod ccache;
mod clear_errors;
mod cli;
mod cross;
mod doctor;
mod epipe;
mod fixtures;
mod git;
mod net;
mod plan;
mod proxy_errors;
mod publish;
mod recipe_errors;
mod recipe_truth;
mod security;
mod sets;
mod signals;
mod src_e2e;
mod src_offline;
mod support;
mod tree_output;
mod util;
