//! An order ticket's rules: what an order (`POST /positions`) decides at the
//! current quote (its entry price, whether it fills now, its quantity, margin,
//! leverage and liquidation) or why it is refused, naming the field at fault.
//! The engine opens positions by it and the browser's ticket previews them by
//! it, so the two cannot disagree.

use std::fmt;

use crate::{Leverage, Liquidation, Price, Side};

/// Largest position, in contracts (USD): where the contract's maths is exact.
pub const MAX_QUANTITY: u64 = 1_000_000_000;

/// Market (`m`) or limit (`l`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderType {
    Market,
    Limit,
}

impl OrderType {
    pub fn code(self) -> &'static str {
        match self {
            OrderType::Market => "m",
            OrderType::Limit => "l",
        }
    }

    pub fn from_code(code: &str) -> Option<OrderType> {
        match code {
            "m" => Some(OrderType::Market),
            "l" => Some(OrderType::Limit),
            _ => None,
        }
    }
}

/// An order as a trader gives it (`POST /positions`). Of margin, quantity and
/// leverage, two decide the third: quantity and leverage give the margin (a
/// margin given too must cover it), margin and leverage the quantity, margin
/// and quantity the leverage.
#[derive(Debug, Clone, Default)]
pub struct Order {
    pub kind: Option<OrderType>,
    pub side: Option<Side>,
    /// Sats.
    pub margin: Option<u64>,
    pub quantity: Option<u64>,
    pub leverage: Option<Leverage>,
    /// A limit order's price.
    pub price: Option<Price>,
    pub takeprofit: Option<Price>,
    pub stoploss: Option<Price>,
}

/// Why an order or a trigger is refused, and which field caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(field: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

/// What an order decides at the quote it was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub kind: OrderType,
    pub side: Side,
    /// Whether it fills at once (a market order, or a limit order the quote
    /// has already reached); otherwise it waits for its price.
    pub fills_now: bool,
    pub quantity: u64,
    /// Sats.
    pub margin: u64,
    pub leverage: Leverage,
    /// Where it enters: the side's entry quote when it fills now, else the
    /// limit price.
    pub price: Price,
    pub liquidation: Liquidation,
    /// The last price at which the margin still covers the loss: a stop-loss
    /// must lie strictly between it and `reference`.
    pub covered: Liquidation,
    /// Where the position is valued now (a pending order: its own price):
    /// triggers are checked against it.
    pub reference: Price,
    pub takeprofit: Option<Price>,
    pub stoploss: Option<Price>,
}

/// Checks a price a trader typed (a limit price or a trigger): at least 1 USD,
/// on the 0.1 grid.
pub fn check_price(field: &'static str, price: Price) -> Result<(), Refusal> {
    if price.cents() < 100 {
        return Err(Refusal::new(field, format!("{field} must be at least 1")));
    }
    if !price.is_multiple_of(Price::from_cents(10)) {
        return Err(Refusal::new(
            field,
            format!("{field} must be a multiple of 0.1"),
        ));
    }
    Ok(())
}

impl Order {
    /// Checks the order against the rules and the quote (`bid`, `offer`),
    /// with leverage allowed from 1 to `max_leverage`.
    pub fn check(&self, bid: Price, offer: Price, max_leverage: u32) -> Result<Ticket, Refusal> {
        let kind = self
            .kind
            .ok_or_else(|| Refusal::new("type", "type is required: m (market) or l (limit)"))?;
        let side = self
            .side
            .ok_or_else(|| Refusal::new("side", "side is required: b (buy) or s (sell)"))?;
        let leverage_range = || {
            Refusal::new(
                "leverage",
                format!("leverage must be between 1 and {max_leverage}"),
            )
        };
        if let Some(leverage) = self.leverage {
            if leverage < Leverage::whole(1) || leverage > Leverage::whole(max_leverage) {
                return Err(leverage_range());
            }
        }
        if self.margin == Some(0) {
            return Err(Refusal::new("margin", "margin must be at least 1"));
        }
        let quantity_range = || {
            Refusal::new(
                "quantity",
                format!("quantity must be between 1 and {MAX_QUANTITY}"),
            )
        };
        if let Some(quantity) = self.quantity {
            if !(1..=MAX_QUANTITY).contains(&quantity) {
                return Err(quantity_range());
            }
        }
        // Where it enters, and whether it fills now.
        let entry_quote = side.entry_quote(bid, offer);
        let (price, fills_now) = match (kind, self.price) {
            (OrderType::Market, None) => (entry_quote, true),
            (OrderType::Market, Some(_)) => {
                return Err(Refusal::new(
                    "price",
                    "price is for limit orders (type l) only",
                ))
            }
            (OrderType::Limit, None) => {
                return Err(Refusal::new(
                    "price",
                    "a limit order (type l) needs a price",
                ))
            }
            (OrderType::Limit, Some(limit)) => {
                check_price("price", limit)?;
                let reached = match side {
                    Side::Buy => entry_quote <= limit,
                    Side::Sell => entry_quote >= limit,
                };
                if reached {
                    (entry_quote, true)
                } else {
                    (limit, false)
                }
            }
        };
        let too_large = || Refusal::new("quantity", "quantity is too large");
        let (quantity, margin, leverage) = match (self.quantity, self.margin, self.leverage) {
            (Some(quantity), given, Some(leverage)) => {
                let margin = crate::margin_for(quantity, price, leverage).ok_or_else(too_large)?;
                if let Some(given) = given {
                    if given < margin {
                        return Err(Refusal::new(
                            "margin",
                            format!(
                                "{quantity} contracts at leverage {leverage} and price {price} need a margin of {margin} sats, more than the {given} given"
                            ),
                        ));
                    }
                }
                (quantity, margin, leverage)
            }
            (None, Some(margin), Some(leverage)) => {
                let quantity = crate::quantity_for(margin, price, leverage).unwrap_or(0);
                (quantity, margin, leverage)
            }
            (Some(quantity), Some(margin), None) => {
                let leverage = Leverage::of(quantity, price, margin).unwrap_or_default();
                if leverage < Leverage::whole(1) || leverage > Leverage::whole(max_leverage) {
                    return Err(Refusal::new(
                        "leverage",
                        format!(
                            "a margin of {margin} sats for {quantity} contracts at {price} is a leverage of {leverage}, outside 1 to {max_leverage}"
                        ),
                    ));
                }
                (quantity, margin, leverage)
            }
            _ => {
                return Err(Refusal::new(
                    "leverage",
                    "give leverage with margin or quantity, or margin with quantity",
                ))
            }
        };
        if quantity == 0 {
            return Err(Refusal::new(
                "margin",
                format!("a margin of {margin} sats buys no contract at leverage {leverage} and price {price}"),
            ));
        }
        if quantity > MAX_QUANTITY {
            return Err(quantity_range());
        }
        if margin == 0 {
            return Err(Refusal::new("margin", "margin must be at least 1"));
        }
        let liquidation =
            crate::liquidation(side, quantity, price, margin).ok_or_else(too_large)?;
        // Triggers are checked against where the position is valued now (a
        // pending order: its own price).
        let reference = if fills_now {
            side.reference_quote(bid, offer)
        } else {
            price
        };
        if let Liquidation::At(at) = liquidation {
            let alive = match side {
                Side::Buy => at < reference,
                Side::Sell => at > reference,
            };
            if !alive {
                return Err(Refusal::new(
                    "leverage",
                    format!("at this leverage the position would be liquidated at once ({at}): lower it"),
                ));
            }
        }
        let covered = crate::last_covered(side, quantity, price, margin).ok_or_else(too_large)?;
        if let Some(takeprofit) = self.takeprofit {
            check_price("takeprofit", takeprofit)?;
            crate::check_takeprofit(side, takeprofit, reference)
                .map_err(|e| Refusal::new("takeprofit", e.to_string()))?;
        }
        if let Some(stoploss) = self.stoploss {
            check_price("stoploss", stoploss)?;
            crate::check_stoploss(side, stoploss, reference, covered)
                .map_err(|e| Refusal::new("stoploss", e.to_string()))?;
        }
        Ok(Ticket {
            kind,
            side,
            fills_now,
            quantity,
            margin,
            leverage,
            price,
            liquidation,
            covered,
            reference,
            takeprofit: self.takeprofit,
            stoploss: self.stoploss,
        })
    }
}

impl Ticket {
    /// The P&L in sats if the position closes at `exit` (a take-profit's or a
    /// stop-loss's price), never a loss beyond the margin.
    pub fn pl_at(&self, exit: Price) -> Option<i64> {
        let pl = crate::pl(self.side, self.quantity, self.price, exit)?;
        Some(pl.max(-(self.margin as i64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(text: &str) -> Price {
        Price::parse(text).expect("a price")
    }

    fn order(side: Side) -> Order {
        Order {
            kind: Some(OrderType::Market),
            side: Some(side),
            ..Order::default()
        }
    }

    #[test]
    fn the_specs_short_checks_as_the_spec_works_it() {
        let ticket = Order {
            quantity: Some(682),
            leverage: Some(Leverage::whole(50)),
            ..order(Side::Sell)
        }
        .check(usd("9990"), usd("9990.5"), 100)
        .expect("a valid order");
        assert!(ticket.fills_now);
        assert_eq!(ticket.price, usd("9990"));
        assert_eq!(ticket.margin, 136_536);
        assert_eq!(ticket.liquidation, Liquidation::At(usd("10194")));
        assert_eq!(ticket.pl_at(usd("10010")), Some(-13_640));
    }

    #[test]
    fn refusals_name_the_field_that_caused_them() {
        let (bid, offer) = (usd("10000"), usd("10001"));
        let refused = |order: Order| order.check(bid, offer, 100).expect_err("refused").field;
        assert_eq!(refused(Order::default()), "type");
        let long = || Order {
            margin: Some(10_000),
            leverage: Some(Leverage::whole(10)),
            ..order(Side::Buy)
        };
        assert_eq!(
            refused(Order {
                leverage: Some(Leverage::whole(101)),
                ..long()
            }),
            "leverage"
        );
        assert_eq!(
            refused(Order {
                takeprofit: Some(usd("9999")),
                ..long()
            }),
            "takeprofit"
        );
        assert_eq!(
            refused(Order {
                stoploss: Some(usd("10000.5")),
                ..long()
            }),
            "stoploss"
        );
        assert_eq!(
            refused(Order {
                stoploss: Some(usd("9000.05")),
                ..long()
            }),
            "stoploss"
        );
        assert_eq!(
            refused(Order {
                kind: Some(OrderType::Limit),
                ..long()
            }),
            "price"
        );
        assert!(long()
            .check(bid, offer, 100)
            .is_ok_and(|t| t.quantity == 10));
    }

    #[test]
    fn a_limit_order_the_quote_has_not_reached_waits_at_its_price() {
        let waiting = Order {
            kind: Some(OrderType::Limit),
            price: Some(usd("9000")),
            margin: Some(10_000),
            leverage: Some(Leverage::whole(10)),
            ..order(Side::Buy)
        }
        .check(usd("10000"), usd("10001"), 100)
        .expect("a valid order");
        assert!(!waiting.fills_now);
        assert_eq!(
            (waiting.price, waiting.reference),
            (usd("9000"), usd("9000"))
        );
    }
}
