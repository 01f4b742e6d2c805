//! The payout worker: it takes queued payouts in order, hands each to the gateway with our
//! payout's `OriginatorConversationID` (reused on every retry, so Daraja refuses a duplicate
//! rather than paying twice), and records what came back. It needs only the store, a gateway,
//! the result URLs and its wakeup: it can be built and driven without HTTP.

mod gateway;
mod simulator;

pub use gateway::{Ack, CallbackUrls, Gateway, GatewayError};
pub use simulator::Simulator;

use crate::config::{Config, GatewayKind};
use crate::error::{Error, Result};
use crate::limits::{PAYOUT_BACKOFF_S_MAX, PAYOUT_WORKER_IDLE_MS};
use crate::service::payouts::{self, PayoutJob, PayoutResult};
use crate::service::Actor;
use crate::store::Store;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Wakes a sleeping worker (the payout worker) when there is new work.
#[derive(Default)]
pub struct Wakeup {
    pending: Mutex<bool>,
    cond: Condvar,
}

impl Wakeup {
    /// There is work.
    pub fn notify(&self) {
        if let Ok(mut pending) = self.pending.lock() {
            *pending = true;
            self.cond.notify_all();
        }
    }

    /// Waits until notified or `timeout` passes.
    pub fn wait(&self, timeout: Duration) {
        if let Ok(mut pending) = self.pending.lock() {
            if !*pending {
                if let Ok((guard, _)) = self.cond.wait_timeout(pending, timeout) {
                    pending = guard;
                } else {
                    return;
                }
            }
            *pending = false;
        }
    }
}

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
}

/// The gateway the configuration names (`None` when payouts stay queued).
pub fn gateway_for(config: &Config) -> Option<Arc<dyn Gateway>> {
    match config.gateway {
        GatewayKind::Simulator => Some(Arc::new(Simulator {
            delay: Duration::from_millis(config.sim_delay_ms),
            fail_accounts: config.sim_fail_accounts.clone(),
            timeout_accounts: config.sim_timeout_accounts.clone(),
        })),
        GatewayKind::None => None,
    }
}

/// Backoff before retry `attempt` (1-based): 2, 4, 8 … seconds, at most `PAYOUT_BACKOFF_S_MAX`.
fn backoff_s(attempt: i64) -> i64 {
    (1_i64 << attempt.clamp(1, 8)).min(PAYOUT_BACKOFF_S_MAX)
}

impl Worker {
    /// Claims one job, hands it to the gateway and records the outcome. If the claim cannot be
    /// written, nothing is sent; if the outcome cannot be written, the claim still holds the
    /// payout back until its next attempt time.
    pub fn process(&self, job: PayoutJob) {
        let id = job.id.clone();
        let retry_at = crate::time::now_unix() + backoff_s(job.attempts + 1);
        match self
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
        let outcome = self.gateway.send(&job, &self.urls);
        let id = job.id.clone();
        let written = match outcome {
            Ok(ack) => self
                .store
                .write(move |ctx| payouts::mark_sent(ctx, &id, Some(&ack.conversation_id))),
            Err(GatewayError::Transport(error)) => {
                log::warn!("payout {id}: gateway transport error (will retry): {error}");
                self.store
                    .write(move |ctx| payouts::mark_retry(ctx, &id, &error))
            }
            Err(GatewayError::Duplicate) => self.store.write(move |ctx| {
                payouts::mark_sent(ctx, &id, None)?;
                payouts::flag(
                    ctx,
                    &id,
                    "M-Pesa reports this payout was already submitted; waiting for its result",
                )
            }),
            Err(GatewayError::Refused { code, message }) => self.store.write(move |ctx| {
                let result = PayoutResult::Failed {
                    code,
                    desc: message,
                };
                payouts::apply_result(ctx, &Actor::system("payouts"), &id, &result, None)
                    .map(|_| ())
            }),
        };
        if let Err(e) = written {
            log::error!(
                "payout {}: could not record the gateway's answer: {e:?}",
                job.id
            );
        }
    }

    /// The next job that is due, if any.
    pub fn next_due(&self) -> Result<Option<PayoutJob>> {
        self.store
            .read(|conn, keys| payouts::next_due(conn, keys, crate::time::now_unix()))
    }

    /// Starts the worker thread; it stops soon after `stopping` is set (and its wakeup rung).
    pub fn start(self, stopping: Arc<AtomicBool>) -> Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("remit-payouts".into())
            .spawn(move || {
                let idle = Duration::from_millis(PAYOUT_WORKER_IDLE_MS);
                while !stopping.load(Ordering::SeqCst) {
                    match self.next_due() {
                        Ok(Some(job)) => {
                            // A bug in one payout must not stop every later one; the claim
                            // already holds this payout back until its next attempt.
                            let id = job.id.clone();
                            let run = std::panic::AssertUnwindSafe(|| self.process(job));
                            if std::panic::catch_unwind(run).is_err() {
                                log::error!("payout {id}: the worker panicked; it carries on with the next payout");
                            }
                        }
                        Ok(None) => self.wakeup.wait(idle),
                        Err(e) => {
                            log::error!("payout worker cannot read the queue: {e:?}");
                            self.wakeup.wait(idle);
                        }
                    }
                }
            })
            .map_err(|e| Error::internal(format!("cannot start the payout worker: {e}")))
    }
}
