//! SMS out: the `SmsGateway` trait, the Africa's Talking client, and the worker that sends the
//! messages the fan-out made. With the `log` gateway (the default) nothing is sent and no worker
//! runs: the fan-out records each message as `logged`. A phone is decrypted only to send and
//! never logged, and neither is a message's text.

use super::Hub;
use crate::config::{AfricasTalkingConfig, SmsGatewayKind};
use crate::domain::SmsId;
use crate::error::{Error, Result};
use crate::limits::{NOTIFY_IDLE_MS, SMS_ANSWER_BYTES_MAX, SMS_BATCH_MAX};
use crate::service::sms::{self, SmsResult};
use crate::store::Store;
use crate::wakeup::Wakeup;
use crate::wire::africastalking::{self, SendAnswer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A way to send a text message.
pub trait SmsGateway: Send + Sync {
    /// Its name, kept with each message (`africastalking`).
    fn name(&self) -> &'static str;

    /// Sends `text` to `phone` (E.164).
    fn send(&self, phone: &str, text: &str) -> SmsResult;
}

/// The gateway the configuration names; `None` for `log`, which sends nothing.
pub fn gateway_for(kind: &SmsGatewayKind) -> Option<Arc<dyn SmsGateway>> {
    match kind {
        SmsGatewayKind::Log => None,
        SmsGatewayKind::AfricasTalking(config) => {
            Some(Arc::new(AfricasTalking::new(config.as_ref().clone())))
        }
    }
}

/// Africa's Talking's bulk SMS API (`wire::africastalking`).
pub struct AfricasTalking {
    config: AfricasTalkingConfig,
    agent: ureq::Agent,
}

impl AfricasTalking {
    /// A client for this configuration (no call is made yet).
    pub fn new(config: AfricasTalkingConfig) -> AfricasTalking {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(config.timeout))
                // Its own, so that a message that never left (no connection) is told from one
                // whose answer did not come (`sent_or_not`).
                .timeout_resolve(Some(config.timeout.min(Duration::from_secs(5))))
                .timeout_connect(Some(config.timeout.min(Duration::from_secs(5))))
                .max_redirects(0)
                .user_agent("remit")
                .build(),
        );
        AfricasTalking { config, agent }
    }
}

impl SmsGateway for AfricasTalking {
    fn name(&self) -> &'static str {
        "africastalking"
    }

    fn send(&self, phone: &str, text: &str) -> SmsResult {
        let url = format!(
            "{}{}",
            self.config.url.trim_end_matches('/'),
            africastalking::SEND_PATH
        );
        let body = africastalking::send_body(
            &self.config.username,
            phone,
            text,
            self.config.sender_id.as_deref(),
        );
        let answer = self
            .agent
            .post(&url)
            .header("apiKey", &self.config.api_key)
            .header("Accept", "application/json")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(body.as_bytes());
        let mut response = match answer {
            Ok(response) => response,
            // Never the error's own text: it may name the URL, and nothing of the call is
            // worth more than its kind.
            Err(e) => return sent_or_not(&e, super::guard::describe(&e)),
        };
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(SMS_ANSWER_BYTES_MAX)
            .read_to_vec()
            .unwrap_or_default();
        match africastalking::read_answer(status, &body, phone) {
            SendAnswer::Accepted { message_id, status } => SmsResult::Sent {
                provider_id: message_id,
                status,
            },
            SendAnswer::Refused { status } => SmsResult::Refused { status },
            SendAnswer::OtherNumber { status } => SmsResult::OtherNumber { status },
            SendAnswer::Retry { reason } => SmsResult::Retry { reason },
            SendAnswer::Unknown { reason } => SmsResult::Unknown { reason },
        }
    }
}

/// What a call that failed says of its message: it never left (no name, no connection: tried
/// again as a refusal of the moment is), or it may have been taken (no answer in time after it
/// was sent, a connection cut after it: the gateway may have sent it, and a text sent again
/// and again reaches the same phone as many times; a slow gateway that took each try sent
/// six).
fn sent_or_not(error: &ureq::Error, reason: String) -> SmsResult {
    use std::io::ErrorKind;
    let never_left = match error {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
        ureq::Error::Timeout(when) => {
            matches!(when, ureq::Timeout::Resolve | ureq::Timeout::Connect)
        }
        ureq::Error::Io(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::AddrNotAvailable
                | ErrorKind::HostUnreachable
                | ErrorKind::NetworkUnreachable
        ),
        _ => false,
    };
    if never_left {
        SmsResult::Retry { reason }
    } else {
        SmsResult::Unknown { reason }
    }
}

/// The worker that sends pending messages through a gateway that sends.
pub(super) struct SmsWorker {
    pub(super) store: Arc<Store>,
    pub(super) gateway: Arc<dyn SmsGateway>,
    pub(super) hub: Arc<Hub>,
    pub(super) retry_base: Duration,
    pub(super) wakeup: Arc<Wakeup>,
}

impl SmsWorker {
    pub(super) fn start(self, stopping: Arc<AtomicBool>) -> Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("remit-sms".into())
            .spawn(move || {
                let idle = Duration::from_millis(NOTIFY_IDLE_MS);
                while !stopping.load(Ordering::SeqCst) {
                    match self.send_due(&stopping) {
                        Ok(true) => {}
                        Ok(false) => self.wakeup.wait(self.until_next_due(idle)),
                        Err(e) => {
                            crate::error::warn_every_10s!(
                                "the SMS worker cannot use the ledger (what it claimed is tried again later): {}",
                                e.logged()
                            );
                            self.wakeup.wait(idle);
                        }
                    }
                }
            })
            .map_err(|e| Error::internal(format!("cannot start the SMS worker: {e}")))
    }

    fn until_next_due(&self, idle: Duration) -> Duration {
        let next = self
            .store
            .read(|conn, _| sms::next_due_at(conn))
            .ok()
            .flatten()
            .and_then(|at| crate::time::parse_rfc3339_ms(&at));
        match next {
            Some(at) => Duration::from_millis(
                (at - crate::time::now_unix_ms()).clamp(1, idle.as_millis() as i64) as u64,
            ),
            None => idle,
        }
    }

    /// Sends what is due; false when nothing was. What it sends it has claimed first (one
    /// write: a ledger that takes no writes sends nothing), and each result is recorded as soon
    /// as it comes: a result that cannot be written stops the batch, and its message, like the
    /// rest of the batch, waits its claim out (`retry_base`) before it is tried again. Before,
    /// the whole batch was recorded at its end, and a record that failed (a full disk) sent
    /// every message of it again a second later, for as long as it failed.
    fn send_due(&self, stopping: &AtomicBool) -> Result<bool> {
        let now_ms = crate::time::now_unix_ms();
        let due = self
            .store
            .read(|conn, keys| sms::due(conn, keys, now_ms, SMS_BATCH_MAX))?;
        if due.is_empty() {
            return Ok(false);
        }
        let ids: Vec<SmsId> = due.iter().map(|m| m.id.clone()).collect();
        let lease = self.retry_base;
        self.hub.pace.own_command();
        let claimed = self
            .store
            .write(move |ctx| sms::claim(ctx, &ids, lease, lease))?;
        for id in &claimed.cut {
            log::warn!(
                "sms {id}: the gateway's answer to its last call was never written (outcome unknown, it may have been sent): sent once more, and not again if that answer is not known either"
            );
        }
        for id in &claimed.failed {
            log::warn!(
                "sms {id}: the gateway's answer to its last call was never written, after an outcome not known or as its last try: failed, not sent again"
            );
        }
        self.hub
            .stats
            .sms_failed
            .fetch_add(claimed.failed.len() as u64, Ordering::Relaxed);
        for message in due.into_iter().filter(|m| claimed.ids.contains(&m.id)) {
            if stopping.load(Ordering::SeqCst) {
                break;
            }
            // Its attempt counted and marked as under way before the call: a crash before its
            // result is written leaves the mark, and the next claim knows the outcome is not.
            let id = message.id.clone();
            self.hub.pace.own_command();
            if !self.store.write(move |ctx| sms::begin(ctx, &id))? {
                continue;
            }
            let result = self.gateway.send(&message.phone, &message.body);
            let (id, gateway) = (message.id.clone(), self.gateway.name());
            // What the call came to, and whether it alone is worth a warning (a gateway that
            // answers for a stranger).
            let (said, strange) = match &result {
                SmsResult::Sent { .. } => ("sent", false),
                SmsResult::Refused { .. } => ("refused", false),
                SmsResult::OtherNumber { .. } => {
                    ("answered for another number, not sent again", true)
                }
                SmsResult::Retry { .. } => ("not taken", false),
                SmsResult::Unknown { .. } => ("outcome unknown (it may have been sent)", false),
            };
            let base = self.retry_base;
            let results = [(message.id, result)];
            self.hub.pace.own_command();
            let recorded = self
                .store
                .write(move |ctx| sms::record(ctx, &results, base));
            // What became of it, once written: a try that failed is tried again later, or the
            // text is given up (its last try, a second outcome not known).
            let tally = match recorded {
                Ok(tally) => tally,
                Err(e) => {
                    log::info!("sms {id} through {gateway}: {said}");
                    return Err(e);
                }
            };
            if strange {
                log::warn!("sms {id} through {gateway}: {said}");
            } else if let Some(why) = tally.given_up {
                log::warn!("sms {id} through {gateway}: {said}; failed, not tried again ({why})");
            } else if tally.retrying > 0 {
                log::info!("sms {id} through {gateway}: {said}, tried again later");
            } else {
                log::info!("sms {id} through {gateway}: {said}");
            }
            let stats = &self.hub.stats;
            stats.sms_sent.fetch_add(tally.sent, Ordering::Relaxed);
            stats.sms_failed.fetch_add(tally.failed, Ordering::Relaxed);
            stats
                .sms_retried
                .fetch_add(tally.retrying, Ordering::Relaxed);
        }
        Ok(true)
    }
}
