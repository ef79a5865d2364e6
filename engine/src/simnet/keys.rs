//! A node's identity: a secp256k1 key pair. The secret is stored (hex) and used to
//! sign; it has no `Debug`, `Display` or `Serialize` that could leak it.

use std::sync::OnceLock;

use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use bitcoin::{Address, CompressedPublicKey, Network};

use crate::{Error, Result};

/// One secp256k1 context for the process: making one per signature costs more
/// than the signature.
pub(crate) fn secp() -> &'static Secp256k1<All> {
    static SECP: OnceLock<Secp256k1<All>> = OnceLock::new();
    SECP.get_or_init(Secp256k1::new)
}

#[derive(Clone)]
pub struct NodeKey {
    secret: SecretKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeKey({})", self.pubkey_hex())
    }
}

impl NodeKey {
    pub fn generate() -> Self {
        let (secret, _) = secp().generate_keypair(&mut rand::thread_rng());
        NodeKey { secret }
    }

    pub fn from_stored(hex_secret: &str) -> Result<Self> {
        let bytes =
            hex::decode(hex_secret).map_err(|_| Error::Internal("stored node key".into()))?;
        let secret =
            SecretKey::from_slice(&bytes).map_err(|_| Error::Internal("stored node key".into()))?;
        Ok(NodeKey { secret })
    }

    /// The secret as stored in the database, and nowhere else.
    pub(crate) fn to_stored(&self) -> String {
        hex::encode(self.secret.secret_bytes())
    }

    pub(crate) fn secret(&self) -> &SecretKey {
        &self.secret
    }

    pub fn pubkey(&self) -> PublicKey {
        self.secret.public_key(secp())
    }

    pub fn pubkey_hex(&self) -> String {
        self.pubkey().to_string()
    }

    /// The node's on-chain receive address: pay-to-witness-pubkey-hash on regtest
    /// (`bcrt1q...`).
    pub fn address(&self) -> String {
        Address::p2wpkh(&CompressedPublicKey(self.pubkey()), Network::Regtest).to_string()
    }
}

/// Parses a node id as users type it: 66 hex digits of a compressed public key,
/// optionally followed by `@host:port`, which the simnet does not need.
pub fn parse_node_id(text: &str) -> Result<String> {
    let id = text.trim().split('@').next().unwrap_or_default();
    let valid = id.len() == 66
        && hex::decode(id)
            .ok()
            .and_then(|b| PublicKey::from_slice(&b).ok())
            .is_some();
    if valid {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(Error::invalid(
            "remotenode",
            "node id must be a 66-digit hex public key, optionally followed by @host:port",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_storage_and_gives_a_regtest_address() {
        let key = NodeKey::generate();
        let again = NodeKey::from_stored(&key.to_stored()).unwrap();
        assert_eq!(key.pubkey(), again.pubkey());
        assert!(key.address().starts_with("bcrt1q"), "{}", key.address());
        assert_eq!(key.pubkey_hex().len(), 66);
        assert!(!format!("{key:?}").contains(&key.to_stored()));
    }

    #[test]
    fn node_ids_parse_with_or_without_a_host() {
        let key = NodeKey::generate().pubkey_hex();
        assert_eq!(parse_node_id(&key).unwrap(), key);
        assert_eq!(
            parse_node_id(&format!("{key}@127.0.0.1:9735")).unwrap(),
            key
        );
        assert!(parse_node_id("02abc").is_err());
        assert!(parse_node_id(&"0".repeat(66)).is_err());
    }
}
