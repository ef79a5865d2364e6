//! Session storage: tower-sessions' sqlx store in the application's database,
//! behind a short-lived in-process cache so that an authenticated request does not
//! cost a database read. A record cached here may outlive its session ended in
//! another process for `CACHE_TTL`: harmless, since the gate also asks whether
//! the sign-in's row stands (`engine::accounts::sessions`), which the bus keeps
//! current in every process; a lost link to the database clears the whole cache.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use crate::StartError;
use engine::Backend;

/// How long a session lasts without use.
const IDLE_LIFETIME: time::Duration = time::Duration::days(7);
const CACHE_TTL: Duration = Duration::from_secs(2);
const CACHE_CAPACITY: u64 = 100_000;

/// The session store: the backend's sqlx store with the cache in front.
#[derive(Debug, Clone)]
pub struct Sessions {
    backend: SqlxStore,
    cache: moka::sync::Cache<Id, Record>,
    /// The application's database: the store writes beside its writer.
    db: engine::Database,
}

#[derive(Debug, Clone)]
enum SqlxStore {
    /// The store and its pool, kept to close it at shutdown.
    Sqlite(SqliteStore, sqlx::SqlitePool),
    Postgres(PostgresStore, sqlx::PgPool),
}

impl Sessions {
    /// Opens the store's own pool on `url` and creates its table when absent;
    /// its writes take turns with `db`'s writer.
    pub async fn open(url: &str, db: engine::Database) -> Result<Self, StartError> {
        let backend = match Backend::from_url(url)? {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)?
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(10));
                let pool = sqlx::SqlitePool::connect_with(options).await?;
                let store = SqliteStore::new(pool.clone());
                store.migrate().await?;
                SqlxStore::Sqlite(store, pool)
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(url).await?;
                let store = PostgresStore::new(pool.clone());
                store.migrate().await?;
                SqlxStore::Postgres(store, pool)
            }
        };
        let cache = moka::sync::Cache::builder()
            .max_capacity(CACHE_CAPACITY)
            .time_to_live(CACHE_TTL)
            .build();
        Ok(Sessions { backend, cache, db })
    }

    /// Forgets every cached session when this process may have missed events.
    pub fn follow(&self, bus: &engine::events::Bus) {
        use engine::events::EventKind;
        let cache = self.cache.clone();
        bus.on_control(Box::new(move |event| {
            if let EventKind::Resync = &event.kind {
                cache.invalidate_all();
            }
        }));
    }

    /// The layer that gives every request its `Session`: cookie `session`,
    /// HttpOnly, SameSite=Lax, Secure when asked, expiring after a week unused.
    pub fn layer(&self, secure: bool) -> SessionManagerLayer<Sessions> {
        SessionManagerLayer::new(self.clone())
            .with_name("session")
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(secure)
            .with_expiry(Expiry::OnInactivity(IDLE_LIFETIME))
    }

    /// Deletes expired sessions (and the rows of dead sign-ins) from the
    /// database every hour, until the server stops.
    pub fn spawn_expiry_sweep(
        &self,
        accounts: engine::accounts::Accounts,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(3600));
            loop {
                every.tick().await;
                if let Err(err) = accounts.forget_dead_sessions().await {
                    tracing::warn!(error = %err, "forgetting dead sign-ins failed");
                }
                let swept = match &store.backend {
                    SqlxStore::Sqlite(s, _) => match store.db.beside(s.delete_expired()).await {
                        Ok(swept) => swept,
                        Err(err) => Err(no_turn(err)),
                    },
                    SqlxStore::Postgres(s, _) => s.delete_expired().await,
                };
                if let Err(err) = swept {
                    tracing::warn!(error = %err, "deleting expired sessions failed");
                }
            }
        })
    }

    pub async fn close(&self) {
        match &self.backend {
            SqlxStore::Sqlite(_, pool) => pool.close().await,
            SqlxStore::Postgres(_, pool) => pool.close().await,
        }
    }

    fn store(&self) -> &dyn SessionStore {
        match &self.backend {
            SqlxStore::Sqlite(s, _) => s,
            SqlxStore::Postgres(s, _) => s,
        }
    }
}

/// A store's write whose turn never came.
fn no_turn(err: engine::Error) -> session_store::Error {
    session_store::Error::Backend(err.to_string())
}

#[async_trait]
impl SessionStore for Sessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.db
            .beside(self.store().create(record))
            .await
            .map_err(no_turn)??;
        self.cache.insert(record.id, record.clone());
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.db
            .beside(self.store().save(record))
            .await
            .map_err(no_turn)??;
        self.cache.insert(record.id, record.clone());
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        if let Some(record) = self.cache.get(id) {
            if record.expiry_date > time::OffsetDateTime::now_utc() {
                return Ok(Some(record));
            }
        }
        let record = self.store().load(id).await?;
        if let Some(record) = &record {
            self.cache.insert(*id, record.clone());
        }
        Ok(record)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.db
            .beside(self.store().delete(id))
            .await
            .map_err(no_turn)??;
        self.cache.invalidate(id);
        Ok(())
    }
}
