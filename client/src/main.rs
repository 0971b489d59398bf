//! `quorder`: the command-line client of a quorder cluster. See `quorder --help`.
// `unsafe` only where a module allows it: cli::cluster::unix (signals, kill, flock).
#![deny(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
