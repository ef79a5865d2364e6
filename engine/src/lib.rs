//! Ampere's domain: accounts and authentication, money and the ledger, Lightning
//! nodes, the exchange, storage. It knows nothing of HTTP or Leptos, so it compiles fast and is
//! tested on its own against both databases.

pub mod accounts;
pub mod acls;
pub mod api_keys;
pub mod caller;
pub mod closing;
pub mod cursor;
pub mod desk;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod lnurl;
pub mod mail;
pub mod money;
pub mod nostr;
pub mod oauth;
pub mod signed_message;
pub mod simnet;
pub mod storage;
pub mod throttle;
pub mod tokens;
pub mod wallet;

pub use accounts::{Accounts, User, UserId, Username};
pub use caller::{Access, Caller, Credential, Seen};
pub use error::{Error, Result};
pub use money::{Denomination, Msat, Unit, UsdRate, MAX_MONEY};
pub use storage::{Backend, Database};
pub use throttle::Throttle;
pub use tokens::{Claims, Tokens};

/// How the engine behaves; every field has a sensible default.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Failed logins and password re-checks.
    pub throttle: throttle::Limits,
    /// Sign-ups, per client address and overall.
    pub sign_up: throttle::ClientLimits,
    /// Demo funding of new accounts (with `simnet.demo`), per client address and
    /// overall; beyond it an account is created unfunded.
    pub demo_funding: throttle::ClientLimits,
    /// Longest a request waits for a password-hashing permit before it is
    /// answered `Busy`.
    pub hashing_wait: std::time::Duration,
    pub simnet: simnet::SimnetConfig,
    pub storage: storage::Timeouts,
    pub desk: desk::DeskConfig,
    /// Who may make accounts, who administers, which ways sign in.
    pub accounts: accounts::Policy,
    /// Where the mail the server sends goes.
    pub mail: mail::MailConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            throttle: throttle::Limits::default(),
            sign_up: throttle::ClientLimits::SIGN_UP,
            demo_funding: throttle::ClientLimits::DEMO_FUNDING,
            hashing_wait: std::time::Duration::from_secs(2),
            simnet: simnet::SimnetConfig::default(),
            storage: storage::Timeouts::default(),
            desk: desk::DeskConfig::default(),
            accounts: accounts::Policy::default(),
            mail: mail::MailConfig::default(),
        }
    }
}

/// The engine's services, shared by every request handler: one `Arc`, so a
/// clone (several per request) costs one reference count, not a copy of every
/// service's handles. The services are reached as fields (`engine.wallet`).
#[derive(Clone)]
pub struct Engine(std::sync::Arc<Services>);

impl std::ops::Deref for Engine {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

pub struct Services {
    pub db: Database,
    /// Every event of the engine, per topic, across processes on PostgreSQL.
    pub bus: events::Bus,
    pub accounts: Accounts,
    pub throttle: Throttle,
    pub tokens: Tokens,
    /// Access control lists and their tokens.
    pub acls: acls::Acls,
    /// Signed API keys.
    pub api_keys: api_keys::ApiKeys,
    /// First outcomes of retried payments (`Idempotency-Key`).
    pub idempotency: idempotency::Idempotency,
    pub simnet: simnet::Simnet,
    pub wallet: wallet::Wallet,
    /// The exchange: trading balances and their funding.
    pub desk: desk::Desk,
    /// The mail the server sends.
    pub mail: mail::Mail,
    /// Ampere as an OAuth 2.0 provider: clients, codes, tokens.
    pub oauth: oauth::OAuth,
}

impl Engine {
    /// Opens the database at `url` (running its migrations) and builds the services.
    pub async fn open(url: &str, settings: Settings) -> Result<Self> {
        let mail = mail::Mail::new(&settings.mail)?;
        let db = Database::open(url, settings.storage).await?;
        let bus = events::Bus::start(&db).await?;
        let tokens = Tokens::load(&db).await?;
        let acls = acls::Acls::load(&db, &bus).await?;
        let api_keys = api_keys::ApiKeys::new(db.clone(), bus.clone());
        let oauth = oauth::OAuth::new(db.clone(), bus.clone());
        let throttle = Throttle::new(db.clone(), &settings);
        let accounts = Accounts::new(
            db.clone(),
            throttle.clone(),
            settings.hashing_wait,
            bus.clone(),
            settings.accounts,
        );
        accounts.apply_admins().await?;
        let simnet = simnet::Simnet::start(db.clone(), settings.simnet, bus.clone()).await?;
        let wallet = wallet::Wallet::new(db.clone(), simnet.clone());
        let desk = desk::Desk::start(
            db.clone(),
            simnet.clone(),
            bus.clone(),
            accounts.clone(),
            settings.desk,
        )
        .await?;
        Ok(Self(std::sync::Arc::new(Services {
            desk,
            idempotency: idempotency::Idempotency::new(db.clone()),
            db,
            bus,
            accounts,
            throttle,
            tokens,
            acls,
            api_keys,
            simnet,
            wallet,
            mail,
            oauth,
        })))
    }

    /// Signs a new account up from the client address `client` (see
    /// [`Accounts::register`] for the rules and limits): the account and its node
    /// in one transaction; in demo mode its wallet is then funded and its hub
    /// channel opened, within the demo funding limits.
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        email: Option<&str>,
        client: &str,
    ) -> Result<User> {
        let user = self
            .accounts
            .register(username, password, email, client)
            .await?;
        self.fund_demo_account(&user, client).await;
        Ok(user)
    }

    /// What paying `invoice_text` (`amount` when it names none) takes out of
    /// `user`'s hands, as the second factor of withdrawals counts it: nothing
    /// when it pays the account's own wallet or its own desk deposit (money
    /// moving between its own balances), else the amount paid.
    pub async fn leaving(
        &self,
        user: &User,
        invoice_text: &str,
        amount: Option<Msat>,
    ) -> Result<Msat> {
        let Ok(decoded) = simnet::invoice::decode(invoice_text) else {
            // Nothing is paid: the payment refuses the invoice itself.
            return Ok(Msat::ZERO);
        };
        let own_wallet = decoded.payee == self.wallet.node_id(user).await?;
        let own_deposit = self
            .desk
            .deposit_invoice(&user.id.0, &decoded.payment_hash)
            .await?
            .is_some();
        if own_wallet || own_deposit {
            return Ok(Msat::ZERO);
        }
        Ok(decoded.amount.or(amount).unwrap_or_default())
    }

    /// Funds a new account in demo mode (every way of signing up ends here;
    /// outside demo mode it does nothing), unless the demo funding limits are
    /// used up: then the account stays unfunded (said in the log) rather than
    /// refused, so a flood of sign-ups cannot drain the hub and a person still
    /// gets an account.
    async fn fund_demo_account(&self, user: &User, client: &str) {
        use throttle::{Scope, EVERYONE};
        if !self.simnet.config().demo {
            return;
        }
        let keys = [
            (Scope::DemoFundingClient, client),
            (Scope::DemoFundingOverall, EVERYONE),
        ];
        match self.throttle.begin(&keys).await {
            Ok(()) => {
                if let Err(err) = self.simnet.demo_setup(&user.id.0).await {
                    tracing::warn!(error = %err, "demo funding of a new account failed");
                }
            }
            Err(Error::Throttled { retry_after }) => tracing::warn!(
                username = %user.username,
                client,
                retry_after_s = retry_after.as_secs(),
                "demo funding limit reached: the new account is not funded"
            ),
            Err(err) => tracing::warn!(
                error = %err,
                "demo funding limits could not be checked: the new account is not funded"
            ),
        }
    }
}

/// Milliseconds since the Unix epoch: how the storage records instants.
pub fn now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 text of a Unix-milliseconds instant (`2026-11-30T23:58:36.5Z`), as
/// the APIs show times.
pub fn rfc3339(ms: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Whether a secret someone presented equals the expected one, without telling
/// through its timing how much of it matched.
pub fn same_secret(presented: &[u8], expected: &[u8]) -> bool {
    presented.len() == expected.len()
        && presented
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// At most `max` bytes of `text`, cut at a character boundary (outside text
/// kept in a bounded column or message).
pub fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// How a secret handed out once (a code, a token, a link's key, a client's
/// secret) is kept: the hex SHA-256 of it. These are long random strings (or
/// short-lived, throttled codes), so a slow hash would add nothing.
pub(crate) fn secret_hash(secret: &str) -> String {
    use bitcoin::hashes::{sha256, Hash};
    sha256::Hash::hash(secret.as_bytes()).to_string()
}

/// `bytes` random bytes from the operating system, as hex: tokens and secrets.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}
