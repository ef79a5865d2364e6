//! The BTC/USD rate shown next to amounts in usd: the price they were
//! converted at and when the desk took it, so a reader can judge how old the
//! figures are.

use leptos::prelude::*;

use crate::api::Rate;

/// "1 BTC = 100000.00 USD, price of 2026-11-22 03:25:11 UTC", marked when the
/// price is stale; nothing for amounts in a bitcoin unit (no rate).
#[component]
pub fn RateNote(rate: Option<Rate>) -> impl IntoView {
    rate.map(|rate| {
        let when = rate_time(&rate.at);
        view! {
            <p class="hint rate" data-testid="usd-rate">
                {format!("1 BTC = {} USD, price of ", rate.usd)}
                <time datetime=rate.at>{when}</time>
                {rate.stale.then(|| view! {
                    <strong class="stale">
                        " · stale: amounts in USD cannot be sent or asked for until the price is fresh"
                    </strong>
                })}
            </p>
        }
    })
}

/// `2026-11-22 03:25:11 UTC` for an RFC 3339 time in UTC (fractions of a
/// second dropped); anything else as it came.
fn rate_time(at: &str) -> String {
    match (at.get(..10), at.get(11..19)) {
        (Some(day), Some(time)) if at.ends_with('Z') && at.as_bytes().get(10) == Some(&b'T') => {
            format!("{day} {time} UTC")
        }
        _ => at.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rates_time_reads_in_utc_to_the_second() {
        assert_eq!(rate_time("2026-11-22T03:25:11Z"), "2026-11-22 03:25:11 UTC");
        assert_eq!(
            rate_time("2026-11-22T03:25:11.123Z"),
            "2026-11-22 03:25:11 UTC"
        );
        assert_eq!(rate_time("yesterday"), "yesterday");
        assert_eq!(
            rate_time("2026-11-22T03:25:11+01:00"),
            "2026-11-22T03:25:11+01:00"
        );
    }
}
