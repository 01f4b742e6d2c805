//! The payout worker and the M-Pesa gateways. The worker takes queued payouts in order, hands
//! each to the gateway with our payout's `OriginatorConversationID` (reused on every retry, so
//! Daraja refuses a duplicate rather than paying twice), and records what came back.

use crate::config::GatewayKind;
use crate::http::App;
use crate::service::payouts::{self, PayoutJob, PayoutResult};
use crate::service::Actor;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Daraja's synchronous acknowledgement.
#[derive(Debug, Clone)]
pub struct Ack {
    /// `ConversationID` (`AG_…`).
    pub conversation_id: String,
}

/// Why a gateway call did not produce an acknowledgement.
#[derive(Debug, Clone)]
pub enum GatewayError {
    /// No answer or a transport error: outcome unknown, retry with the same id.
    Transport(String),
    /// A synchronous Daraja error: the request was refused, no money moved.
    Refused {
        /// `errorCode`.
        code: String,
        /// `errorMessage`.
        message: String,
    },
    /// `500.002.1001`: an earlier attempt with this id reached M-Pesa; wait for its result.
    Duplicate,
}

/// Where results go.
#[derive(Debug, Clone)]
pub struct CallbackUrls {
    /// `ResultURL`.
    pub result: String,
    /// `QueueTimeOutURL`.
    pub queue_timeout: String,
}

/// An M-Pesa B2C/B2B API.
pub trait Gateway: Send + Sync {
    /// Sends one payout. Must be safe to call again with the same job after a transport error.
    fn send(&self, job: &PayoutJob, urls: &CallbackUrls) -> Result<Ack, GatewayError>;
}

/// Answers like Daraja and posts a Daraja-shaped `Result` to our own result URL over real
/// HTTP after a delay: success by default, a failure for configured accounts, or a queue
/// timeout for others.
pub struct Simulator {
    /// Delay before the callback.
    pub delay: Duration,
    /// Account numbers or references whose payouts fail.
    pub fail_accounts: Vec<String>,
    /// Account numbers or references whose payouts time out in the queue.
    pub timeout_accounts: Vec<String>,
}

fn account_matches(account: &Value, list: &[String]) -> bool {
    ["number", "accountReference"]
        .iter()
        .filter_map(|k| account.get(*k).and_then(Value::as_str))
        .any(|v| {
            list.iter()
                .any(|a| a == v || a.trim_start_matches('+') == v.trim_start_matches('+'))
        })
}

fn receipt() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = [0u8; 7];
    crate::crypto::fill_random(&mut bytes);
    // The first three characters track the date at M-Pesa; "TCE" stands for a day in 2025.
    let tail: String = bytes
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect();
    format!("TCE{tail}")
}

impl Simulator {
    /// The callback the simulator will post for a job.
    pub fn callback_for(&self, job: &PayoutJob, conversation_id: &str) -> (Value, bool) {
        let kes_whole = job.amount_kes_cents / 100;
        let b2c = job.command == "b2c";
        if account_matches(&job.account, &self.timeout_accounts) {
            let body = json!({"Result": {"ResultType": 0, "ResultCode": 1,
                "ResultDesc": "The service request timed out in the queue.",
                "OriginatorConversationID": job.originator_conversation_id, "ConversationID": conversation_id,
                "TransactionID": "TCE0000000"}});
            return (body, true);
        }
        if account_matches(&job.account, &self.fail_accounts) {
            let body = if b2c {
                json!({"Result": {"ResultType": 0, "ResultCode": 2040,
                    "ResultDesc": "Credit Party customer type (Unregistered or Registered Customer) can't be supported by the service.",
                    "OriginatorConversationID": job.originator_conversation_id, "ConversationID": conversation_id,
                    "TransactionID": "TCE0000000",
                    "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "https://internal.example/timeout"}}}})
            } else {
                json!({"Result": {"ResultType": 0, "ResultCode": 2001, "ResultDesc": "The initiator information is invalid.",
                    "OriginatorConversationID": job.originator_conversation_id, "ConversationID": conversation_id,
                    "TransactionID": "TCE0000000",
                    "ResultParameters": {"ResultParameter": {"Key": "BOCompletedTime", "Value": 20251125103902_i64}},
                    "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "https://internal.example/timeout"}}}})
            };
            return (body, false);
        }
        let receipt = receipt();
        let body = if b2c {
            json!({"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
                "OriginatorConversationID": job.originator_conversation_id, "ConversationID": conversation_id,
                "TransactionID": receipt,
                "ResultParameters": {"ResultParameter": [
                    {"Key": "TransactionAmount", "Value": kes_whole},
                    {"Key": "TransactionReceipt", "Value": receipt},
                    {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
                    {"Key": "TransactionCompletedDateTime", "Value": crate::time::now_rfc3339()}]},
                "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "https://internal.example/timeout"}}}})
        } else {
            json!({"Result": {"ResultType": "0", "ResultCode": "0", "ResultDesc": "The service request is processed successfully",
                "OriginatorConversationID": job.originator_conversation_id, "ConversationID": conversation_id,
                "TransactionID": receipt,
                "ResultParameters": {"ResultParameter": [
                    {"Key": "Amount", "Value": format!("{kes_whole}.00")},
                    {"Key": "DebitPartyCharges", "Value": ""},
                    {"Key": "Currency", "Value": "KES"}]},
                "ReferenceData": {"ReferenceItem": [
                    {"Key": "BillReferenceNumber", "Value": job.account.get("accountReference").cloned().unwrap_or(Value::Null)},
                    {"Key": "QueueTimeoutURL", "Value": "https://internal.example/timeout"}]}}})
        };
        (body, false)
    }
}

impl Gateway for Simulator {
    fn send(&self, job: &PayoutJob, urls: &CallbackUrls) -> Result<Ack, GatewayError> {
        let conversation_id = format!(
            "AG_{}_{}",
            crate::time::nairobi_day(crate::time::now_unix()).replace('-', ""),
            crate::crypto::random_hex(10)
        );
        let (body, queue_timeout) = self.callback_for(job, &conversation_id);
        let url = if queue_timeout {
            urls.queue_timeout.clone()
        } else {
            urls.result.clone()
        };
        let delay = self.delay;
        let payout_id = job.id.clone();
        let spawned = std::thread::Builder::new()
            .name("remit-simulator".into())
            .spawn(move || {
                std::thread::sleep(delay);
                let agent = ureq::Agent::new_with_config(
                    ureq::Agent::config_builder()
                        .timeout_global(Some(Duration::from_secs(10)))
                        .http_status_as_error(false)
                        .build(),
                );
                for attempt in 0..5u32 {
                    match agent
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .send(body.to_string().as_bytes())
                    {
                        Ok(response) if response.status().is_success() => return,
                        Ok(response) => log::warn!(
                            "simulator callback for {payout_id} answered {}",
                            response.status()
                        ),
                        Err(e) => log::warn!("simulator callback for {payout_id} failed: {e}"),
                    }
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                }
            });
        match spawned {
            Ok(_) => Ok(Ack { conversation_id }),
            Err(e) => Err(GatewayError::Transport(format!(
                "cannot start the simulator thread: {e}"
            ))),
        }
    }
}

/// Backoff before retry `attempt` (1-based): 2, 4, 8 … seconds, at most 5 minutes.
fn backoff_s(attempt: i64) -> i64 {
    (1_i64 << attempt.clamp(1, 8)).min(300)
}

/// Claims one job, hands it to the gateway and records the outcome. If the claim cannot be
/// written, nothing is sent; if the outcome cannot be written, the claim still holds the payout
/// back until its next attempt time.
pub fn process(app: &App, gateway: &dyn Gateway, job: PayoutJob) {
    let urls = CallbackUrls {
        result: format!("{}/webhooks/payouts/{}", app.base_url, app.callback_token),
        queue_timeout: format!(
            "{}/webhooks/payouts/{}?timeout=1",
            app.base_url, app.callback_token
        ),
    };
    let id = job.id.clone();
    let retry_at = crate::time::now_unix() + backoff_s(job.attempts + 1);
    match app
        .store
        .write(move |ctx| payouts::claim(ctx, &id, retry_at))
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            log::error!("payout {}: could not claim it, not sending: {e:?}", job.id);
            return;
        }
    }
    let outcome = gateway.send(&job, &urls);
    let id = job.id.clone();
    let written = match outcome {
        Ok(ack) => app
            .store
            .write(move |ctx| payouts::mark_sent(ctx, &id, Some(&ack.conversation_id))),
        Err(GatewayError::Transport(error)) => {
            log::warn!("payout {id}: gateway transport error (will retry): {error}");
            app.store
                .write(move |ctx| payouts::mark_retry(ctx, &id, &error))
        }
        Err(GatewayError::Duplicate) => app.store.write(move |ctx| {
            payouts::mark_sent(ctx, &id, None)?;
            payouts::flag(
                ctx,
                &id,
                "M-Pesa reports this payout was already submitted; waiting for its result",
            )
        }),
        Err(GatewayError::Refused { code, message }) => app.store.write(move |ctx| {
            let result = PayoutResult::Failed {
                code,
                desc: message,
            };
            payouts::settle(ctx, &Actor::system("payouts"), &id, &result, None).map(|_| ())
        }),
    };
    if let Err(e) = written {
        log::error!(
            "payout {}: could not record the gateway's answer: {e:?}",
            job.id
        );
    }
}

/// Starts the payout worker thread for the configured gateway (none for `GatewayKind::None`).
pub fn start_worker(
    app: Arc<App>,
    stopping: Arc<AtomicBool>,
) -> crate::Result<Vec<JoinHandle<()>>> {
    let gateway: Box<dyn Gateway> = match app.config.gateway {
        GatewayKind::Simulator => Box::new(Simulator {
            delay: Duration::from_millis(app.config.sim_delay_ms),
            fail_accounts: app.config.sim_fail_accounts.clone(),
            timeout_accounts: app.config.sim_timeout_accounts.clone(),
        }),
        GatewayKind::None => return Ok(Vec::new()),
    };
    let handle = std::thread::Builder::new()
        .name("remit-payouts".into())
        .spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                let next = app
                    .store
                    .read(|conn, keys| payouts::next_due(conn, keys, crate::time::now_unix()));
                match next {
                    Ok(Some(job)) => {
                        // A bug in one payout must not stop every later one; the claim already
                        // holds this payout back until its next attempt.
                        let id = job.id.clone();
                        let run = std::panic::AssertUnwindSafe(|| process(&app, gateway.as_ref(), job));
                        if std::panic::catch_unwind(run).is_err() {
                            log::error!("payout {id}: the worker panicked; it carries on with the next payout");
                        }
                    }
                    Ok(None) => app.payouts_wakeup.wait(Duration::from_secs(1)),
                    Err(e) => {
                        log::error!("payout worker cannot read the queue: {e:?}");
                        app.payouts_wakeup.wait(Duration::from_secs(1));
                    }
                }
            }
        })
        .map_err(|e| crate::Error::internal(format!("cannot start the payout worker: {e}")))?;
    Ok(vec![handle])
}
