//! Notifications out, the background side: the fan-out thread (outbox events → webhook
//! deliveries and SMS, `service::fanout`), one delivery worker per webhook endpoint
//! (`webhooks`), and the SMS worker with its gateways (`sms`). None of it runs on the writer
//! thread: the writer only appends events (`WriteCtx::emit`) and records what the workers did,
//! a batch at a time. A slow or dead receiver holds only its own endpoint's worker.
//!
//! Built and started by `runtime`; the HTTP handlers reach it through `Hub` (an endpoint added
//! or changed, a delivery to retry now).

mod guard;
mod pace;
pub mod sms;
mod webhooks;

pub use guard::GuardResolver;
pub use pace::Pace;
pub use sms::{AfricasTalking, SmsGateway};

use crate::config::NotifyConfig;
use crate::domain::WebhookEndpointId;
use crate::error::{Error, Result};
use crate::limits::{ENDPOINTS_RECHECK_S, FANOUT_COALESCE_MS, FANOUT_EVENTS_MAX, NOTIFY_IDLE_MS};
use crate::service::fanout;
use crate::store::Store;
use crate::wakeup::Wakeup;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counters of notifications since the start, for `/metrics`.
#[derive(Default, Debug)]
pub struct Stats {
    /// Webhook attempts made.
    pub attempts: AtomicU64,
    /// Attempts that were not a 2xx answer (an error status, or no answer).
    pub attempts_failed: AtomicU64,
    /// Deliveries a receiver took.
    pub delivered: AtomicU64,
    /// Deliveries whose retries ran out (`failed`).
    pub failed: AtomicU64,
    /// SMS the gateway took.
    pub sms_sent: AtomicU64,
    /// SMS refused, or out of tries.
    pub sms_failed: AtomicU64,
    /// SMS tries that will be made again.
    pub sms_retried: AtomicU64,
}

struct Worker {
    wakeup: Arc<Wakeup>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// What the rest of the server knows of the notifier: ways to wake it, and its counters.
pub struct Hub {
    fanout: Arc<Wakeup>,
    changed: AtomicBool,
    workers: Mutex<HashMap<WebhookEndpointId, Worker>>,
    sms: Arc<Wakeup>,
    /// Counters for `/metrics`.
    pub stats: Stats,
    /// Whether the ledger is busy (notifications then yield to it).
    pub pace: Pace,
}

impl Hub {
    /// A hub woken by `store`'s commits that emit events.
    pub fn new(store: &Store) -> Hub {
        Hub {
            fanout: Arc::clone(store.events()),
            changed: AtomicBool::new(true),
            workers: Mutex::new(HashMap::new()),
            sms: Arc::new(Wakeup::default()),
            stats: Stats::default(),
            pace: Pace::new(Arc::clone(&store.stats)),
        }
    }

    /// An endpoint was added, enabled, disabled or deleted: its worker is started, woken or
    /// stopped, and the fan-out reads the endpoints again.
    pub fn endpoints_changed(&self) {
        self.changed.store(true, Ordering::SeqCst);
        self.fanout.notify();
        if let Ok(workers) = self.workers.lock() {
            for worker in workers.values() {
                worker.wakeup.notify();
            }
        }
    }

    /// Wakes an endpoint's worker (new deliveries, or one to retry now).
    pub fn wake_endpoint(&self, id: &WebhookEndpointId) {
        if let Ok(workers) = self.workers.lock() {
            if let Some(worker) = workers.get(id) {
                worker.wakeup.notify();
            }
        }
    }
}

/// Everything the notifier needs.
pub struct Notifier {
    /// The database.
    pub store: Arc<Store>,
    /// Timeouts, retries, the SMS gateway.
    pub config: NotifyConfig,
    /// Shared with the handlers.
    pub hub: Arc<Hub>,
}

impl Notifier {
    /// Starts the fan-out thread (which starts one worker per endpoint) and, when the SMS
    /// gateway sends, the SMS worker. They stop soon after `stopping` is set (a delivery in
    /// flight is given until its timeout).
    pub fn start(self, stopping: Arc<AtomicBool>) -> Result<Vec<JoinHandle<()>>> {
        let mut threads = Vec::new();
        if let Some(gateway) = sms::gateway_for(&self.config.sms) {
            let worker = sms::SmsWorker {
                store: Arc::clone(&self.store),
                gateway,
                hub: Arc::clone(&self.hub),
                retry_base: self.config.sms_retry_base,
                wakeup: Arc::clone(&self.hub.sms),
            };
            threads.push(worker.start(Arc::clone(&stopping))?);
        }
        let thread = std::thread::Builder::new()
            .name("remit-notify".into())
            .spawn(move || self.run(&stopping))
            .map_err(|e| Error::internal(format!("cannot start the notifier: {e}")))?;
        threads.push(thread);
        Ok(threads)
    }

    fn run(self, stopping: &Arc<AtomicBool>) {
        let options = fanout::Options {
            max_events: FANOUT_EVENTS_MAX,
            retry_for: self.config.webhook_retry_for,
            sms_gateway: self.config.sms.name(),
            sms_sends: self.config.sms.sends(),
        };
        let mut checked: Option<Instant> = None;
        while !stopping.load(Ordering::SeqCst) {
            let due =
                checked.is_none_or(|at| at.elapsed() >= Duration::from_secs(ENDPOINTS_RECHECK_S));
            if self.hub.changed.swap(false, Ordering::SeqCst) || due {
                checked = Some(Instant::now());
                if let Err(e) = self.reconcile(stopping) {
                    log::warn!("could not read the webhook endpoints: {}", e.logged());
                }
            }
            let fanned = self.fan_out(&options, stopping);
            if fanned > 0 {
                // Coalesce: while the ledger is busy its events are fanned out a batch at a
                // time, not in one more writer command per commit.
                std::thread::sleep(Duration::from_millis(FANOUT_COALESCE_MS));
            }
            self.hub.fanout.wait(Duration::from_millis(NOTIFY_IDLE_MS));
        }
        self.stop_workers();
    }

    /// Fans out everything waiting (while the ledger is busy: in small commands, resting
    /// between them); returns how many events.
    fn fan_out(&self, options: &fanout::Options, stopping: &AtomicBool) -> usize {
        let mut total = 0;
        loop {
            let mut options = *options;
            if self.hub.pace.busy() {
                options.max_events = options
                    .max_events
                    .min(crate::limits::FANOUT_EVENTS_MAX_BUSY);
            }
            let started = Instant::now();
            self.hub.pace.own_command();
            let done = self.store.write(move |ctx| fanout::fan_out(ctx, &options));
            self.hub
                .pace
                .rest(started.elapsed(), &|| stopping.load(Ordering::SeqCst));
            match done {
                Ok(out) => {
                    total += out.events;
                    for id in &out.endpoints {
                        self.hub.wake_endpoint(id);
                    }
                    if out.sms > 0 {
                        self.hub.sms.notify();
                    }
                    if !out.more || stopping.load(Ordering::SeqCst) {
                        return total;
                    }
                }
                Err(e) => {
                    crate::error::warn_every_10s!(
                        "the fan-out of events failed (it is tried again): {}",
                        e.logged()
                    );
                    return total;
                }
            }
        }
    }

    /// One worker per endpoint that is not deleted; a deleted one's worker is told to stop.
    fn reconcile(&self, stopping: &Arc<AtomicBool>) -> Result<()> {
        let live = self
            .store
            .read(|conn, _| crate::service::endpoints::live_ids(conn))?;
        let Ok(mut workers) = self.hub.workers.lock() else {
            return Err(Error::internal("the webhook workers' lock is poisoned"));
        };
        workers.retain(|id, worker| {
            let keep = live.contains(id) && !worker.thread.is_finished();
            if !keep {
                worker.stop.store(true, Ordering::SeqCst);
                worker.wakeup.notify();
            }
            keep
        });
        for id in live {
            if workers.contains_key(&id) {
                continue;
            }
            let wakeup = Arc::new(Wakeup::default());
            let stop = Arc::new(AtomicBool::new(false));
            let worker = webhooks::EndpointWorker {
                id: id.clone(),
                store: Arc::clone(&self.store),
                hub: Arc::clone(&self.hub),
                agent: guard::agent(
                    self.config.webhook_allow_private,
                    self.config.webhook_timeout,
                    self.config.webhook_connect_timeout,
                ),
                retry_base: self.config.webhook_retry_base,
                retry_cap: self.config.webhook_retry_cap,
                wakeup: Arc::clone(&wakeup),
                stop: Arc::clone(&stop),
                stopping: Arc::clone(stopping),
            };
            let thread = std::thread::Builder::new()
                .name("remit-webhook".into())
                .spawn(move || worker.run())
                .map_err(|e| Error::internal(format!("cannot start a webhook worker: {e}")))?;
            workers.insert(
                id,
                Worker {
                    wakeup,
                    stop,
                    thread,
                },
            );
        }
        Ok(())
    }

    /// Tells every worker to stop and waits for them a moment: one in the middle of a delivery
    /// is left to finish it on its own (its attempt is then made again after the restart).
    fn stop_workers(&self) {
        let Ok(mut workers) = self.hub.workers.lock() else {
            return;
        };
        let all: Vec<Worker> = workers.drain().map(|(_, w)| w).collect();
        drop(workers);
        for w in &all {
            w.stop.store(true, Ordering::SeqCst);
            w.wakeup.notify();
        }
        let deadline = Instant::now() + Duration::from_millis(crate::limits::NOTIFY_STOP_WAIT_MS);
        for w in all {
            while !w.thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if w.thread.is_finished() {
                let _ = w.thread.join();
            }
        }
    }
}
