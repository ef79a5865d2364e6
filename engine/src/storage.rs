//! The database: one sqlx pool over SQLite (the embedded default) or PostgreSQL
//! (to scale out), picked once from the URL's scheme. Queries are written once, with
//! `$1` placeholders that both accept; each backend has its own migrations folder.
//!
//! Every write goes through [`Database::write`]: one writer task runs the writes
//! of this process one after another and commits them in groups (group commit).
//! Each write runs in its own savepoint, so a refused write changes nothing while
//! the others in its group commit; a write's caller hears back only once its group
//! is durably committed. One writer also means SQLite writers never wait on each
//! other's locks, and one `fsync` serves a whole group.

use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Executor};
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Result};

/// A statement whose SQL and binds it owns, ready to run as a write.
pub type Statement = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>>;

/// Most writes committed together.
const MAX_GROUP: usize = 128;

/// Hands a write's outcome to its caller once the group's commit is known.
type Deliver = Box<dyn FnOnce(Result<()>) + Send>;
/// A write as the writer task runs it: whether it succeeded, and its delivery.
type Job = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, (bool, Deliver)> + Send>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::Internal(
                "database URL must start with sqlite: or postgres://".into(),
            ))
        }
    }
}

#[derive(Clone)]
pub struct Database {
    url: String,
    pool: AnyPool,
    backend: Backend,
    writer: mpsc::Sender<Job>,
}

impl Database {
    /// Connects and runs the migrations that have not run yet.
    ///
    /// SQLite runs in WAL mode with `synchronous = FULL`: WAL lets readers go on while
    /// one writer commits, and FULL syncs the log at every commit, so a payment that
    /// was acknowledged survives a power cut (NORMAL could lose the last commits).
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let options = AnyConnectOptions::from_str(url)?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            // Checkpoints run in the background (see
                            // `spawn_checkpointer`), not inside the writer's commits.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                                 PRAGMA wal_autocheckpoint = 0;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?
            }
        };
        let (writer, jobs) = mpsc::channel(4096);
        spawn_writer(pool.clone(), backend, jobs)?;
        if backend == Backend::Sqlite {
            spawn_checkpointer(pool.clone());
        }
        let db = Database {
            url: url.to_string(),
            pool,
            backend,
            writer,
        };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// The URL this database was opened with (it may hold a password: never log it).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Runs `op` as one atomic write and answers once it is durably committed.
    /// If `op` fails, nothing it did is kept. `op` runs on the writer task with a
    /// connection already inside a transaction: it must not begin or commit one.
    pub async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                match op(conn).await {
                    Ok(value) => (
                        true,
                        Box::new(move |committed: Result<()>| {
                            let _ = answer.send(committed.map(|()| value));
                        }) as Deliver,
                    ),
                    Err(err) => (
                        false,
                        Box::new(move |_| {
                            let _ = answer.send(Err(err));
                        }) as Deliver,
                    ),
                }
            })
        });
        self.writer
            .send(job)
            .await
            .map_err(|_| Error::Internal("the database writer has stopped".into()))?;
        answered
            .await
            .map_err(|_| Error::Internal("the database writer dropped a write".into()))?
    }

    /// Runs one statement as a write (see [`Database::write`]); answers how many
    /// rows it changed. Its binds must be owned values.
    pub async fn execute(&self, statement: Statement) -> Result<u64> {
        self.write(move |conn| {
            Box::pin(async move { Ok(statement.execute(conn).await?.rows_affected()) })
        })
        .await
    }

    /// Waits for in-flight queries and closes every connection (SQLite checkpoints
    /// its log on the last close).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Copies the SQLite log back into the database file every second, beside the
/// writer rather than inside one of its commits (a passive checkpoint never
/// blocks a writer). Stops when the pool closes.
fn spawn_checkpointer(pool: AnyPool) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        while !pool.is_closed() {
            every.tick().await;
            if let Err(err) = pool.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
                if !pool.is_closed() {
                    tracing::warn!(error = %err, "checkpointing the SQLite log failed");
                }
            }
        }
    });
}

/// Runs the writer on a thread of its own: its many short waits on the database
/// are answered at once instead of queueing behind request handlers for the
/// server's worker threads. The thread ends when the last `Database` is dropped.
fn spawn_writer(pool: AnyPool, backend: Backend, jobs: mpsc::Receiver<Job>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("writer runtime: {e}")))?;
    std::thread::Builder::new()
        .name("ampere-writer".into())
        .spawn(move || runtime.block_on(write_groups(pool, backend, jobs)))
        .map_err(|e| Error::Internal(format!("writer thread: {e}")))?;
    Ok(())
}

/// The writer task: takes the writes waiting (up to `MAX_GROUP`), runs each in a
/// savepoint of one transaction, commits, then answers each caller.
async fn write_groups(pool: AnyPool, backend: Backend, mut jobs: mpsc::Receiver<Job>) {
    let begin = match backend {
        // Take the write lock at once, so the session store's writes queue
        // behind ours instead of failing on a lock upgrade.
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    };
    // On PostgreSQL a group would hold the row locks of all its writes until its
    // commit, and two processes' groups could then deadlock: commit one by one.
    let max_group = match backend {
        Backend::Sqlite => MAX_GROUP,
        Backend::Postgres => 1,
    };
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < max_group {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut delivers = Vec::with_capacity(group.len());
        let size = group.len();
        let started = std::time::Instant::now();
        let outcome = run_group(&pool, begin, group, &mut delivers).await;
        tracing::debug!(
            size,
            micros = started.elapsed().as_micros() as u64,
            "write group"
        );
        let message = outcome.as_ref().err().map(|e| e.to_string());
        if let Some(message) = &message {
            tracing::error!(error = %message, "a group of writes failed to commit");
        }
        for deliver in delivers {
            deliver(match &message {
                None => Ok(()),
                Some(m) => Err(Error::Internal(format!("commit failed: {m}"))),
            });
        }
    }
}

async fn run_group(
    pool: &AnyPool,
    begin: &str,
    group: Vec<Job>,
    delivers: &mut Vec<Deliver>,
) -> std::result::Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let outcome = run_group_on(&mut conn, begin, group, delivers).await;
    if outcome.is_err() {
        // Its transaction state is unknown: do not hand it to anyone else.
        conn.close_on_drop();
    }
    outcome
}

async fn run_group_on(
    conn: &mut AnyConnection,
    begin: &str,
    group: Vec<Job>,
    delivers: &mut Vec<Deliver>,
) -> std::result::Result<(), sqlx::Error> {
    // Each write runs in savepoint `write`. The savepoint statements ride along
    // with their neighbours in one round trip ("RELEASE ...; SAVEPOINT ..."): on
    // SQLite every round trip is a hand-off to sqlx's worker thread.
    let alone = group.len() == 1;
    conn.execute(
        if alone {
            begin.to_string()
        } else {
            format!("{begin}; SAVEPOINT write")
        }
        .as_str(),
    )
    .await?;
    let last = group.len() - 1;
    for (i, job) in group.into_iter().enumerate() {
        let ran = AssertUnwindSafe(job(conn)).catch_unwind().await;
        let (ok, deliver) = match ran {
            Ok(done) => done,
            Err(_) => {
                tracing::error!("a write panicked; its changes are rolled back");
                (false, Box::new(|_| {}) as Deliver)
            }
        };
        delivers.push(deliver);
        let next = match (alone, ok, i == last) {
            // A lone write needs no savepoint: its transaction is its undo.
            (true, true, _) => "COMMIT",
            (true, false, _) => "ROLLBACK",
            (false, true, false) => "RELEASE SAVEPOINT write; SAVEPOINT write",
            (false, false, false) => {
                "ROLLBACK TO SAVEPOINT write; RELEASE SAVEPOINT write; SAVEPOINT write"
            }
            (false, true, true) => "RELEASE SAVEPOINT write; COMMIT",
            (false, false, true) => "ROLLBACK TO SAVEPOINT write; RELEASE SAVEPOINT write; COMMIT",
        };
        if let Err(err) = conn.execute(next).await {
            let _ = conn.execute("ROLLBACK").await;
            return Err(err);
        }
    }
    Ok(())
}
