//! The myLightning wallet API over HTTP, on SQLite and PostgreSQL: two accounts
//! fund their nodes, open channels to the hub, invoice and pay each other, and
//! every refusal and bad input is answered clearly and changes nothing.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};

use common::{session_cookie, zbar, Reply, Server, PASSWORD};

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
    paging_through_250_transactions_gives_each_once_in_order,
    a_malformed_cursor_or_limit_is_400_naming_its_field,
    filters_combine_with_the_cursor,
    another_accounts_transactions_never_appear,
    the_channel_list_shows_ten_closed_and_pages_the_rest,
    a_photo_of_a_qr_code_is_read_back,
    a_retried_payment_with_the_same_idempotency_key_pays_once,
    event_streams_end_with_their_credentials_and_are_capped,
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
        ("/rest/v1/settings", json!({"denomination": "eur"})),
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
        router: { server.services.router(server::Site::for_tests(false)) },
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
    let nasty = [
        (100, "tea"),
        (200, "Cake, \"big\""),
        (300, "=SUM(A1)"),
        (400, "a;=HYPERLINK(\"http://evil.example\",\"x\")"),
        (500, "x|@cmd; +1, -2"),
    ];
    for (amount, memo) in nasty {
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
    assert_eq!(sent.body["next_cursor"], Value::Null, "one page holds them");
    let sent = sent.body["transactions"].as_array().unwrap().clone();
    assert_eq!(sent.len(), 5);
    assert!(sent.iter().all(|t| t["type"] == "sent"));
    let cake = history("type=sent&q=CAKE").await.body;
    assert_eq!(cake["transactions"].as_array().unwrap().len(), 1, "{cake}");
    assert_eq!(cake["transactions"][0]["amount"], 200);
    // `%` and `_` are matched literally, not as patterns.
    assert_eq!(history("q=%25").await.body["transactions"], json!([]));
    assert_eq!(history("q=_").await.body["transactions"], json!([]));
    let onchain = history("type=onchain").await.body;
    assert!(onchain["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["type"].as_str().unwrap().starts_with("onchain")));
    assert_eq!(
        history("from=2001-01-01&to=2001-01-31").await.body,
        json!({"transactions": [], "next_cursor": null}),
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
    // The exact bytes: every text cell quoted, amounts bare, and a `'` wherever
    // a spreadsheet splitting on `,` `;` or `|` would find a formula.
    let memo_cells = [
        r#""tea""#,
        r#""Cake, ""big""""#,
        r#""'=SUM(A1)""#,
        r#""a;'=HYPERLINK(""http://evil.example"",""x"")""#,
        r#""x|'@cmd;' +1,' -2""#,
    ];
    let mut expected = String::from(
        "\"time\",\"type\",\"amount\",\"fee\",\"unit\",\"memo\",\"status\",\"id\"\r\n",
    );
    for t in &sent {
        let memo = t["memo"].as_str().unwrap();
        let at = nasty.iter().position(|(_, m)| *m == memo).unwrap();
        expected += &format!(
            "\"{}\",\"sent\",{},{},\"sat\",{},\"succeeded\",\"{}\"\r\n",
            utc(t["time"].as_i64().unwrap()),
            t["amount"],
            t["fee"],
            memo_cells[at],
            t["id"].as_str().unwrap()
        );
    }
    assert_eq!(csv.text, expected);
    assert_eq!(
        server
            .get("/rest/v1/history.csv", common::Auth::None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

/// `2026-11-22T03:25:11Z` for Unix seconds.
fn utc(seconds: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(seconds).unwrap();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `count` faucet transactions to `account`, sent all at once (several land in
/// one millisecond: the order must break ties). Their txids. Straight to the
/// simnet: the story is the history, not the faucet's limits.
async fn faucet_many(server: &Server, account: &Account, count: usize) -> Vec<String> {
    let simnet = &server.services.engine.simnet;
    let calls = (0..count)
        .map(|i| simnet.faucet(&account.address, engine::Msat::from_sat(1000 + i as i64)));
    futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// Every page of `/rest/v1/history?{query}&limit={limit}`: each page's
/// transactions, in order, checking that only a full page has a next one.
async fn history_pages(
    server: &Server,
    account: &Account,
    query: &str,
    limit: usize,
) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let reply = server
            .get(
                &format!("/rest/v1/history?{query}&limit={limit}&cursor={cursor}"),
                common::Auth::Bearer(&account.token),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let page = reply.body["transactions"].as_array().unwrap().clone();
        assert!(page.len() <= limit);
        pages.push(page);
        match reply.body["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(pages.last().unwrap().len(), limit, "{}", reply.text);
                cursor = next.to_string();
            }
            None => return pages,
        }
        assert!(pages.len() < 100, "the pages never end");
    }
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

async fn paging_through_250_transactions_gives_each_once_in_order(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let mut funded = faucet_many(&server, &alice, 250).await;
    let pages = history_pages(&server, &alice, "", 100).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    let all: Vec<Value> = pages.concat();
    let mut seen = ids(&all);
    // Newest first.
    assert!(all
        .windows(2)
        .all(|w| w[0]["time"].as_i64() >= w[1]["time"].as_i64()));
    // Every transaction exactly once.
    seen.sort();
    funded.sort();
    assert_eq!(seen, funded);
    // The first page is what the default limit gives, and the default is 100.
    let first = server
        .get("/rest/v1/history", common::Auth::Bearer(&alice.token))
        .await;
    assert_eq!(
        ids(first.body["transactions"].as_array().unwrap()),
        ids(&pages[0])
    );
    // getalldata still lists the newest 200.
    let data = get_all_data(&server, &alice).await;
    assert_eq!(
        ids(data["transactions"].as_array().unwrap()),
        ids(&all[..200])
    );
}

async fn a_malformed_cursor_or_limit_is_400_naming_its_field(server: Server) {
    let alice = sign_up(&server, "alice").await;
    faucet_many(&server, &alice, 3).await;
    let hex = |text: &str| text.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    // Not hex, not text, a kind or time that is not one, too few fields, too long.
    let forged_history = [
        "zz".to_string(),
        "abc".to_string(),
        hex("1700000000000:gift:ab"),
        hex("soon:sent:ab"),
        hex("1700000000000:sent"),
        "ab".repeat(2000),
    ];
    let forged_channels = [
        "zz".to_string(),
        hex("soon:ab:0"),
        hex("1700000000000"),
        "ab".repeat(2000),
    ];
    for (path, field) in forged_history
        .iter()
        .map(|cursor| (format!("/rest/v1/history?cursor={cursor}"), "cursor"))
        .chain(forged_channels.iter().map(|cursor| {
            (
                format!("/rest/v1/channels?state=closed&cursor={cursor}"),
                "cursor",
            )
        }))
        .chain(
            ["0", "501", "ten", "-1", "1.5"]
                .into_iter()
                .flat_map(|limit| {
                    [
                        (format!("/rest/v1/history?limit={limit}"), "limit"),
                        (
                            format!("/rest/v1/channels?state=closed&limit={limit}"),
                            "limit",
                        ),
                    ]
                }),
        )
        .chain([
            ("/rest/v1/channels".to_string(), "state"),
            ("/rest/v1/channels?state=open".to_string(), "state"),
        ])
    {
        let reply = server.get(&path, common::Auth::Cookie(&alice.cookie)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            reply.text
        );
        assert_eq!(
            reply.body["error"]["field"], field,
            "{path}: {}",
            reply.text
        );
        assert!(reply.body["error"]["message"].is_string());
    }
    for limit in [1, 500] {
        let reply = server
            .get(
                &format!("/rest/v1/history?limit={limit}"),
                common::Auth::Cookie(&alice.cookie),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(
            reply.body["transactions"].as_array().unwrap().len(),
            limit.min(3)
        );
    }
    for path in ["/rest/v1/history", "/rest/v1/channels?state=closed"] {
        assert_eq!(
            server.get(path, common::Auth::None).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

async fn filters_combine_with_the_cursor(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let bob = sign_up(&server, "bob").await;
    connect(&server, &alice).await;
    connect(&server, &bob).await;
    let mut teas = Vec::new();
    for i in 0..12 {
        let memo = if i % 2 == 0 {
            format!("Tea {i}")
        } else {
            format!("cake {i}")
        };
        let request = invoice(&server, &bob, json!({"amount": 1000 + i, "memo": memo})).await;
        let paid = bearer(
            &server,
            &alice,
            "/rest/v1/sendinvoice",
            json!({"invoiceid": request}),
        )
        .await;
        let hash = paid.body["payment"]["payment_hash"].as_str().unwrap();
        if i % 2 == 0 {
            teas.push(hash.to_string());
        }
    }
    let everything = history_pages(&server, &alice, "", 500).await.concat();
    let today = utc(everything[0]["time"].as_i64().unwrap())[..10].to_string();
    for (query, limit) in [
        ("type=sent&q=TEA".to_string(), 4),
        ("type=sent&q=e".to_string(), 5),
        ("type=onchain".to_string(), 1),
        (format!("type=sent&from={today}&to={today}"), 5),
        ("q=cake".to_string(), 1),
    ] {
        let paged = history_pages(&server, &alice, &query, limit).await.concat();
        let whole = history_pages(&server, &alice, &query, 500).await.concat();
        assert!(paged.len() > limit, "{query}: more than one page");
        assert_eq!(ids(&paged), ids(&whole), "{query}");
        // The same rows as filtering everything by hand, in the same order.
        let by_hand: Vec<Value> = everything
            .iter()
            .filter(|t| {
                let kind = t["type"].as_str().unwrap();
                let memo = t["memo"].as_str().unwrap().to_lowercase();
                match query.as_str() {
                    "type=sent&q=TEA" => kind == "sent" && memo.contains("tea"),
                    "type=sent&q=e" => kind == "sent" && memo.contains('e'),
                    "type=onchain" => kind.starts_with("onchain"),
                    "q=cake" => memo.contains("cake"),
                    _ => kind == "sent",
                }
            })
            .cloned()
            .collect();
        assert_eq!(ids(&paged), ids(&by_hand), "{query}");
    }
    let mut tea_ids = ids(&history_pages(&server, &alice, "type=sent&q=tea", 4)
        .await
        .concat());
    tea_ids.sort();
    teas.sort();
    assert_eq!(tea_ids, teas);
}

async fn another_accounts_transactions_never_appear(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let bob = sign_up(&server, "bob").await;
    let mut mine = faucet_many(&server, &alice, 30).await;
    let theirs = faucet_many(&server, &bob, 40).await;
    let mut seen = ids(&history_pages(&server, &alice, "", 7).await.concat());
    seen.sort();
    mine.sort();
    assert_eq!(seen, mine);
    // A cursor from Bob's pages only says where to start: Alice still sees hers.
    let bobs = history_pages(&server, &bob, "", 39).await;
    let reply = server
        .get(
            "/rest/v1/history?limit=39",
            common::Auth::Bearer(&bob.token),
        )
        .await;
    let cursor = reply.body["next_cursor"].as_str().unwrap();
    assert_eq!(
        ids(&bobs[0]),
        ids(reply.body["transactions"].as_array().unwrap())
    );
    let after = server
        .get(
            &format!("/rest/v1/history?cursor={cursor}&limit=500"),
            common::Auth::Bearer(&alice.token),
        )
        .await;
    let after = ids(after.body["transactions"].as_array().unwrap());
    assert!(after
        .iter()
        .all(|id| mine.contains(id) && !theirs.contains(id)));
    let csv = server
        .get("/rest/v1/history.csv", common::Auth::Bearer(&alice.token))
        .await;
    assert_eq!(csv.text.trim_end().split("\r\n").count(), 1 + 30);
    assert!(theirs.iter().all(|id| !csv.text.contains(id.as_str())));
}

async fn the_channel_list_shows_ten_closed_and_pages_the_rest(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let funded = bearer(
        &server,
        &alice,
        "/api/v1/simnet/faucet",
        json!({"address": alice.address, "sats": 2_000_000}),
    )
    .await;
    assert_eq!(funded.status, StatusCode::OK, "{}", funded.text);
    mine(&server, &alice, 1).await;
    let hub = hub_of(&server, &alice).await;
    let open = |amount: i64| {
        bearer(
            &server,
            &alice,
            "/rest/v1/openchannel",
            json!({"remotenode": hub, "amount": amount}),
        )
    };
    // Below the minimum: 400 naming the amount, nothing spent.
    let dust = open(19_999).await;
    assert_eq!(dust.status, StatusCode::BAD_REQUEST, "{}", dust.text);
    assert_eq!(dust.body["error"]["field"], "amount");

    let mut closed = Vec::new();
    for round in 0..6 {
        let mut points = Vec::new();
        for _ in 0..2 {
            let opened = open(20_000).await;
            assert!(opened.body["error"].is_null(), "{}", opened.text);
            points.push(
                opened.body["channel"]["channelpoint"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        if round == 0 {
            // A third pending channel to the same node is refused, clearly, and
            // spends nothing.
            let before = get_all_data(&server, &alice).await;
            let third = open(20_000).await;
            assert_eq!(third.status, StatusCode::OK, "{}", third.text);
            assert_eq!(
                third.body["error"]["message"],
                "2 channels to this node are pending already; wait until one opens"
            );
            let after = get_all_data(&server, &alice).await;
            assert_eq!(after["balances"], before["balances"]);
            assert_eq!(after["channels"], before["channels"]);
        }
        mine(&server, &alice, 3).await;
        for point in &points {
            let reply = bearer(
                &server,
                &alice,
                "/rest/v1/closechannel",
                json!({"channelpoint": point}),
            )
            .await;
            assert_eq!(reply.body["channel"]["state"], "Closing", "{}", reply.text);
        }
        mine(&server, &alice, 1).await;
        closed.extend(points);
    }

    let data = get_all_data(&server, &alice).await;
    let channels = data["channels"].as_array().unwrap();
    let live: Vec<&Value> = channels.iter().filter(|c| c["state"] != "Closed").collect();
    assert_eq!(live.len(), 1, "the hub's channel back: {channels:?}");
    assert_eq!(channels.len(), 1 + 10, "and the last ten closed");
    let mut listed: Vec<String> = channels[1..]
        .iter()
        .map(|c| c["channelpoint"].as_str().unwrap().to_string())
        .collect();
    let cursor = data["closed_channels_cursor"].as_str().unwrap();
    let mut next = Some(cursor.to_string());
    while let Some(cursor) = next {
        let page = server
            .get(
                &format!("/rest/v1/channels?state=closed&limit=1&cursor={cursor}"),
                common::Auth::Cookie(&alice.cookie),
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let channels = page.body["channels"].as_array().unwrap();
        assert_eq!(channels.len(), 1, "{}", page.text);
        assert_eq!(channels[0]["state"], "Closed");
        listed.push(channels[0]["channelpoint"].as_str().unwrap().to_string());
        next = page.body["next_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(listed.len(), 12);
    listed.sort();
    closed.sort();
    assert_eq!(listed, closed, "every closed channel once");
    // From the start, the endpoint lists the same closed channels.
    let first = server
        .get(
            "/rest/v1/channels?state=closed",
            common::Auth::Bearer(&alice.token),
        )
        .await;
    assert_eq!(first.body["channels"].as_array().unwrap().len(), 12);
    assert_eq!(first.body["next_cursor"], Value::Null);
    assert_eq!(first.body["channels"][0], channels[1]);
    assert_conserved(&server).await;
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

/// A bearer-token write with an `Idempotency-Key`.
async fn bearer_with_key(
    server: &Server,
    account: &Account,
    path: &str,
    key: &str,
    body: Value,
) -> Reply {
    server
        .send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Bearer {}", account.token))
                .header("idempotency-key", key)
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
}

async fn received_count(server: &Server, account: &Account) -> usize {
    get_all_data(server, account).await["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["type"] == "received")
        .count()
}

async fn a_retried_payment_with_the_same_idempotency_key_pays_once(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let bob = sign_up(&server, "bob").await;
    connect(&server, &alice).await;
    connect(&server, &bob).await;
    let added = bearer(
        &server,
        &alice,
        "/rest/v1/addcontact",
        json!({"alias": "bob", "node_id": bob.node}),
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text);

    // Alice's phone retries a QuickPay eight times at once after a lost answer.
    let pay = json!({"dest": "bob", "amount": 1000, "memo": "once"});
    let retries = (0..8).map(|_| {
        bearer_with_key(
            &server,
            &alice,
            "/rest/v1/quickpay",
            "lunch-42",
            pay.clone(),
        )
    });
    let replies = futures_util::future::join_all(retries).await;
    let mut hashes = Vec::new();
    for reply in &replies {
        match reply.status {
            StatusCode::OK => hashes.push(reply.body["payment"]["payment_hash"].clone()),
            // The first one still running: the client is told to retry.
            StatusCode::CONFLICT => assert!(reply.body["error"]["message"].is_string()),
            other => panic!("{other}: {}", reply.text),
        }
    }
    assert!(!hashes.is_empty());
    assert!(
        hashes.iter().all(|h| h == &hashes[0] && h.is_string()),
        "{hashes:?}"
    );
    // A later retry answers the first payment again.
    let later = bearer_with_key(
        &server,
        &alice,
        "/rest/v1/quickpay",
        "lunch-42",
        pay.clone(),
    )
    .await;
    assert_eq!(later.status, StatusCode::OK, "{}", later.text);
    assert_eq!(later.body["payment"]["payment_hash"], hashes[0]);
    assert_eq!(received_count(&server, &bob).await, 1, "bob was paid once");

    // The same key for another request is refused, and pays nothing.
    let other = bearer_with_key(
        &server,
        &alice,
        "/rest/v1/quickpay",
        "lunch-42",
        json!({"dest": "bob", "amount": 2000}),
    )
    .await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST, "{}", other.text);
    assert_eq!(received_count(&server, &bob).await, 1);

    // A refusal is the first outcome too: asked again, the same refusal.
    let too_much = json!({"dest": "bob", "amount": 90_000_000});
    let refused = bearer_with_key(
        &server,
        &alice,
        "/rest/v1/quickpay",
        "big",
        too_much.clone(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::OK);
    let message = refused.body["error"]["message"].clone();
    assert!(message.is_string(), "{}", refused.text);
    let again = bearer_with_key(&server, &alice, "/rest/v1/quickpay", "big", too_much).await;
    assert_eq!(again.body["error"]["message"], message);

    // An invoice paid with a key: the retry gets the payment, not "already paid".
    let request = invoice(&server, &bob, json!({"amount": 700})).await;
    let body = json!({"invoiceid": request});
    let first = bearer_with_key(
        &server,
        &alice,
        "/rest/v1/sendinvoice",
        "inv-1",
        body.clone(),
    )
    .await;
    let second = bearer_with_key(&server, &alice, "/rest/v1/sendinvoice", "inv-1", body).await;
    assert!(
        first.body["payment"]["payment_hash"].is_string(),
        "{}",
        first.text
    );
    assert_eq!(first.text, second.text);

    // Bad keys are a client mistake.
    for key in ["", &"k".repeat(256), "two words"] {
        let reply = bearer_with_key(&server, &alice, "/rest/v1/quickpay", key, pay.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{key:?}: {}",
            reply.text
        );
    }
    assert_eq!(received_count(&server, &bob).await, 2);
    assert_conserved(&server).await;
}

/// Opens `GET /rest/v1/events` with a cookie or a token.
async fn open_stream(server: &Server, auth: (&str, String)) -> axum::response::Response {
    use tower::ServiceExt;
    server
        .router
        .clone()
        .oneshot(
            Request::get("/rest/v1/events")
                .header(auth.0, auth.1)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
}

/// Whether the stream ends (its body finishes) within five seconds.
async fn ends(response: axum::response::Response) -> bool {
    use http_body_util::BodyExt;
    let mut body = response.into_body();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return false,
            Ok(None) => return true,
            Ok(Some(_)) => continue,
        }
    }
}

async fn event_streams_end_with_their_credentials_and_are_capped(server: Server) {
    let alice = sign_up(&server, "alice").await;
    let cookie = (header::COOKIE.as_str(), alice.cookie.clone());
    let token = (
        header::AUTHORIZATION.as_str(),
        format!("Bearer {}", alice.token),
    );

    // Eight at once; the ninth is refused with a clear message; closing one
    // makes room again.
    let mut open = Vec::new();
    for _ in 0..7 {
        let stream = open_stream(&server, token.clone()).await;
        assert_eq!(stream.status(), StatusCode::OK);
        open.push(stream);
    }
    let browser = open_stream(&server, cookie.clone()).await;
    assert_eq!(browser.status(), StatusCode::OK);
    let ninth = open_stream(&server, token.clone()).await;
    assert_eq!(ninth.status(), StatusCode::TOO_MANY_REQUESTS);
    open.pop();
    let again = open_stream(&server, token.clone()).await;
    assert_eq!(again.status(), StatusCode::OK);
    open.push(again);

    // Logging the browser out ends its stream, not the token's.
    let logout = server
        .send(
            Request::post(format!("/rest/v1/logout?_csrf={}", alice.csrf))
                .header(header::COOKIE, &alice.cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(logout.status, StatusCode::OK, "{}", logout.text);
    assert!(ends(browser).await, "the logged-out browser's stream ended");
    let stale = open_stream(&server, cookie).await;
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);

    // A password change ends every stream of the old credentials.
    let changed = server
        .send(
            Request::put("/api/v1/auth/update-password")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Bearer {}", alice.token))
                .body(Body::from(
                    json!({"old_password": PASSWORD, "new_password": "Battery-staple-9"})
                        .to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let first = open.pop().unwrap();
    assert!(ends(first).await, "a stream of the old token ended");

    // Shutting down ends the streams still open (here: Bob's).
    let bob = sign_up(&server, "bob").await;
    let bobs = open_stream(
        &server,
        (
            header::AUTHORIZATION.as_str(),
            format!("Bearer {}", bob.token),
        ),
    )
    .await;
    assert_eq!(bobs.status(), StatusCode::OK);
    server.services.end_streams();
    assert!(ends(bobs).await, "shutdown ended the stream");
}

/// `scanqr` reads photos within bounds: the image's dimensions and the decoder's
/// allocation are checked from its header, and the body is no larger than a phone
/// photo. Storage plays no part here, so these run on SQLite only.
mod photo_bounds {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use super::*;

    async fn scan(server: &Server, token: &str, photo: Vec<u8>) -> Reply {
        server
            .send(
                Request::post("/rest/v1/scanqr")
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .body(Body::from(photo))
                    .unwrap(),
            )
            .await
    }

    /// A white greyscale PNG of 17000 x 17000 pixels compressed as far as it
    /// goes: about 286 KB that once cost 290 MB and seconds of CPU to read.
    fn huge_png() -> Vec<u8> {
        static PNG: OnceLock<Vec<u8>> = OnceLock::new();
        PNG.get_or_init(|| {
            use std::io::Write;
            let side = 17_000;
            let mut png = Vec::new();
            let mut encoder = png::Encoder::new(&mut png, side, side);
            encoder.set_color(png::ColorType::Grayscale);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.set_compression(png::Compression::High);
            let mut writer = encoder.write_header().unwrap();
            let mut stream = writer.stream_writer().unwrap();
            let row = vec![255u8; side as usize];
            for _ in 0..side {
                stream.write_all(&row).unwrap();
            }
            stream.finish().unwrap();
            writer.finish().unwrap();
            png
        })
        .clone()
    }

    /// A 4000 x 3000 JPEG, as a phone takes it: `text`'s QR code in the middle
    /// of a shaded, noisy background.
    fn phone_photo_of_qr(text: &str) -> Vec<u8> {
        let qr = qrcode::QrCode::new(text.as_bytes())
            .unwrap()
            .render::<image::Luma<u8>>()
            .module_dimensions(12, 12)
            .quiet_zone(true)
            .build();
        let (width, height) = (4000, 3000);
        let (left, top) = ((width - qr.width()) / 2, (height - qr.height()) / 2);
        let mut seed = 0x2545_f491_u32;
        let photo = image::RgbImage::from_fn(width, height, |x, y| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let noise = (seed >> 24) as i32 % 16 - 8;
            let on_code = x >= left && y >= top && x < left + qr.width() && y < top + qr.height();
            let base = if on_code {
                if qr.get_pixel(x - left, y - top).0[0] < 128 {
                    40
                } else {
                    215
                }
            } else {
                120 + (x * 60 / width) as i32
            };
            let v = (base + noise).clamp(0, 255) as u8;
            image::Rgb([v, v, v.saturating_sub(10)])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&photo)
            .unwrap();
        jpeg
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_png_claiming_17000_pixels_a_side_is_refused_at_once() {
        let db = testdb::sqlite();
        let server = open_server(&db.url).await;
        let alice = sign_up(&server, "alice").await;
        let png = huge_png();
        assert!(png.len() < 1024 * 1024, "{} bytes", png.len());

        let started = Instant::now();
        let refused = scan(&server, &alice.token, png).await;
        let took = started.elapsed();
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
        assert!(
            refused.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("too large"),
            "{}",
            refused.text
        );
        assert!(took < Duration::from_secs(1), "took {took:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_4000_by_3000_phone_photo_of_an_invoice_is_read() {
        let db = testdb::sqlite();
        let server = open_server(&db.url).await;
        let alice = sign_up(&server, "alice").await;
        let request = invoice(&server, &alice, json!({"amount": 777, "memo": "photo"})).await;
        let jpeg = phone_photo_of_qr(&request.to_uppercase());
        assert!(jpeg.len() < 10 * 1024 * 1024, "{} bytes", jpeg.len());

        let read = scan(&server, &alice.token, jpeg).await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.text);
        assert_eq!(read.body["text"], request.to_uppercase());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_larger_than_a_phone_photo_is_refused_with_413() {
        let db = testdb::sqlite();
        let server = open_server(&db.url).await;
        let alice = sign_up(&server, "alice").await;

        let too_big = scan(&server, &alice.token, vec![0; 10 * 1024 * 1024 + 1]).await;
        assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            too_big.body["error"]["message"],
            "the photo is larger than 10 MB"
        );
        let empty = scan(&server, &alice.token, Vec::new()).await;
        assert_eq!(empty.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            empty.body["error"]["message"],
            "send a photo as the request body"
        );
    }
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

/// A wallet in usd: amounts read and written in dollars at the desk's BTC/USD
/// index, cents exact, with the rate and its time in every answer that holds
/// dollars; nothing in usd is read at a stale price.
mod usd {
    use super::*;
    use engine::desk::contract::Price;

    testdb::on_both_databases!(
        open_server;
        a_wallet_in_usd_reads_and_writes_dollars_at_the_index,
        dollars_beyond_a_cent_or_the_supply_answer_400_and_change_nothing,
    );

    /// The stories where every price is stale a millisecond after it is made.
    mod stale {
        use super::*;

        testdb::on_both_databases!(
            stale_server;
            a_stale_price_refuses_dollars_and_still_shows_balances_with_its_time,
        );
    }

    async fn stale_server(url: &str) -> Server {
        let mut settings = engine::Settings::default();
        settings.desk.market.stale_after = std::time::Duration::from_millis(1);
        Server::open_with_settings(url, settings, server::Site::for_tests(true)).await
    }

    /// 30,000.00 USD/BTC: a cent is 33,333.33... msat, so every rounding shows.
    const INDEX: u64 = 3_000_000;
    const MSAT_PER_BTC: u128 = 100_000_000_000;

    /// `msat` in dollars at `INDEX`, to the nearest cent, as the API writes it.
    fn dollars(msat: i64) -> String {
        let cents = (msat as u128 * u128::from(INDEX) + MSAT_PER_BTC / 2) / MSAT_PER_BTC;
        format!("{}.{:02}", cents / 100, cents % 100)
    }

    /// `cents` in msat at `INDEX`: `cents * 10^11 / index`, rounded up.
    fn msat_of_cents(cents: u64) -> i64 {
        (u128::from(cents) * MSAT_PER_BTC).div_ceil(u128::from(INDEX)) as i64
    }

    /// A JSON amount in sats, as msat.
    fn sat_msat(value: &Value) -> i64 {
        engine::Unit::Sat
            .parse_amount("amount", &value.to_string())
            .unwrap_or_else(|err| panic!("{value}: {err}"))
            .0
    }

    /// Whether the JSON number `value` is the decimal `text` (as the same
    /// double: exact for these amounts).
    fn is(value: &Value, text: &str) -> bool {
        value.as_f64().is_some() && value.as_f64() == text.parse::<f64>().ok()
    }

    /// Quotes `INDEX` now: the quote's time as the API writes it.
    async fn set_price(server: &Server) -> String {
        let (quote, _) = server
            .services
            .engine
            .desk
            .move_price(Price::from_cents(INDEX))
            .await
            .unwrap();
        engine::rfc3339(quote.at_ms)
    }

    async fn choose(server: &Server, account: &Account, denomination: &str) {
        let reply = call(
            server,
            account,
            "/rest/v1/settings",
            json!({"denomination": denomination}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.body["denomination"], denomination.to_lowercase());
    }

    fn assert_fresh_rate(reply: &Reply, at: &str) {
        assert_eq!(
            reply.body["rate"],
            json!({"usd": "30000.00", "at": at, "stale": false}),
            "{}",
            reply.text
        );
    }

    async fn invoice_count(server: &Server) -> i64 {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM invoices")
            .fetch_one(server.services.engine.db.pool())
            .await
            .unwrap()
            .get("n")
    }

    async fn a_wallet_in_usd_reads_and_writes_dollars_at_the_index(server: Server) {
        let alice = sign_up(&server, "alice").await;
        let bob = sign_up(&server, "bob").await;
        connect(&server, &alice).await;
        connect(&server, &bob).await;
        let in_sat = get_all_data(&server, &alice).await;
        assert!(in_sat.get("rate").is_none(), "no rate in sat: {in_sat}");

        // Alice reads her wallet in dollars, with the rate and its time.
        choose(&server, &alice, "USD").await;
        let at = set_price(&server).await;
        let data = server
            .get("/rest/v1/getalldata", common::Auth::Cookie(&alice.cookie))
            .await;
        assert_eq!(data.status, StatusCode::OK, "{}", data.text);
        assert_eq!(data.body["denomination"], "usd");
        assert_fresh_rate(&data, &at);
        for field in ["btcfunds", "lntfunds", "onchainfunds"] {
            let expected = dollars(sat_msat(&in_sat["balances"][field]));
            assert!(
                is(&data.body["balances"][field], &expected),
                "{field}: {expected} {}",
                data.text
            );
            // Written with both cents, as a JSON number.
            assert!(
                data.text.contains(&format!("\"{field}\":{expected}")),
                "{field}: {}",
                data.text
            );
        }
        // Her 1,000,000 sat channel is worth 300.00 USD.
        let channel = data.body["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["initiator"] == true)
            .unwrap();
        assert!(is(&channel["capacity"], "300.00"), "{channel}");

        // She asks 12.34 USD: the invoice asks ceil(1234 * 10^11 / 3,000,000)
        // = 41,133,334 msat, never less than the dollars, and reads back as typed.
        let asked = call(
            &server,
            &alice,
            "/rest/v1/createinvoice",
            json!({"amount": "12.34", "memo": "lunch"}),
        )
        .await;
        assert_eq!(asked.status, StatusCode::OK, "{}", asked.text);
        assert_fresh_rate(&asked, &at);
        let request = asked.body["payment_request"].as_str().unwrap().to_string();
        let decoded = engine::simnet::invoice::decode(&request).unwrap();
        assert_eq!(msat_of_cents(1234), 41_133_334);
        assert_eq!(decoded.amount, Some(engine::Msat(41_133_334)));
        let read = call(
            &server,
            &alice,
            "/rest/v1/decodeinvoice",
            json!({"invoiceid": request}),
        )
        .await;
        assert!(is(&read.body["amount"], "12.34"), "{}", read.text);
        assert_fresh_rate(&read, &at);

        // Bob, in sats, pays exactly what the invoice asks; his answer has no rate.
        let paid = call(
            &server,
            &bob,
            "/rest/v1/sendinvoice",
            json!({"invoiceid": request, "password": PASSWORD}),
        )
        .await;
        assert!(paid.body["error"].is_null(), "{}", paid.text);
        assert_eq!(sat_msat(&paid.body["payment"]["amount"]), 41_133_334);
        assert!(paid.body.get("rate").is_none(), "{}", paid.text);

        // Alice pays 5 USD into Bob's amountless invoice, at most a cent of fee,
        // and saves him: he receives ceil(500 * 10^11 / 3,000,000) msat.
        let at = set_price(&server).await;
        let open_invoice = invoice(&server, &bob, json!({"memo": "any"})).await;
        let sent = call(
            &server,
            &alice,
            "/rest/v1/sendinvoice",
            json!({"invoiceid": open_invoice, "amount": 5, "fee_limit": "0.01",
                   "alias": "bob", "password": PASSWORD}),
        )
        .await;
        assert!(sent.body["error"].is_null(), "{}", sent.text);
        assert!(is(&sent.body["payment"]["amount"], "5.00"), "{}", sent.text);
        // The hub's fee (1 sat + 100 ppm, 2,666 msat) is under a cent.
        assert!(is(&sent.body["payment"]["fee"], "0.00"), "{}", sent.text);
        assert_fresh_rate(&sent, &at);
        let bob_data = get_all_data(&server, &bob).await;
        assert_eq!(
            sat_msat(&bob_data["transactions"][0]["amount"]),
            msat_of_cents(500)
        );

        // QuickPay of one cent: 33,334 msat, a positive amount never rounded to zero.
        let quick = call(
            &server,
            &alice,
            "/rest/v1/quickpay",
            json!({"dest": "bob", "amount": "0.01", "password": PASSWORD}),
        )
        .await;
        assert!(quick.body["error"].is_null(), "{}", quick.text);
        assert!(
            is(&quick.body["payment"]["amount"], "0.01"),
            "{}",
            quick.text
        );
        assert_fresh_rate(&quick, &at);
        let bob_data = get_all_data(&server, &bob).await;
        assert_eq!(sat_msat(&bob_data["transactions"][0]["amount"]), 33_334);

        // A channel of 100 USD: 333,333,334 msat, up to the next whole sat.
        let hub = hub_of(&server, &alice).await;
        let opened = call(
            &server,
            &alice,
            "/rest/v1/openchannel",
            json!({"remotenode": hub, "amount": "100"}),
        )
        .await;
        assert!(opened.body["error"].is_null(), "{}", opened.text);
        assert!(
            is(&opened.body["channel"]["capacity"], "100.00"),
            "{}",
            opened.text
        );
        assert_fresh_rate(&opened, &at);

        // Her history and its CSV show the 12.34 USD she received, and the rate.
        let history = server
            .get(
                "/rest/v1/history?type=received",
                common::Auth::Cookie(&alice.cookie),
            )
            .await;
        assert_eq!(history.status, StatusCode::OK, "{}", history.text);
        assert!(
            is(&history.body["transactions"][0]["amount"], "12.34"),
            "{}",
            history.text
        );
        assert_fresh_rate(&history, &at);
        let csv = server
            .get(
                "/rest/v1/history.csv?type=received",
                common::Auth::Cookie(&alice.cookie),
            )
            .await;
        assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
        let lines: Vec<&str> = csv.text.trim_end().split("\r\n").collect();
        assert_eq!(
            lines[0],
            "\"time\",\"type\",\"amount\",\"fee\",\"unit\",\"memo\",\"status\",\"id\",\
             \"usd_per_btc\",\"rate_at\""
        );
        assert!(
            lines[1].contains(",\"received\",12.34,0.00,\"usd\",\"lunch\",")
                && lines[1].contains(&format!(",30000.00,\"{}", &at[..19])),
            "{}",
            csv.text
        );

        // Back in sats: no rate, and the channel holds 333,334 sat.
        choose(&server, &alice, "sat").await;
        let data = get_all_data(&server, &alice).await;
        assert!(data.get("rate").is_none(), "{data}");
        assert!(
            data["channels"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["capacity"] == 333_334),
            "{data}"
        );
        assert_conserved(&server).await;
    }

    async fn dollars_beyond_a_cent_or_the_supply_answer_400_and_change_nothing(server: Server) {
        let alice = sign_up(&server, "alice").await;
        choose(&server, &alice, "usd").await;
        set_price(&server).await;
        let hub = hub_of(&server, &alice).await;
        let before = invoice_count(&server).await;
        let cent = "than a cent in usd (2 at most)";
        for (body, reason) in [
            (r#"{"amount": "12.345"}"#, cent),
            (r#"{"amount": 0.001}"#, cent),
            // A float would read this as 0.1.
            (r#"{"amount": 0.10000000000000001}"#, cent),
            (r#"{"amount": "-1"}"#, "negative"),
            (r#"{"amount": -0}"#, "negative"),
            (r#"{"amount": 1e2}"#, "decimal number"),
            // 7 * 10^13 USD is 2.3 billion BTC at 30,000 USD/BTC.
            (
                r#"{"amount": "70000000000000"}"#,
                "21 million BTC (at 30000.00 USD/BTC)",
            ),
        ] {
            let reply = server
                .send(
                    Request::post("/rest/v1/createinvoice")
                        .header(header::CONTENT_TYPE, "application/json")
                        .header(header::AUTHORIZATION, format!("Bearer {}", alice.token))
                        .body(Body::from(body))
                        .unwrap(),
                )
                .await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{body}: {}",
                reply.text
            );
            assert_eq!(reply.body["error"]["field"], "amount", "{body}");
            let message = reply.body["error"]["message"].as_str().unwrap();
            assert!(message.contains(reason), "{body}: {message}");
        }
        for (path, body, field) in [
            (
                "/rest/v1/quickpay",
                json!({"dest": "hub", "amount": "0.005", "password": PASSWORD}),
                "amount",
            ),
            (
                "/rest/v1/openchannel",
                json!({"remotenode": hub, "amount": "100.001"}),
                "amount",
            ),
            (
                "/rest/v1/sendinvoice",
                json!({"invoiceid": "lnbcrt1", "fee_limit": "0.001", "password": PASSWORD}),
                "fee_limit",
            ),
        ] {
            let reply = call(&server, &alice, path, body).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{path}: {}",
                reply.text
            );
            assert_eq!(
                reply.body["error"]["field"], field,
                "{path}: {}",
                reply.text
            );
        }
        let unknown = call(
            &server,
            &alice,
            "/rest/v1/settings",
            json!({"denomination": "eur"}),
        )
        .await;
        assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.text);
        assert!(
            unknown.text.contains("sat, btc, mbtc, bits, usd"),
            "{}",
            unknown.text
        );
        assert_eq!(invoice_count(&server).await, before);
        let data = get_all_data(&server, &alice).await;
        assert_eq!(data["denomination"], "usd");
        assert!(data["channels"].as_array().unwrap().is_empty(), "{data}");
        assert!(
            data["transactions"].as_array().unwrap().is_empty(),
            "{data}"
        );
    }

    async fn a_stale_price_refuses_dollars_and_still_shows_balances_with_its_time(server: Server) {
        let alice = sign_up(&server, "alice").await;
        let funded = call(
            &server,
            &alice,
            "/api/v1/simnet/faucet",
            json!({"address": alice.address, "sats": 2_000_000}),
        )
        .await;
        assert_eq!(funded.status, StatusCode::OK, "{}", funded.text);
        mine(&server, &alice, 1).await;
        choose(&server, &alice, "usd").await;
        let at = set_price(&server).await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;

        // Reads show the balance at the last price, saying it is stale and when
        // it was taken: 2,000,000 sat at 30,000.00 USD/BTC is 600.00 USD.
        let data = server
            .get("/rest/v1/getalldata", common::Auth::Cookie(&alice.cookie))
            .await;
        assert_eq!(data.status, StatusCode::OK, "{}", data.text);
        assert!(
            is(&data.body["balances"]["onchainfunds"], "600.00"),
            "{}",
            data.text
        );
        assert_eq!(
            data.body["rate"],
            json!({"usd": "30000.00", "at": at, "stale": true})
        );

        // Nothing in dollars is read at that price: 503 in the API's format,
        // and nothing is made.
        let before = invoice_count(&server).await;
        let hub = hub_of(&server, &alice).await;
        for (path, body) in [
            ("/rest/v1/createinvoice", json!({"amount": "1.00"})),
            (
                "/rest/v1/quickpay",
                json!({"dest": "hub", "amount": "1", "password": PASSWORD}),
            ),
            (
                "/rest/v1/openchannel",
                json!({"remotenode": hub, "amount": "100"}),
            ),
        ] {
            let reply = call(&server, &alice, path, body).await;
            assert_eq!(
                reply.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{path}: {}",
                reply.text
            );
            let message = reply.body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("BTC/USD price is stale") && message.contains("usd"),
                "{path}: {message}"
            );
        }
        assert_eq!(invoice_count(&server).await, before);
        let data = get_all_data(&server, &alice).await;
        assert!(data["channels"].as_array().unwrap().is_empty(), "{data}");
        assert!(is(&data["balances"]["onchainfunds"], "600.00"), "{data}");

        // What needs no price still works: an amountless invoice, and amounts
        // in sats.
        let open = call(
            &server,
            &alice,
            "/rest/v1/createinvoice",
            json!({"memo": "any"}),
        )
        .await;
        assert_eq!(open.status, StatusCode::OK, "{}", open.text);
        assert!(open.body.get("rate").is_none(), "{}", open.text);
        choose(&server, &alice, "sat").await;
        let in_sat = call(
            &server,
            &alice,
            "/rest/v1/createinvoice",
            json!({"amount": 1000}),
        )
        .await;
        assert_eq!(in_sat.status, StatusCode::OK, "{}", in_sat.text);
        assert_eq!(invoice_count(&server).await, before + 2);
    }
}
