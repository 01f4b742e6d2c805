//! One endpoint's delivery worker: it takes the endpoint's due deliveries from a read connection,
//! posts each event signed with the endpoint's secret, and records the attempts a batch at a time
//! (one writer command for many). A receiver that is slow, or gone, holds this thread only:
//! every other endpoint has its own, and the ledger never waits for any of them.

use super::guard;
use super::Hub;
use crate::domain::WebhookEndpointId;
use crate::limits::{
    NOTIFY_IDLE_MS, WEBHOOK_ANSWER_BYTES_MAX, WEBHOOK_BATCH_MAX, WEBHOOK_BATCH_MAX_BUSY,
    WEBHOOK_RECORD_EVERY_MS,
};
use crate::service::endpoints::{self, Attempt, DueDelivery, WorkerEndpoint};
use crate::store::Store;
use crate::wakeup::Wakeup;
use crate::wire::webhook;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The worker of one endpoint.
pub(super) struct EndpointWorker {
    pub(super) id: WebhookEndpointId,
    pub(super) store: Arc<Store>,
    pub(super) hub: Arc<Hub>,
    pub(super) agent: ureq::Agent,
    pub(super) retry_base: Duration,
    pub(super) retry_cap: Duration,
    pub(super) wakeup: Arc<Wakeup>,
    /// Set when the endpoint is deleted.
    pub(super) stop: Arc<AtomicBool>,
    /// Set when the server stops.
    pub(super) stopping: Arc<AtomicBool>,
}

impl EndpointWorker {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.stopping.load(Ordering::SeqCst)
    }

    /// Until the endpoint is deleted or the server stops: deliver what is due, then sleep until
    /// the next delivery is due (or new ones are made).
    pub(super) fn run(self) {
        let idle = Duration::from_millis(NOTIFY_IDLE_MS);
        while !self.stopped() {
            let endpoint = match self
                .store
                .read(|conn, keys| endpoints::for_worker(conn, keys, &self.id))
            {
                Ok(Some(endpoint)) => endpoint,
                Ok(None) => return,
                Err(e) => {
                    log::warn!(
                        "webhook endpoint {}: cannot read it: {}",
                        self.id,
                        e.logged()
                    );
                    self.wakeup.wait(idle);
                    continue;
                }
            };
            if !endpoint.enabled {
                self.wakeup.wait(idle);
                continue;
            }
            let now_ms = crate::time::now_unix_ms();
            let batch = if self.hub.pace.busy() {
                WEBHOOK_BATCH_MAX_BUSY
            } else {
                WEBHOOK_BATCH_MAX
            };
            let due = self
                .store
                .read(|conn, _| endpoints::due(conn, &self.id, now_ms, batch));
            match due {
                Ok(due) if !due.is_empty() => {
                    if !self.deliver(due) {
                        // Its attempts could not be recorded (a full disk): they are made
                        // again, but not before this wait.
                        self.wakeup.wait(idle);
                    }
                }
                Ok(_) => self.wakeup.wait(self.until_next_due(idle)),
                Err(e) => {
                    log::warn!(
                        "webhook endpoint {}: cannot read its deliveries: {}",
                        self.id,
                        e.logged()
                    );
                    self.wakeup.wait(idle);
                }
            }
        }
    }

    /// How long to sleep: until the next pending delivery is due, at most `idle`.
    fn until_next_due(&self, idle: Duration) -> Duration {
        let next = self
            .store
            .read(|conn, _| endpoints::next_due_at(conn, &self.id))
            .ok()
            .flatten()
            .and_then(|at| crate::time::parse_rfc3339_ms(&at));
        match next {
            Some(at) => {
                let wait = at - crate::time::now_unix_ms();
                Duration::from_millis(wait.clamp(1, idle.as_millis() as i64) as u64)
            }
            None => idle,
        }
    }

    /// Posts each due delivery and records them; then, while the ledger is busy, rests so that
    /// this stint took no more than its share of the time. The endpoint is read again before
    /// each post, so that one deleted or paused meanwhile gets nothing more (the rest of a batch
    /// of 64, up to 10 s each, was posted after the admin's answer). False when attempts could
    /// not be recorded: the batch stops there.
    fn deliver(&self, due: Vec<DueDelivery>) -> bool {
        let started = Instant::now();
        // The time spent waiting for the receiver's answers: not work the ledger pays for.
        let mut waited = Duration::ZERO;
        let mut made = Vec::with_capacity(due.len());
        let mut recorded = Instant::now();
        for delivery in &due {
            if self.stopped() {
                break;
            }
            let endpoint = self
                .store
                .read(|conn, keys| endpoints::for_worker(conn, keys, &self.id));
            let Ok(Some(endpoint)) = endpoint else { break };
            if !endpoint.enabled {
                break;
            }
            let posted = Instant::now();
            made.push(self.attempt(&endpoint, delivery));
            waited += posted.elapsed();
            if recorded.elapsed() >= Duration::from_millis(WEBHOOK_RECORD_EVERY_MS) {
                if !self.record(std::mem::take(&mut made)) {
                    return false;
                }
                recorded = Instant::now();
            }
        }
        let recorded = self.record(made);
        self.hub
            .pace
            .rest(started.elapsed().saturating_sub(waited), &|| self.stopped());
        recorded
    }

    /// Posts one event: `{"id", "type", "createdAt", "data"}`, signed now.
    fn attempt(&self, endpoint: &WorkerEndpoint, delivery: &DueDelivery) -> Attempt {
        let body = webhook::body(&delivery.event);
        let at_ms = crate::time::now_unix_ms();
        let signature = webhook::sign(&endpoint.secret, at_ms.div_euclid(1000), &body);
        let started = Instant::now();
        let answer = self
            .agent
            .post(endpoint.url.as_str())
            .header("Content-Type", "application/json")
            .header(webhook::SIGNATURE_HEADER, &signature)
            .send(&body[..]);
        let (status_code, error) = match answer {
            Ok(mut response) => {
                let status = response.status().as_u16();
                // Read (a little of) the answer so that the connection can be used again.
                let _ = response
                    .body_mut()
                    .with_config()
                    .limit(WEBHOOK_ANSWER_BYTES_MAX)
                    .read_to_vec();
                let error = (!(200..300).contains(&status)).then(|| format!("HTTP {status}"));
                (Some(status), error)
            }
            Err(e) => (None, Some(guard::describe(&e))),
        };
        Attempt {
            delivery_id: delivery.id.clone(),
            at_ms,
            status_code,
            duration: started.elapsed(),
            error,
        }
    }

    /// Records attempts in one writer command. If it cannot be written (the server stopping, a
    /// full disk), those deliveries are still pending: they are posted again (at least once);
    /// false then.
    fn record(&self, made: Vec<Attempt>) -> bool {
        if made.is_empty() {
            return true;
        }
        let (base, cap) = (self.retry_base, self.retry_cap);
        // Made on the wire, whether or not their record commits (one that does not is made
        // again, and counted again: before, only the recorded were, and a receiver's log showed
        // more than the counter).
        let stats = &self.hub.stats;
        let failed_attempts = made.iter().filter(|a| !a.delivered()).count() as u64;
        stats
            .attempts
            .fetch_add(made.len() as u64, Ordering::Relaxed);
        stats
            .attempts_failed
            .fetch_add(failed_attempts, Ordering::Relaxed);
        self.hub.pace.own_command();
        match self
            .store
            .write(move |ctx| endpoints::record(ctx, &made, base, cap))
        {
            Ok(tally) => {
                stats
                    .delivered
                    .fetch_add(tally.delivered, Ordering::Relaxed);
                stats.failed.fetch_add(tally.failed, Ordering::Relaxed);
                if tally.failed > 0 {
                    log::warn!(
                        "webhook endpoint {}: {} deliveries failed for good (their retries ran out)",
                        self.id,
                        tally.failed
                    );
                }
                true
            }
            Err(e) => {
                // Once every 10 s for all endpoints.
                crate::error::warn_every_10s!(
                    "webhook endpoint {}: could not record its attempts (they are made again): {}",
                    self.id,
                    e.logged()
                );
                false
            }
        }
    }
}
