//! The default gateway: answers like Daraja and posts a Daraja-shaped `Result` to our own result
//! URL over real HTTP after a delay: success by default, a failure for configured accounts, or
//! a queue timeout for others. Like M-Pesa with an `OriginatorConversationID` it has taken, it
//! never pays one payout twice: a payout sent again (its first answer could not be recorded)
//! gets the first call's `ConversationID` and result again.

use super::gateway::{Ack, CallbackUrls, Gateway, GatewayError};
use crate::domain::PayoutCommand;
use crate::limits::{
    SIM_CALLBACK_ATTEMPTS, SIM_CALLBACK_BACKOFF_MAX_MS, SIM_CALLBACK_BACKOFF_MS,
    SIM_CALLBACK_TIMEOUT_MS,
};
use crate::service::payouts::PayoutJob;
use crate::wire::daraja::results as daraja;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The simulated M-Pesa.
pub struct Simulator {
    /// Delay before the callback.
    pub delay: Duration,
    /// Account numbers or references whose payouts fail.
    pub fail_accounts: Vec<String>,
    /// Account numbers or references whose payouts time out in the queue.
    pub timeout_accounts: Vec<String>,
    /// The calls taken whose result has not been delivered yet, by `OriginatorConversationID`.
    taken: Arc<Mutex<Taken>>,
}

/// A call the simulator took: its `ConversationID`, and the result it posts and where.
#[derive(Clone)]
struct Call {
    conversation_id: String,
    url: String,
    body: Value,
}

/// The calls taken and not yet answered by a delivered result (at most `SIM_CALLS_KEPT`: past
/// that a new call is not remembered, and a repeat of it would be paid anew).
#[derive(Default)]
struct Taken {
    calls: HashMap<String, Call>,
}

impl Taken {
    fn insert(&mut self, originator: String, call: Call) {
        if self.calls.len() < crate::limits::SIM_CALLS_KEPT {
            self.calls.insert(originator, call);
        }
    }

    fn delivered(&mut self, originator: &str) {
        self.calls.remove(originator);
    }
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
    /// A simulator that posts results after `delay`, failing the payouts of `fail_accounts`
    /// and timing out those of `timeout_accounts`.
    pub fn new(
        delay: Duration,
        fail_accounts: Vec<String>,
        timeout_accounts: Vec<String>,
    ) -> Simulator {
        Simulator {
            delay,
            fail_accounts,
            timeout_accounts,
            taken: Arc::default(),
        }
    }

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
            daraja::b2c_success(
                originator,
                conversation_id,
                &receipt,
                job.amount,
                // The phone as M-Pesa writes it: digits, no `+`.
                Some(job.account.number().trim_start_matches('+')),
            )
        } else {
            daraja::b2b_success(
                originator,
                conversation_id,
                &receipt,
                job.amount,
                &job.account.number(),
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

    fn send(
        &self,
        job: &PayoutJob,
        urls: &CallbackUrls,
        _still_due: &dyn Fn() -> bool,
    ) -> Result<Ack, GatewayError> {
        let originator = job.originator_conversation_id().to_string();
        // A call taken before whose result was not delivered (the payout's answer or its result
        // could not be recorded, and the worker sent it again): its answer and result again,
        // never a second payment.
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        let repeated = taken.calls.get(&originator).cloned();
        let call = match repeated {
            Some(call) => call,
            None => {
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
                let call = Call {
                    conversation_id,
                    url,
                    body,
                };
                taken.insert(originator.clone(), call.clone());
                call
            }
        };
        drop(taken);
        let delay = self.delay;
        let payout_id = job.id.clone();
        let taken = Arc::clone(&self.taken);
        let Call {
            conversation_id,
            url,
            body,
        } = call;
        let spawned = std::thread::Builder::new()
            .name("remit-simulator".into())
            .spawn(move || {
                std::thread::sleep(delay);
                if post_result(&agent(), &url, &body, payout_id.as_str()) {
                    taken
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .delivered(&originator);
                }
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
                    let _delivered = post_result(&agent, url, body, payout_id);
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

/// Posts one result to our own result URL, trying again a few times; whether it was taken.
fn post_result(agent: &ureq::Agent, url: &str, body: &Value, payout_id: &str) -> bool {
    for attempt in 0..SIM_CALLBACK_ATTEMPTS {
        match agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
        {
            Ok(response) if response.status().is_success() => return true,
            Ok(response) => log::warn!(
                "simulator callback for {payout_id} answered {}",
                response.status()
            ),
            Err(e) => log::warn!("simulator callback for {payout_id} failed: {e}"),
        }
        if attempt + 1 < SIM_CALLBACK_ATTEMPTS {
            std::thread::sleep(Duration::from_millis(
                (SIM_CALLBACK_BACKOFF_MS << attempt).min(SIM_CALLBACK_BACKOFF_MAX_MS),
            ));
        }
    }
    log::warn!(
        "simulator: the result of payout {payout_id} could not be delivered in {SIM_CALLBACK_ATTEMPTS} tries; it stays sent, and is posted again at the server's next start"
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MerchantAccount, PayoutId};
    use crate::money::KesCents;
    use std::sync::mpsc;

    /// A result URL on loopback that refuses (500) every post until `open` is sent `true`, and
    /// passes each body it is sent to the test.
    fn result_url() -> (String, mpsc::Sender<bool>, mpsc::Receiver<Value>) {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/webhooks/payouts/t",
            server.server_addr().to_ip().unwrap()
        );
        let (open_tx, open_rx) = mpsc::channel::<bool>();
        let (body_tx, body_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut open = false;
            for mut request in server.incoming_requests() {
                open = open_rx.try_iter().last().unwrap_or(open);
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(request.as_reader(), &mut text);
                let _ = body_tx.send(serde_json::from_str(&text).unwrap_or(Value::Null));
                let _ = request.respond(tiny_http::Response::empty(if open { 200 } else { 500 }));
            }
        });
        (url, open_tx, body_rx)
    }

    fn job(id: &PayoutId) -> PayoutJob {
        PayoutJob {
            id: id.clone(),
            command: PayoutCommand::B2bPaybill,
            amount: KesCents::new(150_000).unwrap(),
            account: MerchantAccount::Paybill {
                number: "888880".into(),
                account_reference: "METER-1".into(),
            },
            attempts: 1,
        }
    }

    /// A payout sent again before its result was delivered (its answer could not be recorded,
    /// the result URL refused) is not paid twice: the same `ConversationID`, the same receipt;
    /// once a result was delivered, the simulator forgets the call.
    #[test]
    fn a_payout_sent_again_gets_its_first_answer_and_result_not_a_second_payment() {
        let (url, open, bodies) = result_url();
        let urls = CallbackUrls {
            result: url.clone(),
            queue_timeout: url,
        };
        let sim = Simulator::new(Duration::ZERO, Vec::new(), Vec::new());
        let id = PayoutId::new();
        let first = sim.send(&job(&id), &urls, &|| true).unwrap();
        let refused = bodies.recv_timeout(Duration::from_secs(10)).unwrap();
        let again = sim.send(&job(&id), &urls, &|| true).unwrap();
        assert_eq!(again.conversation_id, first.conversation_id);
        open.send(true).unwrap();
        // The two calls' posts (the first's retries among them) all carry one result.
        let mut seen = vec![refused];
        while let Ok(body) = bodies.recv_timeout(Duration::from_secs(2)) {
            seen.push(body);
        }
        assert!(seen.len() >= 3, "{seen:?}");
        assert!(seen.iter().all(|b| *b == seen[0]), "{seen:?}");
        let receipt = &seen[0]["Result"]["TransactionID"];
        assert!(
            receipt.as_str().is_some_and(|r| r.starts_with("SIM")),
            "{seen:?}"
        );
        assert_eq!(
            seen[0]["Result"]["ConversationID"].as_str(),
            Some(first.conversation_id.as_str())
        );
        // Delivered: another payout of the same id now would be a new call (a process that
        // forgot it, as after a restart).
        let later = sim.send(&job(&id), &urls, &|| true).unwrap();
        assert_ne!(later.conversation_id, first.conversation_id);
    }
}
