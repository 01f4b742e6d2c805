//! Short codes people read out and type: an escrow's deposit reference (`shortRef`) and a cash
//! deposit's receipt number. Capitals and digits without the look-alikes 0/O and 1/I, typed in
//! any case, with or without the dash they are shown with (`K7M3-Q9P2`).

use crate::error::{Error, Result};
use rusqlite::{Connection, OptionalExtension};

/// The 32 characters a code is made of.
const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Characters of an escrow's short reference (40 bits).
pub const SHORT_REF_LEN: usize = 8;
/// Tries at a code not already taken before giving up (each clash has odds of 1 in 10⁶ or
/// less at a million escrows).
const TRIES: usize = 8;

/// `len` random characters of the alphabet.
pub fn random_code(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    crate::crypto::fill_random(&mut bytes);
    // 256 is a multiple of 32: every character is equally likely.
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// A new code not yet in `column` of `table` (both names from our own code, never input).
pub fn unique_code(
    conn: &Connection,
    table: &str,
    column: &str,
    prefix: &str,
    len: usize,
) -> Result<String> {
    let sql = format!("SELECT 1 FROM {table} WHERE {column} = ?1");
    let mut taken = conn.prepare_cached(&sql)?;
    for _ in 0..TRIES {
        let code = format!("{prefix}{}", random_code(len));
        if taken.query_row([&code], |_| Ok(())).optional()?.is_none() {
            return Ok(code);
        }
    }
    Err(Error::internal(format!("no free code in {table}.{column}")))
}

/// A code as a person typed it: case and dashes or spaces ignored; `len` characters of the
/// alphabet, else an error naming `field`.
pub fn parse_code(field: &str, input: &str, len: usize) -> Result<String> {
    let code: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if code.len() == len && code.bytes().all(|b| ALPHABET.contains(&b)) {
        Ok(code)
    } else {
        Err(Error::invalid(
            field,
            format!("must be a code of {len} letters and digits, like K7M3-Q9P2"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_made_of_the_alphabet_and_read_back_in_any_case() {
        let code = random_code(SHORT_REF_LEN);
        assert_eq!(code.len(), SHORT_REF_LEN);
        let typed = format!("{}-{}", &code[..4], &code[4..]).to_lowercase();
        assert_eq!(parse_code("ref", &typed, SHORT_REF_LEN).unwrap(), code);
        for bad in ["K7M3-Q9P", "K7M3-Q9P0", "O7M3Q9P2", "K7M3Q9P2X", ""] {
            assert!(parse_code("ref", bad, SHORT_REF_LEN).is_err(), "{bad}");
        }
    }
}
