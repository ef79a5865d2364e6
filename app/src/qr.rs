//! QR codes of payment strings, shared by the server (PNG in `getqrimage`) and
//! the pages (SVG drawn in place).

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

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
pub fn svg(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(for_qr(text).as_bytes(), EcLevel::M).ok()?;
    Some(
        code.render::<svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
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

    #[test]
    fn an_svg_is_drawn_for_an_address() {
        let drawing = svg("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080").unwrap();
        assert!(drawing.starts_with("<?xml") && drawing.contains("<svg"));
        assert!(svg(&"x".repeat(5000)).is_none());
    }
}
