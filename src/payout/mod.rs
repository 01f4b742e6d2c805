//! The payout worker: it takes queued payouts in order, hands each to the gateway with our
//! payout's `OriginatorConversationID` (reused on every retry, so Daraja refuses a duplicate
//! rather than paying twice; a B2B call whose answer was lost is not retried at all, as B2B
//! documents no such refusal), and records what came back. With a gateway that can ask, it asks
//! what became of payouts whose outcome is unknown (Transaction Status) and watches the float
//! (Account Balance). It needs only the store, a gateway, the result URLs and its wakeup: it can
//! be built and driven without HTTP.

mod daraja;
mod gateway;
mod simulator;

pub use crate::wakeup::Wakeup;
pub use daraja::Daraja;
pub use gateway::{Ack, CallbackUrls, Gateway, GatewayError, StatusQuery};
pub(crate) use simulator::receipt as simulated_receipt;
pub use simulator::Simulator;

use crate::config::{Config, GatewayKind};
use crate::domain::PayoutId;
use crate::error::{Error, Result, Throttle};
use crate::limits::{
    PAYOUT_BACKOFF_S_MAX, PAYOUT_WORKER_IDLE_MS, RESUMED_PAYOUTS_MAX, STATUS_QUERY_BACKOFF_S_MAX,
};
use crate::service::payouts::{self, PayoutJob, PayoutResult, Unknown};
use crate::service::Actor;
use crate::store::Store;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The payout worker and what it uses.
pub struct Worker {
    /// The database.
    pub store: Arc<Store>,
    /// Where payouts go.
    pub gateway: Arc<dyn Gateway>,
    /// Where their results come back.
    pub urls: CallbackUrls,
    /// Rung after an approval.
    pub wakeup: Arc<Wakeup>,
    /// A sent payout with no result after this long is asked about (when the gateway can).
    pub status_after_s: i64,
    /// How often the float is asked for (`None`: never).
    pub float_every: Option<Duration>,
    /// Consecutive calls of each queued payout that reached nothing (`GatewayError::NotSent`):
    /// the wait before its next call grows with them (2 s, 4 s, … 5 min), as attempts' do,
    /// though they count as none. Kept in memory: after a restart the waits begin again.
    pub not_sent: std::sync::Mutex<std::collections::HashMap<PayoutId, i64>>,
    /// What its calls came to, for `/metrics` (shared with `Metrics`).
    pub calls: Arc<CallStats>,
}

/// What the payout worker's calls to the gateway came to, for `/metrics`: an OAuth or network
/// outage leaves payouts queued without a word to anyone but the log (said once a minute), so
/// it is counted, and how long it has lasted is a gauge an alert can watch.
#[derive(Default)]
pub struct CallStats {
    /// Calls that provably reached nothing (no access token, no connection, turned away before
    /// processing), since the start.
    pub not_sent: std::sync::atomic::AtomicU64,
    /// When the current run of such calls began (Unix seconds); 0 once a call reached the
    /// gateway, or before any failed.
    pub unreachable_since: std::sync::atomic::AtomicI64,
}

impl CallStats {
    /// A call reached nothing.
    fn not_sent(&self) {
        use std::sync::atomic::Ordering;
        self.not_sent.fetch_add(1, Ordering::Relaxed);
        let now = crate::time::now_unix().max(1);
        let _ =
            self.unreachable_since
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// A call reached the gateway (whatever it answered).
    fn reached(&self) {
        self.unreachable_since
            .store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// Seconds since calls began to reach nothing (0: they reach the gateway).
    pub fn unreachable_for_s(&self) -> i64 {
        match self
            .unreachable_since
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            0 => 0,
            since => (crate::time::now_unix() - since).max(0),
        }
    }
}

/// The gateway the configuration names (`None` when payouts stay queued).
pub fn gateway_for(config: &Config) -> Option<Arc<dyn Gateway>> {
    match &config.gateway {
        GatewayKind::Simulator => Some(Arc::new(Simulator::new(
            Duration::from_millis(config.sim_delay_ms),
            config.sim_fail_accounts.clone(),
            config.sim_timeout_accounts.clone(),
        ))),
        GatewayKind::Daraja(daraja) => Some(Arc::new(Daraja::new(daraja.as_ref().clone()))),
        GatewayKind::None => None,
    }
}

/// What one turn of the worker did.
enum Work {
    /// Sent a payout, or asked about one.
    Done,
    /// Nothing was due.
    Idle,
    /// A payout was due but could not be claimed: the database takes no writes.
    Stalled,
}

/// Backoff before retry `attempt` (1-based): 2, 4, 8 … 256 seconds, then `PAYOUT_BACKOFF_S_MAX`
/// (the doubling's next step, 512, is past it; until 2026-12-07 it stopped at 256).
fn backoff_s(attempt: i64) -> i64 {
    (1_i64 << attempt.clamp(1, 9)).min(PAYOUT_BACKOFF_S_MAX)
}

impl Worker {
    /// What to do with an unknown outcome: ask, or leave it to the operator.
    fn unknown(&self) -> Unknown {
        if self.gateway.can_query() {
            Unknown::Ask
        } else {
            Unknown::Flag
        }
    }

    /// Claims one job, hands it to the gateway and records the outcome. If the claim cannot be
    /// written, nothing is sent (and `false` says the worker should pause: the database does
    /// not take writes); if the outcome cannot be written, the claim still holds the payout
    /// back until its next attempt time.
    pub fn process(&self, job: PayoutJob) -> bool {
        // A payout handed over before whose answer was never recorded (a crash after the call,
        // a write that failed) may have been paid: through a gateway that would not refuse a
        // second request of it (B2B) it is asked about, never sent again. (A call that reached
        // nothing counts no attempt.)
        if job.attempts > 0 && !self.gateway.refuses_repeats(job.command) {
            let (id, then) = (job.id.clone(), self.unknown());
            let written = self.store.write(move |ctx| {
                payouts::mark_unknown(
                    ctx,
                    &id,
                    "an earlier call of this payout may have reached M-Pesa (its answer was not recorded); M-Pesa does not refuse a repeated B2B request, so it is not sent again",
                    then,
                )
            });
            return written.is_ok();
        }
        let id = job.id.clone();
        let retry_at = crate::time::now_unix() + backoff_s(job.attempts + 1);
        let name = self.gateway.name();
        match self
            .store
            .write(move |ctx| payouts::claim(ctx, &id, retry_at, name))
        {
            Ok(true) => {}
            Ok(false) => return true,
            Err(e) => {
                static UNCLAIMED: Throttle = Throttle::new(Duration::from_secs(60));
                UNCLAIMED.log(module_path!(), log::Level::Error, format_args!(
                    "payout {}: could not claim it, not sending (the worker pauses, longer each time, until the database takes writes): {}",
                    job.id,
                    e.logged()
                ));
                return false;
            }
        }
        // Before a second call within this send: is the payout still waiting for its money?
        // (A result may have settled it while the first call was on its way.) When that cannot
        // be read, no: the call is not made, and the payout is sent after its backoff.
        let still_due = || {
            self.store
                .read(|conn, _| payouts::still_queued(conn, &job.id))
                .unwrap_or(false)
        };
        let outcome = self.gateway.send(&job, &self.urls, &still_due);
        if matches!(outcome, Err(GatewayError::NotSent(_))) {
            self.calls.not_sent();
        } else {
            self.calls.reached();
            self.not_sent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&job.id);
        }
        let id = job.id.clone();
        let then = self.unknown();
        let status_after = self.gateway.can_query().then_some(self.status_after_s);
        let repeatable = self.gateway.refuses_repeats(job.command);
        let written = match outcome {
            Ok(ack) => self.store.write(move |ctx| {
                payouts::mark_sent(ctx, &id, Some(&ack.conversation_id), status_after)
            }),
            Err(GatewayError::NotSent(error)) => {
                let streak = {
                    let mut streaks = self.not_sent.lock().unwrap_or_else(|p| p.into_inner());
                    let n = streaks.entry(id.clone()).or_insert(0);
                    *n += 1;
                    *n
                };
                let retry_s = backoff_s(streak);
                static NOT_SENT: Throttle = Throttle::new(Duration::from_secs(60));
                NOT_SENT.log(module_path!(), log::Level::Warn, format_args!(
                    "payout {id}: not sent, nothing reached M-Pesa (sent again in {retry_s} s): {error}"
                ));
                // The payout's words are read by its sender and kiosk: remit's own error (an
                // OAuth or a socket's) is for the operator's log only.
                self.store.write(move |ctx| {
                    payouts::mark_not_sent(
                        ctx,
                        &id,
                        "not sent yet: remit could not reach M-Pesa, or could not sign in to it; it is sent again automatically, and the operator's log says why",
                        retry_s,
                    )
                })
            }
            // The answer was lost and the gateway would not refuse a second request of it (B2B):
            // sending it again could pay twice, so what became of it is asked instead.
            Err(GatewayError::Transport(error)) if !repeatable => {
                log::warn!("payout {id}: the answer to its {} call was lost; it is asked about, not sent again: {error}", job.command);
                self.store.write(move |ctx| {
                    payouts::mark_unknown(
                        ctx,
                        &id,
                        "the answer to the payment call was lost; M-Pesa does not refuse a repeated B2B request, so it is not sent again",
                        then,
                    )
                })
            }
            Err(GatewayError::Transport(error)) => {
                log::warn!("payout {id}: the gateway did not answer (will retry): {error}");
                // The wait counts from now, not from the claim: a call that took as long as
                // its wait (a timeout of 30 s against waits of 2, 4, 8, 16 s) was sent again
                // the moment it ended, to an M-Pesa that was not answering.
                let not_before = crate::time::now_unix() + backoff_s(job.attempts + 1);
                self.store.write(move |ctx| {
                    payouts::mark_retry(
                        ctx,
                        &id,
                        "M-Pesa did not answer the payment call; it is sent again under the same id, which M-Pesa does not pay twice",
                        not_before,
                        then,
                    )
                })
            }
            Err(GatewayError::Duplicate) => self.store.write(move |ctx| {
                payouts::mark_unknown(
                    ctx,
                    &id,
                    "M-Pesa reports this payout was already submitted; its outcome is not known",
                    then,
                )
            }),
            // A refusal of a second attempt says nothing of the first, whose answer was lost:
            // it may have paid (Daraja refuses a repeated id in words it does not document).
            Err(GatewayError::Refused { code, message }) if job.attempts > 0 => {
                log::warn!("payout {id}: a retry was refused ({code}); an earlier attempt may have paid, so its outcome is unknown");
                self.store.write(move |ctx| {
                    payouts::mark_unknown(
                        ctx,
                        &id,
                        &format!("a retry was refused ({code}: {message}) after an attempt whose answer was lost: the outcome is not known"),
                        then,
                    )
                })
            }
            Err(GatewayError::Refused { code, message }) => self.store.write(move |ctx| {
                let result = PayoutResult::Failed {
                    code: code.clone(),
                    desc: message.clone(),
                };
                payouts::apply_result(
                    ctx,
                    &Actor::system("payouts"),
                    &id,
                    &result,
                    payouts::Reported::NotCarried,
                )
                .map(|_| ())
            }),
        };
        if let Err(e) = written {
            log::error!(
                "payout {}: could not record the gateway's answer: {}",
                job.id,
                e.logged()
            );
        }
        true
    }

    /// Asks what became of one payout; it is asked again later unless its result comes first.
    /// `false` when the query could not be recorded (the database takes no writes): the worker
    /// then pauses, or it would ask again at once, over and over.
    pub fn ask_status(&self, payout_id: PayoutId) -> bool {
        let queries: i64 = self
            .store
            .read(|conn, _| {
                Ok(conn
                    .prepare_cached("SELECT status_queries FROM payouts WHERE id = ?1")?
                    .query_row([&payout_id], |r| r.get(0))?)
            })
            .unwrap_or(0);
        let again_after_s =
            (self.status_after_s.max(1) << queries.clamp(0, 10)).min(STATUS_QUERY_BACKOFF_S_MAX);
        let query = StatusQuery {
            payout_id: payout_id.clone(),
            receipt: None,
        };
        let conversation = match self.gateway.query_status(&query, &self.urls) {
            Some(Ok(ack)) => Some(ack.conversation_id),
            Some(Err(e)) => {
                log::warn!("payout {payout_id}: Transaction Status was not accepted ({e}); asking again in {again_after_s} s");
                None
            }
            None => None,
        };
        match self.store.write(move |ctx| {
            payouts::status_query_sent(ctx, &payout_id, conversation.as_deref(), again_after_s)
        }) {
            Ok(()) => true,
            Err(e) => {
                static UNRECORDED: Throttle = Throttle::new(Duration::from_secs(60));
                UNRECORDED.log(module_path!(), log::Level::Error, format_args!(
                    "could not record a Transaction Status query (the worker pauses until the database takes writes): {}",
                    e.logged()
                ));
                false
            }
        }
    }

    /// Asks for the account balances.
    pub fn ask_balance(&self) {
        match self.gateway.query_balance(&self.urls) {
            Some(Ok(ack)) => {
                let id = ack.conversation_id;
                if let Err(e) = self
                    .store
                    .write(move |ctx| crate::service::float::balance_asked(ctx, &id))
                {
                    log::error!("could not record a balance query: {}", e.logged());
                }
            }
            Some(Err(e)) => log::warn!("the balance query was not accepted: {e}"),
            None => {}
        }
    }

    /// The next job that is due, if any. A payout whose merchant account cannot be read is
    /// flagged for the operator on the way (`payouts::Due::Unreadable`).
    pub fn next_due(&self) -> Result<Option<PayoutJob>> {
        loop {
            let due = self
                .store
                .read(|conn, keys| payouts::next_due(conn, keys, crate::time::now_unix()))?;
            match due {
                None => return Ok(None),
                Some(payouts::Due::Job(job)) => return Ok(Some(job)),
                Some(payouts::Due::Unreadable(id)) => self
                    .store
                    .write(move |ctx| payouts::flag(ctx, &id, payouts::UNREADABLE_ACCOUNT))?,
            }
        }
    }

    /// The next payout due to be asked about, if any (and if the gateway can ask).
    pub fn next_status_query(&self) -> Result<Option<PayoutId>> {
        if !self.gateway.can_query() {
            return Ok(None);
        }
        self.store
            .read(|conn, _| payouts::next_status_query(conn, crate::time::now_unix()))
    }

    /// Does one due thing (a payout to send, a payout to ask about).
    fn work_once(&self, query_first: &mut bool) -> Result<Work> {
        // Sends and status queries take turns while both wait: a backlog of sends (a thousand
        // queued while M-Pesa was away) held every query behind it, and with them the held
        // failures' answers and their money, for minutes.
        if *query_first {
            *query_first = false;
            if let Some(id) = self.next_status_query()? {
                return Ok(if self.ask_status(id) {
                    Work::Done
                } else {
                    Work::Stalled
                });
            }
        }
        if let Some(job) = self.next_due()? {
            *query_first = true;
            // A bug in one payout must not stop every later one; the claim already holds this
            // payout back until its next attempt.
            let id = job.id.clone();
            let run = std::panic::AssertUnwindSafe(|| self.process(job));
            return Ok(match std::panic::catch_unwind(run) {
                Ok(true) => Work::Done,
                Ok(false) => Work::Stalled,
                Err(_) => {
                    log::error!(
                        "payout {id}: the worker panicked; it carries on with the next payout"
                    );
                    Work::Done
                }
            });
        }
        if let Some(id) = self.next_status_query()? {
            return Ok(if self.ask_status(id) {
                Work::Done
            } else {
                Work::Stalled
            });
        }
        Ok(Work::Idle)
    }

    /// Hands the gateway the payouts it accepted before the last stop and never answered
    /// (`Gateway::resume`).
    fn resume(&self) {
        match self.store.write(payouts::held_failures_count_as_sent) {
            Ok(0) => {}
            Ok(n) => log::warn!("{n} payouts left queued with a failure held for Transaction Status (by a server before 2026-12-06) count as sent: asked about, and stuck for the operator if M-Pesa does not answer"),
            Err(e) => log::error!(
                "payout worker cannot count the payouts left queued with a failure held as sent: {}",
                e.logged()
            ),
        }
        let name = self.gateway.name();
        match self
            .store
            .read(|conn, keys| payouts::unanswered(conn, keys, name, RESUMED_PAYOUTS_MAX))
        {
            Ok(unanswered) => self.gateway.resume(unanswered, &self.urls),
            Err(e) => {
                log::error!(
                    "payout worker cannot read the payouts sent before the restart: {}",
                    e.logged()
                )
            }
        }
    }

    /// Starts the worker thread; it stops soon after `stopping` is set (and its wakeup rung).
    pub fn start(self, stopping: Arc<AtomicBool>) -> Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("remit-payouts".into())
            .spawn(move || {
                self.resume();
                let idle = Duration::from_millis(PAYOUT_WORKER_IDLE_MS);
                // While the database takes no writes (a full disk), the worker pauses, twice as
                // long each time up to a minute, rather than claiming the same payout again at
                // once, thousands of times a second.
                let mut stalled = idle;
                let mut float_asked: Option<Instant> = None;
                let mut query_first = false;
                while !stopping.load(Ordering::SeqCst) {
                    if let Some(every) = self.float_every {
                        if float_asked.is_none_or(|at| at.elapsed() >= every) {
                            float_asked = Some(Instant::now());
                            self.ask_balance();
                        }
                    }
                    match self.work_once(&mut query_first) {
                        Ok(Work::Done) => stalled = idle,
                        Ok(Work::Idle) => self.wakeup.wait(idle),
                        Ok(Work::Stalled) => {
                            self.wakeup.wait(stalled);
                            stalled = (stalled * 2).min(Duration::from_secs(60));
                        }
                        Err(e) => {
                            static UNREAD: Throttle = Throttle::new(Duration::from_secs(60));
                            UNREAD.log(
                                module_path!(),
                                log::Level::Error,
                                format_args!("payout worker cannot read the queue: {}", e.logged()),
                            );
                            self.wakeup.wait(idle);
                        }
                    }
                }
            })
            .map_err(|e| Error::internal(format!("cannot start the payout worker: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_two_seconds_to_its_most() {
        let waits: Vec<i64> = (0..=11).map(backoff_s).collect();
        assert_eq!(
            waits,
            [2, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300],
            "attempts 0 to 11"
        );
        assert_eq!(backoff_s(i64::MAX), PAYOUT_BACKOFF_S_MAX);
    }
}
