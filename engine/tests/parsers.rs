//! Every parser of outside text, attacked: property tests (proptest) that each one
//! never panics and that what it accepts round-trips, and a checked-in corpus of
//! nasty inputs (`corpus/nasty-inputs.jsonl`: a multi-byte character at every
//! byte offset of a real invoice, huge numbers, NUL and control characters, very
//! long strings) run through all of them. Failures proptest finds are kept in
//! `proptest-regressions/parsers.txt` and replayed first on every run (the first
//! one: an invoice amount above what BOLT11 can write answered 500).
//!
//! The app crate runs the same corpus through its own parsers (QR text, JSON
//! amounts). Regenerate the corpus after changing [`nasty_inputs`] with
//! `AMPERE_WRITE_CORPUS=1 cargo test --release -p engine --test parsers`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use engine::desk::contract::Price;
use engine::simnet::invoice::{self, MAX_INVOICE_AMOUNT, MAX_MEMO_BYTES, MAX_MEMO_CHARS};
use engine::simnet::{parse_node_id, NodeKey};
use engine::wallet::HistoryFilter;
use engine::{Denomination, Msat, Unit, UsdRate, Username, MAX_MONEY};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const CORPUS: &str = "tests/corpus/nasty-inputs.jsonl";

/// A real regtest invoice (1234 sat, memo "coffee ☕"), signed by the simnet: the
/// corpus breaks it at every byte. Its expiry is long past, which decoding does
/// not check.
const REAL_INVOICE: &str = "lnbcrt12340n1p4sm6kanp4qteqv9lgzhcmleftgtnam4jq4lxxt7en3xf8phez59352vsxpy5ukdqsvdhkven9v5sw9xy4pp5c4r4eek6d587mutvkg5dxwhypzgx4uzpt8c6q6gyfmr42dmac3vssp55rp8nvf2qxg9k2tusrrjfl3g7gxrtx7x7k8g7s562usssxlc3f8q9qrsgqcqpjxqrrssqdapax7hpmvu9gxmswh992as65kwky5rehq3c0lj9zmm4v7rtk5rutnr97puhnxf9au36cwa0dkmjyutq0yt008cue3yx0p0kjactfcp58lq04";

/// Characters of 2, 3 and 4 bytes in UTF-8.
const MULTI_BYTE: [&str; 3] = ["é", "☕", "😀"];

/// The corpus, as generated; `corpus/nasty-inputs.jsonl` holds exactly this.
fn nasty_inputs() -> Vec<String> {
    let mut inputs: Vec<String> = Vec::new();
    let pasted = format!("lightning:{REAL_INVOICE}@127.0.0.1:9735");
    inputs.push(REAL_INVOICE.to_string());
    inputs.push(pasted.clone());
    inputs.push(pasted.to_uppercase());
    // A multi-byte character at every byte offset of the pasted invoice (every
    // offset is a character boundary: it is ASCII), each width near the scheme's
    // 10th byte.
    for offset in 0..=pasted.len() {
        let widths: &[&str] = if offset <= 12 {
            &MULTI_BYTE
        } else {
            &MULTI_BYTE[offset % 3..offset % 3 + 1]
        };
        for c in widths {
            let mut broken = pasted.clone();
            broken.insert_str(offset, c);
            inputs.push(broken);
        }
    }
    for head in [
        "lightning",
        "LIGHTNING:",
        "lightnin",
        "lightning:lightning:",
    ] {
        for c in MULTI_BYTE {
            inputs.push(format!("{head}{c}{REAL_INVOICE}"));
            inputs.push(format!("{head}{c}"));
        }
    }
    inputs.push(REAL_INVOICE[..REAL_INVOICE.len() - 1].to_string());
    inputs.push(format!("{REAL_INVOICE}{REAL_INVOICE}"));
    inputs.push(format!("{REAL_INVOICE}@"));
    inputs.push(format!("@{REAL_INVOICE}"));
    // Numbers: huge, tiny, signed, exotic.
    for number in [
        "1.0000000000000000001",
        "0.0000000000000000001",
        "21000000.00000000001",
        "2100000000000000000",
        "2100000000000000001",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "18446744073709551616",
        "340282366920938463463374607431768211456",
        "1e3",
        "1E-7",
        "1e308",
        "1e99999999",
        "-1e99999999",
        "-0",
        "-0.0",
        "+1",
        "0x10",
        "1_000",
        "1,5",
        "1..5",
        ".",
        "..",
        "-",
        "NaN",
        "inf",
        "-Infinity",
        "１２３",
        "١٢٣",
        "½",
        "1\u{0}",
        "٫5",
    ] {
        inputs.push(number.to_string());
    }
    inputs.push("9".repeat(400));
    inputs.push(format!("0.{}1", "0".repeat(400)));
    inputs.push(format!("1{}", "0".repeat(100)));
    inputs.push(format!(".{}", "9".repeat(50)));
    inputs.push(format!("{}.", "0".repeat(5000)));
    // NUL, control and invisible characters.
    for control in [
        "\u{0}",
        "a\u{0}b",
        "\u{7}bell",
        "\r\n",
        "\t",
        "\u{1b}[31mred",
        "\u{7f}",
        "\u{85}",
        "\u{202e}evil",
        "\u{feff}bom",
        "\u{200b}",
        "\u{3000}",
        "\u{fffd}",
        " ",
        "",
    ] {
        inputs.push(control.to_string());
    }
    // Node ids, hosts and dates broken the same ways.
    let node = "03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad";
    inputs.push(node.to_string());
    inputs.push(node.to_uppercase());
    inputs.push(format!("{node}@"));
    inputs.push(format!("{node}@@@"));
    inputs.push(format!("{node}@{}", "é".repeat(40)));
    inputs.push(format!("02{}", "é".repeat(32)));
    inputs.push(format!("0{}", "😀".repeat(16)));
    inputs.push("@".to_string());
    for date in [
        "2026-02-29",
        "2024-02-29",
        "9999-12-31",
        "0000-01-01",
        "2é6-01-01",
        "2026-é-01",
        "2026-01-é",
        "2026-01-01-01",
        "-2026-01-01",
        "+2026-01-01",
    ] {
        inputs.push(date.to_string());
    }
    // Long strings.
    inputs.push("x".repeat(5000));
    inputs.push("😀".repeat(2000));
    inputs.push(format!("lnbcrt{}", "q".repeat(5000)));
    inputs.push(format!("lightning:{}", "é".repeat(3000)));
    inputs.push("a".repeat(33));
    inputs.push("é".repeat(MAX_MEMO_CHARS));
    inputs.push("😀".repeat(MAX_MEMO_BYTES / 4 + 1));
    let mut seen = std::collections::HashSet::new();
    inputs.retain(|input| seen.insert(input.clone()));
    inputs
}

fn read_corpus() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON string a line"))
        .collect()
}

#[test]
fn the_checked_in_corpus_is_the_generated_one() {
    let generated = nasty_inputs();
    if std::env::var_os("AMPERE_WRITE_CORPUS").is_some() {
        let lines: Vec<String> = generated
            .iter()
            .map(|input| serde_json::to_string(input).unwrap())
            .collect();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }
    assert_eq!(
        read_corpus(),
        generated,
        "regenerate with AMPERE_WRITE_CORPUS=1"
    );
}

/// Runs `parse` on `input`, naming the input if it panics.
fn survives<T>(parser: &str, input: &str, parse: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(parse)).unwrap_or_else(|_| {
        panic!(
            "{parser} panicked on {:?}",
            input.chars().take(120).collect::<String>()
        )
    })
}

/// Every parser of outside text, on one input: none panics, and what each
/// accepts is within its rules.
fn every_parser(input: &str) {
    if let Ok(decoded) = survives("invoice::decode", input, || invoice::decode(input)) {
        assert!(decoded.amount.is_none_or(|a| a.is_within_supply()));
        assert!(decoded.bolt11.starts_with("lnbcrt"));
    }
    let usd = Unit::Usd(UsdRate::new(Price::from_cents(1_234_567), 0, false).unwrap());
    for unit in Unit::BITCOIN.into_iter().chain([usd]) {
        let parsed = survives("parse_amount", input, || unit.parse_amount("amount", input));
        if let Ok(amount) = parsed {
            assert!(amount.is_within_supply(), "{input:?} -> {amount:?}");
        }
    }
    survives("Denomination::parse", input, || Denomination::parse(input)).ok();
    if let Ok(id) = survives("parse_node_id", input, || parse_node_id(input)) {
        assert_eq!(id.len(), 66);
    }
    if let Ok(name) = survives("Username::parse", input, || Username::parse(input)) {
        assert!((3..=32).contains(&name.as_str().len()));
    }
    survives("check_password_rule", input, || {
        engine::accounts::check_password_rule(input, &["alice"])
    })
    .ok();
    survives("check_memo", input, || invoice::check_memo(input)).ok();
    for (kind, from, to, q) in [
        (input, "", "", ""),
        ("", input, "", ""),
        ("", "", input, ""),
        ("", "", "", input),
        ("", input, input, input),
    ] {
        survives("HistoryFilter::parse", input, || {
            HistoryFilter::parse(kind, from, to, q)
        })
        .ok();
    }
}

#[test]
fn every_parser_survives_every_nasty_input() {
    let corpus = read_corpus();
    assert!(corpus.len() > 300, "{}", corpus.len());
    for input in &corpus {
        every_parser(input);
    }
}

#[test]
fn the_real_invoice_decodes_and_every_broken_copy_is_refused_with_a_reason() {
    let real = invoice::decode(REAL_INVOICE).unwrap();
    assert_eq!(real.amount, Some(Msat::from_sat(1234)));
    assert_eq!(real.memo, "coffee ☕");
    for pasted in [
        format!("lightning:{REAL_INVOICE}@127.0.0.1:9735"),
        format!("LIGHTNING:{}", REAL_INVOICE.to_uppercase()),
    ] {
        assert_eq!(
            invoice::decode(&pasted).unwrap().payment_hash,
            real.payment_hash
        );
    }
    // The byte-slice panic of the scheme check: the 10th byte inside a character.
    for c in MULTI_BYTE {
        for head in ["lightnin", "lightning", "xxxxxxxxx"] {
            let err = invoice::decode(&format!("{head}{c}{REAL_INVOICE}")).unwrap_err();
            assert_eq!(err.field(), Some("invoiceid"), "{head}{c}: {err}");
        }
    }
    // A character anywhere before the QuickPay host breaks the invoice; after
    // the `@` (a host the simnet ignores) it changes nothing.
    let pasted = format!("lightning:{REAL_INVOICE}@127.0.0.1:9735");
    let at = pasted.find('@').unwrap();
    for offset in 0..=pasted.len() {
        for c in MULTI_BYTE {
            let mut broken = pasted.clone();
            broken.insert_str(offset, c);
            match invoice::decode(&broken) {
                Err(err) => {
                    assert!(offset <= at, "{broken}: {err}");
                    assert_eq!(err.field(), Some("invoiceid"), "{broken}: {err}");
                }
                Ok(decoded) => {
                    assert!(offset > at, "{broken} was read");
                    assert_eq!(decoded.payment_hash, real.payment_hash);
                }
            }
        }
    }
}

#[test]
fn an_invoice_of_absurd_expiry_or_amount_is_read_without_overflow() {
    use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let secret = bitcoin::secp256k1::SecretKey::from_slice(&[7; 32]).unwrap();
    let sign = |amount: Option<u64>, expiry: u64| {
        let mut builder = InvoiceBuilder::new(Currency::Regtest)
            .payee_pub_key(secret.public_key(&secp))
            .description("far".into())
            .payment_hash(bitcoin::hashes::Hash::from_byte_array([1; 32]))
            .payment_secret(PaymentSecret([2; 32]))
            .current_timestamp()
            .min_final_cltv_expiry_delta(18)
            .expiry_time(std::time::Duration::from_secs(expiry));
        if let Some(amount) = amount {
            builder = builder.amount_milli_satoshis(amount);
        }
        builder
            .build_signed(|hash| secp.sign_ecdsa_recoverable(hash, &secret))
            .map(|invoice| invoice.to_string())
    };
    // An expiry past the end of time never expires (and never overflows).
    let forever = invoice::decode(&sign(Some(1000), u64::MAX).unwrap()).unwrap();
    assert_eq!(forever.expires_at_ms, i64::MAX);
    // BOLT11 counts in pico-bitcoin in a u64: its largest amount (about 18.4
    // million BTC) is read exactly, below the 21 million every amount is held to.
    let largest = u64::MAX / 10;
    let read = invoice::decode(&sign(Some(largest), 3600).unwrap()).unwrap();
    assert_eq!(read.amount, Some(Msat(largest as i64)));
    assert!(read.amount.unwrap().is_within_supply());
    assert!(sign(Some(largest + 1), 3600).is_err(), "not expressible");
}

/// Text of printable characters of every width (control characters are refused
/// before any other rule, which would hide the rest).
fn printable(max_chars: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            prop::char::range('a', 'z'),
            prop::char::range('\u{e0}', '\u{ff}'),
            prop::char::range('\u{2600}', '\u{26ff}'),
            prop::char::range('\u{1f600}', '\u{1f64f}'),
            Just(' '),
        ],
        0..=max_chars,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Bounded (a few hundred cases each keeps the whole file to a few seconds), and
/// failures kept where they are checked in.
fn bounded() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/parsers.txt",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(bounded())]

    #[test]
    fn no_text_makes_a_parser_panic(input in any::<String>()) {
        every_parser(&input);
    }

    #[test]
    fn no_broken_invoice_makes_decoding_panic(
        offset in 0usize..400,
        cut in 0usize..400,
        inserted in any::<String>(),
    ) {
        let pasted = format!("lightning:{REAL_INVOICE}@127.0.0.1:9735");
        let offset = offset.min(pasted.len());
        let mut broken = pasted.clone();
        broken.insert_str(offset, &inserted);
        let mut cut = cut.max(offset).min(broken.len());
        while !broken.is_char_boundary(cut) {
            cut -= 1;
        }
        broken.truncate(cut);
        every_parser(&broken);
    }

    #[test]
    fn every_memo_the_wallet_accepts_fits_an_invoice_and_reads_back(
        memo in printable(MAX_MEMO_CHARS + 8),
        msat in 1i64..=MAX_MONEY.0,
    ) {
        let key = NodeKey::generate();
        let accepted = invoice::check_memo(&memo).is_ok();
        prop_assert_eq!(
            accepted,
            memo.chars().count() <= MAX_MEMO_CHARS && memo.len() <= MAX_MEMO_BYTES
        );
        let expressible = Msat(msat) <= MAX_INVOICE_AMOUNT;
        match invoice::issue(&key, Some(Msat(msat)), &memo, invoice::DEFAULT_EXPIRY) {
            Ok(issued) => {
                prop_assert!(accepted && expressible);
                let decoded = invoice::decode(&issued.bolt11).unwrap();
                prop_assert_eq!(decoded.memo, memo);
                prop_assert_eq!(decoded.amount, Some(Msat(msat)));
                prop_assert_eq!(decoded.payee, key.pubkey_hex());
                prop_assert_eq!(decoded.payment_hash, issued.payment_hash);
            }
            // Refused before anything is signed or written, as a client error.
            Err(err) => {
                prop_assert!(!accepted || !expressible);
                prop_assert_eq!(err.field(), Some(if accepted { "amount" } else { "memo" }));
            }
        }
    }

    #[test]
    fn amounts_round_trip_in_every_denomination(msat in 0i64..=MAX_MONEY.0) {
        for unit in Unit::BITCOIN {
            let text = unit.format(Msat(msat));
            prop_assert_eq!(unit.parse_amount("amount", &text).unwrap(), Msat(msat));
            // Trailing zeros and leading zeros change nothing.
            let padded = if text.contains('.') { format!("00{text}000") } else { format!("00{text}.000") };
            prop_assert_eq!(unit.parse_amount("amount", &padded).unwrap(), Msat(msat));
        }
    }

    #[test]
    fn decimal_text_parses_exactly_or_is_refused(
        whole in "[0-9]{0,25}",
        fraction in proptest::option::of("[0-9]{0,15}"),
    ) {
        let text = match &fraction {
            Some(f) => format!("{whole}.{f}"),
            None => whole.clone(),
        };
        for unit in Unit::BITCOIN {
            let Ok(amount) = unit.parse_amount("amount", &text) else { continue };
            prop_assert!(amount.is_within_supply());
            // Exact: the formatted amount is the same number as the text.
            let formatted = unit.format(amount);
            let strip = |s: &str| {
                let (w, f) = s.split_once('.').unwrap_or((s, ""));
                (w.trim_start_matches('0').to_string(), f.trim_end_matches('0').to_string())
            };
            prop_assert_eq!(strip(&formatted), strip(&text));
        }
    }

    #[test]
    fn dollars_read_back_as_typed_and_are_never_worth_less(
        cents in 0u64..=10_000_000_000_000,
        index in 1u64..=5_000_000_000,
    ) {
        let usd = Unit::Usd(UsdRate::new(Price::from_cents(index), 0, false).unwrap());
        let typed = format!("{}.{:02}", cents / 100, cents % 100);
        let exact = u128::from(cents) * 100_000_000_000;
        match usd.parse_amount("amount", &typed) {
            Ok(msat) => {
                prop_assert!(msat.is_within_supply());
                let worth = u128::from(msat.0 as u64) * u128::from(index);
                prop_assert!(worth >= exact && worth < exact + u128::from(index));
                prop_assert_eq!(usd.format(msat), typed);
            }
            Err(err) => {
                prop_assert!(exact / u128::from(index) >= MAX_MONEY.0 as u128, "{}", err);
                prop_assert!(err.to_string().contains("21 million BTC"));
            }
        }
    }

    #[test]
    fn node_ids_round_trip_with_or_without_a_host(
        upper in any::<bool>(),
        host in proptest::option::of("[a-z0-9.:\\[\\]é]{0,40}"),
    ) {
        let key = NodeKey::generate().pubkey_hex();
        let typed = if upper { key.to_uppercase() } else { key.clone() };
        let typed = match &host {
            Some(host) => format!(" {typed}@{host} "),
            None => typed,
        };
        prop_assert_eq!(parse_node_id(&typed).unwrap(), key);
    }

    #[test]
    fn usernames_of_the_rule_round_trip(name in "[A-Za-z0-9._-]{3,32}") {
        let parsed = Username::parse(&format!(" {name}\t")).unwrap();
        prop_assert_eq!(parsed.as_str(), name.as_str());
    }

    #[test]
    fn history_days_cover_whole_utc_days(
        year in 1970i64..=9999,
        month in 1i64..=12,
        day in 1i64..=28,
    ) {
        let text = format!("{year:04}-{month:02}-{day:02}");
        let filter = HistoryFilter::parse("", &text, &text, "").unwrap();
        let (from, to) = (filter.from_ms.unwrap(), filter.to_ms.unwrap());
        prop_assert_eq!(to - from, 86_400_000);
        prop_assert_eq!(from.rem_euclid(86_400_000), 0);
    }
}

#[test]
fn checked_money_arithmetic_answers_overflow_instead_of_wrapping() {
    assert_eq!(Msat(i64::MAX).checked_add(Msat(1)), None);
    assert_eq!(Msat(i64::MIN).checked_sub(Msat(1)), None);
    assert_eq!(Msat(i64::MAX / 2).checked_mul(3), None);
    assert_eq!(Msat::checked_from_sat(i64::MAX / 999), None);
    assert_eq!(Msat::checked_from_sat(21), Some(Msat(21_000)));
    assert_eq!(Msat::checked_sum([MAX_MONEY; 5]), None);
    assert_eq!(
        Msat::checked_sum([MAX_MONEY; 4]),
        Some(Msat(4 * MAX_MONEY.0))
    );
    assert_eq!(Msat::checked_sum([]), Some(Msat::ZERO));
    assert!(!Msat::from_sat(i64::MAX).is_within_supply());
    assert!(MAX_MONEY.is_within_supply() && !Msat(MAX_MONEY.0 + 1).is_within_supply());
    assert!(!Msat(-1).is_within_supply());
}
