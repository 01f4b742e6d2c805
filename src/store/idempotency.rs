//! How the file keeps an idempotency key and names its stored response: the store's own
//! backfill, the integrity check and key rotation read them as the service writes them.
//!
//! A key, and the request it came with, are kept as HMAC-SHA256 digests under a secret of the
//! ledger (`secret_of`), never as sent: a client's key may hold a phone or a name, and an
//! unkeyed digest of one is undone by trying every phone (10^8 of one shape, minutes on a
//! laptop: keys were kept so until 2026-12-07, `sha256 …`, and such a row is still found
//! for its retention time).

use crate::crypto::{hex, hmac_sha256, sha256};

/// The label the secret is derived under from the ledger's first audit key.
const SECRET_LABEL: &[u8] = b"remit idempotency keys v1";

/// The secret a ledger keeps its idempotency keys under: derived from its first audit key,
/// which only its master key unwraps and which key rotation rewraps, unchanged (a key kept
/// before a rotation is found after it).
pub fn secret_of(first_audit_key: &crate::audit::AuditKey) -> [u8; 32] {
    first_audit_key.derive(SECRET_LABEL)
}

/// How a key is kept: its HMAC under the ledger's secret. The space makes it what no header
/// can be (a key is visible ASCII), so a key kept as sent before
/// (`store::backfill::idempotency_keys`) is told apart.
pub fn stored_key(secret: &[u8; 32], header: &str) -> String {
    format!("hmac {}", hex(&hmac_sha256(secret, &[header.as_bytes()])))
}

/// How a key was kept until 2026-12-07: its SHA-256.
pub fn stored_key_before(header: &str) -> String {
    format!("sha256 {}", hex(&sha256(header.as_bytes())))
}

/// The name a stored response is encrypted under (its associated data): the user and the key.
pub fn row_of(user_id: &str, key: &str) -> String {
    format!("{user_id}.{key}")
}
