//! Keyset cursors for paged lists (history, closed channels): the sort key of the
//! last row a page showed, handed to clients as an opaque hex string. The next
//! page starts strictly after that key, so rows added meanwhile never shift it and
//! no row is shown twice. It owns the encoding only; each list reads its own key.

use crate::{Error, Result};

/// Most rows one page may ask for.
pub const MAX_LIMIT: usize = 500;
/// Rows a page holds when the client does not say.
pub const DEFAULT_LIMIT: usize = 100;

/// Hex of the key's fields joined by `:`. Only the last field may contain `:`.
pub fn encode(fields: &[&str]) -> String {
    hex::encode(fields.join(":"))
}

/// The `count` fields of a cursor this server gave; anything else is a client
/// mistake answered with the field `cursor`.
pub fn decode(cursor: &str, count: usize) -> Result<Vec<String>> {
    let refused = || Error::invalid("cursor", "cursor is not one this server gave");
    // A key is a few hundred bytes at most; a longer text is not ours.
    if cursor.len() > 1024 {
        return Err(refused());
    }
    let bytes = hex::decode(cursor.trim()).map_err(|_| refused())?;
    let text = String::from_utf8(bytes).map_err(|_| refused())?;
    let fields: Vec<String> = text.splitn(count, ':').map(str::to_string).collect();
    // Keys are plain text (numbers, hex, outpoints): a control character, which
    // PostgreSQL would refuse in a query anyway, means the cursor was forged.
    if fields.len() != count || fields.iter().any(|f| f.chars().any(char::is_control)) {
        return Err(refused());
    }
    Ok(fields)
}

/// A page size from query text: empty means [`DEFAULT_LIMIT`], else 1 to
/// [`MAX_LIMIT`]. Nothing else, not even blanks: the API's schema admits a number
/// or the empty text.
pub fn parse_limit(text: &str) -> Result<usize> {
    if text.is_empty() {
        return Ok(DEFAULT_LIMIT);
    }
    match text.parse::<usize>() {
        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        _ => Err(Error::invalid(
            "limit",
            format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_its_fields_and_nothing_else_passes() {
        let cursor = encode(&["1700000000000", "sent", "ab12:0"]);
        assert_eq!(
            decode(&cursor, 3).unwrap(),
            ["1700000000000", "sent", "ab12:0"]
        );
        assert_eq!(
            decode(&cursor, 2).unwrap(),
            ["1700000000000", "sent:ab12:0"]
        );
        for bad in [
            "zz",
            "abc",
            &encode(&["1", "sent"]),
            &hex::encode([0xff, 0xfe]),
            &encode(&["1", "sent", "a\nb"]),
            &"ab".repeat(600),
        ] {
            let err = decode(bad, 3).unwrap_err();
            assert_eq!(err.field(), Some("cursor"), "{bad}");
        }
    }

    #[test]
    fn a_limit_is_one_to_five_hundred() {
        assert_eq!(parse_limit("").unwrap(), DEFAULT_LIMIT);
        assert_eq!(parse_limit("1").unwrap(), 1);
        assert_eq!(parse_limit("500").unwrap(), 500);
        for bad in [
            "0",
            "501",
            "-1",
            "ten",
            "1.5",
            "99999999999999999999999",
            " ",
            "\u{a0}",
            " 5",
        ] {
            assert_eq!(
                parse_limit(bad).unwrap_err().field(),
                Some("limit"),
                "{bad}"
            );
        }
    }
}
