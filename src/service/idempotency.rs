//! Idempotency keys: the first response for (user, key) is stored, encrypted, in the same
//! writer transaction as the change it answers, and replayed verbatim for the same request; the
//! same key with a different request is refused. Kept `IDEMPOTENCY_TTL_S`.

use crate::crypto::{EncryptedColumn, Keys};
use crate::error::{Error, Result};
use crate::limits::{IDEMPOTENCY_KEY_BYTES_MAX, IDEMPOTENCY_TTL_S};
use crate::store::WriteCtx;
use rusqlite::{params, OptionalExtension};

/// A valid `Idempotency-Key` of a user, and the fingerprint of the request it came with, as
/// the file keeps them (`store::idempotency`: under the ledger's secret), and as they were kept
/// until 2026-12-07 (unkeyed digests), so that a retry of a request made before the upgrade
/// still replays it (a key lives `IDEMPOTENCY_TTL_S`).
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    user_id: String,
    /// The key as kept (`stored_key`), and its request's fingerprint under the same secret.
    key: String,
    fingerprint: [u8; 32],
    /// The key as kept until 2026-12-07 (`stored_key_before`): looked up with the other.
    key_before: String,
    /// The request as fingerprinted (its body by what it says) and as sent, byte for byte (as
    /// keys were kept before 2026-12-04): a row of the form before holds the SHA-256 of one of
    /// them, computed only for such a row (`Self::fingerprints_before`).
    request: Vec<u8>,
    sent: Vec<u8>,
}

/// A request body as its fingerprint reads it: a JSON text as its values, each object's fields
/// in the order of their names, a field of `null` left out (the routes read it as absent) and
/// nothing between tokens (numbers as written: `10` and `10.0` stay two requests); no body is
/// `{}`, as routes with an optional body read it; and anything that is not JSON as its bytes
/// (such a body is refused, and its refusal not kept). A client that builds the same request
/// again, from a map whose order changes between runs or with a serialiser of its own, is the
/// same request (Stripe compares parameters too).
fn canonical_body(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use serde_json::Value;
    fn canonical(value: Value) -> Value {
        match value {
            Value::Object(fields) => {
                let mut fields: serde_json::Map<String, Value> = fields
                    .into_iter()
                    .filter(|(_, value)| !value.is_null())
                    .map(|(name, value)| (name, canonical(value)))
                    .collect();
                fields.sort_keys();
                Value::Object(fields)
            }
            Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
            scalar => scalar,
        }
    }
    if body.is_empty() {
        return b"{}".as_slice().into();
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => serde_json::to_vec(&canonical(value)).map_or_else(|_| body.into(), Into::into),
        Err(_) => body.into(),
    }
}

impl IdempotencyKey {
    /// Parses the header (1–255 visible ASCII characters) and fingerprints the request: its
    /// method, path, query and body, a JSON body by what it says (`canonical_body`), not by
    /// how it was spaced or in which order its fields came.
    pub fn parse(
        keys: &Keys,
        header: &str,
        user_id: &str,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Result<IdempotencyKey> {
        let ok = !header.is_empty()
            && header.len() <= IDEMPOTENCY_KEY_BYTES_MAX
            && header.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(Error::invalid(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            ));
        }
        let secret = keys.idempotency_secret()?;
        let parts = |body: &[u8]| -> Vec<u8> {
            [
                method.as_bytes(),
                b" ",
                path.as_bytes(),
                b"?",
                query.as_bytes(),
                b"\n",
                body,
            ]
            .concat()
        };
        let request = parts(&canonical_body(body));
        Ok(IdempotencyKey {
            user_id: user_id.to_string(),
            key: stored_key(secret, header),
            fingerprint: crate::crypto::hmac_sha256(secret, &[&request]),
            key_before: stored_key_before(header),
            request,
            sent: parts(body),
        })
    }

    /// The fingerprints a row kept before 2026-12-07 may hold: of the request by what it says,
    /// and as sent.
    fn fingerprints_before(&self) -> [[u8; 32]; 2] {
        [
            crate::crypto::sha256(&self.request),
            crate::crypto::sha256(&self.sent),
        ]
    }

    /// Does a row of key `stored` and fingerprint `fingerprint` answer this request?
    fn answers(&self, stored: &str, fingerprint: &[u8]) -> bool {
        match stored == self.key_before {
            true => self.fingerprints_before().iter().any(|f| f == fingerprint),
            false => fingerprint == self.fingerprint,
        }
    }
}

pub use crate::store::idempotency::{row_of, stored_key, stored_key_before};

/// A response stored for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// Its HTTP status.
    pub status: u16,
    /// Its JSON body.
    pub body: String,
}

/// What a key says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// First use (or forgotten by housekeeping): run the request.
    New,
    /// The same request ran before: answer this.
    Replay(StoredResponse),
    /// The key was used for a different request.
    Reused,
}

/// Looks the key up, inside the writer transaction that will run the request. A key kept is
/// answered however old its time says it is: only housekeeping forgets one (`purge_expired`).
/// Its age read by the clock of now made a key written seconds before the clock was set days
/// ahead (NTP correcting a slow kiosk) count as forgotten, and its retry record a second cash
/// deposit.
pub fn lookup(ctx: &WriteCtx<'_>, key: &IdempotencyKey) -> Result<Lookup> {
    lookup_in(ctx.conn, ctx.keys, key)
}

/// `lookup` on any connection: outside the writer, for a request refused before it ran
/// (`http::routes`), whose key may have answered it, or another.
pub fn lookup_in(conn: &rusqlite::Connection, keys: &Keys, key: &IdempotencyKey) -> Result<Lookup> {
    let stored: Option<(String, Vec<u8>, u16, String)> = conn
        .prepare_cached(
            "SELECT key, fingerprint, status, body FROM idempotency_keys
             WHERE user_id = ?1 AND key IN (?2, ?3) ORDER BY key = ?2 DESC LIMIT 1",
        )?
        .query_row(params![key.user_id, key.key, key.key_before], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((stored_key, fingerprint, status, body_enc)) = stored else {
        return Ok(Lookup::New);
    };
    if !key.answers(&stored_key, &fingerprint) {
        return Ok(Lookup::Reused);
    }
    let row = row_of(&key.user_id, &stored_key);
    let body = keys.open(EncryptedColumn::IdempotentResponse, &row, &body_enc)?;
    Ok(Lookup::Replay(StoredResponse { status, body }))
}

/// Whether the key already has a stored response (for any request): a handler that does slow
/// work before its command (a DNS lookup) skips it for a request that will be replayed.
pub fn is_stored(conn: &rusqlite::Connection, key: &IdempotencyKey) -> Result<bool> {
    Ok(stored_fingerprint(conn, key)?.is_some())
}

/// The fingerprint of the request the key answered, if it is kept (read outside the writer;
/// as `lookup`, whatever its age).
fn stored_fingerprint(
    conn: &rusqlite::Connection,
    key: &IdempotencyKey,
) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached(
            "SELECT fingerprint FROM idempotency_keys WHERE user_id = ?1 AND key IN (?2, ?3)
             ORDER BY key = ?2 DESC LIMIT 1",
        )?
        .query_row(params![key.user_id, key.key, key.key_before], |r| r.get(0))
        .optional()?)
}

/// Stores the first response to the key's request, encrypted (responses hold PII).
pub fn remember(ctx: &WriteCtx<'_>, key: &IdempotencyKey, response: &StoredResponse) -> Result<()> {
    let body_enc = ctx.keys.seal(
        EncryptedColumn::IdempotentResponse,
        &row_of(&key.user_id, &key.key),
        &response.body,
    )?;
    ctx.conn
        .prepare_cached(
            "INSERT OR REPLACE INTO idempotency_keys (user_id, key, fingerprint, status, body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            key.user_id,
            key.key,
            key.fingerprint.as_slice(),
            response.status,
            body_enc,
            ctx.at()
        ])?;
    Ok(())
}

/// Deletes keys older than the retention time (housekeeping), counted back from now less what
/// the clock was set ahead since the start (`time::set_ahead_s`): a key written just before a
/// slow clock was set days ahead is kept its whole time, not forgotten at the next pass.
///
/// Keys are kept in the order they came (their rowid, schema 21), so the expired ones are the
/// oldest rows: the purge walks them to the first one still kept rather than reading every key
/// (an hour's pass over 48 hours of keys held the writer). A key whose time is more than a day
/// ahead of the clock (written on a clock set ahead, then set right) is no place to stop: it is
/// passed over, and forgotten once its own time is past.
pub fn purge_expired(ctx: &WriteCtx<'_>) -> Result<usize> {
    let cutoff = crate::time::rfc3339(ctx.now - IDEMPOTENCY_TTL_S - crate::time::set_ahead_s());
    let ahead = crate::time::rfc3339(ctx.now + 86_400);
    Ok(ctx
        .conn
        .prepare_cached(PURGE)?
        .execute(params![cutoff, ahead])?)
}

/// Whether the newest key kept was written within the hour before `now` by this clock (not
/// after it either): the clock agrees with the one the server ran on last, so a purge at the
/// start forgets only what that clock would have. A clock set days ahead at this start (a
/// board without its clock battery) reads the last keys as days old; a server stopped for more
/// than an hour is not told from it, and waits the hour as such a start does.
pub fn newest_key_within_the_hour(conn: &rusqlite::Connection, now: i64) -> Result<bool> {
    let newest: Option<String> = conn
        .prepare_cached("SELECT created_at FROM idempotency_keys ORDER BY rowid DESC LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let (from, to) = (crate::time::rfc3339(now - 3_600), crate::time::rfc3339(now));
    Ok(newest.is_some_and(|at| from <= at && at <= to))
}

/// `purge_expired`'s statement: `?1` the newest time forgotten, `?2` a day ahead of the clock.
const PURGE: &str = "DELETE FROM idempotency_keys WHERE created_at <= ?1 AND rowid < COALESCE(
    (SELECT rowid FROM idempotency_keys WHERE created_at > ?1 AND created_at <= ?2
     ORDER BY rowid LIMIT 1), 9223372036854775807)";

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys of a ledger of its own, for keys made outside a store's writer.
    fn test_keys() -> &'static Keys {
        static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
        KEYS.get_or_init(|| {
            let master = crate::crypto::MasterKey::from_hex(&"17".repeat(32)).unwrap();
            let keys = Keys::new(&master);
            keys.keep_idempotency_secret([7; 32]);
            keys
        })
    }

    fn parse(
        header: &str,
        user_id: &str,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Result<IdempotencyKey> {
        IdempotencyKey::parse(test_keys(), header, user_id, method, path, query, body)
    }

    /// A key kept before bodies were fingerprinted by what they say (by its SHA-256, its
    /// fingerprint the SHA-256 of the body as sent): the same bytes still replay; the same
    /// request spaced otherwise is told apart, as it was then.
    #[test]
    fn a_key_kept_by_the_body_as_sent_still_replays_its_request() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path());
        let sent = br#"{ "b": 1,  "a": "x" }"#;
        let key = |keys: &Keys, body: &[u8]| {
            IdempotencyKey::parse(keys, "k-1", "usr_1", "POST", "/p", "", body).unwrap()
        };
        let answer = StoredResponse {
            status: 201,
            body: "{}".into(),
        };
        let kept = answer.clone();
        store
            .write(move |ctx| {
                let old = key(ctx.keys, sent);
                let body = ctx.keys.seal(
                    EncryptedColumn::IdempotentResponse,
                    &row_of("usr_1", &old.key_before),
                    &kept.body,
                )?;
                ctx.conn.execute(
                    "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body, created_at)
                     VALUES ('usr_1', ?1, ?2, 201, ?3, ?4)",
                    params![
                        old.key_before,
                        old.fingerprints_before()[1].as_slice(),
                        body,
                        ctx.at()
                    ],
                )?;
                Ok(())
            })
            .unwrap();
        let found = |body: &'static [u8]| {
            store
                .write(move |ctx| lookup(ctx, &key(ctx.keys, body)))
                .unwrap()
        };
        assert_eq!(found(sent), Lookup::Replay(answer));
        assert_eq!(found(br#"{"a": "x", "b": 1}"#), Lookup::Reused);
        assert_eq!(found(br#"{ "b": 2,  "a": "x" }"#), Lookup::Reused);
    }

    /// A key whose time says it is days old (written just before a slow clock was set ahead) is
    /// answered as long as it is kept: it counted as forgotten, and its retry ran again (a cash
    /// deposit recorded twice). Housekeeping forgets it only past its time and what the clock
    /// was set ahead since the start.
    #[test]
    fn a_key_kept_is_answered_whatever_its_time_says() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path());
        let key = || parse("cash-1", "usr_1", "POST", "/p", "", b"{}").unwrap();
        let answer = StoredResponse {
            status: 201,
            body: "{\"receipt\":\"D1\"}".into(),
        };
        let kept = answer.clone();
        store
            .write(move |ctx| remember(ctx, &key(), &kept))
            .unwrap();
        let aged = |days: i64| {
            let at = crate::time::rfc3339(crate::time::now_unix() - days * 86_400);
            store
                .write(move |ctx| {
                    ctx.conn
                        .execute("UPDATE idempotency_keys SET created_at = ?1", [&at])?;
                    Ok(())
                })
                .unwrap();
        };
        aged(3);
        assert_eq!(
            store.write(move |ctx| lookup(ctx, &key())).unwrap(),
            Lookup::Replay(answer)
        );
        assert!(is_stored(&store.reader().unwrap(), &key()).unwrap());
        // Past its time (and the clock not set ahead since the start): forgotten.
        assert_eq!(store.write(purge_expired).unwrap(), 1);
        assert_eq!(
            store.write(move |ctx| lookup(ctx, &key())).unwrap(),
            Lookup::New
        );
    }

    /// Guards against: forgetting the expired keys read every key kept (and the page each
    /// answer spilled into), in the writer's turn. Keys are kept in the order they came, and the
    /// purge walks the oldest to the first one still kept; a key whose time is far ahead (a
    /// clock set ahead, then right) is passed over, not a place to stop, and kept its time.
    #[test]
    fn the_purge_forgets_the_oldest_keys_up_to_the_first_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path());
        let now = crate::time::now_unix();
        // In the order they came: days before now (negative: ahead of it).
        let ages = [
            ("a", 3),
            ("b", 3),
            ("ahead", -10),
            ("c", 3),
            ("fresh", 0),
            ("late", 3),
        ];
        for (name, days) in ages {
            let key = parse(name, "usr_1", "POST", "/p", "", b"{}").unwrap();
            let at = crate::time::rfc3339(now - days * 86_400);
            let answer = StoredResponse {
                status: 201,
                body: "{}".into(),
            };
            store
                .write(move |ctx| {
                    remember(ctx, &key, &answer)?;
                    ctx.conn.execute(
                        "UPDATE idempotency_keys SET created_at = ?1 WHERE rowid = last_insert_rowid()",
                        [&at],
                    )?;
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(store.write(purge_expired).unwrap(), 3);
        let kept = |name: &str| {
            let key = parse(name, "usr_1", "POST", "/p", "", b"{}").unwrap();
            is_stored(&store.reader().unwrap(), &key).unwrap()
        };
        for (name, stays) in [
            ("a", false),
            ("b", false),
            ("ahead", true),
            ("c", false),
            ("fresh", true),
            // Behind a key still kept: forgotten once that one is.
            ("late", true),
        ] {
            assert_eq!(kept(name), stays, "{name}");
        }
        // The rows deleted are found by their place, not by reading every key.
        let plan = store
            .read(|conn, _| Ok(crate::store::query_plan(conn, PURGE, ["", ""])))
            .unwrap();
        assert!(
            plan.iter()
                .any(|s| s.contains("USING INTEGER PRIMARY KEY (rowid<?)")),
            "{plan:#?}"
        );
    }

    /// A key is kept by its keyed digest, never as sent (`Idempotency-Key: +254712345678` kept
    /// a phone readable in the file) nor as its plain SHA-256 (undone by trying every phone: 211
    /// s in Python for one shape); one kept as sent before is turned so at the next open, and
    /// one kept by its SHA-256 before 2026-12-07 is still found: each answer still replayed to
    /// a retry.
    #[test]
    fn a_key_is_kept_by_its_digest_and_one_kept_as_sent_before_still_replays() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path());
        let key = |keys: &Keys, header: &str| {
            IdempotencyKey::parse(keys, header, "usr_1", "POST", "/p", "", b"{}").unwrap()
        };
        let answer = StoredResponse {
            status: 201,
            body: "{\"receipt\":\"D1\"}".into(),
        };
        let kept = answer.clone();
        store
            .write(move |ctx| remember(ctx, &key(ctx.keys, "+254712345678"), &kept))
            .unwrap();
        // As the remit before kept them: one key as sent, one by its SHA-256, each answer
        // sealed under its key.
        let before = answer.clone();
        store
            .write(move |ctx| {
                for (header, stored) in [
                    ("0799111222", "0799111222".to_string()),
                    ("dep-254733987654", stored_key_before("dep-254733987654")),
                ] {
                    let body = ctx.keys.seal(
                        EncryptedColumn::IdempotentResponse,
                        &row_of("usr_1", &stored),
                        &before.body,
                    )?;
                    ctx.conn.execute(
                        "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body, created_at)
                         VALUES ('usr_1', ?1, ?2, 201, ?3, ?4)",
                        params![
                            stored,
                            key(ctx.keys, header).fingerprints_before()[0].as_slice(),
                            body,
                            ctx.at()
                        ],
                    )?;
                }
                ctx.conn.execute(
                    "DELETE FROM meta WHERE key = 'idempotency_keys_hashed'",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
        store.close();
        drop(store);
        let store = crate::store::open_for_test(dir.path());
        let kept: Vec<String> = store
            .read(|conn, _| {
                crate::store::all_rows(conn, "SELECT key FROM idempotency_keys", [], |r| {
                    Ok(r.get(0)?)
                })
            })
            .unwrap();
        assert_eq!(kept.len(), 3);
        let plain = |header: &str| stored_key_before(header);
        // The new one by its keyed digest; the ones of before in the form of their time (the
        // one kept as sent made so), since their fingerprints are.
        assert!(!kept.contains(&plain("+254712345678")), "{kept:?}");
        assert!(
            kept.contains(&plain("0799111222")) && kept.contains(&plain("dep-254733987654")),
            "{kept:?}"
        );
        assert!(
            kept.iter().any(|k| k.starts_with("hmac ") && k.len() == 69),
            "{kept:?}"
        );
        for header in ["+254712345678", "0799111222", "dep-254733987654"] {
            assert_eq!(
                store
                    .write(move |ctx| lookup(ctx, &key(ctx.keys, header)))
                    .unwrap(),
                Lookup::Replay(answer.clone()),
                "{header}"
            );
        }
        // The same key with another request is refused in either form.
        let other = |keys: &Keys, header: &str| {
            IdempotencyKey::parse(keys, header, "usr_1", "POST", "/p", "", br#"{"x":1}"#).unwrap()
        };
        for header in ["+254712345678", "dep-254733987654"] {
            assert_eq!(
                store
                    .write(move |ctx| lookup(ctx, &other(ctx.keys, header)))
                    .unwrap(),
                Lookup::Reused,
                "{header}"
            );
        }
        store.close();
        let file = std::fs::read(dir.path().join("test.db")).unwrap();
        for phone in [&b"712345678"[..], b"799111222"] {
            assert!(!file.windows(phone.len()).any(|w| w == phone));
        }
    }

    #[test]
    fn a_body_is_fingerprinted_by_what_it_says() {
        let same = [
            &br#"{"b": [1, {"y": "\u00e9", "x": null}], "a": "500.25"}"#[..],
            br#"{"a":"500.25","b":[1,{"x":null,"y":"\u00e9"}]}"#,
            "{\n  \"a\" : \"500.25\",\t\"b\": [1, {\"x\": null, \"y\": \"\u{e9}\"}]\n}".as_bytes(),
        ];
        for body in &same[1..] {
            assert_eq!(canonical_body(body), canonical_body(same[0]));
        }
        let different = [
            &br#"{"a": "500.26", "b": [1, {"x": null, "y": "\u00e9"}]}"#[..],
            br#"{"a": "500.25", "b": [{"x": null, "y": "\u00e9"}, 1]}"#,
            br#"{"a": 500.25, "b": [1, {"x": null, "y": "\u00e9"}]}"#,
        ];
        for body in different {
            assert_ne!(canonical_body(body), canonical_body(same[0]));
        }
        assert_eq!(canonical_body(b""), canonical_body(b"{ }"));
        // A field of null is a field not given, as the routes read it.
        assert_eq!(
            canonical_body(br#"{"a": "1", "note": null, "b": [null, {"c": null}]}"#),
            canonical_body(br#"{"b": [null, {}], "a": "1"}"#)
        );
        assert_eq!(&*canonical_body(b"{not json"), b"{not json");
    }
}
