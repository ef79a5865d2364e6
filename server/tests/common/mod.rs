//! What the HTTP test suites share: a server built on a throwaway database and
//! driven through its router without a socket, and readable replies.

#![allow(dead_code)]

pub mod desk;
pub mod mail;
pub mod provider;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use engine::throttle::Limits;
use server::{Services, Site};

pub const PASSWORD: &str = "Correct-horse-7";

pub struct Server {
    pub router: Router,
    pub services: Services,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub bytes: Vec<u8>,
    pub text: String,
}

impl Server {
    pub async fn open(url: &str) -> Self {
        Self::open_with(url, true).await
    }

    /// A server with the simnet's developer endpoints on or off.
    pub async fn open_with(url: &str, simnet_dev: bool) -> Self {
        let limits = Limits {
            per_username: 3,
            per_client: 50,
            window: Duration::from_secs(60),
        };
        let settings = engine::Settings {
            throttle: limits,
            ..Default::default()
        };
        let services = Services::open(url, settings).await.expect("services open");
        Server {
            router: services.router(Site::for_tests(simnet_dev)),
            services,
        }
    }

    /// A server with these engine settings (the tests' login limits kept).
    pub async fn open_with_settings(url: &str, settings: engine::Settings, site: Site) -> Self {
        let settings = engine::Settings {
            throttle: Limits {
                per_username: 3,
                per_client: 50,
                window: Duration::from_secs(60),
            },
            ..settings
        };
        let services = Services::open(url, settings).await.expect("services open");
        Server {
            router: services.router(site),
            services,
        }
    }

    /// A server listening on a loopback port, for clients that speak HTTP
    /// themselves (the Python wallets): answers it and its base URL, which is
    /// also its public URL (LNURLs point there).
    pub async fn listening(url: &str) -> (Self, String) {
        Self::listening_with(url, engine::Settings::default(), Site::for_tests(true)).await
    }

    /// [`Server::listening`] with these engine settings and site (their
    /// public URL and listen address are the loopback port's).
    pub async fn listening_with(
        url: &str,
        mut settings: engine::Settings,
        site: Site,
    ) -> (Self, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let base = format!("http://{address}");
        settings.desk.public_url = base.clone();
        let site = Site {
            public_url: base.clone(),
            listen: address,
            ..site
        };
        let server = Self::open_with_settings(url, settings, site).await;
        let router = server.router.clone();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
        (server, base)
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            bytes: bytes.to_vec(),
            text,
        }
    }

    pub async fn post_json(&self, path: &str, body: &str, cookie: Option<&str>) -> Reply {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/json");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(request.body(Body::from(body.to_string())).unwrap())
            .await
    }

    pub async fn get(&self, path: &str, auth: Auth<'_>) -> Reply {
        self.call(axum::http::Method::GET, path, auth, None).await
    }

    /// A call with `auth` and, if any, a JSON `body` (its raw text: malformed
    /// bodies too). A cookie write carries no CSRF token unless the path or
    /// the body does.
    pub async fn call(
        &self,
        method: axum::http::Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&str>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        request = match auth {
            Auth::None => request,
            Auth::Cookie(c) => request.header(header::COOKIE, c),
            Auth::Bearer(t) => request.header(header::AUTHORIZATION, format!("Bearer {t}")),
        };
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    pub async fn register(&self, username: &str) -> String {
        let reply = self
            .post_json(
                "/api/v1/auth/register",
                &json!({"username": username, "password": PASSWORD}).to_string(),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.body["access_token"].as_str().unwrap().to_string()
    }

    /// Logs in through myLightning and returns the `session=...` cookie pair.
    pub async fn session_login(&self, username: &str, cookie: Option<&str>) -> String {
        let reply = self
            .post_json(
                "/rest/v1/login",
                &json!({"username": username, "password": PASSWORD}).to_string(),
                cookie,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        session_cookie(&reply).expect("login sets the session cookie")
    }

    pub async fn user_count(&self) -> i64 {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(self.services.engine.db.pool())
            .await
            .unwrap()
            .get("n")
    }
}

pub enum Auth<'a> {
    None,
    Cookie(&'a str),
    Bearer(&'a str),
}

pub fn session_cookie(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("session="))
        .map(|v| v.split(';').next().unwrap().to_string())
}

/// Reads a QR code with zbar (Debian's zbar-tools), a decoder this project did
/// not write.
pub fn zbar(png: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("qr.png");
    std::fs::write(&file, png).unwrap();
    let out = std::process::Command::new("zbarimg")
        .args(["--raw", "-q", "-Sbinary"])
        .arg(&file)
        .output()
        .expect("zbarimg (apt install zbar-tools; scripts/test installs it)");
    assert!(
        out.status.success(),
        "zbarimg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end_matches('\n')
        .to_string()
}

/// The code pyotp computes from an `otpauth://` URL for the time `at` (Unix
/// seconds).
pub fn pyotp(url: &str, at: i64) -> String {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, pyotp; print(pyotp.parse_uri(sys.argv[1]).at(int(sys.argv[2])))",
            url,
            &at.to_string(),
        ])
        .output()
        .expect("the test venv (.venv, made by scripts/test) with pyotp");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
