//! `quorder order place | get | cancel`.

use super::args::{parse_line, parse_order_id_argument};
use super::{Context, Failure};
use clap::Subcommand;
use quorder_client::json::{format_order_id, OrderView};
use quorder_client::quorder_proto::message::{Order, OrderLine, Payment, PlaceOrder};
use quorder_client::ClientError;
use std::fmt::Write as _;

#[derive(Debug, Subcommand)]
pub enum OrderCommand {
    /// Place an order. Prints the order with its status: committed, rejected (with the
    /// reason; exit status 0, it is a recorded outcome), or queued (payment pending).
    /// Placing again with the same --id returns the original outcome and never places
    /// a second order.
    Place {
        /// Order id, up to 32 hex digits; also the idempotency key. Without it a fresh
        /// id is made on the shard of the first line's SKU.
        #[arg(long, value_name = "HEX32", value_parser = parse_order_id_argument)]
        id: Option<u128>,
        /// Customer number.
        #[arg(long, value_name = "N")]
        customer: u64,
        /// An order line: SKU and quantity. Repeat for more lines.
        #[arg(
            long = "line",
            value_name = "SKU:QTY",
            required = true,
            num_args = 1..,
            value_parser = parse_line
        )]
        lines: Vec<OrderLine>,
        /// Pay by card with this gateway token (default: no external payment).
        #[arg(long = "card-token", value_name = "TOKEN")]
        card_token: Option<String>,
    },
    /// Read an order.
    Get {
        /// Order id (hex).
        #[arg(long, value_name = "HEX32", value_parser = parse_order_id_argument)]
        id: u128,
    },
    /// Cancel a committed order, releasing its stock. Not retried after an ambiguous
    /// failure (timeout, connection lost): check with `order get` before repeating it.
    Cancel {
        /// Order id (hex).
        #[arg(long, value_name = "HEX32", value_parser = parse_order_id_argument)]
        id: u128,
        /// Cancel only if the order's version is V.
        #[arg(long = "expected-version", value_name = "V")]
        expected_version: Option<u64>,
    },
}

/// Runs an order command and prints the order.
pub fn run(context: &Context, command: OrderCommand) -> Result<(), Failure> {
    let mut client = context.connect()?;
    let order = match command {
        OrderCommand::Place {
            id,
            customer,
            lines,
            card_token,
        } => {
            let first_sku = lines.first().map_or(0, |line| line.sku);
            let order_id = id.unwrap_or_else(|| client.new_order_id(first_sku));
            let request = PlaceOrder {
                order_id,
                customer,
                lines,
                payment: card_token.map_or(Payment::None, |token| Payment::Card { token }),
            };
            client
                .place_order(&request)
                .map_err(|error| place_failure(error, order_id))?
        }
        OrderCommand::Get { id } => client.get_order(id)?,
        OrderCommand::Cancel {
            id,
            expected_version,
        } => client.cancel_order(id, expected_version)?,
    };
    print_order(context, &order)
}

/// When the outcome of a placement is unknown, the id is what lets the user find it.
fn place_failure(error: ClientError, order_id: u128) -> Failure {
    let note = if error.is_retryable() {
        format!(
            "order id {}; run `order get --id` or place again with `--id` for the outcome",
            format_order_id(order_id)
        )
    } else {
        String::new()
    };
    Failure::from_client(error, &note)
}

fn print_order(context: &Context, order: &Order) -> Result<(), Failure> {
    let view = OrderView::from(order);
    context.output.print(&view, || human_order(&view))
}

fn human_order(view: &OrderView) -> String {
    let mut text = format!("order {} {}", view.order_id, view.status);
    if let Some(reason) = &view.reason {
        let _ = write!(text, ": {reason}");
    }
    let _ = write!(
        text,
        "\n  customer {}, total {} cents, version {}",
        view.customer, view.total_cents, view.version
    );
    if !view.lines.is_empty() {
        let _ = write!(
            text,
            "\n  {:>12} {:>10} {:>16}",
            "sku", "qty", "unit_price_cents"
        );
        for line in &view.lines {
            let _ = write!(
                text,
                "\n  {:>12} {:>10} {:>16}",
                line.sku, line.quantity, line.unit_price_cents
            );
        }
    }
    text
}
