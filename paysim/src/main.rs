//! `quorder-paysim`: the payment-gateway simulator of milestone M3. It has no gateway yet;
//! it says so instead of pretending to run.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("quorder-paysim: the payment-gateway simulator is not built yet (milestone M3)");
    ExitCode::from(2)
}
