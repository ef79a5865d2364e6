//! The rest of the LNbits account API (`specs/lnbits-users-accounts-api.txt`)
//! and the operator's say over accounts, on SQLite and PostgreSQL: the
//! profile (`PUT /api/v1/auth/me`) with an e-mail address one account holds
//! whatever its case, even when two claim it at once; the legacy sign-in with
//! an account id, off unless allowed and throttled; no new accounts when the
//! operator says so, every way; administrators named by the operator.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use common::{Auth, Reply, Server, PASSWORD};

testdb::on_both_databases!(
    open_server;
    the_profile_changes_and_refuses_bad_input_unchanged,
    signing_in_with_an_id_is_off_by_default,
);

/// Stories that open their servers with the operator's own settings.
mod operated {
    use super::*;

    testdb::on_both_databases!(
        database_url;
        an_email_address_belongs_to_one_account_even_in_a_race,
        signing_in_with_an_id_when_allowed_is_throttled,
        no_new_accounts_when_the_operator_says_so,
        administrators_are_the_operators_list,
    );
}

async fn open_server(url: &str) -> Server {
    Server::open(url).await
}

async fn database_url(url: &str) -> String {
    url.to_string()
}

/// A server with the operator's `policy`, and room for a crowd of sign-ups.
async fn open_with(url: &str, policy: engine::accounts::Policy) -> Server {
    use engine::throttle::{ClientLimits, Rule};
    let hour = std::time::Duration::from_secs(3600);
    let settings = engine::Settings {
        accounts: policy,
        sign_up: ClientLimits {
            per_client: Rule::new(1000, hour),
            overall: Rule::new(1000, hour),
        },
        ..Default::default()
    };
    Server::open_with_settings(url, settings, server::Site::for_tests(false)).await
}

async fn put_me(server: &Server, auth: Auth<'_>, body: Value) -> Reply {
    server
        .call(
            Method::PUT,
            "/api/v1/auth/me",
            auth,
            Some(&body.to_string()),
        )
        .await
}

async fn me(server: &Server, token: &str) -> Value {
    let reply = server.get("/api/v1/auth", Auth::Bearer(token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body
}

fn detail(reply: &Reply) -> String {
    reply.body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail in {}", reply.text))
        .to_lowercase()
}

async fn the_profile_changes_and_refuses_bad_input_unchanged(server: Server) {
    let token = server.register("alice").await;
    let set = put_me(
        &server,
        Auth::Bearer(&token),
        json!({"display_name": "  Alice A.  ", "email": "Alice@Example.com"}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    let before = me(&server, &token).await;
    assert_eq!(
        set.body,
        json!({"id": before["id"], "username": "alice",
               "email": "Alice@Example.com", "display_name": "Alice A."})
    );
    assert_eq!(before["display_name"], "Alice A.");
    assert_eq!(before["email"], "Alice@Example.com");

    // Each refused whole, naming what is wrong; nothing changes.
    for (body, status, words) in [
        (
            json!({"email": "not-an-address"}),
            StatusCode::BAD_REQUEST,
            "email",
        ),
        (json!({"email": "a@b"}), StatusCode::BAD_REQUEST, "email"),
        (
            json!({"email": "a b@example.com"}),
            StatusCode::BAD_REQUEST,
            "email",
        ),
        (
            json!({"email": format!("{}@example.com", "a".repeat(250))}),
            StatusCode::BAD_REQUEST,
            "email",
        ),
        (
            json!({"display_name": "x".repeat(65)}),
            StatusCode::BAD_REQUEST,
            "display_name",
        ),
        (
            json!({"display_name": "bell\u{7}"}),
            StatusCode::BAD_REQUEST,
            "display_name",
        ),
        // A valid name beside a bad address: neither is written.
        (
            json!({"display_name": "Mallory", "email": "@nowhere"}),
            StatusCode::BAD_REQUEST,
            "email",
        ),
        (
            json!({"is_admin": true}),
            StatusCode::BAD_REQUEST,
            "is_admin",
        ),
        (json!({"email": 42}), StatusCode::BAD_REQUEST, "email"),
        (json!([null, null]), StatusCode::BAD_REQUEST, "object"),
    ] {
        let refused = put_me(&server, Auth::Bearer(&token), body.clone()).await;
        assert_eq!(refused.status, status, "{body}: {}", refused.text);
        assert!(detail(&refused).contains(words), "{body}: {}", refused.text);
    }
    assert_eq!(me(&server, &token).await, before);

    // A session cookie writes only with its CSRF token; no credential is 401.
    let cookie = server.session_login("alice", None).await;
    let forged = put_me(
        &server,
        Auth::Cookie(&cookie),
        json!({"display_name": "Eve"}),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    let anonymous = put_me(&server, Auth::None, json!({"display_name": "Eve"})).await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.text
    );
    assert_eq!(me(&server, &token).await, before);

    // Absent leaves a field, empty removes it.
    let cleared = put_me(&server, Auth::Bearer(&token), json!({"email": ""})).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text);
    let after = me(&server, &token).await;
    assert_eq!(after["email"], Value::Null);
    assert_eq!(after["display_name"], "Alice A.");
}

async fn an_email_address_belongs_to_one_account_even_in_a_race(url: String) {
    let server = open_with(&url, engine::accounts::Policy::default()).await;
    let alice = server.register("alice").await;
    let taken = put_me(
        &server,
        Auth::Bearer(&alice),
        json!({"email": "shared@example.com"}),
    )
    .await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.text);
    // Another case is the same address: refused at sign-up and in a profile.
    let users = server.user_count().await;
    let signup = server
        .post_json(
            "/api/v1/auth/register",
            &json!({"username": "bob", "password": PASSWORD, "email": "SHARED@example.COM"})
                .to_string(),
            None,
        )
        .await;
    assert_eq!(signup.status, StatusCode::CONFLICT, "{}", signup.text);
    assert!(detail(&signup).contains("e-mail"), "{}", signup.text);
    assert_eq!(server.user_count().await, users);
    let bob = server.register("bob").await;
    let refused = put_me(
        &server,
        Auth::Bearer(&bob),
        json!({"email": "Shared@Example.com"}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_eq!(me(&server, &bob).await["email"], Value::Null);

    // Eight accounts claim one free address at once: exactly one gets it.
    let mut tokens = Vec::new();
    for i in 0..8 {
        tokens.push(server.register(&format!("racer{i}")).await);
    }
    let claims = tokens.iter().enumerate().map(|(i, token)| {
        let server = &server;
        async move {
            let address = match i % 2 {
                0 => "prize@example.com",
                _ => "PRIZE@example.com",
            };
            put_me(server, Auth::Bearer(token), json!({"email": address}))
                .await
                .status
        }
    });
    let statuses = futures_util::future::join_all(claims).await;
    let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(won, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    let mut holders = 0;
    for token in &tokens {
        let email = me(&server, token).await["email"].clone();
        if !email.is_null() {
            holders += 1;
            assert!(email
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case("prize@example.com"));
        }
    }
    assert_eq!(holders, 1);
}

async fn signing_in_with_an_id_is_off_by_default(server: Server) {
    let token = server.register("alice").await;
    let id = me(&server, &token).await["id"].clone();
    let refused = server
        .post_json("/api/v1/auth/usr", &json!({"usr": id}).to_string(), None)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert!(
        detail(&refused).contains("switched off"),
        "{}",
        refused.text
    );
    assert!(refused.body.get("access_token").is_none());
}

async fn signing_in_with_an_id_when_allowed_is_throttled(url: String) {
    let server = open_with(
        &url,
        engine::accounts::Policy {
            user_id_login: true,
            ..Default::default()
        },
    )
    .await;
    let token = server.register("alice").await;
    let id = me(&server, &token).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let signed_in = server
        .post_json("/api/v1/auth/usr", &json!({"usr": id}).to_string(), None)
        .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text);
    assert_eq!(signed_in.body["token_type"], "bearer");
    let their = signed_in.body["access_token"].as_str().unwrap();
    assert_eq!(me(&server, their).await["username"], "alice");

    // Guessing ids: 401 each, then 429 for this client (the tests allow 50
    // failures a minute) however the ids change.
    let mut throttled = false;
    for attempt in 0..60 {
        let guess = engine::random_hex(16);
        let reply = server
            .post_json("/api/v1/auth/usr", &json!({"usr": guess}).to_string(), None)
            .await;
        match reply.status {
            StatusCode::UNAUTHORIZED => assert!(attempt < 59, "never throttled"),
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(reply.headers.contains_key("retry-after"));
                throttled = true;
                break;
            }
            other => panic!("{other}: {}", reply.text),
        }
    }
    assert!(throttled);
    for junk in [
        json!({"usr": "x".repeat(10_000)}),
        json!({"usr": 7}),
        json!({}),
    ] {
        let reply = server
            .post_json("/api/v1/auth/usr", &junk.to_string(), None)
            .await;
        assert!(
            matches!(
                reply.status,
                StatusCode::BAD_REQUEST | StatusCode::TOO_MANY_REQUESTS
            ),
            "{junk}: {}",
            reply.text
        );
        assert!(reply.body.get("access_token").is_none());
    }
}

async fn no_new_accounts_when_the_operator_says_so(url: String) {
    let server = open_with(
        &url,
        engine::accounts::Policy {
            allow_new_accounts: false,
            ..Default::default()
        },
    )
    .await;
    let refused = server
        .post_json(
            "/api/v1/auth/register",
            &json!({"username": "alice", "password": PASSWORD}).to_string(),
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert!(
        detail(&refused).contains("no new accounts"),
        "{}",
        refused.text
    );
    // Nor by a wallet's key (LNURL-auth, WebLN) coming for the first time.
    let keyed = server
        .services
        .engine
        .accounts
        .sign_in_with_key(&"02".repeat(33), "lnurl", None, "198.51.100.7")
        .await;
    assert!(
        matches!(keyed, Err(engine::Error::Forbidden(_))),
        "{keyed:?}"
    );
    assert_eq!(server.user_count().await, 0);
}

async fn administrators_are_the_operators_list(url: String) {
    let first = open_with(
        &url,
        engine::accounts::Policy {
            admin_users: vec!["Carol".into()],
            ..Default::default()
        },
    )
    .await;
    let carol = first.register("carol").await;
    let dave = first.register("dave").await;
    assert_eq!(me(&first, &carol).await["is_admin"], true);
    assert_eq!(me(&first, &dave).await["is_admin"], false);
    let dave_id = me(&first, &dave).await["id"].as_str().unwrap().to_string();
    drop(first);

    // The operator names Dave (by id) instead: the next start follows.
    let second = open_with(
        &url,
        engine::accounts::Policy {
            admin_users: vec![dave_id],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(me(&second, &carol).await["is_admin"], false);
    assert_eq!(me(&second, &dave).await["is_admin"], true);
}
