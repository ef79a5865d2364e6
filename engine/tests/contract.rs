//! The inverse contract's maths, attacked with random sides, sizes, leverages and
//! prices (proptest): prices from 1 to 10,000,000 USD (on the spec's 0.1 USD grid
//! or the exchange's 0.5 USD tick), quantities up to 10^9 contracts, leverage 1 to
//! 100. The worked example of the spec is a unit test in the module itself.
//!
//! The bound at the last covered price is exact, not a tolerance. With `L` the
//! last tick the margin covers (`last_covered`) and `T` the tick, the trader's equity there,
//! `margin + pl(L)`, satisfies
//!   `0 <= margin + pl(L) <= ceil(quantity * 1e8 * T / (L * (L - T)))` for a long,
//!   `0 <= margin + pl(L) <= ceil(quantity * 1e8 * T / (L * (L + T)))` for a short,
//! the right-hand side being the P&L of one more tick against the trader from `L`.
//! Why: the exact liquidation `L*` has `margin + f(L*) = 0` (f the unrounded P&L,
//! monotonic in the price); rounding toward the trader's disadvantage puts `L`
//! less than one tick from `L*` on the trader's side, so `0 <= margin + f(L) <
//! |f(L) - f(L -/+ T)|`; rounding the P&L to the nearest sat moves it by at most
//! 1/2, and both ends are integers.

use engine::desk::contract::{
    check_stoploss, check_takeprofit, last_covered, liquidation, margin_for, pl, quantity_for,
    settlement, Leverage, Liquidation, Price, Side,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Sats per BTC times cents per USD, as the module counts.
const SAT_CENTS: i128 = 10_000_000_000;
const TICK: i128 = Price::TICK.cents() as i128;

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

/// On the exchange's 0.5 USD tick: mostly where BTC trades, also the whole range.
fn tick_price() -> impl Strategy<Value = Price> {
    prop_oneof![200u64..=400_000, 2u64..=20_000_000].prop_map(|ticks| Price::from_cents(ticks * 50))
}

/// On the spec's 0.1 USD grid (`multipleOf: 0.1`), 1 to 10,000,000 USD.
fn any_price() -> impl Strategy<Value = Price> {
    prop_oneof![1_000u64..=2_000_000, 10u64..=100_000_000]
        .prop_map(|tenths| Price::from_cents(tenths * 10))
}

fn quantity() -> impl Strategy<Value = u64> {
    prop_oneof![1u64..=10_000, 1u64..=1_000_000_000]
}

fn leverage() -> impl Strategy<Value = Leverage> {
    (1u32..=100).prop_map(Leverage::whole)
}

/// Whether `price * leverage` is at most `limit` USD.
fn cost_at_most(price: Price, leverage: Leverage, limit: i128) -> bool {
    i128::from(price.cents()) * i128::from(leverage.ten_thousandths()) <= limit * 10_000
}

/// A position as the desk opens it: a side, a size, an entry and its margin at
/// a leverage, plus perhaps margin added later (up to a leverage 1 margin more).
fn position() -> impl Strategy<Value = (Side, u64, Price, u64)> {
    (side(), quantity(), any_price(), leverage(), 0u64..=1_000).prop_map(
        |(side, quantity, entry, leverage, added_permille)| {
            let margin = margin_for(quantity, entry, leverage).unwrap();
            let added =
                margin_for(quantity, entry, Leverage::whole(1)).unwrap() / 1000 * added_permille;
            (side, quantity, entry, margin + added / 4)
        },
    )
}

/// Whether the trader's exact (unrounded) equity `margin + f(exit)` is not
/// negative: `margin + sign * quantity * 1e8 * (1/entry - 1/exit) >= 0`,
/// multiplied through by `entry * exit` (positive).
fn exact_equity_not_negative(
    side: Side,
    quantity: u64,
    entry: Price,
    margin: u64,
    exit: Price,
) -> bool {
    let (e, x) = (i128::from(entry.cents()), i128::from(exit.cents()));
    let loss_side = i128::from(side.sign()) * SAT_CENTS * i128::from(quantity) * (x - e);
    i128::from(margin) * e * x + loss_side >= 0
}

/// The P&L of one more tick against the trader from `price`, rounded up (`None`
/// when that tick would be at or below zero).
fn one_tick_worth(side: Side, quantity: u64, price: Price) -> Option<i128> {
    let l = i128::from(price.cents());
    let next = match side {
        Side::Buy => l - TICK,
        Side::Sell => l + TICK,
    };
    if next <= 0 {
        return None;
    }
    let numerator = SAT_CENTS * i128::from(quantity) * TICK;
    let denominator = l * next;
    Some((numerator + denominator - 1) / denominator)
}

fn adverse_tick(side: Side, price: Price) -> Option<Price> {
    match side {
        Side::Buy => price.cents().checked_sub(Price::TICK.cents()),
        Side::Sell => price.cents().checked_add(Price::TICK.cents()),
    }
    .filter(|&cents| cents > 0)
    .map(Price::from_cents)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2048,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/contract.txt",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// At the last price the margin covers, it still covers the loss, by less
    /// than one more tick's P&L (the bound in the header), and one tick further
    /// against the trader it no longer does: the price is rounded to the
    /// trader's disadvantage. Stop-losses stay before it.
    #[test]
    fn at_the_last_covered_price_equity_is_within_one_tick_above_zero(
        (side, quantity, entry, margin) in position(),
    ) {
        let Liquidation::At(price) = last_covered(side, quantity, entry, margin).unwrap() else {
            prop_assert_eq!(side, Side::Sell, "a long is always liquidated somewhere");
            return Ok(());
        };
        prop_assert!(price.is_multiple_of(Price::TICK));
        let equity = i128::from(margin) + i128::from(pl(side, quantity, entry, price).unwrap());
        prop_assert!(equity >= 0, "equity {} at {}", equity, price);
        if let Some(bound) = one_tick_worth(side, quantity, price) {
            prop_assert!(equity <= bound, "equity {} above one tick's {} at {}", equity, bound, price);
        }
        prop_assert!(exact_equity_not_negative(side, quantity, entry, margin, price));
        if let Some(beyond) = adverse_tick(side, price) {
            prop_assert!(!exact_equity_not_negative(side, quantity, entry, margin, beyond));
            // Closing there pays nothing.
            let loss = pl(side, quantity, entry, beyond).unwrap();
            prop_assert_eq!(settlement(margin, loss), Some(0));
        }
    }

    /// At the liquidation price (the nearest tick to where the margin is used
    /// up), the trader's equity is within one tick's P&L of zero, either side;
    /// it lies on the last covered tick or the next one, and the two agree on
    /// whether a position is liquidable at all.
    #[test]
    fn at_the_liquidation_price_equity_is_within_one_tick_of_zero(
        (side, quantity, entry, margin) in position(),
    ) {
        let liquidated = liquidation(side, quantity, entry, margin).unwrap();
        let covered = last_covered(side, quantity, entry, margin).unwrap();
        let (Liquidation::At(price), Liquidation::At(last)) = (liquidated, covered) else {
            prop_assert_eq!(side, Side::Sell, "a long is always liquidated somewhere");
            prop_assert!(matches!(covered, Liquidation::Never) || matches!(liquidated, Liquidation::Never));
            return Ok(());
        };
        prop_assert!(price.is_multiple_of(Price::TICK));
        prop_assert!(price == last || Some(price) == adverse_tick(side, last));
        let equity = i128::from(margin) + i128::from(pl(side, quantity, entry, price).unwrap());
        let favourable = match side {
            Side::Buy => Price::from_cents(price.cents() + Price::TICK.cents()),
            Side::Sell => Price::from_cents(price.cents().saturating_sub(Price::TICK.cents()).max(1)),
        };
        let bound = one_tick_worth(side, quantity, price)
            .into_iter()
            .chain(one_tick_worth(side, quantity, favourable))
            .max();
        if let Some(bound) = bound {
            prop_assert!(equity.abs() <= bound, "equity {} beyond one tick's {} at {}", equity, bound, price);
        }
    }

    /// The P&L is the exact value rounded to the nearest sat, halves away from
    /// zero: `|pl - f| <= 1/2`, checked as `|2 * (pl * d - n)| <= d` on the exact
    /// fraction `f = n / d`.
    #[test]
    fn pl_is_the_exact_value_to_the_nearest_sat(
        side in side(),
        quantity in quantity(),
        entry in any_price(),
        exit in any_price(),
    ) {
        let (e, x) = (i128::from(entry.cents()), i128::from(exit.cents()));
        let n = i128::from(side.sign()) * SAT_CENTS * i128::from(quantity) * (x - e);
        let d = e * x;
        let result = i128::from(pl(side, quantity, entry, exit).unwrap());
        let twice_error = 2 * (result * d - n);
        prop_assert!(twice_error.abs() <= d);
        if twice_error.abs() == d {
            prop_assert!(result.abs() * d > n.abs(), "a half rounds away from zero");
        }
    }

    /// A long and a short of the same size and prices have opposite P&L, to the sat.
    #[test]
    fn a_long_and_a_short_have_opposite_pl(
        quantity in quantity(),
        entry in any_price(),
        exit in any_price(),
    ) {
        let long = pl(Side::Buy, quantity, entry, exit).unwrap();
        let short = pl(Side::Sell, quantity, entry, exit).unwrap();
        prop_assert_eq!(long, -short);
        // A gain only when the price rose (a tiny move may round to nothing).
        prop_assert!(long <= 0 || exit > entry);
        prop_assert!(long >= 0 || exit < entry);
        prop_assert_eq!(pl(Side::Buy, quantity, entry, entry), Some(0));
        // Swapping entry and exit makes the long's move the short's, to the sat.
        prop_assert_eq!(pl(Side::Sell, quantity, exit, entry), Some(long));
    }

    /// A margin derived from a quantity gives back a quantity no larger, and the
    /// original lies within one sat of margin: `quantity_for(m) <= q <=
    /// quantity_for(m + 1)`. Where a contract needs at least a sat (price times
    /// leverage up to 100,000,000 USD, every real price) that is within one contract.
    #[test]
    fn quantity_to_margin_round_trips_within_one_unit(
        quantity in quantity(),
        price in any_price(),
        leverage in leverage(),
    ) {
        let margin = margin_for(quantity, price, leverage).unwrap();
        let back = quantity_for(margin, price, leverage).unwrap();
        prop_assert!(back <= quantity);
        prop_assert!(quantity <= quantity_for(margin + 1, price, leverage).unwrap());
        if cost_at_most(price, leverage, SAT_CENTS) {
            prop_assert!(quantity - back <= 1, "{} came back {}", quantity, back);
        }
    }

    /// A quantity derived from a margin gives back a margin no larger, and the
    /// original lies within one contract's margin: `margin_for(q) <= m <=
    /// margin_for(q + 1)`. Where a sat buys at least a contract, within one sat.
    #[test]
    fn margin_to_quantity_round_trips_within_one_unit(
        margin in prop_oneof![1u64..=10_000_000, 1u64..=100_000_000_000_000_000],
        price in any_price(),
        leverage in leverage(),
    ) {
        let quantity = quantity_for(margin, price, leverage).unwrap();
        let back = margin_for(quantity, price, leverage).unwrap();
        prop_assert!(back <= margin);
        prop_assert!(margin <= margin_for(quantity + 1, price, leverage).unwrap());
        if !cost_at_most(price, leverage, SAT_CENTS - 1) {
            prop_assert!(margin - back <= 1, "{} came back {}", margin, back);
        }
    }

    /// No close pays more than margin + P&L, nor less than zero, and when margin +
    /// P&L is not negative it pays exactly that.
    #[test]
    fn a_settlement_pays_margin_plus_pl_capped_below_at_zero(
        (side, quantity, entry, margin) in position(),
        exit in any_price(),
    ) {
        let result = pl(side, quantity, entry, exit).unwrap();
        let paid = i128::from(settlement(margin, result).unwrap());
        let equity = i128::from(margin) + i128::from(result);
        prop_assert!(paid >= 0);
        prop_assert!(paid <= equity.max(0));
        if equity >= 0 {
            prop_assert_eq!(paid, equity);
        }
    }

    /// A long is liquidated below its entry and a short above: never on the wrong
    /// side (rounding may land on the entry itself only when the margin does not
    /// cover one tick), and strictly beyond it whenever the margin covers a tick.
    #[test]
    fn a_long_is_liquidated_below_entry_and_a_short_above(
        side in side(),
        quantity in quantity(),
        entry in tick_price(),
        leverage in leverage(),
        added in prop_oneof![Just(0u64), 0u64..=1_000_000],
    ) {
        let margin = margin_for(quantity, entry, leverage).unwrap() + added;
        let liquidated = last_covered(side, quantity, entry, margin).unwrap();
        // The nearest tick is never on the wrong side of the entry either.
        match liquidation(side, quantity, entry, margin).unwrap() {
            Liquidation::At(price) if side == Side::Buy => prop_assert!(price <= entry),
            Liquidation::At(price) => prop_assert!(price >= entry),
            Liquidation::Never => prop_assert_eq!(side, Side::Sell),
        }
        let covers_a_tick = adverse_tick(side, entry)
            .is_some_and(|next| exact_equity_not_negative(side, quantity, entry, margin, next));
        match (side, liquidated) {
            (Side::Buy, Liquidation::At(price)) => {
                prop_assert!(price <= entry);
                prop_assert_eq!(price < entry, covers_a_tick);
            }
            (Side::Sell, Liquidation::At(price)) => {
                prop_assert!(price >= entry);
                prop_assert_eq!(price > entry, covers_a_tick);
            }
            (Side::Sell, Liquidation::Never) => {
                // Only a fully collateralised short: leverage 1 or less.
                prop_assert!(margin >= margin_for(quantity, entry, Leverage::whole(1)).unwrap());
            }
            (Side::Buy, Liquidation::Never) => prop_assert!(false, "a long is always liquidable"),
        }
    }

    /// Adding margin moves the liquidation price away from the entry, never closer.
    #[test]
    fn more_margin_moves_liquidation_away(
        (side, quantity, entry, margin) in position(),
        added in 0u64..=1_000_000_000,
    ) {
        let before = liquidation(side, quantity, entry, margin).unwrap();
        let after = liquidation(side, quantity, entry, margin + added).unwrap();
        match (side, before, after) {
            (Side::Buy, Liquidation::At(b), Liquidation::At(a)) => prop_assert!(a <= b),
            (Side::Sell, Liquidation::At(b), Liquidation::At(a)) => prop_assert!(a >= b),
            (Side::Sell, _, Liquidation::Never) => {}
            (side, before, after) => {
                prop_assert!(false, "{:?}: {:?} became {:?}", side, before, after)
            }
        }
    }

    /// A stop-loss the checks accept triggers while the margin still covers the
    /// loss, so closing at it pays exactly margin + P&L; a take-profit they accept
    /// closes at no less than the position is worth now.
    #[test]
    fn accepted_triggers_close_within_the_margin(
        (side, quantity, entry, margin, reference, trigger) in position()
            .prop_flat_map(|(side, quantity, entry, margin)| {
                // References and triggers within 20 % of the entry, on the 0.1 grid.
                let near = move |permille: u64| {
                    Price::from_cents(entry.cents() / 10 * permille / 1000 * 10)
                };
                (Just(side), Just(quantity), Just(entry), Just(margin), 800u64..=1200, 800u64..=1200)
                    .prop_map(move |(s, q, e, m, r, t)| (s, q, e, m, near(r), near(t)))
            }),
    ) {
        let covered = last_covered(side, quantity, entry, margin).unwrap();
        if check_stoploss(side, trigger, reference, covered).is_ok() {
            let result = pl(side, quantity, entry, trigger).unwrap();
            let equity = i128::from(margin) + i128::from(result);
            prop_assert!(equity >= 0);
            prop_assert_eq!(i128::from(settlement(margin, result).unwrap()), equity);
        }
        if check_takeprofit(side, trigger, reference).is_ok() {
            let now = pl(side, quantity, entry, reference).unwrap();
            prop_assert!(pl(side, quantity, entry, trigger).unwrap() >= now);
        }
    }
}
