//! The webhooks we receive: Stripe's (verified by `Stripe-Signature`) and M-Pesa's results
//! (verified by the secret token in the path). Both answer in the shape their sender expects.

use crate::app::App;
use crate::crypto::constant_time_eq;
use crate::error::{Error, Result};
use crate::http::body::json_value;
use crate::http::reply::Reply;
use crate::http::request::Req;
use crate::limits::{REFUSED_UNVERIFIED_LINES_PER_S, STRIPE_TOLERANCE_S};
use crate::service::webhooks::{self, CallbackOutcome};
use crate::wire::daraja::parse_callback;
use crate::wire::stripe::{self, SignatureError};
use serde_json::json;

/// `POST /webhooks/stripe`.
pub fn stripe(app: &App, req: &Req) -> Result<Reply> {
    let Some(secret) = app.config.stripe_webhook_secret.clone() else {
        refused_unverified(|| {
            log::warn!("Stripe webhook refused: REMIT_STRIPE_WEBHOOK_SECRET is not set, so no event can be verified")
        });
        return Err(Error::Unauthenticated);
    };
    let header = req.stripe_signature().ok_or(Error::MissingField {
        field: "Stripe-Signature".into(),
    })?;
    match stripe::verify_signature(
        header,
        &req.body,
        &secret,
        crate::time::now_unix(),
        STRIPE_TOLERANCE_S,
    ) {
        Ok(()) => {}
        Err(SignatureError::Malformed) => {
            return Err(Error::invalid(
                "Stripe-Signature",
                "must carry exactly one t= (a Unix time in whole seconds) and at least one v1=",
            ))
        }
        Err(e) => {
            refused_unverified(|| log::warn!("Stripe webhook refused: its signature {e}"));
            return Err(Error::BadSignature);
        }
    }
    // Checked once the sender is known to be Stripe: a forged event learns nothing from it.
    // Said in the log: a refused event is Stripe's to send again, but only this line says why.
    req.require_json().inspect_err(|_| {
        log::warn!("Stripe event refused: its content type is not application/json, or it has a Content-Encoding")
    })?;
    let event = stripe::Event::parse(json_value(&req.body, "the event")?)?;
    if event.livemode != app.config.stripe_livemode {
        log::warn!(
            "Stripe event refused: REMIT_STRIPE_LIVEMODE is {} and the event is not of that mode (livemode {})",
            app.config.stripe_livemode,
            if event.livemode { "true" } else { "false, or not said as a boolean" }
        );
        return Err(Error::invalid(
            "livemode",
            // Said of what it must be: an event without `livemode`, or with `"true"` as text,
            // was told it "is false".
            if app.config.stripe_livemode {
                "must be true: this server takes live-mode events only"
            } else {
                "must be false: this server takes test-mode events only"
            },
        ));
    }
    let kind = event.kind.clone();
    let raw = req.body.clone();
    let outcome = app
        .store
        .write(move |ctx| webhooks::apply_stripe_event(ctx, &event, &raw))?;
    log::info!("stripe event {kind}: {outcome}");
    Ok(Reply::json(
        200,
        &json!({"received": true, "outcome": outcome.to_string()}),
    ))
}

/// `POST /webhooks/payouts/:token` (and `/webhooks/mpesa/:token`).
pub fn mpesa(app: &App, req: &Req) -> Result<Reply> {
    mpesa_caller(app, req)?;
    // Said in the log: M-Pesa does not send a result again, and its payout waits for its
    // status to be asked.
    req.require_json().inspect_err(|_| {
        log::warn!("M-Pesa result refused: its content type is not application/json, or it has a Content-Encoding")
    })?;
    let queue_timeout = req.query("timeout").is_some();
    let callback = match json_value(&req.body, "the callback")
        .and_then(|body| parse_callback(&body, queue_timeout))
    {
        Ok(callback) => callback,
        // A queue timeout's body is documented nowhere (the wire-format reference, 2.4): one
        // that names no payout is kept as it came and acknowledged, as M-Pesa's callbacks
        // are; its payout is asked about when its result does not come. (It was refused
        // `400` and kept nowhere.)
        Err(e) if queue_timeout => {
            let raw = req.body.clone();
            app.store
                .write(move |ctx| webhooks::keep_unread_timeout(ctx, &raw))?;
            log::warn!("M-Pesa queue timeout not read ({e}): kept as it came; its payout is asked about when its result does not come");
            return Ok(accepted());
        }
        Err(e) => return Err(e),
    };
    let raw = req.body.clone();
    // Shared with the writer's command, so that the words below are made only when said.
    let callback = std::sync::Arc::new(callback);
    let applied = std::sync::Arc::clone(&callback);
    let alert = app.config.float_alert;
    let paying = match app.config.gateway {
        crate::config::GatewayKind::Simulator => Some(webhooks::Paying::Simulator),
        crate::config::GatewayKind::Daraja(_) => Some(webhooks::Paying::Daraja),
        crate::config::GatewayKind::None => None,
    };
    let outcome = app
        .store
        .write(move |ctx| webhooks::apply_payout_callback(ctx, &applied, &raw, alert, paying))?;
    // Its ids and receipt, for the operator to match a result for an unknown payout (one made
    // in a ledger a restore replaced) with M-Pesa's statement: no personal data.
    let named = || unknown_payout_words(&callback);
    match outcome {
        CallbackOutcome::UnknownPayout => {
            let named = named();
            log::warn!("M-Pesa callback for an unknown payout ({named}): kept as it came, not applied; after a restore, it may be the result of a payout of the replaced ledger: settle that payment as it says");
            return Err(Error::NotFound { what: "payout" });
        }
        CallbackOutcome::NotSent => {
            log::warn!("M-Pesa callback for a payout not sent yet: not applied");
            return Err(Error::NotNow(
                "the payout has not been sent yet: its result cannot be applied".into(),
            ));
        }
        // Said as a warning: whoever posted it holds the result URL's token.
        CallbackOutcome::NotMpesas(_) => {
            let named = named();
            log::warn!("M-Pesa callback ({named}): {outcome}; the result URL's token may be known to someone else");
            return Ok(accepted());
        }
        _ => {}
    }
    log::info!("M-Pesa callback: {outcome}");
    Ok(accepted())
}

/// What M-Pesa's result URL answers a callback it took.
fn accepted() -> Reply {
    Reply::json(200, &json!({"ResultCode": 0, "ResultDesc": "Accepted"}))
}

/// Is this M-Pesa's result URL called by M-Pesa? Its path token (compared in constant time)
/// and, with `REMIT_CALLBACK_ALLOW_IPS`, its address. Needs no body: the server asks it before
/// reading one, so a wrong token is `401` at once and the body is never read.
pub fn mpesa_caller(app: &App, req: &Req) -> Result<()> {
    if !constant_time_eq(req.param(0).as_bytes(), app.callback_token.as_bytes()) {
        refused_unverified(|| log::warn!("M-Pesa callback with a wrong path token refused"));
        return Err(Error::Unauthenticated);
    }
    let allow = &app.config.callback_allow;
    if !allow.is_empty() {
        let client = req.client_ip(app.config.trusted_proxy);
        if !client.is_some_and(|ip| allow.iter().any(|net| net.contains(&ip))) {
            // Answered like a wrong token: a caller learns nothing from the difference.
            refused_unverified(|| {
                log::warn!(
                    "M-Pesa callback from {} refused: not in REMIT_CALLBACK_ALLOW_IPS",
                    client.map_or("an unknown address".to_string(), |ip| ip.to_string())
                )
            });
            return Err(Error::Unauthenticated);
        }
    }
    Ok(())
}

/// The budget of `REFUSED_UNVERIFIED_LINES_PER_S` (`LogBudget`).
static REFUSED_UNVERIFIED: crate::http::server::LogBudget =
    crate::http::server::LogBudget::new(REFUSED_UNVERIFIED_LINES_PER_S);

/// Writes the warning of a webhook call refused before it was verified, within its budget; the
/// lines left out are counted in one line at most once a second.
fn refused_unverified(warn: impl FnOnce()) {
    if REFUSED_UNVERIFIED.admit(false, |n| {
        log::warn!("{n} more webhook calls refused before they were verified were not logged one by one: at most {REFUSED_UNVERIFIED_LINES_PER_S} a second are")
    }) {
        warn();
    }
}

/// A result's ids and receipt as a log line names them (`OriginatorConversationID`,
/// `ConversationID`, the receipt of a success), each cut to 40 characters: they come from
/// outside. An id holds letters, digits, `-` and `_`; one that holds anything else (a space:
/// `RECEIPT FOR ZAWADI KIPROTICH`) or a Kenyan mobile number is said as no id of M-Pesa's, by
/// its length (both reached the log whole until 2026-12-07).
fn unknown_payout_words(callback: &crate::wire::daraja::Callback) -> String {
    let cut = |text: &str| -> String {
        let id_like = text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        match id_like && !crate::domain::holds_a_phone(text) {
            true => text.chars().take(40).collect(),
            false => format!(
                "(not an id of M-Pesa's: {} characters)",
                text.chars().count()
            ),
        }
    };
    let receipt = match &callback.kind {
        crate::wire::daraja::CallbackKind::Success(Some(receipt)) => cut(receipt),
        _ => "none".into(),
    };
    format!(
        "OriginatorConversationID {}, ConversationID {}, receipt {receipt}",
        callback.originator.as_deref().map_or("none".into(), cut),
        callback.conversation.as_deref().map_or("none".into(), cut),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log's words for a result of an unknown payout name its ids, never text that is no
    /// id (a name in the receipt) nor a phone within an id.
    #[test]
    fn an_unknown_payouts_words_hold_ids_only() {
        let body = serde_json::json!({"Result": {"ResultType": 0, "ResultCode": 0,
            "OriginatorConversationID": "nope-0712345678", "ConversationID": "AG_20261207_1",
            "TransactionID": "RECEIPT FOR ZAWADI KIPROTICH"}});
        let callback = crate::wire::daraja::parse_callback(&body, false).unwrap();
        let words = unknown_payout_words(&callback);
        assert!(
            !words.contains("0712345678") && !words.contains("ZAWADI"),
            "{words}"
        );
        assert!(words.contains("AG_20261207_1"), "{words}");
    }
}
