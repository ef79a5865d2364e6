//! The server's settings: command-line flags, each with an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "ampere",
    version,
    about = "Ampere: a self-hostable Lightning web wallet and BTC/USD futures desk"
)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "AMPERE_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Directory for the SQLite database and other state; created when absent.
    #[arg(long, env = "AMPERE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL: `sqlite://...` or `postgres://...`. Default: SQLite in the
    /// data directory.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// The URL people and wallets reach this server at, used in links, LNURLs and
    /// QuickPay strings. Default: http://<listen>.
    #[arg(long, env = "AMPERE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Mark the session cookie Secure (serve over https, directly or behind a proxy).
    #[arg(long, env = "AMPERE_SECURE_COOKIES")]
    pub secure_cookies: bool,

    /// Directory of the built site (the WASM bundle, CSS and public assets).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Log filter, e.g. `info` or `server=debug,tower_http=debug`.
    #[arg(long, env = "AMPERE_LOG", default_value = "info")]
    pub log: String,

    /// Log line format.
    #[arg(long, env = "AMPERE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("ampere.db").display()
            )
        })
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_string()
    }
}
