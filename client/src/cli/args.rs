//! Parsers of argument values; clap names the argument in front of each message.

use quorder_client::json::parse_order_id;
use quorder_client::quorder_proto::message::OrderLine;

/// `HOST:PORT` with a numeric port and a non-empty host.
pub fn parse_address(text: &str) -> Result<String, String> {
    let text = text.trim();
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("'{text}' is not HOST:PORT"));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!(
            "'{text}' is not HOST:PORT with a port in 0..=65535"
        ));
    }
    Ok(text.to_string())
}

/// An order id: 1 to 32 hex digits, not zero.
pub fn parse_order_id_argument(text: &str) -> Result<u128, String> {
    parse_order_id(text.trim())
}

/// `SKU:QTY`, two unsigned integers, the quantity at least 1.
pub fn parse_line(text: &str) -> Result<OrderLine, String> {
    let shape = || format!("'{text}' is not SKU:QTY (two unsigned integers, e.g. 17:2)");
    let (sku, quantity) = text.trim().split_once(':').ok_or_else(shape)?;
    let sku = sku.trim().parse::<u64>().map_err(|_| shape())?;
    let quantity = quantity.trim().parse::<u64>().map_err(|_| shape())?;
    if quantity == 0 {
        return Err(format!("'{text}': the quantity must be at least 1"));
    }
    Ok(OrderLine { sku, quantity })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_line("17:2"),
            Ok(OrderLine {
                sku: 17,
                quantity: 2
            })
        );
        assert!(parse_line("17").is_err_and(|message| message.contains("SKU:QTY")));
        assert!(parse_line("a:2").is_err());
        assert!(parse_line("1:-2").is_err());
        assert!(parse_line("1:0").is_err_and(|message| message.contains("at least 1")));
    }

    #[test]
    fn addresses_need_a_port() {
        assert!(parse_address("127.0.0.1:7400").is_ok());
        assert!(parse_address("[::1]:7400").is_ok());
        assert!(parse_address("localhost").is_err());
        assert!(parse_address(":7400").is_err());
        assert!(parse_address("host:99999").is_err());
    }
}
