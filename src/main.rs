use clap::Parser;

fn main() {
    // A closed pipe (`jetforge plan | head`) ends the output quietly instead of panicking in
    // println!; children get the default disposition they would get from a shell anyway.
    // SAFETY: called before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = jetforge::cli::Cli::parse();
    if let Err(err) = jetforge::commands::run(cli) {
        eprintln!("{}", jetforge::error::render(&err));
        std::process::exit(jetforge::error::exit_code(&err));
    }
}
