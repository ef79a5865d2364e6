//! Money: every amount is an integer number of millisatoshis (`Msat`). Decimal
//! amounts in a user's denomination are parsed and printed exactly, here and only
//! here, with no floating point anywhere; amounts in usd are converted at the
//! desk's BTC/USD index in integer arithmetic, exact to the cent.

use serde::{Deserialize, Serialize};

use crate::desk::contract::Price;
use crate::desk::Market;
use crate::{Error, Result};

/// An amount in millisatoshis.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Msat(pub i64);

/// Every bitcoin there will ever be, in msat: no amount may exceed it. The
/// database refuses any balance or amount above it too (migration 0003).
pub const MAX_MONEY: Msat = Msat(21_000_000 * 100_000_000 * 1000);

/// Amount arithmetic is checked: an overflow is an answer (`None`), never a wrap
/// or a panic. Callers turn it into the error that fits where it happened.
impl Msat {
    pub const ZERO: Msat = Msat(0);

    /// For constants and trusted settings: saturates instead of wrapping, so an
    /// absurd value lands far above [`MAX_MONEY`], where every check refuses it.
    /// Outside input goes through [`Msat::checked_from_sat`].
    pub const fn from_sat(sat: i64) -> Msat {
        Msat(sat.saturating_mul(1000))
    }

    /// `sat` satoshis, unless that does not fit.
    pub const fn checked_from_sat(sat: i64) -> Option<Msat> {
        match sat.checked_mul(1000) {
            Some(msat) => Some(Msat(msat)),
            None => None,
        }
    }

    /// Whole satoshis, rounded down.
    pub const fn sat(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn is_whole_sat(self) -> bool {
        self.0 % 1000 == 0
    }

    /// The next whole satoshi at or above this amount, unless that does not fit.
    pub fn round_up_to_sat(self) -> Option<Msat> {
        match self.0.rem_euclid(1000) {
            0 => Some(self),
            part => self.0.checked_add(1000 - part).map(Msat),
        }
    }

    /// From zero to every bitcoin there will ever be: what a balance or an amount
    /// can be.
    pub fn is_within_supply(self) -> bool {
        (0..=MAX_MONEY.0).contains(&self.0)
    }

    pub fn checked_add(self, other: Msat) -> Option<Msat> {
        self.0.checked_add(other.0).map(Msat)
    }

    pub fn checked_sub(self, other: Msat) -> Option<Msat> {
        self.0.checked_sub(other.0).map(Msat)
    }

    pub fn checked_mul(self, factor: i64) -> Option<Msat> {
        self.0.checked_mul(factor).map(Msat)
    }

    /// The sum of `amounts`, unless it overflows.
    pub fn checked_sum(amounts: impl IntoIterator<Item = Msat>) -> Option<Msat> {
        amounts
            .into_iter()
            .try_fold(Msat::ZERO, |sum, amount| sum.checked_add(amount))
    }
}

/// The unit a user reads and types amounts in: the account's setting. The
/// bitcoin units are fixed powers of ten of a millisatoshi; `usd` converts at
/// the desk's BTC/USD index, so amounts are read and written through the
/// [`Unit`] a denomination gives with the rate of the moment
/// ([`Denomination::unit`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Denomination {
    #[default]
    Sat,
    Btc,
    Mbtc,
    Bits,
    Usd,
}

impl Denomination {
    pub const ALL: [Denomination; 5] = [
        Denomination::Sat,
        Denomination::Btc,
        Denomination::Mbtc,
        Denomination::Bits,
        Denomination::Usd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Denomination::Sat => "sat",
            Denomination::Btc => "btc",
            Denomination::Mbtc => "mbtc",
            Denomination::Bits => "bits",
            Denomination::Usd => "usd",
        }
    }

    pub fn parse(name: &str) -> Result<Self> {
        Denomination::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                Error::invalid(
                    "denomination",
                    "denomination must be one of sat, btc, mbtc, bits, usd",
                )
            })
    }

    /// The unit amounts are read and written in now. A bitcoin unit needs
    /// nothing more; `usd` takes the desk's latest BTC/USD index, marked stale
    /// when the desk would not trade on it: amounts are then still shown at it
    /// (with its time), but none is read at it ([`Unit::parse_amount`] answers
    /// 503). Without any index yet, `usd` is unavailable.
    pub fn unit(self, market: &Market) -> Result<Unit> {
        let bitcoin = match self {
            Denomination::Sat => Unit::Sat,
            Denomination::Btc => Unit::Btc,
            Denomination::Mbtc => Unit::Mbtc,
            Denomination::Bits => Unit::Bits,
            Denomination::Usd => {
                let (quote, stale) = match market.fresh() {
                    Ok(quote) => (quote, false),
                    Err(Error::Unavailable(_)) => match market.latest() {
                        Some(quote) => (quote, true),
                        None => return Err(no_usd_rate()),
                    },
                    Err(err) => return Err(err),
                };
                let rate = UsdRate::new(quote.index, quote.at_ms, stale).ok_or_else(no_usd_rate)?;
                return Ok(Unit::Usd(rate));
            }
        };
        Ok(bitcoin)
    }
}

fn no_usd_rate() -> Error {
    Error::Unavailable(
        "there is no BTC/USD price yet, so amounts in usd cannot be converted; \
         try again shortly, or choose another denomination"
            .into(),
    )
}

/// Millisatoshis in one bitcoin.
const MSAT_PER_BTC: u128 = 100_000_000_000;

/// The BTC/USD index amounts in usd are converted at, and when it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsdRate {
    /// Cents per bitcoin, never zero.
    index: Price,
    /// When the index was taken, Unix ms.
    at_ms: i64,
    /// Older than the desk trades on when it was read.
    stale: bool,
}

impl UsdRate {
    /// The rate of `index` (cents per BTC) taken at `at_ms`; `None` for a zero
    /// index, which converts nothing.
    pub fn new(index: Price, at_ms: i64, stale: bool) -> Option<UsdRate> {
        (index.cents() > 0).then_some(UsdRate {
            index,
            at_ms,
            stale,
        })
    }

    pub fn index(self) -> Price {
        self.index
    }

    pub fn at_ms(self) -> i64 {
        self.at_ms
    }

    pub fn is_stale(self) -> bool {
        self.stale
    }

    /// USD per bitcoin with both cents ("100000.00").
    pub fn usd_per_btc(self) -> String {
        let cents = self.index.cents();
        format!("{}.{:02}", cents / 100, cents % 100)
    }

    /// `cents` in millisatoshis: `cents * 10^11 / index`, rounded up, so the
    /// amount is never worth less than the dollars typed at this index (an
    /// invoice asked in USD never asks less than that, a positive amount never
    /// becomes zero); it is worth at most one msat more. `None` beyond 21
    /// million BTC.
    pub fn msat_of_cents(self, cents: u128) -> Option<Msat> {
        // At most 10^21 cents (what the parser lets through) times 10^11: far
        // inside a u128.
        let msat = cents
            .checked_mul(MSAT_PER_BTC)?
            .div_ceil(u128::from(self.index.cents()));
        i64::try_from(msat)
            .ok()
            .map(Msat)
            .filter(|m| *m <= MAX_MONEY)
    }

    /// `amount` in cents, to the nearest cent (a half cent away from zero).
    pub fn cents_of(self, amount: Msat) -> i128 {
        // |msat| < 2^63 and index < 2^64: the product fits a u128.
        let scaled = u128::from(amount.0.unsigned_abs()) * u128::from(self.index.cents());
        let cents = ((scaled + MSAT_PER_BTC / 2) / MSAT_PER_BTC) as i128;
        if amount.0 < 0 {
            -cents
        } else {
            cents
        }
    }
}

/// A denomination ready to read and write amounts: `usd` with the rate it
/// converts at. This is the one place amounts are parsed and printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Sat,
    Btc,
    Mbtc,
    Bits,
    Usd(UsdRate),
}

impl Unit {
    /// The units that are exact powers of ten of a millisatoshi.
    pub const BITCOIN: [Unit; 4] = [Unit::Sat, Unit::Btc, Unit::Mbtc, Unit::Bits];

    pub fn denomination(self) -> Denomination {
        match self {
            Unit::Sat => Denomination::Sat,
            Unit::Btc => Denomination::Btc,
            Unit::Mbtc => Denomination::Mbtc,
            Unit::Bits => Denomination::Bits,
            Unit::Usd(_) => Denomination::Usd,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.denomination().as_str()
    }

    /// The rate amounts are converted at (`usd` only).
    pub fn rate(self) -> Option<UsdRate> {
        match self {
            Unit::Usd(rate) => Some(rate),
            _ => None,
        }
    }

    /// Decimal places this unit is written with: down to a millisatoshi, or
    /// to a cent.
    fn decimals(self) -> u32 {
        match self {
            Unit::Sat => 3,
            Unit::Bits => 5,
            Unit::Mbtc => 8,
            Unit::Btc => 11,
            Unit::Usd(_) => 2,
        }
    }

    /// Parses a decimal amount ("0.001", "1500", "2.5e3" is refused) exactly.
    /// Refuses signs, exponents, more decimal places than a millisatoshi (in
    /// usd: a cent) allows, and amounts above 21 million BTC. Zero is accepted;
    /// callers that need a positive amount say so with [`Msat`] checks of
    /// their own. An amount in usd is converted by [`UsdRate::msat_of_cents`]
    /// (rounded up), and only at a fresh rate: at a stale one it is refused as
    /// unavailable (503), since the price it would be read at is not known.
    pub fn parse_amount(self, field: &'static str, text: &str) -> Result<Msat> {
        let invalid = |message: &str| Error::invalid(field, message.to_string());
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid("amount is required"));
        }
        if text.starts_with('-') {
            return Err(invalid("amount must not be negative"));
        }
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || !digits(fraction) || (whole.is_empty() && fraction.is_empty()) {
            return Err(invalid("amount must be a decimal number"));
        }
        let decimals = self.decimals() as usize;
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > decimals {
            let smallest = match self {
                Unit::Usd(_) => "a cent",
                _ => "a millisatoshi",
            };
            return Err(invalid(&format!(
                "amount has more decimal places than {smallest} in {} ({decimals} at most)",
                self.as_str(),
            )));
        }
        let too_large = || invalid("amount exceeds 21 million BTC");
        let whole = whole.trim_start_matches('0');
        if whole.len() > 19 {
            return Err(too_large());
        }
        // At most 19 + 11 digits: far inside a u128.
        let scaled: u128 = format!("{whole}{fraction:0<decimals$}")
            .parse()
            .unwrap_or(0);
        match self {
            Unit::Usd(rate) => {
                if rate.stale {
                    return Err(Error::Unavailable(format!(
                        "the BTC/USD price is stale (last at {}), so amounts in usd cannot be \
                         converted; try again shortly, or choose another denomination",
                        crate::rfc3339(rate.at_ms)
                    )));
                }
                rate.msat_of_cents(scaled).ok_or_else(|| {
                    invalid(&format!(
                        "amount exceeds 21 million BTC (at {} USD/BTC)",
                        rate.usd_per_btc()
                    ))
                })
            }
            _ => match i64::try_from(scaled) {
                Ok(msat) if msat <= MAX_MONEY.0 => Ok(Msat(msat)),
                _ => Err(too_large()),
            },
        }
    }

    /// The exact decimal form of `amount` in this unit, without trailing
    /// zeros; in usd, to the nearest cent and always with both cents.
    pub fn format(self, amount: Msat) -> String {
        if let Unit::Usd(rate) = self {
            let cents = rate.cents_of(amount);
            let sign = if cents < 0 { "-" } else { "" };
            let abs = cents.unsigned_abs();
            return format!("{sign}{}.{:02}", abs / 100, abs % 100);
        }
        let scale = 10i64.pow(self.decimals());
        let sign = if amount.0 < 0 { "-" } else { "" };
        let abs = amount.0.unsigned_abs();
        let whole = abs / scale as u64;
        let fraction = abs % scale as u64;
        if fraction == 0 {
            return format!("{sign}{whole}");
        }
        let fraction = format!("{fraction:0>width$}", width = self.decimals() as usize);
        format!("{sign}{whole}.{}", fraction.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_exactly_in_every_denomination() {
        let cases = [
            (Unit::Sat, "1500", 1_500_000),
            (Unit::Sat, "0.001", 1),
            (Unit::Sat, "12.5", 12_500),
            (Unit::Btc, "0.00000001", 1000),
            (Unit::Btc, "1", 100_000_000_000),
            (Unit::Btc, "0.00000000001", 1),
            (Unit::Mbtc, "0.1", 10_000_000),
            (Unit::Bits, "1", 100_000),
            (Unit::Bits, ".5", 50_000),
            (Unit::Sat, "007", 7000),
            (Unit::Btc, "21000000", MAX_MONEY.0),
            (Unit::Sat, "0", 0),
        ];
        for (unit, text, msat) in cases {
            assert_eq!(
                unit.parse_amount("amount", text).unwrap(),
                Msat(msat),
                "{text} {unit:?}"
            );
        }
    }

    #[test]
    fn bad_amounts_are_refused_with_a_reason() {
        let usd = Unit::Usd(rate(10_000_000));
        let cases = [
            (Unit::Sat, "-1", "negative"),
            (Unit::Sat, "", "required"),
            (Unit::Sat, "abc", "decimal number"),
            (Unit::Sat, "1e3", "decimal number"),
            (Unit::Sat, "NaN", "decimal number"),
            (Unit::Sat, "+5", "decimal number"),
            (Unit::Sat, ".", "decimal number"),
            (Unit::Sat, "1.0001", "decimal places"),
            (Unit::Btc, "0.000000000001", "decimal places"),
            (Unit::Btc, "21000000.00000000001", "21 million"),
            (Unit::Sat, "99999999999999999999999", "21 million"),
            (usd, "-0.01", "negative"),
            (usd, "-0", "negative"),
            (usd, "1e2", "decimal number"),
            (usd, "", "required"),
            (usd, "0.001", "than a cent in usd (2 at most)"),
            (usd, "12.345", "than a cent in usd (2 at most)"),
            (usd, "99999999999999999999", "21 million"),
            // 21 million BTC at 100,000 USD/BTC is 2.1 trillion USD.
            (
                usd,
                "2100000000000.01",
                "21 million BTC (at 100000.00 USD/BTC)",
            ),
        ];
        for (unit, text, reason) in cases {
            let err = unit.parse_amount("amount", text).unwrap_err();
            assert!(err.to_string().contains(reason), "{text}: {err}");
            assert_eq!(err.field(), Some("amount"));
        }
    }

    #[test]
    fn formatting_round_trips() {
        for unit in Unit::BITCOIN {
            for msat in [0, 1, 999, 1000, 123_456_789, MAX_MONEY.0] {
                let text = unit.format(Msat(msat));
                assert_eq!(
                    unit.parse_amount("amount", &text).unwrap(),
                    Msat(msat),
                    "{text}"
                );
            }
        }
        assert_eq!(Unit::Btc.format(Msat(150_000_000)), "0.0015");
        assert_eq!(Unit::Sat.format(Msat(-2500)), "-2.5");
    }

    #[test]
    fn satoshis_from_outside_are_checked_and_constants_saturate() {
        assert_eq!(Msat::checked_from_sat(i64::MAX), None);
        assert_eq!(Msat::checked_from_sat(-3), Some(Msat(-3000)));
        assert_eq!(Msat::from_sat(i64::MAX), Msat(i64::MAX));
        assert_eq!(Msat::from_sat(i64::MIN), Msat(i64::MIN));
        assert!(!Msat::from_sat(i64::MAX).is_within_supply());
        assert_eq!(Msat(1).round_up_to_sat(), Some(Msat(1000)));
        assert_eq!(Msat(2000).round_up_to_sat(), Some(Msat(2000)));
        assert_eq!(Msat(i64::MAX).round_up_to_sat(), None);
    }

    #[test]
    fn denominations_parse_by_name() {
        assert_eq!(Denomination::parse("MBTC").unwrap(), Denomination::Mbtc);
        assert_eq!(Denomination::parse(" Usd ").unwrap(), Denomination::Usd);
        let err = Denomination::parse("eur").unwrap_err();
        assert!(
            err.to_string().contains("sat, btc, mbtc, bits, usd"),
            "{err}"
        );
        for d in Denomination::ALL {
            assert_eq!(Denomination::parse(d.as_str()).unwrap(), d);
        }
    }

    /// A fresh rate of `cents` per BTC.
    fn rate(cents: u64) -> UsdRate {
        UsdRate::new(Price::from_cents(cents), 1_700_000_000_000, false).unwrap()
    }

    #[test]
    fn dollars_convert_at_the_index_rounded_up_to_the_next_msat() {
        // 100,000.00 USD/BTC: a cent is exactly 10 sats.
        let usd = Unit::Usd(rate(10_000_000));
        for (text, msat) in [
            ("0.01", 10_000),
            ("1", 1_000_000),
            ("1.5", 1_500_000),
            ("12.30", 12_300_000),
            ("100000", 100_000_000_000),
            ("0", 0),
            ("0.00", 0),
            ("2100000000000", MAX_MONEY.0),
        ] {
            assert_eq!(
                usd.parse_amount("amount", text).unwrap(),
                Msat(msat),
                "{text}"
            );
        }
        // 30,000.00 USD/BTC: a cent is 33,333.33... msat, asked as 33,334 (the
        // invoice is never worth less than the cent), 3 cents exactly 100,000.
        let usd = Unit::Usd(rate(3_000_000));
        assert_eq!(usd.parse_amount("amount", "0.01").unwrap(), Msat(33_334));
        assert_eq!(usd.parse_amount("amount", "0.03").unwrap(), Msat(100_000));
        assert_eq!(usd.parse_amount("amount", "0.02").unwrap(), Msat(66_667));
        // An odd index: 12,345.67 USD/BTC. 10 USD = 10^14 / 1,234,567 msat
        // = 81,000,059.13... -> 81,000,060.
        let usd = Unit::Usd(rate(1_234_567));
        assert_eq!(usd.parse_amount("amount", "10").unwrap(), Msat(81_000_060));
        // A positive amount never becomes zero, even at an absurd index.
        let usd = Unit::Usd(rate(u64::MAX));
        assert_eq!(usd.parse_amount("amount", "0.01").unwrap(), Msat(1));
    }

    #[test]
    fn msat_show_in_dollars_to_the_nearest_cent() {
        let usd = Unit::Usd(rate(10_000_000));
        for (msat, text) in [
            (0, "0.00"),
            (10_000, "0.01"),
            (4_999, "0.00"),
            (5_000, "0.01"), // half a cent rounds away from zero
            (14_999, "0.01"),
            (15_000, "0.02"),
            (1_000_000, "1.00"),
            (123_456_789, "123.46"),
            (MAX_MONEY.0, "2100000000000.00"),
            (-5_000, "-0.01"),
            (-4_999, "0.00"), // no negative zero
            (-123_456_789, "-123.46"),
        ] {
            assert_eq!(usd.format(Msat(msat)), text, "{msat}");
        }
        // The extremes of an i64 and of an index fit the arithmetic.
        let huge = Unit::Usd(rate(u64::MAX));
        assert!(huge
            .format(Msat(i64::MAX))
            .ends_with(|c: char| c.is_ascii_digit()));
        assert!(huge.format(Msat(i64::MIN)).starts_with('-'));
    }

    #[test]
    fn dollars_typed_read_back_as_typed() {
        // Rounding up by less than a msat moves the amount by far less than
        // half a cent at any index below 500 million USD/BTC, so what was typed reads back.
        for index in [
            1,
            99,
            2_500_000,
            3_000_000,
            1_234_567,
            10_000_000,
            4_999_999_999,
        ] {
            let usd = Unit::Usd(rate(index));
            for cents in [1u64, 7, 99, 100, 1_234, 50_000, 123_456_789, 9_999_999_999] {
                let typed = format!("{}.{:02}", cents / 100, cents % 100);
                let Ok(msat) = usd.parse_amount("amount", &typed) else {
                    // Beyond 21 million BTC at a tiny index.
                    assert!(
                        u128::from(cents) * MSAT_PER_BTC / u128::from(index) > MAX_MONEY.0 as u128
                    );
                    continue;
                };
                assert_eq!(usd.format(msat), typed, "{typed} at {index}");
                // Never less than the dollars typed, at most a msat more.
                let worth = u128::from(msat.0 as u64) * u128::from(index);
                assert!(
                    worth >= u128::from(cents) * MSAT_PER_BTC,
                    "{typed} at {index}"
                );
                assert!(worth < (u128::from(cents) * MSAT_PER_BTC) + u128::from(index));
            }
        }
    }

    #[test]
    fn a_stale_rate_shows_amounts_but_reads_none() {
        let stale = Unit::Usd(UsdRate::new(Price::from_cents(10_000_000), 0, true).unwrap());
        assert_eq!(stale.format(Msat(1_000_000)), "1.00");
        let err = stale.parse_amount("amount", "1").unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
        assert!(
            err.to_string()
                .contains("stale (last at 1970-01-01T00:00:00Z)"),
            "{err}"
        );
        // A malformed amount is still the client's mistake first.
        let err = stale.parse_amount("amount", "1.001").unwrap_err();
        assert_eq!(err.field(), Some("amount"));
    }

    #[test]
    fn a_zero_index_is_no_rate() {
        assert_eq!(UsdRate::new(Price::from_cents(0), 0, false), None);
        assert_eq!(rate(10_000_000).usd_per_btc(), "100000.00");
        assert_eq!(rate(1_234_567).usd_per_btc(), "12345.67");
        assert_eq!(rate(5).usd_per_btc(), "0.05");
    }
}
