//! Decimal amounts at the API edge. A request may send a JSON number or a string;
//! either way the amount is the exact text that was sent (a number is never read
//! through a float), parsed once by `Unit::parse_amount`. A response writes the
//! exact decimal as a JSON number, and, when it is in usd, the rate it was
//! converted at ([`Rate`]).

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// A decimal amount in the account's denomination, as text ("0.0015", "1500").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount(pub String);

impl Amount {
    /// The amount for people to read, its whole part grouped by thousands.
    pub fn grouped(&self) -> String {
        group_thousands(&self.0)
    }
}

/// Decimal text for people to read: `-1234567.891` becomes `-1,234,567.891`.
/// Only the whole part is grouped; text that is not a plain decimal is
/// answered unchanged. The APIs never group: this is for the pages.
pub fn group_thousands(text: &str) -> String {
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return text.to_string();
    }
    let mut grouped = String::with_capacity(text.len() + whole.len() / 3);
    grouped.push_str(sign);
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if let Some(fraction) = fraction {
        grouped.push('.');
        grouped.push_str(fraction);
    }
    grouped
}

impl Serialize for Amount {
    /// A valid JSON number is written as one, digit for digit; anything else a
    /// user typed ("1.", "007") travels as a string, for the server to judge.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let looks_numeric = !self.0.is_empty()
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
        match RawValue::from_string(self.0.clone()) {
            Ok(raw) if looks_numeric => raw.serialize(serializer),
            _ => serializer.serialize_str(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    /// Reads the value's JSON text as written (serde_json's raw value, so this
    /// works only under serde_json, which every codec carrying an amount uses):
    /// a number keeps all its digits, exponent and sign for the parser to judge
    /// (`1.0000000000000000001`, `1e3` and `-0` are refused there with a 400,
    /// never rounded); a string is unescaped. Anything else is refused here.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <Box<RawValue>>::deserialize(deserializer)?;
        let text = raw.get();
        match text.bytes().next() {
            Some(b'"') => serde_json::from_str::<String>(text)
                .map(Amount)
                .map_err(de::Error::custom),
            Some(b'-' | b'0'..=b'9') => Ok(Amount(text.to_string())),
            _ => Err(de::Error::invalid_value(
                de::Unexpected::Other(text),
                &"an amount, as a number or a decimal string",
            )),
        }
    }
}

/// The BTC/USD rate a response's usd amounts were converted at (an addition
/// to the spec, present only when the amounts are in usd).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// USD per BTC, with both cents: `"100000.00"`.
    pub usd: String,
    /// When the desk took that index (RFC 3339, UTC).
    pub at: String,
    /// The price is older than the desk trades on: amounts are shown at it,
    /// and amounts in usd are not accepted (503) until it is fresh again.
    pub stale: bool,
}

#[cfg(feature = "ssr")]
impl Rate {
    /// The rate of `unit`, if it converts at one.
    pub fn of(unit: engine::Unit) -> Option<Rate> {
        unit.rate().map(|rate| Rate {
            usd: rate.usd_per_btc(),
            at: engine::rfc3339(rate.at_ms()),
            stale: rate.is_stale(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_group_whole_parts_by_thousands_and_leave_other_text_alone() {
        for (text, shown) in [
            ("0", "0"),
            ("999", "999"),
            ("1000", "1,000"),
            ("1000000", "1,000,000"),
            ("-1234567.891", "-1,234,567.891"),
            ("12345.00001", "12,345.00001"),
            ("100000.5", "100,000.5"),
            ("", ""),
            ("abc", "abc"),
            ("1e6", "1e6"),
        ] {
            assert_eq!(group_thousands(text), shown, "{text}");
        }
    }

    #[test]
    fn amounts_read_numbers_and_strings_and_write_exact_numbers() {
        let read = |json: &str| serde_json::from_str::<Amount>(json).unwrap().0;
        assert_eq!(read("1500"), "1500");
        assert_eq!(read("0.1"), "0.1");
        assert_eq!(read("0.00000000001"), "0.00000000001");
        assert_eq!(read("\"12.345\""), "12.345");
        assert_eq!(read("\"1\\u0032\""), "12");
        assert_eq!(read("-5"), "-5");
        assert_eq!(read(" 7 "), "7");
        for not_an_amount in ["true", "null", "[1]", "{\"a\":1}", "1.", "NaN", ""] {
            assert!(
                serde_json::from_str::<Amount>(not_an_amount).is_err(),
                "{not_an_amount}"
            );
        }
        assert_eq!(
            serde_json::to_string(&Amount("0.00000000001".into())).unwrap(),
            "0.00000000001"
        );
        assert_eq!(
            serde_json::to_string(&Amount("12345678.90123456789".into())).unwrap(),
            "12345678.90123456789"
        );
        // What a user typed that is no JSON number still reaches the server.
        for typed in ["1.", ".5", "007", "1-2", "abc"] {
            let json = serde_json::to_string(&Amount(typed.into())).unwrap();
            assert_eq!(read(&json), typed);
        }
    }

    #[test]
    fn numbers_keep_every_digit_a_float_would_lose() {
        let read = |json: &str| serde_json::from_str::<Amount>(json).unwrap().0;
        for exact in [
            "1.0000000000000000001",
            "1e3",
            "1E-7",
            "-0",
            "1e99999999",
            "123456789012345678901234567890",
            "0.1000000000000000055511151231257827",
        ] {
            assert_eq!(read(exact), exact);
        }
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn the_parser_refuses_what_it_cannot_take_exactly_with_a_reason() {
        let read = |json: &str| serde_json::from_str::<Amount>(json).unwrap().0;
        let unit = engine::Unit::Sat;
        for (text, reason) in [
            ("1.0000000000000000001", "decimal places"),
            ("1e3", "decimal number"),
            ("-0", "negative"),
            ("1e99999999", "decimal number"),
            ("123456789012345678901234567890", "21 million"),
        ] {
            let err = unit.parse_amount("amount", &read(text)).unwrap_err();
            assert!(err.to_string().contains(reason), "{text}: {err}");
        }
    }

    /// Server functions read their arguments as one generated struct through
    /// serde_json: the raw number must come through a field, an `Option`, and a
    /// missing field.
    #[test]
    fn server_function_arguments_carry_the_exact_text() {
        use crate::api::mylightning::{CreateInvoice, QuickPay, SendInvoice};
        let body = r#"{"amount": 1.0000000000000000001, "memo": "m"}"#;
        let args: CreateInvoice = serde_json::from_str(body).unwrap();
        assert_eq!(args.amount.unwrap().0, "1.0000000000000000001");
        let args: CreateInvoice = serde_json::from_str(r#"{"memo": "m"}"#).unwrap();
        assert_eq!(args.amount, None);
        let args: CreateInvoice = serde_json::from_str(r#"{"amount": null}"#).unwrap();
        assert_eq!(args.amount, None);
        let args: SendInvoice =
            serde_json::from_str(r#"{"invoiceid": "x", "fee_limit": 0.10000000000000001}"#)
                .unwrap();
        assert_eq!(args.fee_limit.unwrap().0, "0.10000000000000001");
        assert_eq!(args.amount, None);
        let args: QuickPay =
            serde_json::from_str(r#"{"dest": "hub", "amount": 12345678901234567890.5}"#).unwrap();
        assert_eq!(args.amount.0, "12345678901234567890.5");
        assert!(serde_json::from_str::<QuickPay>(r#"{"dest": "hub"}"#).is_err());
        assert!(serde_json::from_str::<QuickPay>(r#"{"dest": "hub", "amount": true}"#).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 256,
            ..Default::default()
        })]

        #[test]
        fn whatever_a_user_types_reaches_the_server_as_typed(
            typed in proptest::prelude::any::<String>(),
        ) {
            let json = serde_json::to_string(&Amount(typed.clone())).unwrap();
            let read: Amount = serde_json::from_str(&json).unwrap();
            proptest::prop_assert_eq!(read.0, typed);
        }

        #[test]
        fn json_numbers_are_read_digit_for_digit(
            number in "-?(0|[1-9][0-9]{0,40})(\\.[0-9]{1,40})?([eE][+-]?[0-9]{1,6})?",
        ) {
            let read: Amount = serde_json::from_str(&number).unwrap();
            proptest::prop_assert_eq!(&read.0, &number);
            let body = format!(r#"{{"amount": {number}, "memo": null}}"#);
            let args: crate::api::mylightning::CreateInvoice = serde_json::from_str(&body).unwrap();
            proptest::prop_assert_eq!(args.amount.map(|a| a.0), Some(number));
        }
    }
}
