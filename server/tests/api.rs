//! The HTTP APIs of issue 2, driven through the router without a socket, on
//! SQLite and on PostgreSQL: accounts (`/api/v1/auth`), myLightning sessions
//! (`/rest/v1/login|logout|ping`), bad input, throttling, cross-origin writes.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::json;

use common::{session_cookie, Auth, Server, PASSWORD};

testdb::on_both_databases!(
    open_server;
    register_returns_a_bearer_token_that_reads_the_user,
    login_with_the_account_api_returns_a_token,
    mylightning_login_sets_a_session_cookie_that_ping_accepts,
    logout_deletes_the_session_on_the_server,
    each_login_rotates_the_session_id,
    malformed_account_requests_get_400_json_and_write_nothing,
    malformed_mylightning_requests_get_400_json,
    duplicate_usernames_get_409_ignoring_case,
    unknown_users_and_wrong_passwords_get_401,
    repeated_failures_get_429_with_retry_after,
    cross_origin_writes_are_refused,
    health_and_pages_answer,
    a_password_change_revokes_every_session_and_token,
    a_sign_up_flood_gets_429_with_retry_after,
    a_busy_server_answers_503_with_retry_after,
);

async fn open_server(url: &str) -> Server {
    Server::open(url).await
}

async fn register_returns_a_bearer_token_that_reads_the_user(server: Server) {
    let token = server.register("alice").await;
    let me = server.get("/api/v1/auth", Auth::Bearer(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["username"], "alice");
    assert_eq!(me.body["is_admin"], false);
    assert!(me.body["id"].as_str().unwrap().len() >= 32);
    assert!(me.body["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(me.body.get("password_hash").is_none());

    // A bearer token also answers the myLightning ping.
    assert_eq!(
        server
            .get("/rest/v1/ping", Auth::Bearer(&token))
            .await
            .status,
        StatusCode::OK
    );
    let forged = format!("{token}x");
    assert_eq!(
        server
            .get("/api/v1/auth", Auth::Bearer(&forged))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server.get("/api/v1/auth", Auth::None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn login_with_the_account_api_returns_a_token(server: Server) {
    server.register("Bob").await;
    let reply = server
        .post_json(
            "/api/v1/auth",
            &json!({"username": "bob", "password": PASSWORD}).to_string(),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["token_type"], "bearer");
    let token = reply.body["access_token"].as_str().unwrap();
    let me = server.get("/api/v1/auth", Auth::Bearer(token)).await;
    assert_eq!(me.body["username"], "Bob");
}

async fn mylightning_login_sets_a_session_cookie_that_ping_accepts(server: Server) {
    server.register("carol").await;
    let reply = server
        .post_json(
            "/rest/v1/login",
            &json!({"username": "carol", "password": PASSWORD}).to_string(),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["username"], "carol");
    assert_eq!(reply.body["_csrf"].as_str().unwrap().len(), 32);
    let set_cookie = reply
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(set_cookie.starts_with("session="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    let cookie = session_cookie(&reply).unwrap();

    let ping = server.get("/rest/v1/ping", Auth::Cookie(&cookie)).await;
    assert_eq!(ping.status, StatusCode::OK, "{}", ping.text);
    // The same cookie reads the current user on the account API too.
    let me = server.get("/api/v1/auth", Auth::Cookie(&cookie)).await;
    assert_eq!(me.body["username"], "carol");

    let anonymous = server.get("/rest/v1/ping", Auth::None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(
        anonymous.body["error"]["message"].is_string(),
        "{}",
        anonymous.text
    );
    let forged = server
        .get(
            "/rest/v1/ping",
            Auth::Cookie("session=AAAAAAAAAAAAAAAAAAAAAA"),
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
}

async fn logout_deletes_the_session_on_the_server(server: Server) {
    server.register("dave").await;
    let login = server
        .post_json(
            "/rest/v1/login",
            &json!({"username": "dave", "password": PASSWORD}).to_string(),
            None,
        )
        .await;
    let cookie = session_cookie(&login).unwrap();
    let csrf = login.body["_csrf"].as_str().unwrap().to_string();
    let logout = |path: String| {
        Request::post(path)
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap()
    };
    // Another site cannot sign dave out: without the CSRF token, 403, and the
    // session lives on.
    let forged = server.send(logout("/rest/v1/logout".into())).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    let wrong = server
        .send(logout("/rest/v1/logout?_csrf=0000".into()))
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let ping = server.get("/rest/v1/ping", Auth::Cookie(&cookie)).await;
    assert_eq!(ping.status, StatusCode::OK);

    let reply = server
        .send(logout(format!("/rest/v1/logout?_csrf={csrf}")))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    // The old cookie, replayed, no longer works: the session is gone server side.
    let ping = server.get("/rest/v1/ping", Auth::Cookie(&cookie)).await;
    assert_eq!(ping.status, StatusCode::UNAUTHORIZED);
    // Logging out without a session still answers 200.
    let again = server
        .send(
            Request::post("/rest/v1/logout")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
}

async fn each_login_rotates_the_session_id(server: Server) {
    server.register("erin").await;
    let first = server.session_login("erin", None).await;
    let second = server.session_login("erin", Some(&first)).await;
    assert_ne!(first, second);
    assert_eq!(
        server
            .get("/rest/v1/ping", Auth::Cookie(&second))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        server
            .get("/rest/v1/ping", Auth::Cookie(&first))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

async fn malformed_account_requests_get_400_json_and_write_nothing(server: Server) {
    let long = "x".repeat(100_000);
    let cases = [
        ("/api/v1/auth/register", "{not json".to_string()),
        (
            "/api/v1/auth/register",
            json!({"username": 5, "password": PASSWORD}).to_string(),
        ),
        (
            "/api/v1/auth/register",
            json!({"username": "frank"}).to_string(),
        ),
        (
            "/api/v1/auth/register",
            json!({"password": PASSWORD}).to_string(),
        ),
        (
            "/api/v1/auth/register",
            json!({"username": long, "password": PASSWORD}).to_string(),
        ),
        (
            "/api/v1/auth/register",
            json!({"username": "frank", "password": long}).to_string(),
        ),
        (
            "/api/v1/auth/register",
            json!({"username": "frank", "password": "weak"}).to_string(),
        ),
        (
            "/api/v1/auth/register",
            json!({"username": "fr ank", "password": PASSWORD}).to_string(),
        ),
        (
            "/api/v1/auth/register",
            json!({"username": "frank", "password": PASSWORD, "email": "nope"}).to_string(),
        ),
        ("/api/v1/auth/register", "[]".to_string()),
        ("/api/v1/auth", "null".to_string()),
        (
            "/api/v1/auth",
            json!({"username": ["a"], "password": PASSWORD}).to_string(),
        ),
    ];
    for (path, body) in cases {
        let reply = server.post_json(path, &body, None).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path} {body:.80}: {}",
            reply.text
        );
        assert!(
            reply.body["detail"].is_string(),
            "{path} {body:.80}: {}",
            reply.text
        );
    }
    // Without a JSON content type.
    let reply = server
        .send(
            Request::post("/api/v1/auth/register")
                .body(Body::from(
                    json!({"username": "frank", "password": PASSWORD}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert!(reply.status.is_client_error(), "{}", reply.text);
    assert!(reply.body["detail"].is_string());
    assert_eq!(server.user_count().await, 0);
}

async fn malformed_mylightning_requests_get_400_json(server: Server) {
    for body in [
        "{not json".to_string(),
        json!({"username": "x"}).to_string(),
        json!({"username": 1, "password": 2}).to_string(),
        String::new(),
    ] {
        let reply = server.post_json("/rest/v1/login", &body, None).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body:?}: {}",
            reply.text
        );
        assert!(
            reply.body["error"]["message"].is_string(),
            "{body:?}: {}",
            reply.text
        );
        assert!(session_cookie(&reply).is_none());
    }
    let overlong = json!({"username": "x".repeat(50_000), "password": PASSWORD}).to_string();
    let reply = server.post_json("/rest/v1/login", &overlong, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
}

async fn duplicate_usernames_get_409_ignoring_case(server: Server) {
    server.register("grace").await;
    let reply = server
        .post_json(
            "/api/v1/auth/register",
            &json!({"username": "GRACE", "password": PASSWORD}).to_string(),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    assert_eq!(reply.body["detail"], "username is already taken");
    assert_eq!(server.user_count().await, 1);
}

async fn unknown_users_and_wrong_passwords_get_401(server: Server) {
    server.register("heidi").await;
    for (username, password) in [
        ("heidi", "Wrong-horse-7"),
        ("nobody", PASSWORD),
        ("hei\u{0}di", PASSWORD),
    ] {
        let body = json!({"username": username, "password": password}).to_string();
        let account = server.post_json("/api/v1/auth", &body, None).await;
        assert_eq!(account.status, StatusCode::UNAUTHORIZED);
        assert_eq!(account.body["detail"], "invalid username or password");
        let session = server.post_json("/rest/v1/login", &body, None).await;
        assert_eq!(session.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            session.body["error"]["message"],
            "invalid username or password"
        );
        assert!(session_cookie(&session).is_none());
    }
    // A script that sends `Accept: text/html` still gets the real status.
    let html = server
        .send(
            Request::post("/rest/v1/login")
                .header(header::ACCEPT, "text/html")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"username": "heidi", "password": "nope"}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(html.status, StatusCode::UNAUTHORIZED, "{}", html.text);
}

async fn repeated_failures_get_429_with_retry_after(server: Server) {
    server.register("ivan").await;
    let wrong = json!({"username": "ivan", "password": "Wrong-horse-7"}).to_string();
    for _ in 0..3 {
        let reply = server.post_json("/rest/v1/login", &wrong, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let right = json!({"username": "ivan", "password": PASSWORD}).to_string();
    for path in ["/rest/v1/login", "/api/v1/auth"] {
        let reply = server.post_json(path, &right, None).await;
        assert_eq!(
            reply.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{path}: {}",
            reply.text
        );
        let retry: u64 = reply.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
    }
}

async fn cross_origin_writes_are_refused(server: Server) {
    server.register("judy").await;
    let body = json!({"username": "judy", "password": PASSWORD}).to_string();
    let request = |host: &str, origin: &str| {
        Request::post("/rest/v1/login")
            .header(header::HOST, host)
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.clone()))
            .unwrap()
    };
    let evil = server
        .send(request("wallet.example:8443", "https://evil.example"))
        .await;
    assert_eq!(evil.status, StatusCode::FORBIDDEN);
    assert_eq!(
        evil.body["error"]["message"],
        "cross-origin request refused"
    );
    assert!(session_cookie(&evil).is_none());
    // DNS rebinding: evil.example now resolves to this server, so the browser's
    // Host and Origin agree, but neither is this site.
    let rebound = server
        .send(request("evil.example", "http://evil.example"))
        .await;
    assert_eq!(rebound.status, StatusCode::FORBIDDEN, "{}", rebound.text);
    // An opaque origin (sandboxed frame, file:) is not this site either.
    let opaque = server.send(request("wallet.example:8443", "null")).await;
    assert_eq!(opaque.status, StatusCode::FORBIDDEN);
    // The public URL's origin, whatever Host a proxy passes on.
    let public = server
        .send(request("127.0.0.1:3000", "https://wallet.example:8443"))
        .await;
    assert_eq!(public.status, StatusCode::OK, "{}", public.text);
    // The listen address (127.0.0.1:3000 here) and its localhost name.
    for origin in ["http://127.0.0.1:3000", "http://localhost:3000"] {
        let direct = server.send(request("127.0.0.1:3000", origin)).await;
        assert_eq!(direct.status, StatusCode::OK, "{origin}: {}", direct.text);
    }
    // The account API refuses in its own format.
    let register = server
        .send(
            Request::post("/api/v1/auth/register")
                .header(header::ORIGIN, "https://evil.example")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"username": "mallory", "password": PASSWORD}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(register.status, StatusCode::FORBIDDEN);
    assert_eq!(register.body["detail"], "cross-origin request refused");
    assert_eq!(server.user_count().await, 1, "nothing was created");
}

async fn health_and_pages_answer(server: Server) {
    let health = server.get("/healthz", Auth::None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["status"], "ok");

    let page = server.get("/signin", Auth::None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("<form"), "{}", page.text);
    assert!(page.text.contains("name=\"password\""));

    let missing = server.get("/no/such/page", Auth::None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn a_password_change_revokes_every_session_and_token(server: Server) {
    let token = server.register("lena").await;
    let cookie = server.session_login("lena", None).await;
    let change = |old: &str, new: &str, auth: &str| {
        Request::put("/api/v1/auth/update-password")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {auth}"))
            .body(Body::from(
                json!({"old_password": old, "new_password": new}).to_string(),
            ))
            .unwrap()
    };
    let wrong = server
        .send(change("Wrong-horse-7", "Battery-staple-9", &token))
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text);
    let weak = server.send(change(PASSWORD, "weak", &token)).await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST, "{}", weak.text);
    // Nothing changed yet: both credentials still work.
    assert_eq!(
        server
            .get("/rest/v1/ping", Auth::Cookie(&cookie))
            .await
            .status,
        StatusCode::OK
    );

    let changed = server
        .send(change(PASSWORD, "Battery-staple-9", &token))
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.body["detail"], "Password updated");
    assert_eq!(
        server
            .get("/api/v1/auth", Auth::Bearer(&token))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server
            .get("/rest/v1/ping", Auth::Cookie(&cookie))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let old = json!({"username": "lena", "password": PASSWORD}).to_string();
    assert_eq!(
        server.post_json("/api/v1/auth", &old, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let new = json!({"username": "lena", "password": "Battery-staple-9"}).to_string();
    assert_eq!(
        server.post_json("/api/v1/auth", &new, None).await.status,
        StatusCode::OK
    );
}

/// Every route under `/rest/v1` and `/api/v1`, as `METHOD path`.
const API_ROUTES: &[(&str, &str)] = &[
    ("POST", "/rest/v1/login"),
    ("POST", "/rest/v1/logout"),
    ("GET", "/rest/v1/ping"),
    ("GET", "/rest/v1/getalldata"),
    ("POST", "/rest/v1/createinvoice"),
    ("POST", "/rest/v1/sendinvoice"),
    ("POST", "/rest/v1/decodeinvoice"),
    ("POST", "/rest/v1/quickpay"),
    ("POST", "/rest/v1/openchannel"),
    ("POST", "/rest/v1/closechannel"),
    ("POST", "/rest/v1/addcontact"),
    ("POST", "/rest/v1/removecontact"),
    ("GET", "/rest/v1/history"),
    ("GET", "/rest/v1/channels"),
    ("GET", "/rest/v1/history.csv"),
    ("POST", "/rest/v1/settings"),
    ("GET", "/rest/v1/getqrimage"),
    ("GET", "/rest/v1/events"),
    ("POST", "/rest/v1/scanqr"),
    ("POST", "/api/v1/simnet/mine"),
    ("POST", "/api/v1/simnet/faucet"),
    ("POST", "/api/v1/simnet/price"),
    ("GET", "/api/v1/auth"),
    ("POST", "/api/v1/auth"),
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/usr"),
    ("PUT", "/api/v1/auth/me"),
    ("DELETE", "/api/v1/auth/me"),
    ("PUT", "/api/v1/auth/update-password"),
    ("POST", "/api/v1/auth/reset-password"),
    ("PUT", "/api/v1/auth/reset"),
    ("POST", "/api/v1/auth/nostr"),
    ("GET", "/api/v1/auth/nostr/keys"),
    ("POST", "/api/v1/auth/nostr/keys"),
    ("DELETE", "/api/v1/auth/nostr/keys/{pubkey}"),
    ("GET", "/api/v1/auth/acls"),
    ("POST", "/api/v1/auth/acls"),
    ("PUT", "/api/v1/auth/acls/{acl_id}"),
    ("DELETE", "/api/v1/auth/acls/{acl_id}"),
    ("POST", "/api/v1/auth/acls/{acl_id}/tokens"),
    ("DELETE", "/api/v1/auth/acls/{acl_id}/tokens/{token_id}"),
];

/// The document does not depend on the storage: one database is enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_api_route() {
    let db = testdb::sqlite();
    let server = Server::open(&db.url).await;
    let reply = server.get("/openapi.json", Auth::None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
    let doc = &reply.body;
    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3."),
        "not an OpenAPI 3 document: {:.200}",
        reply.text
    );
    let described =
        |method: &str, path: &str| doc["paths"][path][method.to_ascii_lowercase()].is_object();

    // The list above is what the router serves: each route answers, none is
    // unknown (404) or served under another method (405).
    for &(method, path) in API_ROUTES {
        // A path parameter gets a value (no such ACL: 401 or 404, not 405).
        let uri = path.replace(['{', '}'], "");
        let served = server
            .send(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert!(
            served.status != StatusCode::NOT_FOUND
                && served.status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is not served: {}",
            served.status
        );
        assert!(described(method, path), "{method} {path} is not described");
    }

    // A server function added later is in the list (and so in the document) too.
    for (path, method) in leptos::server_fn::axum::server_fn_paths() {
        if path.starts_with("/rest/v1/") || path.starts_with("/api/v1/") {
            assert!(
                API_ROUTES.contains(&(method.as_str(), path)),
                "{method} {path} is served but missing from API_ROUTES"
            );
        }
    }

    // And the document describes nothing that is not served.
    let paths = doc["paths"].as_object().expect("paths");
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            assert!(
                API_ROUTES.contains(&(method.as_str(), path.as_str())),
                "{method} {path} is described but not served"
            );
        }
    }
}

/// `/healthz` goes through the database writer: it answers 503 while the writer
/// is stuck or stopped, so a load balancer stops sending traffic here.
mod health_through_the_writer {
    use std::time::{Duration, Instant};

    use axum::http::StatusCode;

    use super::common::{Auth, Server};

    testdb::on_both_databases!(
        open_server;
        healthz_answers_503_while_the_writer_is_stuck_and_after_it_stopped,
    );

    async fn open_server(url: &str) -> Server {
        Server::open(url).await
    }

    async fn healthz_answers_503_while_the_writer_is_stuck_and_after_it_stopped(server: Server) {
        let healthy = server.get("/healthz", Auth::None).await;
        assert_eq!(healthy.status, StatusCode::OK, "{}", healthy.text);

        // A write that keeps the writer busy for 4 s.
        let db = server.services.engine.db.clone();
        let stuck = tokio::spawn(async move {
            db.write(|_conn| {
                Box::pin(async {
                    tokio::time::sleep(Duration::from_secs(4)).await;
                    Ok(())
                })
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;

        let started = Instant::now();
        let blocked = server.get("/healthz", Auth::None).await;
        let waited = started.elapsed();
        assert_eq!(blocked.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(blocked.body["status"], "unavailable");
        assert!(waited < Duration::from_secs(3), "answered after {waited:?}");

        // The writer is free again: healthy, and the abandoned probe did no harm.
        stuck.await.unwrap().unwrap();
        let again = server.get("/healthz", Auth::None).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.text);

        // A stopped writer is unhealthy at once.
        server.services.engine.db.close().await;
        let stopped = server.get("/healthz", Auth::None).await;
        assert_eq!(stopped.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}

/// The `Retry-After` header of a reply, in seconds.
fn retry_after_secs(reply: &common::Reply) -> u64 {
    reply.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn a_sign_up_flood_gets_429_with_retry_after(server: Server) {
    // The default limit: five sign-ups per address an hour.
    for i in 0..5 {
        server.register(&format!("flood{i}")).await;
    }
    let reply = server
        .post_json(
            "/api/v1/auth/register",
            &json!({"username": "flood5", "password": PASSWORD}).to_string(),
            None,
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.text
    );
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("too many attempts"),
        "{}",
        reply.text
    );
    assert!((3000..=3600).contains(&retry_after_secs(&reply)));
    assert_eq!(server.user_count().await, 5);
}

async fn a_busy_server_answers_503_with_retry_after(server: Server) {
    server.register("olga").await;
    let hold = server.services.engine.accounts.hold_hashing().await;
    let body = json!({"username": "olga", "password": PASSWORD}).to_string();
    let accounts = server.post_json("/api/v1/auth", &body, None).await;
    assert_eq!(
        accounts.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        accounts.text
    );
    assert!(accounts.body["detail"]
        .as_str()
        .unwrap()
        .starts_with("the server is busy"));
    assert!(retry_after_secs(&accounts) >= 1);
    let mylightning = server.post_json("/rest/v1/login", &body, None).await;
    assert_eq!(
        mylightning.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        mylightning.text
    );
    assert!(mylightning.body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("the server is busy"));
    assert!(retry_after_secs(&mylightning) >= 1);
    assert!(session_cookie(&mylightning).is_none());
    drop(hold);
    // Busy answers used none of olga's three allowed failures.
    server.session_login("olga", None).await;
}

/// The requests the security page offers for an ACL are served: each is
/// described by one of the two OpenAPI documents (which list only served
/// routes, see above).
#[test]
fn the_acl_choices_on_the_security_page_are_served_routes() {
    let ours: serde_json::Value = serde_json::from_str(include_str!("../openapi.json")).unwrap();
    let lnm: serde_json::Value = serde_json::from_str(include_str!("../lnm-openapi.json")).unwrap();
    for endpoint in app::api::security::COMMON_ENDPOINTS {
        let (method, path) = endpoint.split_once(' ').unwrap();
        let method = method.to_ascii_lowercase();
        let described = match path.strip_prefix("/lnm") {
            Some(rest) => lnm["paths"][rest][&method].is_object(),
            None => ours["paths"][path][&method].is_object(),
        };
        assert!(described, "{endpoint} is offered but not served");
    }
}
