//! The Ampere server: configuration, start-up and shutdown, and the axum router
//! that joins the Leptos app, its server functions and the REST APIs.

// The app's views are deeply nested types, rendered here on the server.
#![recursion_limit = "256"]

mod accounts_api;
mod config;
mod health;
mod photo;
mod sessions;
mod wallet_api;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{FromRef, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::trace::TraceLayer;
use tower_sessions::SessionManagerLayer;

use app::api::auth::PublicUrl;
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
}

impl Site {
    pub fn from_config(config: &Config) -> Self {
        Site {
            leptos_options: leptos_options(config),
            public_url: config.public_url(),
            secure_cookies: config.secure_cookies,
            simnet_dev: config.simnet_dev,
        }
    }
}

/// The engine and the session store over one database.
pub struct Services {
    pub engine: Engine,
    pub sessions: Sessions,
}

impl Services {
    pub async fn open(url: &str, settings: engine::Settings) -> Result<Self, StartError> {
        Ok(Services {
            engine: Engine::open(url, settings).await?,
            sessions: Sessions::open(url).await?,
        })
    }

    pub fn router(&self, site: Site) -> Router {
        let state = AppState {
            leptos_options: site.leptos_options,
            engine: self.engine.clone(),
            public_url: PublicUrl(site.public_url),
            simnet_dev: site.simnet_dev,
        };
        app(state, self.sessions.layer(site.secure_cookies))
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
pub fn app(state: AppState, sessions: SessionManagerLayer<Sessions>) -> Router {
    let routes = generate_route_list(App);
    let engine = state.engine.clone();
    let public_url = state.public_url.clone();
    let simnet_dev = SimnetDev(state.simnet_dev);
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
        .merge(accounts_api::router())
        .merge(wallet_api::router())
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(engine.clone());
                provide_context(public_url.clone());
                provide_context(simnet_dev);
            },
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(sessions)
        .layer(middleware::from_fn_with_state(
            state.public_url.clone(),
            same_origin_writes,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Opens the storage, serves until SIGINT or SIGTERM, lets in-flight requests
/// finish, then closes the databases cleanly.
pub async fn run(config: Config) -> Result<(), StartError> {
    std::fs::create_dir_all(&config.data_dir)?;
    let services = Services::open(&config.database_url(), config.engine_settings()).await?;
    let sweeper = services.sessions.spawn_expiry_sweep();
    let miner = (config.block_interval > 0).then(|| {
        services
            .engine
            .simnet
            .spawn_miner(Duration::from_secs(config.block_interval))
    });
    let router = services.router(Site::from_config(&config));

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
    let serve = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal());

    // Without its writer no write can succeed: exit (non-zero) rather than serve
    // errors; a supervisor restarts the process.
    let writer_stopped = services.engine.db.writer_stopped();
    tokio::select! {
        served = std::future::IntoFuture::into_future(serve) => served?,
        () = writer_stopped => {
            tracing::error!("the database writer stopped: exiting");
            return Err(engine::Error::Internal("the database writer stopped".into()).into());
        }
    }

    tracing::info!("shutting down: closing the databases");
    sweeper.abort();
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

/// Refuses a state-changing request that a browser sent from another site: its
/// `Origin` names neither the host it was sent to nor the public URL's host.
/// Cookies are SameSite=Lax already; this also covers log-in CSRF and same-site
/// subdomains.
async fn same_origin_writes(
    State(public_url): State<PublicUrl>,
    request: Request,
    next: Next,
) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe {
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let host = request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok());
            let origin_host = origin
                .to_str()
                .ok()
                .and_then(|o| o.split_once("://").map(|(_, rest)| rest));
            let public = public_url
                .0
                .split_once("://")
                .and_then(|(_, rest)| rest.split('/').next());
            if origin_host.is_none() || (origin_host != host && origin_host != public) {
                return (
                    StatusCode::FORBIDDEN,
                    Json(serde_json::json!({
                        "error": { "message": "cross-origin request refused" }
                    })),
                )
                    .into_response();
            }
        }
    }
    next.run(request).await
}
