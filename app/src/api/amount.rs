//! Decimal amounts at the API edge. A request may send a JSON number or a string;
//! a response writes the exact decimal as a JSON number (never through a float).

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A decimal amount in the account's denomination, as text ("0.0015", "1500").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount(pub String);

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let is_number = !self.0.is_empty()
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
        if is_number {
            let raw = serde_json::value::RawValue::from_string(self.0.clone())
                .map_err(serde::ser::Error::custom)?;
            raw.serialize(serializer)
        } else {
            serializer.serialize_str(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AmountVisitor;
        impl Visitor<'_> for AmountVisitor {
            type Value = Amount;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an amount, as a number or a decimal string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
                Ok(Amount(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
                Ok(Amount(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
                Ok(Amount(v.to_string()))
            }
            /// A JSON number with a fraction arrives as the nearest double; its
            /// shortest round-trip form is the decimal that was written (for up to
            /// 15 significant digits; send a string for more).
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Amount, E> {
                if v.is_finite() {
                    Ok(Amount(v.to_string()))
                } else {
                    Err(E::custom("amount must be a finite number"))
                }
            }
        }
        deserializer.deserialize_any(AmountVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_numbers_and_strings_and_write_exact_numbers() {
        let read = |json: &str| serde_json::from_str::<Amount>(json).unwrap().0;
        assert_eq!(read("1500"), "1500");
        assert_eq!(read("0.1"), "0.1");
        assert_eq!(read("0.00000000001"), "0.00000000001");
        assert_eq!(read("\"12.345\""), "12.345");
        assert_eq!(read("-5"), "-5");
        assert!(serde_json::from_str::<Amount>("true").is_err());
        assert_eq!(
            serde_json::to_string(&Amount("0.00000000001".into())).unwrap(),
            "0.00000000001"
        );
        assert_eq!(
            serde_json::to_string(&Amount("12345678.90123456789".into())).unwrap(),
            "12345678.90123456789"
        );
    }
}
