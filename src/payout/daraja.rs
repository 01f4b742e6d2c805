//! The real M-Pesa: Daraja over HTTPS (DESIGN.md, "The Daraja gateway"). One OAuth token shared
//! by every thread, renewed a minute before it expires and once more on an invalid-token answer;
//! B2C for phones, B2B `BusinessPayBill` / `BusinessBuyGoods` for PayBills and Tills; every
//! synchronous answer classified; Transaction Status and Account Balance queries. Every call is
//! logged with what came back, never with a secret, a token or a phone number.

use super::gateway::{Ack, CallbackUrls, Gateway, GatewayError, StatusQuery};
use crate::config::DarajaConfig;
use crate::domain::{MerchantAccount, PayoutCommand};
use crate::limits::{
    DARAJA_ANSWER_BYTES_MAX, DARAJA_CONNECT_TIMEOUT_MS, DARAJA_TOKEN_KEPT_MAX_S,
    DARAJA_TOKEN_RENEW_EARLY_S,
};
use crate::service::payouts::PayoutJob;
use crate::wire::daraja::requests::{
    self, B2bRequest, B2cRequest, BalanceRequest, StatusRequest, SyncAnswer,
};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Daraja's error code for an access token it does not know (any more).
const INVALID_TOKEN: &str = "404.001.03";
/// Daraja's error code for an `OriginatorConversationID` it has seen before.
const DUPLICATE: &str = "500.002.1001";

/// A token in hand and when to renew it.
struct Token {
    value: String,
    renew_at: Instant,
}

/// Why a call went wrong before Daraja answered it.
#[derive(Debug)]
pub enum CallError {
    /// The OAuth credentials were refused (wrong consumer key or secret).
    Credentials(String),
    /// No answer, or one that could not be read: the call may have been processed.
    Transport(String),
    /// The call never reached Daraja: no access token could be had, the connection could not be
    /// opened, or its access token was refused twice.
    Unsent(String),
}

/// Daraja's gateway turned the call away before processing it: spike arrest, quota.
const TURNED_AWAY: [&str; 2] = ["500.003.02", "500.003.03"];

/// Did a call fail before its request could leave (no connection made)? Then nothing of it
/// reached Daraja. An error once connected (a reset, a timeout waiting for the answer) may
/// come after Daraja took the request.
fn before_sending(e: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    match e {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
        ureq::Error::Timeout(t) => matches!(t, ureq::Timeout::Resolve | ureq::Timeout::Connect),
        ureq::Error::Io(io) => matches!(
            io.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::NetworkUnreachable
                | ErrorKind::HostUnreachable
                | ErrorKind::AddrNotAvailable
        ),
        _ => false,
    }
}

/// The Daraja client.
pub struct Daraja {
    config: DarajaConfig,
    agent: ureq::Agent,
    token: Mutex<Option<Token>>,
}

/// `text` with the path token of every result URL in it (`…/webhooks/payouts/{token}`, what
/// `CallbackUrls::under` sends as `ResultURL` and `QueueTimeOutURL`) replaced by `[redacted]`;
/// `None` when it names none. An error message quoting a URL it refused would otherwise carry
/// the only secret that guards the callbacks.
fn redact_callback_tokens(text: &str) -> Option<String> {
    const PATH: &str = "/webhooks/payouts/";
    if !text.contains(PATH) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(PATH) {
        let (before, after) = rest.split_at(at + PATH.len());
        out.push_str(before);
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-._~%".contains(c)))
            .unwrap_or(after.len());
        if end > 0 {
            out.push_str("[redacted]");
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    Some(out)
}

/// An answer and its HTTP status.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Daraja {
    /// A client for this configuration (no call is made yet).
    pub fn new(config: DarajaConfig) -> Daraja {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                // Daraja answers where it is asked: a redirect is an answer (not a token, not
                // an acceptance), never followed to another host, whose answer remit would
                // have taken for Daraja's (a token was).
                .max_redirects(0)
                .timeout_global(Some(config.timeout))
                .timeout_connect(Some(
                    config
                        .timeout
                        .min(Duration::from_millis(DARAJA_CONNECT_TIMEOUT_MS)),
                ))
                .user_agent("remit")
                .build(),
        );
        Daraja {
            config,
            agent,
            token: Mutex::new(None),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.url.trim_end_matches('/'))
    }

    fn read(response: ureq::http::Response<ureq::Body>) -> Result<Answer, CallError> {
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .with_config()
            .limit(DARAJA_ANSWER_BYTES_MAX)
            .read_to_vec()
            .map_err(|e| CallError::Transport(format!("reading the answer: {e}")))?;
        Ok(Answer { status, body })
    }

    /// The consumer key and secret in OAuth's Basic form (base64 of `key:secret`).
    fn basic(&self) -> String {
        use base64::Engine;
        let c = &self.config;
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", c.consumer_key, c.consumer_secret))
    }

    /// `body` with every secret remit sent Daraja (the access token, the consumer key and
    /// secret, their Basic form, the security credential, and the path token of the result
    /// URLs) replaced by `[redacted]`, so that an answer echoing them reaches neither the log
    /// nor a payout's description (which the request's owners read); and, in the words kept of
    /// an answer (`FREE_TEXT_FIELDS`) once the secrets are out of them, the payee's account and
    /// reference (`payee`, the values of the request's `PartyB` and `AccountReference`) masked
    /// as the views mask them (`***880`): a paybill's number or a till's is no phone, which
    /// M-Pesa's free text masks by its length, and the file holds a payout's words in the
    /// clear. The fields an answer is classified by (`ResponseCode`, `ConversationID`,
    /// `errorCode`) are never masked: a reference `0` or `AG` would have changed them.
    ///
    /// The texts are scrubbed once decoded (a JSON writer may escape a base64 secret's `/` as
    /// `\/`, which a match on the raw bytes would miss), before anything is read of them (a
    /// message is cut to a length when read, which could leave a secret's beginning).
    fn scrubbed(&self, body: Vec<u8>, token: &str, payee: &[String]) -> Vec<u8> {
        let c = &self.config;
        let basic = self.basic();
        let scrub = |mut text: String| {
            for secret in [
                token,
                &basic,
                &c.security_credential,
                &c.consumer_secret,
                &c.consumer_key,
            ] {
                // Short values would match ordinary words: every real one is longer.
                if secret.len() >= 8 && text.contains(secret) {
                    text = text.replace(secret, "[redacted]");
                }
            }
            redact_callback_tokens(&text).unwrap_or(text)
        };
        fn walk(value: &mut serde_json::Value, scrub: &dyn Fn(String) -> String) {
            match value {
                serde_json::Value::String(s) => *s = scrub(std::mem::take(s)),
                serde_json::Value::Array(items) => items.iter_mut().for_each(|v| walk(v, scrub)),
                serde_json::Value::Object(fields) => {
                    fields.values_mut().for_each(|v| walk(v, scrub))
                }
                _ => {}
            }
        }
        // Not JSON: nothing is read of it (it is `Unreadable`).
        let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return body;
        };
        walk(&mut value, &scrub);
        if let serde_json::Value::Object(fields) = &mut value {
            for field in FREE_TEXT_FIELDS {
                if let Some(serde_json::Value::String(text)) = fields.get_mut(*field) {
                    for payee_value in payee {
                        *text = value_masked(text, payee_value);
                    }
                }
            }
        }
        serde_json::to_vec(&value).unwrap_or_default()
    }

    /// A new access token from `GET /oauth/v1/generate`.
    fn fetch_token(&self) -> Result<Token, CallError> {
        let basic = self.basic();
        let sent = Instant::now();
        let response = self
            .agent
            .get(&self.url("/oauth/v1/generate?grant_type=client_credentials"))
            .header("Authorization", &format!("Basic {basic}"))
            .call()
            .map_err(|e| CallError::Transport(format!("OAuth: {e}")))?;
        let answer = Self::read(response)?;
        if matches!(answer.status, 400 | 401 | 403) {
            log::warn!(
                "daraja OAuth refused the consumer key and secret ({})",
                answer.status
            );
            return Err(CallError::Credentials(format!(
                "Daraja refused the consumer key and secret (HTTP {})",
                answer.status
            )));
        }
        if answer.status != 200 {
            return Err(CallError::Transport(format!(
                "OAuth answered {}",
                answer.status
            )));
        }
        let token = requests::token(&answer.body)
            .map_err(|e| CallError::Transport(crate::error::describe(&e)))?;
        log::info!("daraja OAuth: a new token for {} s", token.expires_in_s);
        let renew_in = renew_after_s(token.expires_in_s);
        Ok(Token {
            value: token.access_token,
            renew_at: sent + Duration::from_secs(renew_in),
        })
    }

    /// The shared token: the one in hand unless it is due for renewal (or `renew`), else a new
    /// one. One thread renews while the others wait, so a renewal is never raced (each new token
    /// invalidates the one before).
    fn token(&self, renew: bool) -> Result<String, CallError> {
        // A token slot left by a panic still holds a token or none: either is usable.
        let mut slot = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(token) = slot.as_ref() {
            if !renew && Instant::now() < token.renew_at {
                return Ok(token.value.clone());
            }
        }
        let token = match self.fetch_token() {
            Ok(token) => token,
            // A token that could not be renewed is not offered again: the next call asks for a
            // new one first rather than sending a payment with a token Daraja refuses.
            Err(e) => {
                *slot = None;
                return Err(e);
            }
        };
        let value = token.value.clone();
        *slot = Some(token);
        Ok(value)
    }

    /// POSTs `body` to `path` with the token; on an invalid-token answer, once more with a new
    /// token, if `again` still says so (a payout settled meanwhile is not sent again).
    fn post(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        what: &str,
        again: &dyn Fn() -> bool,
    ) -> Result<(u16, SyncAnswer), CallError> {
        let encoding =
            |e: serde_json::Error| CallError::Transport(format!("encoding the request: {e}"));
        let body = serde_json::to_value(body).map_err(encoding)?;
        let payee = payee_values(&body);
        let body = serde_json::to_vec(&body).map_err(encoding)?;
        for attempt in 0..2 {
            // Without a token no call is made (and a first call refused for its token was not
            // processed): nothing reached Daraja.
            let token = self.token(attempt > 0).map_err(|e| match e {
                CallError::Transport(why) => CallError::Unsent(format!("no access token: {why}")),
                other => other,
            })?;
            let response = self
                .agent
                .post(&self.url(path))
                .header("Authorization", &format!("Bearer {token}"))
                .header("Content-Type", "application/json")
                .send(&body[..])
                .map_err(|e| match before_sending(&e) {
                    true => CallError::Unsent(e.to_string()),
                    false => CallError::Transport(e.to_string()),
                });
            let answer = match response.and_then(Self::read) {
                Ok(answer) => answer,
                Err(CallError::Transport(e)) => {
                    log::warn!("daraja {what}: no answer ({e})");
                    return Err(CallError::Transport(e));
                }
                Err(CallError::Unsent(e)) => {
                    log::warn!("daraja {what}: not sent ({e})");
                    return Err(CallError::Unsent(e));
                }
                Err(other) => return Err(other),
            };
            // An answer that echoes what was sent (an error message quoting the request or its
            // headers) must not carry a secret into the log or a payout's description.
            let sync = requests::sync_answer(&self.scrubbed(answer.body, &token, &payee));
            let invalid_token = answer.status == 401
                || matches!(&sync, SyncAnswer::Error { code, .. } if code == INVALID_TOKEN);
            if invalid_token && attempt == 0 {
                if !again() {
                    log::warn!("daraja {what}: the token was refused, and a result settled it meanwhile: not sent again");
                    return Err(CallError::Unsent(
                        "its call was turned away for its token, and a result settled it meanwhile: not sent again".into(),
                    ));
                }
                log::info!("daraja {what}: the token was refused; renewing it once");
                continue;
            }
            if invalid_token {
                // Turned away by the API gateway before any processing, like the first.
                log::warn!("daraja {what}: a new token was refused too: nothing was processed");
                break;
            }
            log::info!("daraja {what}: {} {}", answer.status, describe(&sync));
            return Ok((answer.status, sync));
        }
        Err(CallError::Unsent(
            "the access token was refused twice".into(),
        ))
    }

    /// Classifies the answer to a request that must be accepted to do anything
    /// (DESIGN.md, "Synchronous answers"). Only a clear refusal lets the money go back: a `4xx`
    /// with a `400.*` `errorCode`. `ResponseCode` `"0"` with a `ConversationID` on a `2xx` is
    /// accepted; `500.002.1001` means an earlier attempt got through. Anything else (a `5xx`,
    /// spike arrest, quota, `"0"` without a `ConversationID`, a `ResponseCode` the reference
    /// does not document, an answer that is not Daraja's, no answer) leaves the outcome unknown:
    /// retried with backoff under the same `OriginatorConversationID`, which Daraja refuses as a
    /// duplicate if the first got through, and then asked about.
    fn classify(answer: Result<(u16, SyncAnswer), CallError>) -> Result<Ack, GatewayError> {
        let (status, sync) = match answer {
            Err(CallError::Credentials(e)) | Err(CallError::Unsent(e)) => {
                return Err(GatewayError::NotSent(e))
            }
            Err(CallError::Transport(e)) => return Err(GatewayError::Transport(e)),
            Ok(answer) => answer,
        };
        match sync {
            SyncAnswer::Error { code, .. } if code == DUPLICATE => Err(GatewayError::Duplicate),
            SyncAnswer::Error { code, message } if TURNED_AWAY.contains(&code.as_str()) => {
                Err(GatewayError::NotSent(format!("{status} {code}: {message}")))
            }
            // A bad request: nothing was accepted, nothing will be paid.
            SyncAnswer::Error { code, message }
                if (400..500).contains(&status) && code.starts_with("400.") =>
            {
                Err(GatewayError::Refused { code, message })
            }
            SyncAnswer::Accepted { conversation_id } if (200..300).contains(&status) => {
                Ok(Ack { conversation_id })
            }
            other => Err(GatewayError::Transport(format!(
                "{status} {}: outcome unknown",
                describe(&other)
            ))),
        }
    }

    /// `remit daraja ping`: a token, then an Account Balance query accepted. One line per
    /// step, and whether both worked.
    pub fn ping(&self, urls: &CallbackUrls) -> (Vec<String>, bool) {
        let mut lines = Vec::new();
        match self.token(true) {
            Ok(_) => lines.push(format!("token: ok ({})", self.config.url)),
            Err(CallError::Credentials(e)) => {
                lines.push(format!("token: FAILED: {e}; check REMIT_DARAJA_CONSUMER_KEY and REMIT_DARAJA_CONSUMER_SECRET"));
                return (lines, false);
            }
            Err(CallError::Transport(e)) | Err(CallError::Unsent(e)) => {
                lines.push(format!(
                    "token: FAILED: no token from {} ({e})",
                    self.config.url
                ));
                return (lines, false);
            }
        }
        match self.query_balance(urls) {
            Some(Ok(ack)) => {
                lines.push(format!(
                    "balance query: ok (accepted as {}; the balances come to the result URL)",
                    ack.conversation_id
                ));
                (lines, true)
            }
            Some(Err(GatewayError::Refused { code, message })) => {
                lines.push(format!("balance query: REFUSED ({code}: {message}); check REMIT_DARAJA_SHORTCODE, REMIT_DARAJA_INITIATOR and the security credential"));
                (lines, false)
            }
            Some(Err(GatewayError::Transport(e))) | Some(Err(GatewayError::NotSent(e))) => {
                lines.push(format!("balance query: FAILED: {e}"));
                (lines, false)
            }
            Some(Err(GatewayError::Duplicate)) => {
                lines.push(
                    "balance query: FAILED: Daraja answered that this query was already submitted"
                        .into(),
                );
                (lines, false)
            }
            None => (lines, false),
        }
    }
}

/// How long a token that lives `expires_in_s` seconds is used before a new one is asked for:
/// until a minute before it expires (DESIGN.md), kept at most a day; one that lives two minutes
/// or less is used for half its life (a minute early would ask for a new token, and void the
/// last, at every call).
fn renew_after_s(expires_in_s: i64) -> u64 {
    let lives = expires_in_s.clamp(0, DARAJA_TOKEN_KEPT_MAX_S);
    if lives > 2 * DARAJA_TOKEN_RENEW_EARLY_S {
        (lives - DARAJA_TOKEN_RENEW_EARLY_S) as u64
    } else {
        (lives / 2) as u64
    }
}

fn describe(answer: &SyncAnswer) -> String {
    match answer {
        SyncAnswer::Accepted { conversation_id } => format!("accepted as {conversation_id}"),
        SyncAnswer::AcceptedWithoutConversation { message } => {
            format!("ResponseCode 0 without a ConversationID ({message})")
        }
        SyncAnswer::NotAccepted { code, message } => format!("ResponseCode {code} ({message})"),
        SyncAnswer::Error { code, message } => format!("error {code}: {message}"),
        SyncAnswer::Unreadable => "an answer that is not Daraja's".into(),
    }
}

impl Gateway for Daraja {
    fn name(&self) -> &'static str {
        "daraja"
    }

    /// B2C v3 refuses a repeated `OriginatorConversationID` (`500.002.1001`); the B2B request
    /// has no such field in Daraja's documentation (remit sends it, but nothing says it is
    /// read), so a B2B call whose answer was lost is asked about, never sent again.
    fn refuses_repeats(&self, command: PayoutCommand) -> bool {
        command == PayoutCommand::B2c
    }

    fn can_query(&self) -> bool {
        true
    }

    fn send(
        &self,
        job: &PayoutJob,
        urls: &CallbackUrls,
        still_due: &dyn Fn() -> bool,
    ) -> Result<Ack, GatewayError> {
        let c = &self.config;
        let amount = job.amount.get() / 100;
        let originator = job.originator_conversation_id();
        let what = format!("{} {}", job.command, job.id);
        let remarks = format!("remit payout {}", job.id);
        let answer = match (&job.account, job.command) {
            (MerchantAccount::Phone(phone), PayoutCommand::B2c) => {
                let party_b = phone.daraja();
                self.post(
                    "/mpesa/b2c/v3/paymentrequest",
                    &B2cRequest {
                        originator_conversation_id: originator,
                        initiator_name: &c.initiator,
                        security_credential: &c.security_credential,
                        command_id: c.b2c_command.as_str(),
                        amount,
                        party_a: &c.shortcode,
                        party_b: &party_b,
                        remarks: &remarks,
                        queue_time_out_url: &urls.queue_timeout,
                        result_url: &urls.result,
                        occassion: job.id.as_str(),
                    },
                    &what,
                    still_due,
                )
            }
            (account, PayoutCommand::B2bPaybill | PayoutCommand::B2bTill) => {
                let command = if job.command == PayoutCommand::B2bPaybill {
                    "BusinessPayBill"
                } else {
                    "BusinessBuyGoods"
                };
                let number = account.number();
                self.post(
                    "/mpesa/b2b/v1/paymentrequest",
                    &B2bRequest {
                        originator_conversation_id: originator,
                        initiator: &c.initiator,
                        security_credential: &c.security_credential,
                        command_id: command,
                        sender_identifier_type: "4",
                        reciever_identifier_type: "4",
                        amount,
                        party_a: &c.shortcode,
                        party_b: &number,
                        account_reference: account.account_reference(),
                        remarks: &remarks,
                        queue_time_out_url: &urls.queue_timeout,
                        result_url: &urls.result,
                    },
                    &what,
                    still_due,
                )
            }
            (_, command) => {
                return Err(GatewayError::Refused {
                    code: "remit".into(),
                    message: format!("a {command} payout must go to a phone"),
                })
            }
        };
        Self::classify(answer)
    }

    fn query_status(
        &self,
        query: &StatusQuery,
        urls: &CallbackUrls,
    ) -> Option<Result<Ack, GatewayError>> {
        let c = &self.config;
        let remarks = format!("status of remit payout {}", query.payout_id);
        let (transaction_id, original) = match &query.receipt {
            Some(receipt) => (Some(receipt.as_str()), None),
            None => (None, Some(query.originator_conversation_id())),
        };
        let answer = self.post(
            "/mpesa/transactionstatus/v1/query",
            &StatusRequest {
                initiator: &c.initiator,
                security_credential: &c.security_credential,
                command_id: "TransactionStatusQuery",
                transaction_id,
                original_conversation_id: original,
                party_a: &c.shortcode,
                identifier_type: "4",
                result_url: &urls.result,
                queue_time_out_url: &urls.queue_timeout,
                remarks: &remarks,
                occasion: query.payout_id.as_str(),
            },
            &format!("transaction status of {}", query.payout_id),
            &|| true,
        );
        Some(Self::classify(answer))
    }

    fn query_balance(&self, urls: &CallbackUrls) -> Option<Result<Ack, GatewayError>> {
        let c = &self.config;
        let answer = self.post(
            "/mpesa/accountbalance/v1/query",
            &BalanceRequest {
                initiator: &c.initiator,
                security_credential: &c.security_credential,
                command_id: "AccountBalance",
                party_a: &c.shortcode,
                identifier_type: "4",
                remarks: "remit float check",
                queue_time_out_url: &urls.queue_timeout,
                result_url: &urls.result,
            },
            "account balance",
            &|| true,
        );
        Some(Self::classify(answer))
    }
}

/// The fields of a synchronous answer whose words remit keeps (`requests::sync_answer`).
const FREE_TEXT_FIELDS: &[&str] = &["errorMessage", "ResponseDescription"];

/// The payee's account number and reference in a request's body (`PartyB`, `AccountReference`),
/// the longest first (a reference may hold the number); values of fewer than 4 characters are
/// left (they would mask ordinary words and numbers of M-Pesa's, and say little of anyone).
fn payee_values(sent: &serde_json::Value) -> Vec<String> {
    let mut values: Vec<String> = ["PartyB", "AccountReference"]
        .iter()
        .filter_map(|field| sent.get(field)?.as_str())
        .map(str::trim)
        .filter(|v| v.chars().count() >= 4)
        .map(str::to_string)
        .collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values
}

/// `text` with each whole occurrence of `value` (not part of a longer word or number: a
/// reference `12` is not found in `2012`) masked as `domain::mask_number` masks it.
fn value_masked(text: &str, value: &str) -> String {
    let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(value) {
        let end = at + value.len();
        let whole = !alnum(rest[..at].chars().next_back()) && !alnum(rest[end..].chars().next());
        out.push_str(&rest[..at]);
        if whole {
            out.push_str(&crate::domain::mask_number(value));
        } else {
            out.push_str(value);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    /// A client of a made-up configuration (no call is made).
    fn client() -> Daraja {
        Daraja::new(DarajaConfig {
            url: "http://127.0.0.1:9".into(),
            consumer_key: "consumer-key-1234".into(),
            consumer_secret: "consumer-secret-5678".into(),
            shortcode: "600000".into(),
            initiator: "apiop".into(),
            security_credential: "AbCd+payouts/EfGhIjKlMnOpQrStUv==".into(),
            b2c_command: crate::config::B2cCommand::BusinessPayment,
            public_url: None,
            timeout: Duration::from_secs(5),
        })
    }

    /// Guards against: the payee's values were masked in every field of an answer, before the
    /// secrets were taken out: a reference `0` made an accepted payout's `ResponseCode` `***`
    /// (its outcome unknown), `400` a refusal's code (the money held), `AG` the ConversationID
    /// its result is found by; and `payouts` hid the result URL's path from its redaction.
    #[test]
    fn the_payees_values_are_masked_in_the_answers_words_only_and_after_the_secrets() {
        let daraja = client();
        let sent = |reference: &str| -> Vec<String> {
            payee_values(&json!({"PartyB": "888880", "AccountReference": reference}))
        };
        let classified_with = |reference: &str, status: u16, answer: serde_json::Value| {
            let body = daraja.scrubbed(answer.to_string().into_bytes(), "tok", &sent(reference));
            Daraja::classify(Ok((status, requests::sync_answer(&body))))
        };
        let accepted = json!({"OriginatorConversationID": "o1", "ConversationID": "AG_20261207_0100",
            "ResponseCode": "0", "ResponseDescription": "Accept the service request successfully."});
        for reference in ["0", "AG", "20261207", "AG_20261207_0100"] {
            match classified_with(reference, 200, accepted.clone()) {
                Ok(Ack { conversation_id }) => assert_eq!(conversation_id, "AG_20261207_0100"),
                other => panic!("{reference}: {other:?}"),
            }
        }
        let refused = json!({"requestId": "r", "errorCode": "400.002.02",
            "errorMessage": "Bad Request - Invalid https://k.example/webhooks/payouts/abcdefabcdef/result AbCd+payouts/EfGhIjKlMnOpQrStUv== ACCT7777 888880"});
        for reference in ["400", "payouts", "ACCT7777"] {
            match classified_with(reference, 400, refused.clone()) {
                Err(GatewayError::Refused { code, message }) => {
                    assert_eq!(code, "400.002.02", "{reference}");
                    assert!(
                        !message.contains("abcdefabcdef") && !message.contains("EfGh"),
                        "{reference}: {message}"
                    );
                    assert!(message.contains("***880"), "{reference}: {message}");
                }
                other => panic!("{reference}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_answer_echoing_the_payees_account_holds_it_masked() {
        let body = json!({"PartyB": "888880", "AccountReference": "ACCT7777", "Remarks": "r"});
        let payee = payee_values(&body);
        assert_eq!(payee, ["ACCT7777", "888880"]);
        let echoed = r#"Bad Request - Invalid {"PartyB":"888880","AccountReference":"ACCT7777"} 1888880 ACCT77770"#;
        let masked = payee
            .iter()
            .fold(echoed.to_string(), |text, v| value_masked(&text, v));
        assert_eq!(
            masked,
            r#"Bad Request - Invalid {"PartyB":"***880","AccountReference":"***777"} 1888880 ACCT77770"#
        );
        // A short reference is masked where it stands alone, not inside other words.
        assert_eq!(value_masked("ref 12 of 2012", "12"), "ref ***2 of 2012");
    }

    fn classified(status: u16, body: &str) -> Result<Ack, GatewayError> {
        Daraja::classify(Ok((status, requests::sync_answer(body.as_bytes()))))
    }

    #[test]
    fn the_result_urls_path_token_is_redacted_wherever_an_answer_quotes_it() {
        assert_eq!(redact_callback_tokens("Bad Request - Invalid PartyB"), None);
        assert_eq!(
            redact_callback_tokens(
                "Invalid ResultURL https://kiosk.example.org/webhooks/payouts/Zk9_x-2.aB?timeout=1, or https://k/webhooks/payouts/q%2Fw."
            )
            .as_deref(),
            Some("Invalid ResultURL https://kiosk.example.org/webhooks/payouts/[redacted]?timeout=1, or https://k/webhooks/payouts/[redacted]")
        );
        assert_eq!(
            redact_callback_tokens("/webhooks/payouts/ then").as_deref(),
            Some("/webhooks/payouts/ then")
        );
    }

    #[test]
    fn a_token_is_renewed_a_minute_early_or_halfway_through_a_short_life() {
        assert_eq!(renew_after_s(3599), 3539);
        assert_eq!(renew_after_s(121), 61);
        assert_eq!(renew_after_s(120), 60);
        assert_eq!(renew_after_s(75), 37);
        assert_eq!(renew_after_s(30), 15);
        assert_eq!(renew_after_s(0), 0);
        assert_eq!(renew_after_s(-5), 0);
        assert_eq!(renew_after_s(10_000_000), 86_340);
    }

    #[test]
    fn only_a_clear_refusal_is_a_refusal() {
        let refusal = r#"{"requestId":"1","errorCode":"400.002.02","errorMessage":"Bad Request - Invalid PartyB"}"#;
        assert!(matches!(
            classified(400, refusal),
            Err(GatewayError::Refused { code, .. }) if code == "400.002.02"
        ));
        let accepted = r#"{"ConversationID":"AG_1","OriginatorConversationID":"o","ResponseCode":"0","ResponseDescription":"Accept"}"#;
        assert!(
            matches!(classified(200, accepted), Ok(Ack { conversation_id }) if conversation_id == "AG_1")
        );
        assert!(matches!(
            classified(
                500,
                r#"{"requestId":"1","errorCode":"500.002.1001","errorMessage":"Duplicate"}"#
            ),
            Err(GatewayError::Duplicate)
        ));
        // Outcome unknown: retried under the same id, never failed.
        for (status, body) in [
            (
                200,
                r#"{"ResponseCode":"0","ResponseDescription":"Accept"}"#,
            ),
            (
                503,
                r#"{"ResponseCode":"1","ResponseDescription":"Service Unavailable"}"#,
            ),
            (
                200,
                r#"{"ResponseCode":"1","ResponseDescription":"Rejected"}"#,
            ),
            (503, refusal),
            (200, refusal),
            (503, accepted),
            (502, "<html>bad gateway</html>"),
        ] {
            assert!(
                matches!(classified(status, body), Err(GatewayError::Transport(_))),
                "{status} {body}"
            );
        }
        // Turned away before processing: nothing reached M-Pesa, sent again without counting.
        for code in ["500.003.02", "500.003.03"] {
            let body = format!(
                r#"{{"requestId":"1","errorCode":"{code}","errorMessage":"Spike Arrest Violation"}}"#
            );
            assert!(
                matches!(classified(500, &body), Err(GatewayError::NotSent(_))),
                "{body}"
            );
        }
        assert!(matches!(
            Daraja::classify(Err(CallError::Unsent("connection refused".into()))),
            Err(GatewayError::NotSent(_))
        ));
        assert!(matches!(
            Daraja::classify(Err(CallError::Transport("timed out".into()))),
            Err(GatewayError::Transport(_))
        ));
    }

    /// A call fails before sending only when no connection was made.
    #[test]
    fn only_a_failure_to_connect_is_before_sending() {
        use std::io::{Error, ErrorKind};
        assert!(before_sending(&ureq::Error::HostNotFound));
        assert!(before_sending(&ureq::Error::Timeout(
            ureq::Timeout::Connect
        )));
        assert!(before_sending(&ureq::Error::Io(Error::from(
            ErrorKind::ConnectionRefused
        ))));
        assert!(!before_sending(&ureq::Error::Timeout(
            ureq::Timeout::RecvResponse
        )));
        assert!(!before_sending(&ureq::Error::Io(Error::from(
            ErrorKind::ConnectionReset
        ))));
        assert!(!before_sending(&ureq::Error::Io(Error::from(
            ErrorKind::BrokenPipe
        ))));
    }
}
