//! Confirming an account's e-mail address by a code sent to it (the exchange
//! identity API's `users/email/generate_code` and `confirm_code`). Asking
//! answers the same whether an account has the address, and is throttled as
//! reset links are; a code works once, for a day, and only while the account
//! still has the address it was sent to. An address stays confirmed while it
//! is the account's (changing it needs a new confirmation).

use sqlx::Row;

use super::{user_from_row, Accounts, User, USER_COLUMNS};
use crate::mail::Mail;
use crate::{now_ms, Error, Result};

/// How long a confirmation code works.
pub const CONFIRMATION_LIFETIME_MS: i64 = 24 * 3600 * 1000;

fn code_hash(code: &str) -> String {
    crate::secret_hash(&code.trim().to_ascii_lowercase())
}

fn invalid_code() -> Error {
    Error::invalid(
        "token",
        "this confirmation code is not valid: it was used, has expired, or the address changed; ask for a new one",
    )
}

impl Accounts {
    /// Sends a confirmation code to `email` if an account has it and has not
    /// confirmed it, and answers the same either way (the lookup and the mail
    /// run in the background).
    pub async fn request_email_confirmation(
        &self,
        email: &str,
        client: &str,
        mail: &Mail,
    ) -> Result<()> {
        self.mail_later(email, client, mail, |accounts, email, mail| async move {
            accounts.confirmation_or_log(&email, &mail).await
        })
        .await
    }

    async fn confirmation_or_log(&self, email: &str, mail: &Mail) {
        if let Err(err) = self.send_confirmation(email, mail).await {
            tracing::warn!(error = %err, "an e-mail confirmation code was not sent");
        }
    }

    /// Sends `user` a confirmation code for its address (a sign-up by e-mail).
    pub fn confirm_after_sign_up(&self, user: &User, mail: &Mail) {
        let (accounts, mail) = (self.clone(), mail.clone());
        let Some(email) = user.email.clone() else {
            return;
        };
        tokio::spawn(async move { accounts.confirmation_or_log(&email, &mail).await });
    }

    async fn send_confirmation(&self, email: &str, mail: &Mail) -> Result<()> {
        let row = sqlx::query(&format!(
            "{USER_COLUMNS} WHERE email IS NOT NULL AND lower(email) = lower($1)"
        ))
        .bind(email)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(user) = row.as_ref().map(user_from_row).transpose()? else {
            return Ok(());
        };
        let Some(address) = user.email.clone() else {
            return Ok(());
        };
        if self.email_confirmed(&user).await? {
            return Ok(());
        }
        let code = crate::random_hex(16);
        let now = now_ms();
        self.db
            .execute(
                sqlx::query(
                    "INSERT INTO email_codes (code_hash, user_id, email, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(code_hash(&code))
                .bind(user.id.0.clone())
                .bind(address.clone())
                .bind(now + CONFIRMATION_LIFETIME_MS),
            )
            .await?;
        let text = format!(
            "Confirm the e-mail address of the Ampere account \"{username}\" with this code \
             (it works once, within a day):\n\n{code}\n\n\
             If you did not ask, ignore this message: nothing changes.\n",
            username = user.username,
        );
        mail.send(&address, "Confirm your e-mail address", text);
        Ok(())
    }

    /// Confirms the address a code was sent to: once, within a day, while it
    /// is still the account's address. Answers the account.
    pub async fn confirm_email(&self, code: &str) -> Result<User> {
        let code = code.trim();
        if code.len() != 32 || !code.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid_code());
        }
        let hash = code_hash(code);
        let user_id = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    let now = now_ms();
                    let row = sqlx::query(
                        "SELECT c.user_id, c.email FROM email_codes c JOIN users u ON u.id = c.user_id \
                         WHERE c.code_hash = $1 AND c.used_at IS NULL AND c.expires_at > $2 \
                         AND u.email = c.email",
                    )
                    .bind(&hash)
                    .bind(now)
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or_else(invalid_code)?;
                    let (user_id, email): (String, String) =
                        (row.try_get("user_id")?, row.try_get("email")?);
                    let used = sqlx::query(
                        "UPDATE email_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL",
                    )
                    .bind(&hash)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if used != 1 {
                        return Err(invalid_code());
                    }
                    sqlx::query("DELETE FROM email_confirmations WHERE user_id = $1")
                        .bind(&user_id)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(
                        "INSERT INTO email_confirmations (user_id, email, confirmed_at) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(&user_id)
                    .bind(email)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    Ok(user_id)
                })
            })
            .await?;
        self.get(&user_id).await?.ok_or_else(invalid_code)
    }

    /// Whether the account confirmed the address it has now.
    pub async fn email_confirmed(&self, user: &User) -> Result<bool> {
        let Some(email) = &user.email else {
            return Ok(false);
        };
        let row = sqlx::query("SELECT email FROM email_confirmations WHERE user_id = $1")
            .bind(&user.id.0)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(match row {
            Some(row) => row
                .try_get::<String, _>("email")?
                .eq_ignore_ascii_case(email),
            None => false,
        })
    }
}
