//! Prefixed, time-ordered ids, one type per kind of object (`EscrowId`, `PayoutId`, …), so that a
//! payout id can never be passed where an escrow id is meant. A client-supplied id that does not
//! have the shape of its kind cannot exist, so parsing it fails with `404`, not `400`.

use crate::error::{Error, Result};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha12Rng;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use std::cell::RefCell;
use std::fmt;

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Characters of an id after its prefix: 10 of milliseconds, 16 of randomness.
const ID_BODY_CHARS: usize = 26;

thread_local! {
    /// Each thread's source of ids' randomness: ChaCha12 keyed once per thread from the
    /// operating system's CSPRNG (as `rand`'s own thread generator is), so that an id costs no
    /// system call: a `getrandom` per id was 2.3 % of the writer's profile, two per approval.
    /// Ids must be unguessable, not secret; keys, nonces and tokens still come straight from
    /// the operating system (`crypto::fill_random`).
    static ID_RANDOM: RefCell<ChaCha12Rng> = RefCell::new(ChaCha12Rng::from_entropy());
    /// The thread's last id, as a number: the next is always greater.
    static LAST_ID: std::cell::Cell<u128> = const { std::cell::Cell::new(0) };
}

/// Random bits added to the last id when the next falls in the same millisecond.
const SAME_MS_STEP_BITS: u32 = 40;

/// A new time-ordered id: prefix, `_`, 10 characters of milliseconds and 16 of randomness
/// (Crockford base32, lowercase), so ids sort by creation time and index inserts append. Ids
/// made by one thread always increase: one in the same millisecond as the last (or after the
/// clock stepped back) is the last plus one plus 40 random bits, so that the events of one
/// transaction (all made by the writer's thread) sort in the order they happened, and stay
/// unguessable.
fn new_id(prefix: &str) -> String {
    let mut random = [0u8; 10];
    ID_RANDOM.with(|rng| rng.borrow_mut().fill_bytes(&mut random));
    let ms = crate::time::now_unix_ms().max(0) as u128;
    let random = random
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    let value = LAST_ID.with(|last| {
        let fresh = (ms << 80) | random;
        let value = if fresh > last.get() {
            fresh
        } else {
            last.get() + 1 + (random & ((1u128 << SAME_MS_STEP_BITS) - 1))
        };
        last.set(value);
        value
    });
    let mut out = String::with_capacity(prefix.len() + 1 + ID_BODY_CHARS);
    out.push_str(prefix);
    out.push('_');
    for i in (0..ID_BODY_CHARS).rev() {
        let idx = ((value >> (i * 5)) & 31) as usize;
        out.push(CROCKFORD[idx] as char);
    }
    out
}

/// Which bytes are Crockford base32 digits (lowercase): a table, because ids are checked on
/// every column read and a search of the alphabet per byte showed in profiles.
const IS_CROCKFORD: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < CROCKFORD.len() {
        table[CROCKFORD[i] as usize] = true;
        i += 1;
    }
    table
};

/// Has `text` the shape of an id with this prefix?
fn has_shape(prefix: &str, text: &str) -> bool {
    text.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| {
            body.len() == ID_BODY_CHARS && body.bytes().all(|b| IS_CROCKFORD[usize::from(b)])
        })
}

/// Has `text` the shape of one of remit's ids, of any kind (`esc_…`, `usr_…`): a prefix of
/// lowercase letters, `_`, and the body every id has. What the access log keeps of a path's
/// parameter (`http::request::Req::loggable_path_of`).
pub fn is_id_shaped(text: &str) -> bool {
    text.split_once('_').is_some_and(|(prefix, _)| {
        (2..=4).contains(&prefix.len())
            && prefix.bytes().all(|b| b.is_ascii_lowercase())
            && has_shape(prefix, text)
    })
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix of this kind of id, without the underscore.
            const PREFIX: &'static str = $prefix;

            /// A new, unique, time-ordered id.
            #[allow(clippy::new_without_default)]
            pub fn new() -> $name {
                $name(new_id(Self::PREFIX))
            }

            /// Parses a client-supplied id; one of another shape cannot exist: `404`.
            #[allow(dead_code)] // not every kind of id comes from a client
            pub fn parse(text: &str) -> Result<$name> {
                if has_shape(Self::PREFIX, text) {
                    Ok($name(text.to_string()))
                } else {
                    Err(Error::NotFound { what: $what })
                }
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Has `text` the shape of this kind of id (a cursor of a list of them)?
            #[allow(dead_code)] // not every kind of id is listed
            pub fn is_shaped(text: &str) -> bool {
                has_shape(Self::PREFIX, text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0.as_bytes())))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<$name> {
                let text = value.as_str()?;
                if has_shape($prefix, text) {
                    Ok($name(text.to_string()))
                } else {
                    Err(FromSqlError::Other(
                        format!(concat!("not a ", $what, " id: {:?}"), text).into(),
                    ))
                }
            }
        }
    };
}

id_type!(
    /// `usr_…`: a user.
    UserId, "usr", "user"
);
id_type!(
    /// `esc_…`: an escrow.
    EscrowId, "esc", "escrow"
);
id_type!(
    /// `cat_…`: a spending category of an escrow.
    CategoryId, "cat", "category"
);
id_type!(
    /// `pr_…`: a payment request.
    PaymentRequestId, "pr", "payment request"
);
id_type!(
    /// `po_…`: a payout.
    PayoutId, "po", "payout"
);
id_type!(
    /// `dep_…`: a deposit.
    DepositId, "dep", "deposit"
);
id_type!(
    /// `whe_…`: a webhook delivery received.
    WebhookEventId, "whe", "webhook event"
);

id_type!(
    /// `evt_…`: an event of the outbox.
    EventId, "evt", "event"
);
id_type!(
    /// `we_…`: a webhook endpoint events are posted to.
    WebhookEndpointId, "we", "webhook endpoint"
);
id_type!(
    /// `dlv_…`: one event's delivery to one webhook endpoint.
    DeliveryId, "dlv", "webhook delivery"
);
id_type!(
    /// `sms_…`: a text message.
    SmsId, "sms", "SMS"
);

impl PayoutId {
    /// Our `OriginatorConversationID` at Daraja: the id without its prefix (26 lowercase
    /// alphanumerics, unique, and time-ordered so that its index only ever appends).
    pub fn originator_conversation_id(&self) -> &str {
        &self.0[Self::PREFIX.len() + 1..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_made_by_one_thread_always_increase() {
        let ids: Vec<String> = (0..20_000).map(|_| new_id("evt")).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.iter().all(|id| has_shape("evt", id)));
    }

    #[test]
    fn ids_are_prefixed_checked_and_time_ordered() {
        let a = EscrowId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = EscrowId::new();
        assert!(a.as_str().starts_with("esc_") && a.as_str().len() == 30);
        assert!(a < b);
        assert!(EscrowId::parse(a.as_str()).is_ok());
        assert!(PaymentRequestId::parse(a.as_str()).is_err());
        assert!(EscrowId::parse("esc_../../etc/passwd").is_err());
        assert!(matches!(
            EscrowId::parse("esc_x"),
            Err(Error::NotFound { what: "escrow" })
        ));
    }

    /// Each thread keys its own generator: ids made in the same millisecond by many threads,
    /// and many by one, never repeat, and their random parts differ from thread to thread.
    #[test]
    fn ids_made_at_once_by_many_threads_are_all_different() {
        let threads: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(|| (0..5_000).map(|_| PayoutId::new()).collect::<Vec<_>>()))
            .collect();
        let ids: Vec<PayoutId> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let distinct: std::collections::HashSet<&str> =
            ids.iter().map(|id| &id.as_str()[13..]).collect();
        assert_eq!(distinct.len(), ids.len(), "the random parts repeat");
    }

    #[test]
    fn the_originator_conversation_id_is_the_payout_id_without_its_prefix() {
        let id = PayoutId::new();
        assert_eq!(
            format!("po_{}", id.originator_conversation_id()),
            id.as_str()
        );
    }
}
