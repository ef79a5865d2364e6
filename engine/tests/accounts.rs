//! Accounts on both databases: sign-up rules, log-in, throttling (shared by every
//! engine on one database, as by every server process), bounded hashing, tokens.

use engine::Seen;
use std::time::{Duration, Instant};

use engine::throttle::{ClientLimits, Limits, Rule, Scope};
use engine::{Engine, Error, Settings};

testdb::on_both_databases!(
    database_url;
    alice_signs_up_and_logs_in_with_any_case_of_her_name,
    a_second_alice_is_refused_whatever_the_case,
    bad_sign_ups_are_refused_and_write_nothing,
    a_wrong_password_is_refused,
    concurrent_sign_ups_of_one_name_let_exactly_one_win,
    repeated_failures_are_throttled_even_with_the_right_password,
    a_token_authenticates_until_tampered_or_its_version_moves_on,
    two_engines_on_one_database_share_the_signing_key,
    parallel_guesses_are_all_counted_by_the_throttle,
    a_username_is_throttled_after_its_failures_and_freed_by_success,
    a_client_guessing_many_usernames_is_throttled,
    failures_expire_with_the_window,
    two_engines_on_one_database_share_the_login_throttle,
    parallel_guesses_through_two_engines_reach_the_password_check_only_up_to_the_limit,
    parallel_attempts_through_four_engines_never_pass_the_limit,
    a_sign_up_flood_is_refused_before_any_hashing,
    a_taken_name_is_refused_without_hashing_or_counting,
    with_every_hashing_permit_held_a_login_waits_the_bound_and_is_busy,
    the_sweep_keeps_the_throttle_table_bounded,
    demo_funding_stops_at_its_limits_and_the_accounts_still_sign_up,
);

const PASSWORD: &str = "Correct-horse-7";

/// The stories open their own engines (some open two), so they take the URL.
async fn database_url(url: &str) -> String {
    url.to_string()
}

/// The defaults, except that hashing may wait long: the tests share a small
/// machine, and only the story about a busy server wants `Busy`.
fn settings() -> Settings {
    Settings {
        hashing_wait: Duration::from_secs(60),
        ..Settings::default()
    }
}

async fn engine(url: &str) -> Engine {
    Engine::open(url, settings()).await.expect("engine opens")
}

/// An engine whose login throttle allows `per_username` and `per_client`
/// failures a minute.
async fn engine_with_logins(url: &str, per_username: u32, per_client: u32) -> Engine {
    let settings = Settings {
        throttle: Limits {
            per_username,
            per_client,
            window: Duration::from_secs(60),
        },
        ..settings()
    };
    Engine::open(url, settings).await.expect("engine opens")
}

async fn throttle_rows(engine: &Engine) -> i64 {
    use sqlx::Row;
    sqlx::query("SELECT COUNT(*) AS n FROM throttles")
        .fetch_one(engine.db.pool())
        .await
        .unwrap()
        .get("n")
}

fn retry_after(outcome: engine::Result<impl std::fmt::Debug>) -> Duration {
    match outcome {
        Err(Error::Throttled { retry_after }) => retry_after,
        other => panic!("expected throttled, got {other:?}"),
    }
}

async fn user_count(engine: &Engine) -> i64 {
    use sqlx::Row;
    sqlx::query("SELECT COUNT(*) AS n FROM users")
        .fetch_one(engine.db.pool())
        .await
        .unwrap()
        .get("n")
}

async fn alice_signs_up_and_logs_in_with_any_case_of_her_name(url: String) {
    let url = url.as_str();
    let engine = engine(url).await;
    let alice = engine
        .accounts
        .register("Alice", PASSWORD, Some("alice@example.com"), "1.1.1.1")
        .await
        .unwrap();
    assert_eq!(alice.username, "Alice");
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    let again = engine
        .accounts
        .login("aLiCe", PASSWORD, None, &Seen::at("1.1.1.1"))
        .await
        .unwrap();
    assert_eq!(again.id, alice.id);
    let fetched = engine.accounts.get(&alice.id.0).await.unwrap().unwrap();
    assert_eq!(fetched.username, "Alice");
    assert!(!fetched.is_admin);
}

async fn a_second_alice_is_refused_whatever_the_case(url: String) {
    let url = url.as_str();
    let engine = engine(url).await;
    engine
        .accounts
        .register("alice", PASSWORD, None, "1.1.1.1")
        .await
        .unwrap();
    let err = engine
        .accounts
        .register("ALICE", PASSWORD, None, "1.1.1.1")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UsernameTaken), "{err:?}");
    assert_eq!(user_count(&engine).await, 1);
}

async fn bad_sign_ups_are_refused_and_write_nothing(url: String) {
    let url = url.as_str();
    let engine = engine(url).await;
    let long_name = "a".repeat(33);
    let long_password = format!("Aa1{}", "x".repeat(62));
    let cases: [(&str, &str, Option<&str>, &str); 12] = [
        ("al", PASSWORD, None, "username"),
        (&long_name, PASSWORD, None, "username"),
        ("al ice", PASSWORD, None, "username"),
        ("<script>", PASSWORD, None, "username"),
        ("bob", "Short1a", None, "password"),
        ("bob", "alllowercase1", None, "password"),
        ("bob", "ALLUPPERCASE1", None, "password"),
        ("bob", "NoDigitsHere", None, "password"),
        // Shaped right, easy to guess (zxcvbn scores it below 3).
        ("bob", "Password123", None, "password"),
        ("bob", "Bob-12345", None, "password"),
        ("bob", &long_password, None, "password"),
        ("bob", PASSWORD, Some("not-an-email"), "email"),
    ];
    for (username, password, email, field) in cases {
        let err = engine
            .accounts
            .register(username, password, email, "1.1.1.2")
            .await
            .unwrap_err();
        assert_eq!(
            err.field(),
            Some(field),
            "{username:?}/{password:?}: {err:?}"
        );
    }
    assert_eq!(user_count(&engine).await, 0);
    // The longest acceptable values pass.
    let name = "b".repeat(32);
    // (64 characters, and not easy to guess: a repeated letter would be.)
    let password = "Aa1-violet-otter-canoe-lantern-quartz-meadow-falcon-prism-embers";
    assert_eq!(password.len(), 64);
    engine
        .accounts
        .register(&name, password, None, "1.1.1.2")
        .await
        .unwrap();
    assert_eq!(user_count(&engine).await, 1);
}

async fn a_wrong_password_is_refused(url: String) {
    let url = url.as_str();
    let engine = engine(url).await;
    engine
        .accounts
        .register("carol", PASSWORD, None, "2.2.2.2")
        .await
        .unwrap();
    for (username, password) in [
        ("carol", "Wrong-horse-7"),
        ("nobody", PASSWORD),
        ("carol", ""),
    ] {
        let err = engine
            .accounts
            .login(username, password, None, &Seen::at("2.2.2.2"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidCredentials), "{err:?}");
    }
}

async fn concurrent_sign_ups_of_one_name_let_exactly_one_win(url: String) {
    let url = url.as_str();
    let engine = engine(url).await;
    let attempts = (0..8)
        .map(|i| {
            let engine = engine.clone();
            let name = if i % 2 == 0 { "dave" } else { "DAVE" };
            let client = format!("10.0.0.{i}");
            tokio::spawn(async move {
                engine
                    .accounts
                    .register(name, PASSWORD, None, &client)
                    .await
            })
        })
        // Spawned all at once, before any is awaited: they race.
        .collect::<Vec<_>>();
    let mut won = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => won += 1,
            Err(Error::UsernameTaken) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(user_count(&engine).await, 1);
}

async fn repeated_failures_are_throttled_even_with_the_right_password(url: String) {
    let url = url.as_str();
    let limits = Limits {
        per_username: 3,
        per_client: 100,
        window: Duration::from_secs(60),
    };
    let settings = Settings {
        throttle: limits,
        ..settings()
    };
    let engine = Engine::open(url, settings).await.unwrap();
    engine
        .accounts
        .register("erin", PASSWORD, None, "3.3.3.3")
        .await
        .unwrap();
    for _ in 0..3 {
        let err = engine
            .accounts
            .login("erin", "Wrong-1a", None, &Seen::at("3.3.3.3"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidCredentials));
    }
    let err = engine
        .accounts
        .login("ERIN", PASSWORD, None, &Seen::at("4.4.4.4"))
        .await
        .unwrap_err();
    match err {
        Error::Throttled { retry_after } => assert!(retry_after > Duration::from_secs(30)),
        other => panic!("expected throttled, got {other:?}"),
    }
}

async fn a_token_authenticates_until_tampered_or_its_version_moves_on(url: String) {
    let url = url.as_str();
    let engine = engine(url).await;
    let frank = engine
        .accounts
        .register("frank", PASSWORD, None, "5.5.5.5")
        .await
        .unwrap();
    let token = engine.tokens.issue(&frank).unwrap();
    let claims = engine.tokens.verify(&token).unwrap();
    assert_eq!(claims.sub, frank.id.0);
    let user = engine
        .accounts
        .authenticate(&claims.sub, claims.ver)
        .await
        .unwrap();
    assert_eq!(user.username, "frank");

    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert!(matches!(
        engine.tokens.verify(&tampered),
        Err(Error::Unauthenticated)
    ));

    // A credential issued under another version no longer authenticates.
    assert!(matches!(
        engine
            .accounts
            .authenticate(&claims.sub, claims.ver + 1)
            .await,
        Err(Error::Unauthenticated)
    ));
    assert!(matches!(
        engine.accounts.authenticate("no-such-user", 0).await,
        Err(Error::Unauthenticated)
    ));
}

async fn two_engines_on_one_database_share_the_signing_key(url: String) {
    let url = url.as_str();
    let first = engine(url).await;
    let second = engine(url).await;
    let grace = first
        .accounts
        .register("grace", PASSWORD, None, "5.5.5.5")
        .await
        .unwrap();
    let token = first.tokens.issue(&grace).unwrap();
    assert_eq!(second.tokens.verify(&token).unwrap().sub, grace.id.0);
}

async fn parallel_guesses_are_all_counted_by_the_throttle(url: String) {
    let engine = engine_with_logins(&url, 3, 1000).await;
    engine
        .register("mallory", PASSWORD, None, "6.6.6.5")
        .await
        .unwrap();
    let guesses = (0..20)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                engine
                    .accounts
                    .login(
                        "mallory",
                        &format!("Guess-{i}-aA"),
                        None,
                        &Seen::at("6.6.6.6"),
                    )
                    .await
            })
        })
        // Spawned all at once, before any is awaited: they race.
        .collect::<Vec<_>>();
    let mut checked = 0;
    for guess in guesses {
        match guess.await.unwrap() {
            Err(Error::InvalidCredentials) => checked += 1,
            Err(Error::Throttled { .. }) => {}
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(
        checked, 3,
        "only the allowed number of guesses reach the password check"
    );
}

async fn a_username_is_throttled_after_its_failures_and_freed_by_success(url: String) {
    let engine = engine_with_logins(&url, 3, 100).await;
    let throttle = &engine.throttle;
    let from = |client| {
        [
            (Scope::LoginUsername, "alice"),
            (Scope::LoginClient, client),
        ]
    };
    throttle.begin(&from("1.2.3.4")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..2 {
        throttle.begin(&from("1.2.3.4")).await.unwrap();
    }
    // From anywhere: the wait runs from the oldest failure that still counts.
    let wait = retry_after(throttle.begin(&from("5.6.7.8")).await);
    assert!(
        wait > Duration::from_secs(55) && wait <= Duration::from_millis(58_600),
        "{wait:?}"
    );
    // A success clears alice's failures but takes back only one of the client's.
    throttle.succeeded(&from("1.2.3.4")).await;
    throttle.begin(&from("1.2.3.4")).await.unwrap();
    assert_eq!(
        throttle_rows(&engine).await,
        2,
        "alice and 1.2.3.4 are counted"
    );
}

async fn a_client_guessing_many_usernames_is_throttled(url: String) {
    let engine = engine_with_logins(&url, 100, 4).await;
    let throttle = &engine.throttle;
    for i in 0..4 {
        let name = format!("user{i}");
        let keys = [
            (Scope::LoginUsername, name.as_str()),
            (Scope::LoginClient, "9.9.9.9"),
        ];
        throttle.begin(&keys).await.unwrap();
    }
    let other = |client| {
        [
            (Scope::LoginUsername, "someone-else"),
            (Scope::LoginClient, client),
        ]
    };
    retry_after(throttle.begin(&other("9.9.9.9")).await);
    throttle.begin(&other("1.1.1.1")).await.unwrap();
    // The refused attempt counted nowhere: someone-else has one failure, not two.
    let counted: String = {
        use sqlx::Row;
        sqlx::query("SELECT attempts FROM throttles WHERE subject = 'someone-else'")
            .fetch_one(engine.db.pool())
            .await
            .unwrap()
            .get("attempts")
    };
    assert_eq!(counted.split_whitespace().count(), 1, "{counted}");
}

async fn failures_expire_with_the_window(url: String) {
    let settings = Settings {
        throttle: Limits {
            per_username: 1,
            per_client: 1,
            window: Duration::from_secs(1),
        },
        ..settings()
    };
    let engine = Engine::open(&url, settings).await.unwrap();
    let keys = [
        (Scope::LoginUsername, "carol"),
        (Scope::LoginClient, "2.2.2.2"),
    ];
    engine.throttle.begin(&keys).await.unwrap();
    let wait = retry_after(engine.throttle.begin(&keys).await);
    assert!(wait <= Duration::from_secs(1), "{wait:?}");
    tokio::time::sleep(Duration::from_millis(1050)).await;
    engine.throttle.begin(&keys).await.unwrap();
}

async fn two_engines_on_one_database_share_the_login_throttle(url: String) {
    let first = engine_with_logins(&url, 3, 100).await;
    let second = engine_with_logins(&url, 3, 100).await;
    first
        .register("nina", PASSWORD, None, "7.7.7.1")
        .await
        .unwrap();
    for _ in 0..3 {
        let err = first
            .accounts
            .login("nina", "Wrong-horse-7", None, &Seen::at("7.7.7.7"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidCredentials), "{err:?}");
    }
    // The other process refuses her too, right password and all, before hashing.
    let hashed = second.accounts.hashes_run();
    let wait = retry_after(
        second
            .accounts
            .login("NINA", PASSWORD, None, &Seen::at("8.8.8.8"))
            .await,
    );
    assert!(wait > Duration::from_secs(50), "{wait:?}");
    assert_eq!(second.accounts.hashes_run(), hashed);

    // A success through either clears the username for both.
    first
        .register("omar", PASSWORD, None, "7.7.7.2")
        .await
        .unwrap();
    for _ in 0..2 {
        let _ = second
            .accounts
            .login("omar", "Wrong-horse-7", None, &Seen::at("7.7.7.8"))
            .await;
    }
    first
        .accounts
        .login("omar", PASSWORD, None, &Seen::at("7.7.7.8"))
        .await
        .unwrap();
    for _ in 0..2 {
        let _ = second
            .accounts
            .login("omar", "Wrong-horse-7", None, &Seen::at("7.7.7.8"))
            .await;
    }
    // Two failures since the success: the third attempt is still allowed.
    second
        .accounts
        .login("omar", PASSWORD, None, &Seen::at("7.7.7.8"))
        .await
        .unwrap();
}

async fn parallel_guesses_through_two_engines_reach_the_password_check_only_up_to_the_limit(
    url: String,
) {
    let first = engine_with_logins(&url, 3, 1000).await;
    let second = engine_with_logins(&url, 3, 1000).await;
    first
        .register("peggy", PASSWORD, None, "6.6.6.5")
        .await
        .unwrap();
    let hashed = first.accounts.hashes_run() + second.accounts.hashes_run();
    let guesses = (0..20)
        .map(|i| {
            let engine = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tokio::spawn(async move {
                engine
                    .accounts
                    .login(
                        "peggy",
                        &format!("Guess-{i}-aA"),
                        None,
                        &Seen::at(&format!("6.6.6.{i}")),
                    )
                    .await
            })
        })
        // Spawned all at once, before any is awaited: they race.
        .collect::<Vec<_>>();
    let (mut checked, mut throttled) = (0, 0);
    for guess in guesses {
        match guess.await.unwrap() {
            Err(Error::InvalidCredentials) => checked += 1,
            Err(Error::Throttled { .. }) => throttled += 1,
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!((checked, throttled), (3, 17));
    assert_eq!(
        first.accounts.hashes_run() + second.accounts.hashes_run() - hashed,
        3,
        "only the allowed guesses cost a hash"
    );
}

async fn parallel_attempts_through_four_engines_never_pass_the_limit(url: String) {
    let mut engines = Vec::new();
    for _ in 0..4 {
        engines.push(engine_with_logins(&url, 10, 10_000).await);
    }
    let attempts = (0..200)
        .map(|i| {
            let engine = engines[i % 4].clone();
            tokio::spawn(async move {
                let client = format!("4.4.{}.{}", i / 100, i % 100);
                let keys = [
                    (Scope::LoginUsername, "quentin"),
                    (Scope::LoginClient, client.as_str()),
                ];
                engine.throttle.begin(&keys).await
            })
        })
        // Spawned all at once, before any is awaited: they race.
        .collect::<Vec<_>>();
    let mut passed = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(()) => passed += 1,
            Err(Error::Throttled { .. }) => {}
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(
        passed, 10,
        "exactly the limit passes, whichever process counts"
    );
}

async fn a_sign_up_flood_is_refused_before_any_hashing(url: String) {
    let settings = Settings {
        sign_up: ClientLimits {
            per_client: Rule::new(3, Duration::from_secs(3600)),
            overall: Rule::new(5, Duration::from_secs(60)),
        },
        ..settings()
    };
    let engine = Engine::open(&url, settings).await.unwrap();
    let hashed = engine.accounts.hashes_run();
    let flood = (0..12)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                engine
                    .register(&format!("flood{i}"), PASSWORD, None, "5.5.5.5")
                    .await
            })
        })
        // Spawned all at once, before any is awaited: they race.
        .collect::<Vec<_>>();
    let (mut created, mut refused) = (0, 0);
    for sign_up in flood {
        match sign_up.await.unwrap() {
            Ok(_) => created += 1,
            Err(Error::Throttled { retry_after }) => {
                assert!(retry_after > Duration::from_secs(3500), "{retry_after:?}");
                refused += 1;
            }
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!((created, refused), (3, 9));
    assert_eq!(
        engine.accounts.hashes_run() - hashed,
        3,
        "refusals cost no hash"
    );
    assert_eq!(user_count(&engine).await, 3);

    // Other addresses may still sign up, until the overall limit.
    for (name, client) in [("quinn", "5.5.5.6"), ("rosa", "5.5.5.7")] {
        engine.register(name, PASSWORD, None, client).await.unwrap();
    }
    let wait = retry_after(engine.register("sam", PASSWORD, None, "5.5.5.8").await);
    assert!(wait <= Duration::from_secs(60), "{wait:?}");
    assert_eq!(engine.accounts.hashes_run() - hashed, 5);
    assert_eq!(user_count(&engine).await, 5);
}

async fn a_taken_name_is_refused_without_hashing_or_counting(url: String) {
    let settings = Settings {
        sign_up: ClientLimits {
            per_client: Rule::new(1, Duration::from_secs(3600)),
            overall: Rule::new(100, Duration::from_secs(60)),
        },
        ..settings()
    };
    let engine = Engine::open(&url, settings).await.unwrap();
    engine
        .register("trent", PASSWORD, None, "4.4.4.1")
        .await
        .unwrap();
    let hashed = engine.accounts.hashes_run();
    for _ in 0..3 {
        let err = engine
            .register("TRENT", PASSWORD, None, "4.4.4.2")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::UsernameTaken), "{err:?}");
    }
    assert_eq!(engine.accounts.hashes_run(), hashed);
    // The refusals did not use up 4.4.4.2's one sign-up.
    engine
        .register("uma", PASSWORD, None, "4.4.4.2")
        .await
        .unwrap();
    retry_after(engine.register("victor", PASSWORD, None, "4.4.4.2").await);
}

async fn with_every_hashing_permit_held_a_login_waits_the_bound_and_is_busy(url: String) {
    let bound = Duration::from_millis(400);
    let settings = Settings {
        hashing_wait: bound,
        throttle: Limits {
            per_username: 1,
            per_client: 100,
            window: Duration::from_secs(60),
        },
        sign_up: ClientLimits {
            per_client: Rule::new(1, Duration::from_secs(3600)),
            overall: Rule::new(100, Duration::from_secs(60)),
        },
        ..Settings::default()
    };
    let engine = Engine::open(&url, settings).await.unwrap();
    engine
        .register("wendy", PASSWORD, None, "3.3.3.1")
        .await
        .unwrap();

    let hold = engine.accounts.hold_hashing().await;
    let hashed = engine.accounts.hashes_run();
    let started = Instant::now();
    let err = engine
        .accounts
        .login("wendy", PASSWORD, None, &Seen::at("3.3.3.3"))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    match err {
        Error::Busy { retry_after } => assert!(retry_after >= Duration::from_secs(1)),
        other => panic!("expected busy, got {other:?}"),
    }
    assert!(
        waited >= bound && waited < bound + Duration::from_secs(2),
        "{waited:?}"
    );
    let err = engine
        .register("xena", PASSWORD, None, "3.3.3.3")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err:?}");
    assert_eq!(engine.accounts.hashes_run(), hashed);
    assert_eq!(user_count(&engine).await, 1);
    drop(hold);

    // Busy attempts were taken back: wendy's one allowed failure and the
    // address's one sign-up are still there.
    engine
        .accounts
        .login("wendy", PASSWORD, None, &Seen::at("3.3.3.3"))
        .await
        .unwrap();
    engine
        .register("xena", PASSWORD, None, "3.3.3.3")
        .await
        .unwrap();
}

async fn the_sweep_keeps_the_throttle_table_bounded(url: String) {
    let settings = Settings {
        throttle: Limits {
            per_username: 5,
            per_client: 10_000,
            window: Duration::from_millis(200),
        },
        ..settings()
    };
    let engine = Engine::open(&url, settings).await.unwrap();
    // A flood of random usernames, each failing once.
    for _ in 0..200 {
        let name = engine::random_hex(8);
        let keys = [
            (Scope::LoginUsername, name.as_str()),
            (Scope::LoginClient, "6.6.6.6"),
        ];
        engine.throttle.begin(&keys).await.unwrap();
    }
    assert!(throttle_rows(&engine).await > 2);
    // Once their window has passed, the next attempt sweeps them away.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let keys = [
        (Scope::LoginUsername, "yann"),
        (Scope::LoginClient, "6.6.6.6"),
    ];
    engine.throttle.begin(&keys).await.unwrap();
    assert_eq!(
        throttle_rows(&engine).await,
        2,
        "only yann and 6.6.6.6 remain"
    );
}

async fn demo_funding_stops_at_its_limits_and_the_accounts_still_sign_up(url: String) {
    let mut settings = Settings {
        demo_funding: ClientLimits {
            per_client: Rule::new(1, Duration::from_secs(3600)),
            overall: Rule::new(2, Duration::from_secs(3600)),
        },
        ..settings()
    };
    settings.simnet.demo = true;
    let engine = Engine::open(&url, settings).await.unwrap();
    let funds = engine.simnet.config().demo_funds;
    for (name, client, funded) in [
        ("zoe", "2.2.2.1", true),
        ("zack", "2.2.2.1", false), // the address's one funding is used
        ("yuri", "2.2.2.2", true),
        ("xavi", "2.2.2.3", false), // the overall two are used
    ] {
        let user = engine.register(name, PASSWORD, None, client).await.unwrap();
        let node = engine.simnet.node_of_user(&user.id.0).await.unwrap();
        let channels = engine.simnet.live_channels(&node.pubkey).await.unwrap();
        let given = node.onchain.0 + channels.iter().map(|c| c.capacity.0).sum::<i64>();
        assert_eq!(given, if funded { funds.0 } else { 0 }, "{name}");
    }
    assert_eq!(user_count(&engine).await, 4);
}
