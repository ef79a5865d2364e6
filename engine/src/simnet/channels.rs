//! Channels between nodes: opened from the opener's on-chain funds, open after
//! enough confirmations, closed cooperatively (one block) or by force (a delay),
//! paying each side its balance on chain. The hub answers a new channel with one
//! of its own back, like a liquidity provider.
//!
//! Anyone may open a channel to any node, so a node's channel list must not be
//! something strangers can pad: a channel has a minimum capacity (LND's default),
//! one opener may have only a few pending channels to one node, and the list shows
//! the channels not yet closed plus the last few closed ones, the older closed
//! ones a page at a time.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::{chain, EventKind, Simnet, SimnetConfig, HUB_ALIAS};
use crate::{cursor, now_ms, Error, Msat, Result};

/// LND's default minimum channel size (`minchansize`): a channel costs its opener
/// at least this much, locked until it closes.
pub const MIN_CAPACITY: Msat = Msat::from_sat(20_000);
pub const MAX_CAPACITY: Msat = Msat::from_sat(10 * 100_000_000);
/// Most channels one opener may have pending to one node at a time (LND allows
/// one per peer by default; two lets a user open a second before the first
/// confirms, and still refuses a flood).
pub const MAX_PENDING_PER_PEER: i64 = 2;
/// Closed channels a node's channel list shows beside the live ones.
pub const RECENT_CLOSED: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelState {
    PendingOpen,
    Open,
    Closing,
    ForceClosing,
    Closed,
}

impl ChannelState {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelState::PendingOpen => "pending_open",
            ChannelState::Open => "open",
            ChannelState::Closing => "closing",
            ChannelState::ForceClosing => "force_closing",
            ChannelState::Closed => "closed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "pending_open" => ChannelState::PendingOpen,
            "open" => ChannelState::Open,
            "closing" => ChannelState::Closing,
            "force_closing" => ChannelState::ForceClosing,
            "closed" => ChannelState::Closed,
            other => return Err(Error::Internal(format!("channel state {other}"))),
        })
    }
}

/// A channel seen from one of its two nodes.
#[derive(Debug, Clone, Serialize)]
pub struct Channel {
    pub point: String,
    pub remote: String,
    pub capacity: Msat,
    pub local: Msat,
    pub remote_balance: Msat,
    pub state: ChannelState,
    /// Blocks until a pending state ends (0 when none).
    pub blocks_left: i64,
    pub initiator: bool,
    /// When it closed (Unix milliseconds), once closed.
    pub closed_at_ms: Option<i64>,
}

impl Channel {
    /// The state as myLightning showed it: `Open`, `Pending (N blocks)`,
    /// `Closing`, `Forced Closing (N blocks)`, `Closed`.
    pub fn display_state(&self) -> String {
        match self.state {
            ChannelState::PendingOpen => format!("Pending ({} blocks)", self.blocks_left),
            ChannelState::Open => "Open".into(),
            ChannelState::Closing => "Closing".into(),
            ChannelState::ForceClosing => format!("Forced Closing ({} blocks)", self.blocks_left),
            ChannelState::Closed => "Closed".into(),
        }
    }
}

/// Closed channels, most recently closed first, and the cursor of the next
/// (older) page when there is one.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelPage {
    pub channels: Vec<Channel>,
    pub next_cursor: Option<String>,
}

/// Where a page of closed channels starts: strictly after this channel, in the
/// order most recently closed first (close time, then channel point, descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedCursor {
    closed_at_ms: i64,
    point: String,
}

impl ClosedCursor {
    /// Reads a cursor a client got from a previous page; empty text is none.
    pub fn parse(text: &str) -> Result<Option<Self>> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        let fields = cursor::decode(text, 2)?;
        let closed_at_ms = fields[0]
            .parse()
            .map_err(|_| Error::invalid("cursor", "cursor is not one this server gave"))?;
        Ok(Some(ClosedCursor {
            closed_at_ms,
            point: fields[1].clone(),
        }))
    }

    pub fn encode(&self) -> String {
        cursor::encode(&[&self.closed_at_ms.to_string(), &self.point])
    }

    fn after(channel: &Channel) -> Option<Self> {
        Some(ClosedCursor {
            closed_at_ms: channel.closed_at_ms?,
            point: channel.point.clone(),
        })
    }
}

/// A channel that changed state in a block.
pub(crate) struct Change {
    pub point: String,
    pub opener: String,
    pub peer: String,
    pub state: ChannelState,
}

impl Simnet {
    /// Opens a channel of `capacity` from `opener` to `peer`, funded from the
    /// opener's confirmed on-chain funds. It is open `open_confirmations` blocks
    /// after the funding is mined.
    pub async fn open_channel(&self, opener: &str, peer: &str, capacity: Msat) -> Result<Channel> {
        if !capacity.is_whole_sat() || capacity < MIN_CAPACITY || capacity > MAX_CAPACITY {
            return Err(Error::invalid(
                "amount",
                format!(
                    "channel capacity must be a whole number of sats from {} to {}",
                    MIN_CAPACITY.sat(),
                    MAX_CAPACITY.sat()
                ),
            ));
        }
        if opener == peer {
            return Err(Error::invalid(
                "remotenode",
                "a node cannot open a channel to itself",
            ));
        }
        let remote = self.node(peer).await?;
        if remote.user_id.is_none() && remote.alias != HUB_ALIAS {
            // A service's node (the exchange) has its channels with the hub
            // only: one opened to it could drain its liquidity for free.
            return Err(Error::invalid(
                "remotenode",
                "this node takes no channels; reach it through the hub",
            ));
        }
        let (config, from, to) = (self.config.clone(), opener.to_string(), peer.to_string());
        let channel = self
            .db
            .write(move |conn| {
                Box::pin(async move { open_in(conn, &from, &to, capacity, &config).await })
            })
            .await?;
        self.emit(
            vec![opener.to_string(), peer.to_string()],
            EventKind::ChannelChanged {
                channel_point: channel.point.clone(),
                state: channel.state.as_str().into(),
            },
        );
        Ok(channel)
    }

    /// Closes an open channel of `node`: cooperatively in the next block, or by
    /// force after `force_close_delay` blocks.
    pub async fn close_channel(&self, node: &str, point: &str, force: bool) -> Result<Channel> {
        if point.chars().any(char::is_control) || point.len() > 200 {
            return Err(Error::ChannelNotFound);
        }
        let (delay, graph) = (self.config.force_close_delay, self.graph.clone());
        let (node_id, point_id) = (node.to_string(), point.trim().to_string());
        let (channel, state) = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    let height = chain::tip(conn).await?;
                    let (state, ready) = if force {
                        (ChannelState::ForceClosing, height + delay)
                    } else {
                        (ChannelState::Closing, height + 1)
                    };
                    let updated = sqlx::query(
                        "UPDATE channels SET state = $1, ready_height = $2 \
                         WHERE point = $3 AND (opener = $4 OR peer = $4) AND state = 'open'",
                    )
                    .bind(state.as_str())
                    .bind(ready)
                    .bind(&point_id)
                    .bind(&node_id)
                    .execute(&mut *conn)
                    .await?;
                    if updated.rows_affected() != 1 {
                        return Err(Error::ChannelNotFound);
                    }
                    graph.invalidate();
                    Ok((channel_of(conn, &node_id, &point_id, height).await?, state))
                })
            })
            .await?;
        self.emit(
            vec![node.to_string(), channel.remote.clone()],
            EventKind::ChannelChanged {
                channel_point: channel.point.clone(),
                state: state.as_str().into(),
            },
        );
        Ok(channel)
    }

    /// The channels of `node` not yet closed, newest first.
    pub async fn live_channels(&self, node: &str) -> Result<Vec<Channel>> {
        let mut conn = self.db.pool().acquire().await?;
        let height = chain::tip(&mut conn).await?;
        // One part per side, each read from its partial index.
        let rows = sqlx::query(&format!(
            "{CHANNEL_COLUMNS} WHERE opener = $1 AND state <> 'closed' UNION ALL \
             {CHANNEL_COLUMNS} WHERE peer = $1 AND state <> 'closed' \
             ORDER BY created_at DESC, point"
        ))
        .bind(node)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| channel_from_row(r, node, height))
            .collect()
    }

    /// The closed channels of `node`, most recently closed first, starting after
    /// `after`, at most `limit`.
    pub async fn closed_channels(
        &self,
        node: &str,
        after: Option<&ClosedCursor>,
        limit: usize,
    ) -> Result<ChannelPage> {
        if limit == 0 {
            return Ok(ChannelPage {
                channels: Vec::new(),
                next_cursor: None,
            });
        }
        // Strictly after the cursor in (closed_at, point) descending order.
        let after_sql = if after.is_some() {
            " AND closed_at <= $3 AND (closed_at < $3 OR point < $4)"
        } else {
            ""
        };
        let part = |side: &str, name: &str| {
            format!(
                "SELECT * FROM ({CHANNEL_COLUMNS} WHERE {side} = $1 AND state = 'closed'{after_sql} \
                 ORDER BY closed_at DESC, point DESC LIMIT $2) AS {name}"
            )
        };
        let sql = format!(
            "{} UNION ALL {} ORDER BY closed_at DESC, point DESC LIMIT $2",
            part("opener", "opened"),
            part("peer", "accepted")
        );
        // One row more than asked says whether an older page exists.
        let mut query = sqlx::query(&sql).bind(node).bind(limit as i64 + 1);
        if let Some(after) = after {
            query = query.bind(after.closed_at_ms).bind(&after.point);
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        let mut channels = rows
            .iter()
            .map(|r| channel_from_row(r, node, 0))
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = if channels.len() > limit {
            channels.truncate(limit);
            channels
                .last()
                .and_then(ClosedCursor::after)
                .map(|c| c.encode())
        } else {
            None
        };
        Ok(ChannelPage {
            channels,
            next_cursor,
        })
    }
}

const CHANNEL_COLUMNS: &str = "SELECT point, opener, peer, capacity_msat, opener_msat, \
     peer_msat, state, ready_height, created_at, closed_at FROM channels";

fn channel_from_row(row: &sqlx::any::AnyRow, node: &str, height: i64) -> Result<Channel> {
    let opener: String = row.try_get("opener")?;
    let peer: String = row.try_get("peer")?;
    let initiator = opener == node;
    let (local, remote_balance) = {
        let o = Msat(row.try_get("opener_msat")?);
        let p = Msat(row.try_get("peer_msat")?);
        if initiator {
            (o, p)
        } else {
            (p, o)
        }
    };
    let ready: Option<i64> = row.try_get("ready_height")?;
    Ok(Channel {
        point: row.try_get("point")?,
        remote: if initiator { peer } else { opener },
        capacity: Msat(row.try_get("capacity_msat")?),
        local,
        remote_balance,
        state: ChannelState::parse(&row.try_get::<String, _>("state")?)?,
        blocks_left: ready.map_or(0, |r| (r - height).max(0)),
        initiator,
        closed_at_ms: row.try_get("closed_at")?,
    })
}

async fn channel_of(
    conn: &mut AnyConnection,
    node: &str,
    point: &str,
    height: i64,
) -> Result<Channel> {
    let row = sqlx::query(&format!("{CHANNEL_COLUMNS} WHERE point = $1"))
        .bind(point)
        .fetch_one(&mut *conn)
        .await?;
    channel_from_row(&row, node, height)
}

async fn open_in(
    conn: &mut AnyConnection,
    opener: &str,
    peer: &str,
    capacity: Msat,
    config: &SimnetConfig,
) -> Result<Channel> {
    let txid = chain::spend(conn, opener, capacity, "channel_open").await?;
    // Counted after the spend: on PostgreSQL the spend locks the opener's row, so
    // a concurrent opening by the same opener (another process) waits for this
    // one and then counts it. A refusal undoes the spend.
    let pending: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM channels \
         WHERE opener = $1 AND peer = $2 AND state = 'pending_open'",
    )
    .bind(opener)
    .bind(peer)
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    if pending >= MAX_PENDING_PER_PEER {
        return Err(Error::PendingChannelLimit {
            max: MAX_PENDING_PER_PEER,
        });
    }
    let height = chain::tip(conn).await?;
    let point = format!("{txid}:0");
    sqlx::query(
        "INSERT INTO channels (point, opener, peer, capacity_msat, opener_msat, peer_msat, \
         state, ready_height, created_at) VALUES ($1, $2, $3, $4, $4, 0, 'pending_open', $5, $6)",
    )
    .bind(&point)
    .bind(opener)
    .bind(peer)
    .bind(capacity.0)
    .bind(height + config.open_confirmations)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    channel_of(conn, opener, &point, height).await
}

/// Where a [`top_up`] takes its funds from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Funding {
    /// New coins, counted in the money supply: a service's own liquidity.
    Minted,
    /// The opener's confirmed on-chain funds.
    Wallet,
}

/// Opens channels from `opener` to `peer` until those not closed add up to
/// `capacity` at least, open at once (a service's liquidity at start, not a
/// channel anyone waits for). Each is at most [`MAX_CAPACITY`]; a remainder under
/// [`MIN_CAPACITY`] rounds up to it. Answers how much was added.
pub(crate) async fn top_up(
    conn: &mut AnyConnection,
    opener: &str,
    peer: &str,
    capacity: Msat,
    funding: Funding,
) -> Result<Msat> {
    let existing: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(capacity_msat), 0) AS BIGINT) AS total FROM channels \
         WHERE opener = $1 AND peer = $2 AND state <> 'closed'",
    )
    .bind(opener)
    .bind(peer)
    .fetch_one(&mut *conn)
    .await?
    .try_get("total")?;
    let mut sizes = Vec::new();
    let mut left = capacity.0.saturating_sub(existing);
    while left > 0 {
        let size = left.clamp(MIN_CAPACITY.0, MAX_CAPACITY.0);
        sizes.push(Msat(size));
        left -= size;
    }
    let added = Msat::checked_sum(sizes.iter().copied())
        .ok_or_else(|| Error::invalid("liquidity", "liquidity exceeds 21 million BTC"))?;
    if added.0 == 0 {
        return Ok(added);
    }
    if funding == Funding::Minted {
        let height = chain::tip(conn).await?;
        chain::mint(conn, added, "liquidity").await?;
        chain::credit_confirmed(conn, opener, added, "faucet", height).await?;
    }
    for size in sizes {
        let txid = chain::spend(conn, opener, size, "channel_open").await?;
        sqlx::query(
            "INSERT INTO channels (point, opener, peer, capacity_msat, opener_msat, peer_msat, \
             state, ready_height, created_at) VALUES ($1, $2, $3, $4, $4, 0, 'open', NULL, $5)",
        )
        .bind(format!("{txid}:0"))
        .bind(opener)
        .bind(peer)
        .bind(size.0)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    }
    Ok(added)
}

/// Moves channels along in block `height`: pending ones open, closing ones pay
/// out. When a node's channel to the hub opens, the hub opens one back.
pub(crate) async fn on_block(
    conn: &mut AnyConnection,
    height: i64,
    config: &SimnetConfig,
) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    let due = sqlx::query(
        "SELECT point, opener, peer, opener_msat, peer_msat, state FROM channels \
         WHERE state IN ('pending_open', 'closing', 'force_closing') AND ready_height <= $1 \
         ORDER BY point",
    )
    .bind(height)
    .fetch_all(&mut *conn)
    .await?;
    let hub: String = sqlx::query("SELECT pubkey FROM nodes WHERE user_id IS NULL AND alias = $1")
        .bind(HUB_ALIAS)
        .fetch_one(&mut *conn)
        .await?
        .try_get("pubkey")?;
    for row in due {
        let point: String = row.try_get("point")?;
        let opener: String = row.try_get("opener")?;
        let peer: String = row.try_get("peer")?;
        let state = ChannelState::parse(&row.try_get::<String, _>("state")?)?;
        let next = if state == ChannelState::PendingOpen {
            ChannelState::Open
        } else {
            ChannelState::Closed
        };
        sqlx::query(
            "UPDATE channels SET state = $1, ready_height = NULL, closed_at = $2 WHERE point = $3",
        )
        .bind(next.as_str())
        .bind((next == ChannelState::Closed).then(now_ms))
        .bind(&point)
        .execute(&mut *conn)
        .await?;
        if next == ChannelState::Closed {
            for (node, column) in [(&opener, "opener_msat"), (&peer, "peer_msat")] {
                let amount = Msat(row.try_get(column)?);
                if amount.0 > 0 {
                    chain::credit_confirmed(conn, node, amount, "channel_close", height).await?;
                }
            }
        }
        if next == ChannelState::Open && peer == hub && opener != hub {
            if let Some(change) = hub_opens_back(conn, &hub, &opener, &row, config).await? {
                changes.push(change);
            }
        }
        changes.push(Change {
            point,
            opener,
            peer,
            state: next,
        });
    }
    Ok(changes)
}

/// The hub's answer to a new channel: one of the same (or the configured)
/// capacity back, unless it already has one to that node or lacks the funds.
async fn hub_opens_back(
    conn: &mut AnyConnection,
    hub: &str,
    node: &str,
    row: &sqlx::any::AnyRow,
    config: &SimnetConfig,
) -> Result<Option<Change>> {
    let existing = sqlx::query(
        "SELECT point FROM channels WHERE opener = $1 AND peer = $2 AND state <> 'closed'",
    )
    .bind(hub)
    .bind(node)
    .fetch_optional(&mut *conn)
    .await?;
    if existing.is_some() {
        return Ok(None);
    }
    let mirrored = Msat(row.try_get("opener_msat")?).checked_add(Msat(row.try_get("peer_msat")?));
    let capacity = match config.hub_channel_capacity.or(mirrored) {
        Some(capacity) if (MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) => capacity,
        // A capacity no channel may have must not stop the block.
        _ => {
            tracing::warn!("the hub's channel back would have a capacity out of bounds");
            return Ok(None);
        }
    };
    match open_in(conn, hub, node, capacity, config).await {
        Ok(channel) => Ok(Some(Change {
            point: channel.point,
            opener: hub.to_string(),
            peer: node.to_string(),
            state: ChannelState::PendingOpen,
        })),
        Err(Error::InsufficientOnchainFunds) => {
            tracing::warn!("the hub lacks on-chain funds to open a channel back");
            Ok(None)
        }
        Err(err) => Err(err),
    }
}
