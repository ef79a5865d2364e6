//! History search on both databases: pages of a limit, a cursor that never skips
//! or repeats a transaction, filters that combine with it, a memo search that is
//! literal and folds case the same way everywhere, and nothing of another account.

use engine::wallet::{HistoryCursor, HistoryFilter, Transaction};
use engine::{Engine, Settings, User};

testdb::on_both_databases!(
    open_engine;
    paging_through_250_transactions_gives_each_once_newest_first,
    filters_combine_with_the_cursor,
    the_memo_search_is_literal_and_folds_ascii_case_alike,
    another_accounts_transactions_never_appear,
    getalldata_keeps_the_newest_transactions,
);

const PASSWORD: &str = "Correct-horse-7";
/// 2026-03-01T00:00:00Z.
const MARCH_1: i64 = 1_772_323_200_000;
const DAY: i64 = 86_400_000;

async fn open_engine(url: &str) -> Engine {
    Engine::open(url, Settings::default())
        .await
        .expect("engine opens")
}

async fn sign_up(engine: &Engine, name: &str) -> (User, String) {
    let user = engine.register(name, PASSWORD, None, name).await.unwrap();
    let node = engine.simnet.node_of_user(&user.id.0).await.unwrap().pubkey;
    (user, node)
}

/// What one recorded transaction is, as the test writes it in the database.
#[derive(Clone, Copy)]
enum Kind {
    Sent,
    Received,
    Onchain,
}

/// Records transactions of `node` straight in its tables, at chosen instants,
/// in one transaction (real payments cannot choose their day).
async fn record(engine: &Engine, node: &str, rows: &[(Kind, i64, &str)]) -> Vec<String> {
    let mut tx = engine.db.pool().begin().await.unwrap();
    let mut references = Vec::new();
    for (kind, at, memo) in rows {
        let reference = random_hex();
        let statement = match kind {
            Kind::Sent => sqlx::query(
                "INSERT INTO payments (node, payment_hash, destination, amount_msat, fee_msat, \
                 memo, preimage, created_at) VALUES ($1, $2, $1, 5000, 1000, $3, '00', $4)",
            ),
            Kind::Received => sqlx::query(
                "INSERT INTO invoices (node, payment_hash, bolt11, amount_msat, memo, preimage, \
                 created_at, expires_at, settled_at, received_msat) \
                 VALUES ($1, $2, 'lnbcrt', 7000, $3, '00', $4, $4, $4, 7000)",
            ),
            Kind::Onchain => sqlx::query(
                "INSERT INTO chain_txs (node, txid, amount_msat, kind, height, created_at) \
                 VALUES ($1, $2, 9000, $3, NULL, $4)",
            ),
        };
        statement
            .bind(node)
            .bind(&reference)
            .bind(*memo)
            .bind(*at)
            .execute(&mut *tx)
            .await
            .unwrap();
        references.push(reference);
    }
    tx.commit().await.unwrap();
    references
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// 250 transactions over five days, in groups of five sharing one instant (all
/// three kinds at once), so the order must break ties to page exactly.
fn mixed_rows() -> Vec<(Kind, i64, &'static str)> {
    let memos = ["tea", "Cake", "rent", "TEA time", "coffee"];
    (0..250)
        .map(|i| {
            let kind = [Kind::Sent, Kind::Received, Kind::Onchain][i % 3];
            let at = MARCH_1 + (i as i64 / 5) * (DAY / 10);
            (kind, at, memos[i % memos.len()])
        })
        .collect()
}

/// Every page of `filter` with pages of `limit`, checking each page's size.
async fn all_pages(
    engine: &Engine,
    user: &User,
    filter: &HistoryFilter,
    limit: usize,
) -> Vec<Transaction> {
    let mut seen = Vec::new();
    let mut cursor: Option<HistoryCursor> = None;
    for _ in 0..1000 {
        let page = engine
            .wallet
            .history(user, filter, cursor.as_ref(), limit)
            .await
            .unwrap();
        assert!(page.transactions.len() <= limit);
        seen.extend(page.transactions.iter().cloned());
        match page.next_cursor {
            Some(next) => {
                assert_eq!(
                    page.transactions.len(),
                    limit,
                    "only a full page has a next"
                );
                cursor = HistoryCursor::parse(&next).unwrap();
            }
            None => return seen,
        }
    }
    panic!("the pages never end");
}

fn key(t: &Transaction) -> (i64, String) {
    (t.time_ms, t.reference.clone())
}

/// Newest first, then by source name and reference descending: the documented order.
fn assert_newest_first(list: &[Transaction]) {
    let source = |t: &Transaction| {
        if t.kind.starts_with("onchain") {
            "onchain"
        } else {
            t.kind
        }
    };
    for pair in list.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            (a.time_ms, source(a), &a.reference) > (b.time_ms, source(b), &b.reference),
            "out of order: {a:?} then {b:?}"
        );
    }
}

async fn paging_through_250_transactions_gives_each_once_newest_first(engine: Engine) {
    let (alice, node) = sign_up(&engine, "alice").await;
    let references = record(&engine, &node, &mixed_rows()).await;
    let everything = HistoryFilter::default();

    let first = engine
        .wallet
        .history(&alice, &everything, None, 100)
        .await
        .unwrap();
    assert_eq!(first.transactions.len(), 100);
    assert!(first.next_cursor.is_some());

    let seen = all_pages(&engine, &alice, &everything, 100).await;
    assert_eq!(seen.len(), 250);
    assert_newest_first(&seen);
    let mut got: Vec<String> = seen.iter().map(|t| t.reference.clone()).collect();
    let mut want = references.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "every transaction exactly once");

    // Another page size gives the same sequence.
    let by_seven: Vec<_> = all_pages(&engine, &alice, &everything, 7)
        .await
        .iter()
        .map(key)
        .collect();
    assert_eq!(by_seven, seen.iter().map(key).collect::<Vec<_>>());

    // A transaction arriving while Alice pages does not shift her pages: it is
    // newer than her cursor, so it shows on the first page only.
    let page = engine
        .wallet
        .history(&alice, &everything, None, 100)
        .await
        .unwrap();
    let cursor = HistoryCursor::parse(page.next_cursor.as_deref().unwrap())
        .unwrap()
        .unwrap();
    record(&engine, &node, &[(Kind::Sent, MARCH_1 + 30 * DAY, "late")]).await;
    let second = engine
        .wallet
        .history(&alice, &everything, Some(&cursor), 100)
        .await
        .unwrap();
    assert_eq!(
        second.transactions.iter().map(key).collect::<Vec<_>>(),
        seen[100..200].iter().map(key).collect::<Vec<_>>()
    );
}

async fn filters_combine_with_the_cursor(engine: Engine) {
    let (alice, node) = sign_up(&engine, "alice").await;
    record(&engine, &node, &mixed_rows()).await;
    let reference = all_pages(&engine, &alice, &HistoryFilter::default(), 500).await;
    for (kind, from, to, q) in [
        ("sent", "", "", ""),
        ("received", "", "", "tea"),
        ("onchain", "2026-03-02", "2026-03-03", ""),
        ("", "2026-03-03", "2026-03-03", "TEA"),
        ("", "", "2026-03-01", "cake"),
    ] {
        let filter = HistoryFilter::parse(kind, from, to, q).unwrap();
        let expected: Vec<_> = reference
            .iter()
            .filter(|t| kind.is_empty() || t.kind.starts_with(kind))
            .filter(|t| filter.from_ms.is_none_or(|ms| t.time_ms >= ms))
            .filter(|t| filter.to_ms.is_none_or(|ms| t.time_ms < ms))
            .filter(|t| t.memo.to_lowercase().contains(&q.to_lowercase()))
            .map(key)
            .collect();
        assert!(expected.len() > 5, "{kind} {from} {to} {q}: a real test");
        let paged: Vec<_> = all_pages(&engine, &alice, &filter, 4)
            .await
            .iter()
            .map(key)
            .collect();
        assert_eq!(paged, expected, "{kind} {from} {to} {q}");
    }
}

async fn the_memo_search_is_literal_and_folds_ascii_case_alike(engine: Engine) {
    let (alice, node) = sign_up(&engine, "alice").await;
    let memos = [
        "100% tea",
        "100 tea",
        "a_b",
        "axb",
        r"back\slash",
        "Café CRÈME",
        "CAFÉ",
        "'; DROP TABLE payments; --",
    ];
    let rows: Vec<_> = memos
        .iter()
        .enumerate()
        .map(|(i, memo)| (Kind::Sent, MARCH_1 + i as i64, *memo))
        .collect();
    record(&engine, &node, &rows).await;
    let found = |q: &'static str| {
        let (engine, alice) = (&engine, &alice);
        async move {
            let filter = HistoryFilter::parse("", "", "", q).unwrap();
            let mut memos: Vec<String> = engine
                .wallet
                .history(alice, &filter, None, 100)
                .await
                .unwrap()
                .transactions
                .into_iter()
                .map(|t| t.memo)
                .collect();
            memos.sort();
            memos
        }
    };
    assert_eq!(found("%").await, ["100% tea"]);
    assert_eq!(found("_").await, ["a_b"]);
    assert_eq!(found(r"\").await, [r"back\slash"]);
    assert_eq!(found("0 t").await, ["100 tea"]);
    // ASCII letters fold; other letters match as written, on both databases.
    assert_eq!(found("cafÉ").await, ["CAFÉ"]);
    assert_eq!(found("café").await, ["Café CRÈME"]);
    assert_eq!(found("crÈme").await, ["Café CRÈME"]);
    assert!(found("crème").await.is_empty());
    assert_eq!(found("drop table").await, ["'; DROP TABLE payments; --"]);
    assert_eq!(found("  tea ").await, ["100 tea", "100% tea"]);
    assert_eq!(
        engine
            .wallet
            .history(&alice, &HistoryFilter::default(), None, 100)
            .await
            .unwrap()
            .transactions
            .len(),
        memos.len(),
        "the payments table is still there"
    );
}

async fn another_accounts_transactions_never_appear(engine: Engine) {
    let (alice, alice_node) = sign_up(&engine, "alice").await;
    let (bob, bob_node) = sign_up(&engine, "bob").await;
    let mine = record(&engine, &alice_node, &mixed_rows()[..60]).await;
    let theirs = record(&engine, &bob_node, &mixed_rows()).await;
    for filter in [
        HistoryFilter::default(),
        HistoryFilter::parse("received", "", "", "").unwrap(),
        HistoryFilter::parse("", "", "", "tea").unwrap(),
    ] {
        let seen = all_pages(&engine, &alice, &filter, 9).await;
        assert!(!seen.is_empty());
        assert!(seen.iter().all(|t| mine.contains(&t.reference)));
    }
    // A cursor from Bob's pages only says where to start: still Alice's rows.
    let bobs = engine
        .wallet
        .history(&bob, &HistoryFilter::default(), None, 3)
        .await
        .unwrap();
    let cursor = HistoryCursor::parse(&bobs.next_cursor.unwrap())
        .unwrap()
        .unwrap();
    let page = engine
        .wallet
        .history(&alice, &HistoryFilter::default(), Some(&cursor), 500)
        .await
        .unwrap();
    assert!(!page.transactions.is_empty());
    assert!(page
        .transactions
        .iter()
        .all(|t| mine.contains(&t.reference) && !theirs.contains(&t.reference)));
}

async fn getalldata_keeps_the_newest_transactions(engine: Engine) {
    let (alice, node) = sign_up(&engine, "alice").await;
    record(&engine, &node, &mixed_rows()).await;
    let overview = engine.wallet.overview(&alice).await.unwrap();
    let newest = all_pages(&engine, &alice, &HistoryFilter::default(), 500).await;
    assert_eq!(overview.transactions.len(), 200);
    assert_eq!(
        overview.transactions.iter().map(key).collect::<Vec<_>>(),
        newest[..200].iter().map(key).collect::<Vec<_>>()
    );
}
