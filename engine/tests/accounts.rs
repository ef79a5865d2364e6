//! Accounts on both databases: sign-up rules, log-in, throttling, tokens.

use std::time::Duration;

use engine::throttle::Limits;
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
);

const PASSWORD: &str = "Correct-horse-7";

/// The stories open their own engines (some open two), so they take the URL.
async fn database_url(url: &str) -> String {
    url.to_string()
}

async fn engine(url: &str) -> Engine {
    Engine::open(url, Settings::default())
        .await
        .expect("engine opens")
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
        .register("Alice", PASSWORD, Some("alice@example.com"))
        .await
        .unwrap();
    assert_eq!(alice.username, "Alice");
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    let again = engine
        .accounts
        .login("aLiCe", PASSWORD, "1.1.1.1")
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
        .register("alice", PASSWORD, None)
        .await
        .unwrap();
    let err = engine
        .accounts
        .register("ALICE", PASSWORD, None)
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
    let cases: [(&str, &str, Option<&str>, &str); 10] = [
        ("al", PASSWORD, None, "username"),
        (&long_name, PASSWORD, None, "username"),
        ("al ice", PASSWORD, None, "username"),
        ("<script>", PASSWORD, None, "username"),
        ("bob", "Short1a", None, "password"),
        ("bob", "alllowercase1", None, "password"),
        ("bob", "ALLUPPERCASE1", None, "password"),
        ("bob", "NoDigitsHere", None, "password"),
        ("bob", &long_password, None, "password"),
        ("bob", PASSWORD, Some("not-an-email"), "email"),
    ];
    for (username, password, email, field) in cases {
        let err = engine
            .accounts
            .register(username, password, email)
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
    let password = format!("Aa1{}", "x".repeat(61));
    engine
        .accounts
        .register(&name, &password, None)
        .await
        .unwrap();
    assert_eq!(user_count(&engine).await, 1);
}

async fn a_wrong_password_is_refused(url: String) {
    let url = url.as_str();
    let engine = engine(url).await;
    engine
        .accounts
        .register("carol", PASSWORD, None)
        .await
        .unwrap();
    for (username, password) in [
        ("carol", "Wrong-horse-7"),
        ("nobody", PASSWORD),
        ("carol", ""),
    ] {
        let err = engine
            .accounts
            .login(username, password, "2.2.2.2")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidCredentials), "{err:?}");
    }
}

async fn concurrent_sign_ups_of_one_name_let_exactly_one_win(url: String) {
    let url = url.as_str();
    let engine = engine(url).await;
    let attempts = (0..8).map(|i| {
        let engine = engine.clone();
        let name = if i % 2 == 0 { "dave" } else { "DAVE" };
        tokio::spawn(async move { engine.accounts.register(name, PASSWORD, None).await })
    });
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
        ..Settings::default()
    };
    let engine = Engine::open(url, settings).await.unwrap();
    engine
        .accounts
        .register("erin", PASSWORD, None)
        .await
        .unwrap();
    for _ in 0..3 {
        let err = engine
            .accounts
            .login("erin", "Wrong-1a", "3.3.3.3")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidCredentials));
    }
    let err = engine
        .accounts
        .login("ERIN", PASSWORD, "4.4.4.4")
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
        .register("frank", PASSWORD, None)
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
        .register("grace", PASSWORD, None)
        .await
        .unwrap();
    let token = first.tokens.issue(&grace).unwrap();
    assert_eq!(second.tokens.verify(&token).unwrap().sub, grace.id.0);
}

async fn parallel_guesses_are_all_counted_by_the_throttle(url: String) {
    let settings = Settings {
        throttle: Limits {
            per_username: 3,
            per_client: 1000,
            window: Duration::from_secs(60),
        },
        ..Settings::default()
    };
    let engine = Engine::open(&url, settings).await.unwrap();
    engine.register("mallory", PASSWORD, None).await.unwrap();
    let guesses = (0..20).map(|i| {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .accounts
                .login("mallory", &format!("Guess-{i}-aA"), "6.6.6.6")
                .await
        })
    });
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
