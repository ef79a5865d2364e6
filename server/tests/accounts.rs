//! The rest of the LNbits account API (`specs/lnbits-users-accounts-api.txt`)
//! and the operator's say over accounts, on SQLite and PostgreSQL: the
//! profile (`PUT /api/v1/auth/me`) with an e-mail address one account holds
//! whatever its case, even when two claim it at once; the legacy sign-in with
//! an account id, off unless allowed and throttled; no new accounts when the
//! operator says so, every way; administrators named by the operator; access
//! control lists, whose tokens call only what their patterns allow on every
//! API, follow an update at once and die with their ACL; a forgotten password
//! reset by a single-use link that a real SMTP server (aiosmtpd) receives;
//! deleting an account, never while it holds funds; signing in with Nostr
//! (NIP-98 events made by pynostr, an independent implementation).

mod common;

use axum::http::{Method, StatusCode};
use engine::Seen;
use serde_json::{json, Value};

use common::{Auth, Reply, Server, PASSWORD};

testdb::on_both_databases!(
    open_server;
    the_profile_changes_and_refuses_bad_input_unchanged,
    signing_in_with_an_id_is_off_by_default,
    acl_tokens_call_only_what_their_patterns_allow,
    acls_refuse_strangers_other_credentials_and_bad_patterns,
    an_account_holding_funds_is_never_deleted,
    a_deleted_account_goes_with_everything_of_it,
    a_deleted_trader_leaves_the_desk_books_as_they_were,
    a_nostr_event_signs_in_once_and_only_for_this_request,
    nostr_keys_link_to_an_account_and_unlink,
    signed_in_browsers_are_listed_and_signed_out_one_or_all_others,
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
        a_forgotten_password_is_reset_by_a_link_sent_over_smtp,
        one_reset_link_sets_one_password_even_in_a_race,
        without_smtp_mail_goes_to_the_outbox,
        a_new_email_address_takes_what_managing_access_takes,
        a_deposit_racing_the_deletion_is_never_lost,
        openid_connect_signs_in_to_one_account_per_subject,
        a_provider_sign_in_refuses_what_an_attacker_brings,
        a_provider_account_links_to_a_signed_in_account,
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
        .sign_in_with_key(&"02".repeat(33), "lnurl", None, &Seen::at("198.51.100.7"))
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

async fn acl_call(server: &Server, method: Method, path: &str, owner: &str, body: Value) -> Reply {
    let body = (!body.is_null()).then(|| body.to_string());
    server
        .call(method, path, Auth::Bearer(owner), body.as_deref())
        .await
}

/// Makes an ACL of `owner`'s allowing `endpoints` and one token of it: the
/// ACL's id and the token.
async fn acl_with_token(server: &Server, owner: &str, endpoints: &[&str]) -> (String, String) {
    let made = acl_call(
        server,
        Method::POST,
        "/api/v1/auth/acls",
        owner,
        json!({"name": "script", "allowed_endpoints": endpoints}),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let id = made.body["id"].as_str().unwrap().to_string();
    let issued = acl_call(
        server,
        Method::POST,
        &format!("/api/v1/auth/acls/{id}/tokens"),
        owner,
        Value::Null,
    )
    .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text);
    assert_eq!(issued.body["acl_id"], id.as_str());
    (id, issued.body["token"].as_str().unwrap().to_string())
}

async fn acl_tokens_call_only_what_their_patterns_allow(server: Server) {
    let owner = server.register("alice").await;
    let made = acl_call(
        &server,
        Method::POST,
        "/api/v1/auth/acls",
        &owner,
        json!({"name": " dashboard ", "allowed_endpoints": [
            "get /api/v1/auth", "GET /rest/v1/getalldata", "GET /lnm/user",
            "POST /rest/v1/createinvoice", "GET /rest/v1/getalldata"]}),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    // Stored canonically, each once.
    assert_eq!(made.body["name"], "dashboard");
    assert_eq!(
        made.body["allowed_endpoints"],
        json!([
            "GET /api/v1/auth",
            "GET /rest/v1/getalldata",
            "GET /lnm/user",
            "POST /rest/v1/createinvoice"
        ])
    );
    let acl = made.body["id"].as_str().unwrap().to_string();
    let tokens = format!("/api/v1/auth/acls/{acl}/tokens");
    let issued = acl_call(&server, Method::POST, &tokens, &owner, Value::Null).await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text);
    let token = issued.body["token"].as_str().unwrap().to_string();
    let token_id = issued.body["id"].as_str().unwrap().to_string();

    // Inside its patterns, on each API, reads and writes: what the account may.
    let call = |method: Method, path: &'static str, body: Option<Value>| {
        let (server, token) = (&server, token.clone());
        async move {
            let body = body.map(|b| b.to_string());
            server
                .call(method, path, Auth::Bearer(&token), body.as_deref())
                .await
        }
    };
    let who = call(Method::GET, "/api/v1/auth", None).await;
    assert_eq!(who.status, StatusCode::OK, "{}", who.text);
    assert_eq!(who.body["username"], "alice");
    for path in ["/rest/v1/getalldata", "/lnm/user"] {
        let read = call(Method::GET, path, None).await;
        assert_eq!(read.status, StatusCode::OK, "{path}: {}", read.text);
    }
    let invoice = call(
        Method::POST,
        "/rest/v1/createinvoice",
        Some(json!({"amount": 1000, "memo": "by ACL"})),
    )
    .await;
    assert_eq!(invoice.status, StatusCode::OK, "{}", invoice.text);
    assert!(
        invoice.body["payment_request"].is_string(),
        "{}",
        invoice.text
    );

    // Outside them, 403 in each API's own format, and nothing done.
    let outside = call(Method::GET, "/rest/v1/channels", None).await;
    assert_eq!(outside.status, StatusCode::FORBIDDEN, "{}", outside.text);
    assert!(outside.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("does not allow GET /rest/v1/channels"));
    let desk = call(Method::GET, "/lnm/positions", None).await;
    assert_eq!(desk.status, StatusCode::FORBIDDEN, "{}", desk.text);
    assert!(desk.body["message"]
        .as_str()
        .unwrap()
        .contains("/lnm/positions"));
    let profile = call(
        Method::PUT,
        "/api/v1/auth/me",
        Some(json!({"display_name": "Eve"})),
    )
    .await;
    assert_eq!(profile.status, StatusCode::FORBIDDEN, "{}", profile.text);
    assert!(detail(&profile).contains("does not allow put /api/v1/auth/me"));
    assert_eq!(me(&server, &owner).await["display_name"], Value::Null);
    // Another method of an allowed path is outside too.
    let other_method = call(Method::POST, "/rest/v1/getalldata", Some(json!({}))).await;
    assert_eq!(
        other_method.status,
        StatusCode::FORBIDDEN,
        "{}",
        other_method.text
    );

    // Pages render the account themselves: an ACL token never opens one.
    for page in ["/", "/history", "/security"] {
        let refused = server.get(page, Auth::Bearer(&token)).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{page}: {}",
            refused.text
        );
    }

    // Even patterns that name them never let an ACL token manage ACLs or tokens.
    let widened = acl_call(
        &server,
        Method::PUT,
        &format!("/api/v1/auth/acls/{acl}"),
        &owner,
        json!({"allowed_endpoints": ["GET /api/v1/auth/acls", "POST /api/v1/auth/acls",
                                     "POST /api/v1/auth/acls/*/tokens", "DELETE /api/v1/auth/acls/*",
                                     "POST /lnm/user/jwt"]}),
    )
    .await;
    assert_eq!(widened.status, StatusCode::OK, "{}", widened.text);
    assert_eq!(widened.body["name"], "dashboard");
    for (method, path) in [
        (Method::GET, "/api/v1/auth/acls".to_string()),
        (Method::POST, "/api/v1/auth/acls".to_string()),
        (Method::POST, tokens.clone()),
        (Method::DELETE, format!("/api/v1/auth/acls/{acl}")),
    ] {
        let body = json!({"name": "more", "allowed_endpoints": ["GET /api/v1/auth"]}).to_string();
        let refused = server
            .call(method.clone(), &path, Auth::Bearer(&token), Some(&body))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            refused.text
        );
        assert!(
            detail(&refused).contains("cannot manage"),
            "{}",
            refused.text
        );
    }
    let desk_token = server
        .call(
            Method::POST,
            "/lnm/user/jwt",
            Auth::Bearer(&token),
            Some(&json!({"scopes": ["user"], "expiry": 3600}).to_string()),
        )
        .await;
    assert_eq!(
        desk_token.status,
        StatusCode::FORBIDDEN,
        "{}",
        desk_token.text
    );
    // The update applied at once: what the ACL allowed before is now refused.
    let narrowed = call(Method::GET, "/api/v1/auth", None).await;
    assert_eq!(narrowed.status, StatusCode::FORBIDDEN, "{}", narrowed.text);
    let listed = acl_call(
        &server,
        Method::GET,
        "/api/v1/auth/acls",
        &owner,
        Value::Null,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "{}", listed.text);
    assert_eq!(listed.body[0]["tokens"][0]["id"], token_id.as_str());
    assert!(
        listed.body[0]["tokens"][0].get("token").is_none(),
        "{}",
        listed.text
    );

    // Revoking one token leaves the other; deleting the ACL voids every token.
    let update = acl_call(
        &server,
        Method::PUT,
        &format!("/api/v1/auth/acls/{acl}"),
        &owner,
        json!({"allowed_endpoints": ["GET /api/v1/auth"]}),
    )
    .await;
    assert_eq!(update.status, StatusCode::OK, "{}", update.text);
    let second = acl_call(&server, Method::POST, &tokens, &owner, Value::Null).await;
    let second = second.body["token"].as_str().unwrap().to_string();
    let revoked = acl_call(
        &server,
        Method::DELETE,
        &format!("{tokens}/{token_id}"),
        &owner,
        Value::Null,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert_eq!(revoked.body["detail"], "Token revoked");
    let gone = server.get("/api/v1/auth", Auth::Bearer(&token)).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED, "{}", gone.text);
    assert_eq!(me(&server, &second).await["username"], "alice");
    let deleted = acl_call(
        &server,
        Method::DELETE,
        &format!("/api/v1/auth/acls/{acl}"),
        &owner,
        Value::Null,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(deleted.body["detail"], "ACL deleted");
    let voided = server.get("/api/v1/auth", Auth::Bearer(&second)).await;
    assert_eq!(voided.status, StatusCode::UNAUTHORIZED, "{}", voided.text);

    // A password change voids ACL tokens as it does every other.
    let (_, third) = acl_with_token(&server, &owner, &["GET /api/v1/auth"]).await;
    assert_eq!(me(&server, &third).await["username"], "alice");
    let changed = acl_call(
        &server,
        Method::PUT,
        "/api/v1/auth/update-password",
        &owner,
        json!({"old_password": PASSWORD, "new_password": "Another1Passphrase"}),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let after = server.get("/api/v1/auth", Auth::Bearer(&third)).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.text);
}

async fn acls_refuse_strangers_other_credentials_and_bad_patterns(server: Server) {
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let (acl, token) = acl_with_token(&server, &alice, &["GET /api/v1/auth"]).await;
    let list = |owner: String| {
        let server = &server;
        async move {
            let listed = acl_call(
                server,
                Method::GET,
                "/api/v1/auth/acls",
                &owner,
                Value::Null,
            )
            .await;
            assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
            listed.body
        }
    };
    let before = list(alice.clone()).await;

    // Malformed input: 400 naming what is wrong, nothing saved.
    for (body, words) in [
        (
            json!({"name": "x", "allowed_endpoints": ["GET api/v1/auth"]}),
            "absolute",
        ),
        (
            json!({"name": "x", "allowed_endpoints": ["FETCH /api"]}),
            "method",
        ),
        (
            json!({"name": "x", "allowed_endpoints": ["GET /api/v*"]}),
            "whole segment",
        ),
        (
            json!({"name": "x", "allowed_endpoints": ["GET /api//x"]}),
            "empty segment",
        ),
        (
            json!({"name": "x", "allowed_endpoints": ["GET /api/v1?x=1"]}),
            "query",
        ),
        (
            json!({"name": "x", "allowed_endpoints": ["GET /api/../b"]}),
            "..",
        ),
        (
            json!({"name": "x", "allowed_endpoints": ["GET /history"]}),
            "api route",
        ),
        (
            json!({"name": "x", "allowed_endpoints": ["GET /api/ok", "GET"]}),
            "method /path",
        ),
        (
            json!({"name": "", "allowed_endpoints": ["GET /api/ok"]}),
            "name",
        ),
        (
            json!({"name": "x".repeat(101), "allowed_endpoints": []}),
            "name",
        ),
        (
            json!({"name": "x", "allowed_endpoints": vec!["GET /api/a"; 101]}),
            "at most",
        ),
        (json!({"allowed_endpoints": ["GET /api/ok"]}), "name"),
        (
            json!({"name": "x", "allowed_endpoints": "GET /api/ok"}),
            "allowed_endpoints",
        ),
        (
            json!({"name": "x", "allowed_endpoints": [], "admin": true}),
            "admin",
        ),
        (json!(["x", ["GET /api/ok"]]), "object"),
    ] {
        let refused = acl_call(
            &server,
            Method::POST,
            "/api/v1/auth/acls",
            &alice,
            body.clone(),
        )
        .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            refused.text
        );
        assert!(detail(&refused).contains(words), "{body}: {}", refused.text);
    }
    let bad_update = acl_call(
        &server,
        Method::PUT,
        &format!("/api/v1/auth/acls/{acl}"),
        &alice,
        json!({"name": "fine", "allowed_endpoints": ["GET /api/ok", "nonsense"]}),
    )
    .await;
    assert_eq!(
        bad_update.status,
        StatusCode::BAD_REQUEST,
        "{}",
        bad_update.text
    );
    assert_eq!(list(alice.clone()).await, before);

    // Another account's ACL is not found by any route, and stays as it was.
    for (method, path) in [
        (Method::PUT, format!("/api/v1/auth/acls/{acl}")),
        (Method::DELETE, format!("/api/v1/auth/acls/{acl}")),
        (Method::POST, format!("/api/v1/auth/acls/{acl}/tokens")),
        (Method::DELETE, format!("/api/v1/auth/acls/{acl}/tokens/x")),
    ] {
        let body = json!({"name": "mine now"});
        let stranger = acl_call(&server, method.clone(), &path, &bob, body).await;
        assert_eq!(
            stranger.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            stranger.text
        );
    }
    assert_eq!(list(bob.clone()).await, json!([]));
    assert_eq!(list(alice.clone()).await, before);
    assert_eq!(me(&server, &token).await["username"], "alice");
    // Bob cannot revoke Alice's token through an ACL of his own either.
    let (bobs_acl, _) = acl_with_token(&server, &bob, &["GET /api/v1/auth"]).await;
    let token_id = before[0]["tokens"][0]["id"].as_str().unwrap();
    let crossed = acl_call(
        &server,
        Method::DELETE,
        &format!("/api/v1/auth/acls/{bobs_acl}/tokens/{token_id}"),
        &bob,
        Value::Null,
    )
    .await;
    assert_eq!(crossed.status, StatusCode::NOT_FOUND, "{}", crossed.text);
    assert_eq!(me(&server, &token).await["username"], "alice");

    // A session writes only with its CSRF token; a scoped desk token never
    // manages ACLs; nobody signed in is 401.
    let cookie = server.session_login("alice", None).await;
    let body = json!({"name": "forged", "allowed_endpoints": ["GET /api/v1/auth"]}).to_string();
    let forged = server
        .call(
            Method::POST,
            "/api/v1/auth/acls",
            Auth::Cookie(&cookie),
            Some(&body),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    let data = server
        .get("/rest/v1/getalldata", Auth::Cookie(&cookie))
        .await;
    let csrf = data.body["_csrf"].as_str().unwrap();
    let with_csrf = server
        .call(
            Method::POST,
            &format!("/api/v1/auth/acls?_csrf={csrf}"),
            Auth::Cookie(&cookie),
            Some(&body),
        )
        .await;
    assert_eq!(with_csrf.status, StatusCode::CREATED, "{}", with_csrf.text);
    let scoped = common::desk::bearer(&server, &cookie, &["user"]).await;
    let scoped = scoped.trim_start_matches("Bearer ");
    let desk = server.get("/api/v1/auth/acls", Auth::Bearer(scoped)).await;
    assert_eq!(desk.status, StatusCode::FORBIDDEN, "{}", desk.text);
    let anonymous = server.get("/api/v1/auth/acls", Auth::None).await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.text
    );
    // A forged token (another key) and a token of another kind's key are 401.
    let forged_token = format!("{}x", &token[..token.len() - 1]);
    let refused = server
        .get("/api/v1/auth", Auth::Bearer(&forged_token))
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
}

async fn ask_reset(server: &Server, email: &str) -> Reply {
    server
        .call(
            Method::POST,
            "/api/v1/auth/reset-password",
            Auth::None,
            Some(&json!({ "email": email }).to_string()),
        )
        .await
}

async fn set_password(server: &Server, key: &str, password: &str, repeat: &str) -> Reply {
    server
        .call(
            Method::PUT,
            "/api/v1/auth/reset",
            Auth::None,
            Some(
                &json!({"reset_key": key, "password": password, "password_repeat": repeat})
                    .to_string(),
            ),
        )
        .await
}

/// The key of the reset link in a message's text.
fn reset_key(body: &str) -> String {
    let start = body
        .find("https://wallet.example/reset-password?key=")
        .unwrap_or_else(|| panic!("no reset link in {body}"))
        + "https://wallet.example/reset-password?key=".len();
    let key: String = body[start..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert_eq!(key.len(), 64, "{body}");
    key
}

async fn login_status(server: &Server, username: &str, password: &str) -> StatusCode {
    server
        .post_json(
            "/api/v1/auth",
            &json!({"username": username, "password": password}).to_string(),
            None,
        )
        .await
        .status
}

/// Alice with the e-mail address `Alice@Example.com` and a bearer token.
async fn alice_with_email(server: &Server) -> String {
    let token = server.register("alice").await;
    let set = put_me(
        server,
        Auth::Bearer(&token),
        json!({"email": "Alice@Example.com"}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    token
}

async fn a_forgotten_password_is_reset_by_a_link_sent_over_smtp(url: String) {
    let smtp = common::mail::SmtpSink::start().await;
    let server = common::mail::server_with_mail(&url, Some(&smtp), None).await;
    let token = alice_with_email(&server).await;
    let cookie = server.session_login("alice", None).await;
    let (_, acl_token) = acl_with_token(&server, &token, &["GET /api/v1/auth"]).await;

    // Known or not, in any case, the same answer; one message, to the account.
    let known = ask_reset(&server, "alice@EXAMPLE.com").await;
    let unknown = ask_reset(&server, "nobody@example.com").await;
    assert_eq!(known.status, StatusCode::OK, "{}", known.text);
    assert_eq!((unknown.status, &unknown.body), (known.status, &known.body));
    assert_eq!(known.body["detail"], "Password reset email sent");
    let message = smtp.wait_for(1).await;
    assert_eq!(message.to, "Alice@Example.com");
    assert_eq!(message.from, "Ampere <wallet@example.com>");
    assert_eq!(message.subject, "Reset your Ampere password");
    assert!(message.body.contains("\"alice\""), "{}", message.body);
    let key = reset_key(&message.body);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        smtp.count(),
        1,
        "a message went to an address no account has"
    );

    // Malformed asks are refused; nothing is sent.
    for body in [
        json!({"email": "not an address"}),
        json!({}),
        json!(["a@b.c"]),
    ] {
        let refused = server
            .call(
                Method::POST,
                "/api/v1/auth/reset-password",
                Auth::None,
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            refused.text
        );
    }

    // Wrong keys, a weak or mismatched password: refused, nothing changes.
    let wrong = engine::random_hex(32);
    for (key, password, repeat, field) in [
        (
            wrong.as_str(),
            "Brand9NewPass",
            "Brand9NewPass",
            "reset link",
        ),
        ("short", "Brand9NewPass", "Brand9NewPass", "reset link"),
        (key.as_str(), "weak", "weak", "password must"),
        (
            key.as_str(),
            "Brand9NewPass",
            "Brand9NewPas",
            "not the same",
        ),
    ] {
        let refused = set_password(&server, key, password, repeat).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{key}: {}",
            refused.text
        );
        assert!(detail(&refused).contains(field), "{}", refused.text);
    }
    assert_eq!(
        login_status(&server, "alice", PASSWORD).await,
        StatusCode::OK
    );

    // The link sets the password once; every session and token ends.
    let set = set_password(&server, &key, "Brand9NewPass", "Brand9NewPass").await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(
        login_status(&server, "alice", PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_status(&server, "alice", "Brand9NewPass").await,
        StatusCode::OK
    );
    for auth in [Auth::Bearer(&token), Auth::Bearer(&acl_token)] {
        let ended = server.get("/api/v1/auth", auth).await;
        assert_eq!(ended.status, StatusCode::UNAUTHORIZED, "{}", ended.text);
    }
    let session = server
        .get("/rest/v1/getalldata", Auth::Cookie(&cookie))
        .await;
    assert_eq!(session.status, StatusCode::UNAUTHORIZED, "{}", session.text);
    let reused = set_password(&server, &key, "Other9Password", "Other9Password").await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST, "{}", reused.text);
    assert_eq!(
        login_status(&server, "alice", "Brand9NewPass").await,
        StatusCode::OK
    );

    // An expired link, and a link made before the password changed, are void.
    assert_eq!(
        ask_reset(&server, "alice@example.com").await.status,
        StatusCode::OK
    );
    let expired = reset_key(&smtp.wait_for(2).await.body);
    sqlx::query("UPDATE password_resets SET expires_at = $1")
        .bind(engine::now_ms() - 1)
        .execute(server.services.engine.db.pool())
        .await
        .unwrap();
    let late = set_password(&server, &expired, "Other9Password", "Other9Password").await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST, "{}", late.text);
    assert_eq!(
        ask_reset(&server, "alice@example.com").await.status,
        StatusCode::OK
    );
    let older = reset_key(&smtp.wait_for(3).await.body);
    let token = server
        .post_json(
            "/api/v1/auth",
            &json!({"username": "alice", "password": "Brand9NewPass"}).to_string(),
            None,
        )
        .await
        .body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let changed = server
        .call(
            Method::PUT,
            "/api/v1/auth/update-password",
            Auth::Bearer(&token),
            Some(
                &json!({"old_password": "Brand9NewPass", "new_password": "Third9Password"})
                    .to_string(),
            ),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let stale = set_password(&server, &older, "Other9Password", "Other9Password").await;
    assert_eq!(stale.status, StatusCode::BAD_REQUEST, "{}", stale.text);
    assert_eq!(
        login_status(&server, "alice", "Third9Password").await,
        StatusCode::OK
    );

    // Three asks an hour per address, whoever has it: then 429, nothing sent.
    let sent = smtp.count();
    for _ in 0..3 {
        assert_eq!(
            ask_reset(&server, "flood@example.com").await.status,
            StatusCode::OK
        );
    }
    let flood = ask_reset(&server, "FLOOD@example.com").await;
    assert_eq!(
        flood.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        flood.text
    );
    assert!(flood.headers.contains_key("retry-after"));
    let alice_again = ask_reset(&server, "alice@example.com").await;
    assert_eq!(
        alice_again.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        alice_again.text
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(smtp.count(), sent);
}

async fn one_reset_link_sets_one_password_even_in_a_race(url: String) {
    let smtp = common::mail::SmtpSink::start().await;
    let server = common::mail::server_with_mail(&url, Some(&smtp), None).await;
    alice_with_email(&server).await;
    assert_eq!(
        ask_reset(&server, "alice@example.com").await.status,
        StatusCode::OK
    );
    let key = reset_key(&smtp.wait_for(1).await.body);
    let passwords: Vec<String> = (0..6).map(|i| format!("Racer{i}Password")).collect();
    let replies =
        futures_util::future::join_all(passwords.iter().map(|p| set_password(&server, &key, p, p)))
            .await;
    let winners: Vec<&String> = passwords
        .iter()
        .zip(&replies)
        .filter(|(_, r)| r.status == StatusCode::OK)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert_eq!(
        login_status(&server, "alice", winners[0]).await,
        StatusCode::OK
    );
    // The others' passwords were never set (a few: failed logins are throttled).
    for password in passwords.iter().filter(|p| *p != winners[0]).take(3) {
        assert_eq!(
            login_status(&server, "alice", password).await,
            StatusCode::UNAUTHORIZED
        );
    }
}

async fn without_smtp_mail_goes_to_the_outbox(url: String) {
    let data = tempfile::tempdir().unwrap();
    let outbox = data.path().join("outbox");
    let server = common::mail::server_with_mail(&url, None, Some(&outbox)).await;
    alice_with_email(&server).await;
    assert_eq!(
        ask_reset(&server, "alice@example.com").await.status,
        StatusCode::OK
    );
    let mut files = Vec::new();
    for _ in 0..100 {
        files = std::fs::read_dir(&outbox)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        if !files.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].extension().is_some_and(|e| e == "eml"),
        "{files:?}"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files[0]), 0o600, "a reset link readable by others");
        assert_eq!(mode(&outbox), 0o700);
    }
    let message = common::mail::read_message(&files[0]).await;
    assert_eq!(message.to, "Alice@Example.com");
    let key = reset_key(&message.body);
    let set = set_password(&server, &key, "Brand9NewPass", "Brand9NewPass").await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(
        login_status(&server, "alice", "Brand9NewPass").await,
        StatusCode::OK
    );
}

async fn delete_me(server: &Server, auth: Auth<'_>, body: Option<Value>) -> Reply {
    let body = body.map(|b| b.to_string());
    server
        .call(Method::DELETE, "/api/v1/auth/me", auth, body.as_deref())
        .await
}

async fn an_account_holding_funds_is_never_deleted(server: Server) {
    use common::desk::{assert_books_balance, deposit, trader};
    let alice = trader(&server, "alice").await;
    let bob = trader(&server, "bob").await;
    let login = server
        .post_json(
            "/api/v1/auth",
            &json!({"username": "alice", "password": PASSWORD}).to_string(),
            None,
        )
        .await;
    let token = login.body["access_token"].as_str().unwrap().to_string();
    let users = server.user_count().await;

    // Her wallet has coins on chain and a channel: refused, saying what to do.
    let refused = delete_me(&server, Auth::Bearer(&token), None).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    let said = detail(&refused);
    assert!(
        said.contains("on-chain balance") && said.contains("channel"),
        "{said}"
    );
    assert!(!said.contains("trading balance"), "{said}");

    // With a trading balance too, and an open position, that is said as well.
    deposit(&server, &alice, &bob.node, 50_000).await;
    let opened = common::desk::post(
        &server,
        "/lnm/positions",
        &alice.cookie,
        json!({"type": "m", "side": "b", "quantity": 1, "leverage": 10}),
    )
    .await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.text);
    let refused = delete_me(&server, Auth::Bearer(&token), None).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    let said = detail(&refused);
    assert!(said.contains("withdraw the trading balance"), "{said}");
    assert!(said.contains("1 running or open position"), "{said}");

    // Nothing was deleted: the account, its credentials and its money stand.
    assert_eq!(server.user_count().await, users);
    assert_eq!(me(&server, &token).await["username"], "alice");
    let user = common::desk::get(&server, "/lnm/user", &alice.cookie).await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.text);
    assert_books_balance(&server).await;
}

async fn a_deleted_account_goes_with_everything_of_it(server: Server) {
    use common::desk::{assert_books_balance, count, trader};
    let bob = trader(&server, "bob").await;
    let token = alice_with_email(&server).await;
    let alice_id = me(&server, &token).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let cookie = server.session_login("alice", None).await;
    let csrf = server
        .get("/rest/v1/getalldata", Auth::Cookie(&cookie))
        .await
        .body["_csrf"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, acl_token) = acl_with_token(
        &server,
        &token,
        &["DELETE /api/v1/auth/me", "GET /api/v1/auth"],
    )
    .await;
    let scoped = common::desk::bearer(&server, &cookie, &["user"]).await;
    let contact = server
        .call(
            Method::POST,
            "/rest/v1/addcontact",
            Auth::Bearer(&token),
            Some(&json!({"alias": "bob", "node_id": bob.node}).to_string()),
        )
        .await;
    assert_eq!(contact.status, StatusCode::OK, "{}", contact.text);
    let invoice = common::desk::post(
        &server,
        "/lnm/user/deposit",
        &cookie,
        json!({"amount": 10_000}),
    )
    .await;
    assert_eq!(invoice.status, StatusCode::OK, "{}", invoice.text);
    let deposit_invoice = invoice.body["paymentRequest"].as_str().unwrap().to_string();
    // Coins minted to her wallet once, since moved on (to the hub): her
    // deletion must leave the network's books whole.
    let engine = &server.services.engine;
    let node = engine.simnet.node_of_user(&alice_id).await.unwrap();
    engine
        .simnet
        .faucet(&node.address, engine::Msat::from_sat(1_000))
        .await
        .unwrap();
    engine.simnet.mine(1).await.unwrap();
    let hub = engine.simnet.hub().await.unwrap().pubkey;
    for (sql, key) in [
        (
            "UPDATE nodes SET onchain_msat = onchain_msat + 1000000 WHERE pubkey = $1",
            &hub,
        ),
        (
            "UPDATE nodes SET onchain_msat = onchain_msat - 1000000 WHERE pubkey = $1",
            &node.pubkey,
        ),
    ] {
        sqlx::query(sql)
            .bind(key)
            .execute(engine.db.pool())
            .await
            .unwrap();
    }
    assert_books_balance(&server).await;

    // A session gives its password (and CSRF token); ACL and desk tokens never delete.
    let path = format!("/api/v1/auth/me?_csrf={csrf}");
    let no_password = server
        .call(Method::DELETE, &path, Auth::Cookie(&cookie), None)
        .await;
    assert_eq!(
        no_password.status,
        StatusCode::BAD_REQUEST,
        "{}",
        no_password.text
    );
    assert!(
        detail(&no_password).contains("password"),
        "{}",
        no_password.text
    );
    let wrong = server
        .call(
            Method::DELETE,
            &path,
            Auth::Cookie(&cookie),
            Some(&json!({"password": "Wrong1Password"}).to_string()),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text);
    let forged = delete_me(
        &server,
        Auth::Cookie(&cookie),
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    let by_acl = delete_me(&server, Auth::Bearer(&acl_token), None).await;
    assert_eq!(by_acl.status, StatusCode::FORBIDDEN, "{}", by_acl.text);
    let by_desk = delete_me(
        &server,
        Auth::Bearer(scoped.trim_start_matches("Bearer ")),
        None,
    )
    .await;
    assert_eq!(by_desk.status, StatusCode::FORBIDDEN, "{}", by_desk.text);
    let malformed = delete_me(&server, Auth::Bearer(&token), Some(json!(["x"]))).await;
    assert_eq!(
        malformed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        malformed.text
    );
    assert_eq!(me(&server, &token).await["username"], "alice");

    let users = server.user_count().await;
    let deleted = server
        .call(
            Method::DELETE,
            &path,
            Auth::Cookie(&cookie),
            Some(&json!({"password": PASSWORD, "_csrf": csrf}).to_string()),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(deleted.body["detail"], "Account deleted");
    assert_eq!(server.user_count().await, users - 1);

    // Every credential is dead, every row of hers gone.
    for auth in [
        Auth::Bearer(&token),
        Auth::Bearer(&acl_token),
        Auth::Cookie(&cookie),
    ] {
        let gone = server.get("/api/v1/auth", auth).await;
        assert_eq!(gone.status, StatusCode::UNAUTHORIZED, "{}", gone.text);
    }
    let desk = common::desk::get(&server, "/lnm/user", &scoped).await;
    assert_eq!(desk.status, StatusCode::UNAUTHORIZED, "{}", desk.text);
    assert_eq!(
        login_status(&server, "alice", PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    for table in [
        "acls",
        "acl_tokens",
        "desk_tokens",
        "addressbook",
        "desk_deposits",
    ] {
        let left: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM {table} WHERE user_id = $1"))
            .bind(&alice_id)
            .fetch_one(engine.db.pool())
            .await
            .map(|row| sqlx::Row::get(&row, 0))
            .unwrap();
        assert_eq!(left, 0, "{table} kept rows of a deleted account");
    }
    assert_eq!(
        count(&server, "nodes WHERE user_id IS NOT NULL").await,
        users - 1
    );

    // Her unpaid deposit invoice can no longer take anyone's money.
    let paid = engine
        .simnet
        .pay(engine::simnet::PayRequest::new(
            &bob.node,
            &deposit_invoice,
            None,
        ))
        .await;
    assert!(
        matches!(paid, Err(engine::Error::InvoiceExpired)),
        "{paid:?}"
    );
    assert_books_balance(&server).await;

    // The name is free again, for a new account.
    let again = server.register("alice").await;
    assert_ne!(me(&server, &again).await["id"], alice_id.as_str());
}

/// The public URL the test servers name in links (`Site::for_tests`).
const PUBLIC: &str = "https://wallet.example:8443";

/// A NIP-98 event signed by pynostr with the key `secret`: the event (as
/// JSON text) and the key's public half.
async fn nostr_event(
    secret: &str,
    url: &str,
    method: &str,
    age: i64,
    kind: u32,
) -> (String, String) {
    let args: Vec<String> = [secret, url, method, &age.to_string(), &kind.to_string()]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        std::process::Command::new(format!("{root}/.venv/bin/python"))
            .arg(format!("{root}/server/tests/wallets/nostr.py"))
            .args(&args)
            .output()
            .expect("the test venv (.venv, made by scripts/test) with pynostr")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        printed["event"].to_string(),
        printed["pubkey"].as_str().unwrap().to_string(),
    )
}

async fn nostr_login(server: &Server, event: &str) -> Reply {
    server
        .call(
            Method::POST,
            "/api/v1/auth/nostr",
            Auth::None,
            Some(&json!({ "nostr_event": event }).to_string()),
        )
        .await
}

async fn a_nostr_event_signs_in_once_and_only_for_this_request(server: Server) {
    let secret = engine::random_hex(32);
    let url = format!("{PUBLIC}/api/v1/auth/nostr");
    let (event, pubkey) = nostr_event(&secret, &url, "POST", 0, 27235).await;
    let first = nostr_login(&server, &event).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let token = first.body["access_token"].as_str().unwrap().to_string();
    let account = me(&server, &token).await;
    assert!(
        account["username"]
            .as_str()
            .unwrap()
            .starts_with(&format!("nostr-{}", &pubkey[..10])),
        "{account}"
    );

    // The same event again is refused; a new one signs in to the same account.
    let replayed = nostr_login(&server, &event).await;
    assert_eq!(
        replayed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        replayed.text
    );
    assert!(
        detail(&replayed).contains("used already"),
        "{}",
        replayed.text
    );
    let (again, _) = nostr_event(&secret, &url, "POST", 0, 27235).await;
    let second = nostr_login(&server, &again).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    let token = second.body["access_token"].as_str().unwrap();
    assert_eq!(me(&server, token).await["id"], account["id"]);

    // Events for another request, stale or from the future, of another kind,
    // or tampered with: refused, and no account is made.
    let users = server.user_count().await;
    let stranger = engine::random_hex(32);
    let mut refusals = vec![
        (
            nostr_event(
                &stranger,
                "https://evil.example/api/v1/auth/nostr",
                "POST",
                0,
                27235,
            )
            .await
            .0,
            "u tag",
        ),
        (
            nostr_event(
                &stranger,
                &format!("{PUBLIC}/api/v1/auth/nostr/keys"),
                "POST",
                0,
                27235,
            )
            .await
            .0,
            "u tag",
        ),
        (
            nostr_event(&stranger, &url, "GET", 0, 27235).await.0,
            "method",
        ),
        (
            nostr_event(&stranger, &url, "POST", 120, 27235).await.0,
            "60 seconds",
        ),
        (
            nostr_event(&stranger, &url, "POST", -120, 27235).await.0,
            "60 seconds",
        ),
        (nostr_event(&stranger, &url, "POST", 0, 1).await.0, "kind"),
        ("not json".to_string(), "not a nostr event"),
    ];
    let (good, _) = nostr_event(&stranger, &url, "POST", 0, 27235).await;
    let mut tampered: Value = serde_json::from_str(&good).unwrap();
    let sig = tampered["sig"].as_str().unwrap().to_string();
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    tampered["sig"] = json!(format!("{flipped}{}", &sig[1..]));
    refusals.push((tampered.to_string(), "signature"));
    let mut other_key: Value = serde_json::from_str(&good).unwrap();
    other_key["pubkey"] = json!(pubkey);
    refusals.push((other_key.to_string(), "hash"));
    for (event, words) in refusals {
        let refused = nostr_login(&server, &event).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{event}: {}",
            refused.text
        );
        assert!(
            detail(&refused).contains(words),
            "{words}: {}",
            refused.text
        );
    }
    assert_eq!(server.user_count().await, users);

    // Six sign-ins with one event at once: one goes through.
    let (raced, _) = nostr_event(&stranger, &url, "POST", 0, 27235).await;
    let replies =
        futures_util::future::join_all((0..6).map(|_| nostr_login(&server, &raced))).await;
    let signed_in = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(
        signed_in,
        1,
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert_eq!(server.user_count().await, users + 1);
}

async fn nostr_keys_link_to_an_account_and_unlink(server: Server) {
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let secret = engine::random_hex(32);
    let keys_url = format!("{PUBLIC}/api/v1/auth/nostr/keys");
    let link = |token: String, event: String| {
        let server = &server;
        async move {
            server
                .call(
                    Method::POST,
                    "/api/v1/auth/nostr/keys",
                    Auth::Bearer(&token),
                    Some(&json!({ "nostr_event": event }).to_string()),
                )
                .await
        }
    };
    let (event, pubkey) = nostr_event(&secret, &keys_url, "POST", 0, 27235).await;
    // An event made for signing in does not link.
    let (login_event, _) = nostr_event(
        &secret,
        &format!("{PUBLIC}/api/v1/auth/nostr"),
        "POST",
        0,
        27235,
    )
    .await;
    let wrong_route = link(alice.clone(), login_event).await;
    assert_eq!(
        wrong_route.status,
        StatusCode::BAD_REQUEST,
        "{}",
        wrong_route.text
    );
    let linked = link(alice.clone(), event).await;
    assert_eq!(linked.status, StatusCode::CREATED, "{}", linked.text);
    assert_eq!(linked.body["pubkey"], pubkey.as_str());
    let listed = server
        .get("/api/v1/auth/nostr/keys", Auth::Bearer(&alice))
        .await;
    assert_eq!(listed.body, json!({ "keys": [pubkey] }));

    // The key now signs in to Alice's account.
    let (login, _) = nostr_event(
        &secret,
        &format!("{PUBLIC}/api/v1/auth/nostr"),
        "POST",
        0,
        27235,
    )
    .await;
    let signed_in = nostr_login(&server, &login).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text);
    let token = signed_in.body["access_token"].as_str().unwrap();
    assert_eq!(me(&server, token).await["username"], "alice");

    // Bob cannot take it, nor can an ACL token of Alice's link or unlink.
    let (event, _) = nostr_event(&secret, &keys_url, "POST", 0, 27235).await;
    let taken = link(bob.clone(), event).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);
    let (_, acl_token) = acl_with_token(
        &server,
        &alice,
        &[
            "POST /api/v1/auth/nostr/keys",
            "DELETE /api/v1/auth/nostr/keys/*",
        ],
    )
    .await;
    let (event, _) = nostr_event(&secret, &keys_url, "POST", 0, 27235).await;
    let by_acl = link(acl_token.clone(), event).await;
    assert_eq!(by_acl.status, StatusCode::FORBIDDEN, "{}", by_acl.text);
    let path = format!("/api/v1/auth/nostr/keys/{pubkey}");
    let unlink_by_acl = server
        .call(Method::DELETE, &path, Auth::Bearer(&acl_token), None)
        .await;
    assert_eq!(
        unlink_by_acl.status,
        StatusCode::FORBIDDEN,
        "{}",
        unlink_by_acl.text
    );
    let by_bob = server
        .call(Method::DELETE, &path, Auth::Bearer(&bob), None)
        .await;
    assert_eq!(by_bob.status, StatusCode::NOT_FOUND, "{}", by_bob.text);

    // Unlinked, the key makes an account of its own at its next sign-in.
    let unlinked = server
        .call(Method::DELETE, &path, Auth::Bearer(&alice), None)
        .await;
    assert_eq!(unlinked.status, StatusCode::OK, "{}", unlinked.text);
    let (login, _) = nostr_event(
        &secret,
        &format!("{PUBLIC}/api/v1/auth/nostr"),
        "POST",
        0,
        27235,
    )
    .await;
    let own = nostr_login(&server, &login).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    let own_token = own.body["access_token"].as_str().unwrap().to_string();
    assert_ne!(me(&server, &own_token).await["username"], "alice");

    // That account's key is its only way in: it cannot be unlinked.
    let last = server
        .call(Method::DELETE, &path, Auth::Bearer(&own_token), None)
        .await;
    assert_eq!(last.status, StatusCode::CONFLICT, "{}", last.text);
    let listed = server
        .get("/api/v1/auth/nostr/keys", Auth::Bearer(&own_token))
        .await;
    assert_eq!(listed.body, json!({ "keys": [pubkey] }));
}

/// The messages in `outbox`, read by Python's `email` package, oldest first.
async fn outbox_messages(outbox: &std::path::Path, at_least: usize) -> Vec<common::mail::Received> {
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for _ in 0..100 {
        files = std::fs::read_dir(outbox)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        if files.len() >= at_least {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    files.sort();
    let mut messages = Vec::new();
    for file in files {
        messages.push(common::mail::read_message(&file).await);
    }
    messages
}

async fn a_new_email_address_takes_what_managing_access_takes(url: String) {
    let data = tempfile::tempdir().unwrap();
    let outbox = data.path().join("outbox");
    let server = common::mail::server_with_mail(&url, None, Some(&outbox)).await;
    let token = alice_with_email(&server).await;
    assert_eq!(
        ask_reset(&server, "alice@example.com").await.status,
        StatusCode::OK
    );
    let link = reset_key(&outbox_messages(&outbox, 1).await[0].body);

    // An ACL token may rename, never move the address reset links go to.
    let (_, acl_token) = acl_with_token(&server, &token, &["PUT /api/v1/auth/me"]).await;
    let renamed = put_me(
        &server,
        Auth::Bearer(&acl_token),
        json!({"display_name": "Al"}),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    let moved = put_me(
        &server,
        Auth::Bearer(&acl_token),
        json!({"email": "eve@evil.example"}),
    )
    .await;
    assert_eq!(moved.status, StatusCode::FORBIDDEN, "{}", moved.text);

    // A session gives the password for it (a change of case is no move).
    let cookie = server.session_login("alice", None).await;
    let csrf = server
        .get("/rest/v1/getalldata", Auth::Cookie(&cookie))
        .await
        .body["_csrf"]
        .as_str()
        .unwrap()
        .to_string();
    let session_put = |mut body: Value| {
        body["_csrf"] = json!(csrf);
        let (server, cookie) = (&server, cookie.clone());
        async move { put_me(server, Auth::Cookie(&cookie), body).await }
    };
    let case = session_put(json!({"email": "ALICE@example.com"})).await;
    assert_eq!(case.status, StatusCode::OK, "{}", case.text);
    let bare = session_put(json!({"email": "eve@evil.example"})).await;
    assert_eq!(bare.status, StatusCode::BAD_REQUEST, "{}", bare.text);
    assert!(detail(&bare).contains("password"), "{}", bare.text);
    let wrong =
        session_put(json!({"email": "eve@evil.example", "password": "Wrong1Password"})).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text);
    assert_eq!(me(&server, &token).await["email"], "ALICE@example.com");
    let moved = session_put(json!({"email": "alice@new.example", "password": PASSWORD})).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);

    // The old address is told; the link sent to it no longer works.
    let messages = outbox_messages(&outbox, 2).await;
    let notice = messages.last().unwrap();
    assert_eq!(notice.subject, "Your Ampere e-mail address changed");
    assert_eq!(notice.to, "ALICE@example.com");
    let stale = set_password(&server, &link, "Brand9NewPass", "Brand9NewPass").await;
    assert_eq!(stale.status, StatusCode::BAD_REQUEST, "{}", stale.text);
    assert_eq!(
        login_status(&server, "alice", PASSWORD).await,
        StatusCode::OK
    );
}

/// A trader who deposited, lost it all to a liquidation and holds nothing may
/// go; the desk's figures (received, withdrawn, the house's result) stay.
async fn a_deleted_trader_leaves_the_desk_books_as_they_were(server: Server) {
    use common::desk::{assert_books_balance, balance, post, trader};
    use engine::desk::contract::Price;
    let bob = trader(&server, "bob").await;
    let token = server.register("dave").await;
    let login = common::desk::lnm(
        &server,
        Method::POST,
        "/lnm/login/credentials",
        None,
        Some(json!({"login": "dave", "password": PASSWORD})),
    )
    .await;
    let cookie = common::session_cookie(&login).expect("the session cookie");
    let desk = &server.services.engine.desk;
    desk.move_price(Price::parse("30000").unwrap())
        .await
        .unwrap();
    // Dave deposits 20,000 sats, paid by Bob's wallet, and puts all of it in
    // one long at leverage 100.
    let margin: i64 = 20_000;
    let invoice = post(
        &server,
        "/lnm/user/deposit",
        &cookie,
        json!({ "amount": margin }),
    )
    .await;
    assert_eq!(invoice.status, StatusCode::OK, "{}", invoice.text);
    let bolt11 = invoice.body["paymentRequest"].as_str().unwrap();
    let engine = &server.services.engine;
    engine
        .simnet
        .pay(engine::simnet::PayRequest::new(&bob.node, bolt11, None))
        .await
        .unwrap();
    let long = post(
        &server,
        "/lnm/positions",
        &cookie,
        json!({"type": "m", "side": "b", "margin": margin, "leverage": 100}),
    )
    .await;
    assert_eq!(long.status, StatusCode::OK, "{}", long.text);
    assert_eq!(balance(&server, &cookie).await, 0);
    let refused = delete_me(&server, Auth::Bearer(&token), None).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    let report = desk
        .move_price(Price::parse("29000").unwrap())
        .await
        .unwrap()
        .1;
    assert_eq!(report.liquidated, 1);
    let before = desk.audit().await.unwrap();
    assert!(before.balanced(), "{before:?}");
    assert_eq!(before.house.0, margin * 1000);

    let deleted = delete_me(&server, Auth::Bearer(&token), None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    let after = desk.audit().await.unwrap();
    assert_eq!(after, before, "deleting a trader changed the books");
    assert_books_balance(&server).await;
}

/// A deposit paid at the moment its account is deleted: either the deposit is
/// credited and the deletion refused, or the payment fails and the payer keeps
/// the money; never both through. Several rounds, on both databases.
async fn a_deposit_racing_the_deletion_is_never_lost(url: String) {
    use common::desk::{assert_books_balance, post, trader};
    let server = open_with(&url, engine::accounts::Policy::default()).await;
    let bob = trader(&server, "bob").await;
    let engine = &server.services.engine;
    let payer = engine.accounts.get(&bob.user_id).await.unwrap().unwrap();
    for round in 0..6 {
        let name = format!("racer{round}");
        let token = server.register(&name).await;
        let login = common::desk::lnm(
            &server,
            Method::POST,
            "/lnm/login/credentials",
            None,
            Some(json!({"login": name, "password": PASSWORD})),
        )
        .await;
        let cookie = common::session_cookie(&login).expect("the session cookie");
        let invoice = post(
            &server,
            "/lnm/user/deposit",
            &cookie,
            json!({"amount": 5_000}),
        )
        .await;
        let bolt11 = invoice.body["paymentRequest"].as_str().unwrap().to_string();
        let before = engine.wallet.summary(&payer).await.unwrap().total;
        let request = engine::simnet::PayRequest::new(&bob.node, &bolt11, None);
        let (paid, deleted) = tokio::join!(
            engine.simnet.pay(request),
            delete_me(&server, Auth::Bearer(&token), None)
        );
        match (&paid, deleted.status) {
            (Ok(_), StatusCode::CONFLICT) => {
                assert!(
                    detail(&deleted).contains("trading balance"),
                    "{}",
                    deleted.text
                );
                let kept = server.get("/api/v1/auth", Auth::Bearer(&token)).await;
                assert_eq!(
                    kept.status,
                    StatusCode::OK,
                    "the account went with its deposit"
                );
            }
            (Err(engine::Error::InvoiceExpired | engine::Error::NoRoute), StatusCode::OK) => {
                let after = engine.wallet.summary(&payer).await.unwrap().total;
                assert_eq!(after, before, "the payer lost money to a deleted account");
            }
            other => panic!("round {round}: {other:?} {}", deleted.text),
        }
        assert_books_balance(&server).await;
    }
}

/// A server signing in through the loopback provider as Keycloak (OpenID
/// Connect) and as GitHub (OAuth 2.0 and its user endpoint).
async fn open_with_provider(url: &str) -> (Server, common::provider::LoopbackProvider) {
    use server::oidc::Kind;
    let site = server::Site::for_tests(false);
    let provider =
        common::provider::LoopbackProvider::start(&site.public_url, &["keycloak", "github"]);
    let site = server::Site {
        providers: vec![
            provider.settings(Kind::Keycloak),
            provider.settings(Kind::Github),
        ],
        ..site
    };
    let server = Server::open_with_settings(url, engine::Settings::default(), site).await;
    (server, provider)
}

/// A browser (with `cookie`, if any) starting a sign-in with `provider`
/// (`start`: the path that starts it) and going through the provider: its
/// cookies then (with the flow's) and where the provider sends it back.
async fn through_provider(
    server: &Server,
    provider: &common::provider::LoopbackProvider,
    start: &str,
    cookie: Option<&str>,
) -> (String, String) {
    let auth = cookie.map_or(Auth::None, Auth::Cookie);
    let started = server.get(start, auth).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.text);
    let flow = started
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("provider_flow="))
        .expect("the flow's cookie binds it to this browser");
    assert!(
        flow.contains("HttpOnly") && flow.contains("SameSite=Lax"),
        "{flow}"
    );
    let flow = flow.split(';').next().unwrap();
    let cookie = match cookie {
        Some(cookie) if !cookie.contains("provider_flow=") => format!("{cookie}; {flow}"),
        Some(cookie) => cookie.to_string(),
        None => flow.to_string(),
    };
    let location = started.headers["location"].to_str().unwrap();
    assert!(location.starts_with(&provider.issuer), "{location}");
    let back = provider.browse(location).await;
    (cookie, back)
}

/// The keys (`(key, kind)`) that sign in to the account `id` (a JSON string).
async fn keys_of(server: &Server, id: &Value) -> Vec<(String, String)> {
    let accounts = &server.services.engine.accounts;
    let user = accounts.get(id.as_str().unwrap()).await.unwrap().unwrap();
    accounts.linked_keys(&user).await.unwrap()
}

/// The `code` and `state` of the provider's redirect back.
fn code_and_state(back: &str) -> (String, String) {
    let query = back.split_once('?').unwrap().1;
    let field = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| panic!("no {name} in {back}"))
    };
    (field("code"), field("state"))
}

async fn finish_for_token(
    server: &Server,
    provider: &str,
    cookie: &str,
    code: &str,
    state: &str,
) -> Reply {
    server
        .call(
            Method::POST,
            &format!("/api/v1/auth/{provider}/token"),
            Auth::Cookie(cookie),
            Some(&json!({ "code": code, "state": state }).to_string()),
        )
        .await
}

async fn whoami(server: &Server, auth: Auth<'_>) -> Value {
    let me = server.get("/api/v1/auth", auth).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    me.body
}

async fn openid_connect_signs_in_to_one_account_per_subject(url: String) {
    let (server, provider) = open_with_provider(&url).await;
    let before = server.user_count().await;

    // The start asks for a code with PKCE (S256), a state and a nonce.
    let started = server.get("/api/v1/auth/keycloak", Auth::None).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.text);
    let location = started.headers["location"].to_str().unwrap();
    for part in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "response_type=code",
    ] {
        assert!(location.contains(part), "{part} in {location}");
    }

    // The browser comes back, is signed in under a fresh session and lands
    // on the start page, in an account named after the provider's username.
    let (cookie, back) = through_provider(&server, &provider, "/api/v1/auth/keycloak", None).await;
    assert!(back.starts_with("/api/v1/auth/keycloak/token?"), "{back}");
    let landed = server.get(&back, Auth::Cookie(&cookie)).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.text);
    assert_eq!(landed.headers["location"], "/");
    let signed_in = common::session_cookie(&landed).expect("a fresh session");
    assert_ne!(signed_in, cookie, "the session id moves on at sign-in");
    let alice = whoami(&server, Auth::Cookie(&signed_in)).await;
    assert_eq!(alice["username"], "alice");
    assert_eq!(server.user_count().await, before + 1);

    // Signing in again (another browser, the POST for scripts) is the same
    // account: a bearer token for it.
    let (cookie, back) = through_provider(&server, &provider, "/api/v1/auth/keycloak", None).await;
    let (code, state) = code_and_state(&back);
    let token = finish_for_token(&server, "keycloak", &cookie, &code, &state).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.text);
    assert_eq!(token.body["token_type"], "bearer");
    let again = whoami(
        &server,
        Auth::Bearer(token.body["access_token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(again["id"], alice["id"]);
    assert_eq!(server.user_count().await, before + 1);

    // Another subject is another account, even wanting a taken name.
    server.register("bob").await;
    provider.sign_in_as("bob").await;
    let (cookie, back) = through_provider(&server, &provider, "/api/v1/auth/keycloak", None).await;
    let (code, state) = code_and_state(&back);
    let token = finish_for_token(&server, "keycloak", &cookie, &code, &state).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.text);
    let other = whoami(
        &server,
        Auth::Bearer(token.body["access_token"].as_str().unwrap()),
    )
    .await;
    assert_ne!(other["id"], alice["id"]);
    assert_ne!(
        other["username"], "bob",
        "never the password account named bob"
    );

    // GitHub: OAuth 2.0, the account from its user endpoint.
    provider.sign_in_as("carol").await;
    let (cookie, back) = through_provider(&server, &provider, "/api/v1/auth/github", None).await;
    assert!(back.starts_with("/api/v1/auth/github/token?"), "{back}");
    let (code, state) = code_and_state(&back);
    let token = finish_for_token(&server, "github", &cookie, &code, &state).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.text);
    let carol = whoami(
        &server,
        Auth::Bearer(token.body["access_token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(carol["username"], "carol");
    let keys = keys_of(&server, &carol["id"]).await;
    assert_eq!(
        keys,
        vec![("github:1000".to_string(), "github".to_string())]
    );
}

async fn a_provider_sign_in_refuses_what_an_attacker_brings(url: String) {
    let (server, provider) = open_with_provider(&url).await;
    let before = server.user_count().await;

    // Providers not configured, or unknown: 404.
    for name in ["google", "facebook"] {
        let reply = server
            .get(&format!("/api/v1/auth/{name}"), Auth::None)
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
        assert!(reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("no sign-in provider"));
    }

    // A wrong state: refused (and the browser's own flow still stands).
    let (cookie, back) = through_provider(&server, &provider, "/api/v1/auth/keycloak", None).await;
    let (code, state) = code_and_state(&back);
    let wrong = finish_for_token(&server, "keycloak", &cookie, &code, "not-the-state").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text);
    assert!(wrong.body["detail"]
        .as_str()
        .unwrap()
        .contains("not started in this browser"));
    let after = finish_for_token(&server, "keycloak", &cookie, &code, &state).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text);

    // The right code and state in another browser (a sign-in forged into a
    // victim's browser): refused; the browser is sent back to sign in.
    let (_, back) = through_provider(&server, &provider, "/api/v1/auth/keycloak", None).await;
    let forged = server.get(&back, Auth::None).await;
    assert_eq!(forged.status, StatusCode::SEE_OTHER);
    assert_eq!(forged.headers["location"], "/signin?provider_error=state");
    if let Some(cookie) = common::session_cookie(&forged) {
        let nobody = server.get("/api/v1/auth", Auth::Cookie(&cookie)).await;
        assert_eq!(nobody.status, StatusCode::UNAUTHORIZED, "{}", nobody.text);
    }

    // A replayed code: the same answer again finds its flow used up; under
    // a fresh flow's state, the provider refuses the used code.
    let (cookie, back) = through_provider(&server, &provider, "/api/v1/auth/keycloak", None).await;
    let (code, state) = code_and_state(&back);
    let first = finish_for_token(&server, "keycloak", &cookie, &code, &state).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let replayed = finish_for_token(&server, "keycloak", &cookie, &code, &state).await;
    assert_eq!(
        replayed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        replayed.text
    );
    let restarted = server
        .get("/api/v1/auth/keycloak", Auth::Cookie(&cookie))
        .await;
    let location = restarted.headers["location"].to_str().unwrap().to_string();
    let fresh_state = code_and_state(&format!("{location}&code=x")).1;
    let replayed = finish_for_token(&server, "keycloak", &cookie, &code, &fresh_state).await;
    assert_eq!(
        replayed.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        replayed.text
    );
    assert!(
        replayed.body["detail"]
            .as_str()
            .unwrap()
            .contains("did not accept the code"),
        "{}",
        replayed.text
    );
    assert_eq!(
        server.user_count().await,
        before + 1,
        "alice's account, once"
    );

    // ID tokens the provider never issued: signed by another key, or made
    // out to another client. Nobody new signs in.
    provider.sign_in_as("mallory").await;
    for (lie, why) in [("wrong-key", "ignature"), ("wrong-audience", "udience")] {
        provider.lie(lie).await;
        let (cookie, back) =
            through_provider(&server, &provider, "/api/v1/auth/keycloak", None).await;
        let (code, state) = code_and_state(&back);
        let refused = finish_for_token(&server, "keycloak", &cookie, &code, &state).await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "{lie}: {}",
            refused.text
        );
        let detail = refused.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("ID token did not verify") && detail.contains(why),
            "{lie}: {detail}"
        );
        // The browser's way: back to the sign-in page, not signed in.
        let (cookie, back) =
            through_provider(&server, &provider, "/api/v1/auth/keycloak", None).await;
        let landed = server.get(&back, Auth::Cookie(&cookie)).await;
        assert_eq!(
            landed.headers["location"], "/signin?provider_error=failed",
            "{lie}"
        );
    }
    provider.lie("honest").await;
    assert_eq!(
        server.user_count().await,
        before + 1,
        "no account for mallory"
    );

    // The provider's own refusal (the person said no).
    let (cookie, back) = through_provider(&server, &provider, "/api/v1/auth/keycloak", None).await;
    let (_, state) = code_and_state(&back);
    let denied = server
        .get(
            &format!("/api/v1/auth/keycloak/token?error=access_denied&state={state}"),
            Auth::Cookie(&cookie),
        )
        .await;
    assert_eq!(denied.headers["location"], "/signin?provider_error=refused");

    // Malformed answers: 400 in the API's format.
    let malformed = server
        .call(
            Method::POST,
            "/api/v1/auth/keycloak/token",
            Auth::None,
            Some("[1, 2]"),
        )
        .await;
    assert_eq!(
        malformed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        malformed.text
    );
    assert!(malformed.body["detail"].is_string());
}

async fn a_provider_account_links_to_a_signed_in_account(url: String) {
    let (server, provider) = open_with_provider(&url).await;
    server.register("dora").await;
    let cookie = server.session_login("dora", None).await;
    let csrf = csrf_of(&server, &cookie).await;
    let dora = whoami(&server, Auth::Cookie(&cookie)).await;

    // Without the CSRF token, or with another: refused before the provider
    // is asked.
    for path in [
        "/api/v1/auth/keycloak/link",
        "/api/v1/auth/keycloak/link?_csrf=forged",
    ] {
        let forged = server.get(path, Auth::Cookie(&cookie)).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    }

    // With it: the provider's account links, and signs in to dora's.
    provider.sign_in_as("dora-at-keycloak").await;
    let start = format!("/api/v1/auth/keycloak/link?_csrf={csrf}");
    let (cookie, back) = through_provider(&server, &provider, &start, Some(&cookie)).await;
    let linked = server.get(&back, Auth::Cookie(&cookie)).await;
    assert_eq!(linked.status, StatusCode::SEE_OTHER, "{}", linked.text);
    assert_eq!(linked.headers["location"], "/security?linked=keycloak");
    let (fresh, back) = through_provider(&server, &provider, "/api/v1/auth/keycloak", None).await;
    let (code, state) = code_and_state(&back);
    let token = finish_for_token(&server, "keycloak", &fresh, &code, &state).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.text);
    let me = whoami(
        &server,
        Auth::Bearer(token.body["access_token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(me["id"], dora["id"]);

    // A provider account that signs in elsewhere does not link here.
    server.register("eve").await;
    let eve = server.session_login("eve", None).await;
    let csrf = csrf_of(&server, &eve).await;
    let start = format!("/api/v1/auth/keycloak/link?_csrf={csrf}");
    let (eve, back) = through_provider(&server, &provider, &start, Some(&eve)).await;
    let taken = server.get(&back, Auth::Cookie(&eve)).await;
    assert_eq!(taken.headers["location"], "/security?provider_error=taken");
    let keys = keys_of(&server, &dora["id"]).await;
    assert_eq!(
        keys,
        vec![(
            "keycloak:dora-at-keycloak".to_string(),
            "keycloak".to_string()
        )]
    );

    // A bearer token cannot start a link (it needs the browser's session).
    let token = server.register("fay").await;
    let refused = server
        .get("/api/v1/auth/keycloak/link", Auth::Bearer(&token))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
}

/// Signs `username` in from a browser saying `user_agent`: its cookie.
async fn sign_in_from(server: &Server, username: &str, user_agent: &str) -> String {
    let request = axum::http::Request::post("/rest/v1/login")
        .header("content-type", "application/json")
        .header("user-agent", user_agent)
        .body(axum::body::Body::from(
            json!({"username": username, "password": PASSWORD}).to_string(),
        ))
        .unwrap();
    let reply = server.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    common::session_cookie(&reply).unwrap()
}

/// A security page call (a server function, form-encoded) with `cookie`.
async fn page_call(server: &Server, path: &str, cookie: &str, fields: &str) -> Reply {
    let request = axum::http::Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(axum::body::Body::from(fields.to_string()))
        .unwrap();
    server.send(request).await
}

async fn csrf_of(server: &Server, cookie: &str) -> String {
    let data = server
        .get("/rest/v1/getalldata", Auth::Cookie(cookie))
        .await;
    data.body["_csrf"].as_str().unwrap().to_string()
}

/// The handle of the session listed with this device.
fn handle_of(list: &Value, device: &str) -> String {
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["device"] == device)
        .unwrap_or_else(|| panic!("no {device} in {list}"))["handle"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn signed_in_browsers_are_listed_and_signed_out_one_or_all_others(server: Server) {
    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    server.register("sid").await;
    let firefox = sign_in_from(&server, "sid", FIREFOX).await;
    let curl = sign_in_from(&server, "sid", "curl/8.5.0").await;
    let chrome = sign_in_from(&server, "sid", CHROME).await;
    let csrf = csrf_of(&server, &firefox).await;

    // Every browser, where and when; this one marked.
    let list = page_call(&server, "/api/ui/security_sessions", &firefox, "").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let rows = list.body.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{}", list.text);
    let current: Vec<_> = rows.iter().filter(|r| r["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["device"], "Firefox on Linux");
    assert_eq!(rows[0]["address"], "local");
    let curl_handle = handle_of(&list.body, "curl");

    // Another account cannot end sid's sessions; nor can a write without
    // the CSRF token. Nothing ends.
    server.register("other").await;
    let other = sign_in_from(&server, "other", FIREFOX).await;
    let other_csrf = csrf_of(&server, &other).await;
    let fields = format!("handle={curl_handle}&password={PASSWORD}&_csrf={other_csrf}");
    let refused = page_call(&server, "/api/ui/end_session", &other, &fields).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.text);
    let fields = format!("handle={curl_handle}&_csrf=forged");
    let forged = page_call(&server, "/api/ui/end_session", &firefox, &fields).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    assert_eq!(
        server.get("/api/v1/auth", Auth::Cookie(&curl)).await.status,
        StatusCode::OK
    );

    // Not without the password (a stolen session cannot keep its owner
    // out); nothing ends.
    let fields = format!("handle={curl_handle}&_csrf={csrf}");
    let unconfirmed = page_call(&server, "/api/ui/end_session", &firefox, &fields).await;
    assert_eq!(
        unconfirmed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unconfirmed.text
    );
    assert!(
        unconfirmed.text.contains("enter your password"),
        "{}",
        unconfirmed.text
    );
    let wrong = format!("{fields}&password=Wrong-horse-7");
    let refused = page_call(&server, "/api/ui/end_session", &firefox, &wrong).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert!(
        refused.text.contains("password is not correct"),
        "{}",
        refused.text
    );
    let unconfirmed = page_call(
        &server,
        "/api/ui/end_other_sessions",
        &firefox,
        &format!("_csrf={csrf}"),
    )
    .await;
    assert_eq!(
        unconfirmed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unconfirmed.text
    );
    assert_eq!(
        server.get("/api/v1/auth", Auth::Cookie(&curl)).await.status,
        StatusCode::OK
    );

    // One ended: signed out at once; the others stay.
    let fields = format!("handle={curl_handle}&password={PASSWORD}&_csrf={csrf}");
    let ended = page_call(&server, "/api/ui/end_session", &firefox, &fields).await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.text);
    assert_eq!(
        server.get("/api/v1/auth", Auth::Cookie(&curl)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server
            .get("/api/v1/auth", Auth::Cookie(&chrome))
            .await
            .status,
        StatusCode::OK
    );
    let again = page_call(&server, "/api/ui/end_session", &firefox, &fields).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.text);

    // Every other one: this browser alone stays signed in.
    let fields = format!("password={PASSWORD}&_csrf={csrf}");
    let others = page_call(&server, "/api/ui/end_other_sessions", &firefox, &fields).await;
    assert_eq!(others.status, StatusCode::OK, "{}", others.text);
    assert_eq!(others.body, json!(1));
    assert_eq!(
        server
            .get("/api/v1/auth", Auth::Cookie(&chrome))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server
            .get("/api/v1/auth", Auth::Cookie(&firefox))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        server
            .get("/api/v1/auth", Auth::Cookie(&other))
            .await
            .status,
        StatusCode::OK,
        "another account's sessions stay"
    );
    let list = page_call(&server, "/api/ui/security_sessions", &firefox, "").await;
    assert_eq!(list.body.as_array().unwrap().len(), 1, "{}", list.text);

    // Signing out takes the browser off the list.
    let out = server
        .call(
            Method::POST,
            &format!("/rest/v1/logout?_csrf={csrf}"),
            Auth::Cookie(&firefox),
            None,
        )
        .await;
    assert!(out.status.is_success(), "{}", out.text);
    let back = sign_in_from(&server, "sid", CHROME).await;
    let list = page_call(&server, "/api/ui/security_sessions", &back, "").await;
    assert_eq!(list.body.as_array().unwrap().len(), 1, "{}", list.text);
    assert_eq!(list.body[0]["current"], true);
}
