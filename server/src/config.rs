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
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
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

    /// Seconds between mined blocks on the simnet; 0 mines only on demand.
    #[arg(long, env = "AMPERE_BLOCK_INTERVAL", default_value_t = 10)]
    pub block_interval: u64,

    /// Let any signed-in user mine blocks and use the faucet
    /// (`POST /api/v1/simnet/mine`, `POST /api/v1/simnet/faucet`).
    #[arg(long, env = "AMPERE_SIMNET_DEV")]
    pub simnet_dev: bool,

    /// Fund each new account's wallet and open its hub channel at sign-up.
    #[arg(long, env = "AMPERE_DEMO")]
    pub demo: bool,

    /// Blocks a force-closed channel waits before paying out.
    #[arg(long, env = "AMPERE_FORCE_CLOSE_DELAY", default_value_t = 6)]
    pub force_close_delay: i64,

    /// Capacity in sats of the channel the hub opens back to a new peer; 0
    /// mirrors the peer's channel.
    #[arg(long, env = "AMPERE_HUB_CHANNEL_SATS", default_value_t = 0)]
    pub hub_channel_sats: i64,

    /// Sign-ups one client address may make in an hour.
    #[arg(long, env = "AMPERE_SIGN_UPS_PER_ADDRESS", default_value_t = 5)]
    pub sign_ups_per_address: u32,

    /// Sign-ups from all addresses together in a minute.
    #[arg(long, env = "AMPERE_SIGN_UPS_PER_MINUTE", default_value_t = 60)]
    pub sign_ups_per_minute: u32,

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

    pub fn engine_settings(&self) -> engine::Settings {
        let simnet = engine::simnet::SimnetConfig {
            demo: self.demo,
            force_close_delay: self.force_close_delay.max(1),
            hub_channel_capacity: (self.hub_channel_sats > 0)
                .then(|| engine::Msat::from_sat(self.hub_channel_sats)),
            ..Default::default()
        };
        let sign_up = engine::throttle::ClientLimits {
            per_client: engine::throttle::Rule::new(
                self.sign_ups_per_address,
                std::time::Duration::from_secs(60 * 60),
            ),
            overall: engine::throttle::Rule::new(
                self.sign_ups_per_minute,
                std::time::Duration::from_secs(60),
            ),
        };
        engine::Settings {
            simnet,
            sign_up,
            ..Default::default()
        }
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_string()
    }
}
