//! The wallet as an account sees it: its node's balances, channels, history and
//! address book, and payments by invoice or by alias. It turns an account into
//! its node and leaves the network's rules to the simnet.

use serde::Serialize;
use sqlx::Row;

use crate::simnet::{
    self, invoice, Channel, ChannelPage, ChannelState, ClosedCursor, Node, PayRequest, Payment,
    Simnet, RECENT_CLOSED,
};
use crate::{cursor, now_ms, Backend, Database, Error, Msat, Result, User};

/// The node and its balances: what the dashboard shows.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub node: Node,
    /// Confirmed on-chain plus the local side of every channel not yet closed.
    pub total: Msat,
    /// The local side of open channels: what can be paid now.
    pub lightning: Msat,
    pub blockheight: i64,
}

impl Summary {
    /// Sums the balances, checked: the database bounds each one, so an overflow
    /// means the books are broken and is an error, never a wrapped figure.
    fn of(node: Node, channels: &[Channel], blockheight: i64) -> Result<Self> {
        let local = |wanted: fn(ChannelState) -> bool| {
            Msat::checked_sum(channels.iter().filter(|c| wanted(c.state)).map(|c| c.local))
        };
        let in_channels = local(|state| state != ChannelState::Closed);
        let lightning = local(|state| state == ChannelState::Open);
        let overflow = || Error::Internal(format!("balance overflow of node {}", node.pubkey));
        Ok(Summary {
            total: in_channels
                .and_then(|c| node.onchain.checked_add(c))
                .ok_or_else(overflow)?,
            lightning: lightning.ok_or_else(overflow)?,
            blockheight,
            node,
        })
    }
}

/// Everything `getalldata` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub summary: Summary,
    /// The channels not yet closed, then the [`RECENT_CLOSED`] last closed.
    pub channels: Vec<Channel>,
    /// Where the older closed channels start, when there are any.
    pub older_closed_cursor: Option<String>,
    pub transactions: Vec<Transaction>,
    pub addressbook: Vec<Contact>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Transaction {
    /// `sent`, `received`, `onchain_received`, `onchain_sent`.
    pub kind: &'static str,
    pub amount: Msat,
    pub fee: Msat,
    pub memo: String,
    pub time_ms: i64,
    /// `succeeded`, or `confirmed` / `unconfirmed` on chain.
    pub status: &'static str,
    /// Payment hash or txid.
    pub reference: String,
}

impl Transaction {
    /// The cursor of the page that starts after this transaction.
    pub fn cursor(&self) -> HistoryCursor {
        HistoryCursor {
            time_ms: self.time_ms,
            source: Source::of_kind(self.kind),
            reference: self.reference.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    pub alias: String,
    pub pubkey: String,
    pub host: Option<String>,
}

/// Most history entries `getalldata` returns (the newest).
const HISTORY_LIMIT: usize = 200;

/// Which transactions a history view shows. Empty fields select everything.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    /// `sent`, `received` or `onchain` (either direction on chain).
    pub kind: Option<String>,
    /// Unix milliseconds, inclusive.
    pub from_ms: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub to_ms: Option<i64>,
    /// Matched against the memo, ignoring the case of ASCII letters.
    pub search: Option<String>,
}

impl HistoryFilter {
    /// Reads a filter from query text: `kind` as above, `from` and `to` as
    /// `YYYY-MM-DD` days in UTC (both included), `search` as given. Empty values
    /// select everything.
    pub fn parse(kind: &str, from: &str, to: &str, search: &str) -> Result<Self> {
        let kind = kind.trim();
        if !["", "sent", "received", "onchain"].contains(&kind) {
            return Err(Error::invalid(
                "type",
                "type must be sent, received or onchain",
            ));
        }
        let day = |field: &'static str, text: &str| -> Result<Option<i64>> {
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            day_start_ms(text).map(Some).ok_or_else(|| {
                Error::invalid(field, format!("{field} must be a date like 2026-01-31"))
            })
        };
        const DAY_MS: i64 = 86_400_000;
        let from_ms = day("from", from)?;
        let to_ms = day("to", to)?.map(|start| start + DAY_MS);
        if let (Some(from), Some(to)) = (from_ms, to_ms) {
            if from >= to {
                return Err(Error::invalid("to", "to must not be before from"));
            }
        }
        if search.chars().count() > 256 || search.chars().any(char::is_control) {
            return Err(Error::invalid(
                "q",
                "search must be at most 256 plain characters",
            ));
        }
        Ok(HistoryFilter {
            kind: (!kind.is_empty()).then(|| kind.to_string()),
            from_ms,
            to_ms,
            search: Some(search.to_string()).filter(|s| !s.trim().is_empty()),
        })
    }

    fn wants(&self, kind: &str) -> bool {
        match self.kind.as_deref() {
            None | Some("") => true,
            Some(wanted) => kind == wanted,
        }
    }

    /// The LIKE pattern of the search: ASCII letters lower-cased (the memo is
    /// folded the same way in SQL), `\`, `%` and `_` matched literally.
    fn like_pattern(&self) -> Option<String> {
        let search = self.search.as_deref()?.trim();
        let mut pattern = String::from("%");
        for c in search.chars() {
            if matches!(c, '\\' | '%' | '_') {
                pattern.push('\\');
            }
            pattern.push(c.to_ascii_lowercase());
        }
        pattern.push('%');
        Some(pattern)
    }
}

/// One page of history, newest first, and the cursor of the next (older) page
/// when more transactions match.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPage {
    pub transactions: Vec<Transaction>,
    pub next_cursor: Option<String>,
}

/// The table a transaction comes from. History is ordered by time, then by
/// source name, then by reference, all descending: a total order, so a cursor
/// (the last row's key) never skips or repeats a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    // Declared in the order of their names, which is how SQL sorts them.
    Onchain,
    Received,
    Sent,
}

impl Source {
    const ALL: [Source; 3] = [Source::Sent, Source::Received, Source::Onchain];

    fn name(self) -> &'static str {
        match self {
            Source::Onchain => "onchain",
            Source::Received => "received",
            Source::Sent => "sent",
        }
    }

    fn of_kind(kind: &str) -> Self {
        match kind {
            "sent" => Source::Sent,
            "received" => Source::Received,
            _ => Source::Onchain,
        }
    }

    /// Its rows as the history reads them: `kind`, `reference`, `amount`, `fee`,
    /// `memo`, `at`, `confirmed`; then the table, and the columns of its index
    /// (time and reference), which the filters and the order use.
    fn select(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Source::Sent => (
                "SELECT 'sent' AS kind, payment_hash AS reference, amount_msat AS amount, \
                 fee_msat AS fee, memo, created_at AS at, CAST(1 AS BIGINT) AS confirmed \
                 FROM payments WHERE node = $1",
                "created_at",
                "payment_hash",
            ),
            Source::Received => (
                "SELECT 'received' AS kind, payment_hash AS reference, received_msat AS amount, \
                 CAST(0 AS BIGINT) AS fee, memo, settled_at AS at, CAST(1 AS BIGINT) AS confirmed \
                 FROM invoices WHERE node = $1 AND settled_at IS NOT NULL",
                "settled_at",
                "payment_hash",
            ),
            // On chain, the memo is what moved the coins (faucet, channel open...).
            Source::Onchain => (
                "SELECT 'onchain' AS kind, txid AS reference, amount_msat AS amount, \
                 CAST(0 AS BIGINT) AS fee, REPLACE(kind, '_', ' ') AS memo, created_at AS at, \
                 CAST(CASE WHEN height IS NULL THEN 0 ELSE 1 END AS BIGINT) AS confirmed \
                 FROM chain_txs WHERE node = $1",
                "created_at",
                "txid",
            ),
        }
    }

    /// The memo as the search sees it (the same expression the select shows).
    fn memo(self) -> &'static str {
        match self {
            Source::Onchain => "REPLACE(kind, '_', ' ')",
            _ => "memo",
        }
    }
}

/// Where a history page starts: strictly after this transaction, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCursor {
    time_ms: i64,
    source: Source,
    reference: String,
}

impl HistoryCursor {
    /// Reads a cursor a client got from a previous page; empty text is none.
    pub fn parse(text: &str) -> Result<Option<Self>> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        let refused = || Error::invalid("cursor", "cursor is not one this server gave");
        let fields = cursor::decode(text, 3)?;
        let time_ms = fields[0].parse().map_err(|_| refused())?;
        let source = Source::ALL
            .into_iter()
            .find(|s| s.name() == fields[1])
            .ok_or_else(refused)?;
        Ok(Some(HistoryCursor {
            time_ms,
            source,
            reference: fields[2].clone(),
        }))
    }

    pub fn encode(&self) -> String {
        cursor::encode(&[
            &self.time_ms.to_string(),
            self.source.name(),
            &self.reference,
        ])
    }
}

/// A history query's SQL and what it binds, in placeholder order.
struct HistoryQuery {
    sql: String,
    binds: Vec<Bind>,
}

enum Bind {
    Int(i64),
    Text(String),
}

impl HistoryQuery {
    /// Binds `value` and answers its placeholder (`$1` is the node).
    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len() + 1)
    }

    /// Each source wanted reads at most `rows` rows from its own index (time and
    /// reference descending, filtered, after the cursor); the union of those is
    /// sorted once more and cut to `rows`. The work is bounded by the page, not
    /// by the account's history.
    fn build(
        backend: Backend,
        filter: &HistoryFilter,
        after: Option<&HistoryCursor>,
        rows: i64,
    ) -> Self {
        let mut query = HistoryQuery {
            sql: String::new(),
            binds: Vec::new(),
        };
        let limit = query.bind(Bind::Int(rows));
        let from = filter.from_ms.map(|ms| query.bind(Bind::Int(ms)));
        let to = filter.to_ms.map(|ms| query.bind(Bind::Int(ms)));
        let search = filter
            .like_pattern()
            .map(|pattern| query.bind(Bind::Text(pattern)));
        let after = after.map(|cursor| {
            let time = query.bind(Bind::Int(cursor.time_ms));
            let reference = query.bind(Bind::Text(cursor.reference.clone()));
            (cursor.source, time, reference)
        });
        let mut parts = Vec::new();
        for source in Source::ALL {
            if !filter.wants(source.name()) {
                continue;
            }
            let (select, at, reference) = source.select();
            let mut part = format!("SELECT * FROM ({select}");
            if let Some(from) = &from {
                part += &format!(" AND {at} >= {from}");
            }
            if let Some(to) = &to {
                part += &format!(" AND {at} < {to}");
            }
            if let Some(pattern) = &search {
                // Only ASCII letters are folded, on both backends alike: SQLite's
                // LOWER folds nothing else, and PostgreSQL's folds nothing else
                // under the C collation.
                let memo = match backend {
                    Backend::Sqlite => format!("LOWER({})", source.memo()),
                    Backend::Postgres => format!("LOWER(({}) COLLATE \"C\")", source.memo()),
                };
                part += &format!(" AND {memo} LIKE {pattern} ESCAPE '\\'");
            }
            if let Some((cursor_source, time, cursor_reference)) = &after {
                // Strictly after (time, source, reference) in descending order.
                part += &match source.cmp(cursor_source) {
                    std::cmp::Ordering::Less => format!(" AND {at} <= {time}"),
                    std::cmp::Ordering::Greater => format!(" AND {at} < {time}"),
                    std::cmp::Ordering::Equal => format!(
                        " AND {at} <= {time} AND ({at} < {time} OR {reference} < {cursor_reference})"
                    ),
                };
            }
            part += &format!(
                " ORDER BY {at} DESC, {reference} DESC LIMIT {limit}) AS {}_part",
                source.name()
            );
            parts.push(part);
        }
        query.sql = format!(
            "{} ORDER BY at DESC, kind DESC, reference DESC LIMIT {limit}",
            parts.join(" UNION ALL ")
        );
        query
    }
}

/// The first millisecond of a `YYYY-MM-DD` day in UTC (proleptic Gregorian).
pub(crate) fn day_start_ms(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month[(m - 1) as usize] {
        return None;
    }
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400_000)
}

#[derive(Clone)]
pub struct Wallet {
    db: Database,
    simnet: Simnet,
}

impl Wallet {
    pub fn new(db: Database, simnet: Simnet) -> Self {
        Wallet { db, simnet }
    }

    pub async fn node(&self, user: &User) -> Result<Node> {
        self.simnet.node_of_user(&user.id.0).await
    }

    /// The pubkey of the account's node (cached: it never changes).
    pub async fn node_id(&self, user: &User) -> Result<String> {
        self.simnet.node_id_of_user(&user.id.0).await
    }

    pub async fn summary(&self, user: &User) -> Result<Summary> {
        let node = self.node(user).await?;
        let (channels, blockheight) = tokio::try_join!(
            self.simnet.live_channels(&node.pubkey),
            self.simnet.tip_height()
        )?;
        Summary::of(node, &channels, blockheight)
    }

    pub async fn overview(&self, user: &User) -> Result<Overview> {
        let node = self.node(user).await?;
        // Independent reads, each on its own pooled connection.
        let everything = HistoryFilter::default();
        let (mut channels, closed, blockheight, history, addressbook) = tokio::try_join!(
            self.simnet.live_channels(&node.pubkey),
            self.simnet
                .closed_channels(&node.pubkey, None, RECENT_CLOSED),
            self.simnet.tip_height(),
            self.history_of_node(&node.pubkey, &everything, None, HISTORY_LIMIT),
            self.contacts(user),
        )?;
        let summary = Summary::of(node, &channels, blockheight)?;
        channels.extend(closed.channels);
        Ok(Overview {
            summary,
            channels,
            older_closed_cursor: closed.next_cursor,
            transactions: history.transactions,
            addressbook,
        })
    }

    /// The closed channels of the account's node, most recently closed first,
    /// a page at a time.
    pub async fn closed_channels(
        &self,
        user: &User,
        after: Option<&ClosedCursor>,
        limit: usize,
    ) -> Result<ChannelPage> {
        let node = self.node_id(user).await?;
        self.simnet.closed_channels(&node, after, limit).await
    }

    /// The account's transactions that pass `filter`, newest first, starting
    /// after `after`, at most `limit`.
    pub async fn history(
        &self,
        user: &User,
        filter: &HistoryFilter,
        after: Option<&HistoryCursor>,
        limit: usize,
    ) -> Result<HistoryPage> {
        let node = self.node_id(user).await?;
        self.history_of_node(&node, filter, after, limit).await
    }

    async fn history_of_node(
        &self,
        node: &str,
        filter: &HistoryFilter,
        after: Option<&HistoryCursor>,
        limit: usize,
    ) -> Result<HistoryPage> {
        if limit == 0 {
            return Ok(HistoryPage {
                transactions: Vec::new(),
                next_cursor: None,
            });
        }
        // One row more than asked says whether an older page exists.
        let query = HistoryQuery::build(self.db.backend(), filter, after, limit as i64 + 1);
        let mut sql = sqlx::query(&query.sql).bind(node);
        for value in query.binds {
            sql = match value {
                Bind::Int(n) => sql.bind(n),
                Bind::Text(text) => sql.bind(text),
            };
        }
        let mut transactions = Vec::new();
        for r in sql.fetch_all(self.db.pool()).await? {
            let kind: String = r.try_get("kind")?;
            let amount: i64 = r.try_get("amount")?;
            let confirmed = r.try_get::<i64, _>("confirmed")? == 1;
            let (kind, status) = match kind.as_str() {
                "sent" => ("sent", "succeeded"),
                "received" => ("received", "succeeded"),
                _ => (
                    if amount >= 0 {
                        "onchain_received"
                    } else {
                        "onchain_sent"
                    },
                    if confirmed {
                        "confirmed"
                    } else {
                        "unconfirmed"
                    },
                ),
            };
            transactions.push(Transaction {
                kind,
                amount: Msat(amount.abs()),
                fee: Msat(r.try_get("fee")?),
                memo: r.try_get("memo")?,
                time_ms: r.try_get("at")?,
                status,
                reference: r.try_get("reference")?,
            });
        }
        let next_cursor = if transactions.len() > limit {
            transactions.truncate(limit);
            transactions.last().map(|t| t.cursor().encode())
        } else {
            None
        };
        Ok(HistoryPage {
            transactions,
            next_cursor,
        })
    }

    pub async fn contacts(&self, user: &User) -> Result<Vec<Contact>> {
        let rows = sqlx::query(
            "SELECT alias, pubkey, host FROM addressbook WHERE user_id = $1 ORDER BY alias_key",
        )
        .bind(&user.id.0)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Contact {
                    alias: r.try_get("alias")?,
                    pubkey: r.try_get("pubkey")?,
                    host: r.try_get("host")?,
                })
            })
            .collect()
    }

    /// Adds a payee under `alias`. Saving the same payee again under its alias is
    /// fine; another payee under a taken alias is refused.
    pub async fn add_contact(
        &self,
        user: &User,
        alias: &str,
        pubkey: &str,
        host: Option<&str>,
    ) -> Result<Contact> {
        let alias = check_alias(alias)?;
        let pubkey = simnet::parse_node_id(pubkey)?;
        let host = host.map(str::trim).filter(|h| !h.is_empty());
        if host.is_some_and(|h| h.len() > 255 || h.chars().any(char::is_control)) {
            return Err(Error::invalid(
                "host",
                "host must be at most 255 plain characters",
            ));
        }
        let inserted = self
            .db
            .execute(
                sqlx::query(
                    "INSERT INTO addressbook (user_id, alias, alias_key, pubkey, host, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, alias_key) DO NOTHING",
                )
                .bind(user.id.0.clone())
                .bind(alias.clone())
                .bind(alias.to_lowercase())
                .bind(pubkey.clone())
                .bind(host.map(str::to_string))
                .bind(now_ms()),
            )
            .await?;
        if inserted == 0 {
            let existing = self.contact(user, &alias).await?;
            if existing.pubkey != pubkey {
                return Err(Error::invalid(
                    "alias",
                    "that alias already names another payee",
                ));
            }
        }
        self.contact(user, &alias).await
    }

    pub async fn remove_contact(&self, user: &User, alias: &str) -> Result<()> {
        if alias.chars().any(char::is_control) {
            return Err(Error::UnknownAlias);
        }
        let removed = self
            .db
            .execute(
                sqlx::query("DELETE FROM addressbook WHERE user_id = $1 AND alias_key = $2")
                    .bind(user.id.0.clone())
                    .bind(alias.trim().to_lowercase()),
            )
            .await?;
        if removed == 0 {
            return Err(Error::UnknownAlias);
        }
        Ok(())
    }

    async fn contact(&self, user: &User, alias: &str) -> Result<Contact> {
        // PostgreSQL refuses NUL in text; no alias holds a control character.
        if alias.chars().any(char::is_control) {
            return Err(Error::UnknownAlias);
        }
        let row = sqlx::query(
            "SELECT alias, pubkey, host FROM addressbook WHERE user_id = $1 AND alias_key = $2",
        )
        .bind(&user.id.0)
        .bind(alias.trim().to_lowercase())
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(Error::UnknownAlias)?;
        Ok(Contact {
            alias: row.try_get("alias")?,
            pubkey: row.try_get("pubkey")?,
            host: row.try_get("host")?,
        })
    }

    pub async fn create_invoice(
        &self,
        user: &User,
        amount: Option<Msat>,
        memo: &str,
    ) -> Result<invoice::Issued> {
        let node = self.node_id(user).await?;
        self.simnet.create_invoice(&node, amount, memo).await
    }

    /// Pays an invoice; with `alias`, saves its payee in the address book. The
    /// alias is checked before paying, so a bad alias pays nothing.
    pub async fn send(
        &self,
        user: &User,
        invoice_text: &str,
        amount: Option<Msat>,
        alias: Option<&str>,
        fee_limit: Option<Msat>,
    ) -> Result<Payment> {
        let alias = alias.map(str::trim).filter(|a| !a.is_empty());
        let decoded = invoice::decode(invoice_text)?;
        if let Some(alias) = alias {
            check_alias(alias)?;
            if let Ok(existing) = self.contact(user, alias).await {
                if existing.pubkey != decoded.payee {
                    return Err(Error::invalid(
                        "alias",
                        "that alias already names another payee",
                    ));
                }
            }
        }
        let payer = self.node_id(user).await?;
        let request = PayRequest {
            payer,
            invoice: invoice_text.to_string(),
            amount,
            fee_limit,
            within: None,
        };
        let payment = self.simnet.pay_decoded(&request, &decoded).await?;
        if let Some(alias) = alias {
            // The money has moved: report the payment even if saving the alias
            // loses a race, rather than an error that would invite paying again.
            // Saved on a task of its own, so a caller that goes away still gets it.
            let host = invoice_text
                .trim()
                .split_once('@')
                .map(|(_, host)| host.to_string());
            let (wallet, user, alias, payee) = (
                self.clone(),
                user.clone(),
                alias.to_string(),
                payment.destination.clone(),
            );
            let saved = tokio::spawn(async move {
                wallet
                    .add_contact(&user, &alias, &payee, host.as_deref())
                    .await
            })
            .await;
            if !matches!(saved, Ok(Ok(_))) {
                tracing::warn!("saving the payee's alias failed");
            }
        }
        Ok(payment)
    }

    /// QuickPay: pays the address-book entry `alias` with a fresh invoice from
    /// its node.
    pub async fn quickpay(
        &self,
        user: &User,
        alias: &str,
        amount: Msat,
        memo: &str,
        fee_limit: Option<Msat>,
    ) -> Result<Payment> {
        if amount.0 <= 0 {
            return Err(Error::invalid("amount", "amount must be positive"));
        }
        invoice::check_memo(memo)?;
        let contact = self.contact(user, alias).await?;
        let payee = match self.simnet.node(&contact.pubkey).await {
            Ok(node) => node,
            Err(Error::UnknownNode) => return Err(Error::NoRoute),
            Err(err) => return Err(err),
        };
        let issued = self
            .simnet
            .create_invoice(&payee.pubkey, Some(amount), memo)
            .await?;
        let payer = self.node_id(user).await?;
        self.simnet
            .pay(PayRequest {
                payer,
                invoice: issued.bolt11,
                amount: None,
                fee_limit,
                within: None,
            })
            .await
    }
}

/// An address-book alias: 1 to 32 letters, digits, spaces, `-`, `_` or `.`.
fn check_alias(alias: &str) -> Result<String> {
    let alias = alias.trim();
    let len = alias.chars().count();
    if len == 0 || len > 32 {
        return Err(Error::invalid("alias", "alias must be 1 to 32 characters"));
    }
    if !alias
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'))
    {
        return Err(Error::invalid(
            "alias",
            "alias may contain only letters, digits, spaces, '-', '_' and '.'",
        ));
    }
    Ok(alias.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_read_as_utc_midnight() {
        assert_eq!(day_start_ms("1970-01-01"), Some(0));
        assert_eq!(day_start_ms("2026-11-22"), Some(1_795_305_600_000));
        assert_eq!(day_start_ms("2024-02-29"), Some(1_709_164_800_000));
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-00-10",
            "26-01-01",
            "2026-1-1",
            "x",
        ] {
            assert_eq!(day_start_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_history_filter_covers_whole_days_and_refuses_nonsense() {
        let filter = HistoryFilter::parse("sent", "2026-11-01", "2026-11-01", " tea ").unwrap();
        assert_eq!(filter.kind.as_deref(), Some("sent"));
        assert_eq!(filter.to_ms.unwrap() - filter.from_ms.unwrap(), 86_400_000);
        assert!(filter.wants("sent") && !filter.wants("received"));
        let everything = HistoryFilter::parse("", "", "", "").unwrap();
        assert!(everything.wants("onchain") && everything.search.is_none());
        for (kind, from, to, field) in [
            ("gift", "", "", "type"),
            ("", "yesterday", "", "from"),
            ("", "", "2026-02-30", "to"),
            ("", "2026-11-02", "2026-11-01", "to"),
        ] {
            let err = HistoryFilter::parse(kind, from, to, "").unwrap_err();
            assert_eq!(err.field(), Some(field), "{kind} {from} {to}");
        }
    }
}
