//! The webhooks remit sends: the body of a delivery (`{"id", "type", "createdAt", "data"}`) and
//! its `Remit-Signature` header, `t=<unix s>,v1=<hex HMAC-SHA256 of "t.body" under the secret>`:
//! Stripe's scheme (`wire::stripe`), so a receiver can reuse its Stripe verification code.

use crate::outbox::Event;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Remit-Signature";

/// The body posted for an event: its id, type, time and data (stored as JSON; spliced as is).
pub fn body(event: &Event) -> Vec<u8> {
    let text = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        r#"{{"id":{},"type":{},"createdAt":{},"data":{}}}"#,
        text(event.id.as_str()),
        text(event.kind.as_str()),
        text(&event.created_at),
        event.data
    )
    .into_bytes()
}

/// The `Remit-Signature` header of `body` at unix time `t` under `secret` (the whole `whsec_…`
/// text is the HMAC key, as with Stripe).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    crate::wire::stripe::sign(secret, t, body)
}

/// Verifies a `Remit-Signature` header as a receiver should: any `v1` may match (secrets can be
/// rolled), comparison in constant time, timestamps older than `tolerance_s` refused.
pub fn verify(
    header: &str,
    body: &[u8],
    secret: &str,
    now: i64,
    tolerance_s: i64,
) -> Result<(), crate::wire::stripe::SignatureError> {
    crate::wire::stripe::verify_signature(header, body, secret, now, tolerance_s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventId, EventType};

    #[test]
    fn the_body_is_the_event_and_its_signature_verifies_like_stripes() {
        let event = Event {
            seq: 1,
            id: EventId::parse("evt_0000000000abcdefghjkmnpqrs").unwrap(),
            kind: EventType::PaymentRequestPaid,
            created_at: "2026-12-01T09:30:00Z".into(),
            data: r#"{"paymentRequestId":"pr_x","amountKesCents":150000}"#.into(),
        };
        let body = body(&event);
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["id"], "evt_0000000000abcdefghjkmnpqrs");
        assert_eq!(parsed["type"], "payment_request.paid");
        assert_eq!(parsed["createdAt"], "2026-12-01T09:30:00Z");
        assert_eq!(parsed["data"]["amountKesCents"], 150000);
        let secret = "whsec_test";
        let header = sign(secret, 1_764_581_400, &body);
        assert!(verify(&header, &body, secret, 1_764_581_400, 300).is_ok());
        assert!(verify(&header, &body, "whsec_other", 1_764_581_400, 300).is_err());
        let mut tampered = body.clone();
        tampered.push(b' ');
        assert!(verify(&header, &tampered, secret, 1_764_581_400, 300).is_err());
        // The same bytes Stripe's own scheme would sign.
        assert_eq!(
            header,
            crate::wire::stripe::sign(secret, 1_764_581_400, &body)
        );
    }
}
