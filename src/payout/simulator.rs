//! The default gateway: answers like Daraja and posts a Daraja-shaped `Result` to our own result
//! URL over real HTTP after a delay: success by default, a failure for configured accounts, or
//! a queue timeout for others.

use super::gateway::{Ack, CallbackUrls, Gateway, GatewayError};
use crate::domain::PayoutCommand;
use crate::limits::{SIM_CALLBACK_ATTEMPTS, SIM_CALLBACK_BACKOFF_MS, SIM_CALLBACK_TIMEOUT_MS};
use crate::service::payouts::PayoutJob;
use crate::wire::daraja::results as daraja;
use serde_json::Value;
use std::time::Duration;

/// The simulated M-Pesa.
pub struct Simulator {
    /// Delay before the callback.
    pub delay: Duration,
    /// Account numbers or references whose payouts fail.
    pub fail_accounts: Vec<String>,
    /// Account numbers or references whose payouts time out in the queue.
    pub timeout_accounts: Vec<String>,
}

/// Does the job's account (number or reference, `+` ignored; a phone in any of its spellings,
/// `0799…` as `254799…`) appear in `list`?
fn account_matches(job: &PayoutJob, list: &[String]) -> bool {
    let number = job.account.number();
    let found = [Some(number.as_str()), job.account.account_reference()]
        .into_iter()
        .flatten()
        .any(|v| {
            list.iter().any(|a| {
                let phone = crate::domain::KenyanPhone::parse("account", a).ok();
                a == v
                    || a.trim_start_matches('+') == v.trim_start_matches('+')
                    || phone.is_some_and(|p| p.daraja() == v.trim_start_matches('+'))
            })
        });
    found
}

/// A receipt number in M-Pesa's shape (ten capitals and digits) that says what it is: `SIM`
/// and seven more, so that a simulated receipt can never pass for a real one.
pub(crate) fn receipt() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = [0u8; 7];
    crate::crypto::fill_random(&mut bytes);
    let tail: String = bytes
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect();
    format!("SIM{tail}")
}

impl Simulator {
    /// The callback the simulator will post for a job, and whether it goes to the queue-timeout
    /// URL.
    pub fn callback_for(&self, job: &PayoutJob, conversation_id: &str) -> (Value, bool) {
        let originator = job.originator_conversation_id();
        let b2c = job.command == PayoutCommand::B2c;
        if account_matches(job, &self.timeout_accounts) {
            return (daraja::queue_timeout(originator, conversation_id), true);
        }
        if account_matches(job, &self.fail_accounts) {
            let body = if b2c {
                daraja::b2c_failure(originator, conversation_id)
            } else {
                daraja::b2b_failure(originator, conversation_id)
            };
            return (body, false);
        }
        let receipt = receipt();
        let body = if b2c {
            daraja::b2c_success(originator, conversation_id, &receipt, job.amount)
        } else {
            daraja::b2b_success(
                originator,
                conversation_id,
                &receipt,
                job.amount,
                job.account.account_reference(),
            )
        };
        (body, false)
    }
}

impl Gateway for Simulator {
    fn name(&self) -> &'static str {
        "simulator"
    }

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
                post_result(&agent(), &url, &body, payout_id.as_str());
            });
        match spawned {
            Ok(_) => Ok(Ack { conversation_id }),
            Err(e) => Err(GatewayError::Transport(format!(
                "cannot start the simulator thread: {e}"
            ))),
        }
    }

    /// The results of payouts sent before a restart: the threads that were to post them ended
    /// with the process (a stop before their delay, or a server that no longer listened), and
    /// the simulator cannot be asked, so each stayed `sent`, its money reserved, until an admin
    /// resolved it. Posted again, one after another, after the usual delay, under the
    /// `ConversationID` each was given; the outcome is the one the configuration says now.
    fn resume(&self, unanswered: Vec<(PayoutJob, String)>, urls: &CallbackUrls) {
        if unanswered.is_empty() {
            return;
        }
        log::info!(
            "simulator: posting the results of {} payout(s) sent before the restart",
            unanswered.len()
        );
        let results: Vec<(String, String, Value)> = unanswered
            .iter()
            .map(|(job, conversation_id)| {
                let (body, queue_timeout) = self.callback_for(job, conversation_id);
                let url = if queue_timeout {
                    urls.queue_timeout.clone()
                } else {
                    urls.result.clone()
                };
                (job.id.to_string(), url, body)
            })
            .collect();
        let delay = self.delay;
        let spawned = std::thread::Builder::new()
            .name("remit-simulator-resume".into())
            .spawn(move || {
                std::thread::sleep(delay);
                let agent = agent();
                for (payout_id, url, body) in &results {
                    post_result(&agent, url, body, payout_id);
                }
            });
        if let Err(e) = spawned {
            log::error!("simulator: cannot post the results owed since the restart: {e}");
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(SIM_CALLBACK_TIMEOUT_MS)))
            .http_status_as_error(false)
            .build(),
    )
}

/// Posts one result to our own result URL, trying again a few times.
fn post_result(agent: &ureq::Agent, url: &str, body: &Value, payout_id: &str) {
    for attempt in 0..SIM_CALLBACK_ATTEMPTS {
        match agent
            .post(url)
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
        std::thread::sleep(Duration::from_millis(SIM_CALLBACK_BACKOFF_MS << attempt));
    }
}
