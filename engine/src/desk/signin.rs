//! Signing in to the desk without a password, and opening an account by paying
//! for it, as LN-Markets did:
//! - LNURL-auth (LUD-04): a `k1` tied to the browser session that asked for it;
//!   a wallet signs it with its linking key, and that session becomes signed in
//!   (the gate claims the answer on the session's next request);
//! - Joule (WebLN `signMessage`): a one-time challenge message this server
//!   issued, signed in LND's format; the key is recovered from the signature;
//! - an account paid by invoice: the invoice's sats become its first balance.
//!
//! Every challenge works once and expires; an account keyed by a wallet's key
//! is made on its first sign-in.

use sqlx::Row;

use super::{link_mac, Desk};
use crate::events::{EventKind, Topic};
use crate::simnet::invoice::Issued;
use crate::{now_ms, random_hex, Error, Result, User};

/// How a keyed account signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Lnurl,
    Joule,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Lnurl => "lnurl",
            KeyKind::Joule => "joule",
        }
    }
}

/// The first words of every Joule challenge.
const JOULE_PREFIX: &str = "Sign in to Ampere: ";

impl Desk {
    /// Issues an LNURL-auth challenge for the browser session `session_id`:
    /// answers its `k1` and the LNURL (upper case).
    pub async fn lnurl_auth_challenge(&self, session_id: &str) -> Result<(String, String)> {
        let k1 = random_hex(32);
        let t = self.issue_challenge(&k1, "lnurl", Some(session_id)).await?;
        let t = t.to_string();
        let hmac = link_mac(&self.link_key, &["a", &k1, &t]);
        let url = format!(
            "{}/lnm/lnurl/a?tag=login&k1={k1}&hmac={hmac}&t={t}",
            self.config.public_url
        );
        let lnurl = crate::lnurl::encode(&url);
        Ok((k1, lnurl))
    }

    /// Issues an LNURL-auth challenge (LUD-04 `action=link`) that links the
    /// answering wallet's key to `user`: answers its `k1` and the LNURL.
    pub async fn lnurl_link_challenge(&self, user: &User) -> Result<(String, String)> {
        let k1 = random_hex(32);
        let now = now_ms();
        let expires_at = now + self.config.link_expiry.as_millis() as i64;
        let (id, user_id) = (k1.clone(), user.id.0.clone());
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM lnurl_link_challenges WHERE expires_at < $1")
                        .bind(now - 3_600_000)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(
                        "INSERT INTO lnurl_link_challenges (k1, user_id, expires_at) VALUES ($1, $2, $3)",
                    )
                    .bind(&id)
                    .bind(&user_id)
                    .bind(expires_at)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await?;
        let t = (expires_at / 1000).to_string();
        let hmac = link_mac(&self.link_key, &["al", &k1, &t]);
        let url = format!(
            "{}/lnm/lnurl/a?tag=login&action=link&k1={k1}&hmac={hmac}&t={t}",
            self.config.public_url
        );
        Ok((k1.clone(), crate::lnurl::encode(&url)))
    }

    /// Records a challenge; answers its expiry in Unix seconds.
    async fn issue_challenge(&self, id: &str, kind: &str, session: Option<&str>) -> Result<i64> {
        let now = now_ms();
        let expires_at = now + self.config.link_expiry.as_millis() as i64;
        // Expired challenges go as new ones come: the table stays small.
        let (id, kind, session) = (
            id.to_string(),
            kind.to_string(),
            session.map(str::to_string),
        );
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM desk_challenges WHERE expires_at < $1")
                        .bind(now - 3_600_000)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(
                        "INSERT INTO desk_challenges (id, kind, session_id, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&id)
                    .bind(&kind)
                    .bind(&session)
                    .bind(now)
                    .bind(expires_at)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await?;
        Ok(expires_at / 1000)
    }

    /// A wallet's answer to an LNURL-auth challenge (`GET /lnm/lnurl/a`):
    /// checks the link's `hmac` and `t`, the signature of `k1` by `key`, and uses
    /// the challenge up (once). Signs in, or first makes, the account keyed by
    /// `key`; the waiting browser learns of it on the bus.
    pub async fn lnurl_auth_answer(
        &self,
        k1: &str,
        sig: &str,
        key: &str,
        hmac: &str,
        t: &str,
        client: &crate::Seen,
    ) -> Result<User> {
        self.check_auth_answer("a", k1, sig, key, hmac, t)?;
        self.take_challenge(k1, "lnurl").await?;
        let key = key.to_ascii_lowercase();
        let user = self
            .accounts
            .sign_in_with_key(&key, KeyKind::Lnurl.as_str(), None, client)
            .await?;
        self.answer_challenge(k1, &user).await?;
        self.bus.publish(
            Topic::Challenge(k1.to_string()),
            EventKind::ChallengeAnswered,
        );
        Ok(user)
    }

    /// A wallet's answer to a link challenge (`GET /lnm/lnurl/a` with
    /// `action=link`, see [`Desk::lnurl_link_challenge`]): checked as a
    /// sign-in's, the challenge used up once, and the key linked to the
    /// challenge's account (never one that signs in to another account).
    pub async fn lnurl_link_answer(
        &self,
        k1: &str,
        sig: &str,
        key: &str,
        hmac: &str,
        t: &str,
    ) -> Result<User> {
        self.check_auth_answer("al", k1, sig, key, hmac, t)?;
        self.link_lnurl_key(k1, &key.to_ascii_lowercase()).await
    }

    /// Checks an LNURL-auth answer: the link's `hmac` (made for `domain`) and
    /// `t`, and the signature of `k1` by `key`.
    fn check_auth_answer(
        &self,
        domain: &str,
        k1: &str,
        sig: &str,
        key: &str,
        hmac: &str,
        t: &str,
    ) -> Result<()> {
        if !crate::same_secret(
            hmac.as_bytes(),
            link_mac(&self.link_key, &[domain, k1, t]).as_bytes(),
        ) {
            return Err(Error::invalid("hmac", "this login link is not valid"));
        }
        let expires: i64 = t
            .parse()
            .map_err(|_| Error::invalid("t", "t is a Unix time"))?;
        if expires.saturating_mul(1000) <= now_ms() {
            return Err(Error::invalid("t", "this login link has expired"));
        }
        crate::lnurl::verify_auth(k1, sig, key).map_err(|e| Error::invalid("sig", e.to_string()))
    }

    /// Uses a link challenge up (once, before it expires) and links `key` to
    /// its account.
    async fn link_lnurl_key(&self, k1: &str, key: &str) -> Result<User> {
        let (id, linked) = (k1.to_string(), key.to_string());
        let user_id = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "UPDATE lnurl_link_challenges SET linked_key = $1 \
                         WHERE k1 = $2 AND linked_key IS NULL AND expires_at > $3 \
                         RETURNING user_id",
                    )
                    .bind(&linked)
                    .bind(&id)
                    .bind(now_ms())
                    .fetch_optional(&mut *conn)
                    .await?;
                    Ok(row
                        .map(|row| row.try_get::<String, _>("user_id"))
                        .transpose()?)
                })
            })
            .await?
            .ok_or_else(|| {
                Error::invalid("k1", "this challenge is unknown, used already or expired")
            })?;
        let user = self
            .accounts
            .get(&user_id)
            .await?
            .ok_or_else(|| Error::invalid("k1", "this challenge's account is gone"))?;
        self.accounts
            .link_key(&user, key, KeyKind::Lnurl.as_str())
            .await?;
        Ok(user)
    }

    /// Uses a challenge up, once and before it expires. Taken before the
    /// account is looked up or made, so an answer to a challenge unknown, used
    /// or expired changes nothing (no account for its key), and of two answers
    /// at once exactly one goes on. A sign-in refused after it (the sign-up
    /// limits) costs the challenge: the wallet asks for a new one.
    async fn take_challenge(&self, id: &str, kind: &str) -> Result<()> {
        let used = self
            .db
            .execute(
                sqlx::query(
                    "UPDATE desk_challenges SET used_at = $1 \
                     WHERE id = $2 AND kind = $3 AND used_at IS NULL AND expires_at > $1",
                )
                .bind(now_ms())
                .bind(id.to_string())
                .bind(kind.to_string()),
            )
            .await?;
        if used == 1 {
            Ok(())
        } else {
            Err(Error::invalid(
                "k1",
                "this challenge is unknown, used already or expired",
            ))
        }
    }

    /// Names the account that answered a challenge this call took
    /// ([`Desk::claim_lnurl_auth`] hands it over).
    async fn answer_challenge(&self, id: &str, user: &User) -> Result<()> {
        self.db
            .execute(
                sqlx::query("UPDATE desk_challenges SET user_id = $1 WHERE id = $2")
                    .bind(user.id.0.clone())
                    .bind(id.to_string()),
            )
            .await?;
        Ok(())
    }

    /// The account a wallet signed in for the browser session `session_id` with
    /// challenge `k1`, handed over once.
    pub async fn claim_lnurl_auth(&self, k1: &str, session_id: &str) -> Result<Option<User>> {
        // Read first: a browser still waiting costs no write per request.
        if !matches!(
            self.lnurl_auth_state(k1, session_id).await?,
            Some((true, _))
        ) {
            return Ok(None);
        }
        let (k1, session) = (k1.to_string(), session_id.to_string());
        let claimed = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "UPDATE desk_challenges SET session_id = NULL \
                         WHERE id = $1 AND session_id = $2 AND user_id IS NOT NULL \
                         RETURNING user_id",
                    )
                    .bind(&k1)
                    .bind(&session)
                    .fetch_optional(&mut *conn)
                    .await?;
                    Ok(row
                        .map(|row| row.try_get::<String, _>("user_id"))
                        .transpose()?)
                })
            })
            .await?;
        match claimed {
            Some(user_id) => self.accounts.get(&user_id).await,
            None => Ok(None),
        }
    }

    /// Where the browser session's LNURL-auth `k1` stands: `None` once handed
    /// over (or unknown to this session), else whether a wallet answered it,
    /// and when it expires (Unix ms).
    pub async fn lnurl_auth_state(
        &self,
        k1: &str,
        session_id: &str,
    ) -> Result<Option<(bool, i64)>> {
        let row = sqlx::query(
            "SELECT user_id, expires_at FROM desk_challenges WHERE id = $1 AND kind = 'lnurl' \
             AND session_id = $2",
        )
        .bind(k1)
        .bind(session_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| {
            Ok((
                row.try_get::<Option<String>, _>("user_id")?.is_some(),
                row.try_get("expires_at")?,
            ))
        })
        .transpose()
    }

    /// A one-time message for a Joule (WebLN `signMessage`) sign-in; answers it
    /// and its expiry in Unix seconds.
    pub async fn joule_challenge(&self) -> Result<(String, i64)> {
        let message = format!("{JOULE_PREFIX}{}", random_hex(16));
        let expires = self.issue_challenge(&message, "joule", None).await?;
        Ok((message, expires))
    }

    /// Signs in with a Joule signature of a challenge this server issued: the
    /// challenge is used up (a captured login cannot be replayed), the key is
    /// recovered from the signature, and its account signed in or first made
    /// (named after `alias` when that name is free). Answers the account and
    /// the key.
    pub async fn joule_login(
        &self,
        message: &str,
        signature: &str,
        alias: &str,
        client: &crate::Seen,
    ) -> Result<(User, String)> {
        if !message.starts_with(JOULE_PREFIX) || message.len() > 128 {
            return Err(Error::invalid(
                "message",
                "sign the challenge GET /lnm/login/joule answers",
            ));
        }
        let key = crate::signed_message::recover(message, signature)
            .map_err(|e| Error::invalid("signature", e.to_string()))?
            .to_string();
        self.take_challenge(message, "joule")
            .await
            .map_err(|err| match err {
                Error::Invalid { .. } => Error::invalid(
                    "message",
                    "this challenge is unknown, used already or expired",
                ),
                other => other,
            })?;
        let user = self
            .accounts
            .sign_in_with_key(&key, KeyKind::Joule.as_str(), Some(alias), client)
            .await?;
        self.answer_challenge(message, &user).await?;
        Ok((user, key))
    }

    /// An invoice that opens an account when paid (`GET /lnm/login/credentials`).
    pub async fn account_invoice(&self) -> Result<Issued> {
        self.require(self.config.switches.account_creation, "account creation")?;
        // Anyone may ask: the offers nobody paid go an hour after they expire.
        self.db
            .execute(
                sqlx::query(
                    "DELETE FROM desk_deposits WHERE purpose = 'account' \
                     AND settled_at IS NULL AND expires_at < $1",
                )
                .bind(now_ms() - 3_600_000),
            )
            .await?;
        self.issue_deposit(
            None,
            "account",
            self.config.account_price,
            "Ampere exchange account",
        )
        .await
    }

    /// Opens an account with `login` and `password` if the account invoice
    /// `payment_hash` is paid and was never used: its sats become the first
    /// trading balance, in the sign-up's own transaction.
    pub async fn register_paid(
        &self,
        payment_hash: &str,
        login: &str,
        password: &str,
        client: &str,
    ) -> Result<User> {
        self.require(self.config.switches.account_creation, "account creation")?;
        let hash = payment_hash.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                "paymentHash",
                "paymentHash is 32 bytes of hex",
            ));
        }
        let unclaimed = |h: &str| {
            sqlx::query(
                "SELECT 1 AS ok FROM desk_deposits WHERE payment_hash = $1 AND purpose = 'account' \
                 AND settled_at IS NOT NULL AND claimed_at IS NULL",
            )
            .bind(h.to_string())
        };
        // Checked before any hashing; checked again inside the sign-up.
        if unclaimed(&hash)
            .fetch_optional(self.db.pool())
            .await?
            .is_none()
        {
            return Err(not_paid());
        }
        self.accounts
            .register_with(
                login,
                password,
                None,
                client,
                Box::new(move |conn, user_id| {
                    Box::pin(async move {
                        let row = sqlx::query(
                            "UPDATE desk_deposits SET user_id = $1, claimed_at = $2 \
                             WHERE payment_hash = $3 AND purpose = 'account' \
                             AND settled_at IS NOT NULL AND claimed_at IS NULL \
                             RETURNING amount_msat",
                        )
                        .bind(user_id)
                        .bind(now_ms())
                        .bind(&hash)
                        .fetch_optional(&mut *conn)
                        .await?
                        .ok_or_else(not_paid)?;
                        let amount = crate::Msat(row.try_get("amount_msat")?);
                        super::funding::credit(conn, user_id, amount).await
                    })
                }),
            )
            .await
    }
}

fn not_paid() -> Error {
    Error::invalid(
        "paymentHash",
        "this invoice is not paid, not an account invoice, or was used already",
    )
}
