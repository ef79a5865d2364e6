//! The engine's one event bus: what happened, published on a topic, delivered to
//! the subscribers of that topic only. Topics are per node (a wallet's payments,
//! invoices, channels), per account (its credentials; the desk next) and public
//! (blocks; market prices next). A subscriber names its topics up front, so an
//! event for somebody else costs it nothing.
//!
//! With PostgreSQL, every event also crosses to the other server processes on the
//! same database through `LISTEN/NOTIFY`: a browser connected to one process sees
//! what happened in another, and a logout or a password change in one process
//! invalidates the caches of all. The wire formats (SSE, later the desk's
//! WebSocket) are adapters at the edge; this module owns no HTTP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use crate::{Backend, Database};

/// Who an event is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "t", content = "id", rename_all = "snake_case")]
pub enum Topic {
    /// A Lightning node (by pubkey): its payments, invoices, channels, coins.
    Node(String),
    /// An account (by user id): its credentials and sessions.
    Account(String),
    /// Every block mined on the simnet.
    Blocks,
    /// A sign-in challenge (an LNURL-auth `k1`) a browser is waiting on.
    Challenge(String),
    /// The desk's BTC/USD quotes, every tick.
    Market,
}

/// What happened. The wallet's kinds keep the names and fields the event stream
/// has always sent; the control kinds never reach a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    InvoiceSettled {
        payment_hash: String,
        amount_msat: i64,
    },
    PaymentSent {
        payment_hash: String,
        amount_msat: i64,
        fee_msat: i64,
    },
    PaymentFailed {
        payment_hash: String,
        reason: String,
    },
    ChannelChanged {
        channel_point: String,
        state: String,
    },
    BlockMined {
        height: i64,
    },
    OnchainReceived {
        txid: String,
        amount_msat: i64,
    },
    /// A deposit to the account's trading balance was paid and credited.
    DepositCredited {
        id: String,
        amount_msat: i64,
    },
    /// A withdrawal from the trading balance was paid (`paid`) or failed and
    /// was refunded (`failed`).
    WithdrawalFinished {
        id: String,
        state: String,
        amount_msat: i64,
    },
    /// A wallet answered the sign-in challenge of this topic.
    ChallengeAnswered,
    /// The desk quoted a new BTC/USD price (cents; `at_ms` Unix ms).
    PriceTicked {
        index_cents: i64,
        bid_cents: i64,
        offer_cents: i64,
        at_ms: i64,
    },
    /// One of the account's positions changed: `what` is `opened`, `filled`,
    /// `updated`, `margin_added`, `takeprofit`, `stoploss`, `liquidated`,
    /// `closed` or `canceled`; `balance_msat` the trading balance after it.
    PositionChanged {
        pid: String,
        what: String,
        balance_msat: i64,
    },
    /// The account's password changed (or it was deleted): every session and
    /// token issued under an older `auth_version` is void.
    CredentialsChanged {
        auth_version: i64,
    },
    /// The account's settings changed: caches of it are stale.
    AccountChanged,
    /// One token of the account (a scoped desk token or an ACL token) was
    /// revoked: its id (`jti`).
    TokenRevoked {
        jti: String,
    },
    /// One of the account's ACLs changed or was deleted: its tokens' grants
    /// are stale.
    AclChanged {
        acl_id: String,
    },
    /// One session ended (signed out, or ended from another): its handle
    /// (`accounts::sessions`).
    SessionEnded {
        session: String,
    },
    /// This process may have missed events (the link to the database dropped):
    /// whoever keeps state derived from events must read it again.
    Resync,
}

impl EventKind {
    /// True for the kinds that steer the server (caches, streams) rather than
    /// tell a user something.
    pub fn is_control(&self) -> bool {
        matches!(
            self,
            EventKind::CredentialsChanged { .. }
                | EventKind::AccountChanged
                | EventKind::SessionEnded { .. }
                | EventKind::TokenRevoked { .. }
                | EventKind::AclChanged { .. }
                | EventKind::Resync
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub topic: Topic,
    pub kind: EventKind,
}

/// Called for every control event, local or from another process, before any
/// subscriber sees it (caches are invalidated first, then streams react).
pub type ControlHook = Box<dyn Fn(&Event) + Send + Sync>;

/// How many events a slow subscriber may fall behind before it is told it lagged.
const SUBSCRIBER_BUFFER: usize = 256;
/// The PostgreSQL channel the processes talk on.
const CHANNEL: &str = "ampere_events";

#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    /// A sender per topic somebody listens to; dropped when the last one leaves.
    topics: Mutex<HashMap<Topic, broadcast::Sender<Arc<Event>>>>,
    hooks: RwLock<Vec<ControlHook>>,
    /// This process, so that it skips its own notifications coming back.
    origin: String,
    /// The way to the other processes (PostgreSQL only).
    outbox: Option<Outbox>,
    /// Dropped with the bus: the listener then lets its connection go.
    alive: tokio::sync::watch::Sender<()>,
}

struct Outbox {
    db: Database,
    /// Events on their way, sent in batches by [`notify`].
    queue: mpsc::UnboundedSender<Event>,
}

/// What crosses between processes.
#[derive(Serialize, Deserialize)]
struct Notification {
    origin: String,
    #[serde(flatten)]
    event: Event,
}

impl Bus {
    /// A bus for this process alone (SQLite: one process owns the database).
    pub fn local() -> Self {
        Self::with_outbox(None)
    }

    fn with_outbox(outbox: Option<Outbox>) -> Self {
        Bus {
            inner: Arc::new(Inner {
                topics: Mutex::new(HashMap::new()),
                hooks: RwLock::new(Vec::new()),
                origin: crate::random_hex(8),
                outbox,
                alive: tokio::sync::watch::channel(()).0,
            }),
        }
    }

    /// The bus for `db`: with PostgreSQL, joined to the other processes on it.
    pub async fn start(db: &Database) -> crate::Result<Self> {
        if db.backend() != Backend::Postgres {
            return Ok(Self::local());
        }
        let (queue, pending) = mpsc::unbounded_channel();
        let bus = Self::with_outbox(Some(Outbox {
            db: db.clone(),
            queue,
        }));
        let mut listener = sqlx::postgres::PgListener::connect(&db.url()).await?;
        listener.listen(CHANNEL).await?;
        let alive = bus.inner.alive.subscribe();
        tokio::spawn(listen(bus.downgrade(), listener, alive));
        tokio::spawn(notify(db.clone(), bus.inner.origin.clone(), pending));
        Ok(bus)
    }

    /// Registers a hook run on every control event (see [`ControlHook`]).
    pub fn on_control(&self, hook: ControlHook) {
        self.inner.hooks.write().expect("hooks lock").push(hook);
    }

    /// Publishes `kind` on `topic`: to this process' subscribers at once, and to
    /// the other processes' through the database.
    pub fn publish(&self, topic: Topic, kind: EventKind) {
        let event = Event { topic, kind };
        if let Some(outbox) = &self.inner.outbox {
            let _ = outbox.queue.send(event.clone());
        }
        self.deliver(event);
    }

    /// Like [`publish`](Self::publish), and answers only once the other
    /// processes' database has taken the event: for logouts and password changes,
    /// whose effect everywhere must not trail the answer to the user.
    pub async fn publish_confirmed(&self, topic: Topic, kind: EventKind) -> crate::Result<()> {
        let event = Event { topic, kind };
        self.deliver(event.clone());
        if let Some(outbox) = &self.inner.outbox {
            send_batch(&outbox.db, &self.inner.origin, &[event]).await?;
        }
        Ok(())
    }

    /// A subscription to `topics`: only their events reach it.
    pub fn subscribe(&self, topics: &[Topic]) -> Subscription {
        let mut map = self.inner.topics.lock().expect("topics lock");
        let receivers = topics
            .iter()
            .map(|topic| {
                map.entry(topic.clone())
                    .or_insert_with(|| broadcast::channel(SUBSCRIBER_BUFFER).0)
                    .subscribe()
            })
            .collect();
        Subscription {
            receivers,
            topics: topics.to_vec(),
            bus: self.clone(),
        }
    }

    fn deliver(&self, event: Event) {
        if event.kind.is_control() {
            for hook in self.inner.hooks.read().expect("hooks lock").iter() {
                hook(&event);
            }
        }
        let sender = self
            .inner
            .topics
            .lock()
            .expect("topics lock")
            .get(&event.topic)
            .cloned();
        if let Some(sender) = sender {
            // Nobody listening any more is fine.
            let _ = sender.send(Arc::new(event));
        }
    }

    /// Tells every subscriber of every topic that events may have been missed.
    fn resync_all(&self) {
        let resync = Event {
            topic: Topic::Blocks,
            kind: EventKind::Resync,
        };
        for hook in self.inner.hooks.read().expect("hooks lock").iter() {
            hook(&resync);
        }
        let senders: Vec<_> = {
            let map = self.inner.topics.lock().expect("topics lock");
            map.iter().map(|(t, s)| (t.clone(), s.clone())).collect()
        };
        for (topic, sender) in senders {
            let _ = sender.send(Arc::new(Event {
                topic,
                kind: EventKind::Resync,
            }));
        }
    }

    fn downgrade(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    /// How many topics have a live sender (for tests: senders do not pile up).
    pub fn topic_count(&self) -> usize {
        self.inner.topics.lock().expect("topics lock").len()
    }
}

/// The events of some topics, in the order they were published per topic.
pub struct Subscription {
    receivers: Vec<broadcast::Receiver<Arc<Event>>>,
    topics: Vec<Topic>,
    bus: Bus,
}

impl Subscription {
    /// The next event of any of the topics. A subscriber that fell behind gets
    /// `Resync` for what it missed; `None` never comes while the bus lives.
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        use futures_util::future::select_all;
        loop {
            if self.receivers.is_empty() {
                return std::future::pending().await;
            }
            let (result, index, _) =
                select_all(self.receivers.iter_mut().map(|r| Box::pin(r.recv()))).await;
            match result {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Some(Arc::new(Event {
                        topic: self.topics[index].clone(),
                        kind: EventKind::Resync,
                    }))
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.receivers.remove(index);
                    self.topics.remove(index);
                }
            }
        }
    }
}

impl Drop for Subscription {
    /// Forgets the topics nobody listens to any more, so a topic per account
    /// does not outlive its last stream.
    fn drop(&mut self) {
        self.receivers.clear();
        let mut map = self.bus.inner.topics.lock().expect("topics lock");
        for topic in &self.topics {
            if map.get(topic).is_some_and(|s| s.receiver_count() == 0) {
                map.remove(topic);
            }
        }
    }
}

/// Sends this process' events to the others, several per statement when they
/// come in bursts. A failed send is logged; the receiving processes cannot tell,
/// so the event is tried once more on a fresh connection.
async fn notify(db: Database, origin: String, mut pending: mpsc::UnboundedReceiver<Event>) {
    const BATCH: usize = 64;
    while let Some(first) = pending.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match pending.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        if let Err(err) = send_batch(&db, &origin, &batch).await {
            tracing::warn!(error = %err, "sending events to other processes failed; retrying");
            if let Err(err) = send_batch(&db, &origin, &batch).await {
                tracing::error!(error = %err, count = batch.len(), "events lost for other processes");
            }
        }
    }
}

/// One `SELECT pg_notify(...), ...` for the batch (delivered in this order).
async fn send_batch(db: &Database, origin: &str, batch: &[Event]) -> crate::Result<()> {
    use sqlx::Executor;
    // PostgreSQL refuses a payload of 8000 bytes or more.
    const MAX_PAYLOAD: usize = 7900;
    let payloads: Vec<String> = batch
        .iter()
        .filter_map(|event| {
            let json = serde_json::to_string(&Notification {
                origin: origin.to_string(),
                event: event.clone(),
            })
            .ok()?;
            (json.len() <= MAX_PAYLOAD).then_some(json)
        })
        .collect();
    if payloads.is_empty() {
        return Ok(());
    }
    let calls: Vec<String> = (0..payloads.len())
        .map(|i| format!("pg_notify('{CHANNEL}', ${})", i + 1))
        .collect();
    let sql = format!("SELECT {}", calls.join(", "));
    let mut query = sqlx::query(&sql);
    for payload in payloads {
        query = query.bind(payload);
    }
    db.pool().execute(query).await?;
    Ok(())
}

/// Delivers the other processes' events here. When the link drops, the
/// listener reconnects by itself; what was published meanwhile is lost, so
/// every subscriber is told to resync.
async fn listen(
    bus: std::sync::Weak<Inner>,
    mut listener: sqlx::postgres::PgListener,
    mut alive: tokio::sync::watch::Receiver<()>,
) {
    loop {
        let received = tokio::select! {
            received = listener.try_recv() => received,
            // The bus is gone: so is the need to listen.
            _ = alive.changed() => return,
        };
        let Some(inner) = bus.upgrade() else { return };
        let bus = Bus { inner };
        match received {
            Ok(Some(notification)) => {
                match serde_json::from_str::<Notification>(notification.payload()) {
                    Ok(n) if n.origin == bus.inner.origin => {}
                    Ok(n) => bus.deliver(n.event),
                    Err(err) => tracing::warn!(error = %err, "unreadable event notification"),
                }
            }
            Ok(None) => {
                tracing::warn!("event link to the database dropped; reconnecting");
                bus.resync_all();
            }
            Err(err) => {
                tracing::warn!(error = %err, "event link to the database failed");
                bus.resync_all();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
