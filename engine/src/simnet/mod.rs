//! The simulated Lightning network: every node of this server in one regtest-like
//! network inside the process and its database. It owns the nodes and their keys,
//! the chain (blocks, on-chain wallets), channels, invoices, routing and payments.
//!
//! Every money movement is one database transaction whose conditions are in its
//! SQL (`... WHERE onchain_msat >= $1`), so concurrent requests cannot overdraw,
//! and the whole network's funds are conserved: minted = on-chain + unconfirmed
//! receipts + the capacity of channels not yet closed. What is minted is counted
//! (`money_supply`) and never exceeds 21 million BTC, so no balance can overflow;
//! the database refuses any balance or amount out of those bounds.

mod chain;
mod channels;
pub mod invoice;
pub mod keys;
mod payments;
mod router;

use std::time::Duration;

use serde::Serialize;
use sqlx::{AnyConnection, Row};

pub use crate::events::EventKind;
use crate::events::{Bus, Topic};
use crate::{now_ms, Database, Error, Msat, Result};
pub use chain::FAUCET_MAX;
use channels::Funding;
pub use channels::{
    Channel, ChannelPage, ChannelState, ClosedCursor, MAX_PENDING_PER_PEER, MIN_CAPACITY,
    RECENT_CLOSED,
};
pub use keys::{parse_node_id, NodeKey};
pub use payments::{default_fee_limit, Hook, PayRequest, Payment};

/// The alias of the server's own routing node, in every account's address book.
pub const HUB_ALIAS: &str = "hub";

#[derive(Debug, Clone)]
pub struct SimnetConfig {
    /// Blocks after the funding block before a channel is open (the funding block
    /// counts as the first).
    pub open_confirmations: i64,
    /// Blocks a force close waits before its funds are spendable.
    pub force_close_delay: i64,
    /// Capacity of the channel the hub opens back to a new peer; `None` mirrors
    /// the peer's channel.
    pub hub_channel_capacity: Option<Msat>,
    /// Fund each new account and open its hub channel at sign-up.
    pub demo: bool,
    pub demo_funds: Msat,
    pub demo_channel: Msat,
    /// Forwarding fee every routing node charges: base plus parts per million.
    pub fee_base: Msat,
    pub fee_ppm: i64,
    pub invoice_expiry: Duration,
    /// What the hub's wallet holds when the network is created.
    pub hub_genesis: Msat,
}

impl Default for SimnetConfig {
    fn default() -> Self {
        SimnetConfig {
            open_confirmations: 3,
            force_close_delay: 6,
            hub_channel_capacity: None,
            demo: false,
            demo_funds: Msat::from_sat(1_000_000),
            demo_channel: Msat::from_sat(500_000),
            fee_base: Msat(1000),
            fee_ppm: 100,
            invoice_expiry: invoice::DEFAULT_EXPIRY,
            hub_genesis: Msat::from_sat(1_000 * 100_000_000),
        }
    }
}

/// A node as the wallet shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub pubkey: String,
    pub alias: String,
    pub address: String,
    pub user_id: Option<String>,
    /// Confirmed on-chain funds.
    pub onchain: Msat,
}

#[derive(Clone)]
pub struct Simnet {
    db: Database,
    config: SimnetConfig,
    bus: Bus,
    /// Node pubkeys by account, and signing keys by pubkey: neither ever changes,
    /// so they are read from the database once.
    node_ids: moka::future::Cache<String, String>,
    keys: moka::future::Cache<String, NodeKey>,
    graph: router::Graph,
    /// The chain's height, for display: refreshed when this process mines, and
    /// at most `TIP_TTL` old when another process (same PostgreSQL) did.
    tip: moka::future::Cache<(), i64>,
    /// The books of nodes whose receipts another area counts (the exchange's
    /// deposits), run inside the paying transaction.
    receivers: std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, Hook>>>,
}

/// How long a remembered chain height may be shown.
const TIP_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl Simnet {
    /// Opens the network on `db`, creating the hub (with its genesis funds) on the
    /// very first start and a node for any account that lacks one.
    pub async fn start(db: Database, config: SimnetConfig, bus: Bus) -> Result<Self> {
        let simnet = Simnet {
            db,
            config,
            bus,
            node_ids: moka::future::Cache::new(100_000),
            keys: moka::future::Cache::new(100_000),
            graph: router::Graph::default(),
            tip: moka::future::Cache::builder()
                .max_capacity(1)
                .time_to_live(TIP_TTL)
                .build(),
            receivers: Default::default(),
        };
        simnet.ensure_hub().await?;
        simnet.backfill_account_nodes().await?;
        Ok(simnet)
    }

    pub fn config(&self) -> &SimnetConfig {
        &self.config
    }

    /// Runs `hook` inside the transaction of every payment that settles an
    /// invoice of `node`: what it records is committed with the payment or not
    /// at all. One hook per node; a later one replaces it.
    pub fn on_receive(&self, node: &str, hook: Hook) {
        self.receivers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(node.to_string(), hook);
    }

    fn receiver(&self, node: &str) -> Option<Hook> {
        self.receivers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(node)
            .cloned()
    }

    /// Tells the nodes an event concerns (no nodes: every block watcher).
    fn emit(&self, nodes: Vec<String>, kind: EventKind) {
        if nodes.is_empty() {
            self.bus.publish(Topic::Blocks, kind);
            return;
        }
        for node in nodes {
            self.bus.publish(Topic::Node(node), kind.clone());
        }
    }

    async fn ensure_hub(&self) -> Result<()> {
        let genesis = self.config.hub_genesis;
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    // Two processes starting together on an empty database
                    // create one hub: the second waits here, then finds it.
                    chain::lock_chain(conn).await?;
                    let exists = sqlx::query(
                        "SELECT pubkey FROM nodes WHERE user_id IS NULL AND alias = $1",
                    )
                    .bind(HUB_ALIAS)
                    .fetch_optional(&mut *conn)
                    .await?
                    .is_some();
                    if !exists {
                        let key = NodeKey::generate();
                        insert_node(conn, &key, None, HUB_ALIAS).await?;
                        sqlx::query(
                            "INSERT INTO blocks (height, hash, mined_at) VALUES (0, $1, $2)",
                        )
                        .bind(crate::random_hex(32))
                        .bind(now_ms())
                        .execute(&mut *conn)
                        .await?;
                        chain::mint(conn, genesis, "hub_genesis").await?;
                        chain::credit_confirmed(conn, &key.pubkey_hex(), genesis, "genesis", 0)
                            .await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// The node of one of the server's own services (the exchange), created on
    /// first start, with channels to and from the hub adding up to `liquidity`
    /// each way, open at once. Raising `liquidity` later tops them up: the
    /// service's side is minted (counted in the money supply), the hub's comes
    /// from its wallet.
    pub async fn ensure_service_node(&self, alias: &str, liquidity: Msat) -> Result<Node> {
        let alias_owned = alias.to_string();
        let added = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    // Two processes starting together create one node.
                    chain::lock_chain(conn).await?;
                    let hub: String = sqlx::query(
                        "SELECT pubkey FROM nodes WHERE user_id IS NULL AND alias = $1",
                    )
                    .bind(HUB_ALIAS)
                    .fetch_one(&mut *conn)
                    .await?
                    .try_get("pubkey")?;
                    let found: Option<String> = sqlx::query(
                        "SELECT pubkey FROM nodes WHERE user_id IS NULL AND alias = $1",
                    )
                    .bind(&alias_owned)
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|row| row.try_get("pubkey"))
                    .transpose()?;
                    let node = match found {
                        Some(node) => node,
                        None => {
                            let key = NodeKey::generate();
                            insert_node(conn, &key, None, &alias_owned).await?;
                            key.pubkey_hex()
                        }
                    };
                    let outbound =
                        channels::top_up(conn, &node, &hub, liquidity, Funding::Minted).await?;
                    let inbound =
                        channels::top_up(conn, &hub, &node, liquidity, Funding::Wallet).await?;
                    Ok(outbound.0 + inbound.0)
                })
            })
            .await?;
        if added > 0 {
            self.graph.invalidate();
            tracing::info!(alias, added_msat = added, "service liquidity added");
        }
        let row = sqlx::query(&format!(
            "{NODE_COLUMNS} WHERE user_id IS NULL AND alias = $1"
        ))
        .bind(alias)
        .fetch_one(self.db.pool())
        .await?;
        node_from_row(&row)
    }

    async fn backfill_account_nodes(&self) -> Result<()> {
        let orphans = sqlx::query(
            "SELECT u.id, u.username FROM users u LEFT JOIN nodes n ON n.user_id = u.id \
             WHERE n.pubkey IS NULL",
        )
        .fetch_all(self.db.pool())
        .await?;
        for row in orphans {
            let id: String = row.try_get("id")?;
            let username: String = row.try_get("username")?;
            self.db
                .write(move |conn| {
                    Box::pin(
                        async move { create_account_node(conn, &id, &username).await.map(|_| ()) },
                    )
                })
                .await?;
        }
        Ok(())
    }

    pub async fn hub(&self) -> Result<Node> {
        let row = sqlx::query(&format!(
            "{NODE_COLUMNS} WHERE user_id IS NULL AND alias = $1"
        ))
        .bind(HUB_ALIAS)
        .fetch_one(self.db.pool())
        .await?;
        node_from_row(&row)
    }

    pub async fn node_of_user(&self, user_id: &str) -> Result<Node> {
        let row = sqlx::query(&format!("{NODE_COLUMNS} WHERE user_id = $1"))
            .bind(user_id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::UnknownNode)?;
        node_from_row(&row)
    }

    pub async fn node(&self, pubkey: &str) -> Result<Node> {
        let row = sqlx::query(&format!("{NODE_COLUMNS} WHERE pubkey = $1"))
            .bind(pubkey)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::UnknownNode)?;
        node_from_row(&row)
    }

    /// The pubkey of the account's node.
    pub async fn node_id_of_user(&self, user_id: &str) -> Result<String> {
        if let Some(id) = self.node_ids.get(user_id).await {
            return Ok(id);
        }
        let id: String = sqlx::query("SELECT pubkey FROM nodes WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::UnknownNode)?
            .try_get("pubkey")?;
        self.node_ids.insert(user_id.to_string(), id.clone()).await;
        Ok(id)
    }

    async fn key(&self, pubkey: &str) -> Result<NodeKey> {
        if let Some(key) = self.keys.get(pubkey).await {
            return Ok(key);
        }
        let stored: String = sqlx::query("SELECT secret_key FROM nodes WHERE pubkey = $1")
            .bind(pubkey)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(Error::UnknownNode)?
            .try_get("secret_key")?;
        let key = NodeKey::from_stored(&stored)?;
        self.keys.insert(pubkey.to_string(), key.clone()).await;
        Ok(key)
    }

    /// Issues a signed invoice of `node` and records it, unpaid.
    pub async fn create_invoice(
        &self,
        node: &str,
        amount: Option<Msat>,
        memo: &str,
    ) -> Result<invoice::Issued> {
        self.create_invoice_with_expiry(node, amount, memo, self.config.invoice_expiry)
            .await
    }

    /// [`Simnet::create_invoice`], payable for `expiry`.
    pub async fn create_invoice_with_expiry(
        &self,
        node: &str,
        amount: Option<Msat>,
        memo: &str,
        expiry: Duration,
    ) -> Result<invoice::Issued> {
        if let Some(amount) = amount {
            if amount.0 <= 0 {
                return Err(Error::invalid("amount", "amount must be positive"));
            }
        }
        let key = self.key(node).await?;
        let issued = invoice::issue(&key, amount, memo, expiry)?;
        self.db
            .execute(
                sqlx::query(
                    "INSERT INTO invoices (payment_hash, node, bolt11, amount_msat, memo, \
                     preimage, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(issued.payment_hash.clone())
                .bind(node.to_string())
                .bind(issued.bolt11.clone())
                .bind(amount.map(|a| a.0))
                .bind(memo.to_string())
                .bind(issued.preimage.clone())
                .bind(issued.created_at_ms)
                .bind(issued.expires_at_ms),
            )
            .await?;
        Ok(issued)
    }

    /// Demo mode: funds a new account's wallet (confirmed at once) and opens its
    /// channel to the hub, open after the usual confirmations.
    pub async fn demo_setup(&self, user_id: &str) -> Result<()> {
        let node = self.node_of_user(user_id).await?;
        let hub = self.hub().await?;
        let (pubkey, funds) = (node.pubkey.clone(), self.config.demo_funds);
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    let height = chain::tip(conn).await?;
                    chain::mint(conn, funds, "demo_funds").await?;
                    chain::credit_confirmed(conn, &pubkey, funds, "faucet", height).await?;
                    Ok(())
                })
            })
            .await?;
        self.open_channel(&node.pubkey, &hub.pubkey, self.config.demo_channel)
            .await?;
        Ok(())
    }

    /// The whole network's books: what was minted, and where it is now. The two
    /// are equal at every commit.
    pub async fn audit(&self) -> Result<Audit> {
        let sum = |sql: &'static str| async move {
            let row = sqlx::query(sql).fetch_one(self.db.pool()).await?;
            Ok::<i64, Error>(row.try_get::<Option<i64>, _>(0)?.unwrap_or(0))
        };
        Ok(Audit {
            supply: Msat(sum("SELECT minted_msat FROM money_supply WHERE id = 1").await?),
            // Receipts of deleted accounts' wallets are gone with them; their
            // sum was kept as `retired_msat`.
            minted: Msat(sum("SELECT CAST(SUM(amount_msat) AS BIGINT) FROM chain_txs WHERE kind IN ('genesis', 'faucet')").await?
                + sum("SELECT retired_msat FROM money_supply WHERE id = 1").await?),
            onchain: Msat(sum("SELECT CAST(SUM(onchain_msat) AS BIGINT) FROM nodes").await?),
            unconfirmed: Msat(sum("SELECT CAST(SUM(amount_msat) AS BIGINT) FROM chain_txs WHERE height IS NULL AND amount_msat > 0").await?),
            in_channels: Msat(sum("SELECT CAST(SUM(capacity_msat) AS BIGINT) FROM channels WHERE state <> 'closed'").await?),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audit {
    /// The running count of coins created (`money_supply`).
    pub supply: Msat,
    pub minted: Msat,
    pub onchain: Msat,
    pub unconfirmed: Msat,
    pub in_channels: Msat,
}

impl Audit {
    /// Every coin created is counted once, and is somewhere.
    pub fn balanced(&self) -> bool {
        let held = Msat::checked_sum([self.onchain, self.unconfirmed, self.in_channels]);
        self.supply == self.minted && held == Some(self.minted)
    }
}

const NODE_COLUMNS: &str = "SELECT pubkey, alias, address, user_id, onchain_msat FROM nodes";

fn node_from_row(row: &sqlx::any::AnyRow) -> Result<Node> {
    Ok(Node {
        pubkey: row.try_get("pubkey")?,
        alias: row.try_get("alias")?,
        address: row.try_get("address")?,
        user_id: row.try_get("user_id")?,
        onchain: Msat(row.try_get("onchain_msat")?),
    })
}

async fn insert_node(
    conn: &mut AnyConnection,
    key: &NodeKey,
    user_id: Option<&str>,
    alias: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO nodes (pubkey, user_id, alias, secret_key, address, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(key.pubkey_hex())
    .bind(user_id)
    .bind(alias)
    .bind(key.to_stored())
    .bind(key.address())
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Gives a new account its node (alias: the username) and puts the hub in its
/// address book. Runs inside the sign-up transaction.
pub(crate) async fn create_account_node(
    conn: &mut AnyConnection,
    user_id: &str,
    username: &str,
) -> Result<String> {
    let key = NodeKey::generate();
    insert_node(conn, &key, Some(user_id), username).await?;
    let hub: Option<String> =
        sqlx::query("SELECT pubkey FROM nodes WHERE user_id IS NULL AND alias = $1")
            .bind(HUB_ALIAS)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get("pubkey"))
            .transpose()?;
    if let Some(hub) = hub {
        sqlx::query(
            "INSERT INTO addressbook (user_id, alias, alias_key, pubkey, host, created_at) \
             VALUES ($1, $2, $2, $3, NULL, $4)",
        )
        .bind(user_id)
        .bind(HUB_ALIAS)
        .bind(hub)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    }
    Ok(key.pubkey_hex())
}
