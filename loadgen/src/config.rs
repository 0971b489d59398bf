//! Command line and its validation. `Args` is what clap parses; `Config::from_args` checks
//! every bound with a message that names the flag, and yields the run's configuration.

use crate::limits::{
    CONNECTIONS_MAX, PRICE_CENTS_DEFAULT, RATE_PER_S_MAX, REQUEST_TIMEOUT_MAX, RUN_DURATION_MAX,
    SATURATION_WINDOW_FRAMES_DEFAULT, SATURATION_WINDOW_FRAMES_MAX, SKUS_MAX, STOCK_DEFAULT,
};
use crate::orders::SkuRange;
use clap::Parser;
use quorder_proto::limits::{BATCH_OPERATIONS_MAX, ORDER_LINES_MAX, PRICE_CENTS_MAX, STOCK_MAX};
use std::path::PathBuf;
use std::time::Duration;

/// Default seed: fixed, so that two runs with the same flags send the same orders.
pub const SEED_DEFAULT: u64 = 0x5eed;

/// Open-loop load generator for quorder: places orders at a fixed rate (or as fast as a
/// fixed window allows), measures latency from each order's intended send time, and
/// prints a JSON report.
#[derive(Debug, Clone, Parser)]
#[command(name = "quorder-loadgen", version)]
pub struct Args {
    /// Client addresses of the nodes (HOST:PORT), repeated or comma-separated;
    /// connections are spread over them round-robin.
    #[arg(long = "addr", required = true, num_args = 1.., value_delimiter = ',')]
    pub addresses: Vec<String>,
    /// Orders per second across all connections (open loop).
    #[arg(long, required_unless_present = "max", conflicts_with = "max")]
    pub rate: Option<u64>,
    /// Saturation instead of a rate: each connection keeps --window frames in flight;
    /// latency is measured from the actual send.
    #[arg(long)]
    pub max: bool,
    /// Measured seconds (fractions allowed), after the warmup.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring; its orders are sent and recorded, not reported.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Connections (each with a sender thread).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Orders per frame; above 1 each frame is a Batch of PlaceOrder operations.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Frames in flight per connection with --max.
    #[arg(long, default_value_t = SATURATION_WINDOW_FRAMES_DEFAULT)]
    pub window: usize,
    /// Number of SKUs created at setup and ordered from.
    #[arg(long, default_value_t = 1000)]
    pub skus: u64,
    /// First SKU; the run uses SKUs sku-first .. sku-first + skus.
    #[arg(long, default_value_t = 1)]
    pub sku_first: u64,
    /// Lines per order (distinct SKUs, quantity 1 each).
    #[arg(long, default_value_t = 1)]
    pub lines: usize,
    /// Seed of the order generator.
    #[arg(long, default_value_t = SEED_DEFAULT)]
    pub seed: u64,
    /// Write the JSON report to this file too.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write one JSON line per acknowledged order to this file.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Available stock set on every SKU at setup.
    #[arg(long, default_value_t = STOCK_DEFAULT)]
    pub stock: u64,
    /// Unit price set on every SKU at setup.
    #[arg(long, default_value_t = PRICE_CENTS_DEFAULT)]
    pub price_cents: u64,
    /// Setup request timeout and end-of-run grace for outstanding orders, milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// Pacing of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// Open loop at this many orders per second.
    Rate(u64),
    /// Saturation with this many frames in flight per connection.
    Saturation {
        /// Frames in flight per connection.
        window_frames: usize,
    },
}

/// A checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Node addresses.
    pub addresses: Vec<String>,
    /// Rate or saturation.
    pub pacing: Pacing,
    /// Measured time.
    pub duration: Duration,
    /// Warmup before it.
    pub warmup: Duration,
    /// Connections.
    pub connections: usize,
    /// Orders per frame.
    pub batch: usize,
    /// SKUs ordered from.
    pub skus: SkuRange,
    /// Lines per order.
    pub lines: usize,
    /// PRNG seed.
    pub seed: u64,
    /// Report file.
    pub json_path: Option<PathBuf>,
    /// Record file.
    pub record_path: Option<PathBuf>,
    /// Stock per SKU.
    pub stock: u64,
    /// Price per SKU.
    pub price_cents: u64,
    /// Setup timeout and end-of-run grace.
    pub timeout: Duration,
    /// Print progress lines.
    pub progress: bool,
}

impl Config {
    /// Checks `args`; the error names the flag and the bound.
    pub fn from_args(args: Args) -> Result<Config, String> {
        if args
            .addresses
            .iter()
            .any(|address| address.trim().is_empty())
        {
            return Err("--addr: empty address".to_string());
        }
        let pacing = pacing(&args)?;
        let duration = seconds("--duration", args.duration)?;
        if duration.is_zero() {
            return Err("--duration must be above 0".to_string());
        }
        let warmup = seconds("--warmup", args.warmup)?;
        check_range(
            "--connections",
            args.connections as u64,
            1,
            CONNECTIONS_MAX as u64,
        )?;
        check_range("--batch", args.batch as u64, 1, BATCH_OPERATIONS_MAX as u64)?;
        check_range("--lines", args.lines as u64, 1, ORDER_LINES_MAX as u64)?;
        check_range("--skus", args.skus, 1, SKUS_MAX)?;
        if args.skus < args.lines as u64 {
            return Err(format!(
                "--skus ({}) must be at least --lines ({}): an order's SKUs are distinct",
                args.skus, args.lines
            ));
        }
        if args.sku_first.checked_add(args.skus).is_none() {
            return Err("--sku-first + --skus overflows a u64".to_string());
        }
        check_range("--stock", args.stock, 0, STOCK_MAX)?;
        check_range("--price-cents", args.price_cents, 0, PRICE_CENTS_MAX)?;
        let timeout_ms_max = REQUEST_TIMEOUT_MAX.as_millis() as u64;
        check_range("--timeout-ms", args.timeout_ms, 1, timeout_ms_max)?;
        Ok(Config {
            addresses: args
                .addresses
                .iter()
                .map(|a| a.trim().to_string())
                .collect(),
            pacing,
            duration,
            warmup,
            connections: args.connections,
            batch: args.batch,
            skus: SkuRange {
                first: args.sku_first,
                count: args.skus,
            },
            lines: args.lines,
            seed: args.seed,
            json_path: args.json,
            record_path: args.record,
            stock: args.stock,
            price_cents: args.price_cents,
            timeout: Duration::from_millis(args.timeout_ms),
            progress: !args.quiet,
        })
    }

    /// Frames in flight per connection at most.
    pub fn window_frames(&self) -> usize {
        match self.pacing {
            Pacing::Rate(_) => crate::limits::OPEN_LOOP_WINDOW_FRAMES,
            Pacing::Saturation { window_frames } => window_frames,
        }
    }
}

fn pacing(args: &Args) -> Result<Pacing, String> {
    match (args.rate, args.max) {
        (Some(rate), false) => {
            check_range("--rate", rate, 1, RATE_PER_S_MAX)?;
            Ok(Pacing::Rate(rate))
        }
        (None, true) => {
            let window = args.window as u64;
            check_range("--window", window, 1, SATURATION_WINDOW_FRAMES_MAX as u64)?;
            Ok(Pacing::Saturation {
                window_frames: args.window,
            })
        }
        _ => Err("give exactly one of --rate N and --max".to_string()),
    }
}

fn seconds(flag: &str, value: f64) -> Result<Duration, String> {
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{flag} must be a number of seconds, 0 or more"));
    }
    if value > RUN_DURATION_MAX.as_secs_f64() {
        return Err(format!(
            "{flag} must be at most {} seconds",
            RUN_DURATION_MAX.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(value))
}

fn check_range(flag: &str, value: u64, low: u64, high: u64) -> Result<(), String> {
    if value < low || value > high {
        return Err(format!("{flag} must be in {low}..={high}, got {value}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Config, String> {
        let words = std::iter::once("quorder-loadgen").chain(line.split_whitespace());
        let args = Args::try_parse_from(words).map_err(|error| error.to_string())?;
        Config::from_args(args)
    }

    #[test]
    fn defaults_and_rate() {
        let config = parse("--addr 127.0.0.1:7000 --rate 500").expect("valid");
        assert_eq!(config.pacing, Pacing::Rate(500));
        assert_eq!(config.duration, Duration::from_secs(10));
        assert_eq!(config.connections, 4);
        assert_eq!(
            config.skus,
            SkuRange {
                first: 1,
                count: 1000
            }
        );
        assert_eq!(config.seed, SEED_DEFAULT);
        assert_eq!(config.stock, STOCK_DEFAULT);
        assert_eq!(config.timeout, Duration::from_secs(5));
        assert_eq!(
            config.window_frames(),
            crate::limits::OPEN_LOOP_WINDOW_FRAMES
        );
    }

    #[test]
    fn several_addresses_and_max() {
        let config =
            parse("--addr a:1,b:2 --addr c:3 --max --window 8 --duration 2.5").expect("valid");
        assert_eq!(config.addresses, ["a:1", "b:2", "c:3"]);
        assert_eq!(config.pacing, Pacing::Saturation { window_frames: 8 });
        assert_eq!(config.duration, Duration::from_millis(2500));
    }

    #[test]
    fn refusals_name_the_flag() {
        let error = |line: &str| parse(line).expect_err(line);
        assert!(error("--addr a:1").contains("--rate"));
        assert!(error("--addr a:1 --rate 5 --max").contains("--max"));
        assert!(error("--rate 5").contains("--addr"));
        assert!(error("--addr a:1 --rate 0").contains("--rate"));
        assert!(error("--addr a:1 --rate 5 --duration 0").contains("--duration"));
        assert!(error("--addr a:1 --rate 5 --duration=-1").contains("--duration"));
        assert!(error("--addr a:1 --rate 5 --batch 257").contains("--batch"));
        assert!(error("--addr a:1 --rate 5 --lines 65").contains("--lines"));
        assert!(error("--addr a:1 --rate 5 --skus 2 --lines 3").contains("--skus"));
        assert!(error("--addr a:1 --max --window 0").contains("--window"));
        assert!(error("--addr a:1 --rate 5 --timeout-ms 0").contains("--timeout-ms"));
        assert!(error("--addr a:1 --rate 5 --connections 0").contains("--connections"));
        let overflow = format!("--addr a:1 --rate 5 --sku-first {}", u64::MAX);
        assert!(error(&overflow).contains("--sku-first"));
    }
}
