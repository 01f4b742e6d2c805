//! Housekeeping in the background: token use is written every few seconds, payouts that became
//! stuck get their `payout.stuck` event within seconds, payment requests past their expiry are
//! marked `expired` every minute, expired idempotency keys are forgotten every hour, and
//! notifications done with and older than `REMIT_NOTIFICATIONS_KEEP_DAYS` every ten minutes (a
//! command of a few hundred events at a time, again a second later while old ones remain). Each
//! job runs at start, then at its interval; the idempotency keys' first at start only when the
//! newest key kept was written within the hour by this clock, else an hour after (see below).

use crate::app::App;
use crate::error::{Error, Result};
use crate::limits::{
    EXPIRY_SWEEP_EVERY_S, HOUSEKEEPING_AGAIN_MS, HOUSEKEEPING_TICK_MS, IDEMPOTENCY_PURGE_EVERY_S,
    NOTIFICATIONS_FORGET_BATCH, NOTIFICATIONS_FORGET_EVERY_S, STUCK_SWEEP_EVERY_S,
    TOKEN_USE_FLUSH_MS,
};
use crate::store::{Store, WriteCtx};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The writer command of a job: given where its last command stopped (0 at the start of a
/// pass), how many rows it changed and, when more is left, where the next should go on.
type JobCommand = Arc<dyn Fn(&WriteCtx<'_>, i64) -> Result<(usize, Option<i64>)> + Send + Sync>;

/// A writer command run at an interval; what it returns is how many rows it changed, and the
/// log says so when it changed any.
struct Job {
    every: Duration,
    next: Instant,
    run: JobCommand,
    /// Where the next command of a pass goes on (kept only once a command has committed: a
    /// writer command may run twice, and a batch may fail after it ran).
    resume: i64,
    /// Rows changed so far in a pass not yet logged.
    unlogged: usize,
    /// `{n}` is replaced by the count.
    done: &'static str,
    what: &'static str,
}

impl Job {
    fn new(every: Duration, run: JobCommand, done: &'static str, what: &'static str) -> Job {
        Job {
            every,
            next: Instant::now(),
            run,
            resume: 0,
            unlogged: 0,
            done,
            what,
        }
    }

    /// A job whose command is a sweep of rows, done whole each time.
    fn sweep(
        every: Duration,
        run: fn(&WriteCtx<'_>) -> Result<usize>,
        done: &'static str,
        what: &'static str,
    ) -> Job {
        Job::new(
            every,
            Arc::new(move |ctx, _| Ok((run(ctx)?, None))),
            done,
            what,
        )
    }

    /// The job's first run waits `wait` after the start (every other job's runs at the start).
    fn first_after(mut self, wait: Duration) -> Job {
        self.next = Instant::now() + wait;
        self
    }

    fn tick(&mut self, store: &Store) {
        let now = Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + self.every;
        let run = Arc::clone(&self.run);
        let resume = self.resume;
        // A sweep may change hundreds of rows (`Store::write_bulk`).
        match store.write_bulk(move |ctx| run(ctx, resume)) {
            Ok((n, more)) => {
                self.unlogged += n;
                self.resume = more.unwrap_or(0);
                // A backlog is worked through a command at a time, a moment apart; the log
                // gives the whole pass's count at its end.
                if more.is_some() {
                    self.next = now + Duration::from_millis(HOUSEKEEPING_AGAIN_MS);
                    return;
                }
                if self.unlogged > 0 {
                    let n = std::mem::take(&mut self.unlogged);
                    log::info!("{}", self.done.replace("{n}", &n.to_string()));
                }
            }
            Err(e) => {
                self.resume = 0;
                log::warn!("could not {}: {}", self.what, e.logged());
            }
        }
    }
}

/// The job that forgets notifications done with (`service::retention`), a window of events
/// per command, going on from where the last stopped while old ones remain.
fn forget_notifications(keep_for: Duration) -> Job {
    let keep_s = i64::try_from(keep_for.as_secs()).unwrap_or(i64::MAX);
    Job::new(
        Duration::from_secs(NOTIFICATIONS_FORGET_EVERY_S),
        Arc::new(move |ctx, after| {
            let done = crate::service::retention::forget_done(
                ctx,
                keep_s,
                after,
                NOTIFICATIONS_FORGET_BATCH,
            )?;
            Ok((done.events + done.deliveries + done.sms, done.more_after))
        }),
        "forgot {n} notification record(s) done with and past their keeping (events, webhook deliveries, texts)",
        "forget old notifications",
    )
}

/// Starts the housekeeping thread; it stops soon after `stopping` is set.
pub fn start(app: Arc<App>, stopping: Arc<AtomicBool>) -> Result<JoinHandle<()>> {
    // The clock's reading at the start, against which a clock set ahead is told.
    crate::time::set_ahead_s();
    let stuck_after_s = app.config.payout_timeout_s;
    let now = crate::time::now_unix();
    let clock_agrees = app
        .store
        .read(|conn, _| crate::service::idempotency::newest_key_within_the_hour(conn, now))
        .unwrap_or(false);
    let mut jobs = [
        Job::new(
            Duration::from_secs(STUCK_SWEEP_EVERY_S),
            Arc::new(move |ctx, _| {
                Ok((
                    crate::service::payouts::emit_stuck_due(ctx, stuck_after_s)?,
                    None,
                ))
            }),
            "{n} payout(s) stuck: payout.stuck emitted",
            "look for stuck payouts",
        ),
        Job::sweep(
            Duration::from_secs(EXPIRY_SWEEP_EVERY_S),
            crate::service::requests::expire_due,
            "{n} payment request(s) expired",
            "expire payment requests",
        ),
        // At the start only when the newest key kept was written within the hour by this
        // clock; else an hour after: a server started on a clock set ahead (a kiosk's board
        // without its clock battery, NTP not yet heard) forgot at once the keys of the minutes
        // before, and a client's retry once NTP had set the clock right made its request a
        // second time; but a server restarted more often than hourly never forgot a key.
        // (`set_ahead_s` tells a clock set ahead while the server runs.)
        Job::sweep(
            Duration::from_secs(IDEMPOTENCY_PURGE_EVERY_S),
            crate::service::idempotency::purge_expired,
            "forgot {n} expired idempotency keys",
            "purge idempotency keys",
        )
        .first_after(if clock_agrees {
            Duration::ZERO
        } else {
            Duration::from_secs(IDEMPOTENCY_PURGE_EVERY_S)
        }),
        forget_notifications(app.config.notify.keep_for),
    ];
    std::thread::Builder::new()
        .name("remit-housekeeping".into())
        .spawn(move || {
            let flush_every = Duration::from_millis(TOKEN_USE_FLUSH_MS);
            let mut flushed = Instant::now();
            while !stopping.load(Ordering::SeqCst) {
                for job in &mut jobs {
                    job.tick(&app.store);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_job_goes_on_where_its_last_command_stopped_and_starts_over_after_a_pass_or_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::clone(&seen);
        // What each command returns: rows changed and where the next goes on, or a failure.
        let mut job = Job::new(
            Duration::from_secs(3600),
            Arc::new(move |_, after| {
                let mut calls = calls.lock().unwrap();
                calls.push(after);
                match calls.len() {
                    1 => Ok((5, Some(10))),
                    2 => Ok((5, Some(20))),
                    3 => Ok((1, None)),
                    4 => Ok((2, Some(7))),
                    5 => Err(Error::internal("the command failed")),
                    _ => Ok((0, None)),
                }
            }),
            "did {n}",
            "do it",
        );
        let calls = || seen.lock().unwrap().clone();
        job.tick(&store);
        // More is left: the next command comes a moment later, not at the job's interval.
        let again = Instant::now() + Duration::from_millis(HOUSEKEEPING_AGAIN_MS);
        assert!(job.next <= again, "{:?}", job.next);
        assert_eq!(job.unlogged, 5);
        job.tick(&store);
        assert_eq!(calls(), [0], "not due yet");
        for _ in 0..5 {
            job.next = Instant::now();
            job.tick(&store);
            if calls().len() == 3 {
                // The pass is done: its rows are logged and the next pass is an interval away.
                assert_eq!(job.unlogged, 0);
                assert!(job.next > Instant::now() + Duration::from_secs(3000));
            }
        }
        // Each command went on from the last; a pass and a failure start over from the first.
        assert_eq!(calls(), [0, 10, 20, 0, 7, 0]);
    }
}
