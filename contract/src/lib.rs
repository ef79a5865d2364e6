//! The inverse BTC/USD futures contract (1 contract = 1 USD, margin and P&L in
//! sats), as `../shared/notes/protocols.md` gives it: margin from quantity and
//! back, P&L, the liquidation price, the checks of a take-profit and a
//! stop-loss, and what a close pays.
//!
//! Pure integer arithmetic: no floats, no I/O, no panics. Prices are exact
//! integer cents, quantities whole contracts, margins and P&L whole sats, and
//! every intermediate is a `u128`/`i128`, exact for prices up to 10,000,000 USD,
//! quantities up to 10^9 and any leverage in 1..=100 (and far beyond). Where an
//! answer cannot exist or does not fit, the function says `None`, never wraps.
//! Limits that are policy (leverage 1 to 100, minimum margin, tick of an order's
//! price) are checked by the caller; this crate only refuses what has no
//! meaning (a zero price, a zero leverage).

use std::fmt;

pub mod ticket;

/// Sats per BTC times cents per USD: `quantity` contracts (USD) at `c` cents
/// per BTC are worth `quantity * SAT_CENTS / c` sats.
const SAT_CENTS: u128 = 100_000_000 * 100;

/// A side of a position: `b` (buy, long, `sign` +1) or `s` (sell, short, -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn sign(self) -> i64 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }

    /// The API's code for the side: `b` or `s`.
    pub fn code(self) -> &'static str {
        match self {
            Side::Buy => "b",
            Side::Sell => "s",
        }
    }

    pub fn from_code(code: &str) -> Option<Side> {
        match code {
            "b" => Some(Side::Buy),
            "s" => Some(Side::Sell),
            _ => None,
        }
    }

    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// The quote a position of this side enters at: a long buys at the offer,
    /// a short sells at the bid.
    pub fn entry_quote(self, bid: Price, offer: Price) -> Price {
        match self {
            Side::Buy => offer,
            Side::Sell => bid,
        }
    }

    /// The quote a position of this side is valued, triggered and closed at:
    /// the other side of the book from its entry.
    pub fn reference_quote(self, bid: Price, offer: Price) -> Price {
        self.opposite().entry_quote(bid, offer)
    }
}

/// A BTC/USD price in whole cents.
///
/// Cents, not half-dollar ticks: the spec accepts order prices, take-profits and
/// stop-losses in steps of 0.1 USD (`multipleOf: 0.1`), which half-dollar ticks
/// cannot hold, and the wallet's `usd` denomination is exact to the cent. Cents
/// hold both grids exactly; [`Price::TICK`] is the exchange's own grid, to which
/// the liquidation price is rounded, and [`Price::is_multiple_of`] checks any
/// other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(u64);

impl Price {
    /// LN Markets' price tick, 0.5 USD.
    pub const TICK: Price = Price(50);

    pub const fn from_cents(cents: u64) -> Price {
        Price(cents)
    }

    /// `usd` whole dollars, unless that does not fit.
    pub const fn from_usd(usd: u64) -> Option<Price> {
        match usd.checked_mul(100) {
            Some(cents) => Some(Price(cents)),
            None => None,
        }
    }

    pub const fn cents(self) -> u64 {
        self.0
    }

    /// Whether the price lies on the grid of `step` (a zero step: never).
    pub fn is_multiple_of(self, step: Price) -> bool {
        step.0 != 0 && self.0.is_multiple_of(step.0)
    }

    /// Parses a decimal number of USD ("9990", "9990.5", "10000.25") exactly:
    /// no sign, no exponent, at most two significant decimal places.
    pub fn parse(text: &str) -> Option<Price> {
        parse_fixed(text, 2).map(Price)
    }
}

/// As the API shows prices: at least one decimal ("9990.0", "10193.5"), two
/// when the cents need them ("10000.25").
impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (usd, cents) = (self.0 / 100, self.0 % 100);
        if cents % 10 == 0 {
            write!(f, "{usd}.{}", cents / 10)
        } else {
            write!(f, "{usd}.{cents:02}")
        }
    }
}

/// A decimal number ("9990", "2.5", "10000.25") times `10^places`, exactly:
/// no sign, no exponent, at most `places` significant decimal places, and
/// `None` beyond `u64`.
fn parse_fixed(text: &str, places: usize) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    if text.contains('.') && fraction.is_empty() {
        return None;
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > places {
        return None;
    }
    let scale = 10u64.checked_pow(u32::try_from(places).ok()?)?;
    let fraction: u64 = format!("{fraction:0<places$}").parse().ok()?;
    whole
        .parse::<u64>()
        .ok()?
        .checked_mul(scale)?
        .checked_add(fraction)
}

/// Where a position is liquidated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Liquidation {
    /// A long is liquidated when its reference price falls to this price or
    /// below, a short when it rises to this price or above.
    At(Price),
    /// No price consumes the margin: a short whose margin covers its largest
    /// possible loss (leverage 1 or less), or whose liquidation price lies
    /// beyond every representable price.
    Never,
}

/// A leverage, exact to 1/10,000 (the API shows `"50.0000"`). Whole at
/// creation as a rule; adding margin to a position lowers it to whatever the
/// new margin gives, so it is fractional then.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Leverage(u64);

impl Leverage {
    /// Steps per unit.
    const SCALE: u64 = 10_000;

    pub const fn whole(leverage: u32) -> Leverage {
        Leverage(leverage as u64 * Self::SCALE)
    }

    pub const fn from_ten_thousandths(steps: u64) -> Leverage {
        Leverage(steps)
    }

    pub const fn ten_thousandths(self) -> u64 {
        self.0
    }

    /// Parses a decimal leverage ("25", "2.5", "33.3333") exactly: no sign, no
    /// exponent, at most four significant decimal places.
    pub fn parse(text: &str) -> Option<Leverage> {
        parse_fixed(text, 4).map(Leverage)
    }

    /// The leverage `margin` sats give `quantity` contracts at `price`:
    /// `quantity * 1e8 / (price * margin)`, rounded down to 1/10,000. `None` for
    /// a zero price or margin, or an answer beyond `u64`.
    pub fn of(quantity: u64, price: Price, margin: u64) -> Option<Leverage> {
        let cost = u128::from(price.0).checked_mul(u128::from(margin))?;
        if cost == 0 {
            return None;
        }
        let steps = u128::from(quantity)
            .checked_mul(SAT_CENTS)?
            .checked_mul(u128::from(Self::SCALE))?
            / cost;
        u64::try_from(steps).ok().map(Leverage)
    }
}

/// As the API shows a leverage: four decimals ("50.0000").
impl fmt::Display for Leverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:04}", self.0 / Self::SCALE, self.0 % Self::SCALE)
    }
}

/// The margin, in sats, that `quantity` contracts at `price` and `leverage`
/// need: `floor(quantity * 1e8 / (price * leverage))`. `None` for a zero price
/// or leverage, or an answer beyond `u64`.
pub fn margin_for(quantity: u64, price: Price, leverage: Leverage) -> Option<u64> {
    let cost = u128::from(price.0) * u128::from(leverage.0);
    if cost == 0 {
        return None;
    }
    let value = u128::from(quantity)
        .checked_mul(SAT_CENTS)?
        .checked_mul(u128::from(Leverage::SCALE))?;
    u64::try_from(value / cost).ok()
}

/// The contracts that `margin` sats buy at `price` and `leverage`:
/// `floor(margin * price * leverage / 1e8)`, the inverse of [`margin_for`].
/// Round trip: `margin_for(q) <= margin <= margin_for(q + 1)` for
/// `q = quantity_for(margin)`. `None` for a zero price or leverage, or an
/// answer beyond `u64`.
pub fn quantity_for(margin: u64, price: Price, leverage: Leverage) -> Option<u64> {
    if price.0 == 0 || leverage.0 == 0 {
        return None;
    }
    let value = u128::from(margin)
        .checked_mul(u128::from(price.0))?
        .checked_mul(u128::from(leverage.0))?;
    u64::try_from(value / (SAT_CENTS * u128::from(Leverage::SCALE))).ok()
}

/// The P&L in sats of `quantity` contracts of `side` entered at `entry` and
/// valued at `exit`: `sign * quantity * 1e8 * (1/entry - 1/exit)`, computed as
/// one exact fraction and rounded to the nearest sat, halves away from zero.
/// Halves away from zero because it is symmetric: a long and a short of the
/// same size and prices have exactly opposite P&L. `None` for a zero price or
/// an answer beyond `i64`.
pub fn pl(side: Side, quantity: u64, entry: Price, exit: Price) -> Option<i64> {
    if entry.0 == 0 || exit.0 == 0 {
        return None;
    }
    // quantity * 1e8 * (1/entry - 1/exit) = quantity * SAT_CENTS * (exit - entry) / (entry * exit)
    let numerator = u128::from(quantity)
        .checked_mul(SAT_CENTS)?
        .checked_mul(u128::from(entry.0.abs_diff(exit.0)))?;
    let denominator = u128::from(entry.0).checked_mul(u128::from(exit.0))?;
    let magnitude = i64::try_from(div_round_half_up(numerator, denominator)).ok()?;
    let gains = (exit > entry) == (side == Side::Buy);
    Some(if gains { magnitude } else { -magnitude })
}

/// Where a position is liquidated: the price at which the P&L of `quantity`
/// contracts of `side` entered at `entry` consumes `margin` (long `1 / (1/entry
/// + margin/(quantity*1e8))`, short `1 / (1/entry - margin/(quantity*1e8))`),
/// rounded to the nearest [`Price::TICK`], an exact half toward the trader's
/// disadvantage (a long's up, a short's down). Nearest, as the spec's worked
/// example has it (short 682 at 9990, leverage 50: exactly 10193.877, shown
/// 10194.0): the trader's equity there is within half a tick's P&L of zero, on
/// either side, and a liquidation pays nothing whatever it is
/// ([`settlement`] is never below zero), so the house absorbs at most that half
/// tick. A short entered below one tick may round to 0.0, which liquidates it at
/// once. `None` for a zero entry, zero contracts, or an intermediate beyond
/// `u128` (not reachable for the documented ranges).
pub fn liquidation(side: Side, quantity: u64, entry: Price, margin: u64) -> Option<Liquidation> {
    liquidation_rounded(side, quantity, entry, margin, Rounding::Nearest)
}

/// The last tick at which `margin` still covers the loss: the exact liquidation
/// price rounded to [`Price::TICK`] toward the trader's disadvantage (a long's
/// up, a short's down), so `margin + pl >= 0` there, by less than one tick's
/// P&L. What a stop-loss must stay strictly before ([`check_stoploss`]), so a
/// stop-loss always closes with the margin covering the loss.
pub fn last_covered(side: Side, quantity: u64, entry: Price, margin: u64) -> Option<Liquidation> {
    liquidation_rounded(side, quantity, entry, margin, Rounding::Disadvantage)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rounding {
    Nearest,
    Disadvantage,
}

fn liquidation_rounded(
    side: Side,
    quantity: u64,
    entry: Price,
    margin: u64,
    rounding: Rounding,
) -> Option<Liquidation> {
    if entry.0 == 0 || quantity == 0 {
        return None;
    }
    // In cents: quantity * SAT_CENTS * entry / (quantity * SAT_CENTS ± margin * entry).
    let exposure = u128::from(quantity).checked_mul(SAT_CENTS)?;
    let numerator = exposure.checked_mul(u128::from(entry.0))?;
    let cover = u128::from(margin).checked_mul(u128::from(entry.0))?;
    let tick = u128::from(Price::TICK.0);
    let denominator = match side {
        Side::Buy => exposure.checked_add(cover)?,
        Side::Sell if cover >= exposure => return Some(Liquidation::Never),
        Side::Sell => exposure - cover,
    }
    .checked_mul(tick)?;
    // The exact price is `ticks + remainder / denominator` ticks.
    let (ticks, remainder) = (numerator / denominator, numerator % denominator);
    let up = match (rounding, side) {
        (Rounding::Disadvantage, Side::Buy) => remainder > 0,
        (Rounding::Disadvantage, Side::Sell) => false,
        // remainder >= denominator / 2 without doubling anything near u128::MAX.
        (Rounding::Nearest, Side::Buy) => remainder >= denominator - remainder,
        (Rounding::Nearest, Side::Sell) => remainder > denominator - remainder,
    };
    let ticks = if up { ticks + 1 } else { ticks };
    Some(
        match ticks.checked_mul(tick).and_then(|c| u64::try_from(c).ok()) {
            Some(cents) => Liquidation::At(Price(cents)),
            // Beyond every representable price: a short never reaches it, and a
            // long's is below its entry, so always representable.
            None if side == Side::Sell => Liquidation::Never,
            None => return None,
        },
    )
}

/// Why a take-profit or stop-loss is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerError {
    /// A take-profit must lie beyond the reference price in the trader's
    /// favour: above it for a long, below it for a short.
    TakeprofitNotInFavour,
    /// A stop-loss must lie beyond the reference price against the trader:
    /// below it for a long, above it for a short.
    StoplossNotAgainst,
    /// A stop-loss must trigger before the liquidation: above the liquidation
    /// price for a long, below it for a short.
    StoplossBeyondLiquidation,
}

impl fmt::Display for TriggerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TriggerError::TakeprofitNotInFavour => {
                "takeprofit must be above the reference price for a buy and below it for a sell"
            }
            TriggerError::StoplossNotAgainst => {
                "stoploss must be below the reference price for a buy and above it for a sell"
            }
            TriggerError::StoplossBeyondLiquidation => {
                "stoploss must be above the liquidation price for a buy and below it for a sell"
            }
        })
    }
}

impl std::error::Error for TriggerError {}

/// Checks a take-profit against the side's current reference price (the bid
/// for a long, the offer for a short): strictly beyond it in the trader's favour.
pub fn check_takeprofit(
    side: Side,
    takeprofit: Price,
    reference: Price,
) -> Result<(), TriggerError> {
    let in_favour = match side {
        Side::Buy => takeprofit > reference,
        Side::Sell => takeprofit < reference,
    };
    in_favour
        .then_some(())
        .ok_or(TriggerError::TakeprofitNotInFavour)
}

/// Checks a stop-loss: strictly between the last price the margin covers
/// (`covered`, from [`last_covered`]) and the side's current reference price, so
/// it triggers before the liquidation, not at once, and closes with the margin
/// covering the loss.
pub fn check_stoploss(
    side: Side,
    stoploss: Price,
    reference: Price,
    covered: Liquidation,
) -> Result<(), TriggerError> {
    let against = match side {
        Side::Buy => stoploss < reference,
        Side::Sell => stoploss > reference,
    };
    if !against {
        return Err(TriggerError::StoplossNotAgainst);
    }
    let before_liquidation = match (side, covered) {
        (_, Liquidation::Never) => true,
        (Side::Buy, Liquidation::At(price)) => stoploss > price,
        (Side::Sell, Liquidation::At(price)) => stoploss < price,
    };
    before_liquidation
        .then_some(())
        .ok_or(TriggerError::StoplossBeyondLiquidation)
}

/// What closing a position pays the trader, in sats: `max(0, margin + pl)`. A
/// loss never takes more than the margin. `None` only when the sum does not fit
/// a `u64`.
pub fn settlement(margin: u64, pl: i64) -> Option<u64> {
    let equity = i128::from(margin) + i128::from(pl);
    u64::try_from(equity.max(0)).ok()
}

/// `numerator / denominator` rounded to the nearest integer, halves up (both are
/// magnitudes, so up is away from zero). A zero denominator answers zero; the
/// callers never pass one.
fn div_round_half_up(numerator: u128, denominator: u128) -> u128 {
    if denominator == 0 {
        return 0;
    }
    let (quotient, remainder) = (numerator / denominator, numerator % denominator);
    // remainder >= denominator / 2, without doubling anything near u128::MAX.
    if remainder >= denominator - remainder {
        quotient + 1
    } else {
        quotient
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(text: &str) -> Price {
        Price::parse(text).expect("a price")
    }

    #[test]
    fn the_specs_worked_short_holds_exactly() {
        // Short 682 contracts at 9990.0 with leverage 50, closed at 10010.0.
        let (quantity, entry) = (682, usd("9990"));
        let margin = margin_for(quantity, entry, Leverage::whole(50)).unwrap();
        assert_eq!(margin, 136_536);
        assert_eq!(pl(Side::Sell, quantity, entry, usd("10010")), Some(-13_640));
        assert_eq!(settlement(margin, -13_640), Some(122_896));
        // The exact liquidation is 10193.8767...: the nearest tick, 10194.0, as
        // the spec shows it, where the loss exceeds the margin by 81 sats (a
        // liquidation pays nothing all the same). The last tick the margin
        // covers, where a stop-loss must stay before, is 10193.5.
        assert_eq!(
            liquidation(Side::Sell, quantity, entry, margin),
            Some(Liquidation::At(usd("10194")))
        );
        assert_eq!(
            last_covered(Side::Sell, quantity, entry, margin),
            Some(Liquidation::At(usd("10193.5")))
        );
        let at = |price| {
            i64::try_from(margin).unwrap() + pl(Side::Sell, quantity, entry, usd(price)).unwrap()
        };
        assert_eq!(at("10193.5"), 247);
        assert_eq!(at("10194"), -81);
        assert_eq!(settlement(margin, at("10194") - 136_536), Some(0));
        assert_eq!(Leverage::whole(50).to_string(), "50.0000");
        // The margin is rounded down, so the leverage it gives back is a hair more.
        assert_eq!(
            Leverage::of(quantity, entry, margin)
                .map(|l| l.to_string())
                .as_deref(),
            Some("50.0001")
        );
    }

    #[test]
    fn a_long_of_the_same_size_is_liquidated_below_its_entry_rounded_up() {
        let (quantity, entry) = (682, usd("9990"));
        let margin = margin_for(quantity, entry, Leverage::whole(50)).unwrap();
        // Exact: 9794.1184...: the nearest tick is 9794.0; the last one the
        // margin covers, rounded up against a long, 9794.5.
        assert_eq!(
            liquidation(Side::Buy, quantity, entry, margin),
            Some(Liquidation::At(usd("9794")))
        );
        assert_eq!(
            last_covered(Side::Buy, quantity, entry, margin),
            Some(Liquidation::At(usd("9794.5")))
        );
        assert_eq!(pl(Side::Buy, quantity, entry, usd("10010")), Some(13_640));
    }

    #[test]
    fn a_short_at_leverage_one_is_never_liquidated() {
        let entry = usd("20000");
        let margin = margin_for(1000, entry, Leverage::whole(1)).unwrap();
        assert_eq!(margin, 5_000_000);
        assert_eq!(
            liquidation(Side::Sell, 1000, entry, margin),
            Some(Liquidation::Never)
        );
        // Its loss approaches the margin as the price runs away, never passes it.
        let loss = pl(Side::Sell, 1000, entry, usd("10000000")).unwrap();
        assert_eq!(loss, -4_990_000);
        // A long at leverage 1 dies at half its entry.
        assert_eq!(
            liquidation(Side::Buy, 1000, entry, margin),
            Some(Liquidation::At(usd("10000")))
        );
    }

    #[test]
    fn pl_rounds_an_exact_half_away_from_zero_on_both_sides() {
        // 1 contract from 10.24 to 20.48 USD is exactly 4,882,812.5 sats.
        let (entry, exit) = (usd("10.24"), usd("20.48"));
        assert_eq!(pl(Side::Buy, 1, entry, exit), Some(4_882_813));
        assert_eq!(pl(Side::Sell, 1, entry, exit), Some(-4_882_813));
        assert_eq!(pl(Side::Buy, 1, exit, entry), Some(-4_882_813));
        assert_eq!(pl(Side::Buy, 5, entry, entry), Some(0));
    }

    #[test]
    fn leverages_parse_print_and_derive_exactly() {
        assert_eq!(Leverage::parse("25"), Some(Leverage::whole(25)));
        assert_eq!(
            Leverage::parse("2.5").map(|l| l.to_string()).as_deref(),
            Some("2.5000")
        );
        assert_eq!(
            Leverage::parse("33.3333").map(Leverage::ten_thousandths),
            Some(333_333)
        );
        for bad in ["", "1.00001", "-1", "1e2", ".5", "5.", "x"] {
            assert_eq!(Leverage::parse(bad), None, "{bad:?}");
        }
        // Doubling the margin halves the leverage.
        let entry = usd("20000");
        assert_eq!(
            Leverage::of(500, entry, 200_000)
                .map(|l| l.to_string())
                .as_deref(),
            Some("12.5000")
        );
        assert_eq!(Leverage::of(500, entry, 0), None);
    }

    #[test]
    fn margin_and_quantity_derive_each_other() {
        // The spec's create example: margin 100000 at leverage 25.
        let price = usd("20000");
        assert_eq!(quantity_for(100_000, price, Leverage::whole(25)), Some(500));
        assert_eq!(margin_for(500, price, Leverage::whole(25)), Some(100_000));
        assert_eq!(
            quantity_for(136_536, usd("9990"), Leverage::whole(50)),
            Some(681)
        );
        assert_eq!(
            margin_for(681, usd("9990"), Leverage::whole(50)),
            Some(136_336)
        );
        assert_eq!(
            margin_for(682, usd("9990"), Leverage::whole(50)),
            Some(136_536)
        );
    }

    #[test]
    fn the_extremes_are_exact_and_nonsense_is_refused() {
        let top = Price::from_usd(10_000_000).unwrap();
        let bottom = usd("1");
        let q = 1_000_000_000;
        assert_eq!(margin_for(q, top, Leverage::whole(100)), Some(100_000_000));
        assert_eq!(
            margin_for(q, bottom, Leverage::whole(1)),
            Some(100_000_000_000_000_000)
        );
        assert_eq!(
            quantity_for(100_000_000_000_000_000, bottom, Leverage::whole(1)),
            Some(q)
        );
        assert_eq!(pl(Side::Buy, q, bottom, top), Some(99_999_990_000_000_000));
        assert_eq!(pl(Side::Sell, q, top, bottom), Some(99_999_990_000_000_000));
        assert_eq!(
            liquidation(Side::Buy, q, top, 100_000_000),
            Some(Liquidation::At(usd("9900990.0")))
        );
        assert_eq!(
            liquidation(Side::Sell, q, top, 100_000_000),
            Some(Liquidation::At(usd("10101010.0")))
        );
        assert_eq!(margin_for(1, usd("9990"), Leverage::whole(0)), None);
        assert_eq!(margin_for(1, Price::default(), Leverage::whole(10)), None);
        assert_eq!(quantity_for(1, usd("9990"), Leverage::whole(0)), None);
        assert_eq!(pl(Side::Buy, 1, Price::default(), usd("1")), None);
        assert_eq!(liquidation(Side::Buy, 0, usd("1"), 1), None);
        assert_eq!(liquidation(Side::Sell, 1, Price::default(), 1), None);
        // What does not fit is an answer, not a wrap.
        assert_eq!(
            pl(
                Side::Buy,
                u64::MAX,
                Price::from_cents(1),
                Price::from_cents(u64::MAX)
            ),
            None
        );
        assert_eq!(
            quantity_for(u64::MAX, Price::from_cents(u64::MAX), Leverage::whole(100)),
            None
        );
        assert_eq!(
            margin_for(u64::MAX, Price::from_cents(1), Leverage::whole(1)),
            None
        );
        assert_eq!(settlement(u64::MAX, 1), None);
    }

    #[test]
    fn take_profit_lies_in_the_traders_favour() {
        let reference = usd("10000");
        assert_eq!(
            check_takeprofit(Side::Buy, usd("10000.5"), reference),
            Ok(())
        );
        assert_eq!(
            check_takeprofit(Side::Buy, reference, reference),
            Err(TriggerError::TakeprofitNotInFavour)
        );
        assert_eq!(
            check_takeprofit(Side::Sell, usd("9999.5"), reference),
            Ok(())
        );
        assert_eq!(
            check_takeprofit(Side::Sell, usd("10001"), reference),
            Err(TriggerError::TakeprofitNotInFavour)
        );
    }

    #[test]
    fn stop_loss_lies_between_liquidation_and_reference() {
        let reference = usd("10000");
        let long_liq = Liquidation::At(usd("9800"));
        let short_liq = Liquidation::At(usd("10200"));
        assert_eq!(
            check_stoploss(Side::Buy, usd("9900"), reference, long_liq),
            Ok(())
        );
        assert_eq!(
            check_stoploss(Side::Buy, usd("10000"), reference, long_liq),
            Err(TriggerError::StoplossNotAgainst)
        );
        assert_eq!(
            check_stoploss(Side::Buy, usd("9800"), reference, long_liq),
            Err(TriggerError::StoplossBeyondLiquidation)
        );
        assert_eq!(
            check_stoploss(Side::Sell, usd("10199.5"), reference, short_liq),
            Ok(())
        );
        assert_eq!(
            check_stoploss(Side::Sell, usd("9999"), reference, short_liq),
            Err(TriggerError::StoplossNotAgainst)
        );
        assert_eq!(
            check_stoploss(Side::Sell, usd("10200"), reference, short_liq),
            Err(TriggerError::StoplossBeyondLiquidation)
        );
        assert_eq!(
            check_stoploss(Side::Sell, usd("1000000"), reference, Liquidation::Never),
            Ok(())
        );
    }

    #[test]
    fn a_close_pays_margin_plus_pl_and_never_less_than_nothing() {
        assert_eq!(settlement(136_536, -13_640), Some(122_896));
        assert_eq!(settlement(1_000, 500), Some(1_500));
        assert_eq!(settlement(1_000, -1_000), Some(0));
        assert_eq!(settlement(1_000, -5_000), Some(0));
        assert_eq!(settlement(0, i64::MIN), Some(0));
    }

    #[test]
    fn quotes_follow_the_side() {
        let (bid, offer) = (usd("9999.5"), usd("10000.5"));
        assert_eq!(Side::Buy.entry_quote(bid, offer), offer);
        assert_eq!(Side::Buy.reference_quote(bid, offer), bid);
        assert_eq!(Side::Sell.entry_quote(bid, offer), bid);
        assert_eq!(Side::Sell.reference_quote(bid, offer), offer);
        assert_eq!(Side::from_code("b"), Some(Side::Buy));
        assert_eq!(Side::from_code("s").map(Side::sign), Some(-1));
        assert_eq!(Side::from_code("B"), None);
    }

    #[test]
    fn prices_parse_and_print_exactly() {
        assert_eq!(usd("9990").cents(), 999_000);
        assert_eq!(usd("9990.0").cents(), 999_000);
        assert_eq!(usd("10193.5").cents(), 1_019_350);
        assert_eq!(usd("10000.25").cents(), 1_000_025);
        assert_eq!(usd("10000.250").cents(), 1_000_025);
        assert_eq!(usd("0.07").cents(), 7);
        for bad in [
            "", ".5", "5.", "-1", "+1", "1e3", "1.005", "1,5", " 1", "1.2.3",
        ] {
            assert_eq!(Price::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Price::parse("184467440737095516.16"), None);
        assert_eq!(usd("9990").to_string(), "9990.0");
        assert_eq!(usd("10193.5").to_string(), "10193.5");
        assert_eq!(usd("10000.25").to_string(), "10000.25");
        assert_eq!(usd("0.07").to_string(), "0.07");
        assert!(usd("10193.5").is_multiple_of(Price::TICK));
        assert!(!usd("10193.1").is_multiple_of(Price::TICK));
        assert!(usd("10193.1").is_multiple_of(Price::from_cents(10)));
        assert!(!usd("1").is_multiple_of(Price::default()));
    }
}
