use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use leptos_router::{lazy_route, LazyRoute};

use super::url_encode;
use crate::api::mylightning::{history, HistoryResponse};
use crate::api::session::Account;
use crate::components::{ErrorCard, Live, RateNote, SignedIn};

lazy_wallet_page!(HistoryPage, "History · Ampere", History);

/// The filter of the history, as it stands in the URL's query (`type`, `from`,
/// `to`, `q`), and the page (`cursor`): a filtered view can be bookmarked, and
/// works without JavaScript.
#[derive(Clone, Default, PartialEq)]
struct Filter {
    kind: String,
    from: String,
    to: String,
    q: String,
    cursor: String,
}

impl Filter {
    /// The filter as query text (without the page: the CSV export and a new
    /// filter start from the newest).
    fn query(&self) -> String {
        format!(
            "type={}&from={}&to={}&q={}",
            url_encode(&self.kind),
            url_encode(&self.from),
            url_encode(&self.to),
            url_encode(&self.q)
        )
    }

    /// The link to the page that starts after `cursor`, with the same filter.
    fn older(&self, cursor: &str) -> String {
        format!("/history?{}&cursor={}", self.query(), url_encode(cursor))
    }
}

/// Every transaction, filtered by type, day and memo, a page at a time (an
/// "Older" link carries the cursor in the URL), and exported as CSV.
#[component]
fn History(account: Account) -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| {
        query.with(|q| Filter {
            kind: q.get("type").unwrap_or_default(),
            from: q.get("from").unwrap_or_default(),
            to: q.get("to").unwrap_or_default(),
            q: q.get("q").unwrap_or_default(),
            cursor: q.get("cursor").unwrap_or_default(),
        })
    });
    let live = Live::get();
    let transactions = Resource::new_blocking(
        // Blocks alone change no entry: a confirmation comes as its own event.
        move || (filter.get(), live.funds()),
        |(f, _)| history(f.kind, f.from, f.to, f.q, String::new(), f.cursor),
    );
    let current = filter.get_untracked();
    let csv = move || format!("/rest/v1/history.csv?{}", filter.get().query());
    let unit = account.denomination;
    let kinds = [
        ("", "All"),
        ("sent", "Sent"),
        ("received", "Received"),
        ("onchain", "On chain"),
    ];
    view! {
        <h1>"History"</h1>
        <section class="card">
            <Form method="GET" action="/history" attr:class="filters">
                <div class="field">
                    <label for="history-type">"Type"</label>
                    <select id="history-type" name="type">
                        {kinds.into_iter().map(|(value, label)| view! {
                            <option value=value selected=current.kind == value>{label}</option>
                        }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="history-from">"From"</label>
                    <input id="history-from" name="from" type="date" value=current.from.clone() />
                </div>
                <div class="field">
                    <label for="history-to">"To"</label>
                    <input id="history-to" name="to" type="date" value=current.to.clone() />
                </div>
                <div class="field grow">
                    <label for="history-q">"Memo contains"</label>
                    <input id="history-q" name="q" type="search" value=current.q.clone() autocomplete="off" />
                </div>
                <button type="submit" class="secondary">"Filter"</button>
            </Form>
            <p class="actions">
                <a class="button secondary" href=csv download="ampere-history.csv">"Export CSV"</a>
            </p>
        </section>
        <Transition fallback=|| view! { <p class="loading">"Loading the history…"</p> }>
            {move || {
                let unit = unit.clone();
                Suspend::new(async move {
                    let result = transactions.await;
                    let filter = filter.get_untracked();
                    match result {
                        Ok(page) => view! { <Transactions page filter unit /> }.into_any(),
                        Err(err) => view! { <ErrorCard err /> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}

#[component]
fn Transactions(page: HistoryResponse, filter: Filter, unit: String) -> impl IntoView {
    let paged = !filter.cursor.is_empty();
    let newest = format!("/history?{}", filter.query());
    let older = page
        .next_cursor
        .as_deref()
        .map(|cursor| filter.older(cursor));
    let list = page.transactions;
    let rate = page.rate;
    if list.is_empty() {
        return view! {
            <p class="card empty">"No transactions match."</p>
            {paged.then(|| view! { <p><a href=newest.clone()>"Newest transactions"</a></p> })}
        }
        .into_any();
    }
    view! {
        <section class="card">
            <table class="history">
                <caption class="visually-hidden">"Transactions, newest first"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Date (UTC)"</th>
                        <th scope="col">"Type"</th>
                        <th scope="col" class="num">{format!("Amount ({unit})")}</th>
                        <th scope="col" class="num">"Fee"</th>
                        <th scope="col">"Memo"</th>
                        <th scope="col">"Status"</th>
                    </tr>
                </thead>
                <tbody>
                    {list.into_iter().map(|t| view! {
                        <tr data-testid="transaction">
                            <td>{utc_date(t.time)}</td>
                            <td>{kind_label(&t.kind)}</td>
                            <td class="num" class:incoming=t.kind.ends_with("received")>
                                {format!("{}{}", if t.kind.ends_with("received") { "+" } else { "−" }, t.amount.grouped())}
                            </td>
                            <td class="num">{t.fee.grouped()}</td>
                            <td class="memo">{t.memo}</td>
                            <td>{t.status}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            <RateNote rate />
            <nav class="actions" aria-label="Pages of the history">
                {paged.then(|| view! { <a href=newest.clone()>"Newest"</a> })}
                {older.map(|href| view! { <a href=href rel="next" data-testid="history-older">"Older"</a> })}
            </nav>
        </section>
    }
    .into_any()
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "sent" => "Sent",
        "received" => "Received",
        "onchain_received" => "Received on chain",
        "onchain_sent" => "Sent on chain",
        _ => "Other",
    }
}

/// `2026-11-22 03:25` for Unix seconds, in UTC (the filter's days are UTC too).
fn utc_date(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let minutes = seconds.rem_euclid(86_400) / 60;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        minutes / 60,
        minutes % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_in_utc() {
        assert_eq!(utc_date(0), "1970-01-01 00:00");
        assert_eq!(utc_date(1_795_317_911), "2026-11-22 03:25");
        assert_eq!(utc_date(1_709_164_800 + 86_399), "2024-02-29 23:59");
    }

    #[test]
    fn a_filter_becomes_a_query_with_its_text_escaped() {
        let filter = Filter {
            kind: "sent".into(),
            from: "2026-11-01".into(),
            to: String::new(),
            q: "tea & <cake>".into(),
            cursor: "ignored".into(),
        };
        assert_eq!(
            filter.query(),
            "type=sent&from=2026-11-01&to=&q=tea%20%26%20%3Ccake%3E"
        );
        assert_eq!(
            filter.older("31a2"),
            "/history?type=sent&from=2026-11-01&to=&q=tea%20%26%20%3Ccake%3E&cursor=31a2"
        );
    }
}
