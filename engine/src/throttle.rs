//! Throttles: how many attempts one subject (a username, an account, a client
//! address, everyone) may make of one kind ("scope") within a sliding window.
//! The counts live in the database (table `throttles`), so every server process
//! on it counts the same attempts; checking and counting is one write that locks
//! the subjects' rows, so two processes can never both take the last free attempt.
//!
//! It never hashes a password, and callers ask it before anything that does: a
//! refused attempt costs one small write and no argon2 work.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{AnyConnection, Row};

use crate::{now_ms, Backend, Database, Error, Result, Settings};

/// How many attempts one subject may make within a sliding window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub limit: u32,
    pub window: Duration,
}

impl Rule {
    pub const fn new(limit: u32, window: Duration) -> Self {
        Rule { limit, window }
    }
}

/// The limits of failed logins (and failed password re-checks).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures one username (or one account's re-checks) may see within `window`.
    pub per_username: u32,
    /// Failures one client address may cause within `window`, over all usernames.
    pub per_client: u32,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_username: 5,
            per_client: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// A limit per client address and one over all clients together.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    pub per_client: Rule,
    pub overall: Rule,
}

impl ClientLimits {
    /// Sign-ups: 5 per address per hour, 60 a minute in all.
    pub const SIGN_UP: ClientLimits = ClientLimits {
        per_client: Rule::new(5, Duration::from_secs(60 * 60)),
        overall: Rule::new(60, Duration::from_secs(60)),
    };
    /// Demo funding of new accounts: 3 per address a day, 100 an hour in all
    /// (each costs the hub a channel back of the demo channel's size).
    pub const DEMO_FUNDING: ClientLimits = ClientLimits {
        per_client: Rule::new(3, Duration::from_secs(24 * 60 * 60)),
        overall: Rule::new(100, Duration::from_secs(60 * 60)),
    };
}

/// Password reset requests one client address may make in an hour.
const RESET_PER_CLIENT: Rule = Rule::new(10, Duration::from_secs(60 * 60));
/// Passwords one client address may have judged a minute (the identity
/// API's `password/validate`).
const STRENGTH_PER_CLIENT: Rule = Rule::new(30, Duration::from_secs(60));
/// Password reset requests naming one e-mail address in an hour.
const RESET_PER_ADDRESS: Rule = Rule::new(3, Duration::from_secs(60 * 60));
/// Phone codes one account may have sent in an hour.
const PHONE_CODES_PER_ACCOUNT: Rule = Rule::new(10, Duration::from_secs(60 * 60));
/// Phone codes sent to one number in an hour, whoever asks: nobody floods a
/// phone.
const PHONE_CODES_PER_NUMBER: Rule = Rule::new(3, Duration::from_secs(60 * 60));

/// A kind of attempt: each scope counts apart from the others, under its own rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Logins naming one username (lower-cased).
    LoginUsername,
    /// Logins and password re-checks from one client address.
    LoginClient,
    /// Password re-checks of one signed-in account (the subject is its id),
    /// counted apart from logins so nobody can lock a signed-in user out of
    /// paying by failing logins under their name.
    RecheckAccount,
    /// Sign-ups from one client address.
    SignUpClient,
    /// Sign-ups from everyone (the subject is [`EVERYONE`]).
    SignUpOverall,
    /// Demo fundings of accounts signed up from one client address.
    DemoFundingClient,
    /// Demo fundings of all accounts (the subject is [`EVERYONE`]).
    DemoFundingOverall,
    /// Password reset requests from one client address.
    ResetClient,
    /// Password reset requests naming one e-mail address (lower-cased),
    /// whether or not an account has it: nobody floods an inbox.
    ResetAddress,
    /// Two-factor codes tried for one account (the subject is its id) by a
    /// signed-in caller (enabling, verifying, managing keys, paying).
    OtpAccount,
    /// Two-factor codes tried while signing in to one account, once its
    /// password proved right: counted apart, so a stolen session failing
    /// codes cannot keep the owner from signing in.
    OtpSignIn,
    /// Password strength judged for one client address.
    StrengthClient,
    /// Phone codes sent for one account.
    PhoneCodeAccount,
    /// Phone codes sent to one number (E.164 digits).
    PhoneCodeNumber,
    /// Phone codes tried for one account (wrong ones count; a success
    /// clears them).
    PhoneVerifyAccount,
}

/// The subject of the scopes that count everyone together.
pub const EVERYONE: &str = "";

impl Scope {
    /// Its name in the database. Never rename one: its counts would reset.
    fn name(self) -> &'static str {
        match self {
            Scope::LoginUsername => "login-username",
            Scope::LoginClient => "login-client",
            Scope::RecheckAccount => "recheck-account",
            Scope::SignUpClient => "sign-up-client",
            Scope::SignUpOverall => "sign-up-overall",
            Scope::DemoFundingClient => "demo-funding-client",
            Scope::DemoFundingOverall => "demo-funding-overall",
            Scope::ResetClient => "reset-client",
            Scope::ResetAddress => "reset-address",
            Scope::OtpAccount => "otp-account",
            Scope::OtpSignIn => "otp-sign-in",
            Scope::StrengthClient => "strength-client",
            Scope::PhoneCodeAccount => "phone-code-account",
            Scope::PhoneCodeNumber => "phone-code-number",
            Scope::PhoneVerifyAccount => "phone-verify-account",
        }
    }

    /// Whether a success forgets all of the subject's failures (the username
    /// proved its password) rather than only the attempt that succeeded (one
    /// address guessing many accounts stays counted).
    fn cleared_by_success(self) -> bool {
        matches!(
            self,
            Scope::LoginUsername
                | Scope::RecheckAccount
                | Scope::OtpAccount
                | Scope::OtpSignIn
                | Scope::PhoneVerifyAccount
        )
    }
}

/// One subject of one scope, as the callers name it.
pub type Key<'a> = (Scope, &'a str);

/// Longest subject kept: usernames are at most 32 characters and addresses
/// shorter still; anything longer is cut (which can only count more, not less).
const MAX_SUBJECT_BYTES: usize = 128;

/// Expired rows are swept at most this often by each process.
const SWEEP_EVERY_MS: i64 = 1000;

#[derive(Clone)]
pub struct Throttle {
    db: Database,
    login: Limits,
    sign_up: ClientLimits,
    demo_funding: ClientLimits,
    /// When this process last swept, in Unix milliseconds.
    last_sweep: Arc<AtomicI64>,
}

/// What to forget of a subject's attempts.
#[derive(Debug, Clone, Copy)]
enum Forget {
    All,
    Latest,
}

impl Throttle {
    pub fn new(db: Database, settings: &Settings) -> Self {
        Throttle {
            db,
            login: settings.throttle,
            sign_up: settings.sign_up,
            demo_funding: settings.demo_funding,
            last_sweep: Arc::new(AtomicI64::new(0)),
        }
    }

    pub fn rule(&self, scope: Scope) -> Rule {
        let login = |limit| Rule::new(limit, self.login.window);
        match scope {
            Scope::LoginUsername
            | Scope::RecheckAccount
            | Scope::OtpAccount
            | Scope::OtpSignIn
            | Scope::PhoneVerifyAccount => login(self.login.per_username),
            Scope::PhoneCodeAccount => PHONE_CODES_PER_ACCOUNT,
            Scope::PhoneCodeNumber => PHONE_CODES_PER_NUMBER,
            Scope::StrengthClient => STRENGTH_PER_CLIENT,
            Scope::LoginClient => login(self.login.per_client),
            Scope::SignUpClient => self.sign_up.per_client,
            Scope::SignUpOverall => self.sign_up.overall,
            Scope::DemoFundingClient => self.demo_funding.per_client,
            Scope::DemoFundingOverall => self.demo_funding.overall,
            Scope::ResetClient => RESET_PER_CLIENT,
            Scope::ResetAddress => RESET_PER_ADDRESS,
        }
    }

    /// Starts an attempt: refuses with `Throttled` (carrying how long to wait for
    /// the oldest attempt that still counts to leave its window) when any of
    /// `keys` has used up its attempts, else counts the attempt under every key.
    /// Checking and counting are one write: parallel attempts, from this process
    /// or another, are each counted before any of them goes on, and an attempt
    /// whose caller goes away mid-way still counts. A refused attempt counts
    /// nowhere.
    pub async fn begin(&self, keys: &[Key<'_>]) -> Result<()> {
        self.sweep_now_and_then().await;
        let now = now_ms();
        let keys = self.owned(keys);
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    let mut refused: Option<Duration> = None;
                    for (scope, subject, rule) in &keys {
                        let mut attempts = lock(conn, *scope, subject).await?;
                        attempts.retain(|at| now - at < window_ms(*rule));
                        match retry_after(&attempts, *rule, now) {
                            Some(wait) => refused = refused.max(Some(wait)),
                            None => {
                                attempts.push(now);
                                attempts.sort_unstable();
                                store(conn, *scope, subject, &attempts, *rule).await?;
                            }
                        }
                    }
                    // The counts made above are rolled back with the refusal.
                    match refused {
                        Some(retry_after) => Err(Error::Throttled { retry_after }),
                        None => Ok(()),
                    }
                })
            })
            .await
    }

    /// The attempt begun under `keys` succeeded: subjects that proved themselves
    /// (a username, an account) lose all their failures; the others (a client
    /// address) lose only this attempt.
    pub async fn succeeded(&self, keys: &[Key<'_>]) {
        self.forget(keys, |scope| {
            if scope.cleared_by_success() {
                Forget::All
            } else {
                Forget::Latest
            }
        })
        .await
    }

    /// The attempt begun under `keys` never reached what it was counted for (the
    /// server was too busy to hash): it no longer counts.
    pub async fn take_back(&self, keys: &[Key<'_>]) {
        self.forget(keys, |_| Forget::Latest).await
    }

    /// Deletes the rows whose attempts have all left their window; answers how
    /// many. Runs by itself at most once a second per process, on `begin`.
    pub async fn sweep(&self) -> Result<u64> {
        let sql = match self.db.backend() {
            Backend::Sqlite => "DELETE FROM throttles WHERE expires_at <= $1",
            // Rows another process holds are left to the next sweep: a sweep
            // never waits, so it can never close a deadlock.
            Backend::Postgres => {
                "DELETE FROM throttles WHERE (scope, subject) IN (SELECT scope, subject \
                 FROM throttles WHERE expires_at <= $1 FOR UPDATE SKIP LOCKED)"
            }
        };
        self.db.execute(sqlx::query(sql).bind(now_ms())).await
    }

    async fn sweep_now_and_then(&self) {
        let now = now_ms();
        let last = self.last_sweep.load(Ordering::Relaxed);
        let due = now - last >= SWEEP_EVERY_MS
            && self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if due {
            // Its own write, before the count: a sweep holding rows while the
            // count waits for others could deadlock with another process.
            if let Err(err) = self.sweep().await {
                tracing::warn!(error = %err, "sweeping expired throttle counts failed");
            }
        }
    }

    async fn forget(&self, keys: &[Key<'_>], what: impl Fn(Scope) -> Forget) {
        let keys: Vec<_> = self
            .owned(keys)
            .into_iter()
            .map(|(scope, subject, rule)| (scope, subject, rule, what(scope)))
            .collect();
        let forgotten = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    for (scope, subject, rule, what) in &keys {
                        let mut attempts = lock(conn, *scope, subject).await?;
                        match what {
                            Forget::All => attempts.clear(),
                            Forget::Latest => {
                                attempts.pop();
                            }
                        }
                        store(conn, *scope, subject, &attempts, *rule).await?;
                    }
                    Ok(())
                })
            })
            .await;
        // The attempt itself went well; only its counts stay a little longer.
        if let Err(err) = forgotten {
            tracing::warn!(error = %err, "forgetting throttled attempts failed");
        }
    }

    /// The keys as a write takes them, in the one order every process locks rows
    /// in (so two writes over the same rows cannot deadlock), without repeats.
    fn owned(&self, keys: &[Key<'_>]) -> Vec<(Scope, String, Rule)> {
        let mut owned: Vec<_> = keys
            .iter()
            .map(|(scope, subject)| (*scope, bounded(subject), self.rule(*scope)))
            .collect();
        owned.sort_by(|a, b| (a.0.name(), &a.1).cmp(&(b.0.name(), &b.1)));
        owned.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        owned
    }
}

fn bounded(subject: &str) -> String {
    crate::cut(subject, MAX_SUBJECT_BYTES).to_string()
}

fn window_ms(rule: Rule) -> i64 {
    i64::try_from(rule.window.as_millis()).unwrap_or(i64::MAX)
}

/// How long until the oldest attempt that still counts leaves the window, when
/// `rule.limit` attempts are in it (`attempts` are the window's, oldest first).
fn retry_after(attempts: &[i64], rule: Rule, now: i64) -> Option<Duration> {
    let limit = rule.limit as usize;
    if attempts.len() < limit {
        return None;
    }
    let Some(oldest) = attempts.get(attempts.len() - limit) else {
        // A limit of 0 allows nothing: wait a whole window.
        return Some(rule.window);
    };
    let left = (oldest + window_ms(rule) - now).max(1);
    Some(Duration::from_millis(left as u64))
}

/// Reads the subject's attempts and locks its row until the write commits (an
/// upsert: PostgreSQL makes a second process wait here, then see the first's
/// count; SQLite has one writer at a time anyway). A new subject gets a row.
async fn lock(conn: &mut AnyConnection, scope: Scope, subject: &str) -> Result<Vec<i64>> {
    let row = sqlx::query(
        "INSERT INTO throttles (scope, subject, attempts, expires_at) VALUES ($1, $2, '', 0) \
         ON CONFLICT (scope, subject) DO UPDATE SET attempts = throttles.attempts \
         RETURNING attempts",
    )
    .bind(scope.name())
    .bind(subject)
    .fetch_one(&mut *conn)
    .await?;
    let text: String = row.try_get("attempts")?;
    Ok(text
        .split_ascii_whitespace()
        .filter_map(|at| at.parse().ok())
        .collect())
}

/// Writes the subject's attempts back (oldest first); a subject with none left
/// loses its row.
async fn store(
    conn: &mut AnyConnection,
    scope: Scope,
    subject: &str,
    attempts: &[i64],
    rule: Rule,
) -> Result<()> {
    let Some(newest) = attempts.last() else {
        sqlx::query("DELETE FROM throttles WHERE scope = $1 AND subject = $2")
            .bind(scope.name())
            .bind(subject)
            .execute(&mut *conn)
            .await?;
        return Ok(());
    };
    let text = attempts
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    sqlx::query(
        "UPDATE throttles SET attempts = $1, expires_at = $2 WHERE scope = $3 AND subject = $4",
    )
    .bind(text)
    .bind(newest.saturating_add(window_ms(rule)))
    .bind(scope.name())
    .bind(subject)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_runs_from_the_oldest_attempt_that_still_counts() {
        let rule = Rule::new(2, Duration::from_secs(60));
        assert_eq!(retry_after(&[1_000], rule, 5_000), None);
        // Three in the window with a limit of two: the second oldest decides.
        assert_eq!(
            retry_after(&[1_000, 2_000, 3_000], rule, 5_000),
            Some(Duration::from_millis(57_000))
        );
        assert_eq!(
            retry_after(&[], Rule::new(0, Duration::from_secs(9)), 5_000),
            Some(Duration::from_secs(9))
        );
    }

    #[test]
    fn long_subjects_are_cut_on_a_character_boundary() {
        let long = "é".repeat(100);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_SUBJECT_BYTES);
        assert!(long.starts_with(&cut));
        assert_eq!(bounded("1.2.3.4"), "1.2.3.4");
    }
}
