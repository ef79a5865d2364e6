//! The Ampere server: configuration, start-up and shutdown, and the axum router
//! that joins the Leptos app, its server functions and the REST APIs.

// The app's views are deeply nested types, rendered here on the server.
#![recursion_limit = "256"]

mod accounts_api;
mod config;
mod edge;
pub mod gate;
mod health;
mod history_export;
mod identity_api;
mod live;
mod oauth_api;
pub mod oidc;
mod openapi;
pub mod operator;
mod outbound;
mod photo;
pub mod price_feed;
mod rate_limit;
mod realtime;
mod render;
mod sessions;
pub mod sms;
mod wallet_api;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::middleware;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::future::IntoFuture;
use tower_http::trace::TraceLayer;
use tower_sessions::SessionManagerLayer;

use app::api::auth::{PublicUrl, SignInProviders};
use app::api::simnet::SimnetDev;
use app::{shell, App};
use engine::Engine;

pub use config::{Config, LogFormat};
pub use sessions::Sessions;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Engine(#[from] engine::Error),
    #[error("session store: {0}")]
    Sessions(#[from] sqlx::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// What every handler can reach.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub engine: Engine,
    pub public_url: PublicUrl,
    /// Whether the simnet's mine and faucet endpoints are served.
    pub simnet_dev: bool,
    pub streams: live::Streams,
    /// The identity providers people may sign in with.
    pub providers: Arc<oidc::Providers>,
    /// Where phone codes go.
    pub sms: sms::Sms,
}

pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// How the site is served: the parts of the configuration the router needs.
pub struct Site {
    pub leptos_options: LeptosOptions,
    pub public_url: String,
    pub secure_cookies: bool,
    pub simnet_dev: bool,
    /// Where the server listens: browsers may name it as their `Origin`.
    pub listen: SocketAddr,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Event streams one account may hold open at once.
    pub max_event_streams: usize,
    /// `/lnm` requests per minute, per account and per client address.
    pub lnm_requests_per_minute: u32,
    /// `/lnm/realtime` sockets one account may hold open at once.
    pub max_realtime_sockets: usize,
    /// `/lnm/realtime` sockets one client address may hold open at once.
    pub max_realtime_sockets_per_address: usize,
    /// The identity providers people may sign in with.
    pub providers: Vec<oidc::ProviderSettings>,
    /// Where phone codes go.
    pub sms: sms::Sms,
}

impl Site {
    pub fn from_config(config: &Config, sms: sms::Sms) -> Self {
        Site {
            leptos_options: leptos_options(config),
            public_url: config.public_url(),
            secure_cookies: config.secure_cookies || config.public_url().starts_with("https://"),
            simnet_dev: config.simnet_dev,
            listen: config.listen,
            trusted_proxies: config.trusted_proxies.clone(),
            max_event_streams: config.max_event_streams,
            lnm_requests_per_minute: config.lnm_requests_per_minute,
            max_realtime_sockets: config.max_realtime_sockets as usize,
            max_realtime_sockets_per_address: config.max_realtime_sockets_per_address as usize,
            providers: config.providers(),
            sms,
        }
    }

    /// A site for tests: public URL `https://wallet.example:8443`, nothing else set.
    pub fn for_tests(simnet_dev: bool) -> Self {
        Site {
            leptos_options: LeptosOptions::builder().output_name("ampere").build(),
            public_url: "https://wallet.example:8443".into(),
            secure_cookies: false,
            simnet_dev,
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            trusted_proxies: Vec::new(),
            max_event_streams: 8,
            lnm_requests_per_minute: 600,
            max_realtime_sockets: 8,
            max_realtime_sockets_per_address: 32,
            providers: Vec::new(),
            sms: sms::Sms::new(None, None).expect("no SMS transport"),
        }
    }
}

/// The engine and the session store over one database, and the signal that
/// ends the long-lived responses (event streams) at shutdown.
pub struct Services {
    pub engine: Engine,
    pub sessions: Sessions,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Services {
    pub async fn open(url: &str, settings: engine::Settings) -> Result<Self, StartError> {
        let engine = Engine::open(url, settings).await?;
        let sessions = Sessions::open(url, engine.db.clone()).await?;
        sessions.follow(&engine.bus);
        Ok(Services {
            engine,
            sessions,
            shutdown: tokio::sync::watch::channel(false).0,
        })
    }

    pub fn router(&self, site: Site) -> Router {
        // ring's TLS provider always supports the default protocol versions.
        let providers = oidc::Providers::new(site.providers, &site.public_url, site.secure_cookies)
            .expect("an HTTPS client for the identity providers");
        let state = AppState {
            leptos_options: site.leptos_options,
            engine: self.engine.clone(),
            public_url: PublicUrl(site.public_url.clone()),
            simnet_dev: site.simnet_dev,
            streams: live::Streams::new(
                live::StreamLimits {
                    event_streams_per_account: site.max_event_streams,
                    sockets_per_account: site.max_realtime_sockets,
                    sockets_per_address: site.max_realtime_sockets_per_address,
                },
                self.shutdown.subscribe(),
            ),
            providers: Arc::new(providers),
            sms: site.sms,
        };
        let gate = gate::Gate::new(
            self.engine.clone(),
            &site.public_url,
            site.listen,
            site.trusted_proxies,
        );
        let quotas = rate_limit::Quotas::new(site.lnm_requests_per_minute);
        app(
            state,
            gate,
            quotas,
            self.sessions.layer(site.secure_cookies),
        )
    }

    /// Ends every event stream (the first step of a graceful shutdown).
    pub fn end_streams(&self) {
        let _ = self.shutdown.send(true);
    }

    pub async fn close(&self) {
        self.sessions.close().await;
        self.engine.db.close().await;
    }
}

pub fn leptos_options(config: &Config) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("ampere")
        .site_root(config.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.listen)
        .build()
}

/// The whole application. Tests drive it with `oneshot`; only `run` binds a port.
pub fn app(
    state: AppState,
    gate: gate::Gate,
    quotas: rate_limit::Quotas,
    sessions: SessionManagerLayer<Sessions>,
) -> Router {
    let routes = generate_route_list(App);
    let engine = state.engine.clone();
    let public_url = state.public_url.clone();
    let simnet_dev = SimnetDev(state.simnet_dev);
    let sign_in_providers = SignInProviders(
        state
            .providers
            .kinds()
            .into_iter()
            .map(|k| (k.as_str().to_string(), k.label().to_string()))
            .collect(),
    );
    let options = state.leptos_options.clone();
    // The bundle as built, compressed ahead of time (scripts/precompress.mjs):
    // brotli or gzip as the browser accepts, the plain file otherwise.
    let pkg = std::path::Path::new(&*options.site_root).join(&*options.site_pkg_dir);
    Router::new()
        .route("/healthz", get(health::healthz))
        .nest_service(
            &format!("/{}", options.site_pkg_dir),
            tower_http::services::ServeDir::new(pkg)
                .precompressed_br()
                .precompressed_gzip(),
        )
        .route("/lnm/realtime", get(realtime::connect))
        .merge(accounts_api::router())
        .merge(identity_api::router())
        .merge(oauth_api::router())
        .merge(oidc::router())
        .merge(wallet_api::router())
        .merge(openapi::router())
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(engine.clone());
                provide_context(public_url.clone());
                provide_context(simnet_dev);
                provide_context(sign_in_providers.clone());
            },
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn(render::on_one_thread))
        // Outermost last: the session is loaded, the gate decides who calls,
        // then the caller's quota is counted.
        .layer(middleware::from_fn_with_state(quotas, rate_limit::limit))
        .layer(middleware::from_fn_with_state(gate, gate::admit))
        .layer(sessions)
        .layer(middleware::from_fn(edge::method_not_allowed))
        .layer(middleware::from_fn(edge::time_limit))
        .layer(middleware::from_fn(edge::catch_panic))
        .layer(middleware::from_fn(edge::security_headers))
        .layer(TraceLayer::new_for_http().make_span_with(edge::request_span))
        .with_state(state)
}

/// How long in-flight requests may take to finish once a shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Opens the storage, serves until SIGINT or SIGTERM, lets in-flight requests
/// finish, then closes the databases cleanly.
pub async fn run(config: Config) -> Result<(), StartError> {
    for provider in config.providers() {
        provider
            .check()
            .map_err(|e| engine::Error::invalid("provider", e))?;
    }
    let sms = config.sms()?;
    std::fs::create_dir_all(&config.data_dir)?;
    let services = Services::open(&config.database_url(), config.engine_settings()).await?;
    let sweeper = services
        .sessions
        .spawn_expiry_sweep(services.engine.accounts.clone());
    // Withdrawals whose payment never committed are ended and refunded.
    let withdrawals = services.engine.desk.spawn_sweeper(Duration::from_secs(30));
    // The price moves, and every position is checked against it, each tick.
    let ticker = services.engine.desk.spawn_ticker(config.price_source()?);
    let miner = (config.block_interval > 0).then(|| {
        services
            .engine
            .simnet
            .spawn_miner(Duration::from_secs(config.block_interval))
    });
    let router = services.router(Site::from_config(&config, sms));

    // TCP_NODELAY: a page rendered in order is streamed in several chunks, and
    // Nagle's algorithm would hold each one back until the client's delayed ACK
    // (about 40 ms a page).
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await?
        .tap_io(|stream| {
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!(error = %err, "TCP_NODELAY not set");
            }
        });
    tracing::info!(
        listen = %config.listen,
        public_url = %config.public_url(),
        backend = ?services.engine.db.backend(),
        "ampere listening"
    );
    // At the signal: stop accepting, end the event streams (they would keep the
    // server waiting forever), let the other requests finish, but not for ever.
    let (signalled, mut on_signal) = tokio::sync::watch::channel(false);
    let streams = services.shutdown.clone();
    let serving = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = signalled.send(true);
        let _ = streams.send(true);
    })
    .into_future();
    // Without its writer no write can succeed: exit (non-zero) rather than serve
    // errors; a supervisor restarts the process.
    let writer_stopped = services.engine.db.writer_stopped();
    tokio::select! {
        served = serving => served?,
        _ = async {
            let _ = on_signal.wait_for(|s| *s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!("requests still running after the grace period: stopping anyway"),
        () = writer_stopped => {
            tracing::error!("the database writer stopped: exiting");
            return Err(engine::Error::Internal("the database writer stopped".into()).into());
        }
    }

    tracing::info!("shutting down: closing the databases");
    sweeper.abort();
    withdrawals.abort();
    ticker.abort();
    if let Some(miner) = miner {
        miner.abort();
    }
    services.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("signal received: finishing in-flight requests");
}
