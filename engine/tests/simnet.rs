//! The simulated network on both databases: nodes, chain, channels and payments,
//! the races a custodial wallet must survive, and conservation of funds.

use std::time::Duration;

use engine::simnet::{
    invoice, ClosedCursor, NodeKey, PayRequest, SimnetConfig, MAX_PENDING_PER_PEER, MIN_CAPACITY,
    RECENT_CLOSED,
};
use engine::{Engine, Error, Msat, Settings};

testdb::on_both_databases!(
    open_engine;
    every_account_gets_a_node_and_finds_the_hub_in_its_address_book,
    alice_opens_a_channel_to_the_hub_and_pays_bob_through_it,
    fifty_concurrent_payments_spend_one_balance_only_as_far_as_it_goes,
    one_invoice_paid_by_two_accounts_at_once_settles_once,
    refused_payments_change_nothing,
    channels_close_cooperatively_and_by_force,
    the_faucet_and_the_miner_refuse_nonsense,
    two_servers_on_one_database_never_overdraw,
    an_expired_invoice_is_refused,
    demo_mode_funds_and_connects_a_new_account,
    a_stranger_cannot_pad_a_channel_list,
    openings_raced_from_two_servers_stop_at_the_pending_limit,
    closed_channels_are_paged_most_recently_closed_first,
);

const PASSWORD: &str = "Correct-horse-7";
const CHANNEL: Msat = Msat::from_sat(1_000_000);

async fn open_engine(url: &str) -> Engine {
    Engine::open(url, test_settings())
        .await
        .expect("engine opens")
}

fn test_settings() -> Settings {
    Settings {
        simnet: SimnetConfig {
            force_close_delay: 4,
            ..SimnetConfig::default()
        },
        ..Settings::default()
    }
}

/// Signs `name` up and returns its node's pubkey.
async fn node_of(engine: &Engine, name: &str) -> String {
    // Each from its own address, so the sign-up limit per client stays out of it.
    let client = format!("client-of-{name}");
    let user = engine
        .register(name, PASSWORD, None, &client)
        .await
        .unwrap();
    engine.simnet.node_of_user(&user.id.0).await.unwrap().pubkey
}

/// Funds the node, opens a channel to the hub and waits until the hub's channel
/// back is open too, so the node can both pay and be paid.
async fn connect_to_hub(engine: &Engine, node: &str) {
    let simnet = &engine.simnet;
    let address = simnet.node(node).await.unwrap().address;
    simnet
        .faucet(&address, Msat::from_sat(2_000_000))
        .await
        .unwrap();
    simnet.mine(1).await.unwrap();
    let hub = simnet.hub().await.unwrap().pubkey;
    simnet.open_channel(node, &hub, CHANNEL).await.unwrap();
    simnet.mine(3).await.unwrap();
    simnet.mine(3).await.unwrap();
}

async fn assert_conserved(engine: &Engine) {
    let audit = engine.simnet.audit().await.unwrap();
    assert!(audit.balanced(), "funds not conserved: {audit:?}");
}

fn spendable(channels: &[engine::simnet::Channel]) -> Msat {
    Msat(
        channels
            .iter()
            .filter(|c| c.state == engine::simnet::ChannelState::Open)
            .map(|c| c.local.0)
            .sum(),
    )
}

async fn every_account_gets_a_node_and_finds_the_hub_in_its_address_book(engine: Engine) {
    use sqlx::Row;
    let alice = node_of(&engine, "alice").await;
    let node = engine.simnet.node(&alice).await.unwrap();
    assert_eq!(node.alias, "alice");
    assert!(node.address.starts_with("bcrt1q"));
    assert_eq!(node.onchain, Msat(0));
    let hub = engine.simnet.hub().await.unwrap();
    let row = sqlx::query("SELECT pubkey FROM addressbook WHERE user_id = $1 AND alias = 'hub'")
        .bind(node.user_id.unwrap())
        .fetch_one(engine.db.pool())
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("pubkey"), hub.pubkey);
    assert_conserved(&engine).await;
}

async fn alice_opens_a_channel_to_the_hub_and_pays_bob_through_it(engine: Engine) {
    let simnet = &engine.simnet;
    let alice = node_of(&engine, "alice").await;
    let bob = node_of(&engine, "bob").await;

    let address = simnet.node(&alice).await.unwrap().address;
    simnet
        .faucet(&address, Msat::from_sat(2_000_000))
        .await
        .unwrap();
    assert_eq!(
        simnet.node(&alice).await.unwrap().onchain,
        Msat(0),
        "unconfirmed yet"
    );
    simnet.mine(1).await.unwrap();
    assert_eq!(
        simnet.node(&alice).await.unwrap().onchain,
        Msat::from_sat(2_000_000)
    );

    let hub = simnet.hub().await.unwrap().pubkey;
    let channel = simnet.open_channel(&alice, &hub, CHANNEL).await.unwrap();
    assert_eq!(channel.display_state(), "Pending (3 blocks)");
    assert_eq!(
        simnet.node(&alice).await.unwrap().onchain,
        Msat::from_sat(1_000_000)
    );
    simnet.mine(2).await.unwrap();
    assert_eq!(
        simnet.live_channels(&alice).await.unwrap()[0].display_state(),
        "Pending (1 blocks)"
    );
    simnet.mine(1).await.unwrap();
    let channels = simnet.live_channels(&alice).await.unwrap();
    assert_eq!(channels.len(), 2, "the hub opened one back: {channels:?}");
    assert!(channels
        .iter()
        .any(|c| c.display_state() == "Open" && c.initiator));
    assert_conserved(&engine).await;

    connect_to_hub(&engine, &bob).await;
    let issued = simnet
        .create_invoice(&bob, Some(Msat::from_sat(10_000)), "lunch")
        .await
        .unwrap();
    let paid = simnet
        .pay(PayRequest {
            payer: alice.clone(),
            invoice: issued.bolt11.clone(),
            amount: None,
            fee_limit: None,
            within: None,
        })
        .await
        .unwrap();
    assert_eq!(paid.amount, Msat::from_sat(10_000));
    assert_eq!(
        paid.fee,
        Msat(1000 + 1000),
        "the hub's base fee and 100 ppm"
    );
    assert_eq!(paid.destination, bob);
    assert_eq!(
        spendable(&simnet.live_channels(&alice).await.unwrap()),
        Msat(CHANNEL.0 - 10_000_000 - 2000)
    );
    // Bob's hub channel (opened by the hub) now holds his 10,000 sat on his side.
    assert_eq!(
        spendable(&simnet.live_channels(&bob).await.unwrap()),
        Msat(CHANNEL.0 + 10_000_000)
    );
    assert_conserved(&engine).await;
}

async fn fifty_concurrent_payments_spend_one_balance_only_as_far_as_it_goes(engine: Engine) {
    let simnet = &engine.simnet;
    let alice = node_of(&engine, "alice").await;
    let bob = node_of(&engine, "bob").await;
    connect_to_hub(&engine, &alice).await;
    connect_to_hub(&engine, &bob).await;
    // Each payment is 30,000 sat + 4 sat fee: 1,000,000 sat cover 33 of them.
    let price = Msat::from_sat(30_000);
    let mut invoices = Vec::new();
    for i in 0..50 {
        invoices.push(
            simnet
                .create_invoice(&bob, Some(price), &format!("#{i}"))
                .await
                .unwrap()
                .bolt11,
        );
    }
    let attempts = invoices.into_iter().map(|bolt11| {
        let simnet = simnet.clone();
        let payer = alice.clone();
        tokio::spawn(async move {
            simnet
                .pay(PayRequest {
                    payer,
                    invoice: bolt11,
                    amount: None,
                    fee_limit: None,
                    within: None,
                })
                .await
        })
    });
    let (mut paid, mut refused) = (0, 0);
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => paid += 1,
            Err(Error::InsufficientFunds) => refused += 1,
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    let fee = Msat(1000 + price.0 * 100 / 1_000_000);
    let affordable = CHANNEL.0 / (price.0 + fee.0);
    assert_eq!(paid, affordable, "refused {refused}");
    let left = spendable(&simnet.live_channels(&alice).await.unwrap());
    assert_eq!(left, Msat(CHANNEL.0 - paid * (price.0 + fee.0)));
    assert!(left.0 >= 0);
    assert_conserved(&engine).await;
}

async fn one_invoice_paid_by_two_accounts_at_once_settles_once(engine: Engine) {
    let simnet = &engine.simnet;
    let alice = node_of(&engine, "alice").await;
    let bob = node_of(&engine, "bob").await;
    let carol = node_of(&engine, "carol").await;
    for node in [&alice, &bob, &carol] {
        connect_to_hub(&engine, node).await;
    }
    for round in 0..5 {
        let issued = simnet
            .create_invoice(
                &carol,
                Some(Msat::from_sat(5_000)),
                &format!("round {round}"),
            )
            .await
            .unwrap();
        let pay = |payer: String| {
            let simnet = simnet.clone();
            let invoice = issued.bolt11.clone();
            tokio::spawn(async move {
                simnet
                    .pay(PayRequest {
                        payer,
                        invoice,
                        amount: None,
                        fee_limit: None,
                        within: None,
                    })
                    .await
            })
        };
        let alice_balance = spendable(&simnet.live_channels(&alice).await.unwrap());
        let bob_balance = spendable(&simnet.live_channels(&bob).await.unwrap());
        let (a, b) = (pay(alice.clone()), pay(bob.clone()));
        let results = [a.await.unwrap(), b.await.unwrap()];
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{results:?}");
        assert!(
            results.iter().any(|r| matches!(r, Err(Error::AlreadyPaid))),
            "{results:?}"
        );
        let loser_kept = if results[0].is_ok() {
            spendable(&simnet.live_channels(&bob).await.unwrap()) == bob_balance
        } else {
            spendable(&simnet.live_channels(&alice).await.unwrap()) == alice_balance
        };
        assert!(loser_kept, "the refused payer must keep its money");
    }
    assert_conserved(&engine).await;
}

async fn refused_payments_change_nothing(engine: Engine) {
    let simnet = &engine.simnet;
    let alice = node_of(&engine, "alice").await;
    let bob = node_of(&engine, "bob").await;
    connect_to_hub(&engine, &alice).await;
    connect_to_hub(&engine, &bob).await;
    let before = spendable(&simnet.live_channels(&alice).await.unwrap());
    let pay = |invoice: String, amount: Option<Msat>, fee_limit: Option<Msat>| {
        simnet.pay(PayRequest {
            payer: alice.clone(),
            invoice,
            amount,
            fee_limit,
            within: None,
        })
    };

    // Too much for alice's channel.
    let big = simnet
        .create_invoice(&bob, Some(Msat::from_sat(5_000_000)), "big")
        .await
        .unwrap();
    assert!(matches!(
        pay(big.bolt11, None, None).await,
        Err(Error::InsufficientFunds)
    ));
    // A fee limit below the hub's fee.
    let small = simnet
        .create_invoice(&bob, Some(Msat::from_sat(1_000)), "small")
        .await
        .unwrap();
    assert!(matches!(
        pay(small.bolt11.clone(), None, Some(Msat(500))).await,
        Err(Error::FeeLimitExceeded { .. })
    ));
    // Amountless without an amount, and a fixed amount contradicted.
    let open = simnet
        .create_invoice(&bob, None, "any amount")
        .await
        .unwrap();
    assert_eq!(
        pay(open.bolt11.clone(), None, None)
            .await
            .unwrap_err()
            .field(),
        Some("amount")
    );
    assert_eq!(
        pay(small.bolt11.clone(), Some(Msat::from_sat(2)), None)
            .await
            .unwrap_err()
            .field(),
        Some("amount")
    );
    // An invoice of a node outside this network.
    let stranger = NodeKey::generate();
    let outside = invoice::issue(&stranger, Some(Msat(1000)), "", Duration::from_secs(60)).unwrap();
    assert!(matches!(
        pay(outside.bolt11, None, None).await,
        Err(Error::NoRoute)
    ));
    // Malformed, and one's own invoice.
    assert_eq!(
        pay("lnbcrt1garbage".into(), None, None)
            .await
            .unwrap_err()
            .field(),
        Some("invoiceid")
    );
    let own = simnet
        .create_invoice(&alice, Some(Msat(1000)), "mine")
        .await
        .unwrap();
    assert_eq!(
        pay(own.bolt11, None, None).await.unwrap_err().field(),
        Some("invoiceid")
    );
    assert_eq!(
        spendable(&simnet.live_channels(&alice).await.unwrap()),
        before
    );

    // Paid once, then refused.
    pay(open.bolt11.clone(), Some(Msat::from_sat(100)), None)
        .await
        .unwrap();
    assert!(matches!(
        pay(open.bolt11, Some(Msat::from_sat(100)), None).await,
        Err(Error::AlreadyPaid)
    ));

    // Negative, zero and overlong input never reach the ledger.
    assert!(simnet
        .create_invoice(&bob, Some(Msat(0)), "")
        .await
        .is_err());
    assert!(simnet
        .create_invoice(&bob, Some(Msat(-5)), "")
        .await
        .is_err());
    assert!(simnet
        .create_invoice(&bob, None, &"m".repeat(300))
        .await
        .is_err());
    assert_conserved(&engine).await;
}

async fn channels_close_cooperatively_and_by_force(engine: Engine) {
    let simnet = &engine.simnet;
    let alice = node_of(&engine, "alice").await;
    connect_to_hub(&engine, &alice).await;
    let channels = simnet.live_channels(&alice).await.unwrap();
    let mine = channels.iter().find(|c| c.initiator).unwrap().point.clone();
    let theirs = channels
        .iter()
        .find(|c| !c.initiator)
        .unwrap()
        .point
        .clone();
    let onchain = simnet.node(&alice).await.unwrap().onchain;

    // Unknown or foreign channels are not found.
    assert!(matches!(
        simnet.close_channel(&alice, "ab:0", false).await,
        Err(Error::ChannelNotFound)
    ));
    let bob = node_of(&engine, "bob").await;
    assert!(matches!(
        simnet.close_channel(&bob, &mine, false).await,
        Err(Error::ChannelNotFound)
    ));

    let closing = simnet.close_channel(&alice, &mine, false).await.unwrap();
    assert_eq!(closing.display_state(), "Closing");
    assert!(matches!(
        simnet.close_channel(&alice, &mine, false).await,
        Err(Error::ChannelNotFound)
    ));
    simnet.mine(1).await.unwrap();
    assert_eq!(
        simnet.node(&alice).await.unwrap().onchain,
        Msat(onchain.0 + CHANNEL.0)
    );

    let forced = simnet.close_channel(&alice, &theirs, true).await.unwrap();
    assert_eq!(forced.display_state(), "Forced Closing (4 blocks)");
    simnet.mine(3).await.unwrap();
    let still = simnet.live_channels(&alice).await.unwrap();
    assert!(still
        .iter()
        .any(|c| c.display_state() == "Forced Closing (1 blocks)"));
    simnet.mine(1).await.unwrap();
    // Alice had nothing on her side of the hub's channel: her wallet is unchanged.
    assert_eq!(
        simnet.node(&alice).await.unwrap().onchain,
        Msat(onchain.0 + CHANNEL.0)
    );
    assert_conserved(&engine).await;
}

async fn the_faucet_and_the_miner_refuse_nonsense(engine: Engine) {
    let simnet = &engine.simnet;
    let alice = node_of(&engine, "alice").await;
    let address = simnet.node(&alice).await.unwrap().address;
    for amount in [
        Msat(0),
        Msat(-1000),
        Msat(1500),
        Msat::from_sat(2_000_000_000),
    ] {
        assert!(simnet.faucet(&address, amount).await.is_err(), "{amount:?}");
    }
    assert!(simnet
        .faucet("bcrt1qnotanaddressofours", Msat::from_sat(1))
        .await
        .is_err());
    assert!(simnet.mine(0).await.is_err());
    assert!(simnet.mine(100_000).await.is_err());
    let hub = simnet.hub().await.unwrap().pubkey;
    assert!(matches!(
        simnet.open_channel(&alice, &hub, CHANNEL).await,
        Err(Error::InsufficientOnchainFunds)
    ));
    assert!(simnet.open_channel(&alice, &alice, CHANNEL).await.is_err());
    assert!(simnet
        .open_channel(&alice, &hub, Msat::from_sat(10))
        .await
        .is_err());
    assert!(matches!(
        simnet
            .open_channel(&alice, &NodeKey::generate().pubkey_hex(), CHANNEL)
            .await,
        Err(Error::UnknownNode)
    ));
    assert!(simnet.live_channels(&alice).await.unwrap().is_empty());
    assert_conserved(&engine).await;
}

async fn two_servers_on_one_database_never_overdraw(first: Engine) {
    // A second engine on the same database stands for a second server process:
    // each remembers the channel graph, and each sees the other's payments late.
    let second = Engine::open(&first.db.url(), test_settings())
        .await
        .unwrap();
    let alice = node_of(&first, "alice").await;
    let bob = node_of(&first, "bob").await;
    connect_to_hub(&first, &alice).await;
    connect_to_hub(&first, &bob).await;
    let pay = |engine: &Engine, sat: i64| {
        let engine = engine.clone();
        let (alice, bob) = (alice.clone(), bob.clone());
        async move {
            let issued = engine
                .simnet
                .create_invoice(&bob, Some(Msat::from_sat(sat)), "")
                .await
                .unwrap();
            engine
                .simnet
                .pay(PayRequest {
                    payer: alice,
                    invoice: issued.bolt11,
                    amount: None,
                    fee_limit: None,
                    within: None,
                })
                .await
        }
    };
    // Both learn the graph; then the second spends most of Alice's channel.
    pay(&first, 1_000).await.unwrap();
    pay(&second, 1_000).await.unwrap();
    pay(&second, 900_000).await.unwrap();
    // The first still remembers 998,000 sat: its SQL refuses 200,000 all the same.
    assert!(matches!(
        pay(&first, 200_000).await,
        Err(Error::InsufficientFunds)
    ));
    // And it pays what is really there, on a fresh graph.
    pay(&first, 50_000).await.unwrap();
    let left = spendable(&first.simnet.live_channels(&alice).await.unwrap());
    let fees = 4 * 1000 + (1_000 + 1_000 + 900_000 + 50_000) * 100 / 1_000; // msat
    assert_eq!(left, Msat(CHANNEL.0 - (952_000 * 1000 + fees)));
    assert_conserved(&first).await;
}

async fn an_expired_invoice_is_refused(engine: Engine) {
    let alice = node_of(&engine, "alice").await;
    let bob = node_of(&engine, "bob").await;
    connect_to_hub(&engine, &alice).await;
    connect_to_hub(&engine, &bob).await;
    // Signed by Bob's node, recorded as his, but with a one-second life.
    let short = Engine::open(
        &engine.db.url(),
        Settings {
            simnet: SimnetConfig {
                invoice_expiry: Duration::from_secs(1),
                ..SimnetConfig::default()
            },
            ..Settings::default()
        },
    )
    .await
    .unwrap();
    let issued = short
        .simnet
        .create_invoice(&bob, Some(Msat::from_sat(10)), "soon gone")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = spendable(&engine.simnet.live_channels(&alice).await.unwrap());
    let refused = engine
        .simnet
        .pay(PayRequest {
            payer: alice.clone(),
            invoice: issued.bolt11,
            amount: None,
            fee_limit: None,
            within: None,
        })
        .await;
    assert!(matches!(refused, Err(Error::InvoiceExpired)), "{refused:?}");
    assert_eq!(
        spendable(&engine.simnet.live_channels(&alice).await.unwrap()),
        before
    );
    assert_conserved(&engine).await;
}

async fn demo_mode_funds_and_connects_a_new_account(engine: Engine) {
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
    let dana = node_of(&demo, "dana").await;
    let channels = demo.simnet.live_channels(&dana).await.unwrap();
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0].display_state(), "Pending (3 blocks)");
    assert_eq!(channels[0].capacity, demo.simnet.config().demo_channel);
    assert_eq!(
        demo.simnet.node(&dana).await.unwrap().onchain,
        Msat(demo.simnet.config().demo_funds.0 - demo.simnet.config().demo_channel.0)
    );
    demo.simnet.mine(3).await.unwrap();
    demo.simnet.mine(3).await.unwrap();
    let channels = demo.simnet.live_channels(&dana).await.unwrap();
    assert_eq!(channels.len(), 2, "the hub opened one back");
    assert!(channels.iter().all(|c| c.display_state() == "Open"));
    assert_conserved(&demo).await;
}

/// Funds `node` with `sats`, confirmed.
async fn fund(engine: &Engine, node: &str, sats: i64) {
    let address = engine.simnet.node(node).await.unwrap().address;
    engine
        .simnet
        .faucet(&address, Msat::from_sat(sats))
        .await
        .unwrap();
    engine.simnet.mine(1).await.unwrap();
}

async fn a_stranger_cannot_pad_a_channel_list(engine: Engine) {
    let simnet = &engine.simnet;
    let alice = node_of(&engine, "alice").await;
    let mallory = node_of(&engine, "mallory").await;
    fund(&engine, &mallory, 1_000_000).await;

    // Below LND's minimum channel size: refused, naming the amount.
    let dust = simnet
        .open_channel(&mallory, &alice, Msat(MIN_CAPACITY.0 - 1000))
        .await
        .unwrap_err();
    assert_eq!(dust.field(), Some("amount"), "{dust}");
    assert!(dust.to_string().contains("20000"), "{dust}");

    // Two pending channels to one node at a time; the third is refused, clearly,
    // and spends nothing.
    for _ in 0..MAX_PENDING_PER_PEER {
        simnet
            .open_channel(&mallory, &alice, MIN_CAPACITY)
            .await
            .unwrap();
    }
    let onchain = simnet.node(&mallory).await.unwrap().onchain;
    let refused = simnet
        .open_channel(&mallory, &alice, MIN_CAPACITY)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::PendingChannelLimit { max: 2 }),
        "{refused:?}"
    );
    assert!(refused.is_refusal());
    assert_eq!(
        refused.to_string(),
        "2 channels to this node are pending already; wait until one opens"
    );
    assert_eq!(simnet.node(&mallory).await.unwrap().onchain, onchain);
    assert_eq!(simnet.live_channels(&alice).await.unwrap().len(), 2);

    // The limit is per peer: Mallory may still open one to the hub.
    let hub = simnet.hub().await.unwrap().pubkey;
    simnet
        .open_channel(&mallory, &hub, MIN_CAPACITY)
        .await
        .unwrap();
    // Once Mallory's channels to Alice open, she may open more.
    simnet.mine(3).await.unwrap();
    simnet
        .open_channel(&mallory, &alice, MIN_CAPACITY)
        .await
        .unwrap();
    assert_eq!(simnet.live_channels(&alice).await.unwrap().len(), 3);
    assert_conserved(&engine).await;
}

async fn openings_raced_from_two_servers_stop_at_the_pending_limit(first: Engine) {
    let second = Engine::open(&first.db.url(), test_settings())
        .await
        .unwrap();
    let alice = node_of(&first, "alice").await;
    let mallory = node_of(&first, "mallory").await;
    fund(&first, &mallory, 1_000_000).await;
    let attempts = (0..10).map(|i| {
        let engine = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let (mallory, alice) = (mallory.clone(), alice.clone());
        tokio::spawn(async move {
            engine
                .simnet
                .open_channel(&mallory, &alice, MIN_CAPACITY)
                .await
        })
    });
    let results = futures_util::future::join_all(attempts).await;
    let opened = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(Error::PendingChannelLimit { .. }))))
        .count();
    assert_eq!((opened, refused), (2, 8), "{results:?}");
    assert_eq!(
        first.simnet.node(&mallory).await.unwrap().onchain,
        Msat::from_sat(1_000_000 - 2 * MIN_CAPACITY.sat())
    );
    assert_eq!(first.simnet.live_channels(&alice).await.unwrap().len(), 2);
    assert_conserved(&first).await;
}

async fn closed_channels_are_paged_most_recently_closed_first(engine: Engine) {
    let simnet = &engine.simnet;
    let user = engine
        .register("alice", PASSWORD, None, "alice")
        .await
        .unwrap();
    let alice = simnet.node_of_user(&user.id.0).await.unwrap().pubkey;
    let hub = simnet.hub().await.unwrap().pubkey;
    fund(&engine, &alice, 2_000_000).await;
    // Thirteen rounds: two channels opened, open, then both closed in one block.
    let mut closed_in_order = Vec::new();
    for _ in 0..13 {
        let mut round = Vec::new();
        for _ in 0..2 {
            let channel = simnet
                .open_channel(&alice, &hub, MIN_CAPACITY)
                .await
                .unwrap();
            round.push(channel.point);
        }
        simnet.mine(3).await.unwrap();
        for point in &round {
            simnet.close_channel(&alice, point, false).await.unwrap();
        }
        simnet.mine(1).await.unwrap();
        closed_in_order.extend(round);
    }

    // Only the hub's channel back is live; the list shows it and the last ten closed.
    let live = simnet.live_channels(&alice).await.unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    assert!(!live[0].initiator);
    let overview = engine.wallet.overview(&user).await.unwrap();
    assert_eq!(overview.channels.len(), 1 + RECENT_CLOSED);
    assert_eq!(overview.channels[0].point, live[0].point);
    assert!(overview.channels[1..]
        .iter()
        .all(|c| c.state == engine::simnet::ChannelState::Closed));
    let recent: Vec<&str> = overview.channels[1..]
        .iter()
        .map(|c| c.point.as_str())
        .collect();
    let mut newest: Vec<&str> = closed_in_order.iter().rev().map(String::as_str).collect();
    // Two closed in one block may share an instant: compare each block's pair as a set.
    let pairs = |list: &[&str]| -> Vec<Vec<String>> {
        list.chunks(2)
            .map(|pair| {
                let mut pair: Vec<String> = pair.iter().map(|p| p.to_string()).collect();
                pair.sort();
                pair
            })
            .collect()
    };
    newest.truncate(RECENT_CLOSED);
    assert_eq!(pairs(&recent), pairs(&newest));
    let older = overview.older_closed_cursor.expect("older ones exist");

    // Paging from there by sevens gives every other closed channel once.
    let mut cursor = ClosedCursor::parse(&older).unwrap();
    let mut paged: Vec<String> = recent.iter().map(|p| p.to_string()).collect();
    loop {
        let page = simnet
            .closed_channels(&alice, cursor.as_ref(), 7)
            .await
            .unwrap();
        assert!(page.channels.len() <= 7);
        paged.extend(page.channels.iter().map(|c| c.point.clone()));
        match page.next_cursor {
            Some(next) => cursor = ClosedCursor::parse(&next).unwrap(),
            None => break,
        }
    }
    assert_eq!(paged.len(), 26);
    let all: Vec<&str> = paged.iter().map(String::as_str).collect();
    let every: Vec<&str> = closed_in_order.iter().rev().map(String::as_str).collect();
    assert_eq!(pairs(&all), pairs(&every));

    // Another node sees none of them; a forged cursor names its field.
    let bob = node_of(&engine, "bob").await;
    let none = simnet.closed_channels(&bob, None, 100).await.unwrap();
    assert!(none.channels.is_empty() && none.next_cursor.is_none());
    for bad in ["zz", "3132", &hex::encode("x:ab:0")] {
        assert_eq!(
            ClosedCursor::parse(bad).unwrap_err().field(),
            Some("cursor"),
            "{bad}"
        );
    }
    assert_conserved(&engine).await;
}
