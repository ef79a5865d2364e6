//! The server's settings: command-line flags, each with an environment variable.
//! A boolean flag's variable reads `1/0`, `true/false`, `yes/no` or `on/off`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser, ValueEnum};
use engine::desk::contract::Price;
use engine::desk::market::{MarketConfig, Source, Walk};

/// What the operator does with the binary besides serving, against the
/// database the server uses (`--data-dir` or `--database-url`).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// The applications that may use Ampere as an OAuth 2.0 provider.
    #[command(subcommand, name = "oauth-client")]
    OAuthClient(OAuthClientCommand),
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum OAuthClientCommand {
    /// Registers an application: prints `client_id=...` and
    /// `client_secret=...` (the secret is shown only now).
    Add {
        /// The name the consent page shows.
        #[arg(long)]
        name: String,
        /// Where the browser goes back with a code (exact match); https, or
        /// http to localhost. Repeat for several.
        #[arg(long = "redirect-url", required = true)]
        redirect_urls: Vec<String>,
        /// What it may ask for: profile, email, read, wallet, trade (repeat;
        /// default profile, email and read).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// Lists the registered applications.
    List,
    /// Removes an application: its codes and tokens stop working.
    Remove {
        /// Its client_id.
        id: String,
    },
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "ampere",
    version,
    about = "Ampere: a self-hostable Lightning web wallet and BTC/USD futures desk"
)]
pub struct Config {
    /// Without a command, the server runs.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address and port to listen on.
    #[arg(long, env = "AMPERE_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Directory for the SQLite database and other state; created when absent.
    #[arg(long, env = "AMPERE_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// Database URL: `sqlite://...` or `postgres://...`. Default: SQLite in the
    /// data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,

    /// The URL people and wallets reach this server at, used in links, LNURLs and
    /// QuickPay strings. Default: http://<listen>.
    #[arg(long, env = "AMPERE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Mark the session cookie Secure (serve over https, directly or behind a proxy).
    #[arg(long, env = "AMPERE_SECURE_COOKIES", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub secure_cookies: bool,

    /// Directory of the built site (the WASM bundle, CSS and public assets).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Seconds between mined blocks on the simnet; 0 mines only on demand.
    #[arg(long, env = "AMPERE_BLOCK_INTERVAL", default_value_t = 10)]
    pub block_interval: u64,

    /// Let any signed-in user mine blocks and use the faucet
    /// (`POST /api/v1/simnet/mine`, `POST /api/v1/simnet/faucet`).
    #[arg(long, env = "AMPERE_SIMNET_DEV", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub simnet_dev: bool,

    /// Fund each new account's wallet and open its hub channel at sign-up.
    #[arg(long, env = "AMPERE_DEMO", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub demo: bool,

    /// Blocks a force-closed channel waits before paying out.
    #[arg(long, env = "AMPERE_FORCE_CLOSE_DELAY", default_value_t = 6)]
    pub force_close_delay: i64,

    /// Capacity in sats of the channel the hub opens back to a new peer; 0
    /// mirrors the peer's channel. At most a channel's largest capacity.
    #[arg(long, env = "AMPERE_HUB_CHANNEL_SATS", default_value_t = 0,
          value_parser = clap::value_parser!(i64).range(0..=1_000_000_000))]
    pub hub_channel_sats: i64,

    /// Proxies (CIDRs, comma-separated) whose `X-Forwarded-For` names the real
    /// client, e.g. `127.0.0.1/32,10.0.0.0/8`. Others' headers are ignored.
    #[arg(long, env = "AMPERE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Event streams (`GET /rest/v1/events`) one account may hold open at once.
    #[arg(long, env = "AMPERE_MAX_EVENT_STREAMS", default_value_t = 8)]
    pub max_event_streams: usize,

    /// PostgreSQL: the longest one statement may run, in milliseconds (0: no limit).
    #[arg(long, env = "AMPERE_DB_STATEMENT_TIMEOUT_MS", default_value_t = default_timeouts().statement.as_millis() as u64)]
    pub db_statement_timeout_ms: u64,

    /// PostgreSQL: the longest a statement waits for a lock, in milliseconds (0: no
    /// limit).
    #[arg(long, env = "AMPERE_DB_LOCK_TIMEOUT_MS", default_value_t = default_timeouts().lock.as_millis() as u64)]
    pub db_lock_timeout_ms: u64,

    /// The longest a write waits for the database writer before it is refused
    /// (and never run), in milliseconds.
    #[arg(long, env = "AMPERE_DB_WRITE_TIMEOUT_MS", default_value_t = default_timeouts().queue.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub db_write_timeout_ms: u64,

    /// New accounts may be made, every way: a password, a wallet's key, the
    /// desk's paid registration (off: 403).
    #[arg(long, env = "AMPERE_ALLOW_NEW_ACCOUNTS", default_value_t = true, action = ArgAction::Set,
          value_parser = BoolishValueParser::new())]
    pub allow_new_accounts: bool,

    /// The administrators: usernames or account ids, comma-separated (their
    /// `is_admin` is true; everyone else's false).
    #[arg(long, env = "AMPERE_ADMIN_USERS", value_delimiter = ',')]
    pub admin_users: Vec<String>,

    /// Allow the legacy sign-in with an account id alone (`POST
    /// /api/v1/auth/usr`): whoever knows an account's id can then use it.
    #[arg(long, env = "AMPERE_USER_ID_LOGIN", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub user_id_login: bool,

    /// Withdrawals of an account with two-factor codes on (wallet payments,
    /// desk withdrawals and withdraw links) ask for a code once the day's
    /// code-free total would pass this many sats (0: every withdrawal asks).
    #[arg(long, env = "AMPERE_CODE_FREE_WITHDRAWAL_SATS", default_value_t = 100_000,
          value_parser = clap::value_parser!(i64).range(0..=2_100_000_000_000_000))]
    pub code_free_withdrawal_sats: i64,

    /// The SMTP server the server's mail (password reset links) goes through:
    /// `smtp://[user:password@]host[:port]` (`?tls=required` for STARTTLS) or
    /// `smtps://...`. Without it, mail is written to `outbox/` in the data
    /// directory.
    #[arg(long, env = "AMPERE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Where phone verification codes go: a URL the server `POST`s
    /// `{"to": "+<digits>", "text": "..."}` to (a gateway to the operator's
    /// SMS provider). Without it, they are written to `outbox/sms/` in the
    /// data directory.
    #[arg(long, env = "AMPERE_SMS_GATEWAY_URL", hide_env_values = true)]
    pub sms_gateway_url: Option<String>,

    /// The sender of the server's mail, e.g. `Ampere <wallet@example.com>`.
    #[arg(
        long,
        env = "AMPERE_MAIL_FROM",
        default_value = "Ampere <ampere@localhost>"
    )]
    pub mail_from: String,

    /// Sign-in with Google: the OAuth client's id (its redirect URI is
    /// `<public URL>/api/v1/auth/google/token`).
    #[arg(long, env = "AMPERE_GOOGLE_CLIENT_ID")]
    pub google_client_id: Option<String>,

    /// Sign-in with Google: the OAuth client's secret (better given in the
    /// variable than on the command line).
    #[arg(long, env = "AMPERE_GOOGLE_CLIENT_SECRET", hide_env_values = true)]
    pub google_client_secret: Option<String>,

    /// Sign-in with Google: the OpenID Connect issuer.
    #[arg(
        long,
        env = "AMPERE_GOOGLE_ISSUER",
        default_value = "https://accounts.google.com"
    )]
    pub google_issuer: String,

    /// Sign-in with Keycloak (or any OpenID Connect provider): the issuer,
    /// e.g. `https://id.example.com/realms/main` (the redirect URI is
    /// `<public URL>/api/v1/auth/keycloak/token`).
    #[arg(long, env = "AMPERE_KEYCLOAK_ISSUER")]
    pub keycloak_issuer: Option<String>,

    /// Sign-in with Keycloak: the client's id.
    #[arg(long, env = "AMPERE_KEYCLOAK_CLIENT_ID")]
    pub keycloak_client_id: Option<String>,

    /// Sign-in with Keycloak: the client's secret.
    #[arg(long, env = "AMPERE_KEYCLOAK_CLIENT_SECRET", hide_env_values = true)]
    pub keycloak_client_secret: Option<String>,

    /// Sign-in with GitHub: the OAuth app's client id (its callback URL is
    /// `<public URL>/api/v1/auth/github/token`).
    #[arg(long, env = "AMPERE_GITHUB_CLIENT_ID")]
    pub github_client_id: Option<String>,

    /// Sign-in with GitHub: the OAuth app's client secret.
    #[arg(long, env = "AMPERE_GITHUB_CLIENT_SECRET", hide_env_values = true)]
    pub github_client_secret: Option<String>,

    /// Sign-in with GitHub: its web address (a GitHub Enterprise server's).
    #[arg(long, env = "AMPERE_GITHUB_URL", default_value = "https://github.com")]
    pub github_url: String,

    /// Sign-in with GitHub: its REST API's address.
    #[arg(
        long,
        env = "AMPERE_GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    pub github_api_url: String,

    /// Sign-ups one client address may make in an hour.
    #[arg(long, env = "AMPERE_SIGN_UPS_PER_ADDRESS", default_value_t = 5)]
    pub sign_ups_per_address: u32,

    /// Sign-ups from all addresses together in a minute.
    #[arg(long, env = "AMPERE_SIGN_UPS_PER_MINUTE", default_value_t = 60)]
    pub sign_ups_per_minute: u32,

    /// The exchange's liquidity in sats: its node's channels to and from the hub
    /// add up to this each way. Raising it tops them up at the next start.
    #[arg(long, env = "AMPERE_EXCHANGE_LIQUIDITY_SATS", default_value_t = 500_000_000,
          value_parser = clap::value_parser!(i64).range(20_000..=100_000_000_000))]
    pub exchange_liquidity_sats: i64,

    /// Smallest and largest deposit to a trading balance, in sats.
    #[arg(long, env = "AMPERE_DEPOSIT_MIN_SATS", default_value_t = 100,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub deposit_min_sats: i64,
    #[arg(long, env = "AMPERE_DEPOSIT_MAX_SATS", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(i64).range(1..=100_000_000))]
    pub deposit_max_sats: i64,

    /// Smallest withdrawal from a trading balance, in sats.
    #[arg(long, env = "AMPERE_WITHDRAW_MIN_SATS", default_value_t = 1_000,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub withdraw_min_sats: i64,

    /// What the invoice that opens a desk account asks, in sats (it becomes the
    /// account's first trading balance).
    #[arg(long, env = "AMPERE_ACCOUNT_PRICE_SATS", default_value_t = 1_000,
          value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub account_price_sats: i64,

    /// Withdrawals from trading balances are on (off: 503).
    #[arg(long, env = "AMPERE_WITHDRAW", default_value_t = true, action = ArgAction::Set,
          value_parser = BoolishValueParser::new())]
    pub withdraw: bool,

    /// New positions are accepted (off: 503).
    #[arg(long, env = "AMPERE_NEW_POSITIONS", default_value_t = true, action = ArgAction::Set,
          value_parser = BoolishValueParser::new())]
    pub new_positions: bool,

    /// Desk accounts may be opened by paying an invoice (off: 503).
    #[arg(long, env = "AMPERE_ACCOUNT_CREATION", default_value_t = true, action = ArgAction::Set,
          value_parser = BoolishValueParser::new())]
    pub account_creation: bool,

    /// Most positions (open, or limit orders waiting) one account holds at once.
    #[arg(long, env = "AMPERE_MAX_OPEN_POSITIONS", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_open_positions: u32,

    /// Highest leverage an order may ask (the lowest is 1).
    #[arg(long, env = "AMPERE_MAX_LEVERAGE", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_leverage: u32,

    /// The BTC/USD index, in USD, on a fresh database (later starts go on from
    /// the last recorded price).
    #[arg(long, env = "AMPERE_PRICE_START", default_value = "100000", value_parser = index_usd)]
    pub price_start: Price,

    /// The embedded price's annualised volatility (0.6 is 60 %); 0 holds the
    /// price still. Unused with `--price-feed-url`.
    #[arg(long, env = "AMPERE_PRICE_VOLATILITY", default_value_t = 0.6, value_parser = volatility)]
    pub price_volatility: f64,

    /// The embedded price's random seed: the same seed and start replay the
    /// same path.
    #[arg(long, env = "AMPERE_PRICE_SEED", default_value_t = 21)]
    pub price_seed: u64,

    /// Bid to offer, in basis points of the index (half on each side).
    #[arg(long, env = "AMPERE_PRICE_SPREAD_BPS", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(0..=1_000))]
    pub price_spread_bps: u32,

    /// Milliseconds between price ticks (each moves the price, or asks the
    /// feed, and checks every position's triggers).
    #[arg(long, env = "AMPERE_PRICE_INTERVAL_MS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub price_interval_ms: u64,

    /// Seconds after which the last price is stale: new positions and closes
    /// are then refused (503) and nothing triggers. At least two intervals
    /// (a smaller value is raised to that).
    #[arg(long, env = "AMPERE_PRICE_STALE_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub price_stale_secs: u64,

    /// Take the index from this JSON URL (http or https), asked every
    /// interval, instead of the embedded random walk.
    #[arg(long, env = "AMPERE_PRICE_FEED_URL", value_parser = crate::price_feed::feed_url)]
    pub price_feed_url: Option<String>,

    /// Where the feed's answer holds the index: a JSON pointer (RFC 6901) such
    /// as `/data/amount`, to a number or a decimal string of USD. Empty: the
    /// whole answer is the number.
    #[arg(long, env = "AMPERE_PRICE_FEED_POINTER", default_value = "",
          value_parser = crate::price_feed::feed_pointer)]
    pub price_feed_pointer: String,

    /// WebSockets (`/lnm/realtime`) one account may hold open at once.
    #[arg(long, env = "AMPERE_MAX_REALTIME_SOCKETS", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub max_realtime_sockets: u64,

    /// WebSockets (`/lnm/realtime`) one client address may hold open at once,
    /// signed in or not.
    #[arg(long, env = "AMPERE_MAX_REALTIME_SOCKETS_PER_ADDRESS", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_realtime_sockets_per_address: u64,

    /// Requests to `/lnm` one account, and one client address, may make in a
    /// minute (each process counts its own); beyond it, 429.
    #[arg(long, env = "AMPERE_LNM_REQUESTS_PER_MINUTE", default_value_t = 600,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub lnm_requests_per_minute: u32,

    /// Log filter, e.g. `info` or `server=debug,tower_http=debug`.
    #[arg(long, env = "AMPERE_LOG", default_value = "info")]
    pub log: String,

    /// Log line format.
    #[arg(long, env = "AMPERE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// An index in USD, as `--price-start` takes it.
fn index_usd(text: &str) -> Result<Price, String> {
    let price = Price::parse(text).ok_or("a decimal number of USD, at most two decimals")?;
    engine::desk::market::check_index(price).map_err(|e| e.to_string())?;
    Ok(price)
}

/// An annualised volatility: a finite number from 0 to 10 (1000 %).
fn volatility(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=10.0).contains(&v) => Ok(v),
        _ => Err("a number from 0 to 10 (0.6 is 60 % a year)".into()),
    }
}

fn default_timeouts() -> engine::storage::Timeouts {
    engine::storage::Timeouts::default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// Where phone codes go (see `--sms-gateway-url`).
    pub fn sms(&self) -> Result<crate::sms::Sms, engine::Error> {
        crate::sms::Sms::new(
            self.sms_gateway_url.as_deref(),
            Some(self.data_dir.join("outbox").join("sms")),
        )
    }

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
        let storage = engine::storage::Timeouts {
            statement: Duration::from_millis(self.db_statement_timeout_ms),
            lock: Duration::from_millis(self.db_lock_timeout_ms),
            queue: Duration::from_millis(self.db_write_timeout_ms),
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
        let sats = engine::Msat::from_sat;
        let desk = engine::desk::DeskConfig {
            liquidity: sats(self.exchange_liquidity_sats),
            deposit_min: sats(self.deposit_min_sats),
            deposit_max: sats(self.deposit_max_sats.max(self.deposit_min_sats)),
            withdraw_min: sats(self.withdraw_min_sats),
            account_price: sats(self.account_price_sats),
            switches: engine::desk::Switches {
                withdraw: self.withdraw,
                newposition: self.new_positions,
                account_creation: self.account_creation && self.allow_new_accounts,
            },
            open_positions_max: self.max_open_positions,
            leverage_max: self.max_leverage,
            market: self.market(),
            public_url: self.public_url(),
            ..Default::default()
        };
        let accounts = engine::accounts::Policy {
            allow_new_accounts: self.allow_new_accounts,
            admin_users: self
                .admin_users
                .iter()
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect(),
            user_id_login: self.user_id_login,
            code_free_withdrawals: engine::Msat::from_sat(self.code_free_withdrawal_sats),
            documents: Some(self.data_dir.join("documents")),
        };
        let mail = engine::mail::MailConfig {
            smtp_url: self.smtp_url.clone(),
            from: self.mail_from.clone(),
            outbox: Some(self.data_dir.join("outbox")),
            public_url: self.public_url(),
        };
        engine::Settings {
            simnet,
            storage,
            sign_up,
            desk,
            accounts,
            mail,
            ..Default::default()
        }
    }

    /// The price's settings: a stale bound of at least two intervals, so one
    /// late tick never pauses trading.
    fn market(&self) -> MarketConfig {
        let interval = Duration::from_millis(self.price_interval_ms);
        MarketConfig {
            start: self.price_start,
            volatility: self.price_volatility,
            seed: self.price_seed,
            spread_bps: self.price_spread_bps,
            interval,
            stale_after: Duration::from_secs(self.price_stale_secs).max(interval * 2),
        }
    }

    /// Where the index comes from: the operator's feed, else the seeded walk.
    pub fn price_source(&self) -> Result<Box<dyn Source>, engine::Error> {
        let market = self.market();
        Ok(match &self.price_feed_url {
            Some(url) => Box::new(crate::price_feed::Feed::new(
                url,
                &self.price_feed_pointer,
                crate::price_feed::Feed::timeout_for(&market),
            )?),
            None => Box::new(Walk::new(market.volatility, market.interval, market.seed)),
        })
    }

    /// The identity providers configured: those with a client id and secret
    /// (and, for Keycloak, an issuer).
    pub fn providers(&self) -> Vec<crate::oidc::ProviderSettings> {
        use crate::oidc::{Kind, ProviderSettings};
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|v| !v.is_empty())
        }
        let mut providers = Vec::new();
        let mut add = |kind,
                       id: &Option<String>,
                       secret: &Option<String>,
                       issuer: Option<&str>,
                       api: &str| {
            if let (Some(id), Some(secret), Some(issuer)) = (given(id), given(secret), issuer) {
                providers.push(ProviderSettings {
                    kind,
                    client_id: id.to_string(),
                    client_secret: secret.to_string(),
                    // An OpenID Connect issuer is compared exactly (some
                    // end in `/`); GitHub's address is joined to paths.
                    issuer: match kind {
                        Kind::Github => issuer.trim_end_matches('/').to_string(),
                        Kind::Google | Kind::Keycloak => issuer.to_string(),
                    },
                    api: api.trim_end_matches('/').to_string(),
                });
            }
        };
        add(
            Kind::Google,
            &self.google_client_id,
            &self.google_client_secret,
            Some(&self.google_issuer),
            "",
        );
        add(
            Kind::Keycloak,
            &self.keycloak_client_id,
            &self.keycloak_client_secret,
            given(&self.keycloak_issuer),
            "",
        );
        add(
            Kind::Github,
            &self.github_client_id,
            &self.github_client_secret,
            Some(&self.github_url),
            &self.github_api_url,
        );
        providers
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    /// The boolean flags (those set by their presence).
    fn boolean_flags() -> Vec<String> {
        Config::command()
            .get_arguments()
            .filter(|arg| matches!(arg.get_action(), ArgAction::SetTrue))
            .map(|arg| arg.get_id().to_string())
            .collect()
    }

    /// Parses no arguments with `flag`'s environment variable set to `value`. The
    /// variable gets a name of this test's own, so tests running at the same time
    /// never see each other's.
    fn parse_with_env(flag: &str, value: &str) -> Result<clap::ArgMatches, clap::Error> {
        let name = format!(
            "AMPERE_CONFIG_TEST_{}_{}",
            flag.to_uppercase(),
            value.to_uppercase()
        );
        std::env::set_var(&name, value);
        let command = Config::command().mut_arg(flag, |arg| arg.env(name.clone().leak() as &str));
        let matches = command.try_get_matches_from(["ampere"]);
        std::env::remove_var(&name);
        matches
    }

    #[test]
    fn every_boolean_flag_reads_1_true_yes_on_and_their_opposites_from_its_variable() {
        let flags = boolean_flags();
        for expected in ["secure_cookies", "simnet_dev", "demo"] {
            assert!(flags.iter().any(|f| f == expected), "{flags:?}");
        }
        for flag in &flags {
            for (value, set) in [
                ("1", true),
                ("true", true),
                ("yes", true),
                ("on", true),
                ("TRUE", true),
                ("0", false),
                ("false", false),
                ("no", false),
                ("off", false),
            ] {
                let matches =
                    parse_with_env(flag, value).unwrap_or_else(|e| panic!("{flag} = {value}: {e}"));
                assert_eq!(matches.get_flag(flag), set, "{flag} = {value}");
            }
            let refused = parse_with_env(flag, "maybe").unwrap_err();
            assert_eq!(refused.kind(), clap::error::ErrorKind::ValueValidation);
            assert!(refused.to_string().contains("'maybe'"), "{refused}");
        }
    }

    #[test]
    fn simnet_dev_1_in_the_environment_turns_the_developer_endpoints_on() {
        let matches = parse_with_env("simnet_dev", "1").unwrap();
        let config = Config::from_arg_matches(&matches).unwrap();
        assert!(config.simnet_dev);
        assert!(!config.demo);

        // The flag itself still takes no value.
        let config = Config::try_parse_from(["ampere", "--simnet-dev"]).unwrap();
        assert!(config.simnet_dev);
        assert!(Config::try_parse_from(["ampere", "--simnet-dev=1"]).is_err());
    }

    #[test]
    fn help_lists_every_flag_with_its_variable() {
        let help = Config::command().render_long_help().to_string();
        for (flag, variable) in [
            ("--secure-cookies", "AMPERE_SECURE_COOKIES"),
            ("--simnet-dev", "AMPERE_SIMNET_DEV"),
            ("--demo", "AMPERE_DEMO"),
            (
                "--db-statement-timeout-ms",
                "AMPERE_DB_STATEMENT_TIMEOUT_MS",
            ),
            ("--db-lock-timeout-ms", "AMPERE_DB_LOCK_TIMEOUT_MS"),
            ("--db-write-timeout-ms", "AMPERE_DB_WRITE_TIMEOUT_MS"),
        ] {
            assert!(help.contains(flag), "{flag} missing from\n{help}");
            assert!(
                help.contains(&format!("[env: {variable}=")),
                "{variable} missing from\n{help}"
            );
        }
    }

    #[test]
    fn database_timeouts_reach_the_engine_settings() {
        let config = Config::try_parse_from([
            "ampere",
            "--db-statement-timeout-ms",
            "2500",
            "--db-lock-timeout-ms",
            "0",
            "--db-write-timeout-ms",
            "750",
        ])
        .unwrap();
        let storage = config.engine_settings().storage;
        assert_eq!(storage.statement, Duration::from_millis(2500));
        assert_eq!(storage.lock, Duration::ZERO);
        assert_eq!(storage.queue, Duration::from_millis(750));

        let defaults = Config::try_parse_from(["ampere"]).unwrap();
        assert_eq!(
            defaults.engine_settings().storage,
            engine::storage::Timeouts::default()
        );
        assert!(Config::try_parse_from(["ampere", "--db-write-timeout-ms", "0"]).is_err());
    }

    #[test]
    fn amounts_in_sats_are_refused_beyond_what_the_network_can_hold() {
        for (flag, value) in [
            ("--hub-channel-sats", "99999999999999999"),
            ("--exchange-liquidity-sats", "9223372036854775807"),
            ("--deposit-max-sats", "100000001"),
        ] {
            assert!(
                Config::try_parse_from(["ampere", flag, value]).is_err(),
                "{flag} {value} passed"
            );
        }
        let fine = Config::try_parse_from(["ampere", "--hub-channel-sats", "1000000000"]);
        assert!(fine.is_ok());
    }

    #[test]
    fn the_market_and_desk_limits_reach_the_desk_settings() {
        let config = Config::try_parse_from([
            "ampere",
            "--price-start",
            "9990.5",
            "--price-volatility",
            "0",
            "--price-seed",
            "7",
            "--price-spread-bps",
            "10",
            "--price-interval-ms",
            "250",
            "--price-stale-secs",
            "3",
            "--max-open-positions",
            "5",
            "--max-leverage",
            "20",
        ])
        .unwrap();
        let desk = config.engine_settings().desk;
        assert_eq!(desk.market.start, Price::from_cents(999_050));
        assert_eq!(desk.market.volatility, 0.0);
        assert_eq!(desk.market.seed, 7);
        assert_eq!(desk.market.spread_bps, 10);
        assert_eq!(desk.market.interval, Duration::from_millis(250));
        assert_eq!(desk.market.stale_after, Duration::from_secs(3));
        assert_eq!((desk.open_positions_max, desk.leverage_max), (5, 20));

        // The defaults are the engine's; a stale bound under two intervals is raised.
        let defaults = Config::try_parse_from(["ampere"])
            .unwrap()
            .engine_settings()
            .desk;
        let engine = engine::desk::DeskConfig::default();
        assert_eq!(defaults.market.start, engine.market.start);
        assert_eq!(defaults.market.volatility, engine.market.volatility);
        assert_eq!(defaults.market.interval, engine.market.interval);
        assert_eq!(defaults.market.stale_after, engine.market.stale_after);
        assert_eq!(
            (defaults.open_positions_max, defaults.leverage_max),
            (50, 100)
        );
        let slow = Config::try_parse_from([
            "ampere",
            "--price-interval-ms",
            "60000",
            "--price-stale-secs",
            "10",
        ])
        .unwrap();
        assert_eq!(
            slow.engine_settings().desk.market.stale_after,
            Duration::from_secs(120)
        );
    }

    #[test]
    fn nonsense_market_flags_are_refused_at_start() {
        for (flag, value) in [
            ("--price-start", "0"),
            ("--price-start", "-5"),
            ("--price-start", "100000.001"),
            ("--price-start", "10000000.01"),
            ("--price-volatility", "-0.1"),
            ("--price-volatility", "NaN"),
            ("--price-volatility", "11"),
            ("--price-spread-bps", "1001"),
            ("--price-interval-ms", "0"),
            ("--price-stale-secs", "0"),
            ("--price-feed-url", "ftp://prices.example/btc"),
            ("--price-feed-url", "prices.example/btc"),
            ("--price-feed-pointer", "data/amount"),
            ("--max-open-positions", "0"),
            ("--max-leverage", "0"),
            ("--max-leverage", "101"),
            ("--max-realtime-sockets", "0"),
        ] {
            assert!(
                Config::try_parse_from(["ampere", flag, value]).is_err(),
                "{flag} {value} passed"
            );
        }
        let feed = Config::try_parse_from([
            "ampere",
            "--price-feed-url",
            "https://prices.example/v2/spot",
            "--price-feed-pointer",
            "/data/amount",
        ])
        .unwrap();
        assert!(feed.price_source().is_ok());
    }
}
