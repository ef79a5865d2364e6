//! The engine's event bus: a subscriber gets the events of its topics and no
//! others, and with PostgreSQL the events (and the invalidations they carry)
//! cross to every other engine on the same database.

use engine::Seen;
use std::time::Duration;

use engine::events::{EventKind, Topic};
use engine::{Engine, Settings};

const PASSWORD: &str = "Correct-horse-7";

fn block(height: i64) -> EventKind {
    EventKind::BlockMined { height }
}

async fn next(sub: &mut engine::events::Subscription) -> Option<EventKind> {
    tokio::time::timeout(Duration::from_secs(3), sub.recv())
        .await
        .ok()
        .flatten()
        .map(|e| e.kind.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_hears_its_topics_only_and_leaves_nothing_behind() {
    let db = testdb::sqlite();
    let engine = Engine::open(&db.url, Settings::default()).await.unwrap();
    let bus = &engine.bus;
    let before = bus.topic_count();
    let mut sub = bus.subscribe(&[Topic::Node("mine".into()), Topic::Blocks]);
    bus.publish(Topic::Node("theirs".into()), block(1));
    bus.publish(Topic::Account("someone".into()), block(2));
    bus.publish(Topic::Node("mine".into()), block(3));
    bus.publish(Topic::Blocks, block(4));
    assert_eq!(next(&mut sub).await, Some(block(3)));
    assert_eq!(next(&mut sub).await, Some(block(4)));
    drop(sub);
    assert_eq!(
        bus.topic_count(),
        before,
        "the topics went with their last subscriber"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_told_to_resync() {
    let db = testdb::sqlite();
    let engine = Engine::open(&db.url, Settings::default()).await.unwrap();
    let mut sub = engine.bus.subscribe(&[Topic::Blocks]);
    for height in 0..1000 {
        engine.bus.publish(Topic::Blocks, block(height));
    }
    assert_eq!(next(&mut sub).await, Some(EventKind::Resync));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_invalidations_cross_processes_on_postgres() {
    let url = testdb::postgres();
    let a = Engine::open(&url, Settings::default()).await.unwrap();
    let b = Engine::open(&url, Settings::default()).await.unwrap();

    // An event published in A reaches B's subscriber, once, in order.
    let mut on_b = b.bus.subscribe(&[Topic::Node("n1".into())]);
    a.bus.publish(Topic::Node("n1".into()), block(7));
    a.bus.publish(Topic::Node("n1".into()), block(8));
    assert_eq!(next(&mut on_b).await, Some(block(7)));
    assert_eq!(next(&mut on_b).await, Some(block(8)));

    // B has the account cached; a password change through A voids the old
    // credentials in B at once, not after B's cache expires.
    let user = a.register("alice", PASSWORD, None, "test").await.unwrap();
    let mut account_on_b = b.bus.subscribe(&[Topic::Account(user.id.0.clone())]);
    b.accounts
        .authenticate(&user.id.0, user.auth_version)
        .await
        .expect("cached in B");
    a.accounts
        .change_password(&user, PASSWORD, "Battery-staple-9", None, &Seen::at("test"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert!(matches!(
        next(&mut account_on_b).await,
        Some(EventKind::CredentialsChanged { .. })
    ));
    assert!(
        b.accounts
            .authenticate(&user.id.0, user.auth_version)
            .await
            .is_err(),
        "B refuses the old credentials"
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "within {:?}, not the cache's 2 s",
        started.elapsed()
    );
}
