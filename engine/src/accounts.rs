//! Accounts: who may sign in and with what. Owns the username and password rules
//! and argon2id hashing (bounded so a login or sign-up storm cannot starve the
//! server, and asked only after the throttle). It never logs or returns a
//! password or a hash.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::Serialize;
use sqlx::Row;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::on_account_violation;
use crate::events::{Bus, EventKind, Topic};
use crate::throttle::{Key, Scope, Throttle, EVERYONE};
use crate::{now_ms, Database, Error, Result, Seen};

pub mod activity;
pub mod data_storage;
pub mod documents;
pub mod email_confirmation;
pub mod labels;
pub mod phones;
pub mod profiles;
pub mod provider_flows;
mod recovery;
pub mod service_accounts;
pub mod sessions;
pub mod two_factor;
pub mod user_data;
mod withdrawals;
pub use recovery::{RESET_LINK_LIFETIME, RESET_PAGE};

/// A user's id: a random UUID, stable for the account's life.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct UserId(pub String);

/// A valid username: 3 to 32 letters, digits, `-`, `_` or `.`. Unique ignoring case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self> {
        let name = raw.trim();
        let len = name.chars().count();
        if !(3..=32).contains(&len) {
            return Err(Error::invalid(
                "username",
                "username must be 3 to 32 characters long",
            ));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(Error::invalid(
                "username",
                "username may contain only letters, digits, '-', '_' and '.'",
            ));
        }
        Ok(Username(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form the uniqueness constraint compares.
    fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// Checks a new password: the LN-Markets rule (8 to 64 characters with a
/// digit, a lower case and an upper case letter), and strong enough that
/// `zxcvbn` scores it 3 or more out of 4, `known` (the account's username and
/// e-mail address) counting as easy to guess.
pub fn check_password_rule(password: &str, known: &[&str]) -> Result<()> {
    let len = password.chars().count();
    let ok = (8..=64).contains(&len)
        && password.chars().any(|c| c.is_ascii_digit())
        && password.chars().any(|c| c.is_lowercase())
        && password.chars().any(|c| c.is_uppercase());
    if !ok {
        return Err(Error::invalid(
            "password",
            "password must be 8 to 64 characters with a digit, a lower case and an upper case letter",
        ));
    }
    let strength = password_strength(password, known);
    if strength.score < MIN_PASSWORD_SCORE {
        let mut message = String::from("password is too easy to guess");
        if let Some(warning) = &strength.warning {
            message = format!("{message}: {warning}");
        }
        if let Some(suggestion) = strength.suggestions.first() {
            message = format!("{message} ({suggestion})");
        }
        return Err(Error::invalid("password", message));
    }
    Ok(())
}

/// The least `zxcvbn` score (0 to 4) a new password must have.
pub const MIN_PASSWORD_SCORE: u8 = 3;

/// How hard a password is to guess, as `zxcvbn` estimates it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Strength {
    /// 0 (guessed at once) to 4 (very hard).
    pub score: u8,
    /// log2 of the guesses needed: the password's entropy in bits.
    pub entropy: u32,
    pub warning: Option<String>,
    pub suggestions: Vec<String>,
}

/// The strength of `password` (at most its first 64 characters: `zxcvbn`
/// slows down on long inputs, and longer passwords are refused anyway).
pub fn password_strength(password: &str, known: &[&str]) -> Strength {
    let cut: String = password.chars().take(64).collect();
    let estimate = zxcvbn::zxcvbn(&cut, known);
    let feedback = estimate.feedback();
    Strength {
        score: u8::from(estimate.score()),
        entropy: (estimate.guesses_log10() * std::f64::consts::LOG2_10).round() as u32,
        warning: feedback.and_then(|f| f.warning()).map(|w| w.to_string()),
        suggestions: feedback
            .map(|f| f.suggestions().iter().map(|s| s.to_string()).collect())
            .unwrap_or_default(),
    }
}

/// An argon2id PHC string. Deliberately neither `Serialize` nor `Display`.
struct PasswordHash(String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// A signed-up user as the APIs show it.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub is_admin: bool,
    /// Grows with every password change; credentials issued under an older
    /// version no longer authenticate.
    pub auth_version: i64,
    pub created_at_ms: i64,
    /// The unit the wallet shows and takes amounts in.
    pub denomination: crate::Denomination,
    /// Payments made with the session cookie must repeat the password.
    pub recheck_password: bool,
    /// How the account was made: `credentials` (a password), `lnurl` or
    /// `joule` (a wallet's key).
    pub account_type: String,
}

/// Work inside the sign-up's transaction, given the new account's id.
pub type Within = Box<
    dyn for<'c> FnOnce(
            &'c mut sqlx::AnyConnection,
            &'c str,
        ) -> futures_util::future::BoxFuture<'c, Result<()>>
        + Send,
>;

/// Inserts an account and its node. An empty `password_hash` is an account
/// no password signs in to.
async fn insert_user(
    conn: &mut sqlx::AnyConnection,
    user: &User,
    username_key: &str,
    password_hash: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, username, username_key, email, password_hash, created_at, \
         recheck_password, account_type, is_admin) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&user.id.0)
    .bind(&user.username)
    .bind(username_key)
    .bind(&user.email)
    .bind(password_hash)
    .bind(user.created_at_ms)
    .bind(i64::from(user.recheck_password))
    .bind(&user.account_type)
    .bind(i64::from(user.is_admin))
    .execute(&mut *conn)
    .await
    .map_err(|e| on_account_violation(e, Error::UsernameTaken))?;
    crate::simnet::create_account_node(conn, &user.id.0, &user.username).await?;
    Ok(())
}

/// Longest input the engine accepts for free text fields such as the e-mail.
const MAX_EMAIL_LEN: usize = 254;

/// Longest display name, in characters.
const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// An e-mail address as typed: `None` for none (empty), else one that has the
/// shape of an address (`local@domain.tld`, no spaces or control characters).
/// Whether it reaches anyone only a message sent to it can tell.
pub(crate) fn parse_email(raw: &str) -> Result<Option<String>> {
    let email = raw.trim();
    if email.is_empty() {
        return Ok(None);
    }
    let shaped = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
    });
    if email.len() > MAX_EMAIL_LEN
        || !shaped
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid("email", "email address is not valid"));
    }
    Ok(Some(email.to_string()))
}

/// A display name as typed: `None` for none (empty), else at most
/// [`MAX_DISPLAY_NAME_CHARS`] characters without control characters.
fn parse_display_name(raw: &str) -> Result<Option<String>> {
    let name = raw.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "display_name",
            format!("display_name is at most {MAX_DISPLAY_NAME_CHARS} characters, without control characters"),
        ));
    }
    Ok(Some(name.to_string()))
}

/// What the operator decides about accounts.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Whether new accounts may be made, every way (a password, a wallet's
    /// key, the desk's paid registration).
    pub allow_new_accounts: bool,
    /// The administrators: usernames (any case) or account ids.
    pub admin_users: Vec<String>,
    /// The legacy sign-in with an account id alone (`POST /api/v1/auth/usr`).
    pub user_id_login: bool,
    /// How much an account with two-factor codes on may withdraw a day
    /// without a code (see `withdrawals`).
    pub code_free_withdrawals: crate::Msat,
    /// Where uploaded documents are kept (`None`: uploads are off).
    pub documents: Option<std::path::PathBuf>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allow_new_accounts: true,
            admin_users: Vec::new(),
            user_id_login: false,
            code_free_withdrawals: crate::Msat::from_sat(100_000),
            documents: None,
        }
    }
}

impl Policy {
    fn is_admin(&self, username_key: &str, id: &str) -> bool {
        self.admin_users.iter().any(|admin| {
            let admin = admin.trim();
            admin.eq_ignore_ascii_case(username_key) || admin.eq_ignore_ascii_case(id)
        })
    }

    fn new_accounts(&self) -> Result<()> {
        match self.allow_new_accounts {
            true => Ok(()),
            false => Err(Error::Forbidden("this server takes no new accounts".into())),
        }
    }
}

/// How long an authenticated account is remembered between requests. Changes
/// (a new password, other settings) invalidate it at once through the bus, in
/// every process; the lifetime only bounds what a lost notification leaves.
const CURRENT_USER_TTL: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Clone)]
pub struct Accounts {
    db: Database,
    throttle: Throttle,
    /// Accounts by id, so that authenticating a request rarely reads the database.
    /// Invalidated by the bus when the account changes, in every process.
    current: moka::sync::Cache<String, User>,
    /// Session handles known to stand (see `sessions`), for as briefly; the
    /// bus clears one when its session ends, in every process.
    standing: moka::sync::Cache<String, ()>,
    /// One permit per core: argon2 work waits here instead of piling up threads.
    hashing: Arc<Semaphore>,
    permits: u32,
    /// Longest a request waits for a permit before it is answered `Busy`.
    hashing_wait: Duration,
    /// Argon2 jobs run so far (hashes and verifications).
    hashes_run: Arc<AtomicU64>,
    bus: Bus,
    policy: Arc<Policy>,
}

/// Every hashing permit, held: see [`Accounts::hold_hashing`].
pub struct HashingHold(#[allow(dead_code)] OwnedSemaphorePermit);

impl Accounts {
    pub fn new(
        db: Database,
        throttle: Throttle,
        hashing_wait: Duration,
        bus: Bus,
        policy: Policy,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let current: moka::sync::Cache<String, User> = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(CURRENT_USER_TTL)
            .build();
        let standing: moka::sync::Cache<String, ()> = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(CURRENT_USER_TTL)
            .build();
        let (cache, handles) = (current.clone(), standing.clone());
        bus.on_control(Box::new(move |event| {
            match &event.kind {
                EventKind::SessionEnded { session } => handles.invalidate(session),
                EventKind::Resync => handles.invalidate_all(),
                _ => {}
            }
            match (&event.topic, &event.kind) {
                (Topic::Account(id), _) => cache.invalidate(id),
                (_, EventKind::Resync) => cache.invalidate_all(),
                _ => {}
            }
        }));
        Accounts {
            db,
            throttle,
            current,
            standing,
            hashing: Arc::new(Semaphore::new(cores)),
            permits: u32::try_from(cores).unwrap_or(u32::MAX),
            hashing_wait,
            hashes_run: Arc::new(AtomicU64::new(0)),
            bus,
            policy: Arc::new(policy),
        }
    }

    /// Marks the operator's administrators as such and everyone else not (at
    /// start: the list is the operator's, not the database's).
    pub async fn apply_admins(&self) -> Result<()> {
        // Usernames are kept lower case in `username_key`; ids are made lower case.
        let admins: Vec<String> = self
            .policy
            .admin_users
            .iter()
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        let listed = (1..=admins.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let admin = match admins.is_empty() {
            true => "0".to_string(),
            false => format!(
                "CASE WHEN username_key IN ({listed}) OR id IN ({listed}) THEN 1 ELSE 0 END"
            ),
        };
        let sql = format!("UPDATE users SET is_admin = {admin} WHERE is_admin <> {admin}");
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    let query = admins
                        .iter()
                        .fold(sqlx::query(&sql), |query, admin| query.bind(admin));
                    query.execute(&mut *conn).await?;
                    Ok(())
                })
            })
            .await
    }

    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// How many argon2 jobs (hashes and verifications) this process has run:
    /// shows that a refusal cost none.
    pub fn hashes_run(&self) -> u64 {
        self.hashes_run.load(Ordering::Relaxed)
    }

    /// Takes every hashing permit until the returned hold is dropped, waiting for
    /// jobs in progress: what a storm of hashing looks like to other requests.
    pub async fn hold_hashing(&self) -> HashingHold {
        let permits = self
            .hashing
            .clone()
            .acquire_many_owned(self.permits)
            .await
            .expect("the hashing semaphore is never closed");
        HashingHold(permits)
    }

    /// Creates an account and its Lightning node, signed up from the client
    /// address `client`. In this order, so that only a sign-up that can succeed
    /// costs argon2 work: the name and password rules, a refusal of a taken name,
    /// the sign-up limits (per client and overall; over them, `Throttled`), then
    /// the hash. The database's unique index still decides a race between two
    /// sign-ups of the same name: exactly one wins, the other gets
    /// `UsernameTaken`. (Call `Engine::register`, which adds demo funding.)
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        email: Option<&str>,
        client: &str,
    ) -> Result<User> {
        let email = match email {
            Some(raw) => parse_email(raw)?,
            None => None,
        };
        self.sign_up(username, password, email, client, None).await
    }

    /// [`Accounts::register`], running `within` inside the
    /// sign-up's transaction (given the new account's id): the account exists
    /// only if `within` succeeds too.
    pub async fn register_with(
        &self,
        username: &str,
        password: &str,
        email: Option<&str>,
        client: &str,
        within: Within,
    ) -> Result<User> {
        let email = match email {
            Some(raw) => parse_email(raw)?,
            None => None,
        };
        self.sign_up(username, password, email, client, Some(within))
            .await
    }

    async fn sign_up(
        &self,
        username: &str,
        password: &str,
        email: Option<String>,
        client: &str,
        within: Option<Within>,
    ) -> Result<User> {
        self.policy.new_accounts()?;
        let username = Username::parse(username)?;
        self.check_new_password(
            password,
            &[username.as_str(), email.as_deref().unwrap_or_default()],
        )
        .await?;
        if self.username_taken(&username.key()).await? {
            return Err(Error::UsernameTaken);
        }
        let keys = [
            (Scope::SignUpClient, client),
            (Scope::SignUpOverall, EVERYONE),
        ];
        self.throttle.begin(&keys).await?;
        let hash = self.counted_work(&keys, self.hash(password)).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let user = User {
            is_admin: self.policy.is_admin(&username.key(), &id),
            id: UserId(id),
            username: username.as_str().to_string(),
            email,
            display_name: None,
            auth_version: 0,
            created_at_ms: now_ms(),
            denomination: crate::Denomination::Sat,
            recheck_password: true,
            account_type: "credentials".into(),
        };
        let (new, key) = (user.clone(), username.key());
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    insert_user(conn, &new, &key, &hash.0).await?;
                    if let Some(within) = within {
                        within(conn, &new.id.0).await?;
                    }
                    Ok(())
                })
            })
            .await?;
        Ok(user)
    }

    /// The account keyed by a wallet's public key `pubkey` (hex), made on its
    /// first sign-in: named after `alias` when that is a free username, else
    /// after the key. It has no password (none signs it in) and pays without
    /// repeating one. A new keyed account counts against the sign-up limits.
    pub async fn sign_in_with_key(
        &self,
        pubkey: &str,
        kind: &'static str,
        alias: Option<&str>,
        client: &Seen,
    ) -> Result<User> {
        let result = self.keyed_account(pubkey, kind, alias, client).await;
        if let Ok(user) = &result {
            self.record_sign_in(&user.id.0, kind, client, &result).await;
        }
        result
    }

    async fn keyed_account(
        &self,
        pubkey: &str,
        kind: &'static str,
        alias: Option<&str>,
        client: &Seen,
    ) -> Result<User> {
        if let Some(user) = self.keyed(pubkey).await? {
            return Ok(user);
        }
        self.policy.new_accounts()?;
        let keys = [
            (Scope::SignUpClient, client.address.as_str()),
            (Scope::SignUpOverall, EVERYONE),
        ];
        self.throttle.begin(&keys).await?;
        let mut names: Vec<String> = alias
            .and_then(|a| Username::parse(a).ok())
            .map(|u| u.as_str().to_string())
            .into_iter()
            .collect();
        let prefix = match kind {
            "lnurl" | "joule" => "ln",
            other => other,
        };
        // A provider's key reads `<provider>:<subject>`: names come from the subject.
        let tail: String = pubkey
            .rsplit(':')
            .next()
            .unwrap_or(pubkey)
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        names.extend([10, 16, 24].map(|n| format!("{prefix}-{}", &tail[..n.min(tail.len())])));
        // Names anyone may take first: random ones last, so squatting the
        // key's names cannot keep its owner out.
        names.extend((0..3).map(|_| format!("{prefix}-{}", crate::random_hex(8))));
        for name in names {
            let Ok(username) = Username::parse(&name) else {
                continue;
            };
            if self.username_taken(&username.key()).await? {
                continue;
            }
            let id = uuid::Uuid::new_v4().to_string();
            let user = User {
                is_admin: self.policy.is_admin(&username.key(), &id),
                id: UserId(id),
                username: username.as_str().to_string(),
                email: None,
                display_name: None,
                auth_version: 0,
                created_at_ms: now_ms(),
                denomination: crate::Denomination::Sat,
                recheck_password: false,
                account_type: kind.to_string(),
            };
            let (new, key, pubkey_owned) = (user.clone(), username.key(), pubkey.to_string());
            let made = self
                .db
                .write(move |conn| {
                    Box::pin(async move {
                        insert_user(conn, &new, &key, "").await?;
                        let linked = sqlx::query(
                            "INSERT INTO linking_keys (pubkey, user_id, kind, created_at) \
                             VALUES ($1, $2, $3, $4) ON CONFLICT (pubkey) DO NOTHING",
                        )
                        .bind(&pubkey_owned)
                        .bind(&new.id.0)
                        .bind(kind)
                        .bind(new.created_at_ms)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected()
                            == 1;
                        if !linked {
                            // The same key signed in at this moment elsewhere:
                            // its account stands, this one goes.
                            sqlx::query("DELETE FROM users WHERE id = $1")
                                .bind(&new.id.0)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Ok(linked)
                    })
                })
                .await;
            match made {
                Ok(true) => return Ok(user),
                Ok(false) => return self.keyed(pubkey).await?.ok_or(Error::Unauthenticated),
                // Someone took the name meanwhile: the next one.
                Err(Error::UsernameTaken) => continue,
                Err(err) => return Err(err),
            }
        }
        Err(Error::Internal(
            "no free username for a keyed account".into(),
        ))
    }

    /// Whether `user` signs in with a password (an account keyed by a wallet
    /// or a Nostr key may have none).
    pub async fn has_password(&self, user: &User) -> Result<bool> {
        let key = user.username.to_ascii_lowercase();
        Ok(self
            .find_with_hash(&key)
            .await?
            .is_some_and(|(_, hash)| !hash.0.is_empty()))
    }

    /// The keys that sign in to `user`: `(pubkey, kind)`, oldest first; kinds
    /// are those of [`KEY_KINDS`].
    pub async fn linked_keys(&self, user: &User) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT pubkey, kind FROM linking_keys WHERE user_id = $1 ORDER BY created_at, pubkey",
        )
        .bind(&user.id.0)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("pubkey")?, r.try_get("kind")?)))
            .collect()
    }

    /// Links one more key (of `kind`) to `user`: it then signs in to this
    /// account. Linking a key the account holds is fine; one another account
    /// holds is refused.
    pub async fn link_key(&self, user: &User, pubkey: &str, kind: &'static str) -> Result<()> {
        let (id, key) = (user.id.0.clone(), pubkey.to_string());
        let owner = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO linking_keys (pubkey, user_id, kind, created_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (pubkey) DO NOTHING",
                    )
                    .bind(&key)
                    .bind(&id)
                    .bind(kind)
                    .bind(now_ms())
                    .execute(&mut *conn)
                    .await?;
                    let row = sqlx::query("SELECT user_id FROM linking_keys WHERE pubkey = $1")
                        .bind(&key)
                        .fetch_one(&mut *conn)
                        .await?;
                    Ok(row.try_get::<String, _>("user_id")?)
                })
            })
            .await?;
        if owner != user.id.0 {
            return Err(Error::Conflict(
                "this key signs in to another account; unlink it there first".into(),
            ));
        }
        self.bus
            .publish(Topic::Account(user.id.0.clone()), EventKind::AccountChanged);
        Ok(())
    }

    /// Unlinks a key of `kind` from `user`, unless it is the account's last
    /// way to sign in (no password, no other key).
    pub async fn unlink_key(&self, user: &User, pubkey: &str, kind: &'static str) -> Result<()> {
        let (id, key) = (user.id.0.clone(), pubkey.to_string());
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    if conn.backend_name() == "PostgreSQL" {
                        // Two unlinks at once (in two processes) count one
                        // after the other: never both the last two keys.
                        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                            .bind(&id)
                            .fetch_optional(&mut *conn)
                            .await?;
                    }
                    let row = sqlx::query(
                        "SELECT password_hash, (SELECT COUNT(*) FROM linking_keys \
                         WHERE user_id = $1) AS keys FROM users WHERE id = $1",
                    )
                    .bind(&id)
                    .fetch_one(&mut *conn)
                    .await?;
                    let has_password = !row.try_get::<String, _>("password_hash")?.is_empty();
                    let keys: i64 = row.try_get("keys")?;
                    let deleted = sqlx::query(
                        "DELETE FROM linking_keys WHERE pubkey = $1 AND user_id = $2 AND kind = $3",
                    )
                    .bind(&key)
                    .bind(&id)
                    .bind(kind)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if deleted == 0 {
                        return Err(Error::NotFound("no such key of this account".into()));
                    }
                    if !has_password && keys <= 1 {
                        // Rolled back: the key stays.
                        return Err(Error::Conflict(
                            "this key is the account's only way to sign in; set a password or link another key first".into(),
                        ));
                    }
                    Ok(())
                })
            })
            .await?;
        self.bus
            .publish(Topic::Account(user.id.0.clone()), EventKind::AccountChanged);
        Ok(())
    }

    /// The account a wallet key signs in to, if any.
    async fn keyed(&self, pubkey: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!(
            "{USER_COLUMNS} WHERE id = (SELECT user_id FROM linking_keys WHERE pubkey = $1)"
        ))
        .bind(pubkey)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    /// Signs in with a username and password, and the account's two-factor
    /// code when it has that on ([`Error::CodeRequired`] without one, asked
    /// only once the password is right). The attempt goes to the account's
    /// activity log.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        code: Option<&str>,
        client: &Seen,
    ) -> Result<User> {
        let mut tried = None;
        let result = self
            .password_sign_in(username, password, code, client, &mut tried)
            .await;
        if let Some(id) = tried {
            self.record_sign_in(&id, "password", client, &result).await;
        }
        result
    }

    /// Checks a username and password (then the code). The throttle is asked
    /// first, so a client that keeps failing costs no argon2 work; an unknown
    /// user costs the same hashing time as a known one, so timing does not
    /// reveal who exists. `tried` names the account once its password was
    /// checked.
    async fn password_sign_in(
        &self,
        username: &str,
        password: &str,
        code: Option<&str>,
        client: &Seen,
        tried: &mut Option<String>,
    ) -> Result<User> {
        let key = username.trim().to_ascii_lowercase();
        let address = client.address.as_str();
        if key.len() > 64 || key.chars().any(char::is_control) {
            // No such account can exist: counted against the client alone, so
            // junk names never reach the throttle's table.
            self.throttle
                .begin(&[(Scope::LoginClient, address)])
                .await?;
            return Err(Error::InvalidCredentials);
        }
        let keys = [
            (Scope::LoginUsername, key.as_str()),
            (Scope::LoginClient, address),
        ];
        self.throttle.begin(&keys).await?;
        if password.len() > 256 {
            return Err(Error::InvalidCredentials);
        }
        // An account without a password (a wallet key's) verifies against a
        // hash nobody knows: the same work, and never a match.
        let found = self
            .find_with_hash(&key)
            .await?
            .filter(|(_, hash)| !hash.0.is_empty());
        let hash = found.as_ref().map_or(dummy_hash(), |(_, hash)| hash);
        let verified = self
            .counted_work(&keys, self.verify(password, hash))
            .await?;
        *tried = found.as_ref().map(|(user, _)| user.id.0.clone());
        match found {
            Some((user, _)) if verified => {
                self.throttle.succeeded(&keys).await;
                self.sign_in_factor(&user, code).await?;
                Ok(user)
            }
            _ => Err(Error::InvalidCredentials),
        }
    }

    /// The legacy sign-in with an account id alone (`POST /api/v1/auth/usr`),
    /// when the operator switched it on. Throttled per client address like a
    /// password login, so ids cannot be tried in bulk.
    pub async fn login_with_id(&self, id: &str, client: &Seen) -> Result<User> {
        if !self.policy.user_id_login {
            return Err(Error::Forbidden(
                "signing in with a user ID is switched off on this server".into(),
            ));
        }
        let keys = [(Scope::LoginClient, client.address.as_str())];
        self.throttle.begin(&keys).await?;
        let id = id.trim();
        let found = match id.len() <= 64 && !id.chars().any(char::is_control) {
            true => self.get(id).await?,
            false => None,
        };
        let Some(user) = found else {
            return Err(Error::InvalidCredentials);
        };
        self.throttle.succeeded(&keys).await;
        // An id is no second factor: an account that has one signs in with
        // its password and code.
        let result = match self.two_factor_on(&user.id.0).await? {
            true => Err(Error::Forbidden(
                "this account has two-factor authentication on: sign in with its password and code"
                    .into(),
            )),
            false => Ok(user),
        };
        self.record_sign_in(id, "user_id", client, &result).await;
        result
    }

    /// Changes the profile of `user` (`PUT /api/v1/auth/me`): `None` leaves a
    /// field as it is, an empty text removes it. An e-mail address belongs to
    /// one account at most, whatever its case ([`Error::EmailTaken`]).
    pub async fn update_profile(
        &self,
        user: &User,
        display_name: Option<&str>,
        email: Option<&str>,
    ) -> Result<User> {
        let display_name = display_name.map(parse_display_name).transpose()?;
        let email = email.map(parse_email).transpose()?;
        let id = user.id.0.clone();
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    if let Some(name) = display_name {
                        sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2")
                            .bind(name)
                            .bind(&id)
                            .execute(&mut *conn)
                            .await?;
                    }
                    if let Some(email) = email {
                        sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
                            .bind(email)
                            .bind(&id)
                            .execute(&mut *conn)
                            .await
                            .map_err(|e| on_account_violation(e, Error::EmailTaken))?;
                    }
                    Ok(())
                })
            })
            .await?;
        self.bus
            .publish(Topic::Account(user.id.0.clone()), EventKind::AccountChanged);
        self.get(&user.id.0).await?.ok_or(Error::Unauthenticated)
    }

    /// The account with this id, if it still exists.
    pub async fn get(&self, id: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!("{USER_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    /// The account `id` when `auth_version` is still its current version: how a
    /// session or a token issued earlier is checked on every request.
    pub async fn authenticate(&self, id: &str, auth_version: i64) -> Result<User> {
        let user = match self.current.get(id) {
            Some(user) => Some(user),
            None => {
                let user = self.get(id).await?;
                if let Some(user) = &user {
                    self.current.insert(id.to_string(), user.clone());
                }
                user
            }
        };
        match user {
            Some(user) if user.auth_version == auth_version => Ok(user),
            _ => Err(Error::Unauthenticated),
        }
    }

    /// Checks the password of a signed-in user again, as payments made with the
    /// session cookie require. Throttled like a login, per account (apart from
    /// logins under its name) and per client address.
    pub async fn recheck(&self, user: &User, password: &str, client: &Seen) -> Result<()> {
        let keys = [
            (Scope::RecheckAccount, user.id.0.as_str()),
            (Scope::LoginClient, client.address.as_str()),
        ];
        self.throttle.begin(&keys).await?;
        let (_, hash) = self
            .find_with_hash(&user.username.to_ascii_lowercase())
            .await?
            .ok_or(Error::Unauthenticated)?;
        if !hash.0.is_empty()
            && password.len() <= 256
            && self
                .counted_work(&keys, self.verify(password, &hash))
                .await?
        {
            self.throttle.succeeded(&keys).await;
            Ok(())
        } else {
            Err(Error::invalid("password", "password is not correct"))
        }
    }

    /// A browser taking a grave step (deleting the account) gives its password
    /// again; a token is its own proof, and an account without a password
    /// (keyed by a wallet) has only its session to show.
    pub async fn confirm(
        &self,
        caller: &crate::Caller,
        password: Option<&str>,
        client: &Seen,
    ) -> Result<()> {
        if !matches!(caller.credential, crate::Credential::Session { .. }) {
            return Ok(());
        }
        if !self.has_password(&caller.user).await? {
            return Ok(());
        }
        let password = password
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Error::invalid("password", "enter your password to confirm"))?;
        self.recheck(&caller.user, password, client).await
    }

    /// Replaces the password after checking the current one. The account's
    /// `auth_version` moves on, so every session and token issued before stops
    /// working, in every process, before this answers.
    pub async fn change_password(
        &self,
        user: &User,
        old_password: &str,
        new_password: &str,
        code: Option<&str>,
        client: &Seen,
    ) -> Result<User> {
        let result = self
            .replace_password(user, old_password, new_password, code, client)
            .await;
        self.record(
            &user.id.0,
            activity::Topic::Password,
            "update",
            activity::Outcome::of(&result),
            client,
            serde_json::json!({}),
        )
        .await;
        result
    }

    async fn replace_password(
        &self,
        user: &User,
        old_password: &str,
        new_password: &str,
        code: Option<&str>,
        client: &Seen,
    ) -> Result<User> {
        self.recheck(user, old_password, client)
            .await
            .map_err(|err| match err {
                Error::Invalid { .. } => {
                    Error::invalid("old_password", "current password is not correct")
                }
                other => other,
            })?;
        self.check_new_password(
            new_password,
            &[&user.username, user.email.as_deref().unwrap_or_default()],
        )
        .await
        .map_err(|err| match err {
            Error::Invalid { message, .. } => Error::invalid("new_password", message),
            other => other,
        })?;
        self.second_factor(user, code).await?;
        let new_hash = self.hash(new_password).await?;
        self.db
            .execute(
                sqlx::query(
                    "UPDATE users SET password_hash = $1, auth_version = auth_version + 1 \
                     WHERE id = $2",
                )
                .bind(new_hash.0)
                .bind(user.id.0.clone()),
            )
            .await?;
        self.credentials_changed(&user.id.0).await
    }

    /// The account as it now is, once every process knows its credentials
    /// changed (every session and token of an older `auth_version` is void).
    async fn credentials_changed(&self, id: &str) -> Result<User> {
        let user = self.get(id).await?.ok_or(Error::Unauthenticated)?;
        // Signed API keys hold no password: they are switched off (the
        // account's and its service accounts'), for the owner to switch on
        // again once sure whose they are.
        self.db
            .execute(
                sqlx::query(
                    "UPDATE api_keys SET state = 'disabled', updated_at = $1 \
                     WHERE state = 'active' AND (user_id = $2 OR user_id IN \
                     (SELECT uid FROM service_accounts WHERE owner_id = $2))",
                )
                .bind(now_ms())
                .bind(user.id.0.clone()),
            )
            .await?;
        // Sessions of the old password are over: their rows go.
        self.db
            .execute(
                sqlx::query(
                    "DELETE FROM account_sessions WHERE user_id = $1 AND auth_version <> $2",
                )
                .bind(user.id.0.clone())
                .bind(user.auth_version),
            )
            .await?;
        self.bus
            .publish_confirmed(
                Topic::Account(user.id.0.clone()),
                EventKind::CredentialsChanged {
                    auth_version: user.auth_version,
                },
            )
            .await?;
        Ok(user)
    }

    /// Changes the wallet settings of `user`; `None` leaves a setting as it is.
    pub async fn update_settings(
        &self,
        user: &User,
        denomination: Option<crate::Denomination>,
        recheck_password: Option<bool>,
    ) -> Result<User> {
        self.db
            .execute(
                sqlx::query(
                    "UPDATE users SET denomination = COALESCE($1, denomination), \
                     recheck_password = COALESCE($2, recheck_password) WHERE id = $3",
                )
                .bind(denomination.map(|d| d.as_str()))
                .bind(recheck_password.map(i64::from))
                .bind(user.id.0.clone()),
            )
            .await?;
        self.bus
            .publish(Topic::Account(user.id.0.clone()), EventKind::AccountChanged);
        self.get(&user.id.0).await?.ok_or(Error::Unauthenticated)
    }

    async fn username_taken(&self, key: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 AS taken FROM users WHERE username_key = $1")
            .bind(key)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.is_some())
    }

    async fn find_with_hash(&self, key: &str) -> Result<Option<(User, PasswordHash)>> {
        let row = sqlx::query(
            "SELECT id, username, email, display_name, is_admin, auth_version, created_at, \
             denomination, recheck_password, account_type, password_hash FROM users \
             WHERE username_key = $1",
        )
        .bind(key)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| {
            Ok((
                user_from_row(&r)?,
                PasswordHash(r.try_get("password_hash")?),
            ))
        })
        .transpose()
    }

    /// [`check_password_rule`] on the hashing pool: judging a crafted
    /// password costs `zxcvbn` a good part of a second, so a flood of them
    /// waits its turn there (or is answered `Busy`) instead of stalling the
    /// server's other requests.
    pub async fn check_new_password(&self, password: &str, known: &[&str]) -> Result<()> {
        self.judge_password(password, known).await?.1
    }

    /// How strong `password` is, and whether a new password may be it, worked
    /// out on the hashing pool (see [`Accounts::check_new_password`]).
    pub async fn judge_password(
        &self,
        password: &str,
        known: &[&str],
    ) -> Result<(Strength, Result<()>)> {
        let password = password.to_owned();
        let known: Vec<String> = known.iter().map(|k| k.to_string()).collect();
        self.pooled_work(
            move || {
                let known: Vec<&str> = known.iter().map(String::as_str).collect();
                Ok((
                    password_strength(&password, &known),
                    check_password_rule(&password, &known),
                ))
            },
            false,
        )
        .await
    }

    async fn hash(&self, password: &str) -> Result<PasswordHash> {
        let password = password.to_owned();
        self.hashing_work(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| PasswordHash(h.to_string()))
                .map_err(|e| Error::Internal(format!("argon2: {e}")))
        })
        .await
    }

    async fn verify(&self, password: &str, hash: &PasswordHash) -> Result<bool> {
        let password = password.to_owned();
        let hash = hash.0.clone();
        self.hashing_work(move || {
            let parsed = argon2::PasswordHash::new(&hash)
                .map_err(|e| Error::Internal(format!("stored hash: {e}")))?;
            Ok(argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await
    }

    /// Runs `work`, counted under `keys` by the throttle: when the server turns
    /// out too busy to hash, the attempt never reached the password and is taken
    /// back, so retrying a busy server costs a user none of their attempts.
    async fn counted_work<T>(
        &self,
        keys: &[Key<'_>],
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let outcome = work.await;
        if let Err(Error::Busy { .. }) = &outcome {
            self.throttle.take_back(keys).await;
        }
        outcome
    }

    /// Runs argon2 on the blocking pool (see [`Accounts::pooled_work`]),
    /// counted in [`Accounts::hashes_run`].
    async fn hashing_work<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.pooled_work(job, true).await
    }

    /// Runs CPU-heavy account work (argon2, judging a password) on the
    /// blocking pool, at most one job per core at a time. A request waits at
    /// most `hashing_wait` for its turn, then is answered `Busy`: a storm of
    /// such work slows others down by that much at most, never without bound.
    async fn pooled_work<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T> + Send + 'static,
        is_hash: bool,
    ) -> Result<T> {
        // The permit travels with the job: a caller that goes away does not free
        // it while the hashing still runs.
        let permit = tokio::time::timeout(self.hashing_wait, self.hashing.clone().acquire_owned())
            .await
            .map_err(|_| Error::Busy {
                retry_after: self.hashing_wait.max(Duration::from_secs(1)),
            })?
            .map_err(|_| Error::Internal("hashing pool closed".into()))?;
        if is_hash {
            self.hashes_run.fetch_add(1, Ordering::Relaxed);
        }
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|e| Error::Internal(format!("hashing task: {e}")))?
    }
}

/// The kinds of key an account signs in with besides its password: wallet
/// keys (LNURL-auth, Joule), Nostr keys, and accounts at identity providers
/// (stored as `<provider>:<subject>`).
pub const KEY_KINDS: [&str; 6] = ["lnurl", "joule", "nostr", "google", "keycloak", "github"];

/// `kind` as one of [`KEY_KINDS`], if it is one.
pub fn key_kind(kind: &str) -> Option<&'static str> {
    KEY_KINDS.into_iter().find(|k| *k == kind)
}

const USER_COLUMNS: &str = "SELECT id, username, email, display_name, is_admin, auth_version, \
     created_at, denomination, recheck_password, account_type FROM users";

fn user_from_row(row: &sqlx::any::AnyRow) -> Result<User> {
    Ok(User {
        id: UserId(row.try_get("id")?),
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        is_admin: row.try_get::<i64, _>("is_admin")? != 0,
        auth_version: row.try_get("auth_version")?,
        created_at_ms: row.try_get("created_at")?,
        denomination: crate::Denomination::parse(&row.try_get::<String, _>("denomination")?)?,
        recheck_password: row.try_get::<i64, _>("recheck_password")? != 0,
        account_type: row.try_get("account_type")?,
    })
}

/// argon2id with the OWASP minimum: 19 MiB of memory, 2 passes, 1 lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a password nobody knows, verified when the username does not exist.
fn dummy_hash() -> &'static PasswordHash {
    static DUMMY: OnceLock<PasswordHash> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        PasswordHash(
            argon2()
                .hash_password(uuid::Uuid::new_v4().as_bytes(), &salt)
                .expect("hashing a random password")
                .to_string(),
        )
    })
}
