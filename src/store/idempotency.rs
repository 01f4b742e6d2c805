//! How the file keeps an idempotency key and names its stored response: the store's own
//! backfill, the integrity check and key rotation read them as the service writes them.

/// How a key is kept: its SHA-256, never the key itself (a client's key may hold what the file
/// must not keep readable, a phone, a name). The space makes it what no header can be (a key is
/// visible ASCII), so a key kept as sent before (`store::backfill::idempotency_keys`) is told
/// apart.
pub fn stored_key(header: &str) -> String {
    format!(
        "sha256 {}",
        crate::crypto::hex(&crate::crypto::sha256(header.as_bytes()))
    )
}

/// The name a stored response is encrypted under (its associated data): the user and the key.
pub fn row_of(user_id: &str, key: &str) -> String {
    format!("{user_id}.{key}")
}
