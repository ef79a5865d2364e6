//! The LN-Markets API under `/lnm` over HTTP, on SQLite and PostgreSQL: traders
//! sign in, fund their trading balance from a wallet and withdraw back, a phone
//! wallet (the Python test wallet, sharing no code with the server) claims an
//! LNURL-withdraw and signs in with LNURL-auth and Joule, scoped tokens stay in
//! their scopes, and every bad input or abuse is refused and changes nothing.
//! Each story ends with the exchange's books balanced.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};

use common::desk::{
    assert_books_balance, assert_error, balance, bearer, count, deposit, get, lnm, post, trader,
    Trader,
};
use common::{session_cookie, Server, PASSWORD};
use engine::simnet::PayRequest;
use engine::Msat;

testdb::on_both_databases!(
    open_server;
    a_trader_deposits_from_a_wallet_and_withdraws_back,
    a_deposit_paid_by_another_account_credits_its_owner_once,
    concurrent_withdrawals_never_overdraw,
    a_session_withdraws_only_with_the_password,
    scoped_tokens_stay_within_their_scopes,
    an_account_paid_by_invoice_opens_once,
    bad_input_answers_400_and_changes_nothing,
    the_state_routes_describe_the_exchange,
    unknown_routes_and_methods_answer_in_the_apis_format,
);

/// The stories whose other side speaks HTTP itself (the Python wallet).
mod listening {
    use super::*;

    testdb::on_both_databases!(
        listening_server;
        a_phone_wallet_claims_an_lnurl_withdraw_once,
        lnurl_auth_signs_the_waiting_browser_in,
        an_lnurl_auth_links_a_wallet_key_to_a_signed_in_account,
        joule_signs_in_with_an_independently_made_signature_once,
    );
}

async fn open_server(url: &str) -> Server {
    Server::open(url).await
}

async fn listening_server(url: &str) -> (Server, String) {
    Server::listening(url).await
}

/// An invoice of the trader's wallet node.
async fn wallet_invoice(server: &Server, trader: &Trader, sats: Option<i64>) -> String {
    server
        .services
        .engine
        .simnet
        .create_invoice(&trader.node, sats.map(Msat::from_sat), "to my wallet")
        .await
        .unwrap()
        .bolt11
}

/// The trading balance in msat and the routing fees its paid withdrawals cost
/// (the trader pays them), from the engine.
async fn held_and_fees(server: &Server, trader: &Trader) -> (i64, i64) {
    let desk = &server.services.engine.desk;
    let held = desk.balance(&trader.user_id).await.unwrap().0;
    let fees = desk
        .withdrawals(&trader.user_id)
        .await
        .unwrap()
        .iter()
        .filter(|w| w.state == "paid")
        .map(|w| w.fee.0)
        .sum();
    (held, fees)
}

/// What the trader's wallet can pay now (its side of open channels).
async fn lightning(server: &Server, trader: &Trader) -> Msat {
    let engine = &server.services.engine;
    let user = engine.accounts.get(&trader.user_id).await.unwrap().unwrap();
    engine.wallet.summary(&user).await.unwrap().lightning
}

async fn a_trader_deposits_from_a_wallet_and_withdraws_back(server: Server) {
    let alice = trader(&server, "alice").await;
    assert_eq!(balance(&server, &alice.cookie).await, 0);

    let invoice = deposit(&server, &alice, &alice.node, 50_000).await;
    assert_eq!(invoice["expiry"], 900);
    assert_eq!(balance(&server, &alice.cookie).await, 50_000);
    let history = get(&server, "/lnm/user/history?type=deposit", &alice.cookie).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.text);
    let entry = &history.body["transaction"][0];
    assert_eq!(entry["amount"], "50000");
    assert_eq!(entry["success"], true);
    assert_eq!(entry["fail"], false);
    assert_eq!(entry["uid"], alice.user_id.as_str());
    assert!(entry["sucess_ts"].as_str().unwrap().ends_with('Z'));
    assert!(entry["did"].as_str().is_some());

    let wallet_before = lightning(&server, &alice).await;
    let bolt11 = wallet_invoice(&server, &alice, Some(20_000)).await;
    let withdrawn = post(
        &server,
        "/lnm/user/withdraw",
        &alice.cookie,
        json!({"password": PASSWORD, "amount": 20_000, "unit": "sat", "invoice": bolt11}),
    )
    .await;
    assert_eq!(withdrawn.status, StatusCode::OK, "{}", withdrawn.text);
    assert_eq!(withdrawn.body["amount"], 20_000);
    assert_eq!(withdrawn.body["paymenthash"].as_str().unwrap().len(), 64);
    assert_eq!(withdrawn.body["paymentsecret"].as_str().unwrap().len(), 64);
    let (held, fees) = held_and_fees(&server, &alice).await;
    assert!(fees > 0, "the hub's forwarding fee");
    assert_eq!(
        held,
        30_000_000 - fees,
        "the amount and its fee left the balance"
    );
    let wallet_after = lightning(&server, &alice).await;
    assert_eq!(
        wallet_after.0 - wallet_before.0,
        Msat::from_sat(20_000).0,
        "the wallet received exactly the withdrawal"
    );
    let history = get(&server, "/lnm/user/history?type=withdraw", &alice.cookie).await;
    let entry = &history.body["transaction"][0];
    assert_eq!(entry["wid"], withdrawn.body["wid"]);
    assert_eq!(entry["payment_hash"], withdrawn.body["paymenthash"]);
    assert_eq!(entry["success"], true);

    // An amountless invoice takes the amount asked.
    let open = wallet_invoice(&server, &alice, None).await;
    let withdrawn = post(
        &server,
        "/lnm/user/withdraw",
        &alice.cookie,
        json!({"password": PASSWORD, "amount": 1_500, "invoice": open}),
    )
    .await;
    assert_eq!(withdrawn.status, StatusCode::OK, "{}", withdrawn.text);
    let (held, fees) = held_and_fees(&server, &alice).await;
    assert_eq!(held, 28_500_000 - fees);

    // Logged out, the cookie is worthless.
    let out = lnm(
        &server,
        Method::POST,
        "/lnm/user/logout",
        Some(&alice.cookie),
        None,
    )
    .await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.text);
    assert_error(
        &get(&server, "/lnm/user", &alice.cookie).await,
        StatusCode::UNAUTHORIZED,
        "authentication",
    );
    assert_books_balance(&server).await;
}

async fn a_deposit_paid_by_another_account_credits_its_owner_once(server: Server) {
    let alice = trader(&server, "alice").await;
    let bob = trader(&server, "bob").await;
    let invoice = post(
        &server,
        "/lnm/user/deposit",
        &alice.cookie,
        json!({"amount": 10_000}),
    )
    .await;
    let bolt11 = invoice.body["paymentRequest"].as_str().unwrap().to_string();
    // Bob and Alice both try to pay it at once: one payment, one credit.
    let simnet = server.services.engine.simnet.clone();
    let payers = [alice.node.clone(), bob.node.clone()].map(|payer| {
        let (simnet, bolt11) = (simnet.clone(), bolt11.clone());
        tokio::spawn(async move { simnet.pay(PayRequest::new(&payer, &bolt11, None)).await })
    });
    let mut paid = 0;
    for payer in payers {
        if payer.await.unwrap().is_ok() {
            paid += 1;
        }
    }
    assert_eq!(paid, 1, "the invoice is paid once");
    assert_eq!(balance(&server, &alice.cookie).await, 10_000);
    assert_eq!(balance(&server, &bob.cookie).await, 0);
    assert_books_balance(&server).await;
}

async fn concurrent_withdrawals_never_overdraw(server: Server) {
    let alice = trader(&server, "alice").await;
    deposit(&server, &alice, &alice.node, 10_000).await;
    // Eight withdrawals of 3,000 sats at once from 10,000, by a script with a
    // token (a session re-checks its password, one at a time): three pass.
    let token = bearer(&server, &alice.cookie, &["withdraw"]).await;
    let mut invoices = Vec::new();
    for _ in 0..8 {
        invoices.push(wallet_invoice(&server, &alice, Some(3_000)).await);
    }
    let router = server.router.clone();
    let tasks: Vec<_> = invoices
        .into_iter()
        .map(|bolt11| {
            let (router, token) = (router.clone(), token.clone());
            tokio::spawn(async move {
                use tower::ServiceExt;
                let request = Request::post("/lnm/user/withdraw")
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::AUTHORIZATION, token)
                    .body(Body::from(
                        json!({"amount": 3_000, "invoice": bolt11}).to_string(),
                    ))
                    .unwrap();
                router.oneshot(request).await.unwrap().status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let passed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(passed, 3, "{statuses:?}");
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST));
    let (held, fees) = held_and_fees(&server, &alice).await;
    assert_eq!(held, 1_000_000 - fees);
    assert_books_balance(&server).await;
}

/// An open session is not enough to send the trading balance away: the
/// account re-checks the password (as the wallet's payments do), so a stolen
/// cookie or a page left open pays nothing. A token is its own credential.
async fn a_session_withdraws_only_with_the_password(server: Server) {
    let alice = trader(&server, "alice").await;
    deposit(&server, &alice, &alice.node, 10_000).await;
    let withdrawals = count(&server, "desk_withdrawals").await;
    for password in [None, Some(""), Some("Wrong-horse-1")] {
        let mut body =
            json!({"amount": 2_000, "invoice": wallet_invoice(&server, &alice, Some(2_000)).await});
        let mut link = json!({"amount": 2_000});
        if let Some(password) = password {
            body["password"] = json!(password);
            link["password"] = json!(password);
        }
        for (path, body) in [
            ("/lnm/user/withdraw", body),
            ("/lnm/user/withdraw/lnurl", link),
        ] {
            let refused = post(&server, path, &alice.cookie, body).await;
            assert_error(&refused, StatusCode::BAD_REQUEST, "password");
            assert_eq!(refused.body["field"], "password", "{}", refused.text);
        }
    }
    assert_eq!(balance(&server, &alice.cookie).await, 10_000);
    assert_eq!(count(&server, "desk_withdrawals").await, withdrawals);

    // A token allowed to withdraw needs no password.
    let token = bearer(&server, &alice.cookie, &["user", "withdraw"]).await;
    let body =
        json!({"amount": 2_000, "invoice": wallet_invoice(&server, &alice, Some(2_000)).await});
    let paid = post(&server, "/lnm/user/withdraw", &token, body).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.text);
    let link = post(
        &server,
        "/lnm/user/withdraw/lnurl",
        &token,
        json!({"amount": 1_000}),
    )
    .await;
    assert_eq!(link.status, StatusCode::OK, "{}", link.text);
    assert_eq!(count(&server, "desk_withdrawals").await, withdrawals + 1);
}

async fn scoped_tokens_stay_within_their_scopes(server: Server) {
    let alice = trader(&server, "alice").await;
    let user_token = bearer(&server, &alice.cookie, &["user"]).await;

    // Within its scope; beyond it 403; never on the wallet nor on /user/jwt.
    assert_eq!(balance(&server, &user_token).await, 0);
    let beyond = post(
        &server,
        "/lnm/user/deposit",
        &user_token,
        json!({"amount": 1000}),
    )
    .await;
    assert_error(&beyond, StatusCode::FORBIDDEN, "deposit");
    // The dashboard's card shows positions too: the user scope is not enough.
    let card = get(&server, "/api/ui/desk/card", &user_token).await;
    assert_eq!(card.status, StatusCode::FORBIDDEN, "{}", card.text);
    let stranger = server.get("/api/ui/desk/card", common::Auth::None).await;
    assert_eq!(
        stranger.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        stranger.text
    );
    let minting = post(
        &server,
        "/lnm/user/jwt",
        &user_token,
        json!({"scopes": ["user"], "expiry": 3600}),
    )
    .await;
    assert_error(&minting, StatusCode::FORBIDDEN, "session cookie");
    assert_error(
        &get(&server, "/lnm/user/jwt", &user_token).await,
        StatusCode::FORBIDDEN,
        "session cookie",
    );
    let wallet = server
        .get(
            "/rest/v1/getalldata",
            common::Auth::Bearer(user_token.trim_start_matches("Bearer ")),
        )
        .await;
    assert_eq!(wallet.status, StatusCode::FORBIDDEN, "{}", wallet.text);

    // Listed; revoked at once; a revoked token is 401.
    let list = get(&server, "/lnm/user/jwt", &alice.cookie).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let listed = &list.body[0];
    assert_eq!(listed["aud"], json!(["user"]));
    assert_eq!(listed["revoked"], false);
    let jti = listed["jti"].as_str().unwrap().to_string();
    let revoked = lnm(
        &server,
        Method::DELETE,
        &format!("/lnm/user/jwt?jti={jti}"),
        Some(&alice.cookie),
        None,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert_error(
        &get(&server, "/lnm/user", &user_token).await,
        StatusCode::UNAUTHORIZED,
        "authentication",
    );
    let list = get(&server, "/lnm/user/jwt", &alice.cookie).await;
    assert_eq!(list.body[0]["revoked"], true);

    // Another account cannot revoke (or learn of) Alice's tokens.
    let bob = trader(&server, "bob").await;
    let foreign = lnm(
        &server,
        Method::DELETE,
        &format!("/lnm/user/jwt?jti={jti}"),
        Some(&bob.cookie),
        None,
    )
    .await;
    assert_error(&foreign, StatusCode::NOT_FOUND, "no such token");

    // An expired token: signed with the server's own key, so only its expiry fails.
    let key = server.services.engine.db.secret("desk-jwt").await.unwrap();
    let now = engine::now_ms() / 1000;
    let claims = json!({"sub": alice.user_id, "ver": 0, "jti": engine::random_hex(16),
                        "aud": ["user"], "iat": now - 7200, "exp": now - 3600});
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&key),
    )
    .unwrap();
    assert_error(
        &get(&server, "/lnm/user", &format!("Bearer {expired}")).await,
        StatusCode::UNAUTHORIZED,
        "authentication",
    );

    // A password change voids every token and every other session, everywhere.
    let token = bearer(&server, &alice.cookie, &["user", "deposit"]).await;
    let other_session = trader_login(&server, "alice").await;
    let changed = lnm(
        &server,
        Method::PUT,
        "/lnm/user",
        Some(&alice.cookie),
        Some(json!({"previousPassword": PASSWORD, "newPassword": "Other-horse-8"})),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_error(
        &get(&server, "/lnm/user", &token).await,
        StatusCode::UNAUTHORIZED,
        "authentication",
    );
    assert_error(
        &get(&server, "/lnm/user", &other_session).await,
        StatusCode::UNAUTHORIZED,
        "authentication",
    );
    let alice_cookie = session_cookie(&changed).expect("the changing session moves to a new id");
    assert_error(
        &get(&server, "/lnm/user", &alice.cookie).await,
        StatusCode::UNAUTHORIZED,
        "authentication",
    );
    let list = get(&server, "/lnm/user/jwt", &alice_cookie).await;
    assert_eq!(
        list.status,
        StatusCode::OK,
        "the changing session goes on: {}",
        list.text
    );
    assert!(
        list.body
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["revoked"] == true),
        "{}",
        list.text
    );

    // Bad requests: unknown or repeated scopes, no scope, expiry out of range, malformed jti.
    for (body, field) in [
        (json!({"scopes": ["admin"], "expiry": 3600}), "scopes"),
        (json!({"scopes": ["user", "user"], "expiry": 3600}), "once"),
        (json!({"scopes": [], "expiry": 3600}), "at least one"),
        (json!({"scopes": ["user"], "expiry": 0}), "expiry"),
        (json!({"scopes": ["user"], "expiry": 400_000_000}), "expiry"),
        (json!({"scopes": ["user"]}), "invalid request"),
    ] {
        let refused = post(&server, "/lnm/user/jwt", &alice_cookie, body).await;
        assert_error(&refused, StatusCode::BAD_REQUEST, field);
    }
    let malformed = lnm(
        &server,
        Method::DELETE,
        "/lnm/user/jwt?jti=../../etc",
        Some(&alice_cookie),
        None,
    )
    .await;
    assert_error(&malformed, StatusCode::BAD_REQUEST, "jti");
    let missing = lnm(
        &server,
        Method::DELETE,
        "/lnm/user/jwt",
        Some(&alice_cookie),
        None,
    )
    .await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "jti");
    assert_books_balance(&server).await;
}

/// Signs `name` in once more: another session of the same account.
async fn trader_login(server: &Server, name: &str) -> String {
    let login = lnm(
        server,
        Method::POST,
        "/lnm/login/credentials",
        None,
        Some(json!({"login": name, "password": PASSWORD})),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    session_cookie(&login).unwrap()
}

async fn an_account_paid_by_invoice_opens_once(server: Server) {
    let alice = trader(&server, "alice").await;
    let offer = lnm(&server, Method::GET, "/lnm/login/credentials", None, None).await;
    assert_eq!(offer.status, StatusCode::OK, "{}", offer.text);
    let bolt11 = offer.body["invoice"].as_str().unwrap();
    let hash = engine::simnet::invoice::decode(bolt11)
        .unwrap()
        .payment_hash;

    // Unpaid: no account.
    let body = json!({"paymentHash": hash, "login": "newtrader", "password": "Fresh-horse-9"});
    let early = lnm(
        &server,
        Method::PUT,
        "/lnm/login/credentials",
        None,
        Some(body.clone()),
    )
    .await;
    assert_error(&early, StatusCode::BAD_REQUEST, "not paid");
    let users = server.user_count().await;

    server
        .services
        .engine
        .simnet
        .pay(PayRequest::new(&alice.node, bolt11, None))
        .await
        .unwrap();
    let opened = lnm(
        &server,
        Method::PUT,
        "/lnm/login/credentials",
        None,
        Some(body),
    )
    .await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.text);
    assert_eq!(opened.body["username"], "newtrader");
    assert_eq!(opened.body["balance"], "1000");
    let cookie = session_cookie(&opened).unwrap();
    assert_eq!(balance(&server, &cookie).await, 1_000);
    assert_eq!(server.user_count().await, users + 1);

    // The same payment opens nothing more.
    let again = json!({"paymentHash": hash, "login": "second", "password": "Fresh-horse-9"});
    let again = lnm(
        &server,
        Method::PUT,
        "/lnm/login/credentials",
        None,
        Some(again),
    )
    .await;
    assert_error(&again, StatusCode::BAD_REQUEST, "used already");
    assert_eq!(server.user_count().await, users + 1);
    assert_books_balance(&server).await;
}

async fn bad_input_answers_400_and_changes_nothing(server: Server) {
    let alice = trader(&server, "alice").await;
    deposit(&server, &alice, &alice.node, 5_000).await;
    let (deposits, withdrawals) = (
        count(&server, "desk_deposits").await,
        count(&server, "desk_withdrawals").await,
    );

    for (body, words) in [
        (json!({"amount": 99}), "100 to 1000000"),
        (json!({"amount": 1_000_001}), "100 to 1000000"),
        (json!({"amount": -5}), "positive"),
        (json!({"amount": "1000"}), "invalid request"),
        (json!({"amount": 1000.5}), "invalid request"),
        (json!({"amount": 1000, "unit": "btc"}), "sat"),
        (json!({}), "invalid request"),
    ] {
        let refused = post(&server, "/lnm/user/deposit", &alice.cookie, body).await;
        assert_error(&refused, StatusCode::BAD_REQUEST, words);
    }
    let other_amount = wallet_invoice(&server, &alice, Some(2_000)).await;
    // A BOLT11 specification vector: mainnet, not this network.
    let mainnet = "lnbc2500u1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu9qrsgquk0rl77nj30yxdy8j9vdx85fkpmdla2087ne0xh8nhedh8w27kyke0lp53ut353s06fv3qfegext0eh0ymjpf39tuven09sam30g4vgpfna3rh";
    let exchange_own = post(
        &server,
        "/lnm/user/deposit",
        &alice.cookie,
        json!({"amount": 1000}),
    )
    .await;
    let exchange_own = exchange_own.body["paymentRequest"]
        .as_str()
        .unwrap()
        .to_string();
    let deposits = deposits + 1;
    for (body, words) in [
        (
            json!({"password": PASSWORD, "amount": 999, "invoice": wallet_invoice(&server, &alice, None).await}),
            "at least 1000",
        ),
        (
            json!({"password": PASSWORD, "amount": 3_000, "invoice": other_amount}),
            "asks 2000000 msat",
        ),
        (
            json!({"password": PASSWORD, "amount": 2_500, "invoice": mainnet}),
            "another network",
        ),
        (
            json!({"password": PASSWORD, "amount": 2_000, "invoice": "lnbcrt1nonsense"}),
            "invalid invoice",
        ),
        (
            json!({"password": PASSWORD, "amount": 1_000, "invoice": exchange_own}),
            "exchange's own",
        ),
        (
            json!({"password": PASSWORD, "amount": 9_000, "invoice": wallet_invoice(&server, &alice, Some(9_000)).await}),
            "insufficient",
        ),
        (
            json!({"password": PASSWORD, "amount": 2_000, "unit": "eur", "invoice": wallet_invoice(&server, &alice, None).await}),
            "unit",
        ),
        (
            json!({"password": PASSWORD, "amount": 2_000}),
            "invalid request",
        ),
    ] {
        let refused = post(&server, "/lnm/user/withdraw", &alice.cookie, body).await;
        assert_error(&refused, StatusCode::BAD_REQUEST, words);
    }
    assert_eq!(count(&server, "desk_withdrawals").await, withdrawals);
    // The network refuses one (Carol's node has no channel): debited, then
    // refunded once, and shown as failed.
    let carol = server
        .services
        .engine
        .register("carol", PASSWORD, None, "carol")
        .await
        .unwrap();
    let carol = server
        .services
        .engine
        .simnet
        .node_of_user(&carol.id.0)
        .await
        .unwrap()
        .pubkey;
    let unreachable = server
        .services
        .engine
        .simnet
        .create_invoice(&carol, Some(Msat::from_sat(2_000)), "")
        .await
        .unwrap()
        .bolt11;
    for (body, words) in [(
        json!({"password": PASSWORD, "amount": 2_000, "invoice": unreachable}),
        "no route",
    )] {
        let refused = post(&server, "/lnm/user/withdraw", &alice.cookie, body).await;
        assert_error(&refused, StatusCode::BAD_REQUEST, words);
    }
    for query in ["", "?type=positions", "?type="] {
        let refused = get(&server, &format!("/lnm/user/history{query}"), &alice.cookie).await;
        assert_error(&refused, StatusCode::BAD_REQUEST, "type");
    }
    let link = post(
        &server,
        "/lnm/user/withdraw/lnurl",
        &alice.cookie,
        json!({"password": PASSWORD, "amount": 500}),
    )
    .await;
    assert_error(&link, StatusCode::BAD_REQUEST, "at least 1000");
    let link = post(
        &server,
        "/lnm/user/withdraw/lnurl",
        &alice.cookie,
        json!({"password": PASSWORD, "amount": 50_000}),
    )
    .await;
    assert_error(&link, StatusCode::BAD_REQUEST, "insufficient");

    assert_eq!(balance(&server, &alice.cookie).await, 5_000);
    assert_eq!(count(&server, "desk_deposits").await, deposits);
    assert_eq!(
        count(&server, "desk_withdrawals").await,
        withdrawals + 1,
        "only the refused-by-the-network one, refunded"
    );
    let history = get(&server, "/lnm/user/history?type=withdraw", &alice.cookie).await;
    assert_eq!(
        history.body["transaction"][0]["fail"], true,
        "{}",
        history.text
    );

    // Without credentials: 401 in the API's format.
    let anonymous = lnm(
        &server,
        Method::POST,
        "/lnm/user/deposit",
        None,
        Some(json!({"amount": 1000})),
    )
    .await;
    assert_error(&anonymous, StatusCode::UNAUTHORIZED, "authentication");
    let forged = lnm(
        &server,
        Method::GET,
        "/lnm/user",
        Some("Bearer not.a.token"),
        None,
    )
    .await;
    assert_error(&forged, StatusCode::UNAUTHORIZED, "authentication");
    // A cross-site write is refused before it runs.
    let cross = server
        .send(
            Request::post("/lnm/user/deposit")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::COOKIE, &alice.cookie)
                .header(header::ORIGIN, "https://evil.example")
                .body(Body::from(json!({"amount": 1000}).to_string()))
                .unwrap(),
        )
        .await;
    assert_error(&cross, StatusCode::FORBIDDEN, "cross-origin");
    assert_eq!(count(&server, "desk_deposits").await, deposits);
    assert_books_balance(&server).await;
}

async fn the_state_routes_describe_the_exchange(server: Server) {
    let api = lnm(&server, Method::GET, "/lnm/state/api", None, None).await;
    assert_eq!(
        api.body,
        json!({"withdraw": true, "newposition": true, "accountCreation": true})
    );
    let node = lnm(&server, Method::GET, "/lnm/state/node", None, None).await;
    let exchange = server.services.engine.desk.node().pubkey.clone();
    assert_eq!(node.body["pubkey"], exchange.as_str());
    assert_eq!(node.body["alias"], "exchange");
    assert_eq!(node.body["uri"], format!("{exchange}@wallet.example:8443"));
    // Its channels carry the configured liquidity both ways, open at once.
    let channels = server
        .services
        .engine
        .simnet
        .live_channels(&exchange)
        .await
        .unwrap();
    let outbound: i64 = channels.iter().map(|c| c.local.0).sum();
    let inbound: i64 = channels.iter().map(|c| c.remote_balance.0).sum();
    let liquidity = server.services.engine.desk.config().liquidity.0;
    assert_eq!((outbound, inbound), (liquidity, liquidity));
    let document = lnm(&server, Method::GET, "/lnm/openapi.json", None, None).await;
    assert_eq!(document.body["servers"][0]["url"], "/lnm");
}

async fn unknown_routes_and_methods_answer_in_the_apis_format(server: Server) {
    let unknown = lnm(&server, Method::GET, "/lnm/nothing/here", None, None).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "no such route");
    let lnurl = lnm(&server, Method::GET, "/lnm/lnurl/w?k1=zz&pr=x", None, None).await;
    assert_eq!(lnurl.status, StatusCode::BAD_REQUEST, "{}", lnurl.text);
    assert_eq!(lnurl.body["status"], "ERROR");
    assert!(lnurl.body["reason"].as_str().unwrap().contains("k1"));
    let method = lnm(&server, Method::PATCH, "/lnm/user", None, None).await;
    assert_error(
        &method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed",
    );
    // Nobody opens a channel to the exchange's node: its liquidity is the hub's.
    let alice = trader(&server, "alice").await;
    let exchange = server.services.engine.desk.node().pubkey.clone();
    let refused = server
        .services
        .engine
        .simnet
        .open_channel(&alice.node, &exchange, Msat::from_sat(100_000))
        .await;
    assert!(
        matches!(
            &refused,
            Err(engine::Error::Invalid {
                field: "remotenode",
                ..
            })
        ),
        "{refused:?}"
    );
}

/// Runs the Python test wallet (`server/tests/wallets/wallet.py`) off the
/// runtime's thread, so the server keeps answering it.
async fn run_wallet(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        std::process::Command::new(format!("{root}/.venv/bin/python"))
            .arg(format!("{root}/server/tests/wallets/wallet.py"))
            .args(&args)
            .output()
            .expect("the test venv (.venv, made by scripts/test)")
    })
    .await
    .unwrap()
}

/// What the test wallet printed, once it went through with `args`.
async fn wallet(args: &[&str]) -> Value {
    let out = run_wallet(args).await;
    assert!(
        out.status.success(),
        "wallet {args:?} refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn a_phone_wallet_claims_an_lnurl_withdraw_once((server, _base): (Server, String)) {
    let alice = trader(&server, "alice").await;
    let bob = trader(&server, "bob").await;
    deposit(&server, &alice, &alice.node, 40_000).await;
    let link = post(
        &server,
        "/lnm/user/withdraw/lnurl",
        &alice.cookie,
        json!({"password": PASSWORD, "amount": 12_000}),
    )
    .await;
    assert_eq!(link.status, StatusCode::OK, "{}", link.text);
    let lnurl = link.body["lnurl"].as_str().unwrap().to_string();
    assert!(
        lnurl.starts_with("LNURL1"),
        "upper case for QR codes: {lnurl}"
    );

    // Bob's phone wallet scans it and asks to be paid to its own invoice.
    let invoice = wallet_invoice(&server, &bob, Some(12_000)).await;
    let claimed = wallet(&["lnurl-withdraw", &lnurl, &invoice]).await;
    assert_eq!(claimed["request"]["tag"], "withdrawRequest");
    assert_eq!(claimed["request"]["maxWithdrawable"], 12_000_000);
    assert_eq!(claimed["status_code"], 200, "{claimed}");
    assert_eq!(claimed["body"]["status"], "OK", "{claimed}");
    let (held, fees) = held_and_fees(&server, &alice).await;
    assert_eq!(held, 28_000_000 - fees);

    // Scanned again: refused, nothing paid.
    let again_invoice = wallet_invoice(&server, &bob, Some(12_000)).await;
    let again = run_wallet(&["lnurl-withdraw", &lnurl, &again_invoice]).await;
    let said = String::from_utf8_lossy(&again.stdout).to_string()
        + &String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("used already"), "{said}");
    assert_eq!(held_and_fees(&server, &alice).await, (held, fees));
    assert_books_balance(&server).await;
}

async fn lnurl_auth_signs_the_waiting_browser_in((server, _base): (Server, String)) {
    // An attacker plants a session of theirs in the victim's browser; asking
    // for a login QR code moves the browser to a fresh session id, so the
    // planted one is never signed in.
    let planted = lnm(&server, Method::GET, "/lnm/lnurl/a/c", None, None).await;
    let planted = session_cookie(&planted).expect("the attacker's session");
    let asked = lnm(&server, Method::GET, "/lnm/lnurl/a/c", Some(&planted), None).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text);
    let browser = session_cookie(&asked).expect("a session for the waiting browser");
    assert_ne!(browser, planted);
    let lnurl = asked.body["lnurl"].as_str().unwrap().to_string();
    assert_error(
        &get(&server, "/lnm/user", &browser).await,
        StatusCode::UNAUTHORIZED,
        "authentication",
    );

    // The waiting page listens for the answer.
    let waiting = {
        use tower::ServiceExt;
        let request = Request::get("/lnm/lnurl/a/events")
            .header(header::COOKIE, &browser)
            .body(Body::empty())
            .unwrap();
        server.router.clone().oneshot(request).await.unwrap()
    };
    assert_eq!(waiting.status(), StatusCode::OK);
    let heard = tokio::spawn(async move {
        use http_body_util::BodyExt;
        let body = waiting.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&body).to_string()
    });

    // The phone wallet signs k1 with its linking key (coincurve).
    let secret = engine::random_hex(32);
    let answered = wallet(&["lnurl-auth", &lnurl, &secret]).await;
    assert_eq!(answered["status_code"], 200, "{answered}");
    assert_eq!(answered["body"]["status"], "OK", "{answered}");
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), heard)
        .await
        .expect("the stream tells and ends")
        .unwrap();
    assert!(
        heard.contains(r#"{"type":"challenge_answered"}"#),
        "{heard}"
    );

    // The browser's next request is signed in, as a new keyed account (under
    // a new session id), and its LNURL-auth is handed over only once.
    let user = get(&server, "/lnm/user", &browser).await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.text);
    assert_eq!(user.body["account_type"], "lnurl");
    let key = answered["key"].as_str().unwrap();
    assert_eq!(user.body["username"], format!("ln-{}", &key[..10]));

    assert_error(
        &get(&server, "/lnm/user", &planted).await,
        StatusCode::UNAUTHORIZED,
        "authentication",
    );

    // The same answer again (a replay) is refused.
    let replay = wallet(&["lnurl-auth", &lnurl, &secret]).await;
    assert_eq!(replay["status_code"], 400, "{replay}");
    assert_eq!(replay["body"]["status"], "ERROR");

    // Another browser signing in with the same key reaches the same account.
    let asked = lnm(&server, Method::GET, "/lnm/lnurl/a/c", None, None).await;
    let second = session_cookie(&asked).unwrap();
    let answered = wallet(&["lnurl-auth", asked.body["lnurl"].as_str().unwrap(), &secret]).await;
    assert_eq!(answered["body"]["status"], "OK", "{answered}");
    let again = get(&server, "/lnm/user", &second).await;
    assert_eq!(again.body["uid"], user.body["uid"]);
    assert_books_balance(&server).await;
}

/// A signed-in account's link code (`/api/ui/lnurl_link_create`), as the
/// security page asks for it with the session's CSRF token.
async fn link_code(server: &Server, cookie: &str, csrf: &str) -> common::Reply {
    let request = Request::post("/api/ui/lnurl_link_create")
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("_csrf={csrf}")))
        .unwrap();
    server.send(request).await
}

async fn an_lnurl_auth_links_a_wallet_key_to_a_signed_in_account(
    (server, _base): (Server, String),
) {
    server.register("linda").await;
    let cookie = server.session_login("linda", None).await;
    let csrf = get(&server, "/rest/v1/getalldata", &cookie).await.body["_csrf"]
        .as_str()
        .unwrap()
        .to_string();
    let linda = get(&server, "/lnm/user", &cookie).await.body["uid"].clone();

    // Without the CSRF token nothing is issued.
    let forged = link_code(&server, &cookie, "forged").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);

    // The phone wallet (coincurve, the PyPI lnurl package) answers the code.
    let code = link_code(&server, &cookie, &csrf).await;
    assert_eq!(code.status, StatusCode::OK, "{}", code.text);
    let lnurl = code.body["lnurl"].as_str().unwrap().to_string();
    let secret = engine::random_hex(32);
    let answered = wallet(&["lnurl-auth", &lnurl, &secret]).await;
    assert_eq!(answered["body"]["status"], "OK", "{answered}");
    let key = answered["key"].as_str().unwrap().to_string();
    let users_before = server.user_count().await;

    // Once only.
    let replay = wallet(&["lnurl-auth", &lnurl, &secret]).await;
    assert_eq!(replay["status_code"], 400, "{replay}");

    // The wallet now signs in to linda's account, not to a new one.
    let asked = lnm(&server, Method::GET, "/lnm/lnurl/a/c", None, None).await;
    let browser = session_cookie(&asked).unwrap();
    let signed = wallet(&["lnurl-auth", asked.body["lnurl"].as_str().unwrap(), &secret]).await;
    assert_eq!(signed["body"]["status"], "OK", "{signed}");
    let user = get(&server, "/lnm/user", &browser).await;
    assert_eq!(user.body["uid"], linda, "{}", user.text);
    assert_eq!(server.user_count().await, users_before);

    // A key that signs in to another account is not taken from it.
    let asked = lnm(&server, Method::GET, "/lnm/lnurl/a/c", None, None).await;
    let other_secret = engine::random_hex(32);
    let own = wallet(&[
        "lnurl-auth",
        asked.body["lnurl"].as_str().unwrap(),
        &other_secret,
    ])
    .await;
    assert_eq!(own["body"]["status"], "OK", "{own}");
    let code = link_code(&server, &cookie, &csrf).await;
    let taken = wallet(&[
        "lnurl-auth",
        code.body["lnurl"].as_str().unwrap(),
        &other_secret,
    ])
    .await;
    assert_eq!(taken["body"]["status"], "ERROR", "{taken}");
    let accounts = &server.services.engine.accounts;
    let user = accounts
        .get(linda.as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let keys = accounts.linked_keys(&user).await.unwrap();
    assert_eq!(keys, vec![(key, "lnurl".to_string())]);

    // A sign-in code's answer is no link code's: the two links' MACs differ.
    let asked = lnm(&server, Method::GET, "/lnm/lnurl/a/c", None, None).await;
    let sign_in_url = engine::lnurl::decode(asked.body["lnurl"].as_str().unwrap()).unwrap();
    let forged_link = engine::lnurl::encode(&format!("{sign_in_url}&action=link"));
    let refused = wallet(&["lnurl-auth", &forged_link, &engine::random_hex(32)]).await;
    assert_eq!(refused["body"]["status"], "ERROR", "{refused}");
}

async fn joule_signs_in_with_an_independently_made_signature_once(
    (server, _base): (Server, String),
) {
    let challenge = lnm(&server, Method::GET, "/lnm/login/joule", None, None).await;
    assert_eq!(challenge.status, StatusCode::OK, "{}", challenge.text);
    let message = challenge.body["message"].as_str().unwrap().to_string();
    assert!(challenge.body["expiry"].as_i64().unwrap() > 0);

    // Signed by coincurve in LND's format, as Joule would.
    let secret = engine::random_hex(32);
    let signed = wallet(&["lnd-sign", &secret, &message]).await;
    let body = json!({"message": message, "signature": signed["signature"], "alias": "satoshi"});
    let login = lnm(
        &server,
        Method::POST,
        "/lnm/login/joule",
        None,
        Some(body.clone()),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    assert_eq!(login.body["linkingpublickey"], signed["pubkey"]);
    assert_eq!(login.body["account_type"], "joule");
    assert_eq!(login.body["username"], "satoshi");
    let cookie = session_cookie(&login).unwrap();
    assert_eq!(balance(&server, &cookie).await, 0);

    // Someone took every name a key would get: it still signs in.
    let challenge = lnm(&server, Method::GET, "/lnm/login/joule", None, None).await;
    let message = challenge.body["message"].as_str().unwrap().to_string();
    let other = engine::random_hex(32);
    let signed_other = wallet(&["lnd-sign", &other, &message]).await;
    let key = signed_other["pubkey"].as_str().unwrap();
    for name in [
        format!("ln-{}", &key[..10]),
        format!("ln-{}", &key[..16]),
        format!("ln-{}", &key[..24]),
    ] {
        server
            .services
            .engine
            .register(&name, PASSWORD, None, "squatter")
            .await
            .unwrap();
    }
    let squatted =
        json!({"message": message, "signature": signed_other["signature"], "alias": "satoshi"});
    let squatted = lnm(
        &server,
        Method::POST,
        "/lnm/login/joule",
        None,
        Some(squatted),
    )
    .await;
    assert_eq!(squatted.status, StatusCode::OK, "{}", squatted.text);
    assert_eq!(squatted.body["linkingpublickey"], key);
    assert!(squatted.body["username"]
        .as_str()
        .unwrap()
        .starts_with("ln-"));

    // A captured login replayed: refused.
    let replay = lnm(&server, Method::POST, "/lnm/login/joule", None, Some(body)).await;
    assert_error(&replay, StatusCode::BAD_REQUEST, "used already");
    // The published test vector is a valid signature of a message this server
    // never issued: refused too.
    let vector = json!({"message": "test", "signature": "rbwzq7bjg1iw4xthgt463a1d88w5k4zmum9z3xtfbnhc7r3qoizrn8edgwtp8m5m6xfms7pcyccjuggr934tkkjwzewsid44zqub4iux", "alias": "x"});
    let vector = lnm(
        &server,
        Method::POST,
        "/lnm/login/joule",
        None,
        Some(vector),
    )
    .await;
    assert_error(&vector, StatusCode::BAD_REQUEST, "challenge");
    // Garbage in the signature: 400, no panic.
    let challenge = lnm(&server, Method::GET, "/lnm/login/joule", None, None).await;
    let garbage = json!({"message": challenge.body["message"], "signature": "é!", "alias": "x"});
    let garbage = lnm(
        &server,
        Method::POST,
        "/lnm/login/joule",
        None,
        Some(garbage),
    )
    .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST, "{}", garbage.text);
    assert_books_balance(&server).await;
}

/// The stories of a server whose operator set quotas low and switched the
/// desk's services off.
mod limited {
    use super::*;

    testdb::on_both_databases!(
        strict_server;
        quotas_and_switches_refuse_before_anything_runs,
    );
}

async fn strict_server(url: &str) -> Server {
    let mut settings = engine::Settings::default();
    settings.desk.switches = engine::desk::Switches {
        withdraw: false,
        newposition: false,
        account_creation: false,
    };
    let site = server::Site {
        lnm_requests_per_minute: 5,
        ..server::Site::for_tests(true)
    };
    Server::open_with_settings(url, settings, site).await
}

async fn quotas_and_switches_refuse_before_anything_runs(server: Server) {
    let state = lnm(&server, Method::GET, "/lnm/state/api", None, None).await;
    assert_eq!(
        state.body,
        json!({"withdraw": false, "newposition": false, "accountCreation": false})
    );
    assert_eq!(state.headers["x-ratelimit-remaining"], "4");
    let reset: i64 = state.headers["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > engine::now_ms() && reset <= engine::now_ms() + 60_000);

    let offer = lnm(&server, Method::GET, "/lnm/login/credentials", None, None).await;
    assert_error(&offer, StatusCode::SERVICE_UNAVAILABLE, "switched off");
    let deposits = count(&server, "desk_deposits").await;

    // The address's quota of 5 a minute is spent (2 above, 3 here); the sixth
    // is refused without running.
    for _ in 0..3 {
        let ok = lnm(&server, Method::GET, "/lnm/state/node", None, None).await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    }
    let refused = lnm(&server, Method::GET, "/lnm/login/credentials", None, None).await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "too many requests");
    assert_eq!(refused.headers["x-ratelimit-remaining"], "0");
    let wait: i64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(count(&server, "desk_deposits").await, deposits);
    // The wallet's API has no such quota.
    let wallet = server.get("/rest/v1/ping", common::Auth::None).await;
    assert_eq!(wallet.status, StatusCode::UNAUTHORIZED);
}

/// Every `/lnm` server function is described in `/lnm/openapi.json`, and the
/// document describes nothing else. (It does not depend on the storage.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lnm_document_describes_every_lnm_route() {
    let db = testdb::sqlite();
    let server = Server::open(&db.url).await;
    let reply = lnm(&server, Method::GET, "/lnm/openapi.json", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let paths = reply.body["paths"].as_object().expect("paths");
    // Beside the server functions: the LNURL-auth event stream and the
    // realtime WebSocket (axum's).
    let mut served = vec![
        ("get".to_string(), "/lnurl/a/events".to_string()),
        ("get".to_string(), "/realtime".to_string()),
    ];
    for (path, method) in leptos::server_fn::axum::server_fn_paths() {
        if let Some(spec_path) = path.strip_prefix("/lnm") {
            served.push((method.as_str().to_ascii_lowercase(), spec_path.to_string()));
            assert!(
                paths
                    .get(spec_path)
                    .is_some_and(|ops| ops[method.as_str().to_ascii_lowercase()].is_object()),
                "{method} {path} is served but not described"
            );
        }
    }
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            assert!(
                served.contains(&(method.clone(), path.clone())),
                "{method} {path} is described but not served"
            );
        }
    }
    assert_eq!(
        served.len(),
        31,
        "the spec's 25 operations, GET /login/joule, POST /positions/add-margin, \
         GET /lnurl/a/events, GET /market/ticker, GET /market/history and GET /realtime"
    );
}
