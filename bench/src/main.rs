//! `bench`: a load generator for a running Ampere server. Each scenario runs
//! `--concurrency` workers for `--seconds` over keep-alive HTTP/1.1 connections and
//! prints requests/s with p50 and p99 latencies.
//!
//! `scripts/bench` starts a fresh server and runs this against it; to load your
//! own server: `cargo run --release -p bench -- --url http://127.0.0.1:3000`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::{header, Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::json;

#[derive(Parser, Debug, Clone)]
struct Args {
    /// The server to load.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Simultaneous workers, each with its own account and connection.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How long each scenario runs.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Scenarios to run, in order: login, ping, invoice, pay, dashboard,
    /// trade.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "login,ping,invoice,pay,dashboard,trade"
    )]
    scenarios: Vec<String>,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

const PASSWORD: &str = "Bench-password-1";

// One thread: the load generator shares the machine with the server and should
// cost it as little CPU as possible.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency * 2)
        .build_http();
    let tag = std::process::id();
    let users: Vec<String> = (0..args.concurrency)
        .map(|i| format!("bench{tag}-{i}"))
        .collect();
    for user in &users {
        let body = json!({"username": user, "password": PASSWORD}).to_string();
        let (status, _, text) = send(
            &client,
            Method::POST,
            &format!("{}/api/v1/auth/register", args.url),
            None,
            Some(body),
        )
        .await;
        if status != StatusCode::CREATED {
            eprintln!("could not register {user}: {status} {text}");
            std::process::exit(1);
        }
    }
    let pair = Pair::connect(&client, &args.url, tag).await;
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "scenario", "requests", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for scenario in &args.scenarios {
        let report = match scenario.as_str() {
            "login" => run(&args, &users, &client, Scenario::Login, &pair).await,
            "ping" => run(&args, &users, &client, Scenario::Ping, &pair).await,
            "invoice" => run(&args, &users, &client, Scenario::Invoice, &pair).await,
            "pay" => run(&args, &users, &client, Scenario::Pay, &pair).await,
            "dashboard" => run(&args, &users, &client, Scenario::Dashboard, &pair).await,
            "trade" => run(&args, &users, &client, Scenario::Trade, &pair).await,
            other => {
                eprintln!("unknown scenario {other}");
                std::process::exit(2);
            }
        };
        report.print(scenario);
    }
}

/// One kind of request a worker repeats.
#[derive(Clone, Copy)]
enum Scenario {
    /// `POST /rest/v1/login`: a full argon2id verification each time.
    Login,
    /// `GET /rest/v1/ping` with the session cookie of one login.
    Ping,
    /// `POST /rest/v1/createinvoice` by the payee, with its bearer token.
    Invoice,
    /// The payee creates an invoice and the payer pays it (`sendinvoice`), both
    /// with bearer tokens: one operation.
    Pay,
    /// `GET /` with the session cookie: the signed-in dashboard rendered on the
    /// server (balances, node, address), one page per request.
    Dashboard,
    /// `POST /lnm/positions` (a market buy) then `DELETE /lnm/positions` of
    /// it, with the desk's session cookie: one operation is the pair. Each
    /// worker first deposits to its trading balance, paid by the payer.
    Trade,
}

impl Scenario {
    /// Per-worker setup: the session cookie the requests carry, if any.
    async fn prepare(
        self,
        client: &HttpClient,
        url: &str,
        user: &str,
        pair: &Pair,
    ) -> Option<String> {
        match self {
            Scenario::Login | Scenario::Invoice | Scenario::Pay => None,
            Scenario::Ping | Scenario::Dashboard => login(client, url, user).await,
            Scenario::Trade => trader(client, url, user, pair).await,
        }
    }

    async fn once(
        self,
        client: &HttpClient,
        url: &str,
        user: &str,
        cookie: Option<&str>,
        pair: &Pair,
    ) -> bool {
        match self {
            Scenario::Invoice => create_invoice(client, url, &pair.payee).await.is_some(),
            Scenario::Pay => {
                let Some(invoice) = create_invoice(client, url, &pair.payee).await else {
                    return false;
                };
                pair.pay(client, url, &invoice).await.is_ok()
            }
            Scenario::Login => login(client, url, user).await.is_some(),
            Scenario::Ping => {
                let uri = format!("{url}/rest/v1/ping");
                send(client, Method::GET, &uri, cookie, None).await.0 == StatusCode::OK
            }
            Scenario::Dashboard => {
                let (status, _, page) =
                    send(client, Method::GET, &format!("{url}/"), cookie, None).await;
                status == StatusCode::OK && page.contains(r#"data-testid="balance-total""#)
            }
            Scenario::Trade => {
                let order = json!({"type": "m", "side": "b", "margin": 1000, "leverage": 10});
                let uri = format!("{url}/lnm/positions");
                let (status, _, text) =
                    send(client, Method::POST, &uri, cookie, Some(order.to_string())).await;
                let pid = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["pid"].as_str().map(str::to_string));
                let (StatusCode::OK, Some(pid)) = (status, pid) else {
                    return false;
                };
                let uri = format!("{url}/lnm/positions?pid={pid}");
                send(client, Method::DELETE, &uri, cookie, None).await.0 == StatusCode::OK
            }
        }
    }
}

/// Two accounts with bearer tokens, each with an open channel to the hub (made
/// with the simnet's developer endpoints: run the server with `--simnet-dev`).
#[derive(Clone)]
struct Pair {
    payer: String,
    payee: String,
}

impl Pair {
    async fn connect(client: &HttpClient, url: &str, tag: u32) -> Pair {
        let mut tokens = Vec::new();
        for role in ["payer", "payee"] {
            let name = format!("bench{tag}-{role}");
            let body = json!({"username": name, "password": PASSWORD}).to_string();
            let (_, _, text) = send(
                client,
                Method::POST,
                &format!("{url}/api/v1/auth/register"),
                None,
                Some(body),
            )
            .await;
            let token = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["access_token"].as_str().map(str::to_string))
                .unwrap_or_else(|| fail(&format!("registering {name}: {text}")));
            tokens.push(token);
        }
        for token in &tokens {
            let (_, _, text) =
                send_get_bearer(client, &format!("{url}/rest/v1/getalldata"), token).await;
            let data: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let address = data["address"].as_str().unwrap_or_default().to_string();
            let hub = data["addressbook"][0]["nodeId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            // The faucet gives at most 1 BTC a call: two calls fund a 1 BTC
            // channel and its fees.
            let faucet = json!({"address": address, "sats": 100_000_000});
            for (path, body) in [
                ("/api/v1/simnet/faucet", faucet.clone()),
                ("/api/v1/simnet/faucet", faucet),
                ("/api/v1/simnet/mine", json!({"blocks": 1})),
                (
                    "/rest/v1/openchannel",
                    json!({"remotenode": hub, "amount": 100_000_000}),
                ),
                ("/api/v1/simnet/mine", json!({"blocks": 6})),
            ] {
                let (status, _, text) =
                    send_bearer(client, &format!("{url}{path}"), token, body.to_string()).await;
                if status != StatusCode::OK || text.contains("\"error\"") {
                    fail(&format!(
                        "{path}: {status} {text} (is the server running with --simnet-dev?)"
                    ));
                }
            }
        }
        Pair {
            payer: tokens.remove(0),
            payee: tokens.remove(0),
        }
    }
}

/// Signs `user` in to the desk and funds its trading balance (1,000,000
/// sats, paid by the pair's payer): answers the desk's session cookie.
async fn trader(client: &HttpClient, url: &str, user: &str, pair: &Pair) -> Option<String> {
    let body = json!({"login": user, "password": PASSWORD}).to_string();
    let uri = format!("{url}/lnm/login/credentials");
    let (status, cookie, text) = send(client, Method::POST, &uri, None, Some(body)).await;
    let cookie = match (status, cookie) {
        (StatusCode::OK, Some(cookie)) => cookie,
        _ => fail(&format!("desk login of {user}: {status} {text}")),
    };
    let body = json!({"amount": 1_000_000}).to_string();
    let uri = format!("{url}/lnm/user/deposit");
    let (_, _, text) = send(client, Method::POST, &uri, Some(&cookie), Some(body)).await;
    let invoice = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["paymentRequest"].as_str().map(str::to_string))
        .unwrap_or_else(|| fail(&format!("deposit of {user}: {text}")));
    if let Err(answer) = pair.pay(client, url, &invoice).await {
        fail(&format!("paying the deposit of {user}: {answer}"));
    }
    Some(cookie)
}

impl Pair {
    /// The payer pays `invoice` (`sendinvoice`): the server's answer when it
    /// did not.
    async fn pay(&self, client: &HttpClient, url: &str, invoice: &str) -> Result<(), String> {
        let body = json!({"invoiceid": invoice}).to_string();
        let uri = format!("{url}/rest/v1/sendinvoice");
        let (status, _, text) = send_bearer(client, &uri, &self.payer, body).await;
        if status == StatusCode::OK && !text.contains("\"error\"") {
            Ok(())
        } else {
            Err(format!("{status} {text}"))
        }
    }
}

fn fail(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(1);
}

async fn create_invoice(client: &HttpClient, url: &str, token: &str) -> Option<String> {
    let body = json!({"amount": 1, "memo": "bench"}).to_string();
    let (status, _, text) =
        send_bearer(client, &format!("{url}/rest/v1/createinvoice"), token, body).await;
    if status != StatusCode::OK {
        return None;
    }
    serde_json::from_str::<serde_json::Value>(&text).ok()?["payment_request"]
        .as_str()
        .map(str::to_string)
}

async fn send_bearer(
    client: &HttpClient,
    uri: &str,
    token: &str,
    body: String,
) -> (StatusCode, Option<String>, String) {
    request(client, Method::POST, uri, Some(token), None, Some(body)).await
}

async fn send_get_bearer(
    client: &HttpClient,
    uri: &str,
    token: &str,
) -> (StatusCode, Option<String>, String) {
    request(client, Method::GET, uri, Some(token), None, None).await
}

async fn login(client: &HttpClient, url: &str, user: &str) -> Option<String> {
    let body = json!({"username": user, "password": PASSWORD}).to_string();
    let (status, cookie, _) = send(
        client,
        Method::POST,
        &format!("{url}/rest/v1/login"),
        None,
        Some(body),
    )
    .await;
    (status == StatusCode::OK).then_some(cookie).flatten()
}

async fn send(
    client: &HttpClient,
    method: Method,
    uri: &str,
    cookie: Option<&str>,
    json_body: Option<String>,
) -> (StatusCode, Option<String>, String) {
    request(client, method, uri, None, cookie, json_body).await
}

/// Sends one request; answers the status, the `session` cookie if one was set, and the body.
async fn request(
    client: &HttpClient,
    method: Method,
    uri: &str,
    bearer: Option<&str>,
    cookie: Option<&str>,
    json_body: Option<String>,
) -> (StatusCode, Option<String>, String) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    if json_body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(Full::new(Bytes::from(json_body.unwrap_or_default())))
        .expect("request");
    match client.request(request).await {
        Ok(response) => {
            let status = response.status();
            let cookie = response
                .headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|v| v.starts_with("session="))
                .and_then(|v| v.split(';').next())
                .map(str::to_string);
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (status, cookie, String::from_utf8_lossy(&body).into_owned())
        }
        Err(err) => (StatusCode::SERVICE_UNAVAILABLE, None, err.to_string()),
    }
}

struct Report {
    latencies_us: Vec<u64>,
    errors: u64,
    elapsed: Duration,
}

impl Report {
    fn print(mut self, name: &str) {
        self.latencies_us.sort_unstable();
        let count = self.latencies_us.len();
        let pct = |p: f64| {
            if count == 0 {
                0.0
            } else {
                self.latencies_us[((count as f64 * p) as usize).min(count - 1)] as f64 / 1000.0
            }
        };
        println!(
            "{:<10} {:>10} {:>10.0} {:>10.2} {:>10.2} {:>8}",
            name,
            count,
            count as f64 / self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99),
            self.errors
        );
    }
}

async fn run(
    args: &Args,
    users: &[String],
    client: &HttpClient,
    scenario: Scenario,
    pair: &Pair,
) -> Report {
    let deadline = Duration::from_secs(args.seconds);
    let started = Instant::now();
    let workers: Vec<_> = users
        .iter()
        .cloned()
        .map(|user| {
            let client = client.clone();
            let url = args.url.clone();
            let pair = pair.clone();
            tokio::spawn(async move {
                let cookie = scenario.prepare(&client, &url, &user, &pair).await;
                let mut latencies = Vec::with_capacity(1 << 16);
                let mut errors = 0u64;
                while started.elapsed() < deadline {
                    let t = Instant::now();
                    if scenario
                        .once(&client, &url, &user, cookie.as_deref(), &pair)
                        .await
                    {
                        latencies.push(t.elapsed().as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut report = Report {
        latencies_us: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for worker in workers {
        let (latencies, errors) = worker.await.expect("worker");
        report.latencies_us.extend(latencies);
        report.errors += errors;
    }
    report.elapsed = started.elapsed();
    report
}
