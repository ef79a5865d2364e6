//! QR codes of payment strings, drawn on the server: as PNG by `getqrimage`, and
//! as SVG for the pages through [`qr_svg`] (so the WASM bundle carries no QR
//! encoder).

use leptos::prelude::*;

use crate::api::ApiError;

/// Upper-cases what wallets accept in either case (BOLT11, LNURL, bech32
/// addresses, with or without a `lightning:` scheme), so the QR code can use its
/// compact alphanumeric mode. Anything else is encoded as given.
pub fn for_qr(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let body = lower.strip_prefix("lightning:").unwrap_or(&lower);
    let bech32_like = [
        "lnbc", "lntb", "lntbs", "lnsb", "lnbcrt", "lnurl", "bc1", "tb1", "bcrt1",
    ]
    .iter()
    .any(|p| body.starts_with(p))
        && body.chars().all(|c| c.is_ascii_alphanumeric() || c == ':');
    if bech32_like {
        text.to_ascii_uppercase()
    } else {
        text.to_string()
    }
}

/// An SVG drawing of the QR code of `text` (upper-cased as [`for_qr`] says), or
/// `None` when the text is too long for a QR code.
#[cfg(feature = "ssr")]
pub fn svg(text: &str) -> Option<String> {
    use qrcode::render::svg;
    use qrcode::{EcLevel, QrCode};
    let code = QrCode::with_error_correction_level(for_qr(text).as_bytes(), EcLevel::M).ok()?;
    Some(
        code.render::<svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

/// The SVG of a QR code of `text`, for a signed-in page.
#[server(prefix = "/api/ui", endpoint = "qr")]
pub async fn qr_svg(text: String) -> Result<String, ApiError> {
    crate::api::auth::caller().await?;
    svg(&text).ok_or_else(|| engine::Error::invalid("text", "too long for a QR code").into())
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn invoices_and_addresses_are_upper_cased_other_text_is_kept() {
        assert_eq!(for_qr("lnbcrt10n1abc"), "LNBCRT10N1ABC");
        assert_eq!(for_qr("lightning:lnbcrt10n1abc"), "LIGHTNING:LNBCRT10N1ABC");
        assert_eq!(for_qr("lnurl1dp68gurn8ghj7"), "LNURL1DP68GURN8GHJ7");
        assert_eq!(for_qr("bcrt1qxyz"), "BCRT1QXYZ");
        assert_eq!(for_qr("lnbcrt10n1abc@host:9735"), "lnbcrt10n1abc@host:9735");
        assert_eq!(for_qr("hello world"), "hello world");
    }

    /// The engine's corpus of nasty inputs (see `engine/tests/parsers.rs`).
    fn nasty_inputs() -> Vec<String> {
        include_str!("../../engine/tests/corpus/nasty-inputs.jsonl")
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON string a line"))
            .collect()
    }

    /// What [`for_qr`] must answer: the text, upper-cased only when it is a
    /// bech32-like payment string of ASCII letters and digits.
    fn check_for_qr(text: &str) {
        let qr = for_qr(text);
        assert!(qr == text || qr == text.to_ascii_uppercase(), "{text:?}");
        assert_eq!(for_qr(&qr), qr, "{text:?}");
        if qr != text {
            assert!(text.is_ascii(), "{text:?}");
        }
    }

    #[test]
    fn qr_text_survives_every_nasty_input() {
        let corpus = nasty_inputs();
        assert!(corpus.len() > 300);
        for text in &corpus {
            check_for_qr(text);
            // A QR code holds at most 5,596 characters at this correction level
            // (digits; fewer of anything else).
            if let Some(drawing) = svg(text) {
                let start: String = text.chars().take(80).collect();
                assert!(text.len() <= 5596 && drawing.contains("<svg"), "{start:?}");
            }
        }
    }

    #[test]
    fn an_svg_is_drawn_for_an_address() {
        let drawing = svg("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080").unwrap();
        assert!(drawing.starts_with("<?xml") && drawing.contains("<svg"));
        assert!(svg(&"x".repeat(5000)).is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 256,
            ..Default::default()
        })]

        #[test]
        fn no_text_makes_the_qr_step_panic(text in proptest::prelude::any::<String>()) {
            check_for_qr(&text);
            let _ = svg(&text);
        }

        #[test]
        fn payment_strings_are_upper_cased_whole(
            scheme in "(lightning:|LIGHTNING:)?",
            body in "(lnbcrt|lnurl|bcrt1|LNBC)[a-z0-9]{1,300}",
        ) {
            let text = format!("{scheme}{body}");
            let qr = for_qr(&text);
            proptest::prop_assert_eq!(&qr, &text.to_ascii_uppercase());
            proptest::prop_assert!(svg(&text).is_some());
        }
    }
}
