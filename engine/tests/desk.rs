//! The exchange on both databases: trading balances funded and emptied over
//! Lightning through the exchange's own node, LNURL-withdraw links, accounts
//! paid by invoice, the password-less sign-ins (Joule, LNURL-auth) and scoped
//! tokens. Every story ends with the exchange's books balanced (every sat
//! received is in exactly one place) and the network's funds conserved.

use engine::Seen;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitcoin::secp256k1::{Message, PublicKey, Secp256k1, SecretKey};
use engine::desk::{DeskConfig, DeskScope, MadeWith, Scopes};
use engine::simnet::{ChannelState, PayRequest};
use engine::{Backend, Engine, Error, Msat, Settings, User};
use sqlx::Row;

testdb::on_both_databases!(
    open_engine;
    a_deposit_credits_the_trading_balance_once_whoever_pays_it,
    an_exchange_invoice_that_is_no_deposit_is_refused_and_nothing_moves,
    a_deposit_is_a_whole_number_of_sats_from_100_to_a_million,
    alice_withdraws_to_her_wallet_and_every_unfit_invoice_is_refused,
    eight_concurrent_withdrawals_take_only_what_the_balance_holds,
    a_withdrawal_that_cannot_be_paid_is_refunded_exactly_once,
    the_sweep_ends_a_stale_withdrawal_and_refunds_it_once,
    a_withdrawal_the_sweep_ended_is_never_paid_as_well,
    an_lnurl_withdraw_link_pays_once_even_answered_twice_at_once,
    an_account_paid_by_invoice_opens_once,
    joule_signs_in_with_a_one_time_challenge,
    lnurl_auth_signs_the_waiting_browser_in_once,
    scoped_tokens_work_until_revoked_or_voided_by_a_password_change,
    a_withdraw_link_dies_with_the_credential_that_made_it,
);

const PASSWORD: &str = "Correct-horse-7";
const CHANNEL: Msat = Msat::from_sat(1_000_000);

async fn open_engine(url: &str) -> Engine {
    Engine::open(url, Settings::default())
        .await
        .expect("engine opens")
}

/// A second server on the same database with its own desk settings.
async fn second_server(engine: &Engine, desk: DeskConfig) -> Engine {
    Engine::open(
        &engine.db.url(),
        Settings {
            desk,
            ..Settings::default()
        },
    )
    .await
    .expect("second server opens")
}

/// What the trader's paid withdrawals cost in routing fees (the trader pays).
async fn fees_paid(engine: &Engine, trader: &Trader) -> Msat {
    let rows = engine.desk.withdrawals(trader.id()).await.unwrap();
    Msat(
        rows.iter()
            .filter(|r| r.state == "paid")
            .map(|r| r.fee.0)
            .sum(),
    )
}

struct Trader {
    user: User,
    node: String,
}

impl Trader {
    fn id(&self) -> &str {
        &self.user.id.0
    }
}

/// Signs `name` up (from its own client address, so the sign-up limits per
/// client stay out of the stories); its node has no channel yet.
async fn account(engine: &Engine, name: &str) -> Trader {
    let client = format!("client-of-{name}");
    let user = engine
        .register(name, PASSWORD, None, &client)
        .await
        .unwrap();
    let node = engine.simnet.node_of_user(&user.id.0).await.unwrap().pubkey;
    Trader { user, node }
}

/// An account whose node has an open channel to the hub and one back, so it
/// can both pay and be paid.
async fn trader(engine: &Engine, name: &str) -> Trader {
    let trader = account(engine, name).await;
    let simnet = &engine.simnet;
    let address = simnet.node(&trader.node).await.unwrap().address;
    simnet
        .faucet(&address, Msat::from_sat(2_000_000))
        .await
        .unwrap();
    simnet.mine(1).await.unwrap();
    let hub = simnet.hub().await.unwrap().pubkey;
    simnet
        .open_channel(&trader.node, &hub, CHANNEL)
        .await
        .unwrap();
    simnet.mine(3).await.unwrap();
    simnet.mine(3).await.unwrap();
    assert_eq!(spendable(engine, &trader.node).await, CHANNEL);
    trader
}

/// What the node can pay over its open channels.
async fn spendable(engine: &Engine, node: &str) -> Msat {
    Msat(
        engine
            .simnet
            .live_channels(node)
            .await
            .unwrap()
            .iter()
            .filter(|c| c.state == ChannelState::Open)
            .map(|c| c.local.0)
            .sum(),
    )
}

fn exchange(engine: &Engine) -> String {
    engine.desk.node().pubkey.clone()
}

/// Deposits `amount` to the trader's balance, paid from its own node.
async fn deposit(engine: &Engine, trader: &Trader, amount: Msat) {
    let before = engine.desk.balance(trader.id()).await.unwrap();
    let issued = engine.desk.deposit(trader.id(), amount).await.unwrap();
    engine
        .simnet
        .pay(PayRequest::new(&trader.node, &issued.bolt11, None))
        .await
        .unwrap();
    assert_eq!(
        engine.desk.balance(trader.id()).await.unwrap(),
        Msat(before.0 + amount.0)
    );
}

/// Whether the network's invoice `hash` is settled.
async fn settled(engine: &Engine, hash: &str) -> bool {
    sqlx::query("SELECT settled_at FROM invoices WHERE payment_hash = $1")
        .bind(hash)
        .fetch_one(engine.db.pool())
        .await
        .unwrap()
        .get::<Option<i64>, _>("settled_at")
        .is_some()
}

/// The number of rows `sql` (a `SELECT COUNT(*) AS n ...` with at most one
/// bind) counts.
async fn count(engine: &Engine, sql: &str, bind: Option<&str>) -> i64 {
    let mut query = sqlx::query(sql);
    if let Some(bind) = bind {
        query = query.bind(bind.to_string());
    }
    query
        .fetch_one(engine.db.pool())
        .await
        .unwrap()
        .get::<i64, _>("n")
}

async fn users(engine: &Engine) -> i64 {
    count(engine, "SELECT COUNT(*) AS n FROM users", None).await
}

async fn assert_books(engine: &Engine) {
    let books = engine.desk.audit().await.unwrap();
    assert!(books.balanced(), "the exchange's books: {books:?}");
    let network = engine.simnet.audit().await.unwrap();
    assert!(network.balanced(), "funds not conserved: {network:?}");
}

#[track_caller]
fn assert_invalid<T>(outcome: engine::Result<T>, field: &str) {
    match outcome {
        Err(Error::Invalid { field: got, .. }) if got == field => {}
        Err(err) => panic!("expected Invalid on {field}, got {err:?}"),
        Ok(_) => panic!("expected Invalid on {field}, got Ok"),
    }
}

/// The query parameters of a URL.
fn query_of(url: &str) -> HashMap<String, String> {
    url.split_once('?')
        .map_or("", |(_, query)| query)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn new_key() -> SecretKey {
    SecretKey::from_slice(&rand::random::<[u8; 32]>()).expect("a valid secret key")
}

fn key_hex(key: &SecretKey) -> String {
    PublicKey::from_secret_key(&Secp256k1::new(), key).to_string()
}

/// An LNURL-auth answer (LUD-04): ECDSA over the 32 raw bytes of `k1`, DER,
/// low S (as libsecp256k1 signs), and the compressed key, both as hex.
fn lnurl_sign(key: &SecretKey, k1: &str) -> (String, String) {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(k1, &mut digest).unwrap();
    let signature = Secp256k1::new().sign_ecdsa(&Message::from_digest(digest), key);
    (hex::encode(&signature.serialize_der()[..]), key_hex(key))
}

/// Flips the last character of a hex string.
fn tampered(hex: &str) -> String {
    let (head, last) = hex.split_at(hex.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}

/// Exactly one of the outcomes is `Ok`: answers it and the others.
#[track_caller]
fn exactly_one_ok<T: std::fmt::Debug>(
    outcomes: Vec<engine::Result<T>>,
) -> (T, Vec<engine::Result<T>>) {
    let (ok, refused): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(|o| o.is_ok());
    assert_eq!(ok.len(), 1, "exactly one must succeed: {ok:?} {refused:?}");
    (ok.into_iter().next().unwrap().unwrap(), refused)
}

async fn a_deposit_credits_the_trading_balance_once_whoever_pays_it(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice").await;
    let bob = trader(&engine, "bob").await;
    let exchange = exchange(&engine);
    assert_eq!(desk.balance(alice.id()).await.unwrap(), Msat::ZERO);

    // Alice pays her own deposit: her balance grows by exactly its amount; her
    // wallet pays it and the hub's fee; the exchange's node receives it all.
    let amount = Msat::from_sat(50_000);
    let issued = desk.deposit(alice.id(), amount).await.unwrap();
    let (wallet, held) = (
        spendable(&engine, &alice.node).await,
        spendable(&engine, &exchange).await,
    );
    let payment = engine
        .simnet
        .pay(PayRequest::new(&alice.node, &issued.bolt11, None))
        .await
        .unwrap();
    assert_eq!(payment.amount, amount);
    assert_eq!(desk.balance(alice.id()).await.unwrap(), amount);
    assert_eq!(
        spendable(&engine, &alice.node).await,
        Msat(wallet.0 - amount.0 - payment.fee.0)
    );
    assert_eq!(spendable(&engine, &exchange).await, Msat(held.0 + amount.0));
    let deposits = desk.deposits(alice.id()).await.unwrap();
    assert_eq!(deposits.len(), 1);
    assert_eq!(deposits[0].payment_hash, issued.payment_hash);
    assert_eq!(deposits[0].amount, amount);
    assert!(deposits[0].settled_at_ms.is_some(), "{deposits:?}");
    assert_eq!(deposits[0].expired_at_ms, None);

    // Bob pays a deposit of Alice's: it credits Alice, not Bob.
    let gift = Msat::from_sat(20_000);
    let issued = desk.deposit(alice.id(), gift).await.unwrap();
    engine
        .simnet
        .pay(PayRequest::new(&bob.node, &issued.bolt11, None))
        .await
        .unwrap();
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat::from_sat(70_000)
    );
    assert_eq!(desk.balance(bob.id()).await.unwrap(), Msat::ZERO);
    assert!(desk.deposits(bob.id()).await.unwrap().is_empty());

    // Paid again, it is refused and Alice's wallet keeps its sats.
    let wallet = spendable(&engine, &alice.node).await;
    let again = engine
        .simnet
        .pay(PayRequest::new(&alice.node, &issued.bolt11, None))
        .await;
    assert!(matches!(again, Err(Error::AlreadyPaid)), "{again:?}");
    assert_eq!(spendable(&engine, &alice.node).await, wallet);
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat::from_sat(70_000)
    );

    // Alice and Bob pay one deposit at the same moment: it is credited once;
    // the loser is refused and its wallet is unchanged.
    let amount = Msat::from_sat(30_000);
    let issued = desk.deposit(alice.id(), amount).await.unwrap();
    let payers = [alice.node.clone(), bob.node.clone()];
    let mut wallets = Vec::new();
    for payer in &payers {
        wallets.push(spendable(&engine, payer).await);
    }
    let tasks: Vec<_> = payers
        .iter()
        .map(|payer| {
            let (simnet, request) = (
                engine.simnet.clone(),
                PayRequest::new(payer, &issued.bolt11, None),
            );
            tokio::spawn(async move { simnet.pay(request).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    for ((payer, wallet), outcome) in payers.iter().zip(&wallets).zip(&outcomes) {
        let now = spendable(&engine, payer).await;
        match outcome {
            Ok(payment) => assert_eq!(now, Msat(wallet.0 - amount.0 - payment.fee.0)),
            Err(err) => {
                assert!(matches!(err, Error::AlreadyPaid), "{err:?}");
                assert_eq!(now, *wallet, "the loser's wallet is unchanged");
            }
        }
    }
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat::from_sat(100_000)
    );
    let deposits = desk.deposits(alice.id()).await.unwrap();
    assert_eq!(deposits.len(), 3);
    assert!(deposits.iter().all(|d| d.settled_at_ms.is_some()));
    let books = desk.audit().await.unwrap();
    assert_eq!(books.received, Msat::from_sat(100_000));
    assert_eq!(books.balances, Msat::from_sat(100_000));
    assert_books(&engine).await;
}

async fn an_exchange_invoice_that_is_no_deposit_is_refused_and_nothing_moves(engine: Engine) {
    let alice = trader(&engine, "alice").await;
    let exchange = exchange(&engine);
    deposit(&engine, &alice, Msat::from_sat(10_000)).await;
    let books = engine.desk.audit().await.unwrap();
    let (wallet, held) = (
        spendable(&engine, &alice.node).await,
        spendable(&engine, &exchange).await,
    );

    // An invoice of the exchange's node the desk never booked, with an amount
    // and without: the exchange takes no money it cannot book.
    let fixed = engine
        .simnet
        .create_invoice(&exchange, Some(Msat::from_sat(10_000)), "a gift")
        .await
        .unwrap();
    let open = engine
        .simnet
        .create_invoice(&exchange, None, "")
        .await
        .unwrap();
    for (issued, amount) in [(&fixed, None), (&open, Some(Msat::from_sat(5_000)))] {
        for _ in 0..2 {
            let outcome = engine
                .simnet
                .pay(PayRequest::new(&alice.node, &issued.bolt11, amount))
                .await;
            assert!(
                matches!(&outcome, Err(err) if err.is_refusal()),
                "{outcome:?}"
            );
            assert!(!settled(&engine, &issued.payment_hash).await);
        }
    }
    assert_eq!(spendable(&engine, &alice.node).await, wallet);
    assert_eq!(spendable(&engine, &exchange).await, held);
    assert_eq!(engine.desk.audit().await.unwrap(), books);
    assert_eq!(
        engine.desk.balance(alice.id()).await.unwrap(),
        Msat::from_sat(10_000)
    );
    assert_books(&engine).await;
}

async fn a_deposit_is_a_whole_number_of_sats_from_100_to_a_million(engine: Engine) {
    let alice = account(&engine, "alice").await;
    let deposits = "SELECT COUNT(*) AS n FROM desk_deposits";
    let invoices = "SELECT COUNT(*) AS n FROM invoices";
    let before = (
        count(&engine, deposits, None).await,
        count(&engine, invoices, None).await,
    );
    for amount in [
        Msat::from_sat(99),
        Msat(99_999),
        Msat::from_sat(1_000_001),
        Msat(150_500),
        Msat(100_001),
        Msat::ZERO,
        Msat::from_sat(-100),
        engine::MAX_MONEY,
    ] {
        assert_invalid(engine.desk.deposit(alice.id(), amount).await, "amount");
    }
    assert_eq!(
        (
            count(&engine, deposits, None).await,
            count(&engine, invoices, None).await
        ),
        before,
        "a refused deposit writes nothing"
    );
    // The bounds themselves are fine.
    for amount in [Msat::from_sat(100), Msat::from_sat(1_000_000)] {
        let issued = engine.desk.deposit(alice.id(), amount).await.unwrap();
        assert!(issued.bolt11.starts_with("lnbcrt"), "{}", issued.bolt11);
    }
    assert_eq!(count(&engine, deposits, None).await, before.0 + 2);
    let listed = engine.desk.deposits(alice.id()).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|d| d.settled_at_ms.is_none()));
    assert_eq!(engine.desk.balance(alice.id()).await.unwrap(), Msat::ZERO);
    assert_books(&engine).await;
}

async fn alice_withdraws_to_her_wallet_and_every_unfit_invoice_is_refused(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice").await;
    deposit(&engine, &alice, Msat::from_sat(200_000)).await;
    // To her wallet's invoice: debited the amount and its routing fee (the
    // trader pays it), her wallet receives exactly the amount.
    let amount = Msat::from_sat(50_000);
    let invoice = engine
        .simnet
        .create_invoice(&alice.node, Some(amount), "")
        .await
        .unwrap();
    let wallet = spendable(&engine, &alice.node).await;
    let withdrawal = desk
        .withdraw(alice.id(), amount, &invoice.bolt11)
        .await
        .unwrap();
    assert_eq!(withdrawal.amount, amount);
    assert_eq!(withdrawal.payment_hash, invoice.payment_hash);
    assert_eq!(withdrawal.preimage, invoice.preimage);
    let fee = desk.withdrawals(alice.id()).await.unwrap()[0].fee;
    let left = Msat(Msat::from_sat(150_000).0 - fee.0);
    assert_eq!(desk.balance(alice.id()).await.unwrap(), left);
    assert_eq!(
        spendable(&engine, &alice.node).await,
        Msat(wallet.0 + amount.0)
    );
    assert!(settled(&engine, &invoice.payment_hash).await);
    let rows = desk.withdrawals(alice.id()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, withdrawal.id);
    assert_eq!(rows[0].state, "paid");
    assert_eq!(rows[0].amount, amount);
    assert_eq!(rows[0].fail_reason, None);
    assert!(rows[0].finished_at_ms.is_some());
    assert!(rows[0].fee > Msat::ZERO, "the hub charges a fee: {rows:?}");
    let books = desk.audit().await.unwrap();
    assert_eq!(books.withdrawn, Msat(amount.0 + fee.0));

    let unchanged = move |engine: Engine, id: String| async move {
        assert_eq!(engine.desk.balance(&id).await.unwrap(), left);
        assert_eq!(engine.desk.withdrawals(&id).await.unwrap().len(), 1);
    };

    // The amount must be the invoice's.
    let ten = engine
        .simnet
        .create_invoice(&alice.node, Some(Msat::from_sat(10_000)), "")
        .await
        .unwrap();
    assert_invalid(
        desk.withdraw(alice.id(), Msat::from_sat(20_000), &ten.bolt11)
            .await,
        "amount",
    );
    assert!(!settled(&engine, &ten.payment_hash).await);
    unchanged(engine.clone(), alice.id().to_string()).await;

    // Another network's invoice (BOLT11's mainnet example).
    let mainnet = "lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq9qrsgq357wnc5r2ueh7ck6q93dj32dlqnls087fxdwk8qakdyafkq3yap9us6v52vjjsrvywa6rt52cm9r9zqt8r2t7mlcwspyetp5h2tztugp9lfyql";
    assert_invalid(
        desk.withdraw(alice.id(), Msat::from_sat(10_000), mainnet)
            .await,
        "invoice",
    );
    assert_invalid(
        desk.withdraw(alice.id(), Msat::from_sat(10_000), "not an invoice")
            .await,
        "invoice",
    );
    // The exchange's own invoices: a deposit, and one it never booked.
    let own = desk
        .deposit(alice.id(), Msat::from_sat(10_000))
        .await
        .unwrap();
    assert_invalid(
        desk.withdraw(alice.id(), Msat::from_sat(10_000), &own.bolt11)
            .await,
        "invoice",
    );
    let unbooked = engine
        .simnet
        .create_invoice(&exchange(&engine), None, "")
        .await
        .unwrap();
    assert_invalid(
        desk.withdraw(alice.id(), Msat::from_sat(10_000), &unbooked.bolt11)
            .await,
        "invoice",
    );
    // Below the smallest withdrawal.
    let small = Msat(desk.config().withdraw_min.0 - 1000);
    let tiny = engine
        .simnet
        .create_invoice(&alice.node, Some(small), "")
        .await
        .unwrap();
    assert_invalid(
        desk.withdraw(alice.id(), small, &tiny.bolt11).await,
        "amount",
    );
    // More than the balance.
    let big = engine
        .simnet
        .create_invoice(&alice.node, Some(Msat::from_sat(150_001)), "")
        .await
        .unwrap();
    let outcome = desk
        .withdraw(alice.id(), Msat::from_sat(150_001), &big.bolt11)
        .await;
    assert!(
        matches!(outcome, Err(Error::InsufficientFunds)),
        "{outcome:?}"
    );
    assert!(!settled(&engine, &big.payment_hash).await);
    unchanged(engine.clone(), alice.id().to_string()).await;
    assert_eq!(desk.audit().await.unwrap(), books);

    // An amountless invoice is paid the amount asked.
    let open = engine
        .simnet
        .create_invoice(&alice.node, None, "")
        .await
        .unwrap();
    let wallet = spendable(&engine, &alice.node).await;
    let amount = Msat::from_sat(12_345);
    desk.withdraw(alice.id(), amount, &open.bolt11)
        .await
        .unwrap();
    let rows = desk.withdrawals(alice.id()).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.state == "paid"), "{rows:?}");
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat(left.0 - amount.0 - rows[0].fee.0)
    );
    assert_eq!(
        spendable(&engine, &alice.node).await,
        Msat(wallet.0 + amount.0)
    );
    assert_books(&engine).await;
}

async fn eight_concurrent_withdrawals_take_only_what_the_balance_holds(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice").await;
    deposit(&engine, &alice, Msat::from_sat(50_000)).await;
    let wallet = spendable(&engine, &alice.node).await;

    // 8 withdrawals of 20,000 sat against 50,000: two fit.
    let amount = Msat::from_sat(20_000);
    let mut invoices = Vec::new();
    for _ in 0..8 {
        invoices.push(
            engine
                .simnet
                .create_invoice(&alice.node, Some(amount), "")
                .await
                .unwrap(),
        );
    }
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (desk, id, watching) = (desk.clone(), alice.id().to_string(), watching.clone());
        tokio::spawn(async move {
            let mut seen = 0;
            while watching.load(Ordering::Relaxed) {
                let balance = desk.balance(&id).await.unwrap();
                assert!(balance >= Msat::ZERO, "{balance:?}");
                let books = desk.audit().await.unwrap();
                assert!(books.balanced(), "mid-race: {books:?}");
                seen += 1;
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    let tasks: Vec<_> = invoices
        .iter()
        .map(|invoice| {
            let (desk, id, bolt11) = (desk.clone(), alice.id().to_string(), invoice.bolt11.clone());
            tokio::spawn(async move { desk.withdraw(&id, amount, &bolt11).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    watching.store(false, Ordering::Relaxed);
    assert!(watcher.await.unwrap() > 0);

    let paid = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(paid, 2, "{outcomes:?}");
    for outcome in &outcomes {
        if let Err(err) = outcome {
            assert!(matches!(err, Error::InsufficientFunds), "{err:?}");
        }
    }
    let mut settled_count = 0;
    for invoice in &invoices {
        settled_count += usize::from(settled(&engine, &invoice.payment_hash).await);
    }
    assert_eq!(settled_count, 2);
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat(Msat::from_sat(10_000).0 - fees_paid(&engine, &alice).await.0)
    );
    assert_eq!(
        spendable(&engine, &alice.node).await,
        Msat(wallet.0 + 2 * amount.0)
    );
    let rows = desk.withdrawals(alice.id()).await.unwrap();
    assert_eq!(rows.len(), 2, "a refused debit leaves no row: {rows:?}");
    assert!(rows.iter().all(|r| r.state == "paid"));
    assert_books(&engine).await;
}

async fn a_withdrawal_that_cannot_be_paid_is_refunded_exactly_once(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice").await;
    // Carol's node has no channel: nothing can reach it.
    let carol = account(&engine, "carol").await;
    deposit(&engine, &alice, Msat::from_sat(100_000)).await;
    let held = spendable(&engine, &exchange(&engine)).await;

    let amount = Msat::from_sat(30_000);
    let invoice = engine
        .simnet
        .create_invoice(&carol.node, Some(amount), "")
        .await
        .unwrap();
    let outcome = desk.withdraw(alice.id(), amount, &invoice.bolt11).await;
    assert!(matches!(outcome, Err(Error::NoRoute)), "{outcome:?}");
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat::from_sat(100_000)
    );
    assert!(!settled(&engine, &invoice.payment_hash).await);
    assert_eq!(spendable(&engine, &exchange(&engine)).await, held);
    let rows = desk.withdrawals(alice.id()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, "failed");
    assert_eq!(rows[0].amount, amount);
    assert_eq!(rows[0].fee, Msat::ZERO);
    let reason = rows[0].fail_reason.clone().unwrap_or_default();
    assert!(reason.contains("no route"), "{reason:?}");
    assert!(rows[0].finished_at_ms.is_some());
    let books = desk.audit().await.unwrap();
    assert_eq!(books.withdrawn, Msat::ZERO);
    assert_eq!(books.balances, Msat::from_sat(100_000));

    // The sweep finds nothing left to end or refund.
    assert_eq!(desk.sweep_pending().await.unwrap(), 0);
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat::from_sat(100_000)
    );
    assert_eq!(desk.audit().await.unwrap(), books);
    // Paying the same invoice again fails the same way, refunded once more
    // for its own debit only.
    let outcome = desk.withdraw(alice.id(), amount, &invoice.bolt11).await;
    assert!(matches!(outcome, Err(Error::NoRoute)), "{outcome:?}");
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat::from_sat(100_000)
    );
    assert_eq!(desk.withdrawals(alice.id()).await.unwrap().len(), 2);
    assert_books(&engine).await;
}

/// Books a withdrawal of `amount` pending since `created_at` as the desk's
/// debit does (balance taken and row made in one transaction), for a pending
/// state no honest call leaves behind for long: the desk's own withdrawals are
/// paid or failed before they answer, so only a crash between the debit and
/// the payment's outcome leaves one, and `Desk` has no way to make one old.
async fn book_pending_withdrawal(
    engine: &Engine,
    trader: &Trader,
    payment_hash: &str,
    amount: Msat,
    created_at: i64,
) -> String {
    let id = uuid_like();
    let (row, user, hash) = (
        id.clone(),
        trader.id().to_string(),
        payment_hash.to_string(),
    );
    engine
        .db
        .write(move |conn| {
            Box::pin(async move {
                let taken = sqlx::query(
                    "UPDATE desk_balances SET balance_msat = balance_msat - $1 \
                     WHERE user_id = $2 AND balance_msat >= $1",
                )
                .bind(amount.0)
                .bind(&user)
                .execute(&mut *conn)
                .await?;
                assert_eq!(taken.rows_affected(), 1);
                sqlx::query(
                    "INSERT INTO desk_withdrawals (id, user_id, via, payment_hash, amount_msat, \
                     state, created_at) VALUES ($1, $2, 'invoice', $3, $4, 'pending', $5)",
                )
                .bind(&row)
                .bind(&user)
                .bind(&hash)
                .bind(amount.0)
                .bind(created_at)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
        .unwrap();
    id
}

fn uuid_like() -> String {
    let hex = engine::random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

async fn the_sweep_ends_a_stale_withdrawal_and_refunds_it_once(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice").await;
    deposit(&engine, &alice, Msat::from_sat(100_000)).await;
    let (stale_amount, fresh_amount) = (Msat::from_sat(40_000), Msat::from_sat(5_000));
    let stale_invoice = engine
        .simnet
        .create_invoice(&alice.node, Some(stale_amount), "")
        .await
        .unwrap();
    let fresh_invoice = engine
        .simnet
        .create_invoice(&alice.node, Some(fresh_amount), "")
        .await
        .unwrap();
    let grace = desk.config().pending_grace.as_millis() as i64;
    let now = engine::now_ms();
    let stale = book_pending_withdrawal(
        &engine,
        &alice,
        &stale_invoice.payment_hash,
        stale_amount,
        now - grace - 60_000,
    )
    .await;
    // Pending for less than the grace: its payment may still be under way.
    let fresh = book_pending_withdrawal(
        &engine,
        &alice,
        &fresh_invoice.payment_hash,
        fresh_amount,
        now,
    )
    .await;
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat::from_sat(55_000)
    );
    assert_books(&engine).await;

    assert_eq!(desk.sweep_pending().await.unwrap(), 1);
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat::from_sat(95_000)
    );
    let rows = desk.withdrawals(alice.id()).await.unwrap();
    let row = |id: &str| rows.iter().find(|r| r.id == id).unwrap().clone();
    assert_eq!(row(&stale).state, "failed");
    assert_eq!(
        row(&stale).fail_reason.as_deref(),
        Some("the payment did not complete")
    );
    assert!(row(&stale).finished_at_ms.is_some());
    assert_eq!(row(&fresh).state, "pending");
    assert_books(&engine).await;

    // Once ended, it is never refunded again.
    assert_eq!(desk.sweep_pending().await.unwrap(), 0);
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat::from_sat(95_000)
    );
    // A second server sweeping at the same time changes nothing either.
    let other = second_server(&engine, DeskConfig::default()).await;
    let (a, b) = tokio::join!(desk.sweep_pending(), other.desk.sweep_pending());
    assert_eq!((a.unwrap(), b.unwrap()), (0, 0));
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat::from_sat(95_000)
    );
    assert!(!settled(&engine, &stale_invoice.payment_hash).await);
    let books = desk.audit().await.unwrap();
    assert_eq!(books.withdrawn, fresh_amount);
    assert_books(&engine).await;
}

async fn a_withdrawal_the_sweep_ended_is_never_paid_as_well(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice").await;
    deposit(&engine, &alice, Msat::from_sat(100_000)).await;
    // A second server whose sweep ends any pending withdrawal at once, as if
    // the first's payments were stuck past the grace period.
    let hasty = second_server(
        &engine,
        DeskConfig {
            pending_grace: Duration::ZERO,
            ..DeskConfig::default()
        },
    )
    .await;
    let amount = Msat::from_sat(1_000);

    if engine.db.backend() == Backend::Postgres {
        // Deterministically: the payment waits on a lock of its invoice's row
        // (after the debit committed) while the sweep ends the withdrawal; let
        // go, the payment's claim finds it ended and the payment is refused.
        let invoice = engine
            .simnet
            .create_invoice(&alice.node, Some(amount), "")
            .await
            .unwrap();
        let (balance, wallet) = (
            desk.balance(alice.id()).await.unwrap(),
            spendable(&engine, &alice.node).await,
        );
        let mut lock = engine.db.pool().begin().await.unwrap();
        sqlx::query("SELECT payment_hash FROM invoices WHERE payment_hash = $1 FOR UPDATE")
            .bind(&invoice.payment_hash)
            .fetch_one(&mut *lock)
            .await
            .unwrap();
        let withdrawal = {
            let (desk, id, bolt11) = (desk.clone(), alice.id().to_string(), invoice.bolt11.clone());
            tokio::spawn(async move { desk.withdraw(&id, amount, &bolt11).await })
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            let rows = desk.withdrawals(alice.id()).await.unwrap();
            if rows.iter().any(|r| r.payment_hash == invoice.payment_hash) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no debit seen");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(hasty.desk.sweep_pending().await.unwrap(), 1);
        assert_eq!(desk.balance(alice.id()).await.unwrap(), balance);
        lock.rollback().await.unwrap();
        let outcome = withdrawal.await.unwrap();
        assert_invalid(outcome, "invoice");
        assert!(!settled(&engine, &invoice.payment_hash).await);
        assert_eq!(desk.balance(alice.id()).await.unwrap(), balance);
        assert_eq!(spendable(&engine, &alice.node).await, wallet);
        let rows = desk.withdrawals(alice.id()).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, "failed");
        assert_eq!(
            rows[0].fail_reason.as_deref(),
            Some("the payment did not complete")
        );
        assert_eq!(hasty.desk.sweep_pending().await.unwrap(), 0);
        assert_books(&engine).await;
    }

    // On both databases: the hasty sweep runs flat out while Alice withdraws
    // again and again. Whichever ends a withdrawal first, the payment or the
    // sweep, it ends once: paid and debited, or unpaid and refunded.
    let start = desk.balance(alice.id()).await.unwrap();
    let wallet = spendable(&engine, &alice.node).await;
    let sweeping = Arc::new(AtomicBool::new(true));
    let sweeper = {
        let (desk, sweeping) = (hasty.desk.clone(), sweeping.clone());
        tokio::spawn(async move {
            let mut ended = 0;
            while sweeping.load(Ordering::Relaxed) {
                ended += desk.sweep_pending().await.unwrap();
                tokio::task::yield_now().await;
            }
            ended
        })
    };
    let (mut paid, mut swept) = (0i64, 0);
    for _ in 0..30 {
        let invoice = engine
            .simnet
            .create_invoice(&alice.node, Some(amount), "")
            .await
            .unwrap();
        let before = desk.balance(alice.id()).await.unwrap();
        let outcome = desk.withdraw(alice.id(), amount, &invoice.bolt11).await;
        let rows = desk.withdrawals(alice.id()).await.unwrap();
        let row = rows
            .iter()
            .find(|r| r.payment_hash == invoice.payment_hash)
            .unwrap();
        match outcome {
            Ok(_) => {
                paid += 1;
                assert_eq!(row.state, "paid");
                assert!(settled(&engine, &invoice.payment_hash).await);
                assert_eq!(
                    desk.balance(alice.id()).await.unwrap(),
                    Msat(before.0 - amount.0 - row.fee.0)
                );
            }
            Err(Error::Invalid {
                field: "invoice", ..
            }) => {
                swept += 1;
                assert_eq!(row.state, "failed");
                assert!(!settled(&engine, &invoice.payment_hash).await);
                assert_eq!(desk.balance(alice.id()).await.unwrap(), before);
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    sweeping.store(false, Ordering::Relaxed);
    let ended = sweeper.await.unwrap();
    assert_eq!(ended, swept, "the sweep refunded exactly the unpaid ones");
    eprintln!("{paid} paid, {swept} ended by the sweep first");
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat(start.0 - paid * amount.0 - fees_paid(&engine, &alice).await.0)
    );
    assert_eq!(
        spendable(&engine, &alice.node).await,
        Msat(wallet.0 + paid * amount.0)
    );
    let pending = "SELECT COUNT(*) AS n FROM desk_withdrawals WHERE state = 'pending'";
    assert_eq!(count(&engine, pending, None).await, 0);
    assert_books(&engine).await;
}

async fn an_lnurl_withdraw_link_pays_once_even_answered_twice_at_once(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice").await;
    deposit(&engine, &alice, Msat::from_sat(100_000)).await;
    let amount = Msat::from_sat(25_000);

    let lnurl = desk
        .withdraw_link(&alice.user, amount, MadeWith::Account)
        .await
        .unwrap();
    assert_eq!(lnurl, lnurl.to_uppercase());
    assert!(lnurl.starts_with("LNURL1"), "{lnurl}");
    let url = engine::lnurl::decode(&lnurl).unwrap();
    assert!(
        url.starts_with(&format!("{}/lnm/lnurl/w/r?", desk.config().public_url)),
        "{url}"
    );
    let params = query_of(&url);
    let (n, signature) = (params["n"].clone(), params["signature"].clone());
    let expiry: i64 = params["expiry"].parse().unwrap();
    assert!(expiry * 1000 > engine::now_ms());
    // Making the link takes nothing yet.
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat::from_sat(100_000)
    );

    let request = desk.withdraw_request(&signature, &n, expiry).await.unwrap();
    assert_eq!(request.k1, n);
    assert_eq!(request.amount, amount);
    assert!(request.callback.ends_with("/lnm/lnurl/w"), "{request:?}");
    // Tampered: the signature, the link it names, its expiry.
    assert_invalid(
        desk.withdraw_request(&tampered(&signature), &n, expiry)
            .await,
        "signature",
    );
    assert_invalid(
        desk.withdraw_request(&signature, &engine::random_hex(32), expiry)
            .await,
        "signature",
    );
    assert_invalid(
        desk.withdraw_request(&signature, &n, expiry + 3600).await,
        "signature",
    );

    // A link past its expiry, signed by this server all the same.
    let brief = second_server(
        &engine,
        DeskConfig {
            link_expiry: Duration::ZERO,
            ..DeskConfig::default()
        },
    )
    .await;
    let expired = engine::lnurl::decode(
        &brief
            .desk
            .withdraw_link(&alice.user, amount, MadeWith::Account)
            .await
            .unwrap(),
    )
    .unwrap();
    let old = query_of(&expired);
    let old_expiry: i64 = old["expiry"].parse().unwrap();
    assert_invalid(
        desk.withdraw_request(&old["signature"], &old["n"], old_expiry)
            .await,
        "expiry",
    );
    let late = engine
        .simnet
        .create_invoice(&alice.node, None, "")
        .await
        .unwrap();
    assert_invalid(desk.withdraw_by_link(&old["n"], &late.bolt11).await, "k1");
    assert!(!settled(&engine, &late.payment_hash).await);

    // An invoice of another amount is refused, and the link still works.
    let wrong = engine
        .simnet
        .create_invoice(&alice.node, Some(Msat::from_sat(24_000)), "")
        .await
        .unwrap();
    assert_invalid(desk.withdraw_by_link(&n, &wrong.bolt11).await, "amount");
    assert_invalid(desk.withdraw_by_link("12ab", &wrong.bolt11).await, "k1");
    assert_invalid(
        desk.withdraw_by_link(&engine::random_hex(32), &wrong.bolt11)
            .await,
        "k1",
    );
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat::from_sat(100_000)
    );

    // The wallet answers twice at once, with two invoices: one is paid.
    let wallet = spendable(&engine, &alice.node).await;
    let invoices = [
        engine
            .simnet
            .create_invoice(&alice.node, Some(amount), "")
            .await
            .unwrap(),
        engine
            .simnet
            .create_invoice(&alice.node, None, "")
            .await
            .unwrap(),
    ];
    let tasks: Vec<_> = invoices
        .iter()
        .map(|invoice| {
            let (desk, k1, pr) = (desk.clone(), n.clone(), invoice.bolt11.clone());
            tokio::spawn(async move { desk.withdraw_by_link(&k1, &pr).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let (withdrawal, refused) = exactly_one_ok(outcomes);
    assert_eq!(withdrawal.amount, amount);
    for outcome in refused {
        assert_invalid(outcome, "k1");
    }
    let mut paid = 0;
    for invoice in &invoices {
        paid += usize::from(settled(&engine, &invoice.payment_hash).await);
    }
    assert_eq!(paid, 1);
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat(Msat::from_sat(75_000).0 - fees_paid(&engine, &alice).await.0)
    );
    assert_eq!(
        spendable(&engine, &alice.node).await,
        Msat(wallet.0 + amount.0)
    );

    // Used up: neither the request nor another answer works.
    assert_invalid(desk.withdraw_request(&signature, &n, expiry).await, "n");
    let again = engine
        .simnet
        .create_invoice(&alice.node, None, "")
        .await
        .unwrap();
    assert_invalid(desk.withdraw_by_link(&n, &again.bolt11).await, "k1");
    let rows = desk.withdrawals(alice.id()).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].state, "paid");
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat(Msat::from_sat(75_000).0 - rows[0].fee.0)
    );

    // No link for more than the balance.
    let outcome = desk
        .withdraw_link(&alice.user, Msat::from_sat(75_001), MadeWith::Account)
        .await;
    assert!(
        matches!(outcome, Err(Error::InsufficientFunds)),
        "{outcome:?}"
    );
    assert_books(&engine).await;
}

async fn an_account_paid_by_invoice_opens_once(engine: Engine) {
    let desk = &engine.desk;
    let payer = trader(&engine, "payer").await;
    let price = desk.config().account_price;

    // Unpaid, it opens nothing.
    let issued = desk.account_invoice().await.unwrap();
    let users_before = users(&engine).await;
    assert_invalid(
        desk.register_paid(&issued.payment_hash, "early", PASSWORD, "client-1")
            .await,
        "paymentHash",
    );
    assert_eq!(users(&engine).await, users_before);

    engine
        .simnet
        .pay(PayRequest::new(&payer.node, &issued.bolt11, None))
        .await
        .unwrap();
    let books = desk.audit().await.unwrap();
    assert_eq!(books.unclaimed, price);
    assert!(books.balanced(), "{books:?}");

    let newtrader = desk
        .register_paid(&issued.payment_hash, "newtrader", PASSWORD, "client-2")
        .await
        .unwrap();
    assert_eq!(newtrader.username, "newtrader");
    assert_eq!(desk.balance(&newtrader.id.0).await.unwrap(), price);
    assert_eq!(users(&engine).await, users_before + 1);
    let books = desk.audit().await.unwrap();
    assert_eq!(books.unclaimed, Msat::ZERO);
    assert_eq!(books.balances, price);
    engine
        .accounts
        .login("newtrader", PASSWORD, None, &Seen::at("client-2"))
        .await
        .unwrap();

    // Claimed once: not again, under another name, nor with the hash in capitals.
    assert_invalid(
        desk.register_paid(&issued.payment_hash, "othertrader", PASSWORD, "client-3")
            .await,
        "paymentHash",
    );
    assert_invalid(
        desk.register_paid(
            &issued.payment_hash.to_uppercase(),
            "othertrader",
            PASSWORD,
            "client-3",
        )
        .await,
        "paymentHash",
    );
    assert_eq!(users(&engine).await, users_before + 1);
    assert_eq!(desk.balance(&newtrader.id.0).await.unwrap(), price);
    // Not an account invoice at all: a deposit's, and nonsense.
    let deposit = desk
        .deposit(payer.id(), Msat::from_sat(1_000))
        .await
        .unwrap();
    engine
        .simnet
        .pay(PayRequest::new(&payer.node, &deposit.bolt11, None))
        .await
        .unwrap();
    assert_invalid(
        desk.register_paid(&deposit.payment_hash, "othertrader", PASSWORD, "client-3")
            .await,
        "paymentHash",
    );
    assert_invalid(
        desk.register_paid("00ff", "othertrader", PASSWORD, "client-3")
            .await,
        "paymentHash",
    );
    assert_eq!(users(&engine).await, users_before + 1);

    // Two sign-ups race for one paid invoice: one account exists.
    let issued = desk.account_invoice().await.unwrap();
    engine
        .simnet
        .pay(PayRequest::new(&payer.node, &issued.bolt11, None))
        .await
        .unwrap();
    let names = ["racer-one", "racer-two"];
    let tasks: Vec<_> = names
        .iter()
        .map(|name| {
            let (desk, hash, name) = (desk.clone(), issued.payment_hash.clone(), name.to_string());
            tokio::spawn(async move {
                let client = format!("client-of-{name}");
                desk.register_paid(&hash, &name, PASSWORD, &client).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let (winner, refused) = exactly_one_ok(outcomes);
    for outcome in refused {
        assert_invalid(outcome, "paymentHash");
    }
    assert_eq!(users(&engine).await, users_before + 2);
    for name in names {
        let exists = count(
            &engine,
            "SELECT COUNT(*) AS n FROM users WHERE username = $1",
            Some(name),
        )
        .await;
        assert_eq!(exists, i64::from(name == winner.username), "{name}");
    }
    assert_eq!(desk.balance(&winner.id.0).await.unwrap(), price);
    let books = desk.audit().await.unwrap();
    assert_eq!(books.unclaimed, Msat::ZERO);
    assert_eq!(books.balances, Msat(2 * price.0 + Msat::from_sat(1_000).0));
    assert_books(&engine).await;
}

async fn joule_signs_in_with_a_one_time_challenge(engine: Engine) {
    let desk = &engine.desk;
    let key = new_key();
    let linked = "SELECT COUNT(*) AS n FROM linking_keys WHERE pubkey = $1";

    let (message, expires) = desk.joule_challenge().await.unwrap();
    assert!(expires * 1000 > engine::now_ms());
    let signature = engine::signed_message::sign(&key, &message);
    let (user, pubkey) = desk
        .joule_login(&message, &signature, "satoshi", &Seen::at("client-joule-1"))
        .await
        .unwrap();
    assert_eq!(pubkey, key_hex(&key));
    assert_eq!(user.username, "satoshi");
    assert_eq!(user.account_type, "joule");

    // A captured login cannot be replayed.
    assert_invalid(
        desk.joule_login(&message, &signature, "satoshi", &Seen::at("client-joule-1"))
            .await,
        "message",
    );

    // A well-formed message this server never issued signs nobody in, and
    // makes no account for its key.
    let stranger = new_key();
    let users_before = users(&engine).await;
    let forged = format!("Sign in to Ampere: {}", engine::random_hex(16));
    let forged_signature = engine::signed_message::sign(&stranger, &forged);
    assert_invalid(
        desk.joule_login(
            &forged,
            &forged_signature,
            "stranger",
            &Seen::at("client-joule-2"),
        )
        .await,
        "message",
    );
    assert_eq!(users(&engine).await, users_before);
    assert_eq!(count(&engine, linked, Some(&key_hex(&stranger))).await, 0);
    // Nor does any other text, or a signature that is no signature.
    let other = "Please sign this";
    assert_invalid(
        desk.joule_login(
            other,
            &engine::signed_message::sign(&stranger, other),
            "stranger",
            &Seen::at("client-joule-2"),
        )
        .await,
        "message",
    );
    let (fresh, _) = desk.joule_challenge().await.unwrap();
    assert_invalid(
        desk.joule_login(
            &fresh,
            "not-a-signature",
            "stranger",
            &Seen::at("client-joule-2"),
        )
        .await,
        "signature",
    );
    assert_eq!(users(&engine).await, users_before);

    // Two logins with one challenge at once: one signs in.
    let (message, _) = desk.joule_challenge().await.unwrap();
    let signature = engine::signed_message::sign(&key, &message);
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (desk, message, signature) = (desk.clone(), message.clone(), signature.clone());
            tokio::spawn(async move {
                desk.joule_login(&message, &signature, "satoshi", &Seen::at("client-joule-1"))
                    .await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let ((again, _), refused) = exactly_one_ok(outcomes);
    assert_eq!(again.id, user.id, "one key, one account");
    for outcome in refused {
        assert_invalid(outcome, "message");
    }

    // Two new wallets answer one challenge at once: one signs in, and only
    // its account is made.
    let (message, _) = desk.joule_challenge().await.unwrap();
    let wallets = [new_key(), new_key()];
    let users_before = users(&engine).await;
    let tasks: Vec<_> = wallets
        .iter()
        .enumerate()
        .map(|(i, wallet)| {
            let (desk, message) = (desk.clone(), message.clone());
            let signature = engine::signed_message::sign(wallet, &message);
            tokio::spawn(async move {
                desk.joule_login(
                    &message,
                    &signature,
                    "",
                    &Seen::at(&format!("client-racer-{i}")),
                )
                .await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let ((racer, racer_key), refused) = exactly_one_ok(outcomes);
    for outcome in refused {
        assert_invalid(outcome, "message");
    }
    assert_eq!(users(&engine).await, users_before + 1);
    assert!(racer.username.starts_with("ln-"), "{racer:?}");
    for wallet in &wallets {
        let expected = i64::from(key_hex(wallet) == racer_key);
        assert_eq!(
            count(&engine, linked, Some(&key_hex(wallet))).await,
            expected
        );
    }

    // Another challenge, the same key: the same account.
    let (message, _) = desk.joule_challenge().await.unwrap();
    let (later, _) = desk
        .joule_login(
            &message,
            &engine::signed_message::sign(&key, &message),
            "renamed",
            &Seen::at("client-joule-1"),
        )
        .await
        .unwrap();
    assert_eq!(later.id, user.id);
    assert_eq!(later.username, "satoshi");
    assert_eq!(count(&engine, linked, Some(&key_hex(&key))).await, 1);
    assert_books(&engine).await;
}

async fn lnurl_auth_signs_the_waiting_browser_in_once(engine: Engine) {
    let desk = &engine.desk;
    let session = "browser-session-1";
    let (k1, lnurl) = desk.lnurl_auth_challenge(session).await.unwrap();
    assert_eq!(lnurl, lnurl.to_uppercase());
    let url = engine::lnurl::decode(&lnurl).unwrap();
    assert!(
        url.starts_with(&format!("{}/lnm/lnurl/a?", desk.config().public_url)),
        "{url}"
    );
    let params = query_of(&url);
    assert_eq!(params["tag"], "login");
    assert_eq!(params["k1"], k1);
    let (hmac, t) = (params["hmac"].clone(), params["t"].clone());
    let waiting = desk.lnurl_auth_state(&k1, session).await.unwrap();
    assert!(matches!(waiting, Some((false, _))), "{waiting:?}");
    assert!(desk.claim_lnurl_auth(&k1, session).await.unwrap().is_none());

    let wallet = new_key();
    let (sig, key) = lnurl_sign(&wallet, &k1);
    // A forged link, and a signature of something else: refused, and the
    // challenge still works.
    assert_invalid(
        desk.lnurl_auth_answer(&k1, &sig, &key, &tampered(&hmac), &t, &Seen::at("client-a"))
            .await,
        "hmac",
    );
    let later = (t.parse::<i64>().unwrap() + 3600).to_string();
    assert_invalid(
        desk.lnurl_auth_answer(&k1, &sig, &key, &hmac, &later, &Seen::at("client-a"))
            .await,
        "hmac",
    );
    let (other_sig, _) = lnurl_sign(&wallet, &engine::random_hex(32));
    assert_invalid(
        desk.lnurl_auth_answer(&k1, &other_sig, &key, &hmac, &t, &Seen::at("client-a"))
            .await,
        "sig",
    );
    let users_before = users(&engine).await;

    let user = desk
        .lnurl_auth_answer(&k1, &sig, &key, &hmac, &t, &Seen::at("client-a"))
        .await
        .unwrap();
    assert_eq!(user.account_type, "lnurl");
    assert_eq!(users(&engine).await, users_before + 1);

    // The browser that asked claims it, once; another session never does.
    assert!(desk
        .claim_lnurl_auth(&k1, "another-session")
        .await
        .unwrap()
        .is_none());
    let claimed = desk.claim_lnurl_auth(&k1, session).await.unwrap().unwrap();
    assert_eq!(claimed.id, user.id);
    assert!(desk.claim_lnurl_auth(&k1, session).await.unwrap().is_none());
    assert_eq!(desk.lnurl_auth_state(&k1, session).await.unwrap(), None);

    // The k1 is used: answered again, by the same wallet or another, it is
    // refused, and no account is made for the other.
    assert_invalid(
        desk.lnurl_auth_answer(&k1, &sig, &key, &hmac, &t, &Seen::at("client-a"))
            .await,
        "k1",
    );
    let intruder = new_key();
    let (intruder_sig, intruder_key) = lnurl_sign(&intruder, &k1);
    assert_invalid(
        desk.lnurl_auth_answer(
            &k1,
            &intruder_sig,
            &intruder_key,
            &hmac,
            &t,
            &Seen::at("client-b"),
        )
        .await,
        "k1",
    );
    assert_eq!(users(&engine).await, users_before + 1);
    assert_eq!(
        count(
            &engine,
            "SELECT COUNT(*) AS n FROM linking_keys WHERE pubkey = $1",
            Some(&intruder_key)
        )
        .await,
        0
    );

    // A new challenge, the same wallet: the same account.
    let (k1, lnurl) = desk
        .lnurl_auth_challenge("browser-session-2")
        .await
        .unwrap();
    let params = query_of(&engine::lnurl::decode(&lnurl).unwrap());
    let (sig, key) = lnurl_sign(&wallet, &k1);
    let again = desk
        .lnurl_auth_answer(
            &k1,
            &sig,
            &key.to_uppercase(),
            &params["hmac"],
            &params["t"],
            &Seen::at("client-a"),
        )
        .await
        .unwrap();
    assert_eq!(again.id, user.id);

    // An expired link, though signed by this server.
    let brief = second_server(
        &engine,
        DeskConfig {
            link_expiry: Duration::ZERO,
            ..DeskConfig::default()
        },
    )
    .await;
    let (k1, lnurl) = brief.desk.lnurl_auth_challenge(session).await.unwrap();
    let params = query_of(&engine::lnurl::decode(&lnurl).unwrap());
    let (sig, key) = lnurl_sign(&wallet, &k1);
    assert_invalid(
        desk.lnurl_auth_answer(
            &k1,
            &sig,
            &key,
            &params["hmac"],
            &params["t"],
            &Seen::at("client-a"),
        )
        .await,
        "t",
    );
    assert_eq!(users(&engine).await, users_before + 1);
    assert_books(&engine).await;
}

async fn scoped_tokens_work_until_revoked_or_voided_by_a_password_change(engine: Engine) {
    let tokens = &engine.desk.tokens;
    let alice = account(&engine, "alice").await.user;
    let bob = account(&engine, "bob").await.user;
    let scopes =
        |names: &[&str]| Scopes::parse(&names.iter().map(|n| n.to_string()).collect::<Vec<_>>());

    let token = tokens
        .create(&alice, scopes(&["user"]).unwrap(), 3600)
        .await
        .unwrap();
    let claims = tokens.verify(&token).await.unwrap();
    assert_eq!(claims.sub, alice.id.0);
    assert_eq!(claims.aud, vec!["user".to_string()]);
    assert_eq!(claims.exp - claims.iat, 3600);
    assert!(claims.scopes().contains(DeskScope::User));
    assert!(!claims.scopes().contains(DeskScope::Withdraw));
    engine
        .accounts
        .authenticate(&claims.sub, claims.ver)
        .await
        .unwrap();
    // Neither a tampered token nor an account's own token passes for one.
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert!(matches!(
        tokens.verify(&forged).await,
        Err(Error::Unauthenticated)
    ));
    let session = engine.tokens.issue(&alice).unwrap();
    assert!(matches!(
        tokens.verify(&session).await,
        Err(Error::Unauthenticated)
    ));

    // Scopes: known names, each once, at least one.
    let refused: [&[&str]; 4] = [&["admin"], &["user", "user"], &[], &["User"]];
    for names in refused {
        assert_invalid(scopes(names), "scopes");
    }
    let all = scopes(&["deposit", "withdraw", "positions", "user"]).unwrap();
    assert_eq!(
        all.names(),
        vec!["deposit", "withdraw", "positions", "user"]
    );
    // Lifetimes from a minute to a year.
    for expiry in [59, 31_536_001, 0, -60] {
        assert_invalid(tokens.create(&alice, all, expiry).await, "expiry");
    }
    for expiry in [60, 31_536_000] {
        tokens.create(&alice, all, expiry).await.unwrap();
    }
    let listed = tokens.list(&alice).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|t| !t.revoked));
    assert!(tokens.list(&bob).await.unwrap().is_empty());

    // Bob cannot revoke Alice's token; nonsense is no token id.
    let outcome = tokens.revoke(&bob, &claims.jti).await;
    assert!(matches!(outcome, Err(Error::NotFound(_))), "{outcome:?}");
    tokens.verify(&token).await.unwrap();
    let (long, not_hex) = (engine::random_hex(17), format!("{}zz", &claims.jti[..30]));
    for jti in ["xyz", long.as_str(), not_hex.as_str()] {
        assert_invalid(tokens.revoke(&alice, jti).await, "jti");
    }
    let outcome = tokens.revoke(&alice, &engine::random_hex(16)).await;
    assert!(matches!(outcome, Err(Error::NotFound(_))), "{outcome:?}");

    // Alice revokes it: it stops working at once (it was just verified, so
    // remembered as live), and shows as revoked; revoking again is fine.
    tokens.revoke(&alice, &claims.jti).await.unwrap();
    assert!(matches!(
        tokens.verify(&token).await,
        Err(Error::Unauthenticated)
    ));
    let listed = tokens.list(&alice).await.unwrap();
    let entry = listed.iter().find(|t| t.jti == claims.jti).unwrap();
    assert!(entry.revoked);
    assert_eq!(listed.iter().filter(|t| t.revoked).count(), 1);
    tokens
        .revoke(&alice, &claims.jti.to_uppercase())
        .await
        .unwrap();
    assert!(matches!(
        tokens.verify(&token).await,
        Err(Error::Unauthenticated)
    ));

    // A password change voids every token issued before it.
    let live = tokens
        .create(&alice, scopes(&["deposit", "withdraw"]).unwrap(), 600)
        .await
        .unwrap();
    let live_claims = tokens.verify(&live).await.unwrap();
    assert_eq!(live_claims.aud, vec!["deposit", "withdraw"]);
    let alice = engine
        .accounts
        .change_password(
            &alice,
            PASSWORD,
            "Another-horse-8",
            None,
            &Seen::at("client-of-alice"),
        )
        .await
        .unwrap();
    let listed = tokens.list(&alice).await.unwrap();
    assert_eq!(listed.len(), 4);
    assert!(listed.iter().all(|t| t.revoked), "{listed:?}");
    let outcome = engine
        .accounts
        .authenticate(&live_claims.sub, live_claims.ver)
        .await;
    assert!(
        matches!(outcome, Err(Error::Unauthenticated)),
        "{outcome:?}"
    );
    // A token issued after it works, and lists as live.
    let after = tokens.create(&alice, all, 600).await.unwrap();
    let after_claims = tokens.verify(&after).await.unwrap();
    engine
        .accounts
        .authenticate(&after_claims.sub, after_claims.ver)
        .await
        .unwrap();
    let listed = tokens.list(&alice).await.unwrap();
    assert_eq!(listed.iter().filter(|t| !t.revoked).count(), 1);
    assert_eq!(
        listed.iter().find(|t| !t.revoked).unwrap().jti,
        after_claims.jti
    );
    assert_books(&engine).await;
}

async fn a_withdraw_link_dies_with_the_credential_that_made_it(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice").await;
    deposit(&engine, &alice, Msat::from_sat(100_000)).await;
    let amount = Msat::from_sat(5_000);
    let k1_of = |lnurl: String| {
        let url = engine::lnurl::decode(&lnurl).unwrap();
        url.split("n=").nth(1).unwrap()[..64].to_string()
    };
    let invoice = |engine: Engine, node: String| async move {
        engine
            .simnet
            .create_invoice(&node, Some(Msat::from_sat(5_000)), "")
            .await
            .unwrap()
            .bolt11
    };

    // Made by a scoped token, then the token is revoked: the link is void.
    let token = desk
        .tokens
        .create(
            &alice.user,
            Scopes::parse(&["withdraw".into()]).unwrap(),
            3600,
        )
        .await
        .unwrap();
    let jti = desk.tokens.verify(&token).await.unwrap().jti;
    let by_token = k1_of(
        desk.withdraw_link(&alice.user, amount, MadeWith::DeskToken(&jti))
            .await
            .unwrap(),
    );
    desk.tokens.revoke(&alice.user, &jti).await.unwrap();
    let outcome = desk
        .withdraw_by_link(
            &by_token,
            &invoice(engine.clone(), alice.node.clone()).await,
        )
        .await;
    assert_invalid(outcome, "k1");

    // Made by an ACL token, then the token is revoked: void as well; and one
    // made by a token of an ACL that is then deleted.
    let acl = engine
        .acls
        .create(
            &alice.user,
            "withdrawals",
            &["POST /lnm/user/withdraw/lnurl".to_string()],
        )
        .await
        .unwrap();
    for revoke in [true, false] {
        let (made, _) = engine.acls.issue(&alice.user, &acl.id).await.unwrap();
        let by_acl = k1_of(
            desk.withdraw_link(&alice.user, amount, MadeWith::AclToken(&made.id))
                .await
                .unwrap(),
        );
        if revoke {
            engine
                .acls
                .revoke(&alice.user, &acl.id, &made.id)
                .await
                .unwrap();
        } else {
            engine.acls.delete(&alice.user, &acl.id).await.unwrap();
        }
        let outcome = desk
            .withdraw_by_link(&by_acl, &invoice(engine.clone(), alice.node.clone()).await)
            .await;
        assert_invalid(outcome, "k1");
    }

    // Made with the session, then the password changes: void too.
    let by_session = k1_of(
        desk.withdraw_link(&alice.user, amount, MadeWith::Account)
            .await
            .unwrap(),
    );
    engine
        .accounts
        .change_password(
            &alice.user,
            PASSWORD,
            "Other-horse-8",
            None,
            &Seen::at("client"),
        )
        .await
        .unwrap();
    let outcome = desk
        .withdraw_by_link(
            &by_session,
            &invoice(engine.clone(), alice.node.clone()).await,
        )
        .await;
    assert_invalid(outcome, "k1");
    assert_eq!(
        desk.balance(alice.id()).await.unwrap(),
        Msat::from_sat(100_000)
    );
    assert!(desk.withdrawals(alice.id()).await.unwrap().is_empty());

    // A link made under the new password still works.
    let user = engine.accounts.get(alice.id()).await.unwrap().unwrap();
    let fresh = k1_of(
        desk.withdraw_link(&user, amount, MadeWith::Account)
            .await
            .unwrap(),
    );
    desk.withdraw_by_link(&fresh, &invoice(engine.clone(), alice.node.clone()).await)
        .await
        .unwrap();
    assert_books(&engine).await;
}
