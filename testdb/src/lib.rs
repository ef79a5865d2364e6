//! Throwaway databases for tests: a fresh SQLite file, or a fresh database in a
//! real PostgreSQL cluster that this test process starts on a free loopback port
//! and removes when it exits.
//!
//! Set `AMPERE_TEST_POSTGRES_URL` (e.g. `postgres://postgres@127.0.0.1:5432`) to
//! use a running server instead. Binaries come from `/usr/lib/postgresql/*/bin`
//! (Debian's `postgresql` package); as root, `initdb` and `pg_ctl` run as the
//! `postgres` user, which initdb requires.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// A SQLite database in its own temporary directory, removed on drop.
pub struct SqliteDb {
    pub url: String,
    _dir: tempfile::TempDir,
}

pub fn sqlite() -> SqliteDb {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
    SqliteDb { url, _dir: dir }
}

/// The URL of a new, empty PostgreSQL database.
pub fn postgres() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let server = server_url();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let status = Command::new(psql())
        .args(["-q", "-d", &format!("{server}/postgres"), "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .status()
        .expect("running psql");
    assert!(status.success(), "could not create test database {name}");
    format!("{server}/{name}")
}

fn server_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("AMPERE_TEST_POSTGRES_URL") {
        Ok(url) => url.trim_end_matches('/').to_string(),
        Err(_) => start_cluster(),
    })
    .clone()
}

/// The cluster this process started: stopped and deleted at exit.
static CLUSTER: Mutex<Option<PathBuf>> = Mutex::new(None);

extern "C" fn remove_cluster() {
    if let Some(dir) = CLUSTER.lock().ok().and_then(|mut c| c.take()) {
        let _ = as_postgres(pg_bin("pg_ctl"))
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(dir.join("data"))
            .output();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn start_cluster() -> String {
    let root = tempfile::Builder::new()
        .prefix("ampere-pg-")
        .tempdir()
        .expect("temporary directory")
        .keep();
    let data = root.join("data");
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&root)
            .status()
            .expect("chown");
        assert!(status.success(), "chown of the cluster directory failed");
    }
    *CLUSTER.lock().expect("cluster lock") = Some(root.clone());
    // SAFETY: registers a plain function with no arguments, as atexit expects.
    unsafe { libc::atexit(remove_cluster) };

    run(as_postgres(pg_bin("initdb"))
        .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
        .arg(&data));
    let port = free_port();
    let options = format!(
        "-h 127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=400",
        root.display()
    );
    run(as_postgres(pg_bin("pg_ctl"))
        .args(["start", "-w", "-s", "-D"])
        .arg(&data)
        .arg("-l")
        .arg(root.join("log"))
        .args(["-o", &options]));
    format!("postgres://postgres@127.0.0.1:{port}")
}

fn run(command: &mut Command) {
    let output = command.output().expect("starting a PostgreSQL tool");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn as_postgres(program: PathBuf) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A PostgreSQL server program, from PATH or Debian's versioned directory.
fn pg_bin(name: &str) -> PathBuf {
    let debian = Path::new("/usr/lib/postgresql");
    if let Ok(versions) = std::fs::read_dir(debian) {
        let mut dirs: Vec<PathBuf> = versions.flatten().map(|e| e.path()).collect();
        dirs.sort();
        if let Some(found) = dirs
            .iter()
            .rev()
            .map(|d| d.join("bin").join(name))
            .find(|p| p.exists())
        {
            return found;
        }
    }
    PathBuf::from(name)
}

fn psql() -> PathBuf {
    pg_bin("psql")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Runs each story once on SQLite and once on PostgreSQL, as `sqlite::story` and
/// `postgres::story`. `open` names an `async fn(&str) -> T` of the calling module, turning a database URL
/// into what the stories take (`async fn story(T)`).
#[macro_export]
macro_rules! on_both_databases {
    ($open:ident; $($story:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $story() {
                let db = $crate::sqlite();
                super::$story(super::$open(&db.url).await).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $story() {
                super::$story(super::$open(&$crate::postgres()).await).await;
            })*
        }
    };
}
