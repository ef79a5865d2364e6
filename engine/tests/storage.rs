//! The writer and the database's timeouts, on both databases: readers cannot starve
//! the writer, a stuck database answers writes with an error instead of holding
//! them forever, PostgreSQL's statement and lock timeouts cut what runs too long,
//! and whoever watches learns when the writer stops. Writes committed together
//! keep each one's outcome: a refused write, in a savepoint or whole
//! ([`Database::write_whole`]), changes nothing, and a whole write that breaks
//! part-way takes its group down with it rather than leave half of itself.

use std::time::{Duration, Instant};

use sqlx::{AnyConnection, Connection, Executor, Row};

use engine::storage::Timeouts;
use engine::{Backend, Database, Error};

testdb::on_both_databases!(
    database_url;
    readers_holding_every_pooled_connection_do_not_delay_a_write,
    a_write_queued_behind_a_stuck_database_gives_up_and_never_runs,
    closing_the_database_stops_the_writer_and_tells_its_watchers,
    in_one_group_a_refused_write_changes_nothing_and_the_others_commit,
    a_whole_write_that_breaks_part_way_keeps_nothing_of_its_group,
);

mod postgres_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_waits_on_a_row_lock_fails_after_lock_timeout() {
        super::a_write_that_waits_on_a_row_lock_fails_after_lock_timeout(testdb::postgres()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_statement_running_past_statement_timeout_is_cancelled() {
        super::a_statement_running_past_statement_timeout_is_cancelled(testdb::postgres()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_reconnects_after_its_connection_is_killed() {
        super::the_writer_reconnects_after_its_connection_is_killed(testdb::postgres()).await;
    }
}

async fn database_url(url: &str) -> String {
    url.to_string()
}

/// A database with a `probe` table holding row 1 (n = 0).
async fn open(url: &str, timeouts: Timeouts) -> Database {
    let db = Database::open(url, timeouts).await.expect("database opens");
    db.execute(sqlx::query(
        "CREATE TABLE probe (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)",
    ))
    .await
    .unwrap();
    db.execute(sqlx::query("INSERT INTO probe (id, n) VALUES (1, 0)"))
        .await
        .unwrap();
    db
}

async fn probe_rows(db: &Database) -> Vec<(i64, i64)> {
    sqlx::query("SELECT id, n FROM probe ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get("id"), row.get("n")))
        .collect()
}

fn increment_row_1() -> engine::storage::Statement {
    sqlx::query("UPDATE probe SET n = n + 1 WHERE id = 1")
}

/// A second connection that holds what the writer needs: on SQLite the write
/// lock, on PostgreSQL row 1.
async fn hold_row_1(url: &str, backend: Backend) -> AnyConnection {
    let mut other = AnyConnection::connect(url).await.unwrap();
    match backend {
        Backend::Sqlite => other.execute("BEGIN IMMEDIATE").await.unwrap(),
        Backend::Postgres => other
            .execute("BEGIN; SELECT n FROM probe WHERE id = 1 FOR UPDATE")
            .await
            .unwrap(),
    };
    other
}

async fn readers_holding_every_pooled_connection_do_not_delay_a_write(url: String) {
    let db = open(&url, Timeouts::default()).await;
    let size = db.pool().options().get_max_connections();
    let mut readers = Vec::new();
    for _ in 0..size {
        readers.push(db.pool().acquire().await.unwrap());
    }
    assert!(db.pool().try_acquire().is_none(), "the pool is exhausted");

    let started = Instant::now();
    let written = tokio::time::timeout(Duration::from_secs(3), db.execute(increment_row_1()))
        .await
        .expect("the write does not wait for a pooled connection");
    assert_eq!(written.unwrap(), 1);
    assert!(started.elapsed() < Duration::from_secs(3));

    drop(readers);
    assert_eq!(probe_rows(&db).await, vec![(1, 1)]);
}

async fn a_write_queued_behind_a_stuck_database_gives_up_and_never_runs(url: String) {
    let timeouts = Timeouts {
        statement: Duration::from_secs(30),
        lock: Duration::from_secs(30),
        queue: Duration::from_millis(500),
        group: Duration::from_secs(30),
    };
    let db = open(&url, timeouts).await;
    let other = hold_row_1(&url, db.backend()).await;

    // The writer takes the first write and waits on the database for it.
    let stuck = tokio::spawn({
        let db = db.clone();
        async move { db.execute(increment_row_1()).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The second waits in the queue behind it, and gives up after the bound.
    let started = Instant::now();
    let queued = db
        .execute(sqlx::query("INSERT INTO probe (id, n) VALUES (2, 0)"))
        .await;
    let waited = started.elapsed();
    let err = queued.expect_err("a write the writer could not take answers an error");
    assert!(matches!(err, Error::Internal(_)), "{err:?}");
    assert!(err.to_string().contains("not run"), "{err}");
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
        "gave up after {waited:?}"
    );

    // The database comes back: the write it was running completes, and the one
    // that gave up is never run later.
    other.close().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), stuck)
        .await
        .expect("the taken write is answered")
        .unwrap();
    assert_eq!(first.unwrap(), 1);
    db.execute(sqlx::query("UPDATE probe SET n = n + 10 WHERE id = 1"))
        .await
        .unwrap();
    assert_eq!(probe_rows(&db).await, vec![(1, 11)]);
}

async fn closing_the_database_stops_the_writer_and_tells_its_watchers(url: String) {
    let db = open(&url, Timeouts::default()).await;
    let stopped = db.writer_stopped();
    let mut still_running = Box::pin(db.writer_stopped());
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut still_running)
            .await
            .is_err(),
        "the writer runs while the database is open"
    );

    // A write queued before the close is still committed.
    let queued = tokio::spawn({
        let db = db.clone();
        async move { db.execute(increment_row_1()).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    db.close().await;
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("the watcher hears that the writer stopped");
    assert_eq!(queued.await.unwrap().unwrap(), 1);

    let after = db.execute(increment_row_1()).await.unwrap_err();
    assert!(after.to_string().contains("stopped"), "{after}");
}

async fn a_write_that_waits_on_a_row_lock_fails_after_lock_timeout(url: String) {
    let timeouts = Timeouts {
        lock: Duration::from_millis(300),
        ..Timeouts::default()
    };
    let db = open(&url, timeouts).await;
    let other = hold_row_1(&url, Backend::Postgres).await;

    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(5), db.execute(increment_row_1()))
        .await
        .expect("the write does not hang on the lock")
        .unwrap_err();
    assert!(matches!(err, Error::Database(_)), "{err:?}");
    assert!(format!("{err:?}").contains("lock timeout"), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Nothing was changed, and the writer goes on once the lock is gone.
    other.close().await.unwrap();
    assert_eq!(probe_rows(&db).await, vec![(1, 0)]);
    assert_eq!(db.execute(increment_row_1()).await.unwrap(), 1);
    assert_eq!(probe_rows(&db).await, vec![(1, 1)]);
}

async fn a_statement_running_past_statement_timeout_is_cancelled(url: String) {
    let timeouts = Timeouts {
        statement: Duration::from_millis(300),
        ..Timeouts::default()
    };
    let db = open(&url, timeouts).await;

    // Readers carry both timeouts.
    let setting = |name: &'static str| {
        let pool = db.pool().clone();
        async move {
            sqlx::query(&format!("SELECT current_setting('{name}') AS v"))
                .fetch_one(&pool)
                .await
                .unwrap()
                .get::<String, _>("v")
        }
    };
    assert_eq!(setting("statement_timeout").await, "300ms");
    assert_eq!(setting("lock_timeout").await, "5s");

    let read = sqlx::query("SELECT pg_sleep(3)")
        .execute(db.pool())
        .await
        .unwrap_err();
    assert!(
        format!("{read:?}").contains("statement timeout"),
        "{read:?}"
    );

    // And so does the writer: the write is cancelled and changes nothing.
    let started = Instant::now();
    let err = db
        .write(|conn| {
            Box::pin(async move {
                conn.execute("UPDATE probe SET n = 5 WHERE id = 1").await?;
                conn.execute("SELECT pg_sleep(3)").await?;
                Ok(())
            })
        })
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("statement timeout"), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(probe_rows(&db).await, vec![(1, 0)]);
}

async fn the_writer_reconnects_after_its_connection_is_killed(url: String) {
    let db = open(&url, Timeouts::default()).await;
    let writer_pid = || {
        let db = db.clone();
        async move {
            db.write(|conn| {
                Box::pin(async move {
                    let row = conn.fetch_one("SELECT pg_backend_pid() AS pid").await?;
                    Ok(row.get::<i32, _>("pid"))
                })
            })
            .await
        }
    };
    let before = writer_pid().await.unwrap();
    let killed = sqlx::query("SELECT pg_terminate_backend($1, 5000) AS done")
        .bind(before)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get::<bool, _>("done");
    assert!(killed);

    // At most the first write after the kill fails; the next one runs on a new
    // connection.
    let mut after = writer_pid().await;
    if after.is_err() {
        after = writer_pid().await;
    }
    let after = after.expect("the writer reconnects");
    assert_ne!(after, before);
    assert_eq!(db.execute(increment_row_1()).await.unwrap(), 1);
}

/// What a queued write answers after running its statement.
type Outcome = fn() -> engine::Result<()>;

/// Queues writes while the writer is busy with a slow one, so that they run
/// as one group (on SQLite; PostgreSQL commits writes one by one): each is
/// `(whole, sql, outcome)`, queued in this order. Answers their results.
async fn one_group(
    db: &Database,
    writes: Vec<(bool, &'static str, Outcome)>,
) -> Vec<engine::Result<()>> {
    let slow = tokio::spawn({
        let db = db.clone();
        async move {
            db.write(|_| {
                Box::pin(async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok(())
                })
            })
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut answers = Vec::new();
    for (whole, sql, outcome) in writes {
        let db = db.clone();
        answers.push(tokio::spawn(async move {
            let op = probe_write(sql, outcome);
            match whole {
                true => db.write_whole(op).await,
                false => db.write(op).await,
            }
        }));
        // Queued in order.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    slow.await.unwrap().unwrap();
    let mut results = Vec::new();
    for answer in answers {
        results.push(answer.await.unwrap());
    }
    results
}

/// The write `one_group` queues: `sql`, then `outcome`.
fn probe_write(
    sql: &'static str,
    outcome: Outcome,
) -> impl for<'c> FnOnce(
    &'c mut AnyConnection,
) -> futures_util::future::BoxFuture<'c, engine::Result<()>>
       + Send
       + 'static {
    move |conn| {
        Box::pin(async move {
            conn.execute(sql).await?;
            outcome()
        })
    }
}

fn done() -> engine::Result<()> {
    Ok(())
}

fn refused() -> engine::Result<()> {
    Err(Error::invalid("probe", "refused"))
}

fn broken() -> engine::Result<()> {
    Err(Error::Internal("broken".into()))
}

async fn in_one_group_a_refused_write_changes_nothing_and_the_others_commit(url: String) {
    let db = open(&url, Timeouts::default()).await;
    let results = one_group(
        &db,
        vec![
            (true, "INSERT INTO probe (id, n) VALUES (2, 1)", done),
            // Whole and refused: it changed nothing (its contract).
            (true, "SELECT 1", refused),
            // In a savepoint and refused after a change: the change is undone.
            (false, "INSERT INTO probe (id, n) VALUES (3, 1)", refused),
            (false, "INSERT INTO probe (id, n) VALUES (4, 1)", done),
            (true, "UPDATE probe SET n = n + 1 WHERE id = 1", done),
        ],
    )
    .await;
    let refusals: Vec<bool> = results.iter().map(|r| r.is_err()).collect();
    assert_eq!(refusals, [false, true, true, false, false], "{results:?}");
    assert_eq!(probe_rows(&db).await, vec![(1, 1), (2, 1), (4, 1)]);
}

async fn a_whole_write_that_breaks_part_way_keeps_nothing_of_its_group(url: String) {
    let db = open(&url, Timeouts::default()).await;
    let results = one_group(
        &db,
        vec![
            (false, "INSERT INTO probe (id, n) VALUES (2, 1)", done),
            (true, "INSERT INTO probe (id, n) VALUES (3, 1)", broken),
        ],
    )
    .await;
    assert!(
        matches!(results[1], Err(Error::Internal(ref m)) if m == "broken"),
        "{results:?}"
    );
    match db.backend() {
        // The group goes: the write before it fails too, and nothing stays.
        Backend::Sqlite => {
            assert!(matches!(results[0], Err(Error::Internal(_))), "{results:?}");
            assert_eq!(probe_rows(&db).await, vec![(1, 0)]);
        }
        // Each write is its own transaction.
        Backend::Postgres => {
            assert!(results[0].is_ok(), "{results:?}");
            assert_eq!(probe_rows(&db).await, vec![(1, 0), (2, 1)]);
        }
    }
    // The writer goes on.
    db.execute(increment_row_1()).await.unwrap();
    assert_eq!(probe_rows(&db).await[0], (1, 1));
}
