//! What every request meets before its route, on SQLite and PostgreSQL: the
//! security headers, the pages' Content-Security-Policy with a fresh nonce per
//! response (the only script that runs is the one carrying it), and forged
//! forwarding headers ignored from anyone but a trusted proxy.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::json;

use common::{Auth, Server, PASSWORD};

testdb::on_both_databases!(
    open_server;
    every_response_carries_the_security_headers,
    pages_allow_only_the_script_with_their_nonce,
    a_forged_forwarded_for_does_not_dodge_the_throttle,
);

async fn open_server(url: &str) -> Server {
    Server::open(url).await
}

async fn every_response_carries_the_security_headers(server: Server) {
    let token = server.register("hedy").await;
    for reply in [
        server.get("/healthz", Auth::None).await,
        server
            .get("/rest/v1/getalldata", Auth::Bearer(&token))
            .await,
        server.get("/rest/v1/getalldata", Auth::None).await,
        server.get("/signin", Auth::None).await,
    ] {
        let h = &reply.headers;
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::REFERRER_POLICY], "same-origin");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }
    // A JSON answer may run nothing at all.
    let api = server
        .get("/rest/v1/getalldata", Auth::Bearer(&token))
        .await;
    let csp = api.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
}

async fn pages_allow_only_the_script_with_their_nonce(server: Server) {
    let nonce_of = |reply: &common::Reply| {
        let csp = reply.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_string();
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("no nonce in {csp}"))
            .to_string();
        let scripts = csp
            .split(';')
            .find(|d| d.trim_start().starts_with("script-src"))
            .unwrap_or_else(|| panic!("no script-src in {csp}"));
        assert!(!scripts.contains("'unsafe-inline'"), "{csp}");
        assert!(!scripts.contains("'unsafe-eval'"), "{csp}");
        nonce
    };
    let first = server.get("/signin", Auth::None).await;
    assert_eq!(first.status, StatusCode::OK);
    let nonce = nonce_of(&first);
    assert!(nonce.len() >= 16, "{nonce}");
    // The hydration script carries it; no script runs without it.
    assert!(
        first.text.contains(&format!("nonce=\"{nonce}\"")),
        "{}",
        first.text
    );
    for script in first.text.split("<script").skip(1) {
        assert!(script.contains(&format!("nonce=\"{nonce}\"")), "{script}");
    }
    let second = server.get("/signin", Auth::None).await;
    assert_ne!(nonce_of(&second), nonce, "a nonce is used once");
    // The head every page shares is written once, before the body.
    let head = first.text.split("<body").next().unwrap();
    for tag in [
        r#"<link rel="stylesheet" id="leptos" href="/pkg/ampere.css">"#,
        r#"<link rel="manifest" href="/manifest.webmanifest">"#,
        r#"<link rel="icon" href="/icon.svg">"#,
        r#"<meta name="color-scheme" content="light dark">"#,
    ] {
        assert_eq!(head.matches(tag).count(), 1, "{tag} in {head}");
    }
}

async fn a_forged_forwarded_for_does_not_dodge_the_throttle(server: Server) {
    // The test server trusts no proxy: a client's own X-Forwarded-For is
    // ignored, so changing it each time does not reset the per-client count.
    let mut refused = false;
    for attempt in 0..60 {
        let reply = server
            .send(
                Request::post("/api/v1/auth")
                    .header(header::CONTENT_TYPE, "application/json")
                    .header("x-forwarded-for", format!("198.51.100.{attempt}"))
                    .body(Body::from(
                        json!({"username": format!("ghost{attempt}"), "password": PASSWORD})
                            .to_string(),
                    ))
                    .unwrap(),
            )
            .await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            refused = true;
            break;
        }
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    }
    assert!(refused, "one client's failures are counted together");
}
