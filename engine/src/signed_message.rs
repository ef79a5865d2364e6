//! Messages signed in LND's `signmessage` format, as the Joule extension produces
//! them for a login (`POST /login/joule`).
//!
//! The digest is SHA256(SHA256("Lightning Signed Message:" + message)); the signature
//! is 65 bytes (a header byte 31..34 = 27 + 4 + recovery id, then r and s) written in
//! zbase32. Checking one recovers the signer's key.
//!
//! This module owns the format and the key recovery only. Recovery always yields some
//! key, so a signature proves nothing unless the message is a one-time challenge the
//! server issued; keeping challenges and consuming them is the caller's job.

use bitcoin::hashes::{sha256d, Hash, HashEngine};
use bitcoin::secp256k1::ecdsa::{RecoverableSignature, RecoveryId, Signature};
use bitcoin::secp256k1::{Message, PublicKey, SecretKey};

use crate::simnet::keys::secp;

/// LND prefixes every message with this, so a signed message can never be mistaken
/// for a signed transaction or invoice.
const PREFIX: &[u8] = b"Lightning Signed Message:";

/// 27 + 4: the Bitcoin Core convention for "compressed key" signatures, which is all
/// LND writes.
const HEADER_COMPRESSED: u8 = 31;
const HEADER_UNCOMPRESSED: u8 = 27;

/// 65 bytes are 520 bits, exactly 104 zbase32 characters.
const SIGNATURE_LEN: usize = 65;
const SIGNATURE_CHARS: usize = 104;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("signature is not zbase32: {0}")]
    NotZbase32(#[from] zbase32::Zbase32Error),
    #[error("signature must be 65 bytes (104 zbase32 characters)")]
    WrongLength,
    #[error("signature is for an uncompressed key; sign with LND or Joule")]
    UncompressedKey,
    #[error("signature header byte must be 31 to 34")]
    BadHeader,
    #[error("signature values are out of range")]
    OutOfRange,
    #[error("the signature is not in canonical low-S form")]
    HighS,
    #[error("no public key matches this signature")]
    NoKey,
    #[error("the message was signed by another key")]
    OtherKey,
}

/// The digest LND signs: SHA256(SHA256(prefix || message)).
pub fn digest(message: &[u8]) -> [u8; 32] {
    let mut engine = sha256d::Hash::engine();
    engine.input(PREFIX);
    engine.input(message);
    sha256d::Hash::from_engine(engine).to_byte_array()
}

/// Signs `message` as `lncli signmessage` would (deterministic RFC 6979 nonce, low S,
/// compressed key), for tests and for the Rust side of round trips.
pub fn sign(secret_key: &SecretKey, message: &str) -> String {
    let signature = secp().sign_ecdsa_recoverable(
        &Message::from_digest(digest(message.as_bytes())),
        secret_key,
    );
    let (recovery_id, rs) = signature.serialize_compact();
    let mut bytes = [0u8; SIGNATURE_LEN];
    // A recovery id is 0..=3, so the header stays within 31..=34.
    bytes[0] = HEADER_COMPRESSED + recovery_id.to_i32() as u8;
    bytes[1..].copy_from_slice(&rs);
    zbase32::encode(&bytes)
}

/// Recovers the key that signed `message`, as lowercase compressed hex (the form
/// accounts store).
pub fn recover(message: &str, signature: &str) -> Result<String, ProofError> {
    recover_key(message, signature).map(|key| key.to_string())
}

/// Recovers the key that signed `message`.
///
/// Only headers 31..34 (compressed key) are accepted: LND and Joule never write
/// anything else, and accepting 27..30 would let one key log in under a second,
/// uncompressed identity. Only low-S signatures are accepted: LND signs low-S, and the
/// high-S twin of a signature (with the other recovery id) recovers the same key, so
/// refusing it leaves one valid signature per message and key.
pub fn recover_key(message: &str, signature: &str) -> Result<PublicKey, ProofError> {
    // Checked first so garbage of any size is refused without decoding it.
    if signature.len() != SIGNATURE_CHARS {
        return Err(ProofError::WrongLength);
    }
    let bytes = zbase32::decode(signature)?;
    let Some(&header) = bytes.first().filter(|_| bytes.len() == SIGNATURE_LEN) else {
        return Err(ProofError::WrongLength);
    };
    let recovery_id = match header {
        HEADER_COMPRESSED..=34 => header - HEADER_COMPRESSED,
        HEADER_UNCOMPRESSED..=30 => return Err(ProofError::UncompressedKey),
        _ => return Err(ProofError::BadHeader),
    };
    let recovery_id =
        RecoveryId::from_i32(recovery_id.into()).map_err(|_| ProofError::BadHeader)?;
    let recoverable = RecoverableSignature::from_compact(&bytes[1..], recovery_id)
        .map_err(|_| ProofError::OutOfRange)?;

    let plain: Signature = recoverable.to_standard();
    let mut low_s = plain;
    low_s.normalize_s();
    if low_s != plain {
        return Err(ProofError::HighS);
    }
    secp()
        .recover_ecdsa(
            &Message::from_digest(digest(message.as_bytes())),
            &recoverable,
        )
        .map_err(|_| ProofError::NoKey)
}

/// Checks that `expected` signed `message`.
pub fn verify(message: &str, signature: &str, expected: &PublicKey) -> Result<(), ProofError> {
    if recover_key(message, signature)? == *expected {
        Ok(())
    } else {
        Err(ProofError::OtherKey)
    }
}

/// z-base-32 (Zooko's human-oriented base 32), the text form of LND's signatures:
/// 5 bits a character, most significant bit first, no padding characters.
pub mod zbase32 {
    const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

    #[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
    pub enum Zbase32Error {
        #[error("a character is outside the zbase32 alphabet")]
        Character,
        #[error("its length matches no whole number of bytes")]
        Length,
        #[error("its unused trailing bits are not zero")]
        Padding,
    }

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity((bytes.len() * 8).div_ceil(5));
        let mut buffer: u16 = 0;
        let mut bits = 0;
        for &byte in bytes {
            buffer = (buffer << 8) | u16::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(ALPHABET[usize::from((buffer >> bits) & 31)] as char);
            }
            buffer &= (1 << bits) - 1;
        }
        if bits > 0 {
            // The last character carries the remaining bits followed by zeros.
            out.push(ALPHABET[usize::from((buffer << (5 - bits)) & 31)] as char);
        }
        out
    }

    /// Decodes canonical zbase32 only: lowercase alphabet, a length that some byte
    /// string encodes to, zero trailing bits. So each byte string has one text form.
    pub fn decode(text: &str) -> Result<Vec<u8>, Zbase32Error> {
        let mut out = Vec::with_capacity(text.len() * 5 / 8);
        let mut buffer: u16 = 0;
        let mut bits = 0;
        for c in text.bytes() {
            let value = ALPHABET
                .iter()
                .position(|&a| a == c)
                .ok_or(Zbase32Error::Character)?;
            buffer = (buffer << 5) | value as u16;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
                buffer &= (1 << bits) - 1;
            }
        }
        // Five or more bits left over would be a character that encodes no byte.
        if bits >= 5 {
            return Err(Zbase32Error::Length);
        }
        if buffer != 0 {
            return Err(Zbase32Error::Padding);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published LND test vector (protocols.md, "Signed-message login").
    const VECTOR_SIGNATURE: &str = "rbwzq7bjg1iw4xthgt463a1d88w5k4zmum9z3xtfbnhc7r3qoizrn8edgwtp8m5m6xfms7pcyccjuggr934tkkjwzewsid44zqub4iux";
    const VECTOR_KEY: &str = "02ac77f9f7397a64861b573c9e8b8652ce2e67a05150fd166831e9fc167670dfd8";

    /// The example body of `POST /login/joule` (lnmarkets-api-v1.0.1.md). The spec
    /// publishes no key; this is the key it recovers, recorded so a change shows.
    const JOULE_SIGNATURE: &str = "rd1nn7qbnibf58mzaknokqu6eciiqr64gahrzzxy3h8ybdygbun7s86zrms1dedqnh7t4gxz3esqmaqi9pkf85f48rexai7qztbdznfp";
    const JOULE_KEY: &str = "03120532a5d1c2bc4713cff5e2555e270fcbf7e5ccd47447732826b11bc870e4d2";

    /// Signed by the Python test wallet (`server/tests/wallets/wallet.py lnd-sign`),
    /// with coincurve 21.0.0, independently of this module: (secret key, message,
    /// signature, key).
    const COINCURVE_VECTORS: [(&str, &str, &str, &str); 3] = [
        (
            "e4a3f2e65160379143ec74f86460d2079e25ee0876887d4efe86d4648d59dec8",
            "ampere login 3f9c2a71",
            "rnoj1ezrdmgnw3j6xpz5tpdjkjioead8ok9yjn3sr4mzaw6kmorwnc4dhqu35p51o5ny1mntnf68gnn8t5n7pp3ojnnrqigh3o8priid",
            "0361db63c2fa557a86cfe00fbb5e9a4474b6f4cc3d4a7186c80f656cb6c798dabf",
        ),
        (
            "e4a3f2e65160379143ec74f86460d2079e25ee0876887d4efe86d4648d59dec8",
            "",
            "d67fiuppz5knawekhfhohi6qmme9cghx5dbix58eiwjgr1cfszuurktdm3hxqqrec87e4trutwiw48b11ykwxwfj34sqzqinxg8swb85",
            "0361db63c2fa557a86cfe00fbb5e9a4474b6f4cc3d4a7186c80f656cb6c798dabf",
        ),
        (
            "e4a3f2e65160379143ec74f86460d2079e25ee0876887d4efe86d4648d59dec8",
            "héllo ⚡ Lightning",
            "dhbm54nt5jwck7pr5ecy3fo5w9acc3sh4gjk1g6ppn4k97i1rud1nh91gjk3bxjpi6b8ku8or7chdwp86o9bkp4jip14s6fkuru7uamq",
            "0361db63c2fa557a86cfe00fbb5e9a4474b6f4cc3d4a7186c80f656cb6c798dabf",
        ),
    ];

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_slice(&[byte; 32]).unwrap()
    }

    #[test]
    fn the_published_lnd_vector_recovers_its_key() {
        assert_eq!(recover("test", VECTOR_SIGNATURE).unwrap(), VECTOR_KEY);
        let expected: PublicKey = VECTOR_KEY.parse().unwrap();
        assert_eq!(verify("test", VECTOR_SIGNATURE, &expected), Ok(()));
        assert_eq!(
            verify("test!", VECTOR_SIGNATURE, &expected),
            Err(ProofError::OtherKey)
        );
    }

    #[test]
    fn the_lnmarkets_joule_example_recovers_a_key() {
        assert_eq!(recover("Test-Joule", JOULE_SIGNATURE).unwrap(), JOULE_KEY);
    }

    #[test]
    fn signatures_made_by_coincurve_recover_their_keys_and_match_ours_byte_for_byte() {
        for (secret, message, signature, public) in COINCURVE_VECTORS {
            assert_eq!(recover(message, signature).unwrap(), public, "{message:?}");
            // Both sides use RFC 6979 nonces, so the same key signs identically.
            let secret: SecretKey = secret.parse().unwrap();
            assert_eq!(sign(&secret, message), signature, "{message:?}");
        }
    }

    #[test]
    fn alice_signs_a_challenge_and_the_server_recovers_her_key() {
        let alice = key(1);
        let alice_public = alice.public_key(secp());
        for message in ["login 7f3a", "", "héllo ⚡", &"x".repeat(10_000)] {
            let signature = sign(&alice, message);
            assert_eq!(signature.len(), SIGNATURE_CHARS);
            assert_eq!(recover_key(message, &signature), Ok(alice_public));
            // Any other message recovers some other key: that is why challenges matter.
            assert_ne!(
                recover_key(&format!("{message}."), &signature),
                Ok(alice_public)
            );
        }
    }

    #[test]
    fn a_signature_in_another_header_range_or_high_s_form_is_refused() {
        let bytes = zbase32::decode(&sign(&key(2), "challenge")).unwrap();
        let with_header = |h: u8| {
            let mut b = bytes.clone();
            b[0] = h;
            zbase32::encode(&b)
        };
        for h in 27..=30 {
            assert_eq!(
                recover("challenge", &with_header(h)),
                Err(ProofError::UncompressedKey)
            );
        }
        for h in [0, 26, 35, 255] {
            assert_eq!(
                recover("challenge", &with_header(h)),
                Err(ProofError::BadHeader)
            );
        }

        // The high-S twin with the other recovery id is valid ECDSA for the same key.
        let mut twin = bytes.clone();
        twin[0] ^= 1;
        let s = high_s(&twin[33..].try_into().unwrap());
        twin[33..].copy_from_slice(&s);
        assert_eq!(
            recover("challenge", &zbase32::encode(&twin)),
            Err(ProofError::HighS)
        );

        // r = 0 and s = n are outside the group's order.
        let mut zero_r = bytes.clone();
        zero_r[1..33].fill(0);
        assert!(recover("challenge", &zbase32::encode(&zero_r)).is_err());
        let mut max = bytes.clone();
        max[1..].fill(0xff);
        assert_eq!(
            recover("challenge", &zbase32::encode(&max)),
            Err(ProofError::OutOfRange)
        );
    }

    #[test]
    fn zbase32_round_trips_and_rejects_non_canonical_text() {
        for len in 0..=70usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = zbase32::encode(&bytes);
            assert_eq!(text.len(), (len * 8).div_ceil(5));
            assert_eq!(zbase32::decode(&text).unwrap(), bytes);
        }
        // Known encodings (the alphabet's order: 0 -> y, 31 -> 9).
        assert_eq!(zbase32::encode(&[0]), "yy");
        assert_eq!(zbase32::encode(&[0xff]), "9h");
        // The examples of the zbase32 specification.
        assert_eq!(zbase32::encode(b"\xf0\xbf\xc7"), "6n9hq");
        assert_eq!(zbase32::encode(b"\xd4\x7a\x04"), "4t7ye");
        assert_eq!(zbase32::decode("9h"), Ok(vec![0xff]));
        // "99" would carry two nonzero bits past the byte.
        assert_eq!(zbase32::decode("99"), Err(zbase32::Zbase32Error::Padding));
        assert_eq!(zbase32::decode("y"), Err(zbase32::Zbase32Error::Length));
        assert_eq!(zbase32::decode("yyy"), Err(zbase32::Zbase32Error::Length));
        assert_eq!(
            zbase32::decode("yyyyyy"),
            Err(zbase32::Zbase32Error::Length)
        );
        assert_eq!(zbase32::decode("YY"), Err(zbase32::Zbase32Error::Character));
        assert_eq!(zbase32::decode("y2"), Err(zbase32::Zbase32Error::Character));
        assert_eq!(zbase32::decode("yl"), Err(zbase32::Zbase32Error::Character));
        assert_eq!(zbase32::decode("yé"), Err(zbase32::Zbase32Error::Character));
    }

    #[test]
    fn garbage_never_panics() {
        let huge = "y".repeat(1 << 20);
        let long_ok = VECTOR_SIGNATURE.repeat(3);
        let upper = VECTOR_SIGNATURE.to_uppercase();
        let non_ascii = format!("é{}", &VECTOR_SIGNATURE[2..]);
        let short = &VECTOR_SIGNATURE[..103];
        let inputs = [
            "",
            " ",
            "y",
            "é",
            "\u{0}",
            "⚡⚡⚡",
            &huge,
            &long_ok,
            &upper,
            &non_ascii,
            short,
        ];
        for signature in inputs {
            for message in ["", "test", &huge, "\u{0}é"] {
                assert!(recover(message, signature).is_err(), "{signature:.20}");
            }
            let _ = zbase32::decode(signature);
        }
        assert_eq!(recover("test", &long_ok), Err(ProofError::WrongLength));
        assert_eq!(
            recover("test", &upper),
            Err(ProofError::NotZbase32(zbase32::Zbase32Error::Character))
        );
        // 104 characters of 'y' decode to a zero header: refused, not panicking.
        assert_eq!(
            recover("test", &"y".repeat(104)),
            Err(ProofError::BadHeader)
        );
        // Every header byte and all-zero or all-one bodies.
        for h in 0..=255u8 {
            for fill in [0u8, 1, 0x7f, 0xff] {
                let mut b = [fill; 65];
                b[0] = h;
                let _ = recover("test", &zbase32::encode(&b));
            }
        }
    }

    /// `n - s`, the other s that ECDSA accepts for the same r.
    fn high_s(s: &[u8; 32]) -> [u8; 32] {
        const N: [u8; 32] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c,
            0xd0, 0x36, 0x41, 0x41,
        ];
        let mut out = [0u8; 32];
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = N[i] as i16 - s[i] as i16 - borrow;
            out[i] = d.rem_euclid(256) as u8;
            borrow = (d < 0) as i16;
        }
        out
    }
}
