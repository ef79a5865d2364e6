//! `GET /rest/v1/events`: the bus as server-sent events for one account. A
//! stream subscribes to its account's topics only (its node, its account,
//! blocks), so nobody else's events cost it anything. It ends when its session
//! logs out, its token expires, the password changes (in any process), or the
//! server shuts down; an account holds at most a few streams at once.
//!
//! `GET /lnm/lnurl/a/events`: for a browser waiting on its LNURL-auth QR code,
//! one event once a wallet has answered it (the browser's next request is
//! signed in), then the end.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use tokio::sync::watch;

use crate::gate::{ErrorFormat, SignedIn};
use engine::events::{EventKind, Subscription, Topic};
use engine::{Caller, Engine};

/// The open streams and sockets of this process, and what ends them all.
#[derive(Clone)]
pub struct Streams {
    /// Event streams, per account.
    events: Slots,
    /// `/lnm/realtime` sockets, per account and per client address.
    pub sockets_per_account: Slots,
    pub sockets_per_address: Slots,
    shutdown: watch::Receiver<bool>,
}

impl Streams {
    pub fn new(limits: StreamLimits, shutdown: watch::Receiver<bool>) -> Self {
        Streams {
            events: Slots::new(limits.event_streams_per_account),
            sockets_per_account: Slots::new(limits.sockets_per_account),
            sockets_per_address: Slots::new(limits.sockets_per_address),
            shutdown,
        }
    }

    /// Turns true when the server shuts down.
    pub fn shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }
}

/// How many long-lived responses one account or address may hold at once.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    pub event_streams_per_account: usize,
    pub sockets_per_account: usize,
    pub sockets_per_address: usize,
}

/// Counts what is open per key (an account, a client address), up to a limit.
#[derive(Clone)]
pub struct Slots {
    open: Arc<Mutex<HashMap<String, usize>>>,
    max: usize,
}

impl Slots {
    fn new(max: usize) -> Self {
        Slots {
            open: Arc::new(Mutex::new(HashMap::new())),
            max,
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for one more of `key`'s, or `None` at the limit.
    pub fn take(&self, key: &str) -> Option<Slot> {
        let mut open = self.open.lock().expect("slots lock");
        let count = open.entry(key.to_string()).or_default();
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            open: self.open.clone(),
            key: key.to_string(),
        })
    }
}

/// One open stream or socket of a key; freed when dropped.
pub struct Slot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().expect("slots lock");
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

pub async fn events(
    State(engine): State<Engine>,
    State(streams): State<Streams>,
    SignedIn(caller): SignedIn,
) -> Response {
    let Some(slot) = streams.events.take(&caller.user.id.0) else {
        let message = format!(
            "at most {} event streams per account may be open at once; close another one first",
            streams.events.max()
        );
        return ErrorFormat::MyLightning.error(StatusCode::TOO_MANY_REQUESTS, &message);
    };
    let node = match engine.wallet.node_id(&caller.user).await {
        Ok(node) => node,
        Err(err) => {
            tracing::error!(error = ?err, "event stream: the account's node");
            return ErrorFormat::MyLightning
                .error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    let subscription = engine
        .bus
        .subscribe(&[caller.topic(), Topic::Node(node), Topic::Blocks]);
    // A logout or password change between the gate's check and the subscription
    // would otherwise go unnoticed.
    if engine
        .accounts
        .authenticate(&caller.user.id.0, caller.user.auth_version)
        .await
        .is_err()
    {
        return ErrorFormat::MyLightning.error(StatusCode::UNAUTHORIZED, "authentication required");
    }
    let open = Open {
        subscription,
        caller,
        shutdown: streams.shutdown.clone(),
        ending: false,
        _slot: slot,
    };
    Sse::new(open.into_stream())
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `GET /lnm/lnurl/a/events`: `{"type":"challenge_answered"}` once a wallet
/// answered this session's LNURL-auth, then the stream ends; it also ends when
/// the challenge expires or the server shuts down. 404 when the session waits
/// on none.
pub async fn lnurl_auth_events(
    State(engine): State<Engine>,
    State(streams): State<Streams>,
    session: tower_sessions::Session,
) -> Response {
    use app::api::auth::{AwaitedLnurlAuth, LNURL_AUTH_KEY};
    let format = ErrorFormat::Lnm;
    let awaited: Option<AwaitedLnurlAuth> = session.get(LNURL_AUTH_KEY).await.ok().flatten();
    let Some(awaited) = awaited else {
        return format.error(StatusCode::NOT_FOUND, "this session waits on no LNURL-auth");
    };
    // Subscribed before looking, so an answer in between is not missed.
    let mut subscription = engine
        .bus
        .subscribe(&[Topic::Challenge(awaited.k1.clone())]);
    let state = match engine
        .desk
        .lnurl_auth_state(&awaited.k1, &awaited.nonce)
        .await
    {
        Ok(Some(state)) => state,
        Ok(None) => {
            return format.error(StatusCode::NOT_FOUND, "this session waits on no LNURL-auth")
        }
        Err(err) => {
            tracing::error!(error = ?err, "LNURL-auth events: the challenge");
            return format.error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    let (answered, expires_at_ms) = state;
    let mut shutdown = streams.shutdown.clone();
    let answer = async move {
        if !answered {
            let left = Duration::from_millis((expires_at_ms - engine::now_ms()).max(0) as u64);
            let heard = tokio::select! {
                event = subscription.recv() => event.is_some(),
                _ = tokio::time::sleep(left) => false,
                _ = shutdown.wait_for(|stopping| *stopping) => false,
            };
            if !heard {
                return None;
            }
        }
        Some(Ok::<_, Infallible>(
            SseEvent::default().data(r#"{"type":"challenge_answered"}"#),
        ))
    };
    let stream = futures_util::stream::once(answer).filter_map(std::future::ready);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// A stream in progress.
struct Open {
    subscription: Subscription,
    caller: Caller,
    shutdown: watch::Receiver<bool>,
    /// Events were missed: the stream ends after telling the page, and the
    /// browser reconnects through the gate (a session ended meanwhile, its
    /// notice among the missed events, is refused there).
    ending: bool,
    _slot: Slot,
}

impl Open {
    fn into_stream(self) -> impl Stream<Item = Result<SseEvent, Infallible>> {
        futures_util::stream::unfold(self, |mut open| async move {
            let event = open.next().await?;
            Some((Ok(event), open))
        })
    }

    /// The next event to send, or `None` when the stream must end.
    async fn next(&mut self) -> Option<SseEvent> {
        let expiry = self.caller.expires_at_ms().map(|at| {
            let left = (at - engine::now_ms()).max(0) as u64;
            tokio::time::Instant::now() + Duration::from_millis(left)
        });
        loop {
            if *self.shutdown.borrow() || self.ending {
                return None;
            }
            let event = tokio::select! {
                event = self.subscription.recv() => event?,
                _ = self.shutdown.changed() => return None,
                _ = sleep_until(expiry) => return None,
            };
            if self.caller.is_ended_by(&event.kind) {
                return None;
            }
            match &event.kind {
                // Events may have been missed: the page reads everything again.
                EventKind::Resync => {
                    self.ending = true;
                    return Some(SseEvent::default().data(r#"{"type":"lagged"}"#));
                }
                kind if kind.is_control() => continue,
                kind => {
                    if let Ok(json) = serde_json::to_string(kind) {
                        return Some(SseEvent::default().data(json));
                    }
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
