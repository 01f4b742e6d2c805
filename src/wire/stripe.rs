//! Stripe's webhook wire format: the `Stripe-Signature` header (HMAC-SHA256 of `t.rawbody` under
//! the whole `whsec_…` secret, any of several `v1`, `v0` ignored, a tolerance on the
//! timestamp's distance from our clock) and the parts of an event remit reads.

use crate::crypto::{constant_time_eq, hex, hmac_sha256, unhex};
use crate::domain::DepositReversal;
use crate::error::{Error, Result};
use crate::money::UsdCents;
use serde_json::Value;

/// Why a `Stripe-Signature` was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// No `t` (or two), or no `v1`: a malformed header (400).
    Malformed,
    /// No `v1` matches (401).
    Mismatch,
    /// Further from our clock than the tolerance, before or after it (401).
    OutsideTolerance,
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignatureError::Malformed => "malformed",
            SignatureError::Mismatch => "has no v1 that matches under the secret",
            SignatureError::OutsideTolerance => {
                "is dated further from our clock than the tolerance"
            }
        })
    }
}

/// Is this text an id at all (not empty, not only spaces)?
fn is_an_id(id: &str) -> bool {
    !id.trim().is_empty()
}

/// An id as kept: without the white space around it (a PaymentIntent sent as `pi_X` and again
/// as ` pi_X` is one payment: until 2026-12-07 each spelling was a deposit of its own, and a
/// signed event could credit one payment three times), a control character within it (no
/// Stripe id holds one) made U+FFFD, so that no NUL reaches the file; such an id matches
/// nothing of ours.
fn kept_id(id: &str) -> String {
    crate::domain::controls_replaced(id.trim(), '\u{FFFD}')
}

/// Verifies a Stripe signature header over the raw body at time `now`: any `v1` may match,
/// `v0` and other schemes are ignored, comparison is constant-time, and timestamps more than
/// `tolerance_s` before or after `now` are refused. (Stripe's own libraries accept any future
/// timestamp: a signed request captured with one would be replayable until that moment, and
/// Stripe signs each attempt at the time it sends it.)
pub fn verify_signature(
    header: &str,
    body: &[u8],
    secret: &str,
    now: i64,
    tolerance_s: i64,
) -> std::result::Result<(), SignatureError> {
    let mut timestamp: Option<&str> = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            // Two timestamps: which one was signed would be a guess (the last won).
            "t" if timestamp.is_some() => return Err(SignatureError::Malformed),
            "t" => timestamp = Some(value),
            "v1" => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let t: i64 = timestamp.parse().map_err(|_| SignatureError::Malformed)?;
    let expected = hmac_sha256(secret.as_bytes(), &[timestamp.as_bytes(), b".", body]);
    let matched = signatures
        .iter()
        .filter_map(|s| unhex(s))
        .fold(false, |any, candidate| {
            any | constant_time_eq(&candidate, &expected)
        });
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    if now.abs_diff(t) > tolerance_s.unsigned_abs() {
        return Err(SignatureError::OutsideTolerance);
    }
    Ok(())
}

/// A Stripe signature header for `body` at `t` (for tests and the demo).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    format!(
        "t={t},v1={}",
        hex(&hmac_sha256(
            secret.as_bytes(),
            &[t.to_string().as_bytes(), b".", body]
        ))
    )
}

/// A verified event, as far as remit reads it.
#[derive(Debug, Clone)]
pub struct Event {
    /// `evt_…`: the dedupe key.
    pub id: String,
    /// `payment_intent.succeeded`, …
    pub kind: String,
    /// Whether it comes from live mode (`false` for test mode, and when absent).
    pub livemode: bool,
    /// The whole event.
    pub body: Value,
}

impl Event {
    /// Reads a (verified) event: it must have an `id`, the key it is applied once by.
    pub fn parse(body: Value) -> Result<Event> {
        let id = body
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_an_id(id))
            .map(kept_id)
            .ok_or_else(|| Error::invalid("id", "the event has no id"))?;
        let kind = body
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let livemode = body
            .get("livemode")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Event {
            id,
            kind,
            livemode,
            body,
        })
    }

    /// The `PaymentIntent` of a `payment_intent.*` event, read leniently: what is missing or
    /// unreadable is `None`, for the caller to decide.
    pub fn payment_intent(&self) -> PaymentIntent {
        let intent = &self.body["data"]["object"];
        // What was collected, never what was asked for (`amount`): an event without it has
        // no amount to credit.
        let amount = intent
            .get("amount_received")
            .map(|v| v.to_string())
            .and_then(|text| text.parse::<i64>().ok())
            .filter(|c| chargeable(*c, intent.get("currency")))
            .and_then(UsdCents::new);
        let metadata = &intent["metadata"];
        // Both spellings, naming two escrows: neither is guessed (the money is flagged for an
        // admin to attribute).
        // (A spelling whose value is `null` names none.)
        let named = |key: &str| metadata.get(key).filter(|v| !v.is_null());
        let escrow_ids_differ = matches!(
            (named("escrowId"), named("escrow_id")),
            (Some(a), Some(b)) if a != b
        );
        // An event says what its object is, and a PaymentIntent whether it has succeeded; one
        // that says otherwise (a `charge`, `status: "processing"`) credits nothing.
        let said =
            |field: &str, want: &str| intent.get(field).is_none_or(|v| v.as_str() == Some(want));
        let not_succeeded = if !said("object", "payment_intent") {
            Some(format!(
                "the event's object is {}, not a payment_intent",
                intent["object"]
            ))
        } else if !said("status", "succeeded") {
            Some(format!(
                "the PaymentIntent's status is {}, not succeeded",
                intent["status"]
            ))
        } else {
            None
        };
        PaymentIntent {
            not_succeeded,
            id: intent
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| is_an_id(id))
                .map(kept_id),
            amount,
            currency: intent
                .get("currency")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            escrow_id: (!escrow_ids_differ)
                .then(|| named("escrowId").or_else(|| named("escrow_id")))
                .flatten()
                .and_then(Value::as_str)
                .map(str::to_string),
            escrow_ids_differ,
        }
    }

    /// What a `charge.refunded` or `charge.dispute.created` event says of the payment it takes
    /// money back from. The PaymentIntent is the key (a Charge's and a Dispute's
    /// `payment_intent`): whether PaymentIntent metadata is copied to them is not confirmed.
    pub fn reversal(&self) -> Option<Reversal> {
        let object = &self.body["data"]["object"];
        // An empty id names no payment (two such events must not become one deposit), and
        // a zero amount is no amount.
        let payment_intent = object
            .get("payment_intent")
            .and_then(Value::as_str)
            .filter(|id| is_an_id(id))
            .map(kept_id)?;
        let cents = |field: &str| {
            object
                .get(field)
                .and_then(Value::as_i64)
                .filter(|c| chargeable(*c, object.get("currency")))
                .and_then(UsdCents::new)
        };
        // A Charge's and a Dispute's `currency`: the amounts are in its smallest unit.
        let currency = object.get("currency").and_then(Value::as_str).unwrap_or("");
        match self.kind.as_str() {
            "charge.refunded" => Some(Reversal {
                payment_intent: payment_intent.to_string(),
                currency: currency.to_string(),
                kind: DepositReversal::Refunded,
                amount: cents("amount_refunded"),
                full: object.get("refunded").and_then(Value::as_bool) == Some(true),
                reason: None,
            }),
            "charge.dispute.created" => Some(Reversal {
                payment_intent: payment_intent.to_string(),
                currency: currency.to_string(),
                kind: DepositReversal::Disputed,
                amount: cents("amount"),
                full: false,
                // Stripe's words for why (`fraudulent`); anything else cleaned as M-Pesa's
                // words are: no control character, no phone.
                // Stripe's reason is one of its words (`fraudulent`, `product_not_received`…):
                // anything else (free text, which may name the cardholder) is not kept, in
                // the file or the log (it was, its phones masked, until 2026-12-07).
                reason: object.get("reason").and_then(Value::as_str).map(|r| {
                    let word = !r.is_empty()
                        && r.len() <= 64
                        && r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
                    match word {
                        true => r.to_string(),
                        false => "one that is not a Stripe reason, not kept".to_string(),
                    }
                }),
            }),
            _ => None,
        }
    }
}

/// Money Stripe takes (or may take) back from a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reversal {
    /// `pi_…`: the deposit's reference.
    pub payment_intent: String,
    /// The Charge's (or Dispute's) `currency` as Stripe names it (`""` when it names none).
    pub currency: String,
    /// Refund or dispute.
    pub kind: DepositReversal,
    /// How much, in the smallest unit of `currency` (cents of a dollar): a refund's
    /// cumulative `amount_refunded`, a dispute's `amount`.
    pub amount: Option<UsdCents>,
    /// A refund of the whole charge.
    pub full: bool,
    /// A dispute's reason (`fraudulent`, …).
    pub reason: Option<String>,
}

impl Reversal {
    /// One sentence for the operator.
    pub fn describe(&self) -> String {
        let amount = self.amount.map_or("an unknown amount".to_string(), |a| {
            amount_in(a, &self.currency)
        });
        match self.kind {
            DepositReversal::Refunded if self.full => {
                format!("Stripe refunded the whole charge ({amount})")
            }
            DepositReversal::Refunded => format!("Stripe refunded {amount} of the charge"),
            DepositReversal::Disputed => format!(
                "the cardholder disputed {amount} (reason: {})",
                self.reason.as_deref().unwrap_or("not given")
            ),
        }
    }
}

/// The largest amount Stripe charges in US dollars, in cents: eight digits (USD 999,999.99).
/// One larger is no amount Stripe can have charged (9,223,372,036,854,775,807 cents was
/// flagged as a deposit of that much, and said as a whole refund): read as none.
pub const USD_AMOUNT_MAX: i64 = 99_999_999;

/// Is `amount` (an object's, in the smallest unit of its `currency`) one Stripe can have
/// charged: positive, and within eight digits in dollars. Another currency's amount (whose
/// money is never credited, only flagged for an admin) is not bounded here: Stripe's bound
/// differs by currency (more digits where a unit is worth little). An amount whose currency
/// is not named is bounded as dollars: a refund or dispute that names none is read in its
/// deposit's currency, dollars for any deposit that was credited (such a refund of 2^63 - 1
/// cents was taken as dollars, and the sum of a cancelled escrow's refunds overflowed at its
/// next one, every later refund refused with a 500).
fn chargeable(amount: i64, currency: Option<&Value>) -> bool {
    let named = currency.and_then(Value::as_str).filter(|c| !c.is_empty());
    amount > 0 && (named.is_some_and(|c| c != "usd") || amount <= USD_AMOUNT_MAX)
}

/// An amount of a Stripe object in the smallest unit of its `currency`, said for a person: in
/// dollars when it is (`USD 50.00`), else as Stripe gave it, never as dollars (JPY 5,000 is
/// not USD 50.00): `5000 in the smallest unit of "jpy"`.
pub fn amount_in(amount: UsdCents, currency: &str) -> String {
    match currency {
        "usd" => amount.display(),
        "" => format!(
            "{} in the smallest unit of a currency not named",
            amount.get()
        ),
        other => format!(
            "{} in the smallest unit of {}",
            amount.get(),
            Value::from(other)
        ),
    }
}

/// A PaymentIntent's fields that make a deposit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIntent {
    /// `pi_…`: the deposit's reference.
    pub id: Option<String>,
    /// `amount_received` in cents, if readable and positive.
    pub amount: Option<UsdCents>,
    /// Why the object is not a succeeded PaymentIntent, if it says it is not.
    pub not_succeeded: Option<String>,
    /// Lowercase ISO code (`usd`).
    pub currency: String,
    /// `metadata.escrowId` (or `escrow_id`); `None` when the two name different escrows.
    pub escrow_id: Option<String>,
    /// `metadata.escrowId` and `metadata.escrow_id` are both there and differ.
    pub escrow_ids_differ: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_remit_test_7f3a9c2e5b1d4f60";
    const BODY: &str = r#"{"id":"evt_test_remit_0001","object":"event","api_version":"2024-06-20","created":1735689600,"livemode":false,"type":"payment_intent.succeeded","data":{"object":{"id":"pi_test_remit_0001","object":"payment_intent","amount":5000,"amount_received":5000,"currency":"usd","status":"succeeded","metadata":{"escrow_id":"esc_000042"}}}}"#;
    const HEADER: &str =
        "t=1735689600,v1=fd9854f01e732042e856d681caf0f68ef0bb3bd6a406700f4336561c43782a0b";

    #[test]
    fn the_reference_stripe_vector_verifies() {
        assert_eq!(BODY.len(), 329);
        assert_eq!(
            hex(&crate::crypto::sha256(BODY.as_bytes())),
            "3243923568045b0dc7c1e798d87d7c0f8aae8e41a511d1e98e372f7c1c4d2b26"
        );
        assert_eq!(
            verify_signature(HEADER, BODY.as_bytes(), SECRET, 1_735_689_600, 300),
            Ok(())
        );
        assert_eq!(
            verify_signature(HEADER, BODY.as_bytes(), SECRET, 1_735_689_900, 300),
            Ok(()),
            "exactly 300 s old"
        );
        let rotation = "t=1735689600,v1=8560dc74c96218f71c2f5d2eb811c8566a8c3265f54656f734fb292bac17e23c,v1=fd9854f01e732042e856d681caf0f68ef0bb3bd6a406700f4336561c43782a0b,v0=0000000000000000000000000000000000000000000000000000000000000000";
        assert_eq!(
            verify_signature(rotation, BODY.as_bytes(), SECRET, 1_735_689_600, 300),
            Ok(())
        );
        assert_eq!(sign(SECRET, 1_735_689_600, BODY.as_bytes()), HEADER);
    }

    #[test]
    fn the_reference_negative_vectors_fail() {
        let tampered = BODY.replace("\"amount\":5000", "\"amount\":9000");
        assert_eq!(
            verify_signature(HEADER, tampered.as_bytes(), SECRET, 1_735_689_600, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(
                HEADER,
                BODY.as_bytes(),
                "remit_test_7f3a9c2e5b1d4f60",
                1_735_689_600,
                300
            ),
            Err(SignatureError::Mismatch)
        );
        let newline = format!("{BODY}\n");
        assert_eq!(
            verify_signature(HEADER, newline.as_bytes(), SECRET, 1_735_689_600, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(HEADER, BODY.as_bytes(), SECRET, 1_735_689_901, 300),
            Err(SignatureError::OutsideTolerance)
        );
        // As far ahead of our clock: refused too; within the tolerance either way, taken.
        assert_eq!(
            verify_signature(HEADER, BODY.as_bytes(), SECRET, 1_735_689_299, 300),
            Err(SignatureError::OutsideTolerance)
        );
        for now in [1_735_689_300, 1_735_689_900] {
            assert_eq!(
                verify_signature(HEADER, BODY.as_bytes(), SECRET, now, 300),
                Ok(())
            );
        }
        let only_v0 =
            "t=1735689600,v0=fd9854f01e732042e856d681caf0f68ef0bb3bd6a406700f4336561c43782a0b";
        assert_eq!(
            verify_signature(only_v0, BODY.as_bytes(), SECRET, 1_735_689_600, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature("v1=ab", BODY.as_bytes(), SECRET, 1_735_689_600, 300),
            Err(SignatureError::Malformed)
        );
        // Two timestamps, the signed one either first or last: which was meant is not guessed.
        for twice in [
            format!("t=1735689000,{HEADER}"),
            HEADER.replacen(",v1", ",t=1735689000,v1", 1),
        ] {
            assert_eq!(
                verify_signature(&twice, BODY.as_bytes(), SECRET, 1_735_689_600, 300),
                Err(SignatureError::Malformed),
                "{twice}"
            );
        }
    }

    /// A dispute's reason is kept only as one of Stripe's words: free text may name the
    /// cardholder.
    #[test]
    fn a_dispute_reason_that_is_not_stripes_word_is_not_kept() {
        let reason = |said: &str| {
            let body = serde_json::json!({"id": "evt_d", "type": "charge.dispute.created",
                "data": {"object": {"payment_intent": "pi_1", "amount": 500, "currency": "usd",
                    "reason": said}}});
            Event::parse(body)
                .unwrap()
                .reversal()
                .unwrap()
                .reason
                .unwrap()
        };
        assert_eq!(reason("product_not_received"), "product_not_received");
        for free in [
            "fraudulent: cardholder Baraka +254733987654",
            "Fraudulent",
            "",
        ] {
            assert_eq!(
                reason(free),
                "one that is not a Stripe reason, not kept",
                "{free}"
            );
        }
    }
}
