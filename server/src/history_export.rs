//! `GET /rest/v1/history.csv`: the caller's history, filtered as the history page
//! is, as a CSV download. It is streamed page by page through the same SQL as
//! `GET /rest/v1/history` and stops at [`CSV_MAX_ROWS`]: the export is never held
//! in memory whole.
//!
//! Every text cell is quoted (RFC 4180), and text a spreadsheet would run as a
//! formula is neutralised with a leading `'`, at the start of a cell and after
//! every character a spreadsheet may split cells on (`,` `;` tab, line breaks,
//! `|`): the cell `a;=HYPERLINK(...)` never becomes a formula, whatever separator
//! the spreadsheet guesses.
//!
//! In usd, every amount is converted at the rate read when the export starts,
//! and each row says it in two more columns (`usd_per_btc`, `rate_at`).

use std::io;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{stream, Stream, StreamExt};
use serde::Deserialize;

use crate::gate::ErrorFormat;
use crate::gate::SignedIn;
use engine::wallet::{HistoryCursor, HistoryFilter, HistoryPage, Transaction};
use engine::{Engine, Unit, User};

/// Most rows a CSV export holds (newest first); narrower filters export the rest.
pub const CSV_MAX_ROWS: usize = 100_000;

/// Rows read per query: one page in memory at a time.
const PAGE_ROWS: usize = 500;

const HEADER: &str = "\"time\",\"type\",\"amount\",\"fee\",\"unit\",\"memo\",\"status\",\"id\"";

/// The columns an export in usd adds: the rate its amounts are in.
const RATE_HEADER: &str = ",\"usd_per_btc\",\"rate_at\"";

#[derive(Deserialize)]
pub(crate) struct HistoryQuery {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    q: String,
}

/// `GET /rest/v1/history.csv?type=&from=&to=&q=`: the caller's transactions that
/// pass the filter, newest first, amounts in the account's denomination (in
/// usd at the latest rate, fresh or stale, which its columns name; 503 when
/// there is none).
pub(crate) async fn history_csv(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return ErrorFormat::MyLightning.error(StatusCode::BAD_REQUEST, "invalid query");
    };
    let filter = match HistoryFilter::parse(&query.kind, &query.from, &query.to, &query.q) {
        Ok(filter) => filter,
        Err(err) => {
            return ErrorFormat::MyLightning.error(StatusCode::BAD_REQUEST, &err.to_string())
        }
    };
    let unit = match caller.user.denomination.unit(&engine.desk.market) {
        Ok(unit) => unit,
        Err(err) => {
            return ErrorFormat::MyLightning
                .error(StatusCode::SERVICE_UNAVAILABLE, &err.to_string())
        }
    };
    // The first page is read before answering: a failure is still a 500 then,
    // not a download cut short.
    let export = Export {
        engine,
        user: caller.user,
        unit,
        filter,
        page_rows: PAGE_ROWS,
        left: CSV_MAX_ROWS,
    };
    let first = match export.page(None).await {
        Ok(page) => page,
        Err(err) => {
            tracing::error!(error = ?err, "history export failed");
            return ErrorFormat::MyLightning
                .error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"ampere-history.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(export.csv(first)),
    )
        .into_response()
}

/// An export under way: whose, which rows, and how many more it may hold.
struct Export {
    engine: Engine,
    user: User,
    unit: Unit,
    filter: HistoryFilter,
    page_rows: usize,
    left: usize,
}

impl Export {
    async fn page(&self, after: Option<&HistoryCursor>) -> engine::Result<HistoryPage> {
        self.engine
            .wallet
            .history(
                &self.user,
                &self.filter,
                after,
                self.page_rows.min(self.left),
            )
            .await
    }

    /// The header, then one chunk per page until the history or the cap ends.
    /// A failure after the first page ends the body with an error, so the client
    /// sees a broken download rather than a file that looks complete.
    fn csv(self, first: HistoryPage) -> impl Stream<Item = io::Result<Bytes>> {
        let unit = self.unit;
        let header = match unit {
            Unit::Usd(_) => format!("{HEADER}{RATE_HEADER}\r\n"),
            _ => format!("{HEADER}\r\n"),
        };
        let pages = stream::unfold(
            Some((self, Some(first), None::<HistoryCursor>)),
            move |state| async move {
                let (mut export, page, after) = state?;
                let page = match page {
                    Some(page) => page,
                    None => match export.page(after.as_ref()).await {
                        Ok(page) => page,
                        Err(err) => {
                            tracing::error!(error = ?err, "history export failed midway");
                            return Some((Err(io::Error::other("history export failed")), None));
                        }
                    },
                };
                let rows = &page.transactions[..page.transactions.len().min(export.left)];
                let mut chunk = String::with_capacity(rows.len() * 200);
                for t in rows {
                    csv_row(&mut chunk, t, unit);
                }
                export.left -= rows.len();
                let next = match (&page.next_cursor, rows.last()) {
                    (Some(_), Some(last)) if export.left > 0 => Some(last.cursor()),
                    _ => None,
                };
                let state = next.map(|after| (export, None, Some(after)));
                Some((Ok(Bytes::from(chunk)), state))
            },
        );
        stream::once(async { Ok(Bytes::from(header)) }).chain(pages)
    }
}

fn csv_row(out: &mut String, t: &Transaction, unit: Unit) {
    let mut cells = vec![
        text_cell(&utc_timestamp(t.time_ms)),
        text_cell(t.kind),
        number_cell(&unit.format(t.amount)),
        number_cell(&unit.format(t.fee)),
        text_cell(unit.as_str()),
        text_cell(&t.memo),
        text_cell(t.status),
        text_cell(&t.reference),
    ];
    if let Some(rate) = unit.rate() {
        cells.push(number_cell(&rate.usd_per_btc()));
        cells.push(text_cell(&utc_timestamp(rate.at_ms())));
    }
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

/// Characters a spreadsheet may split a cell on (when it guesses the separator,
/// or is told another one than the comma).
const SEPARATORS: [char; 6] = [',', ';', '\t', '\n', '\r', '|'];

/// What makes a spreadsheet read text as a formula (and the full-width forms,
/// which some fold to these).
const FORMULA_START: [char; 8] = ['=', '+', '-', '@', '＝', '＋', '－', '＠'];

/// A text cell: quoted, its quotes doubled (RFC 4180), and a `'` before every
/// part that would start a formula: at the start of the cell (also a leading tab
/// or carriage return, as OWASP advises) and after each separator, looking past
/// blanks and quotes, which a spreadsheet drops before it decides.
fn text_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    out.push('"');
    // Where a `'` goes if the part that starts there turns out to be a formula;
    // `None` once the part has started with something harmless.
    let mut part_start = Some(out.len());
    for (i, c) in text.chars().enumerate() {
        if let Some(at) = part_start {
            let leading_control = i == 0 && matches!(c, '\t' | '\r');
            if FORMULA_START.contains(&c) || leading_control {
                out.insert(at, '\'');
                part_start = None;
            } else if !(c == ' ' || c == '"' || c == '\u{a0}') {
                part_start = None;
            }
        }
        if c == '"' {
            out.push('"');
        }
        out.push(c);
        if SEPARATORS.contains(&c) {
            part_start = Some(out.len());
        }
    }
    out.push('"');
    out
}

/// An amount: written as a bare number, so spreadsheets sum it. Anything but
/// digits and a point would be text, and is quoted as such.
fn number_cell(amount: &str) -> String {
    if !amount.is_empty() && amount.chars().all(|c| c.is_ascii_digit() || c == '.') {
        amount.to_string()
    } else {
        text_cell(amount)
    }
}

/// `2026-11-22T03:25:11Z` for a Unix time in milliseconds.
fn utc_timestamp(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_cell_is_quoted_and_no_part_of_it_is_a_formula() {
        for (memo, cell) in [
            ("tea", r#""tea""#),
            ("", r#""""#),
            (r#"Cake, "big""#, r#""Cake, ""big""""#),
            ("=SUM(A1)", r#""'=SUM(A1)""#),
            (
                r#"a;=HYPERLINK("http://x","y")"#,
                r#""a;'=HYPERLINK(""http://x"",""y"")""#,
            ),
            ("a,+1", r#""a,'+1""#),
            ("a|@cmd", r#""a|'@cmd""#),
            ("a\t-1", "\"a\t'-1\""),
            ("a\n=1", "\"a\n'=1\""),
            ("a\r\n=1", "\"a\r\n'=1\""),
            ("\t=1", "\"'\t'=1\""),
            ("\rx", "\"'\rx\""),
            ("  =1", r#""'  =1""#),
            (r#"a; "=1""#, r#""a;' ""=1""""#),
            ("＝1+1", r#""'＝1+1""#),
            ("a=b; c-d", r#""a=b; c-d""#),
            ("'=already text", r#""'=already text""#),
            ("price 5 - 3", r#""price 5 - 3""#),
        ] {
            assert_eq!(text_cell(memo), cell, "{memo:?}");
        }
    }

    #[test]
    fn amounts_are_bare_numbers_and_anything_else_is_text() {
        assert_eq!(number_cell("1000.5"), "1000.5");
        assert_eq!(number_cell("0.00001"), "0.00001");
        assert_eq!(number_cell("-1"), r#""'-1""#);
        assert_eq!(number_cell(""), r#""""#);
    }

    #[test]
    fn a_row_is_one_line_of_quoted_text_and_bare_amounts() {
        let t = Transaction {
            kind: "sent",
            amount: engine::Msat(1_000_500),
            fee: engine::Msat(1010),
            memo: "a;=1".into(),
            time_ms: 1_795_317_911_000,
            status: "succeeded",
            reference: "ab01".into(),
        };
        let mut line = String::new();
        csv_row(&mut line, &t, Unit::Sat);
        assert_eq!(
            line,
            "\"2026-11-22T03:25:11Z\",\"sent\",1000.5,1.01,\"sat\",\"a;'=1\",\"succeeded\",\"ab01\"\r\n"
        );
        // In usd (100,000.00 USD/BTC: a sat is 0.1 cent), the row names its rate.
        let price = engine::desk::contract::Price::from_cents(10_000_000);
        let usd = Unit::Usd(engine::UsdRate::new(price, 1_795_317_900_000, false).unwrap());
        let mut line = String::new();
        csv_row(&mut line, &t, usd);
        assert_eq!(
            line,
            "\"2026-11-22T03:25:11Z\",\"sent\",1.00,0.00,\"usd\",\"a;'=1\",\"succeeded\",\"ab01\",\
             100000.00,\"2026-11-22T03:25:00Z\"\r\n"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_export_streams_page_by_page_and_stops_at_its_cap() {
        let db = testdb::sqlite();
        let engine = Engine::open(&db.url, engine::Settings::default())
            .await
            .unwrap();
        let user = engine
            .register("alice", "Correct-horse-7", None, "test")
            .await
            .unwrap();
        let address = engine.wallet.node(&user).await.unwrap().address;
        for _ in 0..30 {
            engine
                .simnet
                .faucet(&address, engine::Msat::from_sat(1000))
                .await
                .unwrap();
        }
        let export = |cap: usize| {
            let engine = engine.clone();
            let user = user.clone();
            async move {
                let export = Export {
                    engine,
                    user,
                    unit: Unit::Sat,
                    filter: HistoryFilter::default(),
                    page_rows: 7,
                    left: cap,
                };
                let first = export.page(None).await.unwrap();
                let chunks: Vec<Bytes> = export
                    .csv(first)
                    .map(|chunk| chunk.unwrap())
                    .collect()
                    .await;
                let text: String = chunks
                    .iter()
                    .map(|c| std::str::from_utf8(c).unwrap())
                    .collect();
                (chunks.len(), text)
            }
        };
        let (chunks, all) = export(CSV_MAX_ROWS).await;
        let lines: Vec<&str> = all.trim_end().split("\r\n").collect();
        assert_eq!(lines[0], HEADER);
        assert_eq!(lines.len(), 31);
        assert_eq!(chunks, 1 + 5, "the header, then pages of 7, 7, 7, 7 and 2");
        let ids: std::collections::HashSet<&str> = lines[1..]
            .iter()
            .map(|l| l.rsplit(',').next().unwrap())
            .collect();
        assert_eq!(ids.len(), 30, "every transaction once");

        let (_, capped) = export(12).await;
        let capped: Vec<&str> = capped.trim_end().split("\r\n").collect();
        assert_eq!(capped.len(), 13, "the header and the 12 newest");
        assert_eq!(capped[1..], lines[1..13]);
    }
}
