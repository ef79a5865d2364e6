//! Ampere's domain: accounts and authentication, money and the ledger, Lightning
//! nodes, storage. It knows nothing of HTTP or Leptos, so it compiles fast and is
//! tested on its own against both databases.

pub mod accounts;
pub mod caller;
pub mod cursor;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod money;
pub mod simnet;
pub mod storage;
pub mod throttle;
pub mod tokens;
pub mod wallet;

pub use accounts::{Accounts, User, UserId, Username};
pub use caller::{Access, Caller, Credential};
pub use error::{Error, Result};
pub use money::{Denomination, Msat, MAX_MONEY};
pub use storage::{Backend, Database};
pub use throttle::LoginThrottle;
pub use tokens::{Claims, Tokens};

/// How the engine behaves; every field has a sensible default.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub throttle: throttle::Limits,
    pub simnet: simnet::SimnetConfig,
    pub storage: storage::Timeouts,
}

/// The engine's services, cheap to clone, shared by every request handler.
#[derive(Clone)]
pub struct Engine {
    pub db: Database,
    /// Every event of the engine, per topic, across processes on PostgreSQL.
    pub bus: events::Bus,
    pub accounts: Accounts,
    pub tokens: Tokens,
    /// First outcomes of retried payments (`Idempotency-Key`).
    pub idempotency: idempotency::Idempotency,
    pub simnet: simnet::Simnet,
    pub wallet: wallet::Wallet,
}

impl Engine {
    /// Opens the database at `url` (running its migrations) and builds the services.
    pub async fn open(url: &str, settings: Settings) -> Result<Self> {
        let db = Database::open(url, settings.storage).await?;
        let bus = events::Bus::start(&db).await?;
        let tokens = Tokens::load(&db).await?;
        let accounts = Accounts::new(
            db.clone(),
            LoginThrottle::new(settings.throttle),
            bus.clone(),
        );
        let simnet = simnet::Simnet::start(db.clone(), settings.simnet, bus.clone()).await?;
        let wallet = wallet::Wallet::new(db.clone(), simnet.clone());
        Ok(Self {
            idempotency: idempotency::Idempotency::new(db.clone()),
            db,
            bus,
            accounts,
            tokens,
            simnet,
            wallet,
        })
    }

    /// Signs a new account up: the account and its node in one transaction; in
    /// demo mode its wallet is then funded and its hub channel opened.
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        email: Option<&str>,
    ) -> Result<User> {
        let user = self.accounts.register(username, password, email).await?;
        if self.simnet.config().demo {
            if let Err(err) = self.simnet.demo_setup(&user.id.0).await {
                tracing::warn!(error = %err, "demo funding of a new account failed");
            }
        }
        Ok(user)
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

/// `bytes` random bytes from the operating system, as hex: tokens and secrets.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}
