//! LNURL: the bech32 form of a service URL (LUD-01) and the check of an LNURL-auth
//! login signature (LUD-04).
//!
//! This module owns the encodings and the cryptographic check only. It never decides
//! whether a `k1` is fresh: the caller must accept a k1 only if it issued it, and only
//! once, or a captured login can be replayed.

use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Checksum, Hrp};
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::{Message, PublicKey};

use crate::simnet::keys::secp;

/// The human-readable part of every LNURL.
const HRP: Hrp = Hrp::parse_unchecked("lnurl");

/// Wallets wrap LNURLs as a URI (`lightning:LNURL1...`) in links and QR codes.
const URI_SCHEME: &str = "lightning:";

/// A DER ECDSA signature is at most 72 bytes; refusing longer hex early keeps garbage
/// from being decoded at all.
const MAX_DER_LEN: usize = 72;

/// BIP-173's bech32 checksum without a length limit. LNURLs outgrow both BIP-173's 90
/// characters and the 1023 that bech32 0.11 allows for `Bech32` (the length up to
/// which the checksum is guaranteed to catch 4 errors); past that it still catches
/// all but about one corruption in a billion, and the strings stay valid bech32.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum LongBech32 {}

impl Checksum for LongBech32 {
    type MidstateRepr = u32;
    const CODE_LENGTH: usize = usize::MAX;
    const CHECKSUM_LENGTH: usize = 6;
    // The generator and residue of BIP-173 (bech32, not bech32m).
    const GENERATOR_SH: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    const TARGET_RESIDUE: u32 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("not an LNURL (expected bech32 text starting with lnurl1)")]
    NotBech32,
    #[error("not an LNURL (the prefix is not lnurl)")]
    WrongPrefix,
    #[error("the LNURL does not hold a web address")]
    NotAUrl,
    #[error("k1 must be 32 bytes of hex")]
    BadK1,
    #[error("sig must be a DER-encoded signature in hex")]
    BadSignature,
    #[error("key must be a 33-byte compressed public key in hex")]
    BadKey,
    #[error("the signature is not in canonical low-S form")]
    HighS,
    #[error("the signature does not match k1 and key")]
    Mismatch,
}

/// Encodes `url`, the service's own http(s) URL, as an LNURL: uppercase, as QR codes
/// want it (their alphanumeric mode makes the symbol smaller). Never fails: there is
/// no length limit, and `decode` is where outside text is judged.
pub fn encode(url: &str) -> String {
    let mut lnurl = String::with_capacity(12 + url.len() * 8 / 5);
    // Writing to a String cannot fail, and `LongBech32` has no length limit.
    let _ = bech32::encode_upper_to_fmt::<LongBech32, _>(&mut lnurl, HRP, url.as_bytes());
    lnurl
}

/// Decodes an LNURL (upper or lower case, with or without `lightning:`) to its URL.
///
/// Refuses mixed case, a bech32m or wrong checksum, non-zero padding bits and
/// anything that is not an http(s) URL. Whether plain http is acceptable (onion or
/// loopback hosts only, says LUD-01) is the caller's decision.
pub fn decode(lnurl: &str) -> Result<String, ProofError> {
    let text = lnurl.trim();
    let text = match text.get(..URI_SCHEME.len()) {
        Some(head) if head.eq_ignore_ascii_case(URI_SCHEME) => &text[URI_SCHEME.len()..],
        _ => text,
    };
    let checked = CheckedHrpstring::new::<LongBech32>(text).map_err(|_| ProofError::NotBech32)?;
    if checked.hrp() != HRP {
        return Err(ProofError::WrongPrefix);
    }
    // Every encoder pads with zero bits; anything else is a corrupted or forged string.
    checked
        .validate_segwit_padding()
        .map_err(|_| ProofError::NotBech32)?;
    let url = String::from_utf8(checked.byte_iter().collect()).map_err(|_| ProofError::NotAUrl)?;
    if !has_web_scheme(&url) || url.chars().any(char::is_control) {
        return Err(ProofError::NotAUrl);
    }
    Ok(url)
}

/// Checks an LNURL-auth callback's `sig` and `key` over `k1` (LUD-04).
///
/// The signature is ECDSA over the 32 raw k1 bytes, which are the digest themselves
/// (not hashed again). Only low-S signatures are accepted: LUD-04 says to verify "using
/// secp256k1", whose `secp256k1_ecdsa_verify` refuses high-S, and the signing libraries
/// wallets use (libsecp256k1, btcec, noble-secp256k1) all produce low-S; normalizing
/// would only admit signatures no honest wallet makes. DER is parsed strictly (as
/// those libraries write it) for the same reason.
///
/// Hex is accepted in either case: store `key_hex` lowercased as the account's
/// identifier, so `02AB..` and `02ab..` cannot become two accounts.
pub fn verify_auth(k1_hex: &str, sig_der_hex: &str, key_hex: &str) -> Result<(), ProofError> {
    let mut k1 = [0u8; 32];
    hex::decode_to_slice(k1_hex, &mut k1).map_err(|_| ProofError::BadK1)?;
    if sig_der_hex.len() > 2 * MAX_DER_LEN {
        return Err(ProofError::BadSignature);
    }
    let der = hex::decode(sig_der_hex).map_err(|_| ProofError::BadSignature)?;
    let signature = Signature::from_der(&der).map_err(|_| ProofError::BadSignature)?;
    // LUD-04 asks for the compressed form; an uncompressed key would name the same
    // wallet with a second identifier.
    let mut key_bytes = [0u8; 33];
    hex::decode_to_slice(key_hex, &mut key_bytes).map_err(|_| ProofError::BadKey)?;
    let key = PublicKey::from_slice(&key_bytes).map_err(|_| ProofError::BadKey)?;

    let mut low_s = signature;
    low_s.normalize_s();
    if low_s != signature {
        return Err(ProofError::HighS);
    }
    secp()
        .verify_ecdsa(&Message::from_digest(k1), &signature, &key)
        .map_err(|_| ProofError::Mismatch)
}

fn has_web_scheme(url: &str) -> bool {
    let starts = |scheme: &str| {
        url.get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
            && url.len() > scheme.len()
    };
    starts("https://") || starts("http://")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bech32::Bech32;
    use bitcoin::secp256k1::SecretKey;

    /// The example of LN-Markets' `GET /lnurl/a/c` (lnmarkets-api-v1.0.1.md).
    const LNM_EXAMPLE: &str = "lnurl1dp68gup69uhkcmmrv9kxsmmnwsarxvpsxqhkcmn4wfkz7cflw3skw0tvdankjm3xdvcn6venvgcrjenpx3nrwdtpxsur2vfsvdjk2dfkxe3kgceexymkgcmrxpjkgc3jvgmrqdnzvvurjwtr89jk2dp4vccrxvmrvvmxzdehxuejv6rdv93n6wpkv56rxcf4xqcxgwfsvsuxget9vymnqcfnv43rgwfjv5ex2cn9vyckgwtyvejrgc3excekyetpx43rvd3nxeskxvm9xqcxvwtpv5mq9uwr0k";

    fn wallet_key(byte: u8) -> (SecretKey, PublicKey) {
        let secret = SecretKey::from_slice(&[byte; 32]).unwrap();
        (secret, secret.public_key(secp()))
    }

    fn wallet_signs(secret: &SecretKey, k1: [u8; 32]) -> String {
        hex::encode(
            secp()
                .sign_ecdsa(&Message::from_digest(k1), secret)
                .serialize_der(),
        )
    }

    #[test]
    fn the_lnmarkets_example_decodes_to_its_login_url() {
        let url = decode(LNM_EXAMPLE).unwrap();
        assert!(url.starts_with("http"), "{url}");
        assert!(url.contains("tag=login"), "{url}");
        assert!(LNM_EXAMPLE.len() > 90, "longer than BIP-173 allows");
        // Encoding it again gives the same string, shown uppercase.
        assert_eq!(encode(&url), LNM_EXAMPLE.to_uppercase());
    }

    #[test]
    fn a_long_url_survives_the_round_trip_in_either_case_and_with_the_uri_scheme() {
        let url = format!(
            "https://desk.example/lnurl/w/r?n={}&expiry=1700000000",
            "ab".repeat(150)
        );
        let lnurl = encode(&url);
        assert!(lnurl.starts_with("LNURL1") && lnurl.len() > 300);
        assert_eq!(lnurl, lnurl.to_uppercase());
        assert_eq!(decode(&lnurl).unwrap(), url);
        assert_eq!(decode(&lnurl.to_lowercase()).unwrap(), url);
        assert_eq!(decode(&format!("lightning:{lnurl}")).unwrap(), url);
        assert_eq!(
            decode(&format!("LIGHTNING:{}\n", lnurl.to_lowercase())).unwrap(),
            url
        );
    }

    #[test]
    fn decoding_refuses_what_is_not_a_plain_lnurl() {
        let lnurl = encode("https://desk.example/lnurl/a?tag=login");
        let mixed = format!("{}{}", &lnurl[..10], lnurl[10..].to_lowercase());
        assert_eq!(decode(&mixed), Err(ProofError::NotBech32));
        let mut typo = lnurl.clone().into_bytes();
        typo[20] = if typo[20] == b'Q' { b'P' } else { b'Q' };
        assert_eq!(
            decode(std::str::from_utf8(&typo).unwrap()),
            Err(ProofError::NotBech32)
        );
        let other =
            bech32::encode::<Bech32>(Hrp::parse("lnbc").unwrap(), b"https://x.example").unwrap();
        assert_eq!(decode(&other), Err(ProofError::WrongPrefix));
        let bech32m = bech32::encode::<bech32::Bech32m>(HRP, b"https://x.example").unwrap();
        assert_eq!(decode(&bech32m), Err(ProofError::NotBech32));
        let not_url = bech32::encode::<Bech32>(HRP, b"ftp://x.example").unwrap();
        assert_eq!(decode(&not_url), Err(ProofError::NotAUrl));
        let not_utf8 = bech32::encode::<Bech32>(HRP, &[0xff, 0xfe, 0x00]).unwrap();
        assert_eq!(decode(&not_utf8), Err(ProofError::NotAUrl));
        let control = bech32::encode::<Bech32>(HRP, b"https://x.example/\r\nX: y").unwrap();
        assert_eq!(decode(&control), Err(ProofError::NotAUrl));
        // What is not a web address does not come back out.
        assert_eq!(
            decode(&encode("javascript:alert(1)")),
            Err(ProofError::NotAUrl)
        );
        assert_eq!(decode(&encode("https://")), Err(ProofError::NotAUrl));
    }

    #[test]
    fn urls_past_bech32s_1023_characters_still_encode_as_plain_bech32() {
        // bech32 0.11 asks every custom checksum to pass this.
        LongBech32::sanity_check();
        // Below the limit the long checksum is BIP-173's, character for character.
        let short = "https://desk.example/lnm/lnurl/a?tag=login";
        assert_eq!(
            encode(short),
            bech32::encode_upper::<Bech32>(HRP, short.as_bytes()).unwrap()
        );
        let url = format!("https://desk.example/lnm/lnurl/w/r?n={}", "7f".repeat(600));
        let lnurl = encode(&url);
        assert!(lnurl.len() > 1023, "{}", lnurl.len());
        assert_eq!(decode(&lnurl).unwrap(), url);
        assert!(
            bech32::encode::<Bech32>(HRP, url.as_bytes()).is_err(),
            "Bech32 stops at 1023"
        );
        let mut typo = lnurl.into_bytes();
        typo[700] = if typo[700] == b'Q' { b'P' } else { b'Q' };
        assert_eq!(
            decode(std::str::from_utf8(&typo).unwrap()),
            Err(ProofError::NotBech32)
        );
    }

    #[test]
    fn a_wallet_logs_in_once_its_signature_over_k1_checks_out() {
        let (secret, key) = wallet_key(7);
        let k1 = [0x42; 32];
        let sig = wallet_signs(&secret, k1);
        let k1_hex = hex::encode(k1);
        assert_eq!(verify_auth(&k1_hex, &sig, &key.to_string()), Ok(()));
        // Hex in upper case is the same proof.
        let upper = verify_auth(
            &k1_hex.to_uppercase(),
            &sig.to_uppercase(),
            &key.to_string().to_uppercase(),
        );
        assert_eq!(upper, Ok(()));
    }

    #[test]
    fn another_k1_another_key_or_a_twisted_signature_is_refused() {
        let (secret, key) = wallet_key(7);
        let (_, mallory) = wallet_key(8);
        let sig = wallet_signs(&secret, [0x42; 32]);
        assert_eq!(
            verify_auth(&hex::encode([0x43; 32]), &sig, &key.to_string()),
            Err(ProofError::Mismatch)
        );
        assert_eq!(
            verify_auth(&hex::encode([0x42; 32]), &sig, &mallory.to_string()),
            Err(ProofError::Mismatch)
        );

        // The high-S twin of a valid signature is valid ECDSA, and still refused.
        let low = Signature::from_der(&hex::decode(&sig).unwrap()).unwrap();
        let compact = low.serialize_compact();
        let high_s = high_s_twin(&compact);
        let high = Signature::from_compact(&high_s).unwrap();
        let high_hex = hex::encode(high.serialize_der());
        assert_eq!(
            verify_auth(&hex::encode([0x42; 32]), &high_hex, &key.to_string()),
            Err(ProofError::HighS)
        );
    }

    #[test]
    fn the_k1_is_signed_as_is_not_hashed_again() {
        use bitcoin::hashes::{sha256, Hash};
        let (secret, key) = wallet_key(9);
        let k1 = [0x11; 32];
        let hashed = sha256::Hash::hash(&k1).to_byte_array();
        let sig_over_hash = wallet_signs(&secret, hashed);
        assert_eq!(
            verify_auth(&hex::encode(k1), &sig_over_hash, &key.to_string()),
            Err(ProofError::Mismatch)
        );
    }

    #[test]
    fn uncompressed_keys_and_bad_lengths_are_refused() {
        let (secret, key) = wallet_key(7);
        let k1 = hex::encode([0x42; 32]);
        let sig = wallet_signs(&secret, [0x42; 32]);
        let uncompressed = hex::encode(key.serialize_uncompressed());
        assert_eq!(
            verify_auth(&k1, &sig, &uncompressed),
            Err(ProofError::BadKey)
        );
        assert_eq!(
            verify_auth(&k1[..62], &sig, &key.to_string()),
            Err(ProofError::BadK1)
        );
        assert_eq!(
            verify_auth(&format!("{k1}00"), &sig, &key.to_string()),
            Err(ProofError::BadK1)
        );
        // A compact (r||s) signature is not DER.
        let compact = hex::encode(
            Signature::from_der(&hex::decode(&sig).unwrap())
                .unwrap()
                .serialize_compact(),
        );
        assert_eq!(
            verify_auth(&k1, &compact, &key.to_string()),
            Err(ProofError::BadSignature)
        );
        // A point not on the curve.
        assert_eq!(
            verify_auth(&k1, &sig, &format!("02{}", "ff".repeat(32))),
            Err(ProofError::BadKey)
        );
    }

    #[test]
    fn garbage_never_panics() {
        let huge = "f".repeat(1 << 20);
        let inputs = [
            "",
            " ",
            "lightning:",
            "LIGHTNING:",
            "lnurl1",
            "LNURL1",
            "1",
            "é",
            "lnurlé1qqqq",
            "lightning:é",
            "lightnin",
            "\u{0}",
            "zz",
            "0",
            "lnurl1qqqqqqqqqqqq",
            &huge,
            "ℓnurl1dp68gup69uhkcmmrv9kxsmmnwsarxvpsxqhkcmn4wfkz7cflw3skw0tvdankjm3x",
        ];
        for a in inputs {
            assert!(decode(a).is_err(), "{a:?}");
            assert!(decode(&encode(a)).is_err(), "{a:.20}");
            for b in inputs {
                for c in inputs {
                    assert!(verify_auth(a, b, c).is_err());
                }
            }
        }
    }

    /// `n - s`, the other signature that ECDSA accepts for the same r.
    fn high_s_twin(compact: &[u8; 64]) -> [u8; 64] {
        const N: [u8; 32] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c,
            0xd0, 0x36, 0x41, 0x41,
        ];
        let mut out = *compact;
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = N[i] as i16 - compact[32 + i] as i16 - borrow;
            out[32 + i] = d.rem_euclid(256) as u8;
            borrow = (d < 0) as i16;
        }
        out
    }
}
