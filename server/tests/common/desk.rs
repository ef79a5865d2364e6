//! What the desk's (`/lnm`) HTTP suites share: traders with a funded wallet,
//! calls in the API's own way, deposits, and the books' check.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{session_cookie, Auth, Reply, Server, PASSWORD};
use engine::simnet::PayRequest;
use engine::Msat;

/// A trader: an account whose wallet node has a channel to the hub (and the
/// hub's back), signed in to the desk with the session cookie.
pub struct Trader {
    pub user_id: String,
    pub node: String,
    pub cookie: String,
}

/// Funds `user_id`'s wallet node and opens its channel to the hub (2,000,000
/// sats, confirmed): answers the node's pubkey.
pub async fn wallet_with_channel(server: &Server, user_id: &str) -> String {
    let engine = &server.services.engine;
    let node = engine.simnet.node_of_user(user_id).await.unwrap();
    engine
        .simnet
        .faucet(&node.address, Msat::from_sat(3_000_000))
        .await
        .unwrap();
    engine.simnet.mine(1).await.unwrap();
    let hub = engine.simnet.hub().await.unwrap().pubkey;
    engine
        .simnet
        .open_channel(&node.pubkey, &hub, Msat::from_sat(2_000_000))
        .await
        .unwrap();
    engine.simnet.mine(6).await.unwrap();
    node.pubkey
}

pub async fn trader(server: &Server, name: &str) -> Trader {
    let engine = &server.services.engine;
    let user = engine.register(name, PASSWORD, None, name).await.unwrap();
    let node = wallet_with_channel(server, &user.id.0).await;
    let login = lnm(
        server,
        Method::POST,
        "/lnm/login/credentials",
        None,
        Some(json!({"login": name, "password": PASSWORD})),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    assert_eq!(login.body["username"], name);
    assert_eq!(login.body["account_type"], "credentials");
    Trader {
        user_id: user.id.0,
        node,
        cookie: session_cookie(&login).expect("the session cookie"),
    }
}

/// A call to the desk's API: `auth` is a `Cookie` or `Authorization` header
/// value (the cookie writes carry no CSRF token, as the spec has none).
pub async fn lnm(
    server: &Server,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let auth = match auth {
        None => Auth::None,
        Some(auth) => match auth.strip_prefix("Bearer ") {
            Some(token) => Auth::Bearer(token),
            None => Auth::Cookie(auth),
        },
    };
    let body = body.map(|body| body.to_string());
    server.call(method, path, auth, body.as_deref()).await
}

pub async fn get(server: &Server, path: &str, auth: &str) -> Reply {
    lnm(server, Method::GET, path, Some(auth), None).await
}

pub async fn post(server: &Server, path: &str, auth: &str, body: Value) -> Reply {
    lnm(server, Method::POST, path, Some(auth), Some(body)).await
}

/// A desk token of the session's account with `scopes`, for an hour, as the
/// `Authorization` header value.
pub async fn bearer(server: &Server, cookie: &str, scopes: &[&str]) -> String {
    let made = post(
        server,
        "/lnm/user/jwt",
        cookie,
        serde_json::json!({"scopes": scopes, "expiry": 3600}),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text);
    format!("Bearer {}", made.body["signature"].as_str().unwrap())
}

/// The trading balance `GET /lnm/user` shows, in sats.
pub async fn balance(server: &Server, auth: &str) -> i64 {
    let user = get(server, "/lnm/user", auth).await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.text);
    user.body["balance"].as_str().unwrap().parse().unwrap()
}

/// Deposits `sats` to the trader's balance, paid by `payer`'s wallet node.
pub async fn deposit(server: &Server, trader: &Trader, payer: &str, sats: i64) -> Value {
    let invoice = post(
        server,
        "/lnm/user/deposit",
        &trader.cookie,
        json!({"amount": sats}),
    )
    .await;
    assert_eq!(invoice.status, StatusCode::OK, "{}", invoice.text);
    let bolt11 = invoice.body["paymentRequest"].as_str().unwrap();
    server
        .services
        .engine
        .simnet
        .pay(PayRequest::new(payer, bolt11, None))
        .await
        .expect("the deposit is paid");
    invoice.body
}

pub async fn assert_books_balance(server: &Server) {
    let books = server.services.engine.desk.audit().await.unwrap();
    assert!(books.balanced(), "{books:?}");
    let network = server.services.engine.simnet.audit().await.unwrap();
    assert!(network.balanced(), "{network:?}");
}

pub async fn count(server: &Server, table: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .fetch_one(server.services.engine.db.pool())
        .await
        .unwrap()
        .get("n")
}

pub fn assert_error(reply: &Reply, status: StatusCode, words: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    let message = reply.body["message"].as_str().unwrap_or_else(|| {
        panic!("no message in {}", reply.text);
    });
    assert!(
        message.to_lowercase().contains(words),
        "{message:?} should say {words:?}"
    );
}
