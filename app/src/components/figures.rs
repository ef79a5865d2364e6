//! How the desk's figures read on screen: prices in USD and amounts in sats,
//! grouped by thousands, and sats in the account's own unit at the index.

use contract::Price;

use crate::api::group_thousands;

/// `10,193.5`: a price as the API writes it, grouped.
pub fn usd(price: Price) -> String {
    group_thousands(&price.to_string())
}

/// `1,234,567 sat`, `-13,640 sat`.
pub fn sats(amount: i64) -> String {
    format!("{} sat", group_thousands(&amount.to_string()))
}

/// `+1,234 sat` for a gain, `-1,234 sat` for a loss.
pub fn signed_sats(amount: i64) -> String {
    if amount > 0 {
        format!("+{}", sats(amount))
    } else {
        sats(amount)
    }
}

/// `amount` sats in `unit` (the account's denomination) at `index`, or `None`
/// for sat itself. USD to the cent, rounded half away from zero.
pub fn in_unit(amount: i64, unit: &str, index: Price) -> Option<String> {
    let msat = i128::from(amount) * 1000;
    let text = match unit {
        "usd" => {
            // sats * cents-per-BTC / 1e8 sats-per-BTC = cents.
            let scaled = i128::from(amount) * i128::from(index.cents());
            let cents = (scaled.abs() + 50_000_000) / 100_000_000 * scaled.signum();
            let sign = if cents < 0 { "-" } else { "" };
            let cents = cents.abs();
            format!(
                "{sign}{}.{:02} USD",
                group_thousands(&(cents / 100).to_string()),
                cents % 100
            )
        }
        "btc" => format!("{} BTC", decimal(msat, 11)),
        "mbtc" => format!("{} mBTC", decimal(msat, 8)),
        "bits" => format!("{} bits", decimal(msat, 5)),
        _ => return None,
    };
    Some(text)
}

/// `value / 10^places` exactly, trailing zeros dropped, grouped.
fn decimal(value: i128, places: u32) -> String {
    let scale = 10i128.pow(places);
    let sign = if value < 0 { "-" } else { "" };
    let (whole, fraction) = (value.abs() / scale, value.abs() % scale);
    let fraction = format!("{fraction:0width$}", width = places as usize);
    let fraction = fraction.trim_end_matches('0');
    let whole = group_thousands(&whole.to_string());
    if fraction.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction}")
    }
}

/// Unix milliseconds of an RFC 3339 time in UTC (`2026-12-01T11:40:36.123Z`),
/// as the APIs write times; `None` for anything else.
pub fn unix_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !text.ends_with('Z') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let millis = match text.get(19..text.len() - 1)? {
        "" => 0,
        fraction => {
            let digits = fraction.strip_prefix('.')?;
            let padded = format!("{digits:0<3}");
            num_text(padded.get(..3)?)?
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

fn num_text(text: &str) -> Option<i64> {
    text.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| text.parse().ok())?
}

/// `12.5 %` of `of` (a margin), to a tenth, or nothing for a zero base.
pub fn percent(part: i64, of: i64) -> String {
    if of == 0 {
        return String::new();
    }
    let (part, of) = (i128::from(part) * 1000, i128::from(of).abs());
    let tenths = (part.abs() + of / 2) / of * part.signum();
    let sign = if tenths < 0 {
        "-"
    } else if tenths > 0 {
        "+"
    } else {
        ""
    };
    format!("{sign}{}.{} %", tenths.abs() / 10, tenths.abs() % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_grouped_and_exact() {
        let index = Price::parse("100000").unwrap();
        assert_eq!(usd(Price::parse("10193.5").unwrap()), "10,193.5");
        assert_eq!(sats(-13_640), "-13,640 sat");
        assert_eq!(signed_sats(1_234), "+1,234 sat");
        assert_eq!(in_unit(136_536, "usd", index).unwrap(), "136.54 USD");
        assert_eq!(in_unit(-13_640, "usd", index).unwrap(), "-13.64 USD");
        assert_eq!(in_unit(150_000_000, "btc", index).unwrap(), "1.5 BTC");
        assert_eq!(in_unit(1_234, "mbtc", index).unwrap(), "0.01234 mBTC");
        assert_eq!(in_unit(1_234, "bits", index).unwrap(), "12.34 bits");
        assert_eq!(in_unit(1_234, "sat", index), None);
        assert_eq!(percent(-13_640, 136_536), "-10.0 %");
        assert_eq!(percent(1, 8), "+12.5 %");
        assert_eq!(percent(0, 8), "0.0 %");
        assert_eq!(unix_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_ms("2026-12-01T11:40:36.123Z"), Some(1_796_125_236_123));
        assert_eq!(unix_ms("2024-02-29T00:00:00.5Z"), Some(1_709_164_800_500));
        assert_eq!(unix_ms("yesterday"), None);
        assert_eq!(unix_ms("2026-12-01T11:40:36+01:00"), None);
    }
}
