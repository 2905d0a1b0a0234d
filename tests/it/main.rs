//! The one integration test binary: drives the real `jetforge` CLI (and, where a server is
//! involved, the library) against temp dirs and servers on 127.0.0.1.

mod build;
mod build_reqs;
mod ccache;
mod clear_errors;
mod cli;
mod cross;
mod deferred_verify;
mod doctor;
mod epipe;
mod export;
mod fixtures;
mod git;
mod json_errors;
mod net;
mod new;
mod noop;
mod plan;
mod proxy_errors;
mod publish;
mod recipe_errors;
mod recipe_truth;
mod recipe_ux;
mod schema;
mod security;
mod sets;
mod shell_env;
mod signals;
mod src_e2e;
mod src_offline;
mod support;
mod timings;
mod tree_output;
mod util;
mod verify_install;
mod wheelhouse_flag;
