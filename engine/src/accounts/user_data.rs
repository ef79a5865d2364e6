//! What the exchange identity API keeps of a user beyond the account: its
//! free-form `data` (a JSON object of the client's, such as a language or a
//! country) and the account that referred it. Signing up with them is one
//! transaction: the account exists with its data, or not at all.

use sqlx::Row;

use super::{Accounts, User, Within};
use crate::{now_ms, Engine, Error, Result};

/// Longest `data` text kept.
pub const MAX_DATA_BYTES: usize = 4096;

/// A user's exchange data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserData {
    /// A JSON object's text (`{}` when none was given).
    pub data: String,
    pub referral_uid: Option<String>,
    pub updated_at_ms: Option<i64>,
}

/// `text` as the JSON object `data` must be (empty: none).
pub fn parse_data(text: &str) -> Result<String> {
    parse_json_object("data", text)
}

/// A JSON object of at most 4 KiB given as `field` (empty: `{}`), written
/// compactly.
pub fn parse_json_object(field: &'static str, text: &str) -> Result<String> {
    if text.trim().is_empty() {
        return Ok("{}".into());
    }
    let invalid = || {
        Error::invalid(
            field,
            format!("{field} is a JSON object of at most 4096 bytes"),
        )
    };
    if text.len() > MAX_DATA_BYTES {
        return Err(invalid());
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value.to_string()),
        _ => Err(invalid()),
    }
}

impl Accounts {
    /// The exchange data of `user_id` (defaults for an account that has none).
    pub async fn user_data(&self, user_id: &str) -> Result<UserData> {
        let row =
            sqlx::query("SELECT data, referral_uid, updated_at FROM user_data WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(match row {
            Some(r) => UserData {
                data: r.try_get("data")?,
                referral_uid: r.try_get("referral_uid")?,
                updated_at_ms: Some(r.try_get("updated_at")?),
            },
            None => UserData {
                data: "{}".into(),
                ..UserData::default()
            },
        })
    }

    /// Replaces the `data` of `user` (a JSON object's text).
    pub async fn set_user_data(&self, user: &User, data: &str) -> Result<UserData> {
        let data = parse_data(data)?;
        self.db
            .execute(
                sqlx::query(
                    "INSERT INTO user_data (user_id, data, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id) DO UPDATE SET data = excluded.data, \
                     updated_at = excluded.updated_at",
                )
                .bind(user.id.0.clone())
                .bind(data)
                .bind(now_ms()),
            )
            .await?;
        self.user_data(&user.id.0).await
    }
}

impl Engine {
    /// Signs a user up by e-mail (the exchange identity API's way): the
    /// username is the one given, else made from the address; `data` and the
    /// referring account's id are kept with it, in the sign-up's transaction.
    pub async fn sign_up_by_email(
        &self,
        email: &str,
        password: &str,
        username: Option<&str>,
        referral_uid: Option<&str>,
        data: &str,
        client: &str,
    ) -> Result<User> {
        let email = super::parse_email(email)?
            .ok_or_else(|| Error::invalid("email", "email address is required"))?;
        let data = parse_data(data)?;
        let referral = match referral_uid.map(str::trim).filter(|r| !r.is_empty()) {
            Some(uid) => Some(
                self.accounts
                    .get(uid)
                    .await?
                    .ok_or_else(|| Error::invalid("refid", "refid names no user"))?
                    .id
                    .0,
            ),
            None => None,
        };
        let username = match username.map(str::trim).filter(|u| !u.is_empty()) {
            Some(name) => name.to_string(),
            None => self.accounts.free_username_for(&email).await?,
        };
        let within: Within = Box::new(move |conn, user_id| {
            let user_id = user_id.to_string();
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO user_data (user_id, data, referral_uid, updated_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(user_id)
                .bind(data)
                .bind(referral)
                .bind(now_ms())
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        });
        let user = self
            .accounts
            .register_with(&username, password, Some(&email), client, within)
            .await?;
        self.fund_demo_account(&user, client).await;
        Ok(user)
    }
}

impl Accounts {
    /// A free username made from an e-mail address's local part (letters,
    /// digits, `_` and `-`), with a random tail when that is taken or short.
    async fn free_username_for(&self, email: &str) -> Result<String> {
        let local: String = email
            .split('@')
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .take(20)
            .collect();
        let base = if local.len() >= 3 {
            local
        } else {
            "user".into()
        };
        let mut candidates = vec![base.clone()];
        candidates.extend((0..5).map(|_| format!("{base}-{}", crate::random_hex(3))));
        for name in candidates {
            let Ok(username) = super::Username::parse(&name) else {
                continue;
            };
            if !self.username_taken(&username.key()).await? {
                return Ok(username.as_str().to_string());
            }
        }
        Ok(format!("user-{}", crate::random_hex(6)))
    }

    /// The username of the account with the e-mail address `email` (any
    /// case), if one has it.
    pub async fn username_for_email(&self, email: &str) -> Result<Option<String>> {
        let email = email.trim();
        if email.is_empty() || email.len() > 320 {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT username FROM users WHERE email IS NOT NULL AND lower(email) = lower($1)",
        )
        .bind(email)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| r.try_get("username").map_err(Error::from))
            .transpose()
    }
}
