//! The exchange: the futures desk's counterparty and bank. Each account has a
//! trading balance here, apart from its wallet, funded and emptied over
//! Lightning through the exchange's own node on the simnet. This area owns the
//! `desk_*` tables and meets the others only through their services: the simnet
//! (its node, invoices, payments and the hooks that put the desk's books in a
//! payment's own transaction), accounts and the bus.
//!
//! The books balance at every commit ([`Desk::audit`]): every sat the exchange
//! received is in exactly one place, a trading balance, an account-creation
//! deposit not yet claimed, a position's margin (with positions), a withdrawal
//! in flight or paid, or the house's result.

pub mod contract;
pub mod funding;
pub mod signin;
pub mod tokens;

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use crate::events::Bus;
use crate::simnet::{Node, Simnet};
use crate::{Accounts, Database, Error, Msat, Result};

pub use funding::{DepositView, Withdrawal, WithdrawalView};
pub use tokens::{DeskClaims, DeskScope, DeskTokens, Scopes, TokenView};

/// The exchange node's alias.
pub const EXCHANGE_ALIAS: &str = "exchange";

/// What the operator may switch off (`GET /lnm/state/api`); a switched-off
/// service answers 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switches {
    pub withdraw: bool,
    pub newposition: bool,
    pub account_creation: bool,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            withdraw: true,
            newposition: true,
            account_creation: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DeskConfig {
    /// The exchange node's channels to and from the hub add up to this, each way;
    /// raising it tops them up at the next start.
    pub liquidity: Msat,
    pub deposit_min: Msat,
    pub deposit_max: Msat,
    pub withdraw_min: Msat,
    /// How long a deposit invoice may be paid.
    pub deposit_expiry: Duration,
    /// What an account-creation invoice asks (it becomes the first balance).
    pub account_price: Msat,
    /// How long an LNURL-withdraw link or a sign-in challenge works.
    pub link_expiry: Duration,
    /// How long a withdrawal may stay pending before the sweep ends it; a
    /// payment's transaction claims the withdrawal first, so ending it is safe.
    pub pending_grace: Duration,
    pub switches: Switches,
    /// The server's public URL (`https://host`), which LNURLs point to.
    pub public_url: String,
}

impl Default for DeskConfig {
    fn default() -> Self {
        DeskConfig {
            liquidity: Msat::from_sat(500_000_000),
            deposit_min: Msat::from_sat(100),
            deposit_max: Msat::from_sat(1_000_000),
            withdraw_min: Msat::from_sat(1_000),
            deposit_expiry: Duration::from_secs(15 * 60),
            account_price: Msat::from_sat(1_000),
            link_expiry: Duration::from_secs(10 * 60),
            pending_grace: Duration::from_secs(120),
            switches: Switches::default(),
            public_url: "http://127.0.0.1:3000".into(),
        }
    }
}

/// The exchange's services. Cheap to clone.
#[derive(Clone)]
pub struct Desk {
    db: Database,
    simnet: Simnet,
    bus: Bus,
    accounts: Accounts,
    config: std::sync::Arc<DeskConfig>,
    node: std::sync::Arc<Node>,
    /// Authenticates the LNURLs this server hands out (`hmac`, `signature`).
    link_key: std::sync::Arc<Vec<u8>>,
    pub tokens: DeskTokens,
}

/// The exchange's books at one instant (one statement reads them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Books {
    /// Every settled deposit, account-creation invoices included.
    pub received: Msat,
    pub balances: Msat,
    /// Account-creation deposits paid but not yet claimed by a new account.
    pub unclaimed: Msat,
    /// Open positions' margins (none until positions exist).
    pub margins: Msat,
    /// Withdrawals paid or still in flight, with their routing fees (the
    /// reserve, while in flight).
    pub withdrawn: Msat,
    pub house: Msat,
}

impl Books {
    /// Every sat received is in exactly one place.
    pub fn balanced(&self) -> bool {
        let held = Msat::checked_sum([
            self.balances,
            self.unclaimed,
            self.margins,
            self.withdrawn,
            self.house,
        ]);
        held == Some(self.received)
    }
}

impl Desk {
    /// Opens the exchange: its node (created or topped up to the configured
    /// liquidity), its keys, and the hook that credits deposits inside the
    /// payments that settle them.
    pub async fn start(
        db: Database,
        simnet: Simnet,
        bus: Bus,
        accounts: Accounts,
        config: DeskConfig,
    ) -> Result<Self> {
        let node = simnet
            .ensure_service_node(EXCHANGE_ALIAS, config.liquidity)
            .await?;
        simnet.on_receive(&node.pubkey, funding::deposit_hook());
        let desk = Desk {
            link_key: std::sync::Arc::new(db.secret("desk-links").await?),
            tokens: DeskTokens::load(&db, &bus).await?,
            db,
            simnet,
            bus,
            accounts,
            config: std::sync::Arc::new(config),
            node: std::sync::Arc::new(node),
        };
        Ok(desk)
    }

    pub fn config(&self) -> &DeskConfig {
        &self.config
    }

    /// The exchange's node (`GET /lnm/state/node`).
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The account's trading balance (zero before its first deposit).
    pub async fn balance(&self, user_id: &str) -> Result<Msat> {
        let row = sqlx::query("SELECT balance_msat FROM desk_balances WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(Msat(match row {
            Some(row) => row.try_get("balance_msat")?,
            None => 0,
        }))
    }

    /// Refuses with 503 when the operator switched `service` off.
    fn require(&self, on: bool, service: &str) -> Result<()> {
        if on {
            Ok(())
        } else {
            Err(Error::Unavailable(format!(
                "{service} is switched off on this exchange for now"
            )))
        }
    }

    /// Reads the books in one statement, so they are one instant's.
    pub async fn audit(&self) -> Result<Books> {
        let row = sqlx::query(
            "SELECT \
             (SELECT CAST(COALESCE(SUM(amount_msat), 0) AS BIGINT) FROM desk_deposits \
               WHERE settled_at IS NOT NULL) AS received, \
             (SELECT CAST(COALESCE(SUM(balance_msat), 0) AS BIGINT) FROM desk_balances) AS balances, \
             (SELECT CAST(COALESCE(SUM(amount_msat), 0) AS BIGINT) FROM desk_deposits \
               WHERE purpose = 'account' AND settled_at IS NOT NULL AND claimed_at IS NULL) AS unclaimed, \
             (SELECT CAST(COALESCE(SUM(amount_msat + fee_msat), 0) AS BIGINT) \
               FROM desk_withdrawals WHERE state IN ('pending', 'paid')) AS withdrawn, \
             (SELECT result_msat FROM desk_house WHERE id = 1) AS house",
        )
        .fetch_one(self.db.pool())
        .await?;
        let get = |name: &str| -> Result<Msat> { Ok(Msat(row.try_get::<i64, _>(name)?)) };
        Ok(Books {
            received: get("received")?,
            balances: get("balances")?,
            unclaimed: get("unclaimed")?,
            margins: Msat::ZERO,
            withdrawn: get("withdrawn")?,
            house: get("house")?,
        })
    }
}

/// HMAC-SHA256 of `parts` joined by `:`, as hex: authenticates the LNURLs the
/// exchange hands out.
fn link_mac(key: &[u8], parts: &[&str]) -> String {
    use bitcoin::hashes::{hmac, sha256, Hash, HashEngine};
    let mut engine = hmac::HmacEngine::<sha256::Hash>::new(key);
    engine.input(parts.join(":").as_bytes());
    hex::encode(hmac::Hmac::<sha256::Hash>::from_engine(engine).to_byte_array())
}
