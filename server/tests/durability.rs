//! An acknowledged payment survives `kill -9`: the real `ampere` binary is
//! started, a payment is made over HTTP, the process is killed without warning
//! the moment the payment is acknowledged, and a restarted server still has it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

testdb::on_both_databases!(
    database_url;
    an_acknowledged_payment_survives_kill_9,
);

async fn database_url(url: &str) -> String {
    url.to_string()
}

struct Ampere {
    child: Child,
    base: String,
}

impl Ampere {
    fn start(database_url: &str, data_dir: &std::path::Path) -> Ampere {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_ampere"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                database_url,
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--block-interval", "0", "--simnet-dev", "--log", "warn"])
            .stdout(Stdio::null())
            .spawn()
            .expect("the ampere binary");
        let ampere = Ampere {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while curl(&ampere.base, "GET", "/healthz", None, None).0 != 200 {
            assert!(Instant::now() < deadline, "ampere did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        ampere
    }

    fn call(&self, path: &str, token: &str, body: Value) -> Value {
        let (status, reply) = curl(&self.base, "POST", path, Some(token), Some(body));
        assert!(status == 200 || status == 201, "{path}: {status} {reply}");
        assert!(reply["error"].is_null(), "{path}: {reply}");
        reply
    }

    fn kill_9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

impl Drop for Ampere {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP request with curl: the status and the JSON body.
fn curl(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut command = Command::new("curl");
    command.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method]);
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    if let Some(body) = body {
        command.args([
            "-H",
            "Content-Type: application/json",
            "-d",
            &body.to_string(),
        ]);
    }
    let out = command.arg(format!("{base}{path}")).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        status.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn register(ampere: &Ampere, name: &str) -> String {
    let reply = ampere.call(
        "/api/v1/auth/register",
        "",
        json!({"username": name, "password": "Correct-horse-7"}),
    );
    reply["access_token"].as_str().unwrap().to_string()
}

fn data(ampere: &Ampere, token: &str) -> Value {
    let (status, reply) = curl(
        &ampere.base,
        "GET",
        "/rest/v1/getalldata",
        Some(token),
        None,
    );
    assert_eq!(status, 200, "{reply}");
    reply
}

async fn an_acknowledged_payment_survives_kill_9(url: String) {
    let dir = tempfile::tempdir().unwrap();
    let url = if url.starts_with("sqlite:") {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("ampere.db").display()
        )
    } else {
        url
    };
    let ampere = Ampere::start(&url, dir.path());
    let alice = register(&ampere, "alice");
    let bob = register(&ampere, "bob");
    for token in [&alice, &bob] {
        let address = data(&ampere, token)["address"]
            .as_str()
            .unwrap()
            .to_string();
        ampere.call(
            "/api/v1/simnet/faucet",
            token,
            json!({"address": address, "sats": 2_000_000}),
        );
        ampere.call("/api/v1/simnet/mine", token, json!({"blocks": 1}));
        let hub = data(&ampere, token)["addressbook"][0]["nodeId"]
            .as_str()
            .unwrap()
            .to_string();
        ampere.call(
            "/rest/v1/openchannel",
            token,
            json!({"remotenode": hub, "amount": 1_000_000}),
        );
        ampere.call("/api/v1/simnet/mine", token, json!({"blocks": 6}));
    }
    let invoice = ampere.call(
        "/rest/v1/createinvoice",
        &bob,
        json!({"amount": 4321, "memo": "durable"}),
    );
    let paid = ampere.call(
        "/rest/v1/sendinvoice",
        &alice,
        json!({"invoiceid": invoice["payment_request"]}),
    );
    assert_eq!(paid["payment"]["amount"], 4321);
    ampere.kill_9();

    let restarted = Ampere::start(&url, dir.path());
    let bob_data = data(&restarted, &bob);
    assert_eq!(
        bob_data["transactions"][0]["type"], "received",
        "{bob_data}"
    );
    assert_eq!(bob_data["transactions"][0]["amount"], 4321);
    assert_eq!(bob_data["transactions"][0]["id"], invoice["payment_hash"]);
    assert_eq!(bob_data["balances"]["lntfunds"], 1_000_000 + 4321);
    let alice_data = data(&restarted, &alice);
    assert_eq!(
        alice_data["transactions"][0]["type"], "sent",
        "{alice_data}"
    );
    // The invoice stays paid: paying it again after the restart is refused.
    let (_, again) = curl(
        &restarted.base,
        "POST",
        "/rest/v1/sendinvoice",
        Some(&alice),
        Some(json!({"invoiceid": invoice["payment_request"]})),
    );
    assert_eq!(again["error"]["message"], "invoice already paid");
}
