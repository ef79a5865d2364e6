//! Several servers on one PostgreSQL behave as one: two real `ampere` processes
//! start together on an empty database behind Debian's nginx as the load
//! balancer. Alice signs up through A and Bob through B; Bob pays Alice through
//! B and Alice's event stream on A sees it live; Alice logs out through B and her
//! session is dead on A at once, her stream on A ends; one process mines; the
//! login throttle, reached through nginx with forged `X-Forwarded-For` headers,
//! counts the real client across both processes.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const PASSWORD: &str = "Correct-horse-7";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Process {
    child: Child,
}

impl Drop for Process {
    /// Asks the process to stop (SIGTERM: nginx then stops its workers too,
    /// which a SIGKILL of its master would leave behind), and kills it if it
    /// has not stopped within 10 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Ampere {
    _process: Process,
    base: String,
}

impl Ampere {
    fn spawn(database_url: &str, data_dir: &Path, block_interval: u32) -> Ampere {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_ampere"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", database_url])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--block-interval", &block_interval.to_string()])
            .args(["--simnet-dev", "--log", "warn"])
            // nginx on this machine is the only proxy whose forwarding is believed.
            .args(["--trusted-proxies", "127.0.0.1/32"])
            .args(["--public-url", "http://wallet.test"])
            .stdout(Stdio::null())
            .spawn()
            .expect("the ampere binary");
        Ampere {
            _process: Process { child },
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Http::new(&self.base).get("/healthz").0 != 200 {
            assert!(Instant::now() < deadline, "{} did not start", self.base);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// nginx in front of the servers, round robin, streams unbuffered.
fn nginx(upstreams: &[&Ampere], dir: &Path) -> (Process, String) {
    let port = free_port();
    let servers: String = upstreams
        .iter()
        .map(|a| format!("server {};\n", a.base.trim_start_matches("http://")))
        .collect();
    let conf = format!(
        "worker_processes 1;\n\
         pid {dir}/nginx.pid;\n\
         error_log {dir}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n\
           access_log off;\n\
           client_body_temp_path {dir}/body;\n\
           proxy_temp_path {dir}/proxy;\n\
           upstream ampere {{ {servers} }}\n\
           server {{\n\
             listen 127.0.0.1:{port};\n\
             location / {{\n\
               proxy_pass http://ampere;\n\
               proxy_http_version 1.1;\n\
               proxy_buffering off;\n\
               proxy_set_header Host $host;\n\
               proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
             }}\n\
           }}\n\
         }}\n",
        dir = dir.display()
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&path)
        .args(["-g", "daemon off;"])
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx (Debian's package, installed by scripts/test)");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Http::new(&base).get("/healthz").0 != 200 {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (Process { child }, base)
}

/// A client of one base URL, with curl: a bearer token or a cookie, extra headers.
struct Http {
    base: String,
    token: Option<String>,
    cookie: Option<String>,
    headers: Vec<String>,
    /// The local address to connect from (a client other than the proxy).
    from: Option<String>,
}

impl Http {
    fn new(base: &str) -> Http {
        Http {
            base: base.to_string(),
            token: None,
            cookie: None,
            headers: Vec::new(),
            from: None,
        }
    }

    fn bearer(base: &str, token: &str) -> Http {
        Http {
            token: Some(token.to_string()),
            ..Http::new(base)
        }
    }

    fn cookie(base: &str, cookie: &str) -> Http {
        Http {
            cookie: Some(cookie.to_string()),
            ..Http::new(base)
        }
    }

    fn header(mut self, header: &str) -> Http {
        self.headers.push(header.to_string());
        self
    }

    fn connecting_from(mut self, address: &str) -> Http {
        self.from = Some(address.to_string());
        self
    }

    fn command(&self, method: &str, path: &str) -> Command {
        let mut command = Command::new("curl");
        command.args(["-s", "-X", method, "--max-time", "30"]);
        if let Some(token) = &self.token {
            command.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        if let Some(cookie) = &self.cookie {
            command.args(["-H", &format!("Cookie: {cookie}")]);
        }
        for header in &self.headers {
            command.args(["-H", header]);
        }
        if let Some(from) = &self.from {
            command.args(["--interface", from]);
        }
        command.arg(format!("{}{path}", self.base));
        command
    }

    /// Status, the header block as sent, and the JSON body.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, String, Value) {
        let mut command = self.command(method, path);
        command.args(["-D", "-"]);
        if let Some(body) = body {
            command.args([
                "-H",
                "Content-Type: application/json",
                "-d",
                &body.to_string(),
            ]);
        }
        let out = command.output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (
            status,
            head.to_string(),
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = self.send("GET", path, None);
        (status, body)
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (status, _, body) = self.send("POST", path, Some(body));
        (status, body)
    }

    /// A call that must succeed.
    fn ok(&self, path: &str, body: Value) -> Value {
        let (status, reply) = self.post(path, body);
        assert!(
            (status == 200 || status == 201) && reply["error"].is_null(),
            "{} {path}: {status} {reply}",
            self.base
        );
        reply
    }

    /// Opens the event stream; its `data:` lines arrive on the channel, and the
    /// channel closes when the server ends the stream.
    fn events(&self) -> (Process, mpsc::Receiver<String>) {
        let mut command = self.command("GET", "/rest/v1/events");
        command.arg("-N").stdout(Stdio::piped());
        let mut child = command.spawn().expect("curl");
        let stdout = child.stdout.take().unwrap();
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(data) = line.strip_prefix("data:") {
                    if send.send(data.trim().to_string()).is_err() {
                        break;
                    }
                }
            }
        });
        (Process { child }, receive)
    }
}

fn register(base: &str, name: &str) -> String {
    let reply = Http::new(base).ok(
        "/api/v1/auth/register",
        json!({"username": name, "password": PASSWORD}),
    );
    reply["access_token"].as_str().unwrap().to_string()
}

/// Coins, a channel to the hub (and the hub's channel back), confirmed.
fn fund_with_channel(client: &Http) {
    let address = client.get("/rest/v1/getalldata").1["address"]
        .as_str()
        .unwrap()
        .to_string();
    client.ok(
        "/api/v1/simnet/faucet",
        json!({"address": address, "sats": 2_000_000}),
    );
    client.ok("/api/v1/simnet/mine", json!({"blocks": 1}));
    let hub = client.get("/rest/v1/getalldata").1["addressbook"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["alias"] == "hub")
        .unwrap()["nodeId"]
        .as_str()
        .unwrap()
        .to_string();
    client.ok(
        "/rest/v1/openchannel",
        json!({"remotenode": hub, "amount": 1_000_000}),
    );
}

fn count(database_url: &str, sql: &str) -> i64 {
    let out = Command::new("psql")
        .args(["-qtA", "-d", database_url, "-c", sql])
        .output()
        .expect("psql");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(-1)
}

#[test]
fn two_servers_on_one_postgres_behind_nginx_behave_as_one() {
    let url = testdb::postgres();
    let dir = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();

    // Both start at the same moment on the empty database, both with a timer
    // miner: one hub gets created, and one of them mines.
    let a = Ampere::spawn(&url, &dir_a, 1);
    let b = Ampere::spawn(&url, &dir_b, 1);
    a.wait_healthy();
    b.wait_healthy();
    assert_eq!(
        count(
            &url,
            "SELECT COUNT(*) FROM nodes WHERE user_id IS NULL AND alias = 'hub'"
        ),
        1,
        "one hub"
    );
    let (_nginx, lb) = nginx(&[&a, &b], dir.path());

    // Sign-up through A and B; both see each other's accounts.
    let alice_token = register(&a.base, "alice");
    let bob_token = register(&b.base, "bob");
    let alice_on_a = Http::bearer(&a.base, &alice_token);
    let bob_on_b = Http::bearer(&b.base, &bob_token);
    fund_with_channel(&alice_on_a);
    fund_with_channel(&bob_on_b);
    // Their channels open after 3 blocks, the hub's channels back 3 blocks
    // later: mined here, not left to the timer miners' pace.
    bob_on_b.ok("/api/v1/simnet/mine", json!({"blocks": 7}));

    // Alice's browser session lives on A; her event stream is open on A.
    let (status, head, login) = Http::new(&a.base).send(
        "POST",
        "/rest/v1/login",
        Some(json!({"username": "alice", "password": PASSWORD})),
    );
    assert_eq!(status, 200, "{login}");
    let cookie = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim())
        })
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let csrf = login["_csrf"].as_str().unwrap().to_string();
    let alice_browser_a = Http::cookie(&a.base, &cookie);
    let (_stream, events) = alice_browser_a.events();
    std::thread::sleep(Duration::from_millis(300));

    // Bob pays Alice through B; A's stream says so.
    let invoice = alice_on_a.ok(
        "/rest/v1/createinvoice",
        json!({"amount": 1234, "memo": "scale"}),
    );
    let hash = invoice["payment_hash"].as_str().unwrap().to_string();
    let paid = bob_on_b.ok(
        "/rest/v1/sendinvoice",
        json!({"invoiceid": invoice["payment_request"]}),
    );
    assert_eq!(paid["payment"]["payment_hash"], hash.as_str());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = events
            .recv_timeout(left)
            .expect("A's stream shows the payment made through B");
        if line.contains("invoice_settled") && line.contains(&hash) {
            break;
        }
    }

    // Logout through B with Alice's cookie: dead on A at once, stream ended.
    let alice_browser_b = Http::cookie(&b.base, &cookie);
    let (status, _) = alice_browser_b.post(&format!("/rest/v1/logout?_csrf={csrf}"), json!({}));
    assert_eq!(status, 200);
    assert_eq!(
        alice_browser_a.get("/rest/v1/ping").0,
        401,
        "A forgot the session"
    );
    let ended = Instant::now() + Duration::from_secs(5);
    loop {
        match events.recv_timeout(ended.saturating_duration_since(Instant::now())) {
            Ok(_) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("A's stream outlived the logout"),
        }
    }

    // One miner: over three seconds two timer miners would make about six
    // blocks; one makes about three (the blocks mined on demand come on top).
    let before = count(&url, "SELECT COUNT(*) FROM blocks");
    std::thread::sleep(Duration::from_secs(3));
    let mined = count(&url, "SELECT COUNT(*) FROM blocks") - before;
    assert!((1..=4).contains(&mined), "{mined} blocks in 3 s");

    // One ticker, its price everywhere: over three seconds two would record
    // about six quotes; one records about three, and B quotes what A quotes
    // (the one read between two of A's, whichever tick it fell in).
    let before = count(&url, "SELECT COUNT(*) FROM desk_prices");
    std::thread::sleep(Duration::from_secs(3));
    let quoted = count(&url, "SELECT COUNT(*) FROM desk_prices") - before;
    assert!((1..=4).contains(&quoted), "{quoted} quotes in 3 s");
    let ticker = |base: &str| {
        let (status, quote) = Http::new(base).get("/lnm/market/ticker");
        assert_eq!(status, 200, "{quote}");
        quote
    };
    let (first, on_b, then) = (ticker(&a.base), ticker(&b.base), ticker(&a.base));
    assert!(
        on_b == first || on_b == then,
        "B quotes {on_b}, A {first} then {then}"
    );

    // Through nginx: the per-client login throttle (20 failures in 15 min)
    // counts the real client across both processes, however the client forges
    // its X-Forwarded-For. The client connects from 127.0.0.2: only nginx, on
    // 127.0.0.1, is a trusted proxy.
    let mut refused_at = None;
    for attempt in 1..=24 {
        let client = Http::new(&lb)
            .connecting_from("127.0.0.2")
            .header(&format!("X-Forwarded-For: 203.0.113.{attempt}"));
        let (status, _) = client.post(
            "/api/v1/auth",
            json!({"username": format!("nobody{attempt}"), "password": "Wrong-pass-1"}),
        );
        if status == 429 {
            refused_at = Some(attempt);
            break;
        }
        assert_eq!(status, 401);
    }
    assert_eq!(
        refused_at,
        Some(21),
        "the 21st failure from one client is refused"
    );
    // And a bearer call through nginx reaches either server as the same account.
    for _ in 0..4 {
        assert_eq!(Http::bearer(&lb, &bob_token).get("/rest/v1/ping").0, 200);
    }
}
