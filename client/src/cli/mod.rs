//! Argument parsing and dispatch. Each command family lives in its own module and gets a
//! [`Context`] (addresses, timeouts, output mode); adding a command is one variant here
//! and one module beside this one.

mod args;
mod cluster;
mod item;
mod order;
mod output;
mod ping;
mod status;

use clap::{Parser, Subcommand};
use output::Output;
use quorder_client::{Client, ClientError, ClientOptions};
use std::process::ExitCode;
use std::time::Duration;

const AFTER_HELP: &str = "\
Exit status:
  0  success; also an order that was placed and REJECTED (insufficient stock, unknown SKU,
     payment declined): a rejection is a recorded outcome, printed with its status and
     reason, not a failure of the command. Scripts read \"status\" from --json output.
  1  the node refused the request (not found, version conflict, invalid field...)
  2  bad command line
  3  no answer, or a transient refusal: node unreachable, timeout, connection lost,
     overloaded, unavailable. Retrying later may succeed; `order place` may then be
     retried with the same --id to get the original outcome.

Examples:
  quorder ping
  quorder --json status
  quorder item put --sku 5 --available 100 --price-cents 1999
  quorder order place --customer 7 --line 5:2 --line 9:1
  quorder --json order get --id 0123456789abcdef0123456789abcdef
  quorder --addr node1:7400,node2:7400 --addr node3:7400 item get --sku 5
  quorder cluster local --nodes 3 --dir /tmp/quorder-local";

/// Command-line client of a quorder cluster.
#[derive(Debug, Parser)]
#[command(name = "quorder", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Node address; repeat the flag or separate with commas. The first reachable one
    /// is used; the others are failover targets.
    #[arg(
        long = "addr",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:7400",
        value_delimiter = ',',
        value_parser = args::parse_address,
        global = true
    )]
    addresses: Vec<String>,

    /// Print exactly one JSON object on stdout instead of human-readable text.
    #[arg(long, global = true)]
    json: bool,

    /// Deadline of the request in milliseconds, retries and failover included.
    #[arg(
        long = "timeout-ms",
        value_name = "N",
        default_value_t = 5000,
        value_parser = clap::value_parser!(u64).range(1..=3_600_000),
        global = true
    )]
    timeout_ms: u64,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check that a node answers; print the cluster's shard count and the round trip.
    Ping,
    /// Items: create or update, read, restock.
    #[command(subcommand)]
    Item(item::ItemCommand),
    /// Orders: place, read, cancel.
    #[command(subcommand)]
    Order(order::OrderCommand),
    /// The cluster: nodes, and per shard its primary, term and every mirror's commit index,
    /// applied index and state digest.
    Status,
    /// Local clusters: `cluster local` starts N nodes on this host and supervises them.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
}

/// What every command needs besides its own arguments.
pub struct Context {
    addresses: Vec<String>,
    options: ClientOptions,
    /// Where and how results are printed.
    pub output: Output,
}

impl Context {
    /// A client connected to the first reachable address.
    pub fn connect(&self) -> Result<Client, ClientError> {
        Client::connect(&self.addresses, self.options)
    }
}

/// A command's failure: the message for stderr and the exit status.
pub struct Failure {
    message: String,
    exit_code: u8,
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Failure {
        Failure::from_client(error, "")
    }
}

impl Failure {
    /// A failure from the library, with `note` appended to the message if not empty.
    pub fn from_client(error: ClientError, note: &str) -> Failure {
        // Retryable means "no answer yet": the caller may try again later.
        let exit_code = if error.is_retryable() { 3 } else { 1 };
        let mut message = error.to_string();
        if !note.is_empty() {
            message.push_str(" (");
            message.push_str(note);
            message.push(')');
        }
        Failure { message, exit_code }
    }
}

/// Parses the command line, runs the command, prints the result or the error.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let timeout = Duration::from_millis(cli.timeout_ms);
    let context = Context {
        addresses: cli.addresses,
        options: ClientOptions {
            request_timeout: timeout,
            connect_timeout: timeout.min(ClientOptions::default().connect_timeout),
        },
        output: Output::new(cli.json),
    };
    let result = match cli.command {
        Command::Ping => ping::run(&context),
        Command::Status => status::run(&context),
        Command::Item(command) => item::run(&context, command),
        Command::Order(command) => order::run(&context, command),
        Command::Cluster(command) => cluster::run(&context, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", output::one_line(&failure.message));
            ExitCode::from(failure.exit_code)
        }
    }
}
