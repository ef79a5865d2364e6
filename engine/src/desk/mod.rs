//! The exchange: the futures desk's counterparty and bank. Each account has a
//! trading balance here, apart from its wallet, funded and emptied over
//! Lightning through the exchange's own node on the simnet. This area owns the
//! `desk_*` tables and meets the others only through their services: the simnet
//! (its node, invoices, payments and the hooks that put the desk's books in a
//! payment's own transaction), accounts and the bus.
//!
//! The books balance at every commit ([`Desk::audit`]): every sat the exchange
//! received is in exactly one place, a trading balance, an account-creation
//! deposit not yet claimed, the margin of a position or of a limit order, a withdrawal
//! in flight or paid, or the house's result.

// The arithmetic lives in its own crate so the browser's ticket runs the same code.
pub use ::contract;
pub mod funding;
pub mod market;
pub mod positions;
pub mod signin;
pub mod tokens;

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use crate::events::Bus;
use crate::simnet::{Node, Simnet};
use crate::{Accounts, Database, Error, Msat, Result};
use contract::Price;

pub use funding::{DepositView, MadeWith, Withdrawal, WithdrawalView};
pub use market::{Market, MarketConfig, Quote};
pub use positions::{Filter, Order, OrderType, Position, TickReport, TriggerChange};
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
    /// Most positions (open or pending) an account holds at once.
    pub open_positions_max: u32,
    /// Highest leverage an order may ask (the lowest is 1).
    pub leverage_max: u32,
    /// The price: where it comes from, its spread, how often it moves.
    pub market: MarketConfig,
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
            open_positions_max: 50,
            leverage_max: 100,
            market: MarketConfig::default(),
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
    /// The BTC/USD price the desk trades at.
    pub market: Market,
}

/// The exchange's books at one instant (one statement reads them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Books {
    /// Every settled deposit, account-creation invoices included.
    pub received: Msat,
    pub balances: Msat,
    /// Account-creation deposits paid but not yet claimed by a new account.
    pub unclaimed: Msat,
    /// The margins of open positions and of limit orders not yet filled.
    pub margins: Msat,
    /// Withdrawals paid or still in flight, with their routing fees (the
    /// reserve, while in flight).
    pub withdrawn: Msat,
    /// What the exchange won or lost against traders: the margins it kept
    /// and the profits it paid, read from the closed positions (with what
    /// `desk_house` holds).
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
        let market = Market::start(db.clone(), bus.clone(), config.market.clone()).await?;
        let desk = Desk {
            market,
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
               WHERE settled_at IS NOT NULL) \
             + (SELECT retired_received_msat FROM desk_house WHERE id = 1) AS received, \
             (SELECT CAST(COALESCE(SUM(balance_msat), 0) AS BIGINT) FROM desk_balances) AS balances, \
             (SELECT CAST(COALESCE(SUM(amount_msat), 0) AS BIGINT) FROM desk_deposits \
               WHERE purpose = 'account' AND settled_at IS NOT NULL AND claimed_at IS NULL) AS unclaimed, \
             (SELECT CAST(COALESCE(SUM(amount_msat + fee_msat), 0) AS BIGINT) \
               FROM desk_withdrawals WHERE state IN ('pending', 'paid')) \
             + (SELECT retired_withdrawn_msat FROM desk_house WHERE id = 1) AS withdrawn, \
             (SELECT CAST(COALESCE(SUM(margin), 0) * 1000 AS BIGINT) FROM desk_positions \
               WHERE state IN ('pending', 'open')) AS margins, \
             (SELECT result_msat FROM desk_house WHERE id = 1) \
             + (SELECT CAST(COALESCE(SUM(margin - CASE WHEN margin + pl > 0 THEN margin + pl ELSE 0 END), 0) \
                 * 1000 AS BIGINT) FROM desk_positions WHERE state = 'closed') AS house",
        )
        .fetch_one(self.db.pool())
        .await?;
        let get = |name: &str| -> Result<Msat> { Ok(Msat(row.try_get::<i64, _>(name)?)) };
        Ok(Books {
            received: get("received")?,
            balances: get("balances")?,
            unclaimed: get("unclaimed")?,
            margins: get("margins")?,
            withdrawn: get("withdrawn")?,
            house: get("house")?,
        })
    }
}

impl Desk {
    /// Moves the price and applies it every `interval` of the market's
    /// configuration, from `source`, until the server stops. With several
    /// processes on one PostgreSQL database only the one holding the ticker's
    /// lease does; another takes over when it goes away.
    pub fn spawn_ticker(&self, mut source: Box<dyn market::Source>) -> tokio::task::JoinHandle<()> {
        let desk = self.clone();
        tokio::spawn(async move {
            let mut lease = crate::storage::Lease::new(TICKER_LOCK, "desk ticker");
            let mut every = tokio::time::interval(desk.market.config().interval);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                if !lease.held(&desk.db).await {
                    continue;
                }
                let last = desk
                    .market
                    .latest()
                    .map_or(desk.market.config().start, |quote| quote.index);
                let index = match source.next(last).await {
                    Ok(index) => index,
                    Err(err) => {
                        // The quote goes stale, and trading pauses, until the
                        // source answers again.
                        tracing::warn!(error = %err, "the price source failed");
                        continue;
                    }
                };
                if let Err(err) = desk.move_price(index).await {
                    tracing::warn!(error = %err, "a price tick failed");
                }
            }
        })
    }

    /// Quotes `index` now, everywhere, and applies it to the positions.
    pub async fn move_price(&self, index: Price) -> Result<(Quote, TickReport)> {
        let quote = self.market.publish(index).await?;
        let report = self.tick(quote).await?;
        Ok((quote, report))
    }
}

/// The PostgreSQL advisory lock of the ticker's lease (any fixed number,
/// unique to it).
const TICKER_LOCK: i64 = 0x616d_7065_7265_0010;

/// HMAC-SHA256 of `parts` joined by `:`, as hex: authenticates the LNURLs the
/// exchange hands out.
fn link_mac(key: &[u8], parts: &[&str]) -> String {
    use bitcoin::hashes::{hmac, sha256, Hash, HashEngine};
    let mut engine = hmac::HmacEngine::<sha256::Hash>::new(key);
    engine.input(parts.join(":").as_bytes());
    hex::encode(hmac::Hmac::<sha256::Hash>::from_engine(engine).to_byte_array())
}
