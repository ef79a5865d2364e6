//! BOLT11 invoices: issued and signed by a simnet node, and decoded (with their
//! signature checked) before anything is paid.

use std::str::FromStr;
use std::time::Duration;

use bitcoin::hashes::{sha256, Hash};
use lightning_invoice::{Bolt11Invoice, Currency, InvoiceBuilder, PaymentSecret};

use super::keys::NodeKey;
use crate::{money::MAX_MONEY, Error, Msat, Result};

/// Longest memo the wallet accepts, in characters.
pub const MAX_MEMO_CHARS: usize = 256;
/// Longest description BOLT11 holds, in bytes (its field length is 10 bits of
/// 5-bit groups): a memo of 256 characters outside ASCII can exceed it.
pub const MAX_MEMO_BYTES: usize = 639;
/// Longest invoice text read (with its `lightning:` prefix and `@host:port`).
pub const MAX_INVOICE_TEXT: usize = 4096;
/// Largest amount BOLT11 can write: it counts pico-bitcoin in a u64, so about
/// 18.4 million BTC, below [`MAX_MONEY`].
pub const MAX_INVOICE_AMOUNT: Msat = Msat((u64::MAX / 10) as i64);
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(3600);

/// A freshly signed invoice and the secret that settles it.
pub struct Issued {
    pub bolt11: String,
    pub payment_hash: String,
    pub preimage: String,
    pub expires_at_ms: i64,
    pub created_at_ms: i64,
}

/// A memo fit for an invoice: at most [`MAX_MEMO_CHARS`] characters and
/// [`MAX_MEMO_BYTES`] bytes of UTF-8, no control characters. Every text that
/// ends up in an invoice passes here before anything is written.
pub fn check_memo(memo: &str) -> Result<()> {
    if memo.chars().count() > MAX_MEMO_CHARS {
        return Err(Error::invalid(
            "memo",
            format!("memo must be at most {MAX_MEMO_CHARS} characters"),
        ));
    }
    if memo.len() > MAX_MEMO_BYTES {
        return Err(Error::invalid(
            "memo",
            format!(
                "memo must be at most {MAX_MEMO_BYTES} bytes of UTF-8 (an invoice holds no more; \
                 characters outside ASCII take 2 to 4 bytes)"
            ),
        ));
    }
    if memo.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(
            "memo",
            "memo must not contain control characters",
        ));
    }
    Ok(())
}

/// Signs a regtest invoice (`lnbcrt...`) with a payment secret, an expiry and the
/// memo as its description.
pub fn issue(key: &NodeKey, amount: Option<Msat>, memo: &str, expiry: Duration) -> Result<Issued> {
    check_memo(memo)?;
    let preimage: [u8; 32] = rand::random();
    let secret: [u8; 32] = rand::random();
    let payment_hash = sha256::Hash::hash(&preimage);
    // The payee's key travels in the invoice (`n`): a payer verifies the signature
    // against it instead of recovering the key, which costs far more.
    let mut builder = InvoiceBuilder::new(Currency::Regtest)
        .payee_pub_key(key.pubkey())
        .description(memo.to_string())
        .payment_hash(payment_hash)
        .payment_secret(PaymentSecret(secret))
        .current_timestamp()
        .min_final_cltv_expiry_delta(18)
        .expiry_time(expiry);
    if let Some(amount) = amount {
        if amount.0 <= 0 || amount > MAX_INVOICE_AMOUNT {
            return Err(Error::invalid(
                "amount",
                format!(
                    "amount must be positive and at most {} BTC (what an invoice can hold)",
                    crate::money::Unit::Btc.format(MAX_INVOICE_AMOUNT)
                ),
            ));
        }
        builder = builder.amount_milli_satoshis(amount.0.unsigned_abs());
    }
    let invoice = builder
        .build_signed(|hash| super::keys::secp().sign_ecdsa_recoverable(hash, key.secret()))
        .map_err(|e| Error::Internal(format!("invoice: {e}")))?;
    let created = invoice.duration_since_epoch();
    Ok(Issued {
        bolt11: invoice.to_string(),
        payment_hash: payment_hash.to_string(),
        preimage: hex::encode(preimage),
        created_at_ms: created.as_millis() as i64,
        expires_at_ms: expires_at_ms(&invoice),
    })
}

/// What a payer needs to know of an invoice, read from its signed fields.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub bolt11: String,
    pub payee: String,
    pub payment_hash: String,
    pub amount: Option<Msat>,
    pub memo: String,
    pub expires_at_ms: i64,
}

/// Decodes what a user pasted: a BOLT11 string, with or without a `lightning:`
/// prefix and an `@host:port` QuickPay suffix. Checks the signature and the
/// network; expiry is the payer's check, against its own clock.
pub fn decode(text: &str) -> Result<Decoded> {
    let invalid = |m: &str| Error::invalid("invoiceid", m.to_string());
    let mut text = text.trim();
    if text.len() > MAX_INVOICE_TEXT {
        return Err(invalid("invoice is too long"));
    }
    // `get` rather than an index: the 10th byte of outside text may fall inside a
    // character.
    const SCHEME: &str = "lightning:";
    if let Some(scheme) = text.get(..SCHEME.len()) {
        if scheme.eq_ignore_ascii_case(SCHEME) {
            text = &text[SCHEME.len()..];
        }
    }
    let bolt11 = text
        .split('@')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if bolt11.is_empty() {
        return Err(invalid("invoice is required"));
    }
    let invoice =
        Bolt11Invoice::from_str(&bolt11).map_err(|e| invalid(&format!("invalid invoice: {e}")))?;
    if invoice.currency() != Currency::Regtest {
        return Err(invalid(
            "invoice is for another network (this wallet is on regtest)",
        ));
    }
    let payee = invoice
        .payee_pub_key()
        .copied()
        .unwrap_or_else(|| invoice.recover_payee_pub_key());
    let amount = match invoice.amount_milli_satoshis() {
        None => None,
        Some(msat) => match i64::try_from(msat).map(Msat) {
            Ok(amount) if amount <= MAX_MONEY => Some(amount),
            _ => return Err(invalid("invoice amount exceeds 21 million BTC")),
        },
    };
    Ok(Decoded {
        bolt11,
        payee: payee.to_string(),
        payment_hash: invoice.payment_hash().to_string(),
        amount,
        memo: invoice.description().to_string(),
        expires_at_ms: expires_at_ms(&invoice),
    })
}

/// When `invoice` expires, in Unix milliseconds. A signed invoice may name any
/// expiry (up to 2^64 seconds): one past the end of time never expires.
fn expires_at_ms(invoice: &Bolt11Invoice) -> i64 {
    invoice
        .expires_at()
        .map_or(i64::MAX, |at| at.as_millis().min(i64::MAX as u128) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_invoice_decodes_to_what_was_asked() {
        let key = NodeKey::generate();
        let issued = issue(&key, Some(Msat(1_234_000)), "coffee ☕", DEFAULT_EXPIRY).unwrap();
        assert!(
            issued.bolt11.starts_with("lnbcrt12340n1"),
            "{}",
            issued.bolt11
        );
        let decoded = decode(&format!(
            "LIGHTNING:{}@host:9735",
            issued.bolt11.to_uppercase()
        ))
        .unwrap();
        assert_eq!(decoded.payee, key.pubkey_hex());
        assert_eq!(decoded.amount, Some(Msat(1_234_000)));
        assert_eq!(decoded.memo, "coffee ☕");
        assert_eq!(decoded.payment_hash, issued.payment_hash);
        assert_eq!(decoded.expires_at_ms, issued.expires_at_ms);
    }

    #[test]
    fn amountless_invoices_and_bad_strings() {
        let key = NodeKey::generate();
        let issued = issue(&key, None, "", DEFAULT_EXPIRY).unwrap();
        assert_eq!(decode(&issued.bolt11).unwrap().amount, None);
        for bad in [
            "",
            "lnbcrt1",
            "hello",
            &issued.bolt11[..issued.bolt11.len() - 1],
        ] {
            assert_eq!(decode(bad).unwrap_err().field(), Some("invoiceid"), "{bad}");
        }
        // A flipped character breaks the checksum or the signature.
        let mut tampered = issued.bolt11.clone().into_bytes();
        let i = tampered.len() - 20;
        tampered[i] = if tampered[i] == b'q' { b'p' } else { b'q' };
        assert!(decode(&String::from_utf8(tampered).unwrap()).is_err());
        assert!(check_memo(&"m".repeat(MAX_MEMO_CHARS + 1)).is_err());
    }

    #[test]
    fn mainnet_invoices_are_refused() {
        // From BOLT11's examples: a mainnet invoice.
        let mainnet = "lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq9qrsgq357wnc5r2ueh7ck6q93dj32dlqnls087fxdwk8qakdyafkq3yap9us6v52vjjsrvywa6rt52cm9r9zqt8r2t7mlcwspyetp5h2tztugp9lfyql";
        let err = decode(mainnet).unwrap_err();
        assert!(err.to_string().contains("another network"), "{err}");
    }
}
