//! The login throttle: counts failed logins per username and per client address in
//! a sliding window and refuses further attempts, before any password hashing, once
//! either count reaches its limit. State is per process and kept in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures one username may see within `window`.
    pub per_username: u32,
    /// Failures one client address may cause within `window`, over all usernames.
    pub per_client: u32,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_username: 5,
            per_client: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Clone)]
pub struct LoginThrottle {
    limits: Limits,
    failures: Arc<Mutex<Failures>>,
}

#[derive(Default)]
struct Failures {
    by_username: HashMap<String, Vec<Instant>>,
    by_client: HashMap<String, Vec<Instant>>,
}

/// Above this many tracked keys, expired entries are swept on the next failure,
/// so a flood of random usernames cannot grow memory without bound.
const SWEEP_AT: usize = 10_000;

impl LoginThrottle {
    pub fn new(limits: Limits) -> Self {
        LoginThrottle {
            limits,
            failures: Arc::new(Mutex::new(Failures::default())),
        }
    }

    /// Starts an attempt: refuses with `Throttled` (carrying how long to wait)
    /// when the username or the client has used up its failures, else counts the
    /// attempt as a failure at once, in the same step. Parallel guesses are all
    /// counted before any of them is checked, and an attempt whose caller goes
    /// away mid-way still counts. [`succeeded`](Self::succeeded) takes it back.
    pub fn begin(&self, username_key: &str, client: &str) -> Result<()> {
        let now = Instant::now();
        let window = self.limits.window;
        let mut failures = self.failures.lock().expect("throttle lock");
        let wait = [
            retry_after(
                failures.by_username.get_mut(username_key),
                self.limits.per_username,
                window,
                now,
            ),
            retry_after(
                failures.by_client.get_mut(client),
                self.limits.per_client,
                window,
                now,
            ),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(retry_after) = wait {
            return Err(Error::Throttled { retry_after });
        }
        if failures.by_username.len() + failures.by_client.len() > SWEEP_AT {
            let live = |times: &mut Vec<Instant>| {
                times.retain(|t| now.duration_since(*t) < window);
                !times.is_empty()
            };
            failures.by_username.retain(|_, t| live(t));
            failures.by_client.retain(|_, t| live(t));
        }
        failures
            .by_username
            .entry(username_key.to_string())
            .or_default()
            .push(now);
        failures
            .by_client
            .entry(client.to_string())
            .or_default()
            .push(now);
        Ok(())
    }

    /// The attempt succeeded: the username's failures are cleared, and the client
    /// loses only this attempt (one address guessing many accounts stays counted).
    pub fn succeeded(&self, username_key: &str, client: &str) {
        let mut failures = self.failures.lock().expect("throttle lock");
        failures.by_username.remove(username_key);
        if let Some(times) = failures.by_client.get_mut(client) {
            times.pop();
        }
    }
}

/// How long until the oldest failure in the window expires, when `limit` failures
/// are in it.
fn retry_after(
    times: Option<&mut Vec<Instant>>,
    limit: u32,
    window: Duration,
    now: Instant,
) -> Option<Duration> {
    let times = times?;
    times.retain(|t| now.duration_since(*t) < window);
    if times.len() < limit as usize {
        return None;
    }
    let oldest = times[times.len() - limit as usize];
    Some(window.saturating_sub(now.duration_since(oldest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_is_throttled_after_its_failures_and_freed_by_success() {
        let throttle = LoginThrottle::new(Limits {
            per_username: 3,
            per_client: 100,
            window: Duration::from_secs(60),
        });
        for _ in 0..3 {
            throttle.begin("alice", "1.2.3.4").unwrap();
        }
        match throttle.begin("alice", "5.6.7.8") {
            Err(Error::Throttled { retry_after }) => {
                assert!(
                    retry_after > Duration::from_secs(50) && retry_after <= Duration::from_secs(60)
                )
            }
            other => panic!("expected throttled, got {other:?}"),
        }
        throttle.begin("bob", "1.2.3.4").unwrap();
        throttle.succeeded("bob", "1.2.3.4");
        throttle.succeeded("alice", "1.2.3.4");
        assert!(throttle.begin("alice", "1.2.3.4").is_ok());
    }

    #[test]
    fn a_client_guessing_many_usernames_is_throttled() {
        let throttle = LoginThrottle::new(Limits {
            per_username: 100,
            per_client: 4,
            window: Duration::from_secs(60),
        });
        for i in 0..4 {
            throttle.begin(&format!("user{i}"), "9.9.9.9").unwrap();
        }
        assert!(matches!(
            throttle.begin("someone-else", "9.9.9.9"),
            Err(Error::Throttled { .. })
        ));
        assert!(throttle.begin("someone-else", "1.1.1.1").is_ok());
    }

    #[test]
    fn failures_expire_with_the_window() {
        let throttle = LoginThrottle::new(Limits {
            per_username: 1,
            per_client: 1,
            window: Duration::from_millis(50),
        });
        throttle.begin("carol", "2.2.2.2").unwrap();
        assert!(throttle.begin("carol", "2.2.2.2").is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert!(throttle.begin("carol", "2.2.2.2").is_ok());
    }
}
