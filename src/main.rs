use clap::Parser;

fn main() {
    // SIGPIPE stays ignored (Rust's default): a closed stdout is an EPIPE that `jetforge::out`
    // handles, so `jetforge list | head -1` exits 0 rather than 141.
    let cli = jetforge::cli::Cli::parse();
    let json = cli.global.json;
    if let Err(err) = jetforge::commands::run(cli) {
        // With --json the error is one JSON object on stderr: stdout stays data only.
        if json {
            eprintln!("{}", jetforge::error::render_json(&err));
        } else {
            eprintln!("{}", jetforge::error::render(&err));
        }
        std::process::exit(jetforge::error::exit_code(&err));
    }
}
