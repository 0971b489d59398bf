//! `quorder`: the command-line client of a quorder cluster. See `quorder --help`.
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
