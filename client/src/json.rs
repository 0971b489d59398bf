//! Serde views of items and orders: the shapes the `quorder` CLI prints with `--json`,
//! and that scripts and docs rely on. Field names and value formats here are a public
//! interface; change them only with the docs.
//!
//! - Order ids are 32 lower-case hex digits (a u128 does not fit a JSON number).
//! - `status` is `OrderStatus::name()`: committed, rejected, queued, cancelled, preparing.
//! - `reason` is null or a sentence; `reason_kind` is null or one of `insufficient_stock`,
//!   `unknown_sku`, `payment_declined`.

use quorder_proto::message::{Item, Order, OrderLineRecord, RejectReason};
use serde::Serialize;

/// An order id as printed and parsed: 32 lower-case hex digits.
pub fn format_order_id(order_id: u128) -> String {
    format!("{order_id:032x}")
}

/// Parses an order id: 1 to 32 hex digits (either case, optional `0x`), not zero.
pub fn parse_order_id(text: &str) -> Result<u128, String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.is_empty() || digits.len() > 32 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "'{text}' is not an order id: expected 1 to 32 hex digits"
        ));
    }
    match u128::from_str_radix(digits, 16) {
        Ok(0) => Err("order id 0 is not valid".to_string()),
        Ok(order_id) => Ok(order_id),
        Err(error) => Err(format!("'{text}' is not an order id: {error}")),
    }
}

/// An item record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemView {
    /// The item.
    pub sku: u64,
    /// Units that can be ordered.
    pub available: u64,
    /// Units held by orders in two-phase commit.
    pub reserved: u64,
    /// Units of committed orders.
    pub sold: u64,
    /// Unit price.
    pub price_cents: u64,
    /// Record version.
    pub version: u64,
}

impl From<&Item> for ItemView {
    fn from(item: &Item) -> ItemView {
        ItemView {
            sku: item.sku,
            available: item.available,
            reserved: item.reserved,
            sold: item.sold,
            price_cents: item.price_cents,
            version: item.version,
        }
    }
}

/// One line of an order record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderLineView {
    /// The item.
    pub sku: u64,
    /// Units.
    pub quantity: u64,
    /// Price per unit fixed when the order was applied.
    pub unit_price_cents: u64,
}

impl From<&OrderLineRecord> for OrderLineView {
    fn from(line: &OrderLineRecord) -> OrderLineView {
        OrderLineView {
            sku: line.sku,
            quantity: line.quantity,
            unit_price_cents: line.unit_price_cents,
        }
    }
}

/// An order record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderView {
    /// 32 lower-case hex digits.
    pub order_id: String,
    /// Customer number.
    pub customer: u64,
    /// committed, rejected, queued, cancelled or preparing.
    pub status: &'static str,
    /// Why the order was rejected, as a sentence; null otherwise.
    pub reason: Option<String>,
    /// Machine-readable kind of `reason`; null when there is none.
    pub reason_kind: Option<&'static str>,
    /// Sum of quantity × unit price.
    pub total_cents: u64,
    /// The lines with their prices.
    pub lines: Vec<OrderLineView>,
    /// Record version.
    pub version: u64,
}

impl From<&Order> for OrderView {
    fn from(order: &Order) -> OrderView {
        OrderView {
            order_id: format_order_id(order.order_id),
            customer: order.customer,
            status: order.status.name(),
            reason: order.reason.as_ref().map(describe_reason),
            reason_kind: order.reason.as_ref().map(reason_kind),
            total_cents: order.total_cents,
            lines: order.lines.iter().map(OrderLineView::from).collect(),
            version: order.version,
        }
    }
}

/// Answer of a ping.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PingView {
    /// Address of the node that answered.
    pub address: String,
    /// Shards of the cluster.
    pub shard_count: u32,
    /// Round trip in milliseconds (fractional).
    pub round_trip_ms: f64,
}

/// A rejection reason as a sentence, e.g. "insufficient stock for sku 5 (available 2)".
pub fn describe_reason(reason: &RejectReason) -> String {
    match reason {
        RejectReason::InsufficientStock { sku, available } => {
            format!("insufficient stock for sku {sku} (available {available})")
        }
        RejectReason::UnknownSku { sku } => format!("unknown sku {sku}"),
        RejectReason::PaymentDeclined { reason } => format!("payment declined: {reason}"),
    }
}

/// Machine-readable kind of a rejection reason.
pub fn reason_kind(reason: &RejectReason) -> &'static str {
    match reason {
        RejectReason::InsufficientStock { .. } => "insufficient_stock",
        RejectReason::UnknownSku { .. } => "unknown_sku",
        RejectReason::PaymentDeclined { .. } => "payment_declined",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorder_proto::message::OrderStatus;
    use serde_json::json;

    #[test]
    fn item_json_has_the_documented_shape() {
        let item = Item {
            sku: 5,
            available: 10,
            reserved: 1,
            sold: 2,
            price_cents: 199,
            version: 3,
        };
        let value = serde_json::to_value(ItemView::from(&item)).expect("serializable");
        assert_eq!(
            value,
            json!({"sku": 5, "available": 10, "reserved": 1, "sold": 2,
                   "price_cents": 199, "version": 3})
        );
    }

    #[test]
    fn order_json_has_the_documented_shape() {
        let order = Order {
            order_id: 0xab,
            customer: 7,
            lines: vec![OrderLineRecord {
                sku: 5,
                quantity: 2,
                unit_price_cents: 199,
            }],
            total_cents: 398,
            status: OrderStatus::Committed,
            reason: None,
            version: 1,
            created_ms: 10,
            updated_ms: 10,
        };
        let value = serde_json::to_value(OrderView::from(&order)).expect("serializable");
        assert_eq!(
            value,
            json!({"order_id": "000000000000000000000000000000ab", "customer": 7,
                   "status": "committed", "reason": null, "reason_kind": null,
                   "total_cents": 398, "version": 1,
                   "lines": [{"sku": 5, "quantity": 2, "unit_price_cents": 199}]})
        );
    }

    #[test]
    fn rejected_order_json_names_the_reason() {
        let order = Order {
            order_id: u128::MAX,
            customer: 1,
            lines: Vec::new(),
            total_cents: 0,
            status: OrderStatus::Rejected,
            reason: Some(RejectReason::InsufficientStock {
                sku: 5,
                available: 2,
            }),
            version: 1,
            created_ms: 0,
            updated_ms: 0,
        };
        let value = serde_json::to_value(OrderView::from(&order)).expect("serializable");
        assert_eq!(value["order_id"], json!("ffffffffffffffffffffffffffffffff"));
        assert_eq!(value["status"], json!("rejected"));
        assert_eq!(
            value["reason"],
            json!("insufficient stock for sku 5 (available 2)")
        );
        assert_eq!(value["reason_kind"], json!("insufficient_stock"));
    }

    #[test]
    fn order_ids_round_trip_and_bad_ones_are_refused() {
        let id = 0x0123_4567_89ab_cdef_0011_2233_4455_6677_u128;
        assert_eq!(parse_order_id(&format_order_id(id)), Ok(id));
        assert_eq!(parse_order_id("0xFF"), Ok(255));
        assert!(parse_order_id("").is_err());
        assert!(parse_order_id("xyz").is_err());
        assert!(parse_order_id("0").is_err());
        assert!(parse_order_id(&"1".repeat(33)).is_err());
        assert!(parse_order_id("+1").is_err());
    }
}
