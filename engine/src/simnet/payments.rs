//! Paying an invoice: decode and check it, find a route, then move the money in
//! one transaction: the invoice settles (at most once) and every hop moves, or
//! nothing does. Another area's books can ride in that same transaction
//! ([`Hook`]): the payer's (a withdrawal becomes paid) and the payee's (a deposit
//! is credited), so they move with the money or not at all.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::invoice::{self, Decoded};
use super::router::{self, Edge, FeePolicy};
use super::{EventKind, Simnet};
use crate::events::Event;
use crate::{now_ms, Error, Msat, Result, MAX_MONEY};

/// A payment to make.
#[derive(Debug, Clone)]
pub struct PayRequest {
    /// The paying node.
    pub payer: String,
    /// The invoice as the user gave it (a `lightning:` prefix and an `@host:port`
    /// suffix are fine).
    pub invoice: String,
    /// Required for an amountless invoice; must match the invoice's amount if set.
    pub amount: Option<Msat>,
    /// Most the payer accepts to pay in routing fees; default: 10 sat + 1 %.
    pub fee_limit: Option<Msat>,
    /// The payer's books, run in the payment's transaction once the route and
    /// its fee are known; an error refuses the payment.
    pub within: Option<Hook>,
}

impl PayRequest {
    pub fn new(payer: &str, invoice: &str, amount: Option<Msat>) -> Self {
        PayRequest {
            payer: payer.to_string(),
            invoice: invoice.to_string(),
            amount,
            fee_limit: None,
            within: None,
        }
    }
}

/// Work of another area inside a payment's transaction, given the payment as it
/// is about to be made; answers the events to publish once it is committed. An
/// error rolls the whole payment back.
#[derive(Clone)]
pub struct Hook(pub Arc<HookFn>);

/// What a [`Hook`] runs.
pub type HookFn = dyn for<'c> Fn(&'c mut AnyConnection, &'c Payment) -> BoxFuture<'c, Result<Vec<Event>>>
    + Send
    + Sync;

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook(..)")
    }
}

/// A payment that went through.
#[derive(Debug, Clone, Serialize)]
pub struct Payment {
    pub payment_hash: String,
    pub destination: String,
    pub amount: Msat,
    pub fee: Msat,
    pub preimage: String,
    pub memo: String,
    /// What the hooks asked to publish once the payment is committed.
    #[serde(skip)]
    pub announcements: Vec<Event>,
}

/// The default fee limit: 10 sat plus 1 % of the amount (for an amount past
/// every bitcoin there is, no limit short of that).
pub fn default_fee_limit(amount: Msat) -> Msat {
    Msat(10_000)
        .checked_add(Msat(amount.0 / 100))
        .unwrap_or(MAX_MONEY)
}

impl Simnet {
    /// Pays `request.invoice`, decoding it first.
    pub async fn pay(&self, request: PayRequest) -> Result<Payment> {
        let decoded = invoice::decode(&request.invoice)?;
        self.pay_decoded(&request, &decoded).await
    }

    /// Pays an invoice the caller has already decoded (and so checked). The
    /// payment and its events run to the end even if the caller goes away.
    pub async fn pay_decoded(&self, request: &PayRequest, decoded: &Decoded) -> Result<Payment> {
        let (simnet, request, decoded) = (self.clone(), request.clone(), decoded.clone());
        tokio::spawn(async move { simnet.pay_and_tell(&request, &decoded).await })
            .await
            .map_err(|e| Error::Internal(format!("payment task: {e}")))?
    }

    async fn pay_and_tell(&self, request: &PayRequest, decoded: &Decoded) -> Result<Payment> {
        match self.settle(request, decoded).await {
            Ok(mut payment) => {
                for event in std::mem::take(&mut payment.announcements) {
                    self.bus.publish(event.topic, event.kind);
                }
                self.emit(
                    vec![request.payer.clone()],
                    EventKind::PaymentSent {
                        payment_hash: payment.payment_hash.clone(),
                        amount_msat: payment.amount.0,
                        fee_msat: payment.fee.0,
                    },
                );
                self.emit(
                    vec![payment.destination.clone()],
                    EventKind::InvoiceSettled {
                        payment_hash: payment.payment_hash.clone(),
                        amount_msat: payment.amount.0,
                    },
                );
                Ok(payment)
            }
            Err(err) => {
                if err.is_refusal() {
                    self.emit(
                        vec![request.payer.clone()],
                        EventKind::PaymentFailed {
                            payment_hash: decoded.payment_hash.clone(),
                            reason: err.to_string(),
                        },
                    );
                }
                Err(err)
            }
        }
    }

    async fn settle(&self, request: &PayRequest, invoice: &Decoded) -> Result<Payment> {
        let amount = match (invoice.amount, request.amount) {
            (Some(fixed), None) => fixed,
            (Some(fixed), Some(given)) if given == fixed => fixed,
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "amount",
                    "the invoice names its amount; leave the amount out or give the same",
                ))
            }
            (None, Some(given)) => given,
            (None, None) => {
                return Err(Error::invalid(
                    "amount",
                    "this invoice has no amount: say how much to pay",
                ))
            }
        };
        if amount.0 <= 0 {
            return Err(Error::invalid("amount", "amount must be positive"));
        }
        if amount > MAX_MONEY {
            return Err(Error::invalid("amount", "amount exceeds 21 million BTC"));
        }
        if invoice.expires_at_ms <= now_ms() {
            return Err(Error::InvoiceExpired);
        }
        if invoice.payee == request.payer {
            return Err(Error::invalid("invoiceid", "this invoice is your own"));
        }
        let fee_limit = request
            .fee_limit
            .unwrap_or_else(|| default_fee_limit(amount));
        if fee_limit.0 < 0 {
            return Err(Error::invalid(
                "fee_limit",
                "fee limit must not be negative",
            ));
        }

        let fees = FeePolicy {
            base: self.config.fee_base,
            ppm: self.config.fee_ppm,
        };
        // A refusal computed on the remembered graph may be stale (another
        // process moved money, a commit failed): try once more on a fresh one.
        for attempt in 0..2 {
            let cached = self.graph.is_warm();
            let (payer, invoice, graph) =
                (request.payer.clone(), invoice.clone(), self.graph.clone());
            let hooks = [request.within.clone(), self.receiver(&invoice.payee)];
            let outcome = self
                .db
                .write(move |conn| {
                    Box::pin(settle_over_route(
                        conn, payer, invoice, amount, fee_limit, fees, graph, hooks,
                    ))
                })
                .await;
            match outcome {
                Err(Error::InsufficientFunds | Error::NoRoute | Error::FeeLimitExceeded { .. })
                    if cached && attempt == 0 =>
                {
                    self.graph.invalidate();
                }
                Err(err) if err.is_internal() => {
                    // The commit may have failed after the graph moved along.
                    self.graph.invalidate();
                    return Err(err);
                }
                other => return other,
            }
        }
        unreachable!("the second attempt returns")
    }
}

/// The payment's one write: settles the invoice, finds the route, runs the
/// payer's and the payee's hooks, moves every hop, records the payment. Any
/// refusal rolls all of it back.
#[allow(clippy::too_many_arguments)]
async fn settle_over_route(
    conn: &mut AnyConnection,
    payer: String,
    invoice: Decoded,
    amount: Msat,
    fee_limit: Msat,
    fees: FeePolicy,
    graph: router::Graph,
    hooks: [Option<Hook>; 2],
) -> Result<Payment> {
    let preimage = settle_invoice(conn, &invoice, amount).await?;
    let edges = match graph.snapshot() {
        Some(edges) => edges,
        None => {
            let edges = open_edges(conn).await?;
            graph.store(edges.clone());
            edges
        }
    };
    let route = router::find(&edges, &payer, &invoice.payee, amount, fees)
        .ok_or_else(|| no_route_reason(&edges, &payer, amount))?;
    if route.fee > fee_limit {
        return Err(Error::FeeLimitExceeded {
            fee_msat: route.fee.0,
            limit_msat: fee_limit.0,
        });
    }
    let payment = Payment {
        payment_hash: invoice.payment_hash.clone(),
        destination: invoice.payee.clone(),
        amount,
        fee: route.fee,
        preimage,
        memo: invoice.memo.clone(),
        announcements: Vec::new(),
    };
    let mut announcements = Vec::new();
    for hook in hooks.iter().flatten() {
        announcements.extend((hook.0)(conn, &payment).await?);
    }
    move_along(conn, &route.hops).await?;
    graph.apply(&route.hops);
    sqlx::query(
        "INSERT INTO payments (node, payment_hash, destination, amount_msat, fee_msat, memo, \
         preimage, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&payer)
    .bind(&invoice.payment_hash)
    .bind(&invoice.payee)
    .bind(amount.0)
    .bind(route.fee.0)
    .bind(&invoice.memo)
    .bind(&payment.preimage)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(Payment {
        announcements,
        ..payment
    })
}

/// Marks the invoice paid, once, and answers its preimage: the UPDATE requires it
/// unpaid and unexpired, so of two concurrent payers exactly one gets the row.
/// An invoice this network never issued cannot be reached: no route.
async fn settle_invoice(
    conn: &mut AnyConnection,
    invoice: &Decoded,
    amount: Msat,
) -> Result<String> {
    let now = now_ms();
    let settled = sqlx::query(
        "UPDATE invoices SET settled_at = $1, received_msat = $2 \
         WHERE payment_hash = $3 AND node = $4 AND settled_at IS NULL AND expires_at > $1 \
         RETURNING preimage",
    )
    .bind(now)
    .bind(amount.0)
    .bind(&invoice.payment_hash)
    .bind(&invoice.payee)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = settled {
        return Ok(row.try_get("preimage")?);
    }
    let row = sqlx::query("SELECT settled_at FROM invoices WHERE payment_hash = $1 AND node = $2")
        .bind(&invoice.payment_hash)
        .bind(&invoice.payee)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        None => Err(Error::NoRoute),
        Some(row) if row.try_get::<Option<i64>, _>("settled_at")?.is_some() => {
            Err(Error::AlreadyPaid)
        }
        Some(_) => Err(Error::InvoiceExpired),
    }
}

async fn open_edges(conn: &mut AnyConnection) -> Result<Vec<Edge>> {
    let rows = sqlx::query(
        "SELECT point, opener, peer, opener_msat, peer_msat FROM channels WHERE state = 'open'",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Edge {
                point: r.try_get("point")?,
                opener: r.try_get("opener")?,
                peer: r.try_get("peer")?,
                opener_balance: Msat(r.try_get("opener_msat")?),
                peer_balance: Msat(r.try_get("peer_msat")?),
            })
        })
        .collect()
}

/// Why no route was found: the payer's own channels cannot carry the amount
/// (insufficient funds), or the network offers no path.
fn no_route_reason(edges: &[Edge], payer: &str, amount: Msat) -> Error {
    let spendable = Msat::checked_sum(edges.iter().map(|e| {
        if e.opener == payer {
            e.opener_balance
        } else if e.peer == payer {
            e.peer_balance
        } else {
            Msat::ZERO
        }
    }));
    // A sum too large to count is certainly enough.
    if spendable.is_some_and(|spendable| spendable < amount) {
        Error::InsufficientFunds
    } else {
        Error::NoRoute
    }
}

/// Moves every hop's amount over its channel from the sending side to the other,
/// in one statement. Each row's condition refuses it if the sender's balance is
/// short; unless every hop's row changed, the payment is refused.
async fn move_along(conn: &mut AnyConnection, hops: &[router::Hop]) -> Result<()> {
    let mut opener_delta = String::new();
    let mut peer_delta = String::new();
    let mut condition = Vec::new();
    for i in 0..hops.len() {
        let (point, from, amount) = (3 * i + 1, 3 * i + 2, 3 * i + 3);
        opener_delta.push_str(&format!(
            " WHEN ${point} THEN CASE WHEN opener = ${from} THEN -${amount} ELSE ${amount} END"
        ));
        peer_delta.push_str(&format!(
            " WHEN ${point} THEN CASE WHEN opener = ${from} THEN ${amount} ELSE -${amount} END"
        ));
        condition.push(format!(
            "(point = ${point} AND ((opener = ${from} AND opener_msat >= ${amount}) \
             OR (peer = ${from} AND peer_msat >= ${amount})))"
        ));
    }
    let sql = format!(
        "UPDATE channels SET opener_msat = opener_msat + CASE point{opener_delta} END, \
         peer_msat = peer_msat + CASE point{peer_delta} END \
         WHERE state = 'open' AND ({})",
        condition.join(" OR ")
    );
    if conn.backend_name() == "PostgreSQL" {
        // Lock the channels in one order (by point), so two payments over the
        // same channels wait for each other instead of deadlocking.
        let points: Vec<String> = (1..=hops.len()).map(|i| format!("${i}")).collect();
        let lock = format!(
            "SELECT point FROM channels WHERE point IN ({}) ORDER BY point FOR UPDATE",
            points.join(", ")
        );
        let mut query = sqlx::query(&lock);
        for hop in hops {
            query = query.bind(&hop.point);
        }
        query.fetch_all(&mut *conn).await?;
    }
    let mut query = sqlx::query(&sql);
    for hop in hops {
        query = query.bind(&hop.point).bind(&hop.from).bind(hop.amount.0);
    }
    let moved = query.execute(conn).await?;
    if moved.rows_affected() == hops.len() as u64 {
        Ok(())
    } else {
        Err(Error::InsufficientFunds)
    }
}
