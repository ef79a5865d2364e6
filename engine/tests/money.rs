//! Money stays within bounds on both databases: the database itself refuses a
//! write that would overflow a balance, make it negative or pass 21 million BTC
//! (whatever statement tries it), and the network never mints past that, however
//! the faucet or demo funding is called, also concurrently.

use engine::simnet::{PayRequest, SimnetConfig, FAUCET_MAX};
use engine::{Engine, Error, Msat, Settings, MAX_MONEY};
use sqlx::Row;

testdb::on_both_databases!(
    open_engine;
    the_database_refuses_money_out_of_bounds_whatever_the_statement,
    the_faucet_gives_at_most_one_btc_a_call,
    the_network_never_mints_past_21_million_btc_even_in_a_race,
    demo_funding_stops_at_the_cap_too,
);

const PASSWORD: &str = "Correct-horse-7";

async fn open_engine(url: &str) -> Engine {
    Engine::open(url, Settings::default())
        .await
        .expect("engine opens")
}

async fn node_of(engine: &Engine, name: &str) -> String {
    let user = engine.register(name, PASSWORD, None, name).await.unwrap();
    engine.simnet.node_of_user(&user.id.0).await.unwrap().pubkey
}

async fn connect_to_hub(engine: &Engine, node: &str) {
    let simnet = &engine.simnet;
    let address = simnet.node(node).await.unwrap().address;
    simnet
        .faucet(&address, Msat::from_sat(2_000_000))
        .await
        .unwrap();
    simnet.mine(1).await.unwrap();
    let hub = simnet.hub().await.unwrap().pubkey;
    simnet
        .open_channel(node, &hub, Msat::from_sat(1_000_000))
        .await
        .unwrap();
    simnet.mine(6).await.unwrap();
}

/// Every money column of every table, in one comparable string.
async fn books(engine: &Engine) -> String {
    let mut all = Vec::new();
    for sql in [
        "SELECT pubkey AS k, onchain_msat AS a, 0 AS b, 0 AS c FROM nodes",
        "SELECT txid AS k, amount_msat AS a, 0 AS b, 0 AS c FROM chain_txs",
        "SELECT point AS k, capacity_msat AS a, opener_msat AS b, peer_msat AS c FROM channels",
        "SELECT payment_hash AS k, COALESCE(amount_msat, -1) AS a, COALESCE(received_msat, -1) AS b, 0 AS c FROM invoices",
        "SELECT payment_hash AS k, amount_msat AS a, fee_msat AS b, 0 AS c FROM payments",
        "SELECT 'supply' AS k, minted_msat AS a, 0 AS b, 0 AS c FROM money_supply",
    ] {
        let sql = format!("SELECT k, CAST(a AS BIGINT) AS a, CAST(b AS BIGINT) AS b, CAST(c AS BIGINT) AS c FROM ({sql}) t ORDER BY k");
        for row in sqlx::query(&sql)
            .fetch_all(engine.db.pool())
            .await
            .unwrap()
        {
            all.push(format!(
                "{} {} {} {}",
                row.get::<String, _>("k"),
                row.get::<i64, _>("a"),
                row.get::<i64, _>("b"),
                row.get::<i64, _>("c")
            ));
        }
    }
    all.join("\n")
}

async fn the_database_refuses_money_out_of_bounds_whatever_the_statement(engine: Engine) {
    let alice = node_of(&engine, "alice").await;
    let bob = node_of(&engine, "bob").await;
    connect_to_hub(&engine, &alice).await;
    connect_to_hub(&engine, &bob).await;
    let issued = engine
        .simnet
        .create_invoice(&bob, Some(Msat::from_sat(10_000)), "lunch")
        .await
        .unwrap();
    engine
        .simnet
        .pay(PayRequest {
            payer: alice.clone(),
            invoice: issued.bolt11,
            amount: None,
            fee_limit: None,
            within: None,
        })
        .await
        .unwrap();
    let before = books(&engine).await;

    // Each would overflow i64 (SQLite turns that into a REAL, PostgreSQL into an
    // error), pass 21 million BTC, or go negative.
    let near_overflow = "9223372036854775000";
    let past_cap = "2100000000000000001";
    let refused = [
        format!("UPDATE nodes SET onchain_msat = onchain_msat + {near_overflow}"),
        format!("UPDATE nodes SET onchain_msat = {past_cap}"),
        "UPDATE nodes SET onchain_msat = onchain_msat - 1 - onchain_msat".to_string(),
        format!(
            "INSERT INTO chain_txs (txid, node, amount_msat, kind, height, created_at) \
             VALUES ('minted', '{alice}', {past_cap}, 'faucet', NULL, 0)"
        ),
        format!("UPDATE chain_txs SET amount_msat = -{past_cap}"),
        format!(
            "UPDATE channels SET capacity_msat = capacity_msat + {near_overflow}, \
             opener_msat = opener_msat + {near_overflow}"
        ),
        format!(
            "UPDATE channels SET capacity_msat = {past_cap}, \
             opener_msat = {past_cap} - peer_msat"
        ),
        "UPDATE channels SET opener_msat = -1, peer_msat = capacity_msat + 1".to_string(),
        format!("UPDATE invoices SET amount_msat = {past_cap}"),
        "UPDATE invoices SET received_msat = 0 WHERE settled_at IS NOT NULL".to_string(),
        format!("UPDATE payments SET fee_msat = fee_msat + {near_overflow}"),
        format!("UPDATE payments SET amount_msat = {past_cap}"),
        "UPDATE payments SET fee_msat = -1".to_string(),
        format!("UPDATE money_supply SET minted_msat = minted_msat + {near_overflow}"),
        format!("UPDATE money_supply SET minted_msat = {past_cap}"),
        "INSERT INTO money_supply (id, minted_msat) VALUES (2, 0)".to_string(),
    ];
    for sql in &refused {
        let outcome = sqlx::query(sql).execute(engine.db.pool()).await;
        assert!(outcome.is_err(), "the database accepted: {sql}");
    }
    assert_eq!(
        books(&engine).await,
        before,
        "a refused write changed nothing"
    );

    // The bound itself is a balance the database accepts.
    let mut tx = engine.db.pool().begin().await.unwrap();
    sqlx::query("UPDATE nodes SET onchain_msat = $1 WHERE pubkey = $2")
        .bind(MAX_MONEY.0)
        .bind(&alice)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(engine.simnet.audit().await.unwrap().balanced());
}

async fn the_faucet_gives_at_most_one_btc_a_call(engine: Engine) {
    let simnet = &engine.simnet;
    let alice = node_of(&engine, "alice").await;
    let address = simnet.node(&alice).await.unwrap().address;
    assert_eq!(FAUCET_MAX, Msat::from_sat(100_000_000));
    for absurd in [
        Msat(FAUCET_MAX.0 + 1000),
        MAX_MONEY,
        Msat(i64::MAX),
        Msat::from_sat(i64::MAX),
    ] {
        match simnet.faucet(&address, absurd).await {
            Err(err @ Error::Invalid { .. }) => {
                assert_eq!(err.field(), Some("sats"));
                assert!(err.to_string().contains("100000000"), "{err}");
            }
            other => panic!("{absurd:?}: {other:?}"),
        }
    }
    simnet.faucet(&address, FAUCET_MAX).await.unwrap();
    simnet.mine(1).await.unwrap();
    assert_eq!(simnet.node(&alice).await.unwrap().onchain, FAUCET_MAX);
    let audit = simnet.audit().await.unwrap();
    assert!(audit.balanced(), "{audit:?}");
    assert_eq!(audit.supply, audit.minted);
}

/// Sets the network's count of minted coins to `left` short of the cap, as if
/// the faucet had been called that often.
async fn nearly_exhaust_the_supply(engine: &Engine, left: Msat) {
    sqlx::query("UPDATE money_supply SET minted_msat = $1")
        .bind(MAX_MONEY.0 - left.0)
        .execute(engine.db.pool())
        .await
        .unwrap();
}

async fn supply(engine: &Engine) -> Msat {
    engine.simnet.audit().await.unwrap().supply
}

async fn the_network_never_mints_past_21_million_btc_even_in_a_race(engine: Engine) {
    let simnet = &engine.simnet;
    let alice = node_of(&engine, "alice").await;
    let address = simnet.node(&alice).await.unwrap().address;
    nearly_exhaust_the_supply(&engine, Msat::from_sat(1_000_000)).await;

    let err = simnet
        .faucet(&address, Msat::from_sat(1_000_001))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("sats"));
    assert!(err.to_string().contains("21 million"), "{err}");

    // Ten calls of 200,000 sat race for the last 1,000,000: five get them.
    let calls = (0..10).map(|_| {
        let (simnet, address) = (simnet.clone(), address.clone());
        tokio::spawn(async move { simnet.faucet(&address, Msat::from_sat(200_000)).await })
    });
    let outcomes = futures_util::future::join_all(calls).await;
    let granted = outcomes
        .iter()
        .filter(|o| o.as_ref().unwrap().is_ok())
        .count();
    assert_eq!(granted, 5, "{outcomes:?}");
    assert_eq!(supply(&engine).await, MAX_MONEY);
    assert!(simnet.faucet(&address, Msat::from_sat(1)).await.is_err());
    simnet.mine(1).await.unwrap();
    assert_eq!(
        simnet.node(&alice).await.unwrap().onchain,
        Msat::from_sat(1_000_000)
    );
    assert_eq!(supply(&engine).await, MAX_MONEY);
}

async fn demo_funding_stops_at_the_cap_too(engine: Engine) {
    let demo = Engine::open(
        &engine.db.url(),
        Settings {
            simnet: SimnetConfig {
                demo: true,
                ..SimnetConfig::default()
            },
            ..Settings::default()
        },
    )
    .await
    .unwrap();
    let funds = demo.simnet.config().demo_funds;
    nearly_exhaust_the_supply(&demo, Msat(funds.0 - 1)).await;
    let before = supply(&demo).await;
    // The account is created; its funding is refused and nothing is minted.
    let erin = node_of(&demo, "erin").await;
    assert_eq!(demo.simnet.node(&erin).await.unwrap().onchain, Msat(0));
    assert!(demo.simnet.live_channels(&erin).await.unwrap().is_empty());
    assert_eq!(supply(&demo).await, before);
}
