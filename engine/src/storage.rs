//! The database: one sqlx pool over SQLite (the embedded default) or PostgreSQL
//! (to scale out) for reads, picked once from the URL's scheme, and one writer.
//! Queries are written once, with `$1` placeholders that both accept; each backend
//! has its own migrations folder.
//!
//! Every write goes through [`Database::write`]: one writer task, on a thread and a
//! connection of its own (readers holding every pooled connection never delay it),
//! runs the writes of this process one after another and commits them in groups
//! (group commit). Each write runs in its own savepoint (or, for the few writes
//! whose statements change all or nothing by themselves, none:
//! [`Database::write_whole`]), so a refused write changes
//! nothing while the others in its group commit; a write's caller hears back only
//! once its group is durably committed. One writer also means SQLite writers never
//! wait on each other's locks, and one `fsync` serves a whole group.
//!
//! Nothing waits on the database forever ([`Timeouts`]): on PostgreSQL every
//! connection carries `statement_timeout` and `lock_timeout`; a write the writer has
//! not taken within [`Timeouts::queue`] answers an error and is never run; a group
//! the database does not finish within [`Timeouts::group`] fails, and the writer
//! reconnects for the next one.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::{Error, Result};

/// A statement whose SQL and binds it owns, ready to run as a write.
pub type Statement = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>>;

/// Most writes committed together.
const MAX_GROUP: usize = 128;

/// Hands a write's outcome to its caller once the group's commit is known.
type Deliver = Box<dyn FnOnce(Result<()>) + Send>;
/// A write as the writer task runs it: how it ended, and its delivery.
type Run = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, (Ran, Deliver)> + Send>;

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    Done,
    /// Failed with a refusal (bad input, short funds, ...).
    Refused,
    /// Failed on the server's side (the database, a broken invariant) or
    /// panicked.
    Broke,
}

/// Whether the writer undoes a failed write by a savepoint of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Undo {
    /// [`Database::write`]: any write, run in a savepoint.
    Savepoint,
    /// [`Database::write_whole`]: statements that change all or nothing by
    /// their own conditions; no savepoint.
    Whole,
}

/// What the writer is asked to do.
enum Order {
    Write(Job),
    /// Finish the writes queued before, close the connection, stop.
    Close(oneshot::Sender<()>),
    /// Commit the writes queued before, then let another connection write
    /// (see [`Database::beside`]).
    Beside(Turn),
}

/// Another connection's turn to write: the writer says `go` and waits for
/// `done` (or for its sender to be dropped).
struct Turn {
    go: oneshot::Sender<()>,
    done: oneshot::Receiver<()>,
}

/// A write waiting for the writer.
struct Job {
    claim: Arc<Claim>,
    undo: Undo,
    run: Run,
}

/// Decides once whom a queued write belongs to: the writer, which takes it just
/// before running it, or its caller, who abandons it when giving up waiting. So a
/// write whose caller was told it failed is never run afterwards.
struct Claim(AtomicU8);

const PENDING: u8 = 0;
const TAKEN: u8 = 1;
const ABANDONED: u8 = 2;

impl Claim {
    fn new() -> Arc<Self> {
        Arc::new(Claim(AtomicU8::new(PENDING)))
    }

    /// True when the writer may run the write.
    fn take(&self) -> bool {
        self.0
            .compare_exchange(PENDING, TAKEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// True when the write will never run.
    fn abandon(&self) -> bool {
        match self
            .0
            .compare_exchange(PENDING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == ABANDONED,
        }
    }
}

/// Abandons a write whose caller stops waiting (a dropped request included)
/// before the writer took it.
struct AbandonOnDrop(Arc<Claim>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// How long the database may keep anyone waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// PostgreSQL's `statement_timeout` on every connection: the longest one
    /// statement runs (zero: no limit). Migrations run without it.
    pub statement: Duration,
    /// PostgreSQL's `lock_timeout` on every connection: the longest a statement
    /// waits for a row or table lock (zero: no limit).
    pub lock: Duration,
    /// The longest a write waits in the queue for the writer to take it; it then
    /// answers an error and is never run.
    pub queue: Duration,
    /// The longest the writer spends on one group of writes, reconnecting
    /// included; its writes then answer an error. A caller hears back within
    /// `queue + group` at most.
    pub group: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            statement: Duration::from_secs(10),
            lock: Duration::from_secs(5),
            queue: Duration::from_secs(10),
            group: Duration::from_secs(20),
        }
    }
}

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

/// One `Arc`: the engine's services each hold a clone, and cloning must not
/// copy the URL or touch the writer's shared counters.
#[derive(Clone)]
pub struct Database(Arc<Connections>);

struct Connections {
    url: String,
    pool: AnyPool,
    backend: Backend,
    timeouts: Timeouts,
    writer: mpsc::Sender<Order>,
    writer_stopped: watch::Receiver<bool>,
}

/// Names the backend only: the URL may hold a password.
impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.0.backend)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// [`Database::open`] with the default timeouts.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::open(url, Timeouts::default()).await
    }

    /// Connects, runs the migrations that have not run yet and starts the writer.
    ///
    /// SQLite runs in WAL mode with `synchronous = FULL`: WAL lets readers go on while
    /// one writer commits, and FULL syncs the log at every commit, so a payment that
    /// was acknowledged survives a power cut (NORMAL could lose the last commits).
    pub async fn open(url: &str, timeouts: Timeouts) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let options = AnyConnectOptions::from_str(url)?;

        // A migration may rightly run longer than any request's statement, and
        // waits for another process's migrations: no timeouts on its connection.
        let mut migrating = connect_one(&options, backend, None).await?;
        migrate(&mut migrating, backend).await?;
        migrating.close().await?;

        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(match backend {
                Backend::Sqlite => Duration::from_secs(30),
                Backend::Postgres => Duration::from_secs(10),
            })
            .after_connect(move |conn, _meta| {
                Box::pin(async move { prepare(conn, backend, Some(timeouts)).await })
            })
            .connect_with(options.clone())
            .await?;
        let (writer, writer_stopped) = spawn_writer(options, backend, timeouts).await?;
        if backend == Backend::Sqlite {
            spawn_checkpointer(pool.clone());
        }
        Ok(Database(Arc::new(Connections {
            url: url.to_string(),
            pool,
            backend,
            timeouts,
            writer,
            writer_stopped,
        })))
    }

    /// The URL this database was opened with (it may hold a password: never log it).
    pub fn url(&self) -> String {
        self.0.url.clone()
    }

    pub fn backend(&self) -> Backend {
        self.0.backend
    }

    pub fn timeouts(&self) -> Timeouts {
        self.0.timeouts
    }

    /// The readers' pool. The writer does not draw from it.
    pub fn pool(&self) -> &AnyPool {
        &self.0.pool
    }

    /// Runs `op` as one atomic write and answers once it is durably committed.
    /// If `op` fails, nothing it did is kept. `op` runs on the writer task with a
    /// connection already inside a transaction: it must not begin or commit one.
    /// It talks to the database only: on SQLite the writer's runtime has
    /// timers but no I/O driver (no sockets, processes or signals).
    ///
    /// When the writer has not taken the write within [`Timeouts::queue`] (a stuck
    /// database, a long queue), this answers an error and the write never runs; so
    /// does a caller that stops waiting (its future dropped) before that.
    pub async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.submit(Undo::Savepoint, op).await
    }

    /// [`Database::write`] for a hot write whose statements change all or
    /// nothing by their own conditions (each later statement of a batch
    /// conditioned on the one before, `changes()`), so that a refusal
    /// ([`Error::is_internal`] false) means nothing changed. The writer then
    /// opens no savepoint for it: a round trip fewer to the connection on
    /// SQLite, where every write of the process passes through the writer one
    /// after another. An internal failure may have changed part: the writer
    /// then rolls its whole group back, and every write of the group fails.
    pub async fn write_whole<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.submit(Undo::Whole, op).await
    }

    async fn submit<T, F>(&self, undo: Undo, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (answer, mut answered) = oneshot::channel::<Result<T>>();
        let run: Run = Box::new(move |conn| {
            Box::pin(async move {
                match op(conn).await {
                    Ok(value) => (
                        Ran::Done,
                        Box::new(move |committed: Result<()>| {
                            let _ = answer.send(committed.map(|()| value));
                        }) as Deliver,
                    ),
                    Err(err) => (
                        if err.is_internal() {
                            Ran::Broke
                        } else {
                            Ran::Refused
                        },
                        Box::new(move |_| {
                            let _ = answer.send(Err(err));
                        }) as Deliver,
                    ),
                }
            })
        });
        let claim = Claim::new();
        let _abandon = AbandonOnDrop(claim.clone());
        let deadline = Instant::now() + self.0.timeouts.queue;
        let not_taken = || {
            Error::Internal(format!(
                "the database writer did not take a write within {:?}; it was not run",
                self.0.timeouts.queue
            ))
        };
        let job = Job {
            claim: claim.clone(),
            undo,
            run,
        };
        match tokio::time::timeout_at(deadline, self.0.writer.send(Order::Write(job))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(Error::Internal("the database writer has stopped".into())),
            Err(_) => return Err(not_taken()),
        }
        let dropped = |_| Error::Internal("the database writer dropped a write".into());
        match tokio::time::timeout_at(deadline, &mut answered).await {
            Ok(outcome) => outcome.map_err(dropped)?,
            Err(_) if claim.abandon() => Err(not_taken()),
            // The writer took it: its answer comes within the writer's own bound.
            Err(_) => answered.await.map_err(dropped)?,
        }
    }

    /// Runs `op`, a write that another connection makes to this database (the
    /// session store's), between two of the writer's groups, while the writer
    /// waits. On SQLite one connection writes at a time, and a busy writer's
    /// back-to-back groups would otherwise starve the other connection until
    /// its busy timeout (a login answered 500 while the desk trades). On
    /// PostgreSQL, whose locks are per row, `op` runs at once.
    pub async fn beside<T, F>(&self, op: F) -> Result<T>
    where
        F: Future<Output = T>,
    {
        if self.0.backend == Backend::Postgres {
            return Ok(op.await);
        }
        let (go, mut went) = oneshot::channel();
        let (done, finished) = oneshot::channel();
        let turn = Turn { go, done: finished };
        let deadline = Instant::now() + self.0.timeouts.queue;
        let waited = |what: &str| {
            Error::Internal(format!(
                "the database writer did not {what} within {:?}",
                self.0.timeouts.queue
            ))
        };
        match tokio::time::timeout_at(deadline, self.0.writer.send(Order::Beside(turn))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(Error::Internal("the database writer has stopped".into())),
            Err(_) => return Err(waited("take a turn")),
        }
        match tokio::time::timeout_at(deadline, &mut went).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(Error::Internal("the database writer has stopped".into())),
            Err(_) => return Err(waited("give a turn")),
        }
        let outcome = op.await;
        let _ = done.send(());
        Ok(outcome)
    }

    /// Runs one statement as a write (see [`Database::write`]); answers how many
    /// rows it changed. Its binds must be owned values.
    pub async fn execute(&self, statement: Statement) -> Result<u64> {
        self.write(move |conn| {
            Box::pin(async move { Ok(statement.execute(conn).await?.rows_affected()) })
        })
        .await
    }

    /// The server's secret named `name` (32 random bytes), made on the very first
    /// start: signing keys, HMAC keys. `ON CONFLICT DO NOTHING` lets two
    /// processes starting together agree on one.
    pub async fn secret(&self, name: &str) -> Result<Vec<u8>> {
        use sqlx::Row;
        self.execute(
            sqlx::query(
                "INSERT INTO server_secrets (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name.to_string())
            .bind(crate::random_hex(32)),
        )
        .await?;
        let stored: String = sqlx::query("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(self.pool())
            .await?
            .try_get("value")?;
        hex::decode(stored).map_err(|e| Error::Internal(format!("secret {name}: {e}")))
    }

    /// Resolves once the writer has stopped: after [`Database::close`], or because
    /// it died, after which no write can succeed (a server should then exit).
    pub fn writer_stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopped = self.0.writer_stopped.clone();
        async move {
            // An error means the writer's side is gone: stopped as well.
            let _ = stopped.wait_for(|stopped| *stopped).await;
        }
    }

    /// Lets the writer finish the writes queued so far and close its connection,
    /// then waits for in-flight queries and closes the pool (SQLite checkpoints its
    /// log on the last close).
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.0.writer.send(Order::Close(done)).await.is_ok() {
            let _ = tokio::time::timeout(self.0.timeouts.group, closed).await;
        }
        self.0.pool.close().await;
    }
}

/// The right to run a periodic job (the simnet's miner, the desk's ticker) in
/// one process at a time: on PostgreSQL, a session-level advisory lock on `key`,
/// held on a connection of its own (it goes with the connection, so a process
/// that dies frees it and another takes over); on SQLite, one process owns the
/// database anyway.
pub(crate) struct Lease {
    key: i64,
    job: &'static str,
    connection: Option<sqlx::PgConnection>,
}

impl Lease {
    pub(crate) fn new(key: i64, job: &'static str) -> Self {
        Lease {
            key,
            job,
            connection: None,
        }
    }

    /// Whether this process holds the lease now (taking it if it is free).
    /// Asked at every run: cheap, and a lost connection shows here.
    pub(crate) async fn held(&mut self, db: &Database) -> bool {
        if db.backend() != Backend::Postgres {
            return true;
        }
        if self.connection.is_none() {
            match sqlx::PgConnection::connect(&db.url()).await {
                Ok(conn) => self.connection = Some(conn),
                Err(err) => {
                    tracing::warn!(error = %err, job = self.job, "cannot reach the database");
                    return false;
                }
            }
        }
        let conn = self.connection.as_mut().expect("just connected");
        match sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
            .bind(self.key)
            .fetch_one(conn)
            .await
        {
            Ok(held) => held,
            Err(err) => {
                tracing::warn!(error = %err, job = self.job, "lost the database connection");
                self.connection = None;
                false
            }
        }
    }
}

/// Opens one connection outside the pool, set up like the pool's.
async fn connect_one(
    options: &AnyConnectOptions,
    backend: Backend,
    timeouts: Option<Timeouts>,
) -> std::result::Result<AnyConnection, sqlx::Error> {
    let mut conn = AnyConnection::connect_with(options).await?;
    prepare(&mut conn, backend, timeouts).await?;
    Ok(conn)
}

/// Sets a new connection up: SQLite's pragmas; PostgreSQL's timeouts, unless
/// `timeouts` is `None` (the migrations' connection).
async fn prepare(
    conn: &mut AnyConnection,
    backend: Backend,
    timeouts: Option<Timeouts>,
) -> std::result::Result<(), sqlx::Error> {
    match (backend, timeouts) {
        (Backend::Sqlite, _) => {
            // Checkpoints run in the background (see `spawn_checkpointer`), not
            // inside the writer's commits.
            conn.execute(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                 PRAGMA wal_autocheckpoint = 0;",
            )
            .await?;
        }
        (Backend::Postgres, Some(timeouts)) => {
            let set = format!(
                "SET statement_timeout = {}; SET lock_timeout = {}",
                timeouts.statement.as_millis(),
                timeouts.lock.as_millis()
            );
            conn.execute(set.as_str()).await?;
        }
        (Backend::Postgres, None) => {}
    }
    Ok(())
}

async fn migrate(conn: &mut AnyConnection, backend: Backend) -> Result<()> {
    match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(conn).await?,
        Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(conn).await?,
    }
    Ok(())
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
/// server's worker threads. Answers once the writer's connection is open. The
/// thread ends after [`Database::close`] or when the last `Database` is dropped;
/// the watch turns true then, also when the thread dies of a panic.
async fn spawn_writer(
    options: AnyConnectOptions,
    backend: Backend,
    timeouts: Timeouts,
) -> Result<(mpsc::Sender<Order>, watch::Receiver<bool>)> {
    let mut runtime = tokio::runtime::Builder::new_current_thread();
    match backend {
        // sqlx talks to SQLite through a thread, not a socket: without an I/O
        // driver the writer sleeps on a futex, which its connection's thread
        // wakes for less than an eventfd and an epoll.
        Backend::Sqlite => runtime.enable_time(),
        Backend::Postgres => runtime.enable_all(),
    };
    let runtime = runtime
        .build()
        .map_err(|e| Error::Internal(format!("writer runtime: {e}")))?;
    let (orders, queue) = mpsc::channel(4096);
    let (stopped, writer_stopped) = watch::channel(false);
    let (ready, started) = oneshot::channel();
    std::thread::Builder::new()
        .name("ampere-writer".into())
        .spawn(move || {
            let _stopped = StoppedSignal(stopped);
            if backend == Backend::Sqlite {
                share_one_cpu();
            }
            runtime.block_on(async move {
                // Connected on this thread's runtime, whose reactor then serves it.
                let first = tokio::time::timeout(
                    timeouts.group,
                    connect_one(&options, backend, Some(timeouts)),
                )
                .await;
                let conn = match first {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(err)) => {
                        let _ = ready.send(Err(Error::Database(err)));
                        return;
                    }
                    Err(_) => {
                        let _ = ready.send(Err(Error::Internal(
                            "the database writer could not connect in time".into(),
                        )));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                let writer = Writer {
                    options,
                    backend,
                    timeouts,
                    conn: Some(conn),
                };
                writer.serve(queue).await;
            })
        })
        .map_err(|e| Error::Internal(format!("writer thread: {e}")))?;
    started
        .await
        .map_err(|_| Error::Internal("the database writer did not start".into()))??;
    Ok((orders, writer_stopped))
}

/// Keeps the writer's thread on the CPU it runs on, and with it the thread of
/// its SQLite connection: sqlx runs each SQLite connection on a thread of its
/// own, made by the thread that connects (the writer, also when it
/// reconnects), which inherits its CPU affinity. Every statement the writer
/// runs is a hand-off to that thread and back; on one CPU a hand-off is a
/// context switch (8 µs on the 2-core VMs we test on), between two it wakes
/// the other CPU (70 µs there). The writes of the whole process pass through
/// these two threads one after another, so their hand-offs bound the write
/// throughput (see README's benchmark figures). Best effort: a refused
/// affinity leaves the threads free to move.
#[cfg(target_os = "linux")]
fn share_one_cpu() {
    // SAFETY: `cpu_set_t` is plain data (all zeroes is the empty set), and
    // `sched_setaffinity` only reads the set given with its size.
    unsafe {
        let cpu = libc::sched_getcpu();
        if !(0..libc::CPU_SETSIZE).contains(&cpu) {
            return;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            tracing::debug!("the writer's thread could not be kept on one CPU");
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn share_one_cpu() {}

/// Tells whoever watches that the writer stopped, however its thread ends.
struct StoppedSignal(watch::Sender<bool>);

impl Drop for StoppedSignal {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("the database writer panicked");
        }
        self.0.send_replace(true);
    }
}

/// The writer task and its connection; the connection is replaced after a group
/// fails, since its transaction state is then unknown.
struct Writer {
    options: AnyConnectOptions,
    backend: Backend,
    timeouts: Timeouts,
    conn: Option<AnyConnection>,
}

impl Writer {
    /// Takes the writes waiting (up to `MAX_GROUP`, skipping those their callers
    /// abandoned), runs each in a savepoint of one transaction, commits, then
    /// answers each caller; until closed or no `Database` is left.
    async fn serve(mut self, mut queue: mpsc::Receiver<Order>) {
        // On PostgreSQL a group would hold the row locks of all its writes until
        // its commit, and two processes' groups could then deadlock: commit one by
        // one.
        let max_group = match self.backend {
            Backend::Sqlite => MAX_GROUP,
            Backend::Postgres => 1,
        };
        let mut closing = None;
        while closing.is_none() {
            let Some(first) = queue.recv().await else {
                break;
            };
            let mut group = Vec::new();
            let mut turn = None;
            let mut next = Some(first);
            while let Some(order) = next.take() {
                match order {
                    Order::Write(job) if job.claim.take() => group.push((job.undo, job.run)),
                    Order::Write(_abandoned) => {}
                    Order::Close(done) => {
                        closing = Some(done);
                        break;
                    }
                    Order::Beside(other) => {
                        turn = Some(other);
                        break;
                    }
                }
                if group.len() < max_group {
                    next = queue.try_recv().ok();
                }
            }
            if !group.is_empty() {
                self.commit_group(group).await;
            }
            if let Some(Turn { go, done }) = turn {
                // No transaction of ours is open: the other connection writes,
                // within the bound of a group.
                if go.send(()).is_ok() {
                    let _ = tokio::time::timeout(self.timeouts.group, done).await;
                }
            }
        }
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
        if let Some(done) = closing {
            let _ = done.send(());
        }
    }

    async fn commit_group(&mut self, group: Vec<(Undo, Run)>) {
        let size = group.len();
        let started = std::time::Instant::now();
        let mut delivers = Vec::with_capacity(size);
        let outcome =
            tokio::time::timeout(self.timeouts.group, self.run_group(group, &mut delivers)).await;
        tracing::debug!(
            size,
            micros = started.elapsed().as_micros() as u64,
            "write group"
        );
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(err.to_string()),
            Err(_) => Some(format!(
                "the database did not finish a group within {:?}",
                self.timeouts.group
            )),
        };
        if let Some(message) = &failure {
            tracing::error!(error = %message, size, "a group of writes failed to commit");
            // Its transaction state is unknown: the next group gets a new connection.
            self.conn = None;
        }
        for deliver in delivers {
            deliver(match &failure {
                None => Ok(()),
                Some(m) => Err(Error::Internal(format!("commit failed: {m}"))),
            });
        }
    }

    async fn run_group(
        &mut self,
        group: Vec<(Undo, Run)>,
        delivers: &mut Vec<Deliver>,
    ) -> std::result::Result<(), sqlx::Error> {
        let begin = match self.backend {
            // Take the write lock at once, so the session store's writes queue
            // behind ours instead of failing on a lock upgrade.
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let conn = connect_one(&self.options, self.backend, Some(self.timeouts)).await?;
                tracing::info!("the database writer reconnected");
                self.conn.insert(conn)
            }
        };
        run_group_on(conn, begin, group, delivers).await
    }
}

async fn run_group_on(
    conn: &mut AnyConnection,
    begin: &str,
    group: Vec<(Undo, Run)>,
    delivers: &mut Vec<Deliver>,
) -> std::result::Result<(), sqlx::Error> {
    // A write of [`Undo::Savepoint`] in a group runs in savepoint `write`. The
    // savepoint statements ride along with their neighbours in one round trip
    // ("RELEASE ...; SAVEPOINT ..."): on SQLite every round trip is a hand-off
    // to sqlx's worker thread. A lone write needs no savepoint: its
    // transaction is its undo.
    let alone = group.len() == 1;
    let last = group.len() - 1;
    let mut next = vec![begin];
    for (i, (undo, job)) in group.into_iter().enumerate() {
        let guarded = !alone && undo == Undo::Savepoint;
        if guarded {
            next.push("SAVEPOINT write");
        }
        send(conn, &mut next).await?;
        let ran = match AssertUnwindSafe(job(conn)).catch_unwind().await {
            Ok((ran, deliver)) => {
                delivers.push(deliver);
                ran
            }
            Err(_) => {
                tracing::error!("a write panicked; its changes are rolled back");
                delivers.push(Box::new(|_| {}));
                Ran::Broke
            }
        };
        match ran {
            Ran::Done if guarded => next.push("RELEASE SAVEPOINT write"),
            Ran::Done => {}
            _ if alone => {
                conn.execute("ROLLBACK").await?;
                return Ok(());
            }
            _ if guarded => next.extend(["ROLLBACK TO SAVEPOINT write", "RELEASE SAVEPOINT write"]),
            // A whole write refused changed nothing.
            Ran::Refused => {}
            // A whole write that broke may have changed part of what it meant
            // to: nothing of the group is kept.
            Ran::Broke => {
                let _ = conn.execute("ROLLBACK").await;
                return Err(sqlx::Error::Protocol(
                    "a write without a savepoint failed part-way; its group is rolled back".into(),
                ));
            }
        }
        if i == last {
            next.push("COMMIT");
        }
    }
    send(conn, &mut next).await
}

/// Runs the statements `next` holds, if any, in one round trip, and empties
/// it; on an error rolls the transaction back.
async fn send(
    conn: &mut AnyConnection,
    next: &mut Vec<&str>,
) -> std::result::Result<(), sqlx::Error> {
    if next.is_empty() {
        return Ok(());
    }
    let sql = next.join("; ");
    next.clear();
    if let Err(err) = conn.execute(sql.as_str()).await {
        let _ = conn.execute("ROLLBACK").await;
        return Err(err);
    }
    Ok(())
}
