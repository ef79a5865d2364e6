//! Ampere as an OAuth 2.0 provider (`specs/lime-oauth2.md`), on SQLite and
//! PostgreSQL, over real HTTP: the application is Authlib (PyPI), driven by
//! `server/tests/apps/oauth_app.py`; its client is registered with the
//! `ampere oauth-client` command; the person's browser is played here
//! (the sign-in, the consent page and its answer). Every refusal the issue
//! names: expired, replayed and foreign codes, a wrong redirect URL, a wrong
//! client secret, a wrong PKCE verifier, a state the application did not
//! send, a token past expiry, revoked or of a changed password, a scope not
//! granted, a 2FA account without its code.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use sqlx::Row;

use common::{pyotp, session_cookie, Auth, Reply, Server, PASSWORD};

testdb::on_both_databases!(
    open_provider;
    an_application_signs_a_person_up_and_gets_tokens_by_password,
    the_code_flow_asks_the_person_and_each_code_works_once,
    tokens_end_with_time_revocation_and_the_password,
    what_the_review_found_stays_refused,
);

/// The server, its base URL (the application talks HTTP to it) and its
/// database (the operator's command opens it too).
struct Provider {
    server: Server,
    base: String,
    db_url: String,
}

async fn open_provider(url: &str) -> Provider {
    let (server, base) = Server::listening(url).await;
    Provider {
        server,
        base,
        db_url: url.to_string(),
    }
}

/// `ampere <args>` against the provider's database: its stdout, or the
/// failure's stderr.
async fn ampere(provider: &Provider, args: &[&str]) -> Result<String, String> {
    let data_dir = tempfile::tempdir().unwrap();
    let mut all = vec![
        "--database-url".to_string(),
        provider.db_url.clone(),
        "--data-dir".to_string(),
        data_dir.path().display().to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let out = run(env!("CARGO_BIN_EXE_ampere").to_string(), all).await;
    match out.status.success() {
        true => Ok(String::from_utf8(out.stdout).unwrap()),
        false => Err(String::from_utf8_lossy(&out.stderr).to_string()),
    }
}

/// Runs a program off the async workers (the server answers meanwhile).
async fn run(program: String, args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(&program)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e} (the test venv is made by scripts/test)"))
    })
    .await
    .unwrap()
}

/// A registered client: its id and secret, as `oauth-client add` printed them.
struct Client {
    id: String,
    secret: String,
}

async fn add_client(provider: &Provider, name: &str, redirect: &str, scopes: &[&str]) -> Client {
    let mut args = vec![
        "oauth-client",
        "add",
        "--name",
        name,
        "--redirect-url",
        redirect,
    ];
    for scope in scopes {
        args.extend(["--scope", scope]);
    }
    let printed = ampere(provider, &args).await.unwrap();
    let value = |key: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} in {printed}"))
            .to_string()
    };
    Client {
        id: value("client_id"),
        secret: value("client_secret"),
    }
}

/// The application (Authlib): `oauth_app.py <args>`, its one JSON answer.
async fn app(args: &[&str]) -> Value {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut all = vec![format!("{root}/server/tests/apps/oauth_app.py")];
    all.extend(args.iter().map(|a| a.to_string()));
    let out = run(format!("{root}/.venv/bin/python"), all).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn password_grant(
    provider: &Provider,
    client: &Client,
    username: &str,
    password: &str,
    extra: &[&str],
) -> Value {
    let mut args = vec![
        "password",
        &provider.base,
        &client.id,
        &client.secret,
        username,
        password,
    ];
    args.extend(extra);
    app(&args).await
}

fn access_token(answer: &Value) -> String {
    answer["token"]["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {answer}"))
        .to_string()
}

async fn userinfo(provider: &Provider, token: &str) -> Value {
    app(&["userinfo", &provider.base, token]).await
}

/// A form post to the token endpoint made by hand (for what Authlib would
/// never send).
async fn token_form(provider: &Provider, form: &[(&str, &str)]) -> Reply {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    provider
        .server
        .send(
            Request::post("/connect/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
}

async fn register(provider: &Provider, basic: Option<String>, body: Value) -> Reply {
    let mut request =
        Request::post("/api/register").header(header::CONTENT_TYPE, "application/json");
    if let Some(basic) = basic {
        request = request.header(header::AUTHORIZATION, format!("Basic {basic}"));
    }
    provider
        .server
        .send(request.body(Body::from(body.to_string())).unwrap())
        .await
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
}

async fn an_application_signs_a_person_up_and_gets_tokens_by_password(provider: Provider) {
    let client = add_client(&provider, "Lime Desk", "https://desk.example/cb", &[]).await;
    let listed = ampere(&provider, &["oauth-client", "list"]).await.unwrap();
    assert!(
        listed.contains(&client.id) && listed.contains("Lime Desk"),
        "{listed}"
    );
    assert!(listed.contains("profile email read"), "{listed}");
    assert!(
        !listed.contains(&client.secret),
        "the secret is never shown again"
    );
    // The operator's refusals: a redirect URL of plain http elsewhere, an
    // unknown scope, an unknown client to remove.
    for args in [
        vec![
            "oauth-client",
            "add",
            "--name",
            "x",
            "--redirect-url",
            "http://evil.example/cb",
        ],
        vec![
            "oauth-client",
            "add",
            "--name",
            "x",
            "--redirect-url",
            "https://a.example/cb",
            "--scope",
            "admin",
        ],
        vec!["oauth-client", "remove", "nope"],
    ] {
        assert!(ampere(&provider, &args).await.is_err(), "{args:?}");
    }

    // The application signs Ada up (its client by Basic, as the spec shows).
    let ada = json!({
        "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace",
        "username": "ada", "password": PASSWORD,
    });
    for (basic_auth, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(basic(&client.id, "wrong")), StatusCode::UNAUTHORIZED),
    ] {
        let reply = register(&provider, basic_auth, ada.clone()).await;
        assert_eq!(reply.status, status, "{}", reply.text);
        assert_eq!(reply.body["error"], "invalid_client", "{}", reply.text);
        assert!(reply.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    for (field, value) in [
        ("first_name", json!("")),
        ("email", json!("not-an-address")),
        ("password", json!("password")),
        ("username", json!("a")),
    ] {
        let mut body = ada.clone();
        body[field] = value;
        let reply = register(&provider, Some(basic(&client.id, &client.secret)), body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{field}: {}",
            reply.text
        );
        assert!(reply.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(
        provider.server.user_count().await,
        0,
        "no refusal made an account"
    );
    // The spec's other way: the `auth` field.
    let mut body = ada.clone();
    body["auth"] = json!(basic(&client.id, &client.secret));
    let reply = register(&provider, None, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["login"], "ada");
    let reply = register(
        &provider,
        Some(basic(&client.id, &client.secret)),
        ada.clone(),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "taken: {}",
        reply.text
    );

    // The password grant, with the client in the form and by Basic.
    for auth in ["post", "basic"] {
        let answer = password_grant(&provider, &client, "ada", PASSWORD, &["--auth", auth]).await;
        assert_eq!(answer["token"]["token_type"], "Bearer", "{answer}");
        assert_eq!(answer["token"]["expires_in"], 86400, "{answer}");
        assert_eq!(answer["token"]["scope"], "profile email read", "{answer}");
    }
    let answer = password_grant(&provider, &client, "ada", PASSWORD, &["--scope", "profile"]).await;
    let profile_only = access_token(&answer);
    assert_eq!(answer["token"]["scope"], "profile");
    let token = access_token(&password_grant(&provider, &client, "ada", PASSWORD, &[]).await);

    let info = userinfo(&provider, &token).await;
    assert_eq!(info["status"], 200, "{info}");
    let body = &info["body"];
    assert_eq!(body["login"], "ada");
    assert_eq!(body["first_name"], "Ada");
    assert_eq!(body["last_name"], "Lovelace");
    assert_eq!(body["email"], "ada@example.com");
    let accounts = body["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 2, "{body}");
    assert!(accounts[0]["account_number"]
        .as_str()
        .unwrap()
        .ends_with("@wallet"));
    assert!(accounts[1]["account_number"]
        .as_str()
        .unwrap()
        .ends_with("@desk"));
    // Without the email scope, no address.
    let info = userinfo(&provider, &profile_only).await;
    assert_eq!(info["body"]["email"], Value::Null, "{info}");
    assert_eq!(info["body"]["login"], "ada");

    // The spec's prose names the header `Authentication`: that works too.
    let reply = provider
        .server
        .send(
            Request::get("/userinfo")
                .header("authentication", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);

    // Scopes bound the APIs: read reads; writes and other tokens' routes are 403.
    let read = provider
        .server
        .get("/rest/v1/getalldata", Auth::Bearer(&token))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    let write = provider
        .server
        .call(
            Method::POST,
            "/rest/v1/createinvoice",
            Auth::Bearer(&token),
            Some(&json!({"amount": 1000, "memo": "x"}).to_string()),
        )
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{}", write.text);
    let read = provider
        .server
        .get("/rest/v1/getalldata", Auth::Bearer(&profile_only))
        .await;
    assert_eq!(read.status, StatusCode::FORBIDDEN, "{}", read.text);
    for (method, path) in [
        (Method::GET, "/api/v1/auth/acls"),
        (Method::POST, "/api/v2/auth/resource/api_keys"),
        (Method::GET, "/api/ui/me"),
    ] {
        let reply = provider
            .server
            .call(method.clone(), path, Auth::Bearer(&token), Some("{}"))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            reply.text
        );
    }

    // Refusals in RFC 6749's words.
    let answer = password_grant(&provider, &client, "ada", "Wrong-horse-7", &[]).await;
    assert_eq!(answer["error"], "invalid_grant", "{answer}");
    let wrong = Client {
        id: client.id.clone(),
        secret: "0".repeat(64),
    };
    let answer = password_grant(&provider, &wrong, "ada", PASSWORD, &[]).await;
    assert_eq!(answer["error"], "invalid_client", "{answer}");
    let answer = password_grant(
        &provider,
        &client,
        "ada",
        PASSWORD,
        &["--scope", "profile trade"],
    )
    .await;
    assert_eq!(answer["error"], "invalid_scope", "{answer}");
    let secret = client.secret.clone();
    for (form, code) in [
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &client.id),
                ("client_secret", &secret),
            ],
            "unsupported_grant_type",
        ),
        (
            vec![("client_id", &client.id), ("client_secret", &secret)],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", &client.id),
                ("client_secret", &secret),
                ("username", "ada"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("grant_type", "password"),
                ("client_id", &client.id),
                ("client_secret", &secret),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", "nobody"),
                ("client_secret", &secret),
                ("username", "ada"),
                ("password", PASSWORD),
            ],
            "invalid_client",
        ),
    ] {
        let reply = token_form(&provider, &form).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{form:?}: {}",
            reply.text
        );
        assert_eq!(reply.body["error"], code, "{form:?}: {}", reply.text);
        assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    }

    // With two-factor codes on, the password grant asks for one.
    let engine = &provider.server.services.engine;
    let user = engine
        .accounts
        .get(reply_id(&provider, "ada").await.as_str())
        .await
        .unwrap()
        .unwrap();
    let enrolment = engine.accounts.start_two_factor(&user).await.unwrap();
    let code = pyotp(&enrolment.url, engine::now_ms() / 1000 - 30);
    engine
        .accounts
        .enable_two_factor(&user, &code, &engine::Seen::at("test"))
        .await
        .unwrap();
    let answer = password_grant(&provider, &client, "ada", PASSWORD, &[]).await;
    assert_eq!(answer["error"], "invalid_grant", "{answer}");
    assert!(
        answer["description"]
            .as_str()
            .unwrap()
            .contains("two-factor"),
        "{answer}"
    );
    let code = pyotp(&enrolment.url, engine::now_ms() / 1000);
    let answer = password_grant(&provider, &client, "ada", PASSWORD, &["--otp", &code]).await;
    assert!(answer["token"]["access_token"].is_string(), "{answer}");
    // That code is spent.
    let answer = password_grant(&provider, &client, "ada", PASSWORD, &["--otp", &code]).await;
    assert_eq!(answer["error"], "invalid_grant", "{answer}");

    // Removing the client ends its tokens.
    assert_eq!(userinfo(&provider, &token).await["status"], 200);
    ampere(&provider, &["oauth-client", "remove", &client.id])
        .await
        .unwrap();
    assert_eq!(userinfo(&provider, &token).await["status"], 401);
    let answer = password_grant(&provider, &client, "ada", PASSWORD, &[]).await;
    assert_eq!(answer["error"], "invalid_client", "{answer}");
}

async fn reply_id(provider: &Provider, username: &str) -> String {
    sqlx::query("SELECT id FROM users WHERE username = $1")
        .bind(username)
        .fetch_one(provider.server.services.engine.db.pool())
        .await
        .unwrap()
        .get("id")
}

/// A browser signed in to `username`: its cookie and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

async fn browser(provider: &Provider, username: &str) -> Browser {
    provider.server.register(username).await;
    let login = provider
        .server
        .post_json(
            "/rest/v1/login",
            &json!({"username": username, "password": PASSWORD}).to_string(),
            None,
        )
        .await;
    Browser {
        cookie: session_cookie(&login).unwrap(),
        csrf: login.body["_csrf"].as_str().unwrap().to_string(),
    }
}

/// The path and query of an absolute URL the application made.
fn path_of(url: &str) -> String {
    let after_scheme = url.split_once("://").unwrap().1;
    format!("/{}", after_scheme.split_once('/').unwrap().1)
}

fn query_of(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn location(reply: &Reply) -> String {
    reply
        .headers
        .get(header::LOCATION)
        .unwrap_or_else(|| panic!("no redirect: {} {}", reply.status, reply.text))
        .to_str()
        .unwrap()
        .to_string()
}

/// The person's answer on the consent page, as its form posts it without
/// JavaScript: the request's fields, the CSRF token and the decision.
async fn answer(
    provider: &Provider,
    browser: &Browser,
    url: &str,
    decision: &str,
    csrf: bool,
) -> Reply {
    let mut fields = query_of(url);
    fields.push(("decision".into(), decision.into()));
    if csrf {
        fields.push(("_csrf".into(), browser.csrf.clone()));
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    provider
        .server
        .send(
            Request::post("/connect/authorize")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, &browser.cookie)
                .body(Body::from(body))
                .unwrap(),
        )
        .await
}

/// The application's authorization request: its URL, state and verifier.
async fn authorize_url(
    provider: &Provider,
    client: &Client,
    redirect: &str,
    scope: Option<&str>,
) -> (String, String, String) {
    let mut args = vec!["authorize-url", &provider.base, &client.id, redirect];
    if let Some(scope) = scope {
        args.extend(["--scope", scope]);
    }
    let made = app(&args).await;
    let text = |k: &str| made[k].as_str().unwrap().to_string();
    (text("url"), text("state"), text("verifier"))
}

async fn exchange(
    provider: &Provider,
    client: &Client,
    redirect: &str,
    callback: &str,
    state: &str,
    verifier: &str,
) -> Value {
    app(&[
        "exchange",
        &provider.base,
        &client.id,
        &client.secret,
        redirect,
        callback,
        state,
        verifier,
    ])
    .await
}

const REDIRECT: &str = "http://127.0.0.1:9/lime/callback";

async fn the_code_flow_asks_the_person_and_each_code_works_once(provider: Provider) {
    let client = add_client(
        &provider,
        "Lime <Trader>",
        REDIRECT,
        &["profile", "read", "trade"],
    )
    .await;
    let (url, state, verifier) =
        authorize_url(&provider, &client, REDIRECT, Some("profile read")).await;
    assert!(
        url.starts_with(&format!("{}/connect/authorize?", provider.base)),
        "{url}"
    );

    // A visitor signs in first, and comes back to the request.
    let reply = provider.server.get(&path_of(&url), Auth::None).await;
    let to = location(&reply);
    assert!(
        to.starts_with("/signin?next=%2Fconnect%2Fauthorize%3F"),
        "{to}"
    );

    // Signed in, the page names the application (escaped) and what it asks,
    // and lets its forms post back to the application's origin alone.
    let bea = browser(&provider, "bea").await;
    let page = provider
        .server
        .get(&path_of(&url), Auth::Cookie(&bea.cookie))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains("Lime &lt;Trader&gt;"),
        "the name, escaped"
    );
    assert!(!page.text.contains("Lime <Trader>"));
    assert!(page.text.contains("read your balances"), "{}", page.text);
    assert!(
        !page.text.contains("trade, deposit"),
        "only the scopes asked"
    );
    let policy = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        policy.contains("form-action 'self' http://127.0.0.1:9"),
        "{policy}"
    );

    // The answer needs the CSRF token; approving sends a code and the state.
    let reply = answer(&provider, &bea, &url, "approve", false).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    let reply = answer(&provider, &bea, &url, "approve", true).await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.text);
    let callback = location(&reply);
    assert!(
        callback.starts_with(&format!("{REDIRECT}?code=")),
        "{callback}"
    );
    assert!(query_of(&callback).contains(&("state".into(), state.clone())));

    // The application checks the state itself: a callback it did not expect
    // is refused before any exchange.
    let refused = exchange(
        &provider,
        &client,
        REDIRECT,
        &callback,
        "another-state",
        &verifier,
    )
    .await;
    assert_eq!(refused["error"], "mismatching_state", "{refused}");
    // A wrong PKCE verifier, a wrong redirect URL, a wrong secret: refused,
    // and each attempt spends the code.
    let wrong_verifier = exchange(
        &provider,
        &client,
        REDIRECT,
        &callback,
        &state,
        &"x".repeat(48),
    )
    .await;
    assert_eq!(wrong_verifier["error"], "invalid_grant", "{wrong_verifier}");
    let again = exchange(&provider, &client, REDIRECT, &callback, &state, &verifier).await;
    assert_eq!(
        again["error"], "invalid_grant",
        "a tried code is spent: {again}"
    );

    // A fresh code goes through.
    let code_round = |decision: &'static str| {
        let (provider, client, bea) = (&provider, &client, &bea);
        async move {
            let (url, state, verifier) = authorize_url(provider, client, REDIRECT, None).await;
            let reply = answer(provider, bea, &url, decision, true).await;
            (location(&reply), state, verifier)
        }
    };
    let (callback, state, verifier) = code_round("approve").await;
    let other_redirect = "http://127.0.0.1:9/other";
    let refused = exchange(
        &provider,
        &client,
        other_redirect,
        &callback,
        &state,
        &verifier,
    )
    .await;
    assert_eq!(refused["error"], "invalid_grant", "{refused}");
    let (callback, state, verifier) = code_round("approve").await;
    let wrong = Client {
        id: client.id.clone(),
        secret: "1".repeat(64),
    };
    let refused = exchange(&provider, &wrong, REDIRECT, &callback, &state, &verifier).await;
    assert_eq!(refused["error"], "invalid_client", "{refused}");
    let granted = exchange(&provider, &client, REDIRECT, &callback, &state, &verifier).await;
    assert_eq!(granted["token"]["scope"], "profile read trade", "{granted}");
    let token = access_token(&granted);
    let info = userinfo(&provider, &token).await;
    assert_eq!(info["body"]["login"], "bea", "{info}");
    assert_eq!(info["body"]["email"], Value::Null, "no email scope");

    // The code again: refused, and the token it issued is revoked.
    let replayed = exchange(&provider, &client, REDIRECT, &callback, &state, &verifier).await;
    assert_eq!(replayed["error"], "invalid_grant", "{replayed}");
    assert_eq!(userinfo(&provider, &token).await["status"], 401);

    // Refusing sends access_denied (and the state) back.
    let (callback, state, _) = code_round("deny").await;
    let query = query_of(&callback);
    assert!(
        query.contains(&("error".into(), "access_denied".into())),
        "{callback}"
    );
    assert!(query.contains(&("state".into(), state)));

    // A code older than five minutes is refused.
    let (callback, state, verifier) = code_round("approve").await;
    sqlx::query("UPDATE oauth_codes SET expires_at = $1 WHERE used_at IS NULL")
        .bind(engine::now_ms() - 1)
        .execute(provider.server.services.engine.db.pool())
        .await
        .unwrap();
    let expired = exchange(&provider, &client, REDIRECT, &callback, &state, &verifier).await;
    assert_eq!(expired["error"], "invalid_grant", "{expired}");
    assert!(
        expired["description"].as_str().unwrap().contains("expired"),
        "{expired}"
    );

    // Requests that may not be redirected are told to the person, not sent:
    // an unregistered redirect URL, an unknown client.
    for (bad_url, says) in [
        (url.replace("lime%2Fcallback", "evil"), "did not register"),
        (url.replace(&client.id, "unknown"), "not registered"),
    ] {
        let page = provider
            .server
            .get(&path_of(&bad_url), Auth::Cookie(&bea.cookie))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        assert!(page.headers.get(header::LOCATION).is_none());
        assert!(page.text.contains(says), "{says}: {}", page.text);
        let reply = answer(&provider, &bea, &bad_url, "approve", true).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
        assert!(reply.headers.get(header::LOCATION).is_none());
    }
    // A scope beyond the client's goes back as invalid_scope.
    let (url, _, _) = authorize_url(&provider, &client, REDIRECT, Some("profile wallet")).await;
    let reply = provider
        .server
        .get(&path_of(&url), Auth::Cookie(&bea.cookie))
        .await;
    assert!(
        location(&reply).contains("error=invalid_scope"),
        "{}",
        reply.text
    );

    // Two exchanges of one code at once: one token, revoked by the other
    // (a replay, whichever came second).
    let (callback, state, verifier) = code_round("approve").await;
    let (a, b) = tokio::join!(
        exchange(&provider, &client, REDIRECT, &callback, &state, &verifier),
        exchange(&provider, &client, REDIRECT, &callback, &state, &verifier),
    );
    let issued: Vec<&Value> = [&a, &b]
        .into_iter()
        .filter(|v| v["token"].is_object())
        .collect();
    assert_eq!(issued.len(), 1, "{a} {b}");
    // The other was a replay: the one token is revoked with it.
    let token = access_token(issued[0]);
    assert_eq!(userinfo(&provider, &token).await["status"], 401);
}

async fn tokens_end_with_time_revocation_and_the_password(provider: Provider) {
    let client = add_client(&provider, "Lime", REDIRECT, &[]).await;
    let cleo = browser(&provider, "cleo").await;
    let token = access_token(&password_grant(&provider, &client, "cleo", PASSWORD, &[]).await);
    let db = provider.server.services.engine.db.pool();
    let cleo_id = reply_id(&provider, "cleo").await;

    // Each use pushes the expiry 24 hours on.
    sqlx::query("UPDATE oauth_tokens SET expires_at = $1 WHERE user_id = $2")
        .bind(engine::now_ms() + 3_600_000)
        .bind(&cleo_id)
        .execute(db)
        .await
        .unwrap();
    assert_eq!(userinfo(&provider, &token).await["status"], 200);
    let expires: i64 = sqlx::query("SELECT expires_at FROM oauth_tokens WHERE user_id = $1")
        .bind(&cleo_id)
        .fetch_one(db)
        .await
        .unwrap()
        .get("expires_at");
    assert!(expires > engine::now_ms() + 23 * 3_600_000, "prolonged");
    // Past it, refused.
    sqlx::query("UPDATE oauth_tokens SET expires_at = $1 WHERE user_id = $2")
        .bind(engine::now_ms() - 1)
        .bind(&cleo_id)
        .execute(db)
        .await
        .unwrap();
    assert_eq!(userinfo(&provider, &token).await["status"], 401);

    // The person revokes the application from the security page: at once.
    let token = access_token(&password_grant(&provider, &client, "cleo", PASSWORD, &[]).await);
    let list = provider
        .server
        .call(
            Method::POST,
            "/api/ui/security_applications",
            Auth::Cookie(&cleo.cookie),
            Some("{}"),
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let apps = list.body.as_array().unwrap();
    assert_eq!(apps.len(), 1, "{}", list.text);
    assert_eq!(apps[0]["client_name"], "Lime");
    let id = apps[0]["id"].as_str().unwrap().to_string();
    // Another account cannot revoke it, nor can a token.
    let dan = browser(&provider, "dan").await;
    let revoke = |credential: (header::HeaderName, String), csrf: &str| {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("id", id.as_str()), ("_csrf", csrf)])
            .finish();
        provider.server.send(
            Request::post("/api/ui/revoke_application")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(credential.0, credential.1)
                .body(Body::from(body))
                .unwrap(),
        )
    };
    let reply = revoke((header::COOKIE, dan.cookie.clone()), &dan.csrf).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    let reply = revoke((header::AUTHORIZATION, format!("Bearer {token}")), "").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    assert_eq!(userinfo(&provider, &token).await["status"], 200);
    let reply = revoke((header::COOKIE, cleo.cookie.clone()), &cleo.csrf).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(userinfo(&provider, &token).await["status"], 401);

    // A new password ends every token.
    let token = access_token(&password_grant(&provider, &client, "cleo", PASSWORD, &[]).await);
    let user = provider
        .server
        .services
        .engine
        .accounts
        .get(&reply_id(&provider, "cleo").await)
        .await
        .unwrap()
        .unwrap();
    provider
        .server
        .services
        .engine
        .accounts
        .change_password(
            &user,
            PASSWORD,
            "Fresh-battery-42",
            None,
            &engine::Seen::at("test"),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(userinfo(&provider, &token).await["status"], 401);
}

/// The review's findings: a withdraw link made by an application's token dies
/// with the application; a code is spent only by its own client, and never
/// under a password changed since or after the application was revoked; the
/// consent page gives the state back exactly; no application changes the
/// password on the desk's route.
async fn what_the_review_found_stays_refused(provider: Provider) {
    let server = &provider.server;
    let engine = &server.services.engine;
    let client = add_client(&provider, "Lime", REDIRECT, &["profile", "read", "trade"]).await;

    // A withdraw link made with an application's token, then the application
    // revoked: the link pays nothing.
    let eve = common::desk::trader(server, "eve").await;
    common::desk::deposit(server, &eve, &eve.node, 200_000).await;
    let token = access_token(&password_grant(&provider, &client, "eve", PASSWORD, &[]).await);
    let bearer = format!("Bearer {token}");
    let link = common::desk::post(
        server,
        "/lnm/user/withdraw/lnurl",
        &bearer,
        json!({"amount": 50_000}),
    )
    .await;
    assert_eq!(link.status, StatusCode::OK, "{}", link.text);
    let k1: String = sqlx::query("SELECT k1 FROM desk_lnurl_withdrawals WHERE user_id = $1")
        .bind(&eve.user_id)
        .fetch_one(engine.db.pool())
        .await
        .unwrap()
        .get("k1");
    // No application changes the password, on the desk's route either.
    let reply = common::desk::lnm(
        server,
        Method::PUT,
        "/lnm/user",
        Some(&bearer),
        Some(json!({"previousPassword": PASSWORD, "newPassword": "Fresh-battery-42"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    let user = engine.accounts.get(&eve.user_id).await.unwrap().unwrap();
    let grant = engine.oauth.authorised(&user).await.unwrap()[0].id.clone();
    engine.oauth.revoke(&user, &grant).await.unwrap();
    let zed = common::desk::trader(server, "zed").await;
    let zed_user = engine.accounts.get(&zed.user_id).await.unwrap().unwrap();
    let invoice = engine
        .wallet
        .create_invoice(&zed_user, Some(engine::Msat::from_sat(50_000)), "claim")
        .await
        .unwrap();
    let before = common::desk::balance(server, &eve.cookie).await;
    let claimed = engine.desk.withdraw_by_link(&k1, &invoice.bolt11).await;
    assert!(
        matches!(&claimed, Err(engine::Error::Invalid { message, .. }) if message.contains("voided")),
        "{claimed:?}"
    );
    assert_eq!(common::desk::balance(server, &eve.cookie).await, before);

    // A code presented by another client is not spent: its own client's
    // exchange still goes through.
    let other = add_client(&provider, "Other", REDIRECT, &[]).await;
    let fay = browser(&provider, "fay").await;
    let approved = |fay: &Browser| {
        let (provider, client) = (&provider, &client);
        let fay = Browser {
            cookie: fay.cookie.clone(),
            csrf: fay.csrf.clone(),
        };
        async move {
            let (url, state, verifier) = authorize_url(provider, client, REDIRECT, None).await;
            let reply = answer(provider, &fay, &url, "approve", true).await;
            (location(&reply), state, verifier)
        }
    };
    let (callback, state, verifier) = approved(&fay).await;
    let stolen = exchange(&provider, &other, REDIRECT, &callback, &state, &verifier).await;
    assert_eq!(stolen["error"], "invalid_grant", "{stolen}");
    let granted = exchange(&provider, &client, REDIRECT, &callback, &state, &verifier).await;
    let fay_token = access_token(&granted);

    // A code granted before a new password buys nothing after it.
    let (callback, state, verifier) = approved(&fay).await;
    let fay_user = engine
        .accounts
        .get(&reply_id(&provider, "fay").await)
        .await
        .unwrap()
        .unwrap();
    let fay_user = engine
        .accounts
        .change_password(
            &fay_user,
            PASSWORD,
            "Fresh-battery-42",
            None,
            &engine::Seen::at("test"),
        )
        .await
        .unwrap();
    let refused = exchange(&provider, &client, REDIRECT, &callback, &state, &verifier).await;
    assert_eq!(refused["error"], "invalid_grant", "{refused}");
    assert!(
        refused["description"]
            .as_str()
            .unwrap()
            .contains("password"),
        "{refused}"
    );
    assert_eq!(userinfo(&provider, &fay_token).await["status"], 401);

    // A code held across the application's revocation buys nothing either.
    let login = server
        .post_json(
            "/rest/v1/login",
            &json!({"username": "fay", "password": "Fresh-battery-42"}).to_string(),
            None,
        )
        .await;
    let fay = Browser {
        cookie: session_cookie(&login).unwrap(),
        csrf: login.body["_csrf"].as_str().unwrap().to_string(),
    };
    let (callback, state, verifier) = approved(&fay).await;
    let grant = engine.oauth.authorised(&fay_user).await.unwrap()[0]
        .id
        .clone();
    engine.oauth.revoke(&fay_user, &grant).await.unwrap();
    let refused = exchange(&provider, &client, REDIRECT, &callback, &state, &verifier).await;
    assert_eq!(refused["error"], "invalid_grant", "{refused}");
    assert!(engine.oauth.authorised(&fay_user).await.unwrap().is_empty());

    // A state with % and & comes back exactly, on the page and in the answer.
    let (url, _, _) = authorize_url(&provider, &client, REDIRECT, None).await;
    let query = query_of(&url);
    let sent = query.iter().find(|(k, _)| k == "state").unwrap().1.clone();
    let url = url.replace(&format!("state={sent}"), "state=a%26b%2541%25");
    let page = server.get(&path_of(&url), Auth::Cookie(&fay.cookie)).await;
    assert!(
        page.text.contains(r#"name="state" value="a&amp;b%41%""#),
        "{}",
        page.text
    );
    let reply = answer(&provider, &fay, &url, "approve", true).await;
    let back = query_of(&location(&reply));
    assert!(
        back.contains(&("state".into(), "a&b%41%".into())),
        "{back:?}"
    );
}
