//! Two-factor codes (TOTP, RFC 6238: SHA-1, 6 digits, 30-second steps, one step
//! of clock drift either way). It owns the account's secret, whether the second
//! factor is on, and which step a code was last accepted for: a code works
//! once, even in a race, because accepting it moves that step forward in one
//! conditional write. Wrong codes are throttled per account.
//!
//! A secret starts off (`start_two_factor`) and is switched on by a first code,
//! which proves the authenticator app holds it. Once it is on, every password
//! sign-in, password change, API key change and account deletion asks
//! [`Accounts::second_factor`].

use sqlx::Row;
use totp_rs::{Algorithm, TOTP};

use super::activity::{Outcome, Topic};
use super::{Accounts, User};
use crate::throttle::Scope;
use crate::{now_ms, same_secret, Error, Result, Seen};

/// The name authenticator apps show above the account.
pub const ISSUER: &str = "Ampere";
const STEP_SECS: u64 = 30;
const DIGITS: usize = 6;
/// Bytes of a secret: 160 bits, as RFC 4226 recommends for SHA-1.
const SECRET_BYTES: usize = 20;

/// A secret waiting to be switched on: what the authenticator app scans.
#[derive(Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// Base32, for typing into an app by hand.
    pub secret: String,
    /// `otpauth://totp/Ampere:<username>?secret=...&issuer=Ampere`.
    pub url: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment(..)")
    }
}

struct Stored {
    secret: Vec<u8>,
    enabled: bool,
    last_step: i64,
}

impl Accounts {
    /// Whether signing in to `user` takes a code.
    pub async fn two_factor_on(&self, user_id: &str) -> Result<bool> {
        Ok(self
            .stored_factor(user_id)
            .await?
            .is_some_and(|s| s.enabled))
    }

    /// A new secret for `user`, off until [`Accounts::enable_two_factor`]
    /// gets a code of it; it replaces a secret that was never switched on.
    /// Refused while the second factor is on.
    pub async fn start_two_factor(&self, user: &User) -> Result<Enrolment> {
        if self.two_factor_on(&user.id.0).await? {
            return Err(Error::Conflict(
                "two-factor authentication is on already".into(),
            ));
        }
        let secret: [u8; SECRET_BYTES] = rand::random();
        let totp = totp(&secret, &user.username)?;
        let written = self
            .db
            .execute(
                sqlx::query(
                    "INSERT INTO two_factor (user_id, secret, enabled, last_step, created_at) \
                     VALUES ($1, $2, 0, 0, $3) \
                     ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, \
                     last_step = 0, created_at = excluded.created_at \
                     WHERE two_factor.enabled = 0",
                )
                .bind(user.id.0.clone())
                .bind(hex::encode(secret))
                .bind(now_ms()),
            )
            .await?;
        if written == 0 {
            return Err(Error::Conflict(
                "two-factor authentication is on already".into(),
            ));
        }
        Ok(Enrolment {
            secret: totp.get_secret_base32(),
            url: totp.get_url(),
        })
    }

    /// Switches the second factor on with a first code of the waiting secret.
    pub async fn enable_two_factor(&self, user: &User, code: &str, seen: &Seen) -> Result<()> {
        let result = self.switch_two_factor(user, code, true).await;
        self.record_factor_change(user, "enable", seen, &result)
            .await;
        result
    }

    /// Switches the second factor off, with a current code.
    pub async fn disable_two_factor(&self, user: &User, code: &str, seen: &Seen) -> Result<()> {
        let result = self.switch_two_factor(user, code, false).await;
        self.record_factor_change(user, "disable", seen, &result)
            .await;
        result
    }

    /// Checks a code of an account whose second factor is on (refused when it
    /// is off: there is nothing to verify).
    pub async fn verify_two_factor(&self, user: &User, code: &str, seen: &Seen) -> Result<()> {
        let result = match self.stored_factor(&user.id.0).await? {
            Some(stored) if stored.enabled => {
                self.accept_code(user, &stored, code, Scope::OtpAccount)
                    .await
            }
            _ => Err(Error::Conflict(
                "two-factor authentication is not on for this account".into(),
            )),
        };
        self.record_factor_change(user, "verify", seen, &result)
            .await;
        result
    }

    /// The second factor of a grave step (signing in with a password, changing
    /// it): nothing when the account has none on, else a correct code, used
    /// once. A missing code is [`Error::CodeRequired`].
    pub async fn second_factor(&self, user: &User, code: Option<&str>) -> Result<()> {
        self.factor_counted(user, code, Scope::OtpAccount).await
    }

    /// [`Accounts::second_factor`] of a sign-in whose password proved right,
    /// its wrong codes counted apart from those of signed-in callers.
    pub(super) async fn sign_in_factor(&self, user: &User, code: Option<&str>) -> Result<()> {
        self.factor_counted(user, code, Scope::OtpSignIn).await
    }

    async fn factor_counted(&self, user: &User, code: Option<&str>, scope: Scope) -> Result<()> {
        match self.stored_factor(&user.id.0).await? {
            Some(stored) if stored.enabled => match code.filter(|c| !c.is_empty()) {
                Some(code) => self.accept_code(user, &stored, code, scope).await,
                None => Err(Error::CodeRequired),
            },
            _ => Ok(()),
        }
    }

    async fn switch_two_factor(&self, user: &User, code: &str, on: bool) -> Result<()> {
        let stored = self.stored_factor(&user.id.0).await?;
        let stored = match stored {
            Some(stored) if stored.enabled != on => stored,
            Some(_) if on => {
                return Err(Error::Conflict(
                    "two-factor authentication is on already".into(),
                ))
            }
            None if on => {
                return Err(Error::Conflict(
                    "generate a QR code (a secret) before enabling two-factor authentication"
                        .into(),
                ))
            }
            _ => {
                return Err(Error::Conflict(
                    "two-factor authentication is not on for this account".into(),
                ))
            }
        };
        self.accept_code(user, &stored, code, Scope::OtpAccount)
            .await?;
        let changed = if on {
            self.db
                .execute(
                    // Only the secret the code was of: a new QR code made
                    // meanwhile leaves it off.
                    sqlx::query(
                        "UPDATE two_factor SET enabled = 1 \
                         WHERE user_id = $1 AND secret = $2 AND enabled = 0",
                    )
                    .bind(user.id.0.clone())
                    .bind(hex::encode(&stored.secret)),
                )
                .await?
        } else {
            self.db
                .execute(
                    sqlx::query("DELETE FROM two_factor WHERE user_id = $1 AND enabled = 1")
                        .bind(user.id.0.clone()),
                )
                .await?
        };
        if changed == 0 {
            // A twin request switched it meanwhile.
            return Err(Error::Conflict(
                "two-factor authentication changed meanwhile; reload".into(),
            ));
        }
        Ok(())
    }

    /// Accepts `code` if it is of the current step (or one either side) and of
    /// a step after the last accepted one; wrong codes count against the
    /// account, so six digits cannot be tried through.
    async fn accept_code(
        &self,
        user: &User,
        stored: &Stored,
        code: &str,
        scope: Scope,
    ) -> Result<()> {
        let keys = [(scope, user.id.0.as_str())];
        self.throttle.begin(&keys).await?;
        let wrong = || Error::invalid("otp_code", "the code is not correct");
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(wrong());
        }
        let totp = totp(&stored.secret, &user.username)?;
        let now_step = now_ms() / 1000 / STEP_SECS as i64;
        let step = (now_step - 1..=now_step + 1).find(|step| {
            let at = u64::try_from(*step).unwrap_or(0) * STEP_SECS;
            same_secret(totp.generate(at).as_bytes(), code.as_bytes())
        });
        let Some(step) = step else {
            return Err(wrong());
        };
        if step <= stored.last_step {
            return Err(Error::invalid(
                "otp_code",
                "this code was used already; wait for the next one",
            ));
        }
        // Two requests with one code: only one moves the step.
        let taken = self
            .db
            .execute(
                sqlx::query(
                    "UPDATE two_factor SET last_step = $1 WHERE user_id = $2 AND last_step < $1",
                )
                .bind(step)
                .bind(user.id.0.clone()),
            )
            .await?;
        if taken == 0 {
            return Err(Error::invalid(
                "otp_code",
                "this code was used already; wait for the next one",
            ));
        }
        self.throttle.succeeded(&keys).await;
        Ok(())
    }

    async fn stored_factor(&self, user_id: &str) -> Result<Option<Stored>> {
        let row =
            sqlx::query("SELECT secret, enabled, last_step FROM two_factor WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(self.db.pool())
                .await?;
        row.map(|r| {
            Ok(Stored {
                secret: hex::decode(r.try_get::<String, _>("secret")?)
                    .map_err(|e| Error::Internal(format!("stored secret: {e}")))?,
                enabled: r.try_get::<i64, _>("enabled")? != 0,
                last_step: r.try_get("last_step")?,
            })
        })
        .transpose()
    }

    async fn record_factor_change(
        &self,
        user: &User,
        action: &str,
        seen: &Seen,
        result: &Result<()>,
    ) {
        self.record(
            &user.id.0,
            Topic::Otp,
            action,
            Outcome::of(result),
            seen,
            serde_json::json!({}),
        )
        .await
    }
}

/// The generator of `secret` for the account `username` (a colon would end
/// the label early, so none is kept).
fn totp(secret: &[u8], username: &str) -> Result<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECS,
        secret.to_vec(),
        Some(ISSUER.to_string()),
        username.replace(':', "_"),
    )
    .map_err(|e| Error::Internal(format!("totp: {e}")))
}
