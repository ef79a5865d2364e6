//! The operator's BTC/USD feed (`--price-feed-url`, `--price-feed-pointer`): a
//! price [`Source`] that GETs a JSON document every tick and reads the index at
//! a JSON pointer, as a number or a decimal string of USD, rounded to the cent.
//!
//! A feed that fails (no answer within its timeout, a non-2xx status, a body
//! over 64 KiB, no number at the pointer) or says something the desk will not
//! believe gives an error: the ticker then skips the tick, the quote goes stale
//! after `--price-stale-secs`, and trading pauses (503) until the feed answers
//! again. What is not believed:
//! - an index outside 1 to 10,000,000 USD (zero, negative, absurd);
//! - a jump of more than 10 % from the last index, until the next reading
//!   confirms it (within 1 % of the jump): one bad reading must not liquidate
//!   the book, while a real move (or a restart after a long pause) costs one
//!   tick.
//!
//! Plain http and https (rustls with the `ring` provider and Mozilla's roots,
//! compiled in): no redirects are followed, no cookies kept.

use std::time::Duration;

use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{header, Uri};

use crate::outbound::HttpClient;

use engine::desk::contract::Price;
use engine::desk::market::{check_index, MarketConfig, Source};
use engine::{Error, Result};

/// The largest answer read.
const BODY_MAX: usize = 64 * 1024;
/// A reading further than this from the last index, in percent, is a jump.
const JUMP_PERCENT: u64 = 10;
/// A reading within this of the held jump, in percent, confirms it.
const CONFIRM_PERCENT: u64 = 1;

/// The feed as a price source.
pub struct Feed {
    client: HttpClient<Empty<Bytes>>,
    url: Uri,
    pointer: String,
    timeout: Duration,
    /// A jump read last time, waiting for this reading to confirm it.
    held: Option<Price>,
}

impl Feed {
    /// A feed at `url` (checked by [`feed_url`]) whose index is at `pointer`
    /// (checked by [`feed_pointer`]); each reading may take `timeout`.
    pub fn new(url: &str, pointer: &str, timeout: Duration) -> Result<Feed> {
        let url: Uri = feed_url(url)
            .and_then(|u| u.parse().map_err(|_| "not a URL".to_string()))
            .map_err(|e| Error::invalid("price_feed_url", e))?;
        let pointer = feed_pointer(pointer).map_err(|e| Error::invalid("price_feed_pointer", e))?;
        Ok(Feed {
            client: crate::outbound::client()?,
            url,
            pointer,
            timeout,
            held: None,
        })
    }

    /// How long one reading may take: half the staleness bound (so a slow
    /// feed is retried before the price goes stale), at most 5 s.
    pub fn timeout_for(market: &MarketConfig) -> Duration {
        (market.stale_after / 2).min(Duration::from_secs(5))
    }

    /// The index the feed says now.
    async fn read(&self) -> Result<Price> {
        let unavailable = |why: String| Error::Unavailable(format!("the price feed {why}"));
        let request = hyper::Request::get(self.url.clone())
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, "ampere")
            .body(Empty::new())
            .map_err(|e| unavailable(format!("request: {e}")))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| unavailable(format!("is unreachable: {e}")))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("answered {}", response.status())));
        }
        let body = Limited::new(response.into_body(), BODY_MAX)
            .collect()
            .await
            .map_err(|e| unavailable(format!("answer could not be read: {e}")))?
            .to_bytes();
        let document: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| unavailable("answered something that is not JSON".into()))?;
        let value = document
            .pointer(&self.pointer)
            .ok_or_else(|| unavailable(format!("answer has nothing at {:?}", self.pointer)))?;
        index_of(value).ok_or_else(|| {
            unavailable(format!(
                "answer at {:?} is not a number of USD: {value}",
                self.pointer
            ))
        })
    }

    /// Whether to believe `reading` after `last`: see the module's rules.
    fn judge(&mut self, last: Price, reading: Price) -> Result<Price> {
        check_index(reading)?;
        if within(reading, last, JUMP_PERCENT) {
            self.held = None;
            return Ok(reading);
        }
        if self
            .held
            .is_some_and(|held| within(reading, held, CONFIRM_PERCENT))
        {
            self.held = None;
            return Ok(reading);
        }
        self.held = Some(reading);
        Err(Error::Unavailable(format!(
            "the price feed jumped from {last} to {reading} USD: held until the next reading confirms it"
        )))
    }
}

impl Source for Feed {
    fn next(&mut self, last: Price) -> BoxFuture<'_, Result<Price>> {
        Box::pin(async move {
            let reading = tokio::time::timeout(self.timeout, self.read())
                .await
                .map_err(|_| {
                    Error::Unavailable(format!(
                        "the price feed did not answer within {} ms",
                        self.timeout.as_millis()
                    ))
                })??;
            self.judge(last, reading)
        })
    }
}

/// Whether `price` lies within `percent` % of `reference`.
fn within(price: Price, reference: Price, percent: u64) -> bool {
    let distance = u128::from(price.cents().abs_diff(reference.cents()));
    distance * 100 <= u128::from(reference.cents()) * u128::from(percent)
}

/// An index given as a JSON number or a decimal string of USD ("67123.45",
/// "67123.40000"), rounded half up to the cent. No sign, no exponent.
fn index_of(value: &serde_json::Value) -> Option<Price> {
    let text = match value {
        serde_json::Value::Number(number) => number.to_string(),
        serde_json::Value::String(text) => text.trim().to_string(),
        _ => return None,
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    if fraction.len() <= 2 {
        return Price::parse(&text);
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let cents = Price::parse(&format!("{whole}.{}", &fraction[..2]))?;
    let up = u64::from(fraction.as_bytes()[2] >= b'5');
    cents.cents().checked_add(up).map(Price::from_cents)
}

/// `--price-feed-url`: an absolute http or https URL with a host.
pub fn feed_url(text: &str) -> std::result::Result<String, String> {
    let uri: Uri = text
        .parse()
        .map_err(|_| "not a URL (http://host/path or https://host/path)".to_string())?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("the feed's URL must start with http:// or https://".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the feed's URL must name a host".into());
    }
    Ok(text.to_string())
}

/// `--price-feed-pointer`: a JSON pointer, empty or starting with `/`.
pub fn feed_pointer(text: &str) -> std::result::Result<String, String> {
    if text.is_empty() || text.starts_with('/') {
        Ok(text.to_string())
    } else {
        Err(
            "a JSON pointer starts with / (e.g. /data/amount), or is empty for the whole answer"
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usd(cents: u64) -> Price {
        Price::from_cents(cents)
    }

    #[test]
    fn an_index_is_read_from_numbers_and_decimal_strings_to_the_cent() {
        assert_eq!(index_of(&json!(67123.45)), Some(usd(6_712_345)));
        assert_eq!(index_of(&json!(67123)), Some(usd(6_712_300)));
        assert_eq!(index_of(&json!("67123.40000")), Some(usd(6_712_340)));
        assert_eq!(index_of(&json!(" 9990.5 ")), Some(usd(999_050)));
        assert_eq!(index_of(&json!("67123.455")), Some(usd(6_712_346)));
        assert_eq!(index_of(&json!("67123.454")), Some(usd(6_712_345)));
        assert_eq!(index_of(&json!("0.999")), Some(usd(100)));
        for nonsense in [
            json!(-5),
            json!("-5"),
            json!("1e5"),
            json!(1e300),
            json!("abc"),
            json!("67123.4x5"),
            json!(null),
            json!(true),
            json!([1]),
            json!(""),
        ] {
            assert_eq!(index_of(&nonsense), None, "{nonsense}");
        }
    }

    #[tokio::test]
    async fn a_jump_is_held_until_the_next_reading_confirms_it() {
        let mut feed = Feed::new("http://127.0.0.1:9/", "", Duration::from_secs(1)).unwrap();
        let last = usd(10_000_000);
        assert_eq!(feed.judge(last, usd(10_900_000)).unwrap(), usd(10_900_000));
        // 20 % up: held, then a reading 0.5 % away confirms it.
        assert!(feed.judge(last, usd(12_000_000)).is_err());
        assert_eq!(feed.judge(last, usd(12_060_000)).unwrap(), usd(12_060_000));
        // A lone spike is held and then forgotten when the price comes back.
        assert!(feed.judge(last, usd(1_000_000)).is_err());
        assert_eq!(feed.judge(last, usd(10_010_000)).unwrap(), usd(10_010_000));
        assert!(feed.judge(last, usd(30_000_000)).is_err());
        assert!(
            feed.judge(last, usd(10_000)).is_err(),
            "a second, other jump is held anew"
        );
        // Beyond what the desk quotes: never, even twice.
        assert!(feed.judge(last, usd(50)).is_err());
        assert!(feed.judge(usd(100), usd(0)).is_err());
        let huge = usd(2_000_000_000);
        assert!(feed.judge(last, huge).is_err());
        assert!(feed.judge(last, huge).is_err());
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_and_real_pointers_are_taken() {
        assert!(feed_url("https://api.example.com/v2/prices/BTC-USD/spot").is_ok());
        assert!(feed_url("http://127.0.0.1:8080/price").is_ok());
        for bad in [
            "ftp://example.com/x",
            "example.com/price",
            "/price",
            "https://",
            "",
        ] {
            assert!(feed_url(bad).is_err(), "{bad}");
        }
        assert!(feed_pointer("/data/amount").is_ok());
        assert!(feed_pointer("").is_ok());
        assert!(feed_pointer("data/amount").is_err());
    }
}
