//! Account recovery: a password forgotten is reset through a link sent to the
//! account's e-mail address. Asking never tells whether an account has the
//! address (the same answer, at once, either way: the lookup and the mail run
//! in the background); a link works once, for [`RESET_LINK_LIFETIME`], while
//! the account's password and e-mail address are the ones it was made under;
//! setting the new password ends every session and token of the account.

use sqlx::Row;

use super::{parse_email, user_from_row, Accounts, User, USER_COLUMNS};
use crate::mail::Mail;
use crate::throttle::Scope;
use crate::{now_ms, Access, Caller, Engine, Error, Result};

/// How long a reset link works.
pub const RESET_LINK_LIFETIME: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// The page a reset link opens (`?key=...`).
pub const RESET_PAGE: &str = "/reset-password";

fn invalid_link() -> Error {
    Error::invalid(
        "reset_key",
        "this reset link is not valid: it was used, has expired, or a newer password was set; ask for a new one",
    )
}

impl Accounts {
    /// Sends a reset link to `email` if an account has it (whatever its case),
    /// and answers the same either way. Throttled per client address and per
    /// address named, so nobody floods an inbox.
    pub async fn request_password_reset(
        &self,
        email: &str,
        client: &str,
        mail: &Mail,
    ) -> Result<()> {
        self.mail_later(email, client, mail, |accounts, email, mail| async move {
            if let Err(err) = accounts.send_reset_link(&email, &mail).await {
                tracing::warn!(error = %err, "a password reset link was not sent");
            }
        })
        .await
    }

    /// Mail asked for about `email` (a reset link, a confirmation code): the
    /// request counted per client and per address named (whether or not an
    /// account has it: nobody floods an inbox), then `send` runs in the
    /// background, so the answer is the same, and as quick, either way.
    pub(super) async fn mail_later<F, Fut>(
        &self,
        email: &str,
        client: &str,
        mail: &Mail,
        send: F,
    ) -> Result<()>
    where
        F: FnOnce(Accounts, String, Mail) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let email = parse_email(email)?
            .ok_or_else(|| Error::invalid("email", "email address is required"))?;
        let address = email.to_lowercase();
        self.throttle
            .begin(&[
                (Scope::ResetClient, client),
                (Scope::ResetAddress, &address),
            ])
            .await?;
        tokio::spawn(send(self.clone(), email, mail.clone()));
        Ok(())
    }

    async fn send_reset_link(&self, email: &str, mail: &Mail) -> Result<()> {
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
        let key = crate::random_hex(32);
        let now = now_ms();
        let expires_at = now + RESET_LINK_LIFETIME.as_millis() as i64;
        let (hash, id, version) = (
            crate::secret_hash(&key),
            user.id.0.clone(),
            user.auth_version,
        );
        let sent_to = address.clone();
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    // Links long past their use are forgotten.
                    sqlx::query("DELETE FROM password_resets WHERE expires_at < $1")
                        .bind(now - 24 * 3600 * 1000)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(
                        "INSERT INTO password_resets (key_hash, user_id, auth_version, email, \
                         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(hash)
                    .bind(id)
                    .bind(version)
                    .bind(sent_to)
                    .bind(now)
                    .bind(expires_at)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await?;
        let link = mail.link(&format!("{RESET_PAGE}?key={key}"));
        let minutes = RESET_LINK_LIFETIME.as_secs() / 60;
        let text = format!(
            "Someone asked to reset the password of the Ampere account \"{username}\".\n\n\
             To choose a new password, open this link within {minutes} minutes:\n\n{link}\n\n\
             (An application that asked for you takes this code instead: {key})\n\n\
             It works once. Setting a new password signs the account out everywhere.\n\n\
             If you did not ask, ignore this message: nothing changes.\n",
            username = user.username,
        );
        mail.send(&address, "Reset your Ampere password", text);
        Ok(())
    }

    /// Sets a new password (the sign-up rule) from a reset link's `key`. The
    /// link is used up in the same transaction that sets the password, so of
    /// two requests with one link exactly one sets its password. Every session
    /// and token of the account stops working.
    pub async fn reset_password(
        &self,
        key: &str,
        password: &str,
        repeat: &str,
        client: &crate::Seen,
    ) -> Result<User> {
        let key = key.trim();
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid_link());
        }
        if password != repeat {
            return Err(Error::invalid(
                "password_repeat",
                "the passwords are not the same",
            ));
        }
        self.check_new_password(password, &[]).await?;
        let hash = crate::secret_hash(&key.to_ascii_lowercase());
        // A link that cannot work is refused before any hashing work.
        let now = now_ms();
        let usable = sqlx::query(
            "SELECT 1 AS found FROM password_resets r JOIN users u ON u.id = r.user_id \
             WHERE r.key_hash = $1 AND r.used_at IS NULL AND r.expires_at > $2 \
             AND r.auth_version = u.auth_version AND u.email = r.email",
        )
        .bind(&hash)
        .bind(now)
        .fetch_optional(self.db.pool())
        .await?;
        if usable.is_none() {
            return Err(invalid_link());
        }
        let password_hash = self.hash(password).await?;
        let user_id = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    let now = now_ms();
                    let row = sqlx::query(
                        "SELECT user_id, auth_version FROM password_resets \
                         WHERE key_hash = $1 AND used_at IS NULL AND expires_at > $2",
                    )
                    .bind(&hash)
                    .bind(now)
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or_else(invalid_link)?;
                    let user_id: String = row.try_get("user_id")?;
                    let version: i64 = row.try_get("auth_version")?;
                    let used = sqlx::query(
                        "UPDATE password_resets SET used_at = $1 \
                         WHERE key_hash = $2 AND used_at IS NULL",
                    )
                    .bind(now)
                    .bind(&hash)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    let set = sqlx::query(
                        "UPDATE users SET password_hash = $1, auth_version = auth_version + 1 \
                         WHERE id = $2 AND auth_version = $3 AND email = \
                         (SELECT email FROM password_resets WHERE key_hash = $4)",
                    )
                    .bind(password_hash.0)
                    .bind(&user_id)
                    .bind(version)
                    .bind(&hash)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    // Either failing rolls both back: the link stays as it was.
                    if used != 1 || set != 1 {
                        return Err(invalid_link());
                    }
                    Ok(user_id)
                })
            })
            .await?;
        self.record(
            &user_id,
            super::activity::Topic::Password,
            "reset",
            super::activity::Outcome::Succeed,
            client,
            serde_json::json!({ "way": "e-mail link" }),
        )
        .await;
        self.credentials_changed(&user_id).await
    }
}

impl Engine {
    /// Changes the profile (`None`: unchanged; empty: removed). The e-mail
    /// address is where a reset link goes, so changing it takes what managing
    /// the account's access takes (never an ACL or desk token; a browser gives
    /// its password again), voids the reset links sent to the old address, and
    /// tells the old address.
    pub async fn change_profile(
        &self,
        caller: &Caller,
        display_name: Option<&str>,
        email: Option<&str>,
        password: Option<&str>,
        client: &crate::Seen,
    ) -> Result<User> {
        caller.permits(Access::Write)?;
        let before = caller.user.email.clone();
        let moves = email.is_some_and(|new| {
            !before
                .as_deref()
                .is_some_and(|old| old.eq_ignore_ascii_case(new.trim()))
        });
        if moves {
            caller.permits(Access::ManageAccess)?;
            self.accounts.confirm(caller, password, client).await?;
        }
        let user = self
            .accounts
            .update_profile(&caller.user, display_name, email)
            .await?;
        if let (true, Some(old)) = (moves, before) {
            let text = format!(
                "The e-mail address of the Ampere account \"{username}\" was changed from this \
                 one. Password reset links now go to the new address.\n\n\
                 If you did not change it, sign in and change your password at once.\n",
                username = user.username,
            );
            self.mail
                .send(&old, "Your Ampere e-mail address changed", text);
        }
        Ok(user)
    }
}
