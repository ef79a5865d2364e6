//! Request quotas of the LN-Markets API (`/lnm`): so many requests a minute per
//! client address and per account, each counted in a window that starts with
//! its first request. Every `/lnm` answer says what is left
//! (`X-Ratelimit-Remaining`) and when the window ends (`X-Ratelimit-Reset`,
//! Unix milliseconds); beyond the quota the answer is 429 with `Retry-After`,
//! in the route's own error format, and the route does not run.
//!
//! Each process counts its own requests (N processes behind a balancer admit up
//! to N times the quota): a database write per request would cost more than the
//! requests it guards. Logins have their own throttles in the database.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::gate::ErrorFormat;
use app::api::auth::{client_address_of, Identity};

const WINDOW: Duration = Duration::from_secs(60);

/// The counters: one per address and one per account.
#[derive(Clone)]
pub struct Quotas {
    per_minute: u32,
    windows: moka::sync::Cache<String, Arc<Window>>,
}

struct Window {
    started_ms: i64,
    used: AtomicU32,
}

impl Quotas {
    pub fn new(per_minute: u32) -> Self {
        Quotas {
            per_minute,
            windows: moka::sync::Cache::builder()
                .max_capacity(200_000)
                .time_to_live(WINDOW)
                .build(),
        }
    }

    /// Counts one request of `subject`; answers what is left in its window and
    /// when the window ends, or `None` when it was over the quota.
    fn take(&self, subject: String) -> (Option<u32>, i64) {
        let window = self.windows.get_with(subject, || {
            Arc::new(Window {
                started_ms: engine::now_ms(),
                used: AtomicU32::new(0),
            })
        });
        let used = window
            .used
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let reset = window.started_ms + WINDOW.as_millis() as i64;
        (self.per_minute.checked_sub(used), reset)
    }
}

/// What one client is counted as: its IPv4 address, or the /64 network of its
/// IPv6 address (one subscriber's usual share, which it can change at will).
pub(crate) fn network_of(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        _ => address.to_string(),
    }
}

/// The middleware (after the gate: it counts the caller's account too).
pub async fn limit(State(quotas): State<Quotas>, request: Request, next: Next) -> Response {
    let format = match ErrorFormat::of_api(request.uri().path()) {
        Some(format @ (ErrorFormat::Lnm | ErrorFormat::Lnurl)) => format,
        _ => return next.run(request).await,
    };
    let mut subjects = vec![format!(
        "address:{}",
        network_of(&client_address_of(request.extensions()))
    )];
    if let Some(Identity::Caller(caller)) = request.extensions().get::<Identity>() {
        subjects.push(format!("account:{}", caller.user.id.0));
    }
    let mut remaining = Some(u32::MAX);
    let mut reset = 0;
    for subject in subjects {
        let (left, ends) = quotas.take(subject);
        remaining = remaining.zip(left).map(|(a, b)| a.min(b));
        reset = reset.max(ends);
    }
    let mut response = match remaining {
        Some(_) => next.run(request).await,
        None => {
            let wait = ((reset - engine::now_ms()) / 1000).max(1);
            let mut response = format.error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("too many requests, retry in {wait} s"),
            );
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(wait));
            response
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(remaining.unwrap_or(0)),
    );
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
    response
}

#[cfg(test)]
mod tests {
    use super::network_of;

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_network() {
        assert_eq!(network_of("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(network_of("2001:db8:1:2:ffff::9"), "2001:db8:1:2::/64");
        assert_eq!(network_of("192.0.2.7"), "192.0.2.7");
        assert_eq!(network_of("local"), "local");
    }
}
