//! Range and schema checks on a validated archive, done at the front door before an
//! operation reaches a shard (DESIGN.md §4 step 1). A failure names the field.

use crate::limits::{
    LINE_QUANTITY_MAX, ORDER_LINES_MAX, PAYMENT_TOKEN_BYTES_MAX, PRICE_CENTS_MAX, STOCK_MAX,
};
use crate::message::{ArchivedOperation, ArchivedPayment, ArchivedPlaceOrder, ErrorReply};

fn invalid(field: &str, reason: impl Into<String>) -> ErrorReply {
    ErrorReply::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// Checks every range the protocol defines for `operation`.
pub fn validate_operation(operation: &ArchivedOperation) -> Result<(), ErrorReply> {
    match operation {
        ArchivedOperation::Ping { .. } | ArchivedOperation::GetItem { .. } => Ok(()),
        ArchivedOperation::PutItem(put) => {
            if put.available.to_native() > STOCK_MAX {
                return Err(invalid("available", format!("must be at most {STOCK_MAX}")));
            }
            if put.price_cents.to_native() > PRICE_CENTS_MAX {
                return Err(invalid(
                    "price_cents",
                    format!("must be at most {PRICE_CENTS_MAX}"),
                ));
            }
            Ok(())
        }
        ArchivedOperation::Restock { quantity, .. } => {
            let quantity = quantity.to_native();
            if quantity == 0 || quantity > LINE_QUANTITY_MAX {
                return Err(invalid(
                    "quantity",
                    format!("must be in 1..={LINE_QUANTITY_MAX}"),
                ));
            }
            Ok(())
        }
        ArchivedOperation::PlaceOrder(order) => validate_place_order(order),
        ArchivedOperation::GetOrder { order_id }
        | ArchivedOperation::CancelOrder { order_id, .. } => {
            if order_id.to_native() == 0 {
                return Err(invalid("order_id", "must not be zero"));
            }
            Ok(())
        }
    }
}

fn validate_place_order(order: &ArchivedPlaceOrder) -> Result<(), ErrorReply> {
    if order.order_id.to_native() == 0 {
        return Err(invalid("order_id", "must not be zero"));
    }
    let line_count = order.lines.len();
    if line_count == 0 || line_count > ORDER_LINES_MAX {
        return Err(invalid(
            "lines",
            format!("must have 1..={ORDER_LINES_MAX} lines, got {line_count}"),
        ));
    }
    for (position, line) in order.lines.iter().enumerate() {
        let quantity = line.quantity.to_native();
        if quantity == 0 || quantity > LINE_QUANTITY_MAX {
            return Err(invalid(
                "lines.quantity",
                format!("line {position}: must be in 1..={LINE_QUANTITY_MAX}, got {quantity}"),
            ));
        }
        let sku = line.sku.to_native();
        // Quadratic, but over at most ORDER_LINES_MAX lines and with no allocation.
        if order
            .lines
            .iter()
            .take(position)
            .any(|earlier| earlier.sku.to_native() == sku)
        {
            return Err(invalid(
                "lines.sku",
                format!("sku {sku} appears in more than one line"),
            ));
        }
    }
    if let ArchivedPayment::Card { token } = &order.payment {
        if token.is_empty() || token.len() > PAYMENT_TOKEN_BYTES_MAX {
            return Err(invalid(
                "payment.token",
                format!("must have 1..={PAYMENT_TOKEN_BYTES_MAX} bytes"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{access_operation, encode_operation};
    use crate::message::{Operation, OrderLine, Payment, PlaceOrder};

    fn check(operation: &Operation) -> Result<(), ErrorReply> {
        let bytes = encode_operation(operation).expect("encode");
        validate_operation(access_operation(&bytes).expect("access"))
    }

    fn order(lines: Vec<OrderLine>) -> Operation {
        Operation::PlaceOrder(PlaceOrder {
            order_id: 7,
            customer: 1,
            lines,
            payment: Payment::None,
        })
    }

    #[test]
    fn accepts_a_normal_order() {
        assert_eq!(
            check(&order(vec![OrderLine {
                sku: 1,
                quantity: 2
            }])),
            Ok(())
        );
    }

    #[test]
    fn refuses_out_of_range_fields() {
        let field = |result: Result<(), ErrorReply>| match result {
            Err(ErrorReply::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        };
        assert_eq!(field(check(&order(vec![]))), "lines");
        assert_eq!(
            field(check(&order(vec![OrderLine {
                sku: 1,
                quantity: 0
            }]))),
            "lines.quantity"
        );
        assert_eq!(
            field(check(&order(vec![OrderLine {
                sku: 1,
                quantity: LINE_QUANTITY_MAX + 1
            }]))),
            "lines.quantity"
        );
        let duplicate = vec![
            OrderLine {
                sku: 3,
                quantity: 1,
            },
            OrderLine {
                sku: 3,
                quantity: 1,
            },
        ];
        assert_eq!(field(check(&order(duplicate))), "lines.sku");
        let too_many = (0..=ORDER_LINES_MAX as u64)
            .map(|sku| OrderLine { sku, quantity: 1 })
            .collect();
        assert_eq!(field(check(&order(too_many))), "lines");
        assert_eq!(
            field(check(&Operation::GetOrder { order_id: 0 })),
            "order_id"
        );
        assert_eq!(
            field(check(&Operation::Restock {
                sku: 1,
                quantity: 0
            })),
            "quantity"
        );
        let card = Operation::PlaceOrder(PlaceOrder {
            order_id: 9,
            customer: 1,
            lines: vec![OrderLine {
                sku: 1,
                quantity: 1,
            }],
            payment: Payment::Card {
                token: String::new(),
            },
        });
        assert_eq!(field(check(&card)), "payment.token");
    }
}
