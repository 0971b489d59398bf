//! `quorder-loadgen`: see `quorder_loadgen` and `loadgen/README.md`.
//!
//! Exit status: 0 when the run completed (errors of individual orders are in the report),
//! 1 when setup failed or an output file could not be written, 2 on a bad command line.

use clap::Parser;
use quorder_loadgen::{run, Args, Config};
use std::process::ExitCode;

fn main() -> ExitCode {
    let config = match Config::from_args(Args::parse()) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("quorder-loadgen: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&config) {
        Ok(outcome) => {
            print!("{}", outcome.report.to_json());
            if outcome.output_errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                for error in &outcome.output_errors {
                    eprintln!("quorder-loadgen: {error}");
                }
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("quorder-loadgen: {error}");
            ExitCode::from(1)
        }
    }
}
