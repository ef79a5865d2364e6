//! The myLightning wallet API over HTTP, on SQLite and PostgreSQL: two accounts
//! fund their nodes, open channels to the hub, invoice and pay each other, and
//! every refusal and bad input is answered clearly and changes nothing.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};

use common::{session_cookie, Reply, Server, PASSWORD};

testdb::on_both_databases!(
    open_server;
    alice_and_bob_pay_each_other_through_the_hub,
    cookie_writes_need_the_csrf_token_and_bearer_calls_do_not,
    cookie_payments_recheck_the_password,
    refusals_answer_200_with_a_message_and_change_nothing,
    bad_amounts_and_invoices_get_400_and_change_nothing,
    denominations_change_how_amounts_read_and_write,
    qr_images_are_png_and_read_back_exactly,
    invoices_decode_with_an_independent_bolt11_decoder,
    live_events_tell_bob_his_invoice_is_paid,
    simnet_developer_endpoints_are_404_unless_enabled,
    an_invoice_is_read_before_it_is_paid,
    contacts_are_added_refused_and_removed,
    the_history_filters_and_exports_the_same_transactions,
    a_photo_of_a_qr_code_is_read_back,
);

async fn open_server(url: &str) -> Server {
    Server::open(url).await
}

/// A signed-up account with both credentials.
struct Account {
    cookie: String,
    csrf: String,
    token: String,
    node: String,
    address: String,
}

async fn sign_up(server: &Server, name: &str) -> Account {
    let token = server.register(name).await;
    let login = server
        .post_json(
            "/rest/v1/login",
            &json!({"username": name, "password": PASSWORD}).to_string(),
            None,
        )
        .await;
    let cookie = session_cookie(&login).unwrap();
    let csrf = login.body["_csrf"].as_str().unwrap().to_string();
    let mut account = Account {
        cookie,
        csrf,
        token,
        node: String::new(),
        address: String::new(),
    };
    let data = get_all_data(server, &account).await;
    account.node = data["info"]["nodeId"].as_str().unwrap().to_string();
    account.address = data["address"].as_str().unwrap().to_string();
    account
}

/// A cookie-authenticated write with the CSRF header.
async fn call(server: &Server, account: &Account, path: &str, body: Value) -> Reply {
    server
        .send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::COOKIE, &account.cookie)
                .header("x-csrf-token", &account.csrf)
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
}

/// A bearer-token write: no cookie, no CSRF token, no password re-check.
async fn bearer(server: &Server, account: &Account, path: &str, body: Value) -> Reply {
    server
        .send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Bearer {}", account.token))
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
}

/// A new invoice of `account`: its `payment_request`.
async fn invoice(server: &Server, account: &Account, body: Value) -> String {
    let reply = call(server, account, "/rest/v1/createinvoice", body).await;
    let request = reply.body["payment_request"].as_str();
    request
        .unwrap_or_else(|| panic!("no invoice: {}", reply.text))
        .to_string()
}

async fn get_all_data(server: &Server, account: &Account) -> Value {
    let reply = server
        .get("/rest/v1/getalldata", common::Auth::Cookie(&account.cookie))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body
}

async fn hub_of(server: &Server, account: &Account) -> String {
    let data = get_all_data(server, account).await;
    let hub = data["addressbook"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["alias"] == "hub")
        .unwrap();
    hub["nodeId"].as_str().unwrap().to_string()
}

async fn mine(server: &Server, account: &Account, blocks: i64) {
    let reply = call(
        server,
        account,
        "/api/v1/simnet/mine",
        json!({"blocks": blocks}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

/// Funds the account and opens a 1,000,000 sat channel to the hub; mines until
/// the hub's channel back is open too.
async fn connect(server: &Server, account: &Account) {
    let funded = call(
        server,
        account,
        "/api/v1/simnet/faucet",
        json!({"address": account.address, "sats": 2_000_000}),
    )
    .await;
    assert_eq!(funded.status, StatusCode::OK, "{}", funded.text);
    mine(server, account, 1).await;
    let hub = hub_of(server, account).await;
    let opened = call(
        server,
        account,
        "/rest/v1/openchannel",
        json!({"remotenode": format!("{hub}@127.0.0.1:9735"), "amount": 1_000_000}),
    )
    .await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.text);
    assert!(opened.body["error"].is_null(), "{}", opened.text);
    assert_eq!(opened.body["channel"]["state"], "Pending (3 blocks)");
    mine(server, account, 6).await;
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

async fn assert_conserved(server: &Server) {
    let audit = server.services.engine.simnet.audit().await.unwrap();
    assert!(audit.balanced(), "{audit:?}");
}

async fn alice_and_bob_pay_each_other_through_the_hub(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let bob = sign_up(&server, "bob").await;
    let data = get_all_data(&server, &alice).await;
    assert!(alice.address.starts_with("bcrt1q"));
    assert_eq!(data["info"]["alias"], "alice");
    assert_eq!(data["info"]["port"], 8443);
    assert_eq!(data["info"]["synchronized"], true);
    assert_eq!(data["balances"]["btcfunds"], 0);
    assert_eq!(data["_csrf"], alice.csrf.as_str());

    connect(&server, &alice).await;
    connect(&server, &bob).await;
    let data = get_all_data(&server, &alice).await;
    assert_eq!(number(&data["balances"]["lntfunds"]), 1_000_000.0);
    assert_eq!(number(&data["balances"]["btcfunds"]), 2_000_000.0);
    let channels = data["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 2, "{channels:?}");
    assert!(
        channels.iter().all(|c| c["state"] == "Open"),
        "{channels:?}"
    );

    // Bob asks for 25,000 sat with a QuickPay string; Alice pays it and saves Bob.
    let invoice = call(
        &server,
        &bob,
        "/rest/v1/createinvoice",
        json!({"amount": 25000, "memo": "rent <b>", "quickpay": true}),
    )
    .await;
    let request = invoice.body["payment_request"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(request.starts_with("lnbcrt250u1"), "{request}");
    assert!(request.ends_with("@wallet.example:8443"), "{request}");
    let paid = call(
        &server,
        &alice,
        "/rest/v1/sendinvoice",
        json!({"invoiceid": format!("lightning:{request}"), "alias": "Bob", "password": PASSWORD}),
    )
    .await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.text);
    assert!(paid.body["error"].is_null(), "{}", paid.text);
    assert_eq!(paid.body["payment"]["amount"], 25000);
    assert_eq!(
        number(&paid.body["payment"]["fee"]),
        3.5,
        "hub: 1 sat + 100 ppm, twice routed? {}",
        paid.text
    );

    // QuickPay to the saved alias.
    let quick = call(
        &server,
        &alice,
        "/rest/v1/quickpay",
        json!({"dest": "bob", "amount": "1000.5", "memo": "tip", "password": PASSWORD}),
    )
    .await;
    assert!(quick.body["error"].is_null(), "{}", quick.text);
    assert_eq!(number(&quick.body["payment"]["amount"]), 1000.5);

    let bob_data = get_all_data(&server, &bob).await;
    assert_eq!(
        number(&bob_data["balances"]["lntfunds"]),
        1_000_000.0 + 25_000.0 + 1000.5
    );
    let history = bob_data["transactions"].as_array().unwrap();
    assert_eq!(history[0]["type"], "received");
    assert_eq!(history[0]["memo"], "tip");
    assert_eq!(history[1]["memo"], "rent <b>");
    let alice_data = get_all_data(&server, &alice).await;
    let book: Vec<&str> = alice_data["addressbook"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["alias"].as_str().unwrap())
        .collect();
    assert_eq!(book, ["Bob", "hub"]);
    assert_eq!(alice_data["addressbook"][0]["host"], "wallet.example:8443");

    // Alice closes her channel; its funds return on chain after a block.
    let mine_point = alice_data["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["initiator"] == true)
        .unwrap()["channelpoint"]
        .as_str()
        .unwrap()
        .to_string();
    let closed = call(
        &server,
        &alice,
        "/rest/v1/closechannel",
        json!({"channelpoint": mine_point, "password": PASSWORD}),
    )
    .await;
    assert_eq!(
        closed.body["channel"]["state"], "Closing",
        "{}",
        closed.text
    );
    mine(&server, &alice, 1).await;
    let after = get_all_data(&server, &alice).await;
    let onchain = number(&after["balances"]["onchainfunds"]);
    assert!(onchain > 1_900_000.0 && onchain < 2_000_000.0, "{onchain}");
    assert_conserved(&server).await;
}

async fn cookie_writes_need_the_csrf_token_and_bearer_calls_do_not(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let no_token = server
        .post_json(
            "/rest/v1/createinvoice",
            &json!({"amount": 10}).to_string(),
            Some(&alice.cookie),
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN, "{}", no_token.text);
    assert!(no_token.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("CSRF"));
    let wrong = server
        .post_json(
            "/rest/v1/createinvoice?_csrf=00112233445566778899aabbccddeeff",
            &json!({"amount": 10}).to_string(),
            Some(&alice.cookie),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let query = server
        .post_json(
            &format!("/rest/v1/createinvoice?_csrf={}", alice.csrf),
            &json!({"amount": 10}).to_string(),
            Some(&alice.cookie),
        )
        .await;
    assert_eq!(query.status, StatusCode::OK, "{}", query.text);
    let by_bearer = bearer(
        &server,
        &alice,
        "/rest/v1/createinvoice",
        json!({"amount": 10}),
    )
    .await;
    assert_eq!(by_bearer.status, StatusCode::OK, "{}", by_bearer.text);
    let anonymous = server
        .post_json(
            "/rest/v1/createinvoice",
            &json!({"amount": 10}).to_string(),
            None,
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        server
            .get("/rest/v1/getalldata", common::Auth::None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

async fn cookie_payments_recheck_the_password(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let bob = sign_up(&server, "bob").await;
    connect(&server, &alice).await;
    connect(&server, &bob).await;
    let invoice = |memo: &'static str| {
        let server = &server;
        let bob = &bob;
        async move {
            call(
                server,
                bob,
                "/rest/v1/createinvoice",
                json!({"amount": 100, "memo": memo}),
            )
            .await
            .body["payment_request"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let first = invoice("one").await;
    for password in [None, Some("Wrong-horse-7")] {
        let mut body = json!({"invoiceid": first});
        if let Some(p) = password {
            body["password"] = json!(p);
        }
        let refused = call(&server, &alice, "/rest/v1/sendinvoice", body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
        assert_eq!(refused.body["error"]["field"], "password");
    }
    // The invoice is still unpaid: a bearer call (no re-check) pays it.
    let paid = bearer(
        &server,
        &alice,
        "/rest/v1/sendinvoice",
        json!({"invoiceid": first}),
    )
    .await;
    assert!(paid.body["error"].is_null(), "{}", paid.text);

    // Switching the re-check off needs the password; then cookie payments pass.
    let off = call(
        &server,
        &alice,
        "/rest/v1/settings",
        json!({"recheck_password": false}),
    )
    .await;
    assert_eq!(off.status, StatusCode::BAD_REQUEST, "{}", off.text);
    let off = call(
        &server,
        &alice,
        "/rest/v1/settings",
        json!({"recheck_password": false, "password": PASSWORD}),
    )
    .await;
    assert_eq!(off.body["recheck_password"], false, "{}", off.text);
    let second = invoice("two").await;
    let paid = call(
        &server,
        &alice,
        "/rest/v1/sendinvoice",
        json!({"invoiceid": second}),
    )
    .await;
    assert!(paid.body["error"].is_null(), "{}", paid.text);
}

async fn refusals_answer_200_with_a_message_and_change_nothing(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let bob = sign_up(&server, "bob").await;
    connect(&server, &alice).await;
    connect(&server, &bob).await;
    let before = get_all_data(&server, &alice).await["balances"].clone();

    let big = invoice(&server, &bob, json!({"amount": 5_000_000})).await;
    let cases = [
        (
            "/rest/v1/sendinvoice",
            json!({"invoiceid": big}),
            "insufficient funds",
        ),
        (
            "/rest/v1/quickpay",
            json!({"dest": "nobody", "amount": 10}),
            "unknown alias",
        ),
        (
            "/rest/v1/closechannel",
            json!({"channelpoint": "00:0"}),
            "channel not found",
        ),
        // PostgreSQL refuses NUL in text: the answer must still be the refusal.
        (
            "/rest/v1/closechannel",
            json!({"channelpoint": "ab\u{0}:0"}),
            "channel not found",
        ),
        (
            "/rest/v1/quickpay",
            json!({"dest": "bob\u{0}", "amount": 10}),
            "unknown alias",
        ),
    ];
    for (path, body, message) in cases {
        let reply = bearer(&server, &alice, path, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
        assert_eq!(
            reply.body["error"]["message"], message,
            "{path}: {}",
            reply.text
        );
    }
    let small = invoice(&server, &bob, json!({"amount": 10})).await;
    let capped = bearer(
        &server,
        &alice,
        "/rest/v1/sendinvoice",
        json!({"invoiceid": small, "fee_limit": 0.5}),
    )
    .await;
    assert_eq!(capped.status, StatusCode::OK);
    assert_eq!(
        capped.body["error"]["message"], "route fee of 1001 msat exceeds the fee limit of 500 msat",
        "{}",
        capped.text
    );
    assert!(bearer(
        &server,
        &alice,
        "/rest/v1/sendinvoice",
        json!({"invoiceid": small})
    )
    .await
    .body["error"]
        .is_null());
    let again = bearer(
        &server,
        &alice,
        "/rest/v1/sendinvoice",
        json!({"invoiceid": small}),
    )
    .await;
    assert_eq!(again.body["error"]["message"], "invoice already paid");
    // An invoice from outside this network has no route.
    let stranger = engine::simnet::NodeKey::generate();
    let outside = engine::simnet::invoice::issue(
        &stranger,
        Some(engine::Msat(10_000)),
        "",
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    let reply = bearer(
        &server,
        &alice,
        "/rest/v1/sendinvoice",
        json!({"invoiceid": outside.bolt11}),
    )
    .await;
    assert_eq!(
        reply.body["error"]["message"],
        "no route to the destination"
    );

    let after = get_all_data(&server, &alice).await["balances"].clone();
    // Only the one payment moved: 10 sat and the hub's fee of 1 sat + 100 ppm.
    let msat = |v: &Value| (number(v) * 1000.0).round() as i64;
    assert_eq!(
        msat(&after["lntfunds"]),
        msat(&before["lntfunds"]) - 10_000 - 1001,
        "{after}"
    );
    assert_conserved(&server).await;
}

async fn bad_amounts_and_invoices_get_400_and_change_nothing(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let bob = sign_up(&server, "bob").await;
    connect(&server, &alice).await;
    connect(&server, &bob).await;
    let hub = hub_of(&server, &alice).await;
    let before = get_all_data(&server, &alice).await;
    let cases = [
        ("/rest/v1/createinvoice", json!({"amount": -5})),
        ("/rest/v1/createinvoice", json!({"amount": 0})),
        ("/rest/v1/createinvoice", json!({"amount": "ten"})),
        ("/rest/v1/createinvoice", json!({"amount": "1e3"})),
        ("/rest/v1/createinvoice", json!({"amount": 1.0001})),
        (
            "/rest/v1/createinvoice",
            json!({"amount": "99999999999999999999999"}),
        ),
        ("/rest/v1/createinvoice", json!({"amount": true})),
        (
            "/rest/v1/createinvoice",
            json!({"amount": 10, "memo": "m".repeat(300)}),
        ),
        (
            "/rest/v1/sendinvoice",
            json!({"invoiceid": "lnbcrt1notaninvoice"}),
        ),
        ("/rest/v1/sendinvoice", json!({"invoiceid": ""})),
        (
            "/rest/v1/sendinvoice",
            json!({"invoiceid": "lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq9qrsgq357wnc5r2ueh7ck6q93dj32dlqnls087fxdwk8qakdyafkq3yap9us6v52vjjsrvywa6rt52cm9r9zqt8r2t7mlcwspyetp5h2tztugp9lfyql"}),
        ),
        ("/rest/v1/sendinvoice", json!({"invoiceid": 42})),
        ("/rest/v1/sendinvoice", json!({"alias": "x"})),
        ("/rest/v1/quickpay", json!({"dest": "hub", "amount": -1})),
        (
            "/rest/v1/quickpay",
            json!({"dest": "hub", "amount": 1, "memo": "\u{7}bell"}),
        ),
        (
            "/rest/v1/openchannel",
            json!({"remotenode": "02abcdef", "amount": 50000}),
        ),
        (
            "/rest/v1/openchannel",
            json!({"remotenode": hub, "amount": 10}),
        ),
        (
            "/rest/v1/openchannel",
            json!({"remotenode": hub, "amount": 0.5}),
        ),
        ("/rest/v1/settings", json!({"denomination": "usd"})),
        ("/rest/v1/createinvoice", json!([1, 2])),
    ];
    for (path, body) in cases {
        let reply = bearer(&server, &alice, path, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path} {body}: {}",
            reply.text
        );
        assert!(
            reply.body["error"]["message"].is_string(),
            "{path} {body}: {}",
            reply.text
        );
    }
    // A payee alias that is not acceptable is refused before anything is paid.
    let invoice = invoice(&server, &bob, json!({"amount": 10})).await;
    for alias in ["<script>alert(1)</script>".to_string(), "a".repeat(33)] {
        let body = json!({"invoiceid": invoice, "alias": alias});
        let reply = bearer(&server, &alice, "/rest/v1/sendinvoice", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
        assert_eq!(reply.body["error"]["field"], "alias");
    }
    // An unknown but well-formed node id.
    let unknown = engine::simnet::NodeKey::generate().pubkey_hex();
    let reply = bearer(
        &server,
        &alice,
        "/rest/v1/openchannel",
        json!({"remotenode": unknown, "amount": 50000}),
    )
    .await;
    assert_eq!(
        reply.body["error"]["message"], "unknown node",
        "{}",
        reply.text
    );

    let after = get_all_data(&server, &alice).await;
    assert_eq!(after["balances"], before["balances"]);
    assert_eq!(after["channels"], before["channels"]);
    assert_eq!(after["transactions"], before["transactions"]);
    assert_conserved(&server).await;
}

async fn denominations_change_how_amounts_read_and_write(server: Server) {
    let alice = sign_up(&server, "alice").await;
    connect(&server, &alice).await;
    let set = call(
        &server,
        &alice,
        "/rest/v1/settings",
        json!({"denomination": "btc"}),
    )
    .await;
    assert_eq!(set.body["denomination"], "btc", "{}", set.text);
    let data = get_all_data(&server, &alice).await;
    assert_eq!(data["denomination"], "btc");
    assert_eq!(data["balances"]["lntfunds"], json!(0.01));
    assert_eq!(data["balances"]["btcfunds"], json!(0.02));
    let invoice = call(
        &server,
        &alice,
        "/rest/v1/createinvoice",
        json!({"amount": 0.00012345}),
    )
    .await;
    assert!(
        invoice.body["payment_request"]
            .as_str()
            .unwrap()
            .starts_with("lnbcrt123450n1"),
        "{}",
        invoice.text
    );
    let precise = call(
        &server,
        &alice,
        "/rest/v1/createinvoice",
        json!({"amount": "0.00000000001"}),
    )
    .await;
    assert!(
        precise.body["payment_request"]
            .as_str()
            .unwrap()
            .starts_with("lnbcrt10p1"),
        "{}",
        precise.text
    );
    let too_precise = call(
        &server,
        &alice,
        "/rest/v1/createinvoice",
        json!({"amount": "0.000000000001"}),
    )
    .await;
    assert_eq!(too_precise.status, StatusCode::BAD_REQUEST);
    for (unit, expected) in [
        ("mbtc", json!(10)),
        ("bits", json!(10000)),
        ("sat", json!(1000000)),
    ] {
        call(
            &server,
            &alice,
            "/rest/v1/settings",
            json!({"denomination": unit}),
        )
        .await;
        assert_eq!(
            get_all_data(&server, &alice).await["balances"]["lntfunds"],
            expected,
            "{unit}"
        );
    }
}

async fn qr_images_are_png_and_read_back_exactly(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let invoice = invoice(&server, &alice, json!({"amount": 1234, "memo": "qr"})).await;
    let path = format!("/rest/v1/getqrimage?inputcode={invoice}");
    let reply = server.get(&path, common::Auth::Cookie(&alice.cookie)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(&reply.bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(zbar(&reply.bytes), invoice.to_uppercase());

    let text = "any text: ünïcode & spaces";
    let encoded: String = url_encode(text);
    let reply = server
        .get(
            &format!("/rest/v1/getqrimage?inputcode={encoded}"),
            common::Auth::Cookie(&alice.cookie),
        )
        .await;
    assert_eq!(zbar(&reply.bytes), text);

    for bad in [
        "/rest/v1/getqrimage",
        "/rest/v1/getqrimage?inputcode=",
        &format!("/rest/v1/getqrimage?inputcode={}", "x".repeat(2001)),
    ] {
        let reply = server.get(bad, common::Auth::Cookie(&alice.cookie)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.text
        );
        assert!(reply.body["error"]["message"].is_string());
    }
    assert_eq!(
        server.get(&path, common::Auth::None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Reads a QR code with zbar (Debian's zbar-tools), a decoder this project did
/// not write.
fn zbar(png: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("qr.png");
    std::fs::write(&file, png).unwrap();
    let out = std::process::Command::new("zbarimg")
        .args(["--raw", "-q", "-Sbinary"])
        .arg(&file)
        .output()
        .expect("zbarimg (apt install zbar-tools; scripts/test installs it)");
    assert!(
        out.status.success(),
        "zbarimg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end_matches('\n')
        .to_string()
}

async fn invoices_decode_with_an_independent_bolt11_decoder(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let cases = [
        (
            json!({"amount": 1234, "memo": "coffee"}),
            Some(1_234_000i64),
            "coffee".to_string(),
        ),
        (
            json!({"amount": "0.001", "memo": ""}),
            Some(1),
            String::new(),
        ),
        (
            json!({"memo": "any amount ☕"}),
            None,
            "any amount ☕".to_string(),
        ),
        (
            json!({"amount": 2500000, "memo": "m".repeat(256), "quickpay": true}),
            Some(2_500_000_000),
            "m".repeat(256),
        ),
    ];
    for (body, msat, memo) in cases {
        let reply = call(&server, &alice, "/rest/v1/createinvoice", body).await;
        let request = reply.body["payment_request"].as_str().unwrap();
        let bolt11 = request.split('@').next().unwrap();
        let decoded = python_bolt11(bolt11);
        assert_eq!(decoded["payee"], alice.node.as_str());
        assert_eq!(decoded["payment_hash"], reply.body["payment_hash"]);
        assert_eq!(decoded["description"], memo);
        assert_eq!(decoded["amount_msat"], json!(msat));
        assert_eq!(decoded["currency"], "bcrt");
        assert_eq!(decoded["has_secret"], true);
    }
}

/// Decodes with the Python `bolt11` package (in the venv scripts/test makes),
/// which checks the signature against the payee key it recovers.
fn python_bolt11(invoice: &str) -> Value {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    let script = r#"
import json, sys, bolt11
inv = bolt11.decode(sys.argv[1])
print(json.dumps({
    "payee": inv.payee, "payment_hash": inv.payment_hash,
    "description": inv.description, "amount_msat": inv.amount_msat,
    "currency": inv.currency, "has_secret": bool(inv.payment_secret),
}))
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script, invoice])
        .output()
        .expect("the test venv (.venv, made by scripts/test) with the bolt11 package");
    assert!(
        out.status.success(),
        "bolt11 refused {invoice}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn live_events_tell_bob_his_invoice_is_paid(server: Server) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let alice = sign_up(&server, "alice").await;
    let bob = sign_up(&server, "bob").await;
    connect(&server, &alice).await;
    connect(&server, &bob).await;
    let stream = server
        .router
        .clone()
        .oneshot(
            Request::get("/rest/v1/events")
                .header(header::COOKIE, &bob.cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = stream.into_body();

    let invoice = call(
        &server,
        &bob,
        "/rest/v1/createinvoice",
        json!({"amount": 500}),
    )
    .await;
    let hash = invoice.body["payment_hash"].as_str().unwrap().to_string();
    let paid = bearer(
        &server,
        &alice,
        "/rest/v1/sendinvoice",
        json!({"invoiceid": invoice.body["payment_request"]}),
    )
    .await;
    assert!(paid.body["error"].is_null(), "{}", paid.text);

    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !seen.contains("invoice_settled") {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("an event within 5 s");
        let frame = frame.unwrap().unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(seen.contains(&hash), "{seen}");
    assert!(seen.contains(r#""amount_msat":500000"#), "{seen}");
    // Alice's payment is hers alone: Bob's stream never names it as sent.
    assert!(!seen.contains("payment_sent"), "{seen}");
}

async fn simnet_developer_endpoints_are_404_unless_enabled(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let plain = Server {
        router: {
            let site = server::Site {
                leptos_options: leptos::config::LeptosOptions::builder()
                    .output_name("ampere")
                    .build(),
                public_url: "http://127.0.0.1:3000".into(),
                secure_cookies: false,
                simnet_dev: false,
            };
            server.services.router(site)
        },
        services: server.services,
    };
    for (path, body) in [
        ("/api/v1/simnet/mine", json!({"blocks": 1})),
        (
            "/api/v1/simnet/faucet",
            json!({"address": alice.address, "sats": 1000}),
        ),
    ] {
        let reply = call(&plain, &alice, path, body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.text
        );
    }
    assert_eq!(plain.services.engine.simnet.tip_height().await.unwrap(), 0);
}

async fn an_invoice_is_read_before_it_is_paid(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let bob = sign_up(&server, "bob").await;
    let request = invoice(&server, &bob, json!({"amount": 1500, "memo": "tea"})).await;
    call(
        &server,
        &alice,
        "/rest/v1/settings",
        json!({"denomination": "mbtc"}),
    )
    .await;
    let read = call(
        &server,
        &alice,
        "/rest/v1/decodeinvoice",
        json!({"invoiceid": request}),
    )
    .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.body["amount"], json!(0.015));
    assert_eq!(read.body["memo"], "tea");
    assert_eq!(read.body["payee"], bob.node.as_str());
    assert!(read.body["expires_at"].as_i64().unwrap() > 1_700_000_000);
    let bad = call(
        &server,
        &alice,
        "/rest/v1/decodeinvoice",
        json!({"invoiceid": "lnbcrt1nope"}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["error"]["field"], "invoiceid");
    let anonymous = server
        .post_json(
            "/rest/v1/decodeinvoice",
            &json!({"invoiceid": request}).to_string(),
            None,
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

async fn contacts_are_added_refused_and_removed(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let bob = sign_up(&server, "bob").await;
    let aliases = |data: &Value| -> Vec<String> {
        data["addressbook"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["alias"].as_str().unwrap().to_string())
            .collect()
    };
    let added = call(
        &server,
        &alice,
        "/rest/v1/addcontact",
        json!({"alias": "Bob", "node_id": bob.node, "host": "127.0.0.1:3000"}),
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text);
    assert_eq!(added.body["nodeId"], bob.node.as_str());
    assert_eq!(added.body["host"], "127.0.0.1:3000");

    // Refused, and nothing changes: a bad node id, a taken alias, no CSRF token.
    let before = aliases(&get_all_data(&server, &alice).await);
    let bad = call(
        &server,
        &alice,
        "/rest/v1/addcontact",
        json!({"alias": "carol", "node_id": "02abc"}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert_eq!(bad.body["error"]["field"], "remotenode");
    let taken = call(
        &server,
        &alice,
        "/rest/v1/addcontact",
        json!({"alias": "bob", "node_id": alice.node}),
    )
    .await;
    assert_eq!(taken.body["error"]["field"], "alias", "{}", taken.text);
    let forged = server
        .send(
            Request::post("/rest/v1/removecontact")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::COOKIE, &alice.cookie)
                .body(Body::from(json!({"alias": "Bob"}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    assert_eq!(aliases(&get_all_data(&server, &alice).await), before);
    assert!(before.contains(&"Bob".to_string()), "{before:?}");

    let removed = call(
        &server,
        &alice,
        "/rest/v1/removecontact",
        json!({"alias": "bob"}),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    assert!(!aliases(&get_all_data(&server, &alice).await).contains(&"Bob".to_string()));
    let again = call(
        &server,
        &alice,
        "/rest/v1/removecontact",
        json!({"alias": "bob"}),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.body["error"]["message"].is_string(), "{}", again.text);
}

async fn the_history_filters_and_exports_the_same_transactions(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let bob = sign_up(&server, "bob").await;
    connect(&server, &alice).await;
    connect(&server, &bob).await;
    for (amount, memo) in [(100, "tea"), (200, "Cake, \"big\""), (300, "=SUM(A1)")] {
        let request = invoice(&server, &bob, json!({"amount": amount, "memo": memo})).await;
        let paid = bearer(
            &server,
            &alice,
            "/rest/v1/sendinvoice",
            json!({"invoiceid": request}),
        )
        .await;
        assert!(paid.body["payment"].is_object(), "{}", paid.text);
    }
    let history = |query: &'static str| {
        let server = &server;
        let cookie = alice.cookie.clone();
        async move {
            server
                .get(
                    &format!("/rest/v1/history?{query}"),
                    common::Auth::Cookie(&cookie),
                )
                .await
        }
    };
    let sent = history("type=sent").await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    let sent = sent.body.as_array().unwrap().clone();
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|t| t["type"] == "sent"));
    let cake = history("type=sent&q=CAKE").await.body;
    assert_eq!(cake.as_array().unwrap().len(), 1, "{cake}");
    assert_eq!(cake[0]["amount"], 200);
    let onchain = history("type=onchain").await.body;
    assert!(onchain
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["type"].as_str().unwrap().starts_with("onchain")));
    assert_eq!(
        history("from=2001-01-01&to=2001-01-31").await.body,
        json!([]),
        "nothing happened in 2001"
    );
    for bad in [
        "type=gift",
        "from=yesterday",
        "to=2026-02-30",
        "from=2026-02-02&to=2026-02-01",
    ] {
        let reply = server
            .get(
                &format!("/rest/v1/history?{bad}"),
                common::Auth::Cookie(&alice.cookie),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.text
        );
        let csv = server
            .get(
                &format!("/rest/v1/history.csv?{bad}"),
                common::Auth::Cookie(&alice.cookie),
            )
            .await;
        assert_eq!(csv.status, StatusCode::BAD_REQUEST, "{bad}: {}", csv.text);
    }

    let csv = server
        .get(
            "/rest/v1/history.csv?type=sent",
            common::Auth::Cookie(&alice.cookie),
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert!(csv.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(csv.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let lines: Vec<&str> = csv.text.trim_end().split("\r\n").collect();
    assert_eq!(lines[0], "time,type,amount,fee,unit,memo,status,id");
    assert_eq!(lines.len(), 4, "{}", csv.text);
    assert!(csv.text.contains(r#","Cake, ""big""","#), "{}", csv.text);
    assert!(
        csv.text.contains(",'=SUM(A1),"),
        "a formula stays text: {}",
        csv.text
    );
    let mut csv_ids: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.rsplit(',').next().unwrap())
        .collect();
    let mut api_ids: Vec<&str> = sent.iter().map(|t| t["id"].as_str().unwrap()).collect();
    csv_ids.sort();
    api_ids.sort();
    assert_eq!(csv_ids, api_ids);
    assert_eq!(
        server
            .get("/rest/v1/history.csv", common::Auth::None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

async fn a_photo_of_a_qr_code_is_read_back(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let request = invoice(&server, &alice, json!({"amount": 777, "memo": "photo"})).await;
    let png = server
        .get(
            &format!("/rest/v1/getqrimage?inputcode={request}"),
            common::Auth::Cookie(&alice.cookie),
        )
        .await
        .bytes;
    let scan = |body: Vec<u8>, cookie: Option<String>| {
        let mut builder =
            Request::post("/rest/v1/scanqr").header(header::CONTENT_TYPE, "image/png");
        if let Some(cookie) = cookie {
            builder = builder.header(header::COOKIE, cookie);
        }
        server.send(builder.body(Body::from(body)).unwrap())
    };
    let read = scan(png.clone(), Some(alice.cookie.clone())).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.body["text"], request.to_uppercase());

    let garbage = scan(b"not a picture".to_vec(), Some(alice.cookie.clone())).await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert!(garbage.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not a PNG"));
    let blank = image_png(64, 64);
    let nothing = scan(blank, Some(alice.cookie.clone())).await;
    assert_eq!(nothing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        nothing.body["error"]["message"],
        "no QR code found in the photo"
    );
    assert_eq!(scan(png, None).await.status, StatusCode::UNAUTHORIZED);
}

/// A white PNG of the given size.
fn image_png(width: u32, height: u32) -> Vec<u8> {
    let image = image::GrayImage::from_pixel(width, height, image::Luma([255]));
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

/// Input that once reached a panic, a 500 or a rounded amount: each answers 400
/// in the API's format and changes nothing.
mod hostile_input {
    use super::*;

    testdb::on_both_databases!(
        open_server;
        an_invoice_broken_inside_a_character_answers_400_not_a_panic,
        memos_are_limited_to_what_an_invoice_holds_in_bytes,
        an_amount_a_float_would_round_answers_400_and_moves_nothing,
        the_faucet_refuses_absurd_amounts,
    );

    /// A bearer-token write of a raw body (exact JSON numbers, not `Value`'s).
    async fn bearer_raw(server: &Server, account: &Account, path: &str, body: &str) -> Reply {
        server
            .send(
                Request::post(path)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::AUTHORIZATION, format!("Bearer {}", account.token))
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await
    }

    fn assert_refused(reply: &Reply, field: &str, what: &str) {
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            reply.text
        );
        assert!(
            reply.body["error"]["message"].is_string(),
            "{what}: {}",
            reply.text
        );
        assert_eq!(
            reply.body["error"]["field"], field,
            "{what}: {}",
            reply.text
        );
    }

    async fn count(server: &Server, table: &str) -> i64 {
        use sqlx::Row;
        sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(server.services.engine.db.pool())
            .await
            .unwrap()
            .get::<i64, _>("n")
    }

    async fn an_invoice_broken_inside_a_character_answers_400_not_a_panic(server: Server) {
        let alice = sign_up(&server, "alice").await;
        let bob = sign_up(&server, "bob").await;
        connect(&server, &alice).await;
        connect(&server, &bob).await;
        let request = invoice(&server, &bob, json!({"amount": 1500, "memo": "tea"})).await;
        let before = get_all_data(&server, &alice).await;
        // The 10th byte (where `lightning:` ends) inside a character of 2, 3 or
        // 4 bytes, and the same characters elsewhere.
        let mut broken = Vec::new();
        for c in ["é", "☕", "😀"] {
            broken.push(format!("lightnin{c}{request}"));
            broken.push(format!("lightning{c}{request}"));
            broken.push(format!("lightning:{c}{request}"));
            broken.push(format!("{c}{request}"));
            broken.push(format!("{}{c}{}", &request[..40], &request[40..]));
            broken.push(format!("lightnin{c}"));
        }
        for text in &broken {
            for path in ["/rest/v1/decodeinvoice", "/rest/v1/sendinvoice"] {
                let reply = bearer(&server, &alice, path, json!({"invoiceid": text})).await;
                assert_refused(&reply, "invoiceid", &format!("{path} {text}"));
            }
        }
        let after = get_all_data(&server, &alice).await;
        assert_eq!(after["balances"], before["balances"]);
        assert_eq!(after["transactions"], before["transactions"]);
        // The invoice itself was never touched: it still pays.
        let paid = bearer(
            &server,
            &alice,
            "/rest/v1/sendinvoice",
            json!({"invoiceid": format!("LIGHTNING:{}", request.to_uppercase())}),
        )
        .await;
        assert!(paid.body["payment"].is_object(), "{}", paid.text);
        assert_conserved(&server).await;
    }

    async fn memos_are_limited_to_what_an_invoice_holds_in_bytes(server: Server) {
        let alice = sign_up(&server, "alice").await;
        let bob = sign_up(&server, "bob").await;
        connect(&server, &alice).await;
        connect(&server, &bob).await;
        let invoices = count(&server, "invoices").await;
        let payments = count(&server, "payments").await;
        // Under the 256-character rule, over BOLT11's 639 bytes: refused, on
        // every way a memo reaches an invoice, before anything is written.
        let too_long = [
            "😀".repeat(160),                          // 160 characters, 640 bytes
            format!("{}{}", "😀".repeat(159), "abcd"), // 163 characters, 640 bytes
            "☕".repeat(256),                          // 256 characters, 768 bytes
        ];
        for memo in &too_long {
            assert_eq!(memo.len(), if memo.starts_with('☕') { 768 } else { 640 });
            let create = bearer(
                &server,
                &bob,
                "/rest/v1/createinvoice",
                json!({"amount": 10, "memo": memo}),
            )
            .await;
            assert_refused(&create, "memo", "createinvoice");
            assert!(
                create.body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("639 bytes"),
                "{}",
                create.text
            );
            let quickpay = bearer(
                &server,
                &alice,
                "/rest/v1/quickpay",
                json!({"dest": "hub", "amount": 10, "memo": memo}),
            )
            .await;
            assert_refused(&quickpay, "memo", "quickpay");
        }
        assert_eq!(
            count(&server, "invoices").await,
            invoices,
            "nothing created"
        );
        assert_eq!(count(&server, "payments").await, payments, "nothing paid");

        // What BOLT11 holds is accepted and read back exactly: 639 bytes, and a
        // 100-character memo of 300 bytes (well inside both rules).
        for memo in [format!("{}{}", "😀".repeat(159), "abc"), "☕".repeat(100)] {
            let request = invoice(&server, &bob, json!({"amount": 10, "memo": memo})).await;
            let read = bearer(
                &server,
                &alice,
                "/rest/v1/decodeinvoice",
                json!({"invoiceid": request}),
            )
            .await;
            assert_eq!(read.body["memo"], memo.as_str(), "{}", read.text);
        }
        assert_eq!(count(&server, "invoices").await, invoices + 2);
        assert_conserved(&server).await;
    }

    async fn an_amount_a_float_would_round_answers_400_and_moves_nothing(server: Server) {
        let alice = sign_up(&server, "alice").await;
        let bob = sign_up(&server, "bob").await;
        connect(&server, &alice).await;
        connect(&server, &bob).await;
        let hub = hub_of(&server, &alice).await;
        let amountless = invoice(&server, &bob, json!({"memo": "any"})).await;
        let before = get_all_data(&server, &alice).await;
        let invoices = count(&server, "invoices").await;
        let cases = [
            (
                "/rest/v1/createinvoice",
                r#"{"amount": 1.0000000000000000001}"#.to_string(),
                "amount",
            ),
            (
                "/rest/v1/createinvoice",
                r#"{"amount": 1e3}"#.to_string(),
                "amount",
            ),
            (
                "/rest/v1/createinvoice",
                r#"{"amount": 1E-7}"#.to_string(),
                "amount",
            ),
            (
                "/rest/v1/createinvoice",
                r#"{"amount": -0}"#.to_string(),
                "amount",
            ),
            (
                "/rest/v1/createinvoice",
                r#"{"amount": 1e999999999}"#.to_string(),
                "amount",
            ),
            (
                "/rest/v1/createinvoice",
                format!(r#"{{"amount": 1{}}}"#, "0".repeat(400)),
                "amount",
            ),
            // Under 21 million BTC, over what BOLT11 can write (18.4 million).
            (
                "/rest/v1/createinvoice",
                r#"{"amount": 1850000000000000}"#.to_string(),
                "amount",
            ),
            (
                "/rest/v1/sendinvoice",
                format!(r#"{{"invoiceid": "{amountless}", "amount": 1.0000000000000000001}}"#),
                "amount",
            ),
            (
                "/rest/v1/sendinvoice",
                format!(
                    r#"{{"invoiceid": "{amountless}", "amount": 100, "fee_limit": 2.0000000000000000001}}"#
                ),
                "fee_limit",
            ),
            (
                "/rest/v1/quickpay",
                r#"{"dest": "hub", "amount": 1.0000000000000000001}"#.to_string(),
                "amount",
            ),
            (
                "/rest/v1/openchannel",
                format!(r#"{{"remotenode": "{hub}", "amount": 50000.0000000000000000001}}"#),
                "amount",
            ),
        ];
        for (path, body, field) in &cases {
            let reply = bearer_raw(&server, &alice, path, body).await;
            let what = format!("{path} {}", &body[..body.len().min(80)]);
            assert_refused(&reply, field, &what);
        }
        let after = get_all_data(&server, &alice).await;
        assert_eq!(after["balances"], before["balances"]);
        assert_eq!(after["channels"], before["channels"]);
        assert_eq!(after["transactions"], before["transactions"]);
        assert_eq!(
            count(&server, "invoices").await,
            invoices,
            "nothing created"
        );

        // The exact number is what is invoiced and paid, digit for digit.
        let exact = bearer_raw(
            &server,
            &bob,
            "/rest/v1/createinvoice",
            r#"{"amount": 12.345000000000000000000}"#,
        )
        .await;
        let request = exact.body["payment_request"].as_str().unwrap();
        assert!(request.starts_with("lnbcrt123450p1"), "{}", exact.text);
        let paid = bearer_raw(
            &server,
            &alice,
            "/rest/v1/sendinvoice",
            &format!(r#"{{"invoiceid": "{amountless}", "amount": 0.001}}"#),
        )
        .await;
        assert_eq!(
            paid.body["payment"]["amount"],
            json!(0.001),
            "{}",
            paid.text
        );
        assert_conserved(&server).await;
    }

    async fn the_faucet_refuses_absurd_amounts(server: Server) {
        let alice = sign_up(&server, "alice").await;
        for sats in [
            "100000001",
            "2100000000000000",
            "9223372036854775807",
            "99999999999999999999",
            "1e15",
            "-5",
            "0",
            "1.5",
        ] {
            let body = format!(r#"{{"address": "{}", "sats": {sats}}}"#, alice.address);
            let reply = bearer_raw(&server, &alice, "/api/v1/simnet/faucet", &body).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{sats}: {}",
                reply.text
            );
            assert!(
                reply.body["error"]["message"].is_string(),
                "{sats}: {}",
                reply.text
            );
        }
        let capped = bearer_raw(
            &server,
            &alice,
            "/api/v1/simnet/faucet",
            &format!(r#"{{"address": "{}", "sats": 100000001}}"#, alice.address),
        )
        .await;
        assert_eq!(capped.body["error"]["field"], "sats");
        assert!(
            capped.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("100000000"),
            "{}",
            capped.text
        );
        mine(&server, &alice, 1).await;
        let data = get_all_data(&server, &alice).await;
        assert_eq!(data["balances"]["onchainfunds"], 0, "nothing was minted");
        // One bitcoin, the most a call gives, is fine.
        let most = bearer_raw(
            &server,
            &alice,
            "/api/v1/simnet/faucet",
            &format!(r#"{{"address": "{}", "sats": 100000000}}"#, alice.address),
        )
        .await;
        assert_eq!(most.status, StatusCode::OK, "{}", most.text);
        mine(&server, &alice, 1).await;
        let data = get_all_data(&server, &alice).await;
        assert_eq!(data["balances"]["onchainfunds"], 100_000_000);
        assert_conserved(&server).await;
    }
}
