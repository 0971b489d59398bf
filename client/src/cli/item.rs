//! `quorder item put | get | restock`.

use super::{Context, Failure};
use clap::Subcommand;
use quorder_client::json::ItemView;
use quorder_client::quorder_proto::message::Item;

#[derive(Debug, Subcommand)]
pub enum ItemCommand {
    /// Create an item or replace its available stock and price.
    Put {
        /// The item's SKU.
        #[arg(long, value_name = "N")]
        sku: u64,
        /// Units available to order.
        #[arg(long, value_name = "N")]
        available: u64,
        /// Unit price in cents.
        #[arg(long = "price-cents", value_name = "N")]
        price_cents: u64,
        /// Apply only if the item's version is V (0 for "does not exist yet").
        #[arg(long = "expected-version", value_name = "V")]
        expected_version: Option<u64>,
    },
    /// Read an item.
    Get {
        /// The item's SKU.
        #[arg(long, value_name = "N")]
        sku: u64,
    },
    /// Add units to an item's available stock. Not retried after an ambiguous failure
    /// (timeout, connection lost): check with `item get` before repeating it.
    Restock {
        /// The item's SKU.
        #[arg(long, value_name = "N")]
        sku: u64,
        /// Units to add.
        #[arg(long = "qty", value_name = "N")]
        quantity: u64,
    },
}

/// Runs an item command and prints the item.
pub fn run(context: &Context, command: ItemCommand) -> Result<(), Failure> {
    let mut client = context.connect()?;
    let item = match command {
        ItemCommand::Put {
            sku,
            available,
            price_cents,
            expected_version,
        } => client.put_item(sku, available, price_cents, expected_version)?,
        ItemCommand::Get { sku } => client.get_item(sku)?,
        ItemCommand::Restock { sku, quantity } => client.restock(sku, quantity)?,
    };
    print_item(context, &item)
}

fn print_item(context: &Context, item: &Item) -> Result<(), Failure> {
    let view = ItemView::from(item);
    context.output.print(&view, || {
        format!(
            "item {}: available {}, reserved {}, sold {}, price {} cents, version {}",
            view.sku, view.available, view.reserved, view.sold, view.price_cents, view.version
        )
    })
}
