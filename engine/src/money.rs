//! Money: every amount is an integer number of millisatoshis (`Msat`). Decimal
//! amounts in a user's denomination are parsed and printed exactly, here and only
//! here, with no floating point anywhere.

use serde::{Deserialize, Serialize};

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

/// The unit a user reads and types amounts in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Denomination {
    #[default]
    Sat,
    Btc,
    Mbtc,
    Bits,
}

impl Denomination {
    pub const ALL: [Denomination; 4] = [
        Denomination::Sat,
        Denomination::Btc,
        Denomination::Mbtc,
        Denomination::Bits,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Denomination::Sat => "sat",
            Denomination::Btc => "btc",
            Denomination::Mbtc => "mbtc",
            Denomination::Bits => "bits",
        }
    }

    pub fn parse(name: &str) -> Result<Self> {
        Denomination::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                Error::invalid(
                    "denomination",
                    "denomination must be one of sat, btc, mbtc, bits",
                )
            })
    }

    /// Decimal places between this unit and a millisatoshi.
    fn decimals(self) -> u32 {
        match self {
            Denomination::Sat => 3,
            Denomination::Bits => 5,
            Denomination::Mbtc => 8,
            Denomination::Btc => 11,
        }
    }

    /// Parses a decimal amount ("0.001", "1500", "2.5e3" is refused) exactly.
    /// Refuses signs, exponents, more decimal places than a millisatoshi allows,
    /// and amounts above 21 million BTC. Zero is accepted; callers that need a
    /// positive amount say so with [`Msat`] checks of their own.
    pub fn parse_amount(self, field: &'static str, text: &str) -> Result<Msat> {
        let text = text.trim();
        let invalid = |message: &str| Error::invalid(field, message.to_string());
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
            return Err(invalid(&format!(
                "amount has more decimal places than a millisatoshi in {} ({} at most)",
                self.as_str(),
                decimals
            )));
        }
        let whole = whole.trim_start_matches('0');
        let too_large = || invalid("amount exceeds 21 million BTC");
        if whole.len() > 19 {
            return Err(too_large());
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_large())?
        };
        let padded = format!("{fraction:0<decimals$}");
        // At most 11 digits: always fits.
        let fraction: i64 = if padded.is_empty() {
            0
        } else {
            padded.parse().map_err(|_| too_large())?
        };
        let msat = whole
            .checked_mul(10i64.pow(self.decimals()))
            .and_then(|w| w.checked_add(fraction))
            .ok_or_else(too_large)?;
        if msat > MAX_MONEY.0 {
            return Err(too_large());
        }
        Ok(Msat(msat))
    }

    /// The exact decimal form of `amount` in this unit, without trailing zeros.
    pub fn format(self, amount: Msat) -> String {
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
            (Denomination::Sat, "1500", 1_500_000),
            (Denomination::Sat, "0.001", 1),
            (Denomination::Sat, "12.5", 12_500),
            (Denomination::Btc, "0.00000001", 1000),
            (Denomination::Btc, "1", 100_000_000_000),
            (Denomination::Btc, "0.00000000001", 1),
            (Denomination::Mbtc, "0.1", 10_000_000),
            (Denomination::Bits, "1", 100_000),
            (Denomination::Bits, ".5", 50_000),
            (Denomination::Sat, "007", 7000),
            (Denomination::Btc, "21000000", MAX_MONEY.0),
            (Denomination::Sat, "0", 0),
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
        let cases = [
            (Denomination::Sat, "-1", "negative"),
            (Denomination::Sat, "", "required"),
            (Denomination::Sat, "abc", "decimal number"),
            (Denomination::Sat, "1e3", "decimal number"),
            (Denomination::Sat, "NaN", "decimal number"),
            (Denomination::Sat, "+5", "decimal number"),
            (Denomination::Sat, ".", "decimal number"),
            (Denomination::Sat, "1.0001", "decimal places"),
            (Denomination::Btc, "0.000000000001", "decimal places"),
            (Denomination::Btc, "21000000.00000000001", "21 million"),
            (Denomination::Sat, "99999999999999999999999", "21 million"),
        ];
        for (unit, text, reason) in cases {
            let err = unit.parse_amount("amount", text).unwrap_err();
            assert!(err.to_string().contains(reason), "{text}: {err}");
            assert_eq!(err.field(), Some("amount"));
        }
    }

    #[test]
    fn formatting_round_trips() {
        for unit in Denomination::ALL {
            for msat in [0, 1, 999, 1000, 123_456_789, MAX_MONEY.0] {
                let text = unit.format(Msat(msat));
                assert_eq!(
                    unit.parse_amount("amount", &text).unwrap(),
                    Msat(msat),
                    "{text}"
                );
            }
        }
        assert_eq!(Denomination::Btc.format(Msat(150_000_000)), "0.0015");
        assert_eq!(Denomination::Sat.format(Msat(-2500)), "-2.5");
    }

    #[test]
    fn satoshis_from_outside_are_checked_and_constants_saturate() {
        assert_eq!(Msat::checked_from_sat(i64::MAX), None);
        assert_eq!(Msat::checked_from_sat(-3), Some(Msat(-3000)));
        assert_eq!(Msat::from_sat(i64::MAX), Msat(i64::MAX));
        assert_eq!(Msat::from_sat(i64::MIN), Msat(i64::MIN));
        assert!(!Msat::from_sat(i64::MAX).is_within_supply());
    }

    #[test]
    fn denominations_parse_by_name() {
        assert_eq!(Denomination::parse("MBTC").unwrap(), Denomination::Mbtc);
        assert!(Denomination::parse("usd").is_err());
    }
}
