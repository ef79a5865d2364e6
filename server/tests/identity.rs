//! The exchange identity API (`specs/nebulaecn-auth-api.txt`, `/api/v2/auth`)
//! on SQLite and PostgreSQL: sign-up by e-mail, sign-in and sign-out;
//! two-factor codes read by an independent TOTP implementation (PyPI's
//! `pyotp`) from the `otpauth://` URL in the QR code (read by zbar), asked of
//! every password sign-in and password change once on, each accepted once
//! (even by two requests at once), wrong ones throttled; the activity log of
//! every way in, filtered and paged; signed API keys (signatures computed
//! apart, by Python's `hmac`) calling only within their scopes, each nonce
//! once; and every refusal in the API's own format, `{"errors": [code],
//! "message"}`, changing nothing.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};

use common::{pyotp, session_cookie, zbar, Auth, Reply, Server, PASSWORD};

testdb::on_both_databases!(
    open_server;
    two_factor_codes_guard_every_password_sign_in,
    one_code_signs_in_once_even_in_a_race,
    wrong_codes_are_throttled,
    the_activity_log_records_every_way_in,
    bad_input_is_refused_in_the_apis_format_and_changes_nothing,
    signed_api_keys_call_within_their_scopes,
    what_the_review_found_stays_refused,
    withdrawals_past_the_allowance_ask_for_the_code,
    profiles_and_labels_are_the_persons_own,
    service_accounts_are_owned_and_reached_by_their_keys,
);

/// The stories whose mail goes to a real SMTP server (aiosmtpd).
mod mailed {
    use super::*;

    testdb::on_both_databases!(
        database_url;
        codes_by_mail_confirm_the_address_and_reset_the_password,
        phones_documents_and_data_storage_are_the_persons_own,
    );
}

async fn database_url(url: &str) -> String {
    url.to_string()
}

async fn open_server(url: &str) -> Server {
    Server::open(url).await
}

const AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0";

/// A browser of the identity API: its session cookie and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

/// A request of the identity API: form parameters (the spec's `formData`),
/// the browser's cookie and CSRF header when given.
async fn call(
    server: &Server,
    method: Method,
    path: &str,
    form: &[(&str, &str)],
    browser: Option<&Browser>,
) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("/api/v2/auth/{path}"))
        .header(header::USER_AGENT, AGENT)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(browser) = browser {
        request = request
            .header(header::COOKIE, &browser.cookie)
            .header("x-csrf-token", &browser.csrf);
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    server.send(request.body(Body::from(body)).unwrap()).await
}

/// The browser a sign-in or sign-up reply signed in.
fn browser_of(reply: &Reply) -> Browser {
    Browser {
        cookie: session_cookie(reply).expect("the reply signs the browser in"),
        csrf: reply.body["csrf_token"].as_str().unwrap().to_string(),
    }
}

fn assert_refused(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.body["errors"], json!([code]), "{}", reply.text);
    assert!(reply.body["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

async fn sign_up(server: &Server, email: &str) -> Browser {
    let reply = call(
        server,
        Method::POST,
        "identity/users",
        &[("email", email), ("password", PASSWORD)],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    browser_of(&reply)
}

async fn sign_in(server: &Server, email: &str, password: &str, code: Option<&str>) -> Reply {
    let mut form = vec![("email", email), ("password", password)];
    if let Some(code) = code {
        form.push(("otp_code", code));
    }
    call(server, Method::POST, "identity/sessions", &form, None).await
}

/// The authenticator app: the `otpauth://` URL it scanned, and the last
/// 30-second step whose code it gave (each code works once).
struct Authenticator {
    url: String,
    last_step: i64,
}

impl Authenticator {
    /// A code the server takes: of a step after the last one given, within
    /// one step of the server's clock. Computed (by pyotp) away from a step's
    /// edge, so the server sees the same step.
    async fn next_code(&mut self) -> String {
        loop {
            let now = engine::now_ms();
            let (step, into) = (now / 30_000, now % 30_000);
            if into > 27_000 {
                tokio::time::sleep(Duration::from_millis(30_500 - into as u64)).await;
                continue;
            }
            let wanted = (self.last_step + 1).max(step - 1);
            if wanted > step + 1 {
                tokio::time::sleep(Duration::from_millis(30_500 - into as u64)).await;
                continue;
            }
            self.last_step = wanted;
            return pyotp(&self.url, wanted * 30);
        }
    }

    /// A code that is wrong now (of a step far away).
    fn wrong_code(&self) -> String {
        pyotp(&self.url, engine::now_ms() / 1000 - 3600)
    }
}

/// Turns two-factor codes on for the browser's account, as a person would:
/// the QR code read by zbar, the code from pyotp.
async fn enable_two_factor(server: &Server, browser: &Browser) -> Authenticator {
    let reply = call(
        server,
        Method::POST,
        "resource/otp/generate_qrcode",
        &[],
        Some(browser),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let url = reply.body["data"]["url"].as_str().unwrap().to_string();
    use base64::Engine as _;
    let png = base64::engine::general_purpose::STANDARD
        .decode(reply.body["data"]["barcode"].as_str().unwrap())
        .unwrap();
    assert_eq!(zbar(&png), url, "the QR code holds the otpauth URL");
    assert!(url.starts_with("otpauth://totp/Ampere:"), "{url}");
    let mut app = Authenticator { url, last_step: 0 };
    let code = app.next_code().await;
    let enabled = call(
        server,
        Method::POST,
        "resource/otp/enable",
        &[("code", &code)],
        Some(browser),
    )
    .await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.text);
    app
}

async fn me(server: &Server, browser: &Browser) -> Reply {
    call(server, Method::GET, "resource/users/me", &[], Some(browser)).await
}

async fn two_factor_codes_guard_every_password_sign_in(server: Server) {
    let alice = sign_up(&server, "alice@example.com").await;
    let profile = me(&server, &alice).await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.text);
    assert_eq!(profile.body["email"], "alice@example.com");
    assert_eq!(profile.body["username"], "alice");
    assert_eq!(profile.body["otp"], false);
    assert_eq!(profile.body["state"], "active");

    // The QR code's secret is refused without a code of it, or a wrong one.
    let reply = call(
        &server,
        Method::POST,
        "resource/otp/generate_qrcode",
        &[],
        Some(&alice),
    )
    .await;
    let url = reply.body["data"]["url"].as_str().unwrap().to_string();
    let wrong = pyotp(&url, engine::now_ms() / 1000 - 3600);
    let refused = call(
        &server,
        Method::POST,
        "resource/otp/enable",
        &[("code", &wrong)],
        Some(&alice),
    )
    .await;
    assert_refused(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.otp.invalid_otp",
    );
    assert_eq!(me(&server, &alice).await.body["otp"], false);
    // Without the CSRF token, a cookie cannot start or switch anything.
    let forged = Browser {
        cookie: alice.cookie.clone(),
        csrf: "0".repeat(32),
    };
    let reply = call(
        &server,
        Method::POST,
        "resource/otp/generate_qrcode",
        &[],
        Some(&forged),
    )
    .await;
    assert_refused(&reply, StatusCode::FORBIDDEN, "authz.access_denied");
    assert!(reply.text.contains("CSRF"), "{}", reply.text);

    let mut app = enable_two_factor(&server, &alice).await;
    assert_eq!(me(&server, &alice).await.body["otp"], true);
    // On: no second secret, no second enabling.
    let again = call(
        &server,
        Method::POST,
        "resource/otp/generate_qrcode",
        &[],
        Some(&alice),
    )
    .await;
    assert_refused(&again, StatusCode::BAD_REQUEST, "resource.otp.conflict");

    // Signing in: a wrong password says nothing of codes; a right one asks.
    let reply = sign_in(&server, "alice@example.com", "Wrong-horse-7", None).await;
    assert_refused(
        &reply,
        StatusCode::UNAUTHORIZED,
        "identity.session.invalid_params",
    );
    let reply = sign_in(&server, "alice@example.com", PASSWORD, None).await;
    assert_refused(
        &reply,
        StatusCode::UNAUTHORIZED,
        "identity.session.missing_otp",
    );
    assert!(session_cookie(&reply).is_none());
    let reply = sign_in(
        &server,
        "alice@example.com",
        PASSWORD,
        Some(&app.wrong_code()),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "identity.session.invalid_otp",
    );
    let code = app.next_code().await;
    let reply = sign_in(&server, "ALICE@example.com", PASSWORD, Some(&code)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let phone = browser_of(&reply);
    assert_eq!(me(&server, &phone).await.body["otp"], true);
    // The same code a second time: refused, even with the right password.
    let reply = sign_in(&server, "alice@example.com", PASSWORD, Some(&code)).await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "identity.session.invalid_otp",
    );
    assert!(reply.body["message"]
        .as_str()
        .unwrap()
        .contains("used already"));

    // Every other password sign-in asks too: LNbits, myLightning, LN-Markets.
    for (path, body) in [
        (
            "/api/v1/auth",
            json!({"username": "alice", "password": PASSWORD}),
        ),
        (
            "/rest/v1/login",
            json!({"username": "alice", "password": PASSWORD}),
        ),
        (
            "/lnm/login/credentials",
            json!({"login": "alice", "password": PASSWORD}),
        ),
    ] {
        let reply = server.post_json(path, &body.to_string(), None).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{path}: {}",
            reply.text
        );
        assert!(reply.text.contains("two-factor"), "{path}: {}", reply.text);
        assert!(session_cookie(&reply).is_none(), "{path}");
    }
    let code = app.next_code().await;
    let reply = server
        .post_json(
            "/api/v1/auth",
            &json!({"username": "alice", "password": PASSWORD, "otp_code": code}).to_string(),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let token = reply.body["access_token"].as_str().unwrap().to_string();

    // Verifying a code: a fresh one is right; the one just used is not.
    let reply = call(
        &server,
        Method::POST,
        "resource/otp/verify",
        &[("code", &code)],
        Some(&alice),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.otp.invalid_otp",
    );

    // Changing the password asks for a code; it ends every session and token.
    let new_password = "Fresh-battery-42";
    let change = |code: Option<String>| {
        let (server, alice) = (&server, &alice);
        async move {
            let mut form = vec![
                ("old_password", PASSWORD.to_string()),
                ("new_password", new_password.to_string()),
                ("confirm_password", new_password.to_string()),
            ];
            if let Some(code) = code {
                form.push(("otp_code", code));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            call(
                server,
                Method::PUT,
                "resource/users/password",
                &form,
                Some(alice),
            )
            .await
        }
    };
    let reply = change(None).await;
    assert_refused(
        &reply,
        StatusCode::UNAUTHORIZED,
        "resource.password.missing_otp",
    );
    let reply = change(Some(app.next_code().await)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    for browser in [&alice, &phone] {
        assert_refused(
            &me(&server, browser).await,
            StatusCode::UNAUTHORIZED,
            "authz.invalid_session",
        );
    }
    let reply = server
        .get("/api/v2/auth/resource/users/me", Auth::Bearer(&token))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);

    // Switching codes off takes a code; then a password alone signs in.
    let code = app.next_code().await;
    let reply = sign_in(&server, "alice@example.com", new_password, Some(&code)).await;
    let alice = browser_of(&reply);
    let reply = call(
        &server,
        Method::POST,
        "resource/otp/disable",
        &[("code", &app.wrong_code())],
        Some(&alice),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.otp.invalid_otp",
    );
    let code = app.next_code().await;
    let reply = call(
        &server,
        Method::POST,
        "resource/otp/disable",
        &[("code", &code)],
        Some(&alice),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(me(&server, &alice).await.body["otp"], false);
    let reply = sign_in(&server, "alice@example.com", new_password, None).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);

    // Signing out: 204, the session gone; again: 404.
    let reply = call(
        &server,
        Method::DELETE,
        "identity/sessions",
        &[],
        Some(&alice),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    assert_refused(
        &me(&server, &alice).await,
        StatusCode::UNAUTHORIZED,
        "authz.invalid_session",
    );
    let reply = call(
        &server,
        Method::DELETE,
        "identity/sessions",
        &[],
        Some(&alice),
    )
    .await;
    assert_refused(&reply, StatusCode::NOT_FOUND, "identity.session.not_found");
}

async fn one_code_signs_in_once_even_in_a_race(server: Server) {
    let bob = sign_up(&server, "bob@example.com").await;
    let mut app = enable_two_factor(&server, &bob).await;
    let code = app.next_code().await;
    let server = std::sync::Arc::new(server);
    let racers: Vec<_> = (0..6)
        .map(|_| {
            let (server, code) = (server.clone(), code.clone());
            tokio::spawn(
                async move { sign_in(&server, "bob@example.com", PASSWORD, Some(&code)).await },
            )
        })
        .collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap().status);
    }
    let signed_in = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(signed_in, 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [
            StatusCode::CREATED,
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::TOO_MANY_REQUESTS
        ]
        .contains(s)),
        "{statuses:?}"
    );
}

async fn wrong_codes_are_throttled(server: Server) {
    let carol = sign_up(&server, "carol@example.com").await;
    let mut app = enable_two_factor(&server, &carol).await;
    // The tests' servers allow 3 failures a minute per account.
    for _ in 0..3 {
        let reply = call(
            &server,
            Method::POST,
            "resource/otp/verify",
            &[("code", &app.wrong_code())],
            Some(&carol),
        )
        .await;
        assert_refused(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "resource.otp.invalid_otp",
        );
    }
    let right = app.next_code().await;
    let reply = call(
        &server,
        Method::POST,
        "resource/otp/verify",
        &[("code", &right)],
        Some(&carol),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::TOO_MANY_REQUESTS,
        "resource.otp.too_many_attempts",
    );
    assert!(reply.headers.contains_key(header::RETRY_AFTER));
    // Signing in counts its own wrong codes (so a session's cannot keep the
    // owner out): the right one still signs in, and guessing there is
    // throttled alike.
    let reply = sign_in(&server, "carol@example.com", PASSWORD, Some(&right)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    for _ in 0..3 {
        let reply = sign_in(
            &server,
            "carol@example.com",
            PASSWORD,
            Some(&app.wrong_code()),
        )
        .await;
        assert_refused(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "identity.session.invalid_otp",
        );
    }
    let reply = sign_in(
        &server,
        "carol@example.com",
        PASSWORD,
        Some(&app.next_code().await),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::TOO_MANY_REQUESTS,
        "identity.session.too_many_attempts",
    );
    assert!(session_cookie(&reply).is_none());
}

async fn the_activity_log_records_every_way_in(server: Server) {
    let dave = sign_up(&server, "dave@example.com").await;
    let reply = sign_in(&server, "dave@example.com", "Wrong-horse-7", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let mut app = enable_two_factor(&server, &dave).await;
    let reply = sign_in(&server, "dave@example.com", PASSWORD, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let code = app.next_code().await;
    let reply = sign_in(&server, "dave@example.com", PASSWORD, Some(&code)).await;
    let laptop = browser_of(&reply);
    let reply = call(
        &server,
        Method::DELETE,
        "identity/sessions",
        &[],
        Some(&laptop),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    // Another account's attempts are its own.
    sign_up(&server, "erin@example.com").await;
    let reply = sign_in(&server, "erin@example.com", "Wrong-horse-7", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    let log = |query: &str| {
        let (server, dave) = (&server, &dave);
        let path = format!("resource/users/activity/{query}");
        async move { call(server, Method::GET, &path, &[], Some(dave)).await }
    };
    let all = log("all").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    let rows = all.body.as_array().unwrap();
    let seen: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["topic"].as_str().unwrap(),
                r["action"].as_str().unwrap(),
                r["result"].as_str().unwrap(),
            )
        })
        .collect();
    // Newest first.
    assert_eq!(
        seen,
        [
            ("session", "logout", "succeed"),
            ("session", "login", "succeed"),
            ("session", "login", "denied"),
            ("otp", "enable", "succeed"),
            ("session", "login", "failed"),
        ],
        "{}",
        all.text
    );
    for row in rows {
        assert_eq!(row["user_agent"], AGENT);
        assert_eq!(row["user_ip"], "local");
        assert!(row["created_at"].as_str().unwrap().ends_with('Z'));
        assert!(row["id"].as_i64().is_some());
    }
    assert!(!all.text.contains(PASSWORD) && !all.text.contains("Wrong-horse-7"));
    assert!(!all.text.contains(&code));
    assert_eq!(all.headers["total"], "5");

    let sessions = log("session?result=failed").await;
    assert_eq!(
        sessions.body.as_array().unwrap().len(),
        1,
        "{}",
        sessions.text
    );
    let otp = log("otp").await;
    assert_eq!(otp.body.as_array().unwrap().len(), 1, "{}", otp.text);
    let page = log("all?limit=2&page=2").await;
    let page_rows = page.body.as_array().unwrap();
    assert_eq!(page_rows.len(), 2);
    assert_eq!(page_rows[0]["id"], rows[2]["id"]);
    assert_eq!(
        (
            &page.headers["total"],
            &page.headers["page"],
            &page.headers["per-page"]
        ),
        (
            &"5".parse().unwrap(),
            &"2".parse().unwrap(),
            &"2".parse().unwrap()
        )
    );
    let later = engine::now_ms() / 1000 + 60;
    let none = log(&format!("all?time_from={later}")).await;
    assert_eq!(none.body, json!([]), "{}", none.text);
    let before = log(&format!("all?time_to={later}")).await;
    assert_eq!(before.body.as_array().unwrap().len(), 5);

    for bad in [
        "everything",
        "all?result=won",
        "all?limit=101",
        "all?limit=0",
        "all?page=x",
        "all?time_from=-1",
    ] {
        let reply = log(bad).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            reply.text
        );
        assert!(
            reply.body["errors"][0]
                .as_str()
                .unwrap()
                .starts_with("resource.user."),
            "{bad}"
        );
    }
    let stranger = server
        .get("/api/v2/auth/resource/users/activity/all", Auth::None)
        .await;
    assert_refused(&stranger, StatusCode::UNAUTHORIZED, "authz.invalid_session");
}

async fn bad_input_is_refused_in_the_apis_format_and_changes_nothing(server: Server) {
    // The public routes.
    let ping = server.get("/api/v2/auth/identity/ping", Auth::None).await;
    assert_eq!(ping.body, json!({"ping": "pong"}));
    let time = server.get("/api/v2/auth/public/time", Auth::None).await;
    let now = engine::now_ms() / 1000;
    assert!(
        (time.body["time"].as_i64().unwrap() - now).abs() <= 2,
        "{}",
        time.text
    );
    let version = server
        .get("/api/v2/auth/identity/version", Auth::None)
        .await;
    assert_eq!(version.body["version"], env!("CARGO_PKG_VERSION"));
    let configs = server
        .get("/api/v2/auth/identity/configs", Auth::None)
        .await;
    assert_eq!(configs.body["captcha_type"], "none");
    let geetest = server
        .get("/api/v2/auth/identity/users/register_geetest", Auth::None)
        .await;
    assert_eq!(geetest.body["captcha_type"], "none");
    let weak = call(
        &server,
        Method::POST,
        "identity/password/validate",
        &[("password", "Password123")],
        None,
    )
    .await;
    let strong = call(
        &server,
        Method::POST,
        "public/password/validate",
        &[("password", "Violet-otter-canoe-91")],
        None,
    )
    .await;
    assert_eq!(weak.status, StatusCode::CREATED);
    assert_eq!(
        (weak.body["strong"].clone(), strong.body["strong"].clone()),
        (json!(false), json!(true))
    );
    assert!(weak.body["entropy"].as_u64().unwrap() < strong.body["entropy"].as_u64().unwrap());
    assert!(weak.body["warning"].is_string(), "{}", weak.text);

    let users = server.user_count().await;
    // Parameters: missing, a JSON body that is no object, a weak password,
    // a malformed address, data that is no object, an unknown referrer.
    let reply = call(
        &server,
        Method::POST,
        "identity/users",
        &[("password", PASSWORD)],
        None,
    )
    .await;
    assert_refused(&reply, StatusCode::BAD_REQUEST, "missing_email");
    let reply = server
        .post_json("/api/v2/auth/identity/users", "[1, 2]", None)
        .await;
    assert_refused(&reply, StatusCode::BAD_REQUEST, "invalid_params");
    for (form, code) in [
        (
            vec![("email", "frank@example.com"), ("password", "Password123")],
            "identity.user.invalid_password",
        ),
        (
            vec![("email", "frank@@example"), ("password", PASSWORD)],
            "identity.user.invalid_email",
        ),
        (
            vec![
                ("email", "frank@example.com"),
                ("password", PASSWORD),
                ("data", "[1]"),
            ],
            "identity.user.invalid_data",
        ),
        (
            vec![
                ("email", "frank@example.com"),
                ("password", PASSWORD),
                ("refid", "nobody"),
            ],
            "identity.user.invalid_refid",
        ),
    ] {
        let reply = call(&server, Method::POST, "identity/users", &form, None).await;
        assert_refused(&reply, StatusCode::UNPROCESSABLE_ENTITY, code);
        assert!(session_cookie(&reply).is_none());
    }
    assert_eq!(server.user_count().await, users, "nothing was made");

    // JSON works as well as a form; data and referrer are kept.
    let grace = sign_up(&server, "grace@example.com").await;
    let grace_uid = me(&server, &grace).await.body["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = server
        .post_json(
            "/api/v2/auth/identity/users",
            &json!({"email": "heidi@example.com", "password": PASSWORD, "username": "heidi_h",
                    "refid": grace_uid, "data": "{\"language\":\"de\"}"})
            .to_string(),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body["username"], "heidi_h");
    assert_eq!(reply.body["referral_uid"], grace_uid.as_str());
    assert_eq!(reply.body["data"], "{\"language\":\"de\"}");
    let heidi = browser_of(&reply);
    // The same address again, in another case: taken.
    let reply = call(
        &server,
        Method::POST,
        "identity/users",
        &[("email", "HEIDI@example.com"), ("password", PASSWORD)],
        None,
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "identity.user.email_taken",
    );

    // The user's data: replaced by a JSON object only.
    let reply = call(
        &server,
        Method::PUT,
        "resource/users/me",
        &[("data", "{\"country\":\"CH\"}")],
        Some(&heidi),
    )
    .await;
    assert_eq!(reply.body["data"], "{\"country\":\"CH\"}", "{}", reply.text);
    let reply = call(
        &server,
        Method::PUT,
        "resource/users/me",
        &[("data", "not json")],
        Some(&heidi),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.user.invalid_data",
    );
    assert_eq!(
        me(&server, &heidi).await.body["data"],
        "{\"country\":\"CH\"}"
    );

    // A password change whose confirmation differs changes nothing.
    let reply = call(
        &server,
        Method::PUT,
        "resource/users/password",
        &[
            ("old_password", PASSWORD),
            ("new_password", "Fresh-battery-42"),
            ("confirm_password", "Fresh-battery-43"),
        ],
        Some(&heidi),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.password.doesnt_match",
    );
    assert_eq!(me(&server, &heidi).await.status, StatusCode::OK);
    // A weak new password: refused, the session stands.
    let reply = call(
        &server,
        Method::PUT,
        "resource/users/password",
        &[
            ("old_password", PASSWORD),
            ("new_password", "Password123"),
            ("confirm_password", "Password123"),
        ],
        Some(&heidi),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.password.invalid_new_password",
    );
    assert_eq!(me(&server, &heidi).await.status, StatusCode::OK);

    // An ACL token may call what its patterns allow, never two-factor settings.
    let acl = server
        .call(
            Method::POST,
            "/api/v1/auth/acls",
            Auth::Cookie(&heidi.cookie),
            Some(&json!({"name": "two-factor and closing", "_csrf": heidi.csrf, "allowed_endpoints": [
                "POST /api/v2/auth/resource/otp/*",
                "DELETE /api/v2/auth/resource/users/me",
            ]}).to_string()),
        )
        .await;
    assert_eq!(acl.status, StatusCode::CREATED, "{}", acl.text);
    let acl_id = acl.body["id"].as_str().unwrap();
    let token = server
        .call(
            Method::POST,
            &format!("/api/v1/auth/acls/{acl_id}/tokens?_csrf={}", heidi.csrf),
            Auth::Cookie(&heidi.cookie),
            None,
        )
        .await;
    let token = token.body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", token.text))
        .to_string();
    let reply = server
        .call(
            Method::POST,
            "/api/v2/auth/resource/otp/generate_qrcode",
            Auth::Bearer(&token),
            None,
        )
        .await;
    assert_refused(&reply, StatusCode::FORBIDDEN, "authz.access_denied");
    // Closing the account takes its password, from any credential.
    let reply = server
        .call(
            Method::DELETE,
            "/api/v2/auth/resource/users/me?password=Wrong-horse-7",
            Auth::Bearer(&token),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    let close = |password: &str| {
        let path = format!("/api/v2/auth/resource/users/me?password={password}");
        let heidi = &heidi;
        let server = &server;
        async move {
            let request = Request::builder()
                .method(Method::DELETE)
                .uri(path)
                .header(header::COOKIE, &heidi.cookie)
                .header("x-csrf-token", &heidi.csrf)
                .body(Body::empty())
                .unwrap();
            server.send(request).await
        }
    };
    let reply = close("Wrong-horse-7").await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.user.invalid_password",
    );
    let reply = close(PASSWORD).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let reply = sign_in(&server, "heidi@example.com", PASSWORD, None).await;
    assert_refused(
        &reply,
        StatusCode::UNAUTHORIZED,
        "identity.session.invalid_params",
    );

    // Without a credential: 401 in the API's format.
    let reply = server
        .get("/api/v2/auth/resource/users/me", Auth::None)
        .await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "authz.invalid_session");
}

/// A request signed with an API key as a client library would sign it: the
/// signature computed apart (Python's `hmac`), the nonce `age_ms` old.
struct Key {
    kid: String,
    secret: String,
}

fn python_hmac(secret: &str, message: &str) -> String {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, hmac, hashlib; print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())",
            secret,
            message,
        ])
        .output()
        .expect("the test venv's python");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn signed(
    server: &Server,
    key: &Key,
    method: Method,
    path: &str,
    body: Option<Value>,
    nonce: i64,
    signature: Option<String>,
) -> Reply {
    let nonce = nonce.to_string();
    let signature =
        signature.unwrap_or_else(|| python_hmac(&key.secret, &format!("{nonce}{}", key.kid)));
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("x-auth-apikey", &key.kid)
        .header("x-auth-nonce", &nonce)
        .header("x-auth-signature", signature);
    let body = match body {
        Some(body) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    server.send(request.body(body).unwrap()).await
}

async fn make_key(server: &Server, browser: &Browser, scope: &str, code: Option<&str>) -> Reply {
    let mut form = vec![("algorithm", "HS256"), ("scope", scope)];
    if let Some(code) = code {
        form.push(("totp_code", code));
    }
    call(
        server,
        Method::POST,
        "resource/api_keys",
        &form,
        Some(browser),
    )
    .await
}

fn key_of(reply: &Reply) -> Key {
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    Key {
        kid: reply.body["kid"].as_str().unwrap().to_string(),
        secret: reply.body["secret"].as_str().unwrap().to_string(),
    }
}

async fn signed_api_keys_call_within_their_scopes(server: Server) {
    let ivan = sign_up(&server, "ivan@example.com").await;
    let now = engine::now_ms;

    // Bad keys are refused and none is made.
    let reply = call(
        &server,
        Method::POST,
        "resource/api_keys",
        &[("algorithm", "RS256")],
        Some(&ivan),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.api_key.invalid_algorithm",
    );
    let reply = make_key(&server, &ivan, "[\"admin\"]", None).await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.api_key.invalid_scope",
    );
    let reply = call(
        &server,
        Method::POST,
        "resource/api_keys",
        &[("scope", "read")],
        Some(&ivan),
    )
    .await;
    assert_refused(&reply, StatusCode::BAD_REQUEST, "missing_algorithm");

    let reader = make_key(&server, &ivan, "read", None).await;
    assert_eq!(reader.body["scope"], json!(["read"]));
    assert_eq!(reader.body["algorithm"], "HS256");
    assert_eq!(reader.body["state"], "active");
    let reader = key_of(&reader);
    let payer = key_of(&make_key(&server, &ivan, "wallet", None).await);
    let trader = key_of(&make_key(&server, &ivan, "[\"trade\"]", None).await);

    // A read key reads every API, and writes nowhere.
    let me = signed(
        &server,
        &reader,
        Method::GET,
        "/api/v2/auth/resource/users/me",
        None,
        now(),
        None,
    )
    .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["email"], "ivan@example.com");
    let wallet = signed(
        &server,
        &reader,
        Method::GET,
        "/rest/v1/getalldata",
        None,
        now(),
        None,
    )
    .await;
    assert_eq!(wallet.status, StatusCode::OK, "{}", wallet.text);
    let invoice = json!({"amount": 1000, "memo": "key"});
    let refused = signed(
        &server,
        &reader,
        Method::POST,
        "/rest/v1/createinvoice",
        Some(invoice.clone()),
        now(),
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert!(refused.text.contains("wallet"), "{}", refused.text);
    // The wallet scope writes the wallet, not the exchange; trade the reverse.
    let paid = signed(
        &server,
        &payer,
        Method::POST,
        "/rest/v1/createinvoice",
        Some(invoice.clone()),
        now(),
        None,
    )
    .await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.text);
    assert!(paid.body["payment_request"]
        .as_str()
        .unwrap()
        .starts_with("lnbcrt"));
    let deposit = json!({"amount": 1000});
    let refused = signed(
        &server,
        &payer,
        Method::POST,
        "/lnm/user/deposit",
        Some(deposit.clone()),
        now(),
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let deposited = signed(
        &server,
        &trader,
        Method::POST,
        "/lnm/user/deposit",
        Some(deposit),
        now(),
        None,
    )
    .await;
    assert_eq!(deposited.status, StatusCode::OK, "{}", deposited.text);
    let refused = signed(
        &server,
        &trader,
        Method::POST,
        "/rest/v1/createinvoice",
        Some(invoice),
        now(),
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    // No key manages keys, two-factor codes or the account, whatever its scopes.
    for (method, path) in [
        (Method::GET, "/api/v2/auth/resource/api_keys"),
        (Method::POST, "/api/v2/auth/resource/api_keys"),
        (Method::POST, "/api/v2/auth/resource/otp/generate_qrcode"),
        (Method::GET, "/api/v1/auth/acls"),
        (
            Method::DELETE,
            "/api/v2/auth/resource/users/me?password=Correct-horse-7",
        ),
    ] {
        let reply = signed(&server, &payer, method.clone(), path, None, now(), None).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            reply.text
        );
    }
    assert_eq!(me_by_key(&server, &reader).await, StatusCode::OK);

    // A signed request works once, near the server's clock, with its own
    // signature, for a key that is there and active.
    let nonce = now();
    let once = signed(
        &server,
        &reader,
        Method::GET,
        "/api/v2/auth/resource/users/me",
        None,
        nonce,
        None,
    )
    .await;
    assert_eq!(once.status, StatusCode::OK);
    let replayed = signed(
        &server,
        &reader,
        Method::GET,
        "/api/v2/auth/resource/users/me",
        None,
        nonce,
        None,
    )
    .await;
    assert_refused(&replayed, StatusCode::UNAUTHORIZED, "authz.invalid_session");
    for stale in [now() - 31_000, now() + 31_000] {
        let reply = signed(
            &server,
            &reader,
            Method::GET,
            "/api/v2/auth/resource/users/me",
            None,
            stale,
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    }
    let nonce = now();
    let other_data = python_hmac(&reader.secret, &format!("{}{nonce}", reader.kid));
    let reply = signed(
        &server,
        &reader,
        Method::GET,
        "/api/v2/auth/resource/users/me",
        None,
        nonce,
        Some(other_data),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    let other_secret = python_hmac(&payer.secret, &format!("{nonce}{}", reader.kid));
    let reply = signed(
        &server,
        &reader,
        Method::GET,
        "/api/v2/auth/resource/users/me",
        None,
        nonce,
        Some(other_secret),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    // The rejected signature did not use the nonce up.
    let reply = signed(
        &server,
        &reader,
        Method::GET,
        "/api/v2/auth/resource/users/me",
        None,
        nonce,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);

    // The list: every key, never a secret; a page at a time.
    let list = call(
        &server,
        Method::GET,
        "resource/api_keys?limit=2",
        &[],
        Some(&ivan),
    )
    .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body.as_array().unwrap().len(), 2);
    assert_eq!(list.headers["total"], "3");
    assert!(!list.text.contains(&reader.secret) && !list.text.contains("secret"));

    // Disabled: refused at once; active again: works; deleted: gone.
    let path = format!("resource/api_keys/{}", reader.kid);
    let reply = call(
        &server,
        Method::PATCH,
        &path,
        &[("state", "disabled")],
        Some(&ivan),
    )
    .await;
    assert_eq!(reply.body["state"], "disabled", "{}", reply.text);
    assert_eq!(me_by_key(&server, &reader).await, StatusCode::UNAUTHORIZED);
    let reply = call(
        &server,
        Method::PATCH,
        &path,
        &[("state", "asleep")],
        Some(&ivan),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.api_key.invalid_state",
    );
    let reply = call(
        &server,
        Method::PATCH,
        &path,
        &[("state", "active"), ("scope", "read,wallet")],
        Some(&ivan),
    )
    .await;
    assert_eq!(
        reply.body["scope"],
        json!(["read", "wallet"]),
        "{}",
        reply.text
    );
    assert_eq!(me_by_key(&server, &reader).await, StatusCode::OK);
    let reply = call(&server, Method::DELETE, &path, &[], Some(&ivan)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    assert_eq!(me_by_key(&server, &reader).await, StatusCode::UNAUTHORIZED);
    let reply = call(&server, Method::DELETE, &path, &[], Some(&ivan)).await;
    assert_refused(&reply, StatusCode::NOT_FOUND, "resource.api_key.not_found");

    // Another account's key is not found, whatever is asked of it.
    let judy = sign_up(&server, "judy@example.com").await;
    let path = format!("resource/api_keys/{}", payer.kid);
    let reply = call(
        &server,
        Method::PATCH,
        &path,
        &[("state", "disabled")],
        Some(&judy),
    )
    .await;
    assert_refused(&reply, StatusCode::NOT_FOUND, "resource.api_key.not_found");
    let reply = call(&server, Method::DELETE, &path, &[], Some(&judy)).await;
    assert_refused(&reply, StatusCode::NOT_FOUND, "resource.api_key.not_found");
    assert_eq!(me_by_key(&server, &payer).await, StatusCode::OK);

    // With two-factor on, managing keys takes a code.
    let mut app = enable_two_factor(&server, &ivan).await;
    let reply = make_key(&server, &ivan, "read", None).await;
    assert_refused(
        &reply,
        StatusCode::UNAUTHORIZED,
        "resource.api_key.missing_otp",
    );
    let reply = make_key(&server, &ivan, "read", Some(&app.wrong_code())).await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.api_key.invalid_otp",
    );
    let code = app.next_code().await;
    key_of(&make_key(&server, &ivan, "read", Some(&code)).await);
    let path = format!("resource/api_keys/{}?totp_code=", payer.kid);
    let reply = call(&server, Method::DELETE, &path, &[], Some(&ivan)).await;
    assert_refused(
        &reply,
        StatusCode::UNAUTHORIZED,
        "resource.api_key.missing_otp",
    );
    assert_eq!(me_by_key(&server, &payer).await, StatusCode::OK);

    // The activity log names every change, refused ones too.
    let log = call(
        &server,
        Method::GET,
        "resource/users/activity/api_keys",
        &[],
        Some(&ivan),
    )
    .await;
    let actions: Vec<(&str, &str)> = log
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["action"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert_eq!(actions.first(), Some(&("delete", "denied")), "{}", log.text);
    assert!(actions.contains(&("create", "succeed")) && actions.contains(&("update", "succeed")));
    assert!(actions.contains(&("create", "failed")), "{}", log.text);
    assert!(!log.text.contains(&payer.secret));
}

async fn me_by_key(server: &Server, key: &Key) -> StatusCode {
    signed(
        server,
        key,
        Method::GET,
        "/api/v2/auth/resource/users/me",
        None,
        engine::now_ms(),
        None,
    )
    .await
    .status
}

/// What an outside review found, each shown refused: a key calling the pages'
/// own functions or changing the password; a key outliving a password
/// change; a stolen session's wrong codes keeping the owner out; an account
/// deleted without its code; a flood of password judging.
async fn what_the_review_found_stays_refused(server: Server) {
    let kate = sign_up(&server, "kate@example.com").await;
    let wallet_key = key_of(&make_key(&server, &kate, "wallet", None).await);
    let now = engine::now_ms;
    for (method, path, body) in [
        (
            Method::POST,
            "/api/ui/desk/close",
            json!({"pid": "x", "csrf": "x"}),
        ),
        (
            Method::POST,
            "/api/ui/change_password",
            json!({"old_password": PASSWORD, "new_password": "Fresh-battery-42", "csrf": "x"}),
        ),
        (
            Method::PUT,
            "/api/v1/auth/update-password",
            json!({"old_password": PASSWORD, "new_password": "Fresh-battery-42"}),
        ),
    ] {
        let reply = signed(
            &server,
            &wallet_key,
            method.clone(),
            path,
            Some(body),
            now(),
            None,
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            reply.text
        );
        assert!(session_cookie(&reply).is_none());
    }
    assert_eq!(me_by_key(&server, &wallet_key).await, StatusCode::OK);

    // A new password switches the account's keys off (the owner may switch
    // them on again).
    let reply = call(
        &server,
        Method::PUT,
        "resource/users/password",
        &[
            ("old_password", PASSWORD),
            ("new_password", "Fresh-battery-42"),
            ("confirm_password", "Fresh-battery-42"),
        ],
        Some(&kate),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(
        me_by_key(&server, &wallet_key).await,
        StatusCode::UNAUTHORIZED
    );
    let kate = browser_of(&sign_in(&server, "kate@example.com", "Fresh-battery-42", None).await);
    let list = call(&server, Method::GET, "resource/api_keys", &[], Some(&kate)).await;
    assert_eq!(list.body[0]["state"], "disabled", "{}", list.text);

    // A session failing codes (a thief's) does not keep the owner from
    // signing in with the password and a code.
    let mut app = enable_two_factor(&server, &kate).await;
    for _ in 0..4 {
        let reply = make_key(&server, &kate, "read", Some(&app.wrong_code())).await;
        assert!([
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::TOO_MANY_REQUESTS
        ]
        .contains(&reply.status));
    }
    let reply = make_key(&server, &kate, "read", Some(&app.next_code().await)).await;
    assert_refused(
        &reply,
        StatusCode::TOO_MANY_REQUESTS,
        "resource.api_key.too_many_attempts",
    );
    let code = app.next_code().await;
    let reply = sign_in(&server, "kate@example.com", "Fresh-battery-42", Some(&code)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let owner = browser_of(&reply);

    // Deleting the account takes the code on every route.
    let token = server
        .post_json(
            "/api/v1/auth",
            &json!({"username": "kate", "password": "Fresh-battery-42", "otp_code": app.next_code().await}).to_string(),
            None,
        )
        .await;
    let token = token.body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", token.text))
        .to_string();
    let reply = server
        .call(
            Method::DELETE,
            "/api/v1/auth/me",
            Auth::Bearer(&token),
            Some(&json!({}).to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert!(reply.text.contains("two-factor"), "{}", reply.text);
    assert_eq!(me(&server, &owner).await.status, StatusCode::OK);

    // Judging passwords is throttled per client address (30 a minute).
    let mut statuses = Vec::new();
    for _ in 0..31 {
        let reply = call(
            &server,
            Method::POST,
            "identity/password/validate",
            &[("password", "Violet-otter-canoe-91")],
            None,
        )
        .await;
        statuses.push(reply.status);
    }
    assert!(
        statuses[..30].iter().all(|s| *s == StatusCode::CREATED),
        "{statuses:?}"
    );
    assert_eq!(statuses[30], StatusCode::TOO_MANY_REQUESTS);
}

/// A wallet call of the browser (JSON, the CSRF header), `Idempotency-Key`
/// when given. Money leaving a browser also takes the password (the account
/// re-checks it, as new accounts do).
async fn wallet_call(
    server: &Server,
    browser: &Browser,
    path: &str,
    body: Value,
    key: Option<&str>,
) -> Reply {
    let mut request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::COOKIE, &browser.cookie)
        .header("x-csrf-token", &browser.csrf);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    server
        .send(request.body(Body::from(body.to_string())).unwrap())
        .await
}

/// Funds the account's wallet and opens its channel to the hub (and the hub's
/// back), as the demo mode does for a new account.
async fn with_funds(server: &Server, browser: &Browser) {
    let uid = me(server, browser).await.body["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let simnet = &server.services.engine.simnet;
    simnet.demo_setup(&uid).await.unwrap();
    simnet.mine(6).await.unwrap();
}

/// Lightning funds of the browser's wallet, sats.
async fn lightning_sats(server: &Server, browser: &Browser) -> i64 {
    let data = server
        .get("/rest/v1/getalldata", Auth::Cookie(&browser.cookie))
        .await;
    data.body["balances"]["lntfunds"].as_i64().unwrap()
}

/// An account with two-factor codes on withdraws up to the day's allowance
/// (100,000 sats by default) without a code, however it is split and even in
/// a race; past it each withdrawal asks for a code, every way money leaves
/// (wallet payments, QuickPay, the desk's withdrawals and withdraw links); a
/// failed withdrawal gives its share back; money moving between the
/// account's own balances asks nothing.
async fn withdrawals_past_the_allowance_ask_for_the_code(server: Server) {
    let nina = sign_up(&server, "nina@example.com").await;
    let otto = sign_up(&server, "otto@example.com").await;
    with_funds(&server, &nina).await;
    with_funds(&server, &otto).await;
    let invoice = |sats: i64| {
        let (server, otto) = (&server, &otto);
        async move {
            let reply = wallet_call(
                server,
                otto,
                "/rest/v1/createinvoice",
                json!({"amount": sats, "memo": "rent"}),
                None,
            )
            .await;
            reply.body["payment_request"]
                .as_str()
                .unwrap_or_else(|| panic!("{}", reply.text))
                .to_string()
        }
    };
    let pay = |invoice: String, code: Option<String>, key: Option<&'static str>| {
        let (server, nina) = (&server, &nina);
        async move {
            let mut body = json!({"invoiceid": invoice, "password": PASSWORD});
            if let Some(code) = code {
                body["otp_code"] = json!(code);
            }
            wallet_call(server, nina, "/rest/v1/sendinvoice", body, key).await
        }
    };
    let paid = |reply: &Reply| reply.status == StatusCode::OK && reply.body["payment"].is_object();
    let asked = |reply: &Reply| {
        reply.status == StatusCode::UNAUTHORIZED && reply.body["error"]["field"] == "otp_code"
    };

    // Without two-factor codes on, nothing is asked.
    let reply = pay(invoice(150_000).await, None, None).await;
    assert!(paid(&reply), "{}", reply.text);

    let token = server
        .post_json(
            "/api/v1/auth",
            &json!({"username": "nina", "password": PASSWORD}).to_string(),
            None,
        )
        .await
        .body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut app = enable_two_factor(&server, &nina).await;
    // One withdrawal past the allowance asks for the code (and pays nothing),
    // a wrong code is refused, a right one pays. An Idempotency-Key refused
    // for want of a code serves the retry that brings it.
    let big = invoice(150_000).await;
    let before = lightning_sats(&server, &nina).await;
    let reply = pay(big.clone(), None, Some("big-1")).await;
    assert!(asked(&reply), "{}", reply.text);
    let reply = pay(big.clone(), Some(app.wrong_code()), Some("big-1")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.body["error"]["field"], "otp_code", "{}", reply.text);
    assert_eq!(lightning_sats(&server, &nina).await, before);
    let reply = pay(big.clone(), Some(app.next_code().await), Some("big-1")).await;
    assert!(paid(&reply), "{}", reply.text);
    let again = pay(big.clone(), None, Some("big-1")).await;
    assert_eq!(again.body, reply.body, "the key's first outcome, paid once");
    let after = lightning_sats(&server, &nina).await;
    assert!(
        before - after >= 150_000 && before - after < 152_000,
        "{before} {after}"
    );

    // Five withdrawals of 30,000 at once (by a script's token: a browser
    // re-checking its password five times at once is throttled): three fit
    // in the allowance.
    let invoices = futures_util::future::join_all((0..5).map(|_| invoice(30_000))).await;
    let (server_ref, token_ref) = (&server, &token);
    let replies = futures_util::future::join_all(invoices.into_iter().map(|i| async move {
        let body = json!({ "invoiceid": i }).to_string();
        server_ref
            .call(
                Method::POST,
                "/rest/v1/sendinvoice",
                Auth::Bearer(token_ref),
                Some(&body),
            )
            .await
    }))
    .await;
    assert_eq!(
        replies.iter().filter(|r| paid(r)).count(),
        3,
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert_eq!(
        replies.iter().filter(|r| asked(r)).count(),
        2,
        "{:?}",
        replies
            .iter()
            .map(|r| (r.status, &r.text))
            .collect::<Vec<_>>()
    );

    // A withdrawal that fails (an invoice paid already) gives its share back.
    let small = invoice(10_000).await;
    assert!(paid(
        &pay(small.clone(), Some(app.next_code().await), None).await
    ));
    let reply = pay(small, None, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(reply.body["error"]["message"].is_string(), "{}", reply.text);
    let reply = pay(invoice(10_000).await, None, None).await;
    assert!(
        paid(&reply),
        "the failed one's 10,000 came back: {}",
        reply.text
    );
    // The allowance is spent: one sat more asks.
    let reply = pay(invoice(1).await, None, None).await;
    assert!(asked(&reply), "{}", reply.text);

    // QuickPay asks the same.
    let node = server
        .get("/rest/v1/getalldata", Auth::Cookie(&otto.cookie))
        .await
        .body["info"]["nodeId"]
        .as_str()
        .unwrap()
        .to_string();
    let saved = wallet_call(
        &server,
        &nina,
        "/rest/v1/addcontact",
        json!({"alias": "otto", "node_id": node}),
        None,
    )
    .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
    let reply = wallet_call(
        &server,
        &nina,
        "/rest/v1/quickpay",
        json!({"dest": "otto", "amount": 5_000, "password": PASSWORD}),
        None,
    )
    .await;
    assert!(asked(&reply), "{}", reply.text);

    // Money into the account's own trading balance is no withdrawal.
    let deposit = wallet_call(
        &server,
        &nina,
        "/lnm/user/deposit",
        json!({"amount": 50_000}),
        None,
    )
    .await;
    assert_eq!(deposit.status, StatusCode::OK, "{}", deposit.text);
    let request = deposit.body["paymentRequest"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", deposit.text))
        .to_string();
    let reply = pay(request, None, None).await;
    assert!(paid(&reply), "{}", reply.text);
    // Out of it, to another's invoice or as a withdraw link, asks; back to
    // the account's own wallet does not.
    let to_otto = invoice(20_000).await;
    let reply = wallet_call(
        &server,
        &nina,
        "/lnm/user/withdraw",
        json!({"amount": 20_000, "invoice": to_otto, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert_eq!(reply.body["field"], "otp_code", "{}", reply.text);
    let reply = wallet_call(
        &server,
        &nina,
        "/lnm/user/withdraw/lnurl",
        json!({"amount": 20_000, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    let code = app.next_code().await;
    let reply = wallet_call(
        &server,
        &nina,
        "/lnm/user/withdraw/lnurl",
        json!({"amount": 20_000, "otp_code": code, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(reply.body["lnurl"]
        .as_str()
        .is_some_and(|l| l.starts_with("LNURL")));
    let own = wallet_call(
        &server,
        &nina,
        "/rest/v1/createinvoice",
        json!({"amount": 20_000, "memo": "back"}),
        None,
    )
    .await;
    let reply = wallet_call(
        &server,
        &nina,
        "/lnm/user/withdraw",
        json!({"amount": 20_000, "invoice": own.body["payment_request"], "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["amount"], 20_000, "{}", reply.text);
}

/// The code after `marker` in a message's text (`len` hex digits).
fn code_in(body: &str, marker: &str, len: usize) -> String {
    let start = body
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in {body}"))
        + marker.len();
    let code: String = body[start..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert_eq!(code.len(), len, "{body}");
    code
}

/// An e-mail address is confirmed by the code sent to it at sign-up (level
/// 1, the `email` label); a forgotten password is reset by the code of the
/// reset mail. Asking never tells whether an address has an account; a code
/// works once, even when two requests race with it.
async fn codes_by_mail_confirm_the_address_and_reset_the_password(url: String) {
    let smtp = common::mail::SmtpSink::start().await;
    let server = common::mail::server_with_mail(&url, Some(&smtp), None).await;
    let rita = sign_up(&server, "rita@example.com").await;
    let message = smtp.wait_for(1).await;
    assert_eq!(message.to, "rita@example.com");
    assert_eq!(message.subject, "Confirm your e-mail address");
    let code = code_in(&message.body, "within a day):", 32);
    let profile = me(&server, &rita).await;
    assert_eq!(profile.body["level"], 0, "{}", profile.text);
    assert_eq!(profile.body["labels"], json!([]));

    // Asking for a code: the same answer for an address nobody has.
    let known = call(
        &server,
        Method::POST,
        "identity/users/email/generate_code",
        &[("email", "rita@example.com")],
        None,
    )
    .await;
    let unknown = call(
        &server,
        Method::POST,
        "identity/users/email/generate_code",
        &[("email", "nobody@example.com")],
        None,
    )
    .await;
    assert_eq!(known.status, StatusCode::CREATED, "{}", known.text);
    assert_eq!((known.status, &known.body), (unknown.status, &unknown.body));
    let second = smtp.wait_for(2).await;
    let newer = code_in(&second.body, "within a day):", 32);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.count(), 2, "nothing sent for the unknown address");

    for (token, code) in [
        ("0".repeat(32), "identity.user.invalid_token"),
        ("not a code".to_string(), "identity.user.invalid_token"),
    ] {
        let reply = call(
            &server,
            Method::POST,
            "identity/users/email/confirm_code",
            &[("token", &token)],
            None,
        )
        .await;
        assert_refused(&reply, StatusCode::UNPROCESSABLE_ENTITY, code);
    }
    let reply = call(
        &server,
        Method::POST,
        "identity/users/email/confirm_code",
        &[],
        None,
    )
    .await;
    assert_refused(&reply, StatusCode::BAD_REQUEST, "missing_token");
    let confirmed = call(
        &server,
        Method::POST,
        "identity/users/email/confirm_code",
        &[("token", &code)],
        None,
    )
    .await;
    assert_eq!(confirmed.status, StatusCode::CREATED, "{}", confirmed.text);
    assert_eq!(confirmed.body["level"], 1);
    assert_eq!(confirmed.body["labels"][0]["key"], "email");
    assert_eq!(confirmed.body["labels"][0]["value"], "verified");
    assert_eq!(confirmed.body["labels"][0]["scope"], "private");
    assert_eq!(confirmed.body["csrf_token"], "", "no session comes with it");
    let again = call(
        &server,
        Method::POST,
        "identity/users/email/confirm_code",
        &[("token", &code)],
        None,
    )
    .await;
    assert_refused(
        &again,
        StatusCode::UNPROCESSABLE_ENTITY,
        "identity.user.invalid_token",
    );
    // The other code of the same address still confirms (nothing changes).
    let other = call(
        &server,
        Method::POST,
        "identity/users/email/confirm_code",
        &[("token", &newer)],
        None,
    )
    .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text);
    // A confirmed address gets no more codes.
    call(
        &server,
        Method::POST,
        "identity/users/email/generate_code",
        &[("email", "rita@example.com")],
        None,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.count(), 2);

    // A forgotten password: the code of the reset mail sets a new one.
    let reply = call(
        &server,
        Method::POST,
        "identity/users/password/generate_code",
        &[("email", "RITA@example.com")],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let reset = smtp.wait_for(3).await;
    assert_eq!(reset.subject, "Reset your Ampere password");
    let key = code_in(&reset.body, "takes this code instead:", 64);
    let set = |password: &'static str, confirm: &'static str| {
        let (server, key) = (&server, key.clone());
        async move {
            call(
                server,
                Method::POST,
                "identity/users/password/confirm_code",
                &[
                    ("reset_password_token", &key),
                    ("password", password),
                    ("confirm_password", confirm),
                ],
                None,
            )
            .await
        }
    };
    assert_refused(
        &set("Fresh-battery-42", "Fresh-battery-43").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "identity.user.invalid_confirm_password",
    );
    assert_refused(
        &set("password1A", "password1A").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "identity.user.invalid_password",
    );
    // Two requests with the one code: one password is set.
    let (a, b) = tokio::join!(
        set("Fresh-battery-42", "Fresh-battery-42"),
        set("Violet-otter-canoe-91", "Violet-otter-canoe-91")
    );
    let statuses = [a.status, b.status];
    assert!(
        statuses.contains(&StatusCode::CREATED) && statuses.contains(&StatusCode::NOT_FOUND),
        "{} {}",
        a.text,
        b.text
    );
    let winner = if a.status == StatusCode::CREATED {
        "Fresh-battery-42"
    } else {
        "Violet-otter-canoe-91"
    };
    let loser = if winner == "Fresh-battery-42" { &b } else { &a };
    assert_refused(
        loser,
        StatusCode::NOT_FOUND,
        "identity.user.reset_password_token_not_found",
    );
    // Every session ended; the old password and the losing one fail.
    assert_eq!(me(&server, &rita).await.status, StatusCode::UNAUTHORIZED);
    for wrong in [
        PASSWORD,
        if winner == "Fresh-battery-42" {
            "Violet-otter-canoe-91"
        } else {
            "Fresh-battery-42"
        },
    ] {
        let reply = sign_in(&server, "rita@example.com", wrong, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    }
    let reply = sign_in(&server, "rita@example.com", winner, None).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
}

/// A person's profile (made once, changed, submitted; the last name and
/// birth date submasked) and labels (the person's public ones beside the
/// server's): bad input refused changing nothing, another account's never
/// reached.
async fn profiles_and_labels_are_the_persons_own(server: Server) {
    let sam = sign_up(&server, "sam@example.com").await;
    let tom = sign_up(&server, "tom@example.com").await;
    let profile = call(
        &server,
        Method::GET,
        "resource/profiles/me",
        &[],
        Some(&sam),
    )
    .await;
    assert_refused(
        &profile,
        StatusCode::NOT_FOUND,
        "resource.profile.not_exist",
    );
    for (field, value, code) in [
        ("dob", "2999-01-01", "resource.profile.invalid_dob"),
        ("dob", "1990-02-30", "resource.profile.invalid_dob"),
        ("metadata", "[1]", "resource.profile.invalid_metadata"),
        (
            "first_name",
            &"x".repeat(65),
            "resource.profile.invalid_first_name",
        ),
        ("city", "Tel\u{7}Aviv", "resource.profile.invalid_city"),
        ("confirm", "maybe", "resource.profile.invalid_confirm"),
    ] {
        let reply = call(
            &server,
            Method::POST,
            "resource/profiles",
            &[("first_name", "Sam"), (field, value)],
            Some(&sam),
        )
        .await;
        assert_refused(&reply, StatusCode::UNPROCESSABLE_ENTITY, code);
    }
    let profile = call(
        &server,
        Method::GET,
        "resource/profiles/me",
        &[],
        Some(&sam),
    )
    .await;
    assert_eq!(profile.status, StatusCode::NOT_FOUND, "nothing was made");

    let made = call(
        &server,
        Method::POST,
        "resource/profiles",
        &[
            ("first_name", "Sam"),
            ("last_name", "Levi"),
            ("dob", "1990-05-17"),
            ("city", "Haifa"),
            ("metadata", "{\"tier\":1}"),
        ],
        Some(&sam),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    assert_eq!(made.body["last_name"], "L***");
    assert_eq!(made.body["dob"], "1990-**-**");
    assert_eq!(made.body["state"], "drafted");
    assert_eq!(made.body["metadata"]["tier"], 1);
    let again = call(
        &server,
        Method::POST,
        "resource/profiles",
        &[("first_name", "Sam")],
        Some(&sam),
    )
    .await;
    assert_refused(&again, StatusCode::CONFLICT, "resource.profile.exist");
    let changed = call(
        &server,
        Method::PUT,
        "resource/profiles",
        &[("city", "Tel Aviv"), ("confirm", "true")],
        Some(&sam),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.body["city"], "Tel Aviv");
    assert_eq!(changed.body["first_name"], "Sam", "left as it was");
    assert_eq!(changed.body["state"], "submitted");
    let user = me(&server, &sam).await;
    assert_eq!(
        user.body["profiles"][0]["city"], "Tel Aviv",
        "{}",
        user.text
    );
    let theirs = call(
        &server,
        Method::GET,
        "resource/profiles/me",
        &[],
        Some(&tom),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let put = call(
        &server,
        Method::PUT,
        "resource/profiles",
        &[("city", "X")],
        Some(&tom),
    )
    .await;
    assert_refused(&put, StatusCode::NOT_FOUND, "resource.profile.not_found");

    // Labels: the person's public ones; the server's keys are not theirs.
    for (key, value, code) in [
        ("email", "verified", "resource.labels.invalid_key"),
        ("A!", "gold", "resource.labels.invalid_key"),
        ("tier", "g", "resource.labels.invalid_value"),
        ("tier", "gold<script>", "resource.labels.invalid_value"),
    ] {
        let reply = call(
            &server,
            Method::POST,
            "resource/labels",
            &[("key", key), ("value", value)],
            Some(&sam),
        )
        .await;
        assert_refused(&reply, StatusCode::UNPROCESSABLE_ENTITY, code);
    }
    let made = call(
        &server,
        Method::POST,
        "resource/labels",
        &[("key", "tier"), ("value", "gold")],
        Some(&sam),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    assert_eq!(made.body["scope"], "public");
    let twice = call(
        &server,
        Method::POST,
        "resource/labels",
        &[("key", "tier"), ("value", "gold")],
        Some(&sam),
    )
    .await;
    assert_refused(
        &twice,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.labels.conflict",
    );
    let changed = call(
        &server,
        Method::PATCH,
        "resource/labels/tier",
        &[("value", "silver")],
        Some(&sam),
    )
    .await;
    assert_eq!(changed.body["value"], "silver", "{}", changed.text);
    for (method, form) in [
        (Method::GET, vec![]),
        (Method::PATCH, vec![("value", "bronze")]),
        (Method::DELETE, vec![]),
    ] {
        let reply = call(
            &server,
            method.clone(),
            "resource/labels/tier",
            &form,
            Some(&tom),
        )
        .await;
        assert_refused(&reply, StatusCode::NOT_FOUND, "resource.labels.not_found");
    }
    let list = call(&server, Method::GET, "resource/labels", &[], Some(&sam)).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1, "{}", list.text);
    let gone = call(
        &server,
        Method::DELETE,
        "resource/labels/tier",
        &[],
        Some(&sam),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let reply = call(
        &server,
        Method::GET,
        "resource/labels/tier",
        &[],
        Some(&sam),
    )
    .await;
    assert_refused(&reply, StatusCode::NOT_FOUND, "resource.labels.not_found");
}

/// A multipart form (`multipart/form-data`): its content type and bytes.
fn multipart(fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "ampere-test-boundary-7d3f";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes());
    }
    for (i, (name, bytes)) in files.iter().enumerate() {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"f{i}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(server: &Server, browser: &Browser, path: &str, form: (String, Vec<u8>)) -> Reply {
    server
        .send(
            Request::post(format!("/api/v2/auth/{path}"))
                .header(header::CONTENT_TYPE, form.0)
                .header(header::COOKIE, &browser.cookie)
                .header("x-csrf-token", &browser.csrf)
                .body(Body::from(form.1))
                .unwrap(),
        )
        .await
}

/// An SMS gateway on loopback: keeps the JSON messages posted to it.
async fn sms_gateway() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = kept.clone();
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |axum::Json(message): axum::Json<Value>| {
            let store = store.clone();
            async move {
                store.lock().unwrap().push(message);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, kept)
}

/// The code of the `n`th message the gateway got (waits up to 10 s).
async fn sms_code(
    kept: &std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    n: usize,
) -> (String, String) {
    for _ in 0..100 {
        if let Some(message) = kept.lock().unwrap().get(n - 1).cloned() {
            let text = message["text"].as_str().unwrap().to_string();
            let code: String = text
                .split_whitespace()
                .find(|w| {
                    w.trim_end_matches('.').len() == 6
                        && w.trim_end_matches('.').bytes().all(|b| b.is_ascii_digit())
                })
                .unwrap_or_else(|| panic!("no code in {text}"))
                .trim_end_matches('.')
                .to_string();
            return (message["to"].as_str().unwrap().to_string(), code);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("message {n} never reached the gateway");
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-test-image";
const PDF: &[u8] = b"%PDF-1.7\n% a proof of address\n%%EOF\n";

/// Phone numbers verified by a code the SMS gateway got (one account's
/// alone); documents and proofs of address uploaded, checked before anything
/// is kept and served to their owner only; data storage records.
async fn phones_documents_and_data_storage_are_the_persons_own(url: String) {
    let (gateway, kept) = sms_gateway().await;
    let dir = tempfile::tempdir().unwrap();
    let settings = engine::Settings {
        accounts: engine::accounts::Policy {
            documents: Some(dir.path().join("documents")),
            ..Default::default()
        },
        ..Default::default()
    };
    let site = server::Site {
        sms: server::sms::Sms::new(Some(&gateway), None).unwrap(),
        ..server::Site::for_tests(true)
    };
    let server = Server::open_with_settings(&url, settings, site).await;
    let uma = sign_up(&server, "uma@example.com").await;
    let vic = sign_up(&server, "vic@example.com").await;

    // A phone: added, its code sent by the gateway, verified once.
    let reply = call(
        &server,
        Method::POST,
        "resource/phones",
        &[("phone_number", "054-1234567")],
        Some(&uma),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.phone.invalid_phone_number",
    );
    let reply = call(
        &server,
        Method::POST,
        "resource/phones",
        &[("phone_number", "+972 54-123 4567")],
        Some(&uma),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let (to, code) = sms_code(&kept, 1).await;
    assert_eq!(to, "+972541234567");
    let phones = call(&server, Method::GET, "resource/phones", &[], Some(&uma)).await;
    assert_eq!(
        phones.body,
        json!([{"country": "IL", "number": "********4567", "validated_at": null}])
    );
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let reply = call(
        &server,
        Method::POST,
        "resource/phones/verify",
        &[
            ("phone_number", "+972541234567"),
            ("verification_code", wrong),
        ],
        Some(&uma),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.phone.invalid_verification_code",
    );
    let reply = call(
        &server,
        Method::POST,
        "resource/phones/verify",
        &[
            ("phone_number", "+972541234567"),
            ("verification_code", &code),
        ],
        Some(&uma),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert!(
        reply.body["phones"][0]["validated_at"].is_string(),
        "{}",
        reply.text
    );
    assert!(reply.body["labels"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["key"] == "phone" && l["value"] == "verified"));
    assert_eq!(
        reply.body["level"], 0,
        "a phone counts once the e-mail is confirmed"
    );
    let reply = call(
        &server,
        Method::POST,
        "resource/phones/verify",
        &[
            ("phone_number", "+972541234567"),
            ("verification_code", &code),
        ],
        Some(&uma),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.phone.invalid_phone_number",
    );
    // Another account cannot take it, nor ask codes for a number it lacks.
    let reply = call(
        &server,
        Method::POST,
        "resource/phones",
        &[("phone_number", "+972541234567")],
        Some(&vic),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.phone.invalid_phone_number",
    );
    assert!(reply.text.contains("another account"), "{}", reply.text);
    let reply = call(
        &server,
        Method::POST,
        "resource/phones/send_code",
        &[("phone_number", "+972541234567")],
        Some(&vic),
    )
    .await;
    assert_refused(&reply, StatusCode::NOT_FOUND, "resource.phone.not_found");
    assert_eq!(
        kept.lock().unwrap().len(),
        1,
        "no code went out for the refusals"
    );

    // Documents: everything checked before anything is kept.
    let passport = [
        ("doc_type", "Passport"),
        ("doc_number", "AB123456"),
        ("doc_expire", "2031-01-01"),
    ];
    let big = [PNG, &vec![0u8; 5 * 1024 * 1024]].concat();
    for (fields, files, status, code) in [
        (
            &passport[..],
            vec![("upload", b"<html><script>alert(1)</script>".as_slice())],
            StatusCode::UNPROCESSABLE_ENTITY,
            "resource.document.invalid_upload",
        ),
        (
            &passport[..],
            vec![("upload", big.as_slice())],
            StatusCode::UNPROCESSABLE_ENTITY,
            "resource.document.invalid_upload",
        ),
        (
            &passport[..],
            vec![("upload", PNG); 6],
            StatusCode::UNPROCESSABLE_ENTITY,
            "resource.document.invalid_upload",
        ),
        (
            &passport[..],
            vec![],
            StatusCode::UNPROCESSABLE_ENTITY,
            "resource.document.invalid_upload",
        ),
        (
            &passport[..2],
            vec![("upload", PNG), ("upload", b"GIF89a".as_slice())],
            StatusCode::UNPROCESSABLE_ENTITY,
            "resource.document.invalid_upload",
        ),
        (
            &[("doc_type", "Passport")][..],
            vec![("upload", PNG)],
            StatusCode::BAD_REQUEST,
            "resource.document.missing_doc_number",
        ),
        (
            &[("doc_type", "selfie"), ("doc_number", "AB1")][..],
            vec![("upload", PNG)],
            StatusCode::UNPROCESSABLE_ENTITY,
            "resource.document.invalid_doc_type",
        ),
        (
            &[
                ("doc_type", "Passport"),
                ("doc_number", "AB1"),
                ("doc_expire", "2001-01-01"),
            ][..],
            vec![("upload", PNG)],
            StatusCode::UNPROCESSABLE_ENTITY,
            "resource.document.invalid_doc_expire",
        ),
    ] {
        let reply = upload(
            &server,
            &uma,
            "resource/documents",
            multipart(fields, &files),
        )
        .await;
        assert_refused(&reply, status, code);
    }
    let stored = |dir: &std::path::Path| {
        std::fs::read_dir(dir.join("documents"))
            .map(|users| {
                users
                    .flatten()
                    .map(|u| std::fs::read_dir(u.path()).map_or(0, |f| f.count()))
                    .sum::<usize>()
            })
            .unwrap_or(0)
    };
    assert_eq!(stored(dir.path()), 0, "nothing kept of a refused upload");
    let reply = upload(
        &server,
        &uma,
        "resource/documents",
        multipart(&passport, &[("upload", PNG), ("upload[]", PNG)]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body.as_array().unwrap().len(), 2);
    assert_eq!(reply.body[0]["doc_type"], "passport");
    assert_eq!(reply.body[0]["doc_number"], "AB******");
    let file_url = reply.body[0]["upload"].as_str().unwrap().to_string();
    let file = server.get(&file_url, Auth::Cookie(&uma.cookie)).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.bytes, PNG);
    assert_eq!(file.headers[header::CONTENT_TYPE], "image/png");
    assert!(file.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let theirs = server.get(&file_url, Auth::Cookie(&vic.cookie)).await;
    assert_refused(
        &theirs,
        StatusCode::NOT_FOUND,
        "resource.document.not_found",
    );
    let list = call(&server, Method::GET, "resource/documents", &[], Some(&vic)).await;
    assert_eq!(list.body, json!([]));

    // A proof of address: the address in the document's metadata.
    let address = [
        ("country", "IL"),
        ("address", "1 Herzl St"),
        ("city", "Haifa"),
        ("postcode", "3100000"),
    ];
    let reply = upload(
        &server,
        &uma,
        "resource/addresses",
        multipart(&address[..3], &[("upload", PDF)]),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::BAD_REQUEST,
        "resource.address.missing_postcode",
    );
    let reply = upload(
        &server,
        &uma,
        "resource/addresses",
        multipart(&address, &[("upload", PDF)]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body[0]["doc_type"], "address");
    assert_eq!(reply.body[0]["metadata"]["city"], "Haifa");
    assert_eq!(reply.body[0]["content_type"], "application/pdf");
    assert_eq!(stored(dir.path()), 3);

    // Data storage: a title once, data a JSON object.
    let reply = call(
        &server,
        Method::POST,
        "resource/data_storage",
        &[("title", "kyc"), ("data", "[1]")],
        Some(&uma),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.data_storage.invalid_data",
    );
    let reply = call(
        &server,
        Method::POST,
        "resource/data_storage",
        &[("title", "kyc"), ("data", "{\"source\":\"bank\"}")],
        Some(&uma),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let reply = call(
        &server,
        Method::POST,
        "resource/data_storage",
        &[("title", "kyc"), ("data", "{}")],
        Some(&uma),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.data_storage.invalid_title",
    );
    let user = me(&server, &uma).await;
    assert_eq!(
        user.body["data_storages"][0]["title"], "kyc",
        "{}",
        user.text
    );
    assert_eq!(me(&server, &vic).await.body["data_storages"], json!([]));
}

/// Service accounts: made and managed with the owner's code (two-factor on
/// first), reached only by their own keys (which act as the service account,
/// not the owner), another person's never named, deleted under the funds
/// rule; an owner with any is not deleted.
async fn service_accounts_are_owned_and_reached_by_their_keys(server: Server) {
    let kim = sign_up(&server, "kim@example.com").await;
    let lee = sign_up(&server, "lee@example.com").await;
    let reply = call(
        &server,
        Method::GET,
        "resource/service_accounts",
        &[],
        Some(&kim),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::BAD_REQUEST,
        "resource.service_accounts.2fa_disabled",
    );
    let mut app = enable_two_factor(&server, &kim).await;
    let mut lee_app = enable_two_factor(&server, &lee).await;

    let reply = call(
        &server,
        Method::POST,
        "resource/service_accounts",
        &[("role", "bot")],
        Some(&kim),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNAUTHORIZED,
        "resource.service_accounts.missing_otp",
    );
    let code = app.next_code().await;
    let made = call(
        &server,
        Method::POST,
        "resource/service_accounts",
        &[("role", "bot"), ("totp_code", &code)],
        Some(&kim),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    assert_eq!(made.body["role"], "bot");
    let kim_uid = me(&server, &kim).await.body["uid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(made.body["user"]["uid"], kim_uid.as_str());
    let sa = made.body["uid"].as_str().unwrap().to_string();
    assert_ne!(sa, kim_uid);
    let code = lee_app.next_code().await;
    let theirs = call(
        &server,
        Method::POST,
        "resource/service_accounts",
        &[("totp_code", &code)],
        Some(&lee),
    )
    .await;
    let lee_sa = theirs.body["uid"].as_str().unwrap().to_string();
    let list = call(
        &server,
        Method::GET,
        "resource/service_accounts",
        &[],
        Some(&kim),
    )
    .await;
    assert_eq!(list.body.as_array().unwrap().len(), 1, "{}", list.text);

    // Its keys: the owner's code, its uid; never another person's.
    let code = app.next_code().await;
    let reply = call(
        &server,
        Method::POST,
        "resource/service_accounts/api_keys",
        &[
            ("algorithm", "HS256"),
            ("scope", "wallet"),
            ("totp_code", &code),
        ],
        Some(&kim),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::BAD_REQUEST,
        "missing_service_account_uid",
    );
    let reply = call(
        &server,
        Method::POST,
        "resource/service_accounts/api_keys",
        &[
            ("service_account_uid", &lee_sa),
            ("algorithm", "HS256"),
            ("totp_code", &code),
        ],
        Some(&kim),
    )
    .await;
    assert_refused(&reply, StatusCode::NOT_FOUND, "resource.api_key.not_found");
    let made = call(
        &server,
        Method::POST,
        "resource/service_accounts/api_keys",
        &[
            ("service_account_uid", &sa),
            ("algorithm", "HS256"),
            ("scope", "wallet"),
            ("totp_code", &code),
        ],
        Some(&kim),
    )
    .await;
    let key = key_of(&made);
    // The key acts as the service account, not as its owner.
    let reply = signed(
        &server,
        &key,
        Method::GET,
        "/api/v2/auth/resource/users/me",
        None,
        engine::now_ms(),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["uid"], sa.as_str());
    let own = call(&server, Method::GET, "resource/api_keys", &[], Some(&kim)).await;
    assert_eq!(own.body, json!([]), "the owner's own keys are apart");
    let listed = call(
        &server,
        Method::GET,
        &format!("resource/service_accounts/api_keys?service_account_uid={sa}"),
        &[],
        Some(&kim),
    )
    .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "{}", listed.text);
    assert_eq!(listed.headers["total"], "1");
    let code = app.next_code().await;
    let path = format!("resource/service_accounts/api_keys/{}", key.kid);
    let reply = call(
        &server,
        Method::PUT,
        &path,
        &[
            ("service_account_uid", &sa),
            ("state", "disabled"),
            ("totp_code", &code),
        ],
        Some(&kim),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(me_by_key(&server, &key).await, StatusCode::UNAUTHORIZED);
    let log = call(
        &server,
        Method::GET,
        "resource/users/activity/api_keys",
        &[],
        Some(&kim),
    )
    .await;
    assert!(
        log.body
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["data"].as_str().is_some_and(|d| d.contains(&sa))),
        "{}",
        log.text
    );

    // An owner with a service account is not deleted; a service account
    // holding funds is not either.
    let code = app.next_code().await;
    let reply = call(
        &server,
        Method::DELETE,
        &format!("resource/users/me?password={PASSWORD}&otp_code={code}"),
        &[],
        Some(&kim),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    assert!(reply.text.contains("service account"), "{}", reply.text);
    let engine = &server.services.engine;
    let node = engine.simnet.node_of_user(&sa).await.unwrap();
    engine
        .simnet
        .faucet(&node.address, engine::Msat::from_sat(10_000))
        .await
        .unwrap();
    engine.simnet.mine(1).await.unwrap();
    let code = app.next_code().await;
    let reply = call(
        &server,
        Method::DELETE,
        &format!("resource/service_accounts/{sa}?totp_code={code}"),
        &[],
        Some(&kim),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resource.service_accounts.conflict",
    );
    assert!(reply.text.contains("on-chain"), "{}", reply.text);
    // Another person's service account is not found; an empty one goes.
    let code = app.next_code().await;
    let reply = call(
        &server,
        Method::DELETE,
        &format!("resource/service_accounts/{lee_sa}?totp_code={code}"),
        &[],
        Some(&kim),
    )
    .await;
    assert_refused(
        &reply,
        StatusCode::NOT_FOUND,
        "resource.service_accounts.not_found",
    );
    let code = lee_app.next_code().await;
    let reply = call(
        &server,
        Method::DELETE,
        &format!("resource/service_accounts/{lee_sa}?totp_code={code}"),
        &[],
        Some(&lee),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let list = call(
        &server,
        Method::GET,
        "resource/service_accounts",
        &[],
        Some(&lee),
    )
    .await;
    assert_eq!(list.body, json!([]));
}
