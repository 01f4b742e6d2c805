//! Housekeeping in the background: token use is written every few seconds, payouts that became
//! stuck get their `payout.stuck` event within seconds, payment requests past their expiry are
//! marked `expired` every minute, expired idempotency keys are forgotten every hour. Each job
//! runs at start, then at its interval.

use crate::app::App;
use crate::error::{Error, Result};
use crate::limits::{
    EXPIRY_SWEEP_EVERY_S, HOUSEKEEPING_TICK_MS, IDEMPOTENCY_PURGE_EVERY_S, STUCK_SWEEP_EVERY_S,
    TOKEN_USE_FLUSH_MS,
};
use crate::store::WriteCtx;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The writer command of a job.
type JobCommand = Arc<dyn Fn(&WriteCtx<'_>) -> Result<usize> + Send + Sync>;

/// A writer command run at an interval; what it returns is how many rows it changed, and the
/// log says so when it changed any.
struct Job {
    every: Duration,
    last: Option<Instant>,
    run: JobCommand,
    /// `{n}` is replaced by the count.
    done: &'static str,
    what: &'static str,
}

impl Job {
    fn tick(&mut self, app: &App) {
        if self.last.is_some_and(|at| at.elapsed() < self.every) {
            return;
        }
        self.last = Some(Instant::now());
        let run = Arc::clone(&self.run);
        // A sweep may change hundreds of rows (`Store::write_bulk`).
        match app.store.write_bulk(move |ctx| run(ctx)) {
            Ok(0) => {}
            Ok(n) => log::info!("{}", self.done.replace("{n}", &n.to_string())),
            Err(e) => log::warn!("could not {}: {}", self.what, e.logged()),
        }
    }
}

/// Starts the housekeeping thread; it stops soon after `stopping` is set.
pub fn start(app: Arc<App>, stopping: Arc<AtomicBool>) -> Result<JoinHandle<()>> {
    let stuck_after_s = app.config.payout_timeout_s;
    let mut jobs = [
        Job {
            every: Duration::from_secs(STUCK_SWEEP_EVERY_S),
            last: None,
            run: Arc::new(move |ctx| crate::service::payouts::emit_stuck_due(ctx, stuck_after_s)),
            done: "{n} payout(s) stuck: payout.stuck emitted",
            what: "look for stuck payouts",
        },
        Job {
            every: Duration::from_secs(EXPIRY_SWEEP_EVERY_S),
            last: None,
            run: Arc::new(crate::service::requests::expire_due),
            done: "{n} payment request(s) expired",
            what: "expire payment requests",
        },
        Job {
            every: Duration::from_secs(IDEMPOTENCY_PURGE_EVERY_S),
            last: None,
            run: Arc::new(crate::service::idempotency::purge_expired),
            done: "forgot {n} expired idempotency keys",
            what: "purge idempotency keys",
        },
    ];
    std::thread::Builder::new()
        .name("remit-housekeeping".into())
        .spawn(move || {
            let flush_every = Duration::from_millis(TOKEN_USE_FLUSH_MS);
            let mut flushed = Instant::now();
            while !stopping.load(Ordering::SeqCst) {
                for job in &mut jobs {
                    job.tick(&app);
                }
                if flushed.elapsed() >= flush_every {
                    flushed = Instant::now();
                    app.auth.flush_token_use();
                }
                std::thread::sleep(Duration::from_millis(HOUSEKEEPING_TICK_MS));
            }
        })
        .map_err(|e| Error::internal(format!("cannot start the housekeeping thread: {e}")))
}
