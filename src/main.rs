use clap::Parser;

fn main() {
    // SIGPIPE stays ignored (Rust's default): a closed stdout is an EPIPE that `jetforge::out`
    // handles, so `jetforge list | head -1` exits 0 rather than 141.
    let cli = jetforge::cli::Cli::parse();
    if let Err(err) = jetforge::commands::run(cli) {
        eprintln!("{}", jetforge::error::render(&err));
        std::process::exit(jetforge::error::exit_code(&err));
    }
}
