//! Sign-in with Nostr (NIP-98 HTTP auth): a client proves it holds a Nostr key
//! by signing an event of kind 27235 whose `u` and `method` tags name the very
//! request it sends, made within the last 60 seconds. The event's id is its
//! NIP-01 hash, signed with BIP-340 Schnorr by the key it names; each event is
//! accepted once. A key signs in to the account it is linked to (made on its
//! first sign-in), and a signed-in account can link a key or unlink one.

use std::time::Duration;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{schnorr, Message, Secp256k1, XOnlyPublicKey};
use serde::Deserialize;

use crate::{now_ms, Engine, Error, Result, User};

/// NIP-98's event kind.
pub const HTTP_AUTH_KIND: u64 = 27235;
/// How far an event's `created_at` may be from the server's clock.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Largest event accepted, in bytes of JSON.
const MAX_EVENT_LEN: usize = 8 * 1024;

/// A Nostr event as NIP-01 writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Event {
    id: String,
    pubkey: String,
    created_at: i64,
    kind: u64,
    tags: Vec<Vec<String>>,
    content: String,
    sig: String,
}

fn refused(message: impl Into<String>) -> Error {
    Error::invalid("nostr_event", message)
}

impl Event {
    fn tag(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|tag| tag.first().is_some_and(|t| t == name))
            .and_then(|tag| tag.get(1))
            .map(String::as_str)
    }

    /// NIP-01's id: the SHA-256 of `[0, pubkey, created_at, kind, tags, content]`
    /// written as compact JSON.
    fn computed_id(&self) -> [u8; 32] {
        let canonical = serde_json::json!([
            0,
            self.pubkey,
            self.created_at,
            self.kind,
            self.tags,
            self.content
        ]);
        sha256::Hash::hash(canonical.to_string().as_bytes()).to_byte_array()
    }
}

/// The key (64 hex digits, lower case) of a NIP-98 event that authorises a
/// `method` request to `url` now, or what is wrong with it. Does not check
/// whether it was used before ([`Engine::nostr_sign_in`] does).
pub fn verify_http_auth(
    text: &str,
    url: &str,
    method: &str,
    now_ms: i64,
) -> Result<(String, String)> {
    if text.len() > MAX_EVENT_LEN {
        return Err(refused("the event is larger than 8 KiB"));
    }
    let event: Event =
        serde_json::from_str(text).map_err(|e| refused(format!("not a Nostr event: {e}")))?;
    if event.kind != HTTP_AUTH_KIND {
        return Err(refused(format!(
            "the event's kind is not {HTTP_AUTH_KIND} (NIP-98)"
        )));
    }
    if event.tag("u") != Some(url) {
        return Err(refused(format!("the event's u tag does not name {url}")));
    }
    if !event
        .tag("method")
        .is_some_and(|m| m.eq_ignore_ascii_case(method))
    {
        return Err(refused(format!("the event's method tag is not {method}")));
    }
    let age_ms = now_ms.saturating_sub(event.created_at.saturating_mul(1000));
    if age_ms.unsigned_abs() > WINDOW.as_millis() as u64 {
        return Err(refused("the event was not made within the last 60 seconds"));
    }
    let id = <[u8; 32]>::try_from(hex::decode(&event.id).unwrap_or_default())
        .map_err(|_| refused("the event's id is not 32 bytes of hex"))?;
    if id != event.computed_id() {
        return Err(refused("the event's id is not the hash of its content"));
    }
    let key = hex::decode(&event.pubkey)
        .ok()
        .and_then(|bytes| XOnlyPublicKey::from_slice(&bytes).ok())
        .ok_or_else(|| refused("the event's pubkey is not a Nostr public key"))?;
    let sig = hex::decode(&event.sig)
        .ok()
        .and_then(|bytes| schnorr::Signature::from_slice(&bytes).ok())
        .ok_or_else(|| refused("the event's sig is not a Schnorr signature"))?;
    Secp256k1::verification_only()
        .verify_schnorr(&sig, &Message::from_digest(id), &key)
        .map_err(|_| refused("the event's signature does not verify"))?;
    Ok((hex::encode(key.serialize()), hex::encode(id)))
}

impl Engine {
    /// Signs in with a NIP-98 event for a POST to `url`: the account linked to
    /// its key, made on the key's first sign-in. The event is used up first,
    /// so of two requests with one event only one signs in.
    pub async fn nostr_sign_in(
        &self,
        event: &str,
        url: &str,
        client: &crate::Seen,
    ) -> Result<User> {
        let (pubkey, id) = verify_http_auth(event, url, "POST", now_ms())?;
        self.use_nostr_event(id).await?;
        self.accounts
            .sign_in_with_key(&pubkey, "nostr", None, client)
            .await
    }

    /// Links the key of a NIP-98 event (for a POST to `url`) to `user`: it
    /// then signs in to this account. A key another account holds is refused.
    pub async fn link_nostr_key(&self, user: &User, event: &str, url: &str) -> Result<String> {
        let (pubkey, id) = verify_http_auth(event, url, "POST", now_ms())?;
        self.use_nostr_event(id).await?;
        self.accounts.link_key(user, &pubkey, "nostr").await?;
        Ok(pubkey)
    }

    /// Marks an event used; refuses one used before.
    async fn use_nostr_event(&self, id: String) -> Result<()> {
        let now = now_ms();
        let fresh = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    // Past its window an event is refused by its age anyway.
                    sqlx::query("DELETE FROM nostr_events WHERE accepted_at < $1")
                        .bind(now - 10 * WINDOW.as_millis() as i64)
                        .execute(&mut *conn)
                        .await?;
                    let inserted = sqlx::query(
                        "INSERT INTO nostr_events (id, accepted_at) VALUES ($1, $2) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&id)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    Ok(inserted == 1)
                })
            })
            .await?;
        match fresh {
            true => Ok(()),
            false => Err(refused("this event was used already; sign a new one")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::{Keypair, SecretKey};

    fn signed(kind: u64, url: &str, method: &str, created_at: i64) -> String {
        let secp = Secp256k1::new();
        let keypair = Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[7; 32]).unwrap());
        let (key, _) = keypair.x_only_public_key();
        let mut event = Event {
            id: String::new(),
            pubkey: hex::encode(key.serialize()),
            created_at,
            kind,
            tags: vec![
                vec!["u".into(), url.into()],
                vec!["method".into(), method.into()],
            ],
            content: String::new(),
            sig: String::new(),
        };
        let id = event.computed_id();
        event.id = hex::encode(id);
        event.sig = hex::encode(
            secp.sign_schnorr_no_aux_rand(&Message::from_digest(id), &keypair)
                .serialize(),
        );
        serde_json::json!({
            "id": event.id, "pubkey": event.pubkey, "created_at": event.created_at,
            "kind": event.kind, "tags": event.tags, "content": event.content, "sig": event.sig,
        })
        .to_string()
    }

    #[test]
    fn only_a_fresh_event_for_this_request_passes() {
        let url = "https://wallet.example/api/v1/auth/nostr";
        let now = 1_800_000_000_000;
        let good = signed(27235, url, "POST", now / 1000);
        assert!(verify_http_auth(&good, url, "POST", now).is_ok());
        for (event, words) in [
            (signed(1, url, "POST", now / 1000), "kind"),
            (
                signed(
                    27235,
                    "https://evil.example/api/v1/auth/nostr",
                    "POST",
                    now / 1000,
                ),
                "u tag",
            ),
            (signed(27235, url, "GET", now / 1000), "method"),
            (signed(27235, url, "POST", now / 1000 - 61), "60 seconds"),
            (signed(27235, url, "POST", now / 1000 + 61), "60 seconds"),
            (
                good.replace("\"content\":\"\"", "\"content\":\"x\""),
                "hash",
            ),
            ("[]".to_string(), "not a Nostr event"),
        ] {
            let err = verify_http_auth(&event, url, "POST", now)
                .unwrap_err()
                .to_string();
            assert!(err.contains(words), "{words}: {err}");
        }
    }
}
