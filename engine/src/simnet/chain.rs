//! The simulated chain: blocks mined on demand or on a timer, on-chain wallets,
//! and the faucet that brings coins into the network.

use sqlx::{AnyConnection, Row};

use super::{channels, EventKind, Simnet};
use crate::{now_ms, Error, Msat, Result, MAX_MONEY};

/// Most a single faucet call hands out: 1 BTC, a hundred times the dashboard's
/// button and enough for any test; more is asked for by calling again. Whatever
/// the calls, the network never holds more than 21 million BTC (see [`mint`]).
pub const FAUCET_MAX: Msat = Msat::from_sat(100_000_000);
/// Most blocks one `mine` call produces.
pub const MINE_MAX: i64 = 1000;

impl Simnet {
    /// The chain's height (remembered for display; see `Simnet::tip`).
    pub async fn tip_height(&self) -> Result<i64> {
        let db = self.db.clone();
        self.tip
            .try_get_with(
                (),
                async move { tip(&mut *db.pool().acquire().await?).await },
            )
            .await
            .map_err(|err| Error::Internal(format!("chain height: {err}")))
    }

    /// Sends `amount` to an address of the network. It counts once mined.
    pub async fn faucet(&self, address: &str, amount: Msat) -> Result<String> {
        if amount.0 <= 0 || !amount.is_whole_sat() || amount > FAUCET_MAX {
            return Err(Error::invalid(
                "sats",
                format!(
                    "sats must be a whole number from 1 to {} (1 BTC a call)",
                    FAUCET_MAX.sat()
                ),
            ));
        }
        let address = address.trim();
        if address.chars().any(char::is_control) || address.len() > 100 {
            return Err(Error::invalid(
                "address",
                "no node of this network has that address",
            ));
        }
        let node: String = sqlx::query("SELECT pubkey FROM nodes WHERE address = $1")
            .bind(address)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(|| Error::invalid("address", "no node of this network has that address"))?
            .try_get("pubkey")?;
        let txid = crate::random_hex(32);
        let tx = txid.clone();
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    mint(conn, amount, "sats").await?;
                    sqlx::query(
                        "INSERT INTO chain_txs (txid, node, amount_msat, kind, height, created_at) \
                         VALUES ($1, $2, $3, 'faucet', NULL, $4)",
                    )
                    .bind(&tx)
                    .bind(&node)
                    .bind(amount.0)
                    .bind(now_ms())
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await?;
        Ok(txid)
    }

    /// Mines `count` blocks, one transaction each: confirms pending receipts and
    /// moves channels along their states. Returns the new tip.
    pub async fn mine(&self, count: i64) -> Result<i64> {
        if !(1..=MINE_MAX).contains(&count) {
            return Err(Error::invalid(
                "blocks",
                format!("blocks must be from 1 to {MINE_MAX}"),
            ));
        }
        let mut height = 0;
        for _ in 0..count {
            let (config, graph) = (self.config.clone(), self.graph.clone());
            let (mined, receipts, changed) = self
                .db
                .write(move |conn| {
                    Box::pin(async move {
                        lock_chain(conn).await?;
                        let height = tip(conn).await? + 1;
                        sqlx::query(
                            "INSERT INTO blocks (height, hash, mined_at) VALUES ($1, $2, $3)",
                        )
                        .bind(height)
                        .bind(crate::random_hex(32))
                        .bind(now_ms())
                        .execute(&mut *conn)
                        .await?;
                        let receipts = confirm_pending(conn, height).await?;
                        let changed = channels::on_block(conn, height, &config).await?;
                        if !changed.is_empty() {
                            graph.invalidate();
                        }
                        Ok((height, receipts, changed))
                    })
                })
                .await?;
            height = mined;

            for (node, txid, amount) in receipts {
                self.emit(
                    vec![node],
                    EventKind::OnchainReceived {
                        txid,
                        amount_msat: amount,
                    },
                );
            }
            for change in changed {
                self.emit(
                    vec![change.opener, change.peer],
                    EventKind::ChannelChanged {
                        channel_point: change.point,
                        state: change.state.as_str().to_string(),
                    },
                );
            }
            self.tip.insert((), height).await;
            self.emit(vec![], EventKind::BlockMined { height });
        }
        Ok(height)
    }

    /// Mines a block every `interval` until the server stops. With several
    /// processes on one PostgreSQL database, only the one holding the miner's
    /// lock mines; another takes over when it goes away.
    pub fn spawn_miner(&self, interval: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let simnet = self.clone();
        tokio::spawn(async move {
            let mut lease = crate::storage::Lease::new(MINER_LOCK, "miner");
            let mut every = tokio::time::interval(interval);
            every.tick().await;
            loop {
                every.tick().await;
                if !lease.held(&simnet.db).await {
                    continue;
                }
                if let Err(err) = simnet.mine(1).await {
                    tracing::warn!(error = %err, "mining a block failed");
                }
            }
        })
    }
}

/// The PostgreSQL advisory locks of the simnet (any fixed numbers, unique to it).
pub(crate) const MINER_LOCK: i64 = 0x616d_7065_7265_0001;
pub(crate) const CHAIN_LOCK: i64 = 0x616d_7065_7265_0002;

/// Serialises block production (and the hub's creation) across processes on
/// PostgreSQL for the rest of the transaction; nothing to do on SQLite, whose
/// writer already runs one transaction at a time.
pub(crate) async fn lock_chain(conn: &mut AnyConnection) -> Result<()> {
    if conn.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CHAIN_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub(crate) async fn tip(conn: &mut AnyConnection) -> Result<i64> {
    let row = sqlx::query("SELECT MAX(height) AS h FROM blocks")
        .fetch_one(conn)
        .await?;
    Ok(row.try_get::<Option<i64>, _>("h")?.unwrap_or(0))
}

/// Counts `amount` of new coins (genesis, faucet, demo funding) in the network's
/// supply, inside the write that creates them. Refused, changing nothing, when
/// the network would hold more than 21 million BTC: the condition is in the SQL,
/// so concurrent mints cannot pass it together, and the column's CHECK refuses
/// any other write past it.
pub(crate) async fn mint(
    conn: &mut AnyConnection,
    amount: Msat,
    field: &'static str,
) -> Result<()> {
    if !amount.is_within_supply() {
        return Err(Error::invalid(field, "amount exceeds 21 million BTC"));
    }
    let counted = sqlx::query(
        "UPDATE money_supply SET minted_msat = minted_msat + $1 \
         WHERE id = 1 AND minted_msat <= $2 - $1",
    )
    .bind(amount.0)
    .bind(MAX_MONEY.0)
    .execute(&mut *conn)
    .await?;
    if counted.rows_affected() != 1 {
        return Err(Error::invalid(
            field,
            "the network already holds nearly 21 million BTC: no more can be minted",
        ));
    }
    Ok(())
}

/// Records a receipt that is already confirmed and credits it.
pub(crate) async fn credit_confirmed(
    conn: &mut AnyConnection,
    node: &str,
    amount: Msat,
    kind: &str,
    height: i64,
) -> Result<String> {
    let txid = crate::random_hex(32);
    sqlx::query(
        "INSERT INTO chain_txs (txid, node, amount_msat, kind, height, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&txid)
    .bind(node)
    .bind(amount.0)
    .bind(kind)
    .bind(height)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE nodes SET onchain_msat = onchain_msat + $1 WHERE pubkey = $2")
        .bind(amount.0)
        .bind(node)
        .execute(&mut *conn)
        .await?;
    Ok(txid)
}

/// Takes `amount` from a node's confirmed funds for a transaction that will be
/// mined in the next block. Refused, changing nothing, when the funds are short.
pub(crate) async fn spend(
    conn: &mut AnyConnection,
    node: &str,
    amount: Msat,
    kind: &str,
) -> Result<String> {
    let taken = sqlx::query(
        "UPDATE nodes SET onchain_msat = onchain_msat - $1 \
         WHERE pubkey = $2 AND onchain_msat >= $1",
    )
    .bind(amount.0)
    .bind(node)
    .execute(&mut *conn)
    .await?;
    if taken.rows_affected() != 1 {
        return Err(Error::InsufficientOnchainFunds);
    }
    let txid = crate::random_hex(32);
    sqlx::query(
        "INSERT INTO chain_txs (txid, node, amount_msat, kind, height, created_at) \
         VALUES ($1, $2, $3, $4, NULL, $5)",
    )
    .bind(&txid)
    .bind(node)
    .bind(-amount.0)
    .bind(kind)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(txid)
}

/// Confirms every pending transaction in block `height`, crediting receipts.
async fn confirm_pending(
    conn: &mut AnyConnection,
    height: i64,
) -> Result<Vec<(String, String, i64)>> {
    let pending = sqlx::query(
        "SELECT id, txid, node, amount_msat FROM chain_txs WHERE height IS NULL ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut receipts = Vec::new();
    for row in pending {
        let id: i64 = row.try_get("id")?;
        let node: String = row.try_get("node")?;
        let amount: i64 = row.try_get("amount_msat")?;
        sqlx::query("UPDATE chain_txs SET height = $1 WHERE id = $2")
            .bind(height)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        if amount > 0 {
            sqlx::query("UPDATE nodes SET onchain_msat = onchain_msat + $1 WHERE pubkey = $2")
                .bind(amount)
                .bind(&node)
                .execute(&mut *conn)
                .await?;
            receipts.push((node, row.try_get("txid")?, amount));
        }
    }
    Ok(receipts)
}
