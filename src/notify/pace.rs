//! Notifications yield to the ledger. While the writer runs more than
//! `LEDGER_BUSY_COMMANDS_PER_S` commands a second that are not the notifier's own (a burst of
//! approvals), the fan-out and every delivery worker rest after each stint of work so that it
//! takes at most `NOTIFY_BUSY_SHARE_PERCENT` of their time: events wait in the outbox and
//! deliveries lag, and both catch up at full speed once the burst is over. A kiosk's ledger is
//! never that busy; a benchmark's is.

use crate::limits::{LEDGER_BUSY_COMMANDS_PER_S, LEDGER_BUSY_WINDOW_MS, NOTIFY_BUSY_SHARE_PERCENT};
use crate::store::WriterStats;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Window {
    at: Instant,
    commands: u64,
    own: u64,
    busy: bool,
}

/// Whether the ledger is busy, and how long a stint of notification work must rest.
pub struct Pace {
    stats: Arc<WriterStats>,
    /// Writer commands the notifier itself sent.
    own: AtomicU64,
    /// Stints of notification work followed by a rest (the ledger was busy).
    pub rests: AtomicU64,
    window: Mutex<Window>,
}

impl Pace {
    /// A pace read from the writer's counters.
    pub fn new(stats: Arc<WriterStats>) -> Pace {
        let commands = stats.commands.load(Ordering::Relaxed);
        Pace {
            stats,
            own: AtomicU64::new(0),
            rests: AtomicU64::new(0),
            window: Mutex::new(Window {
                at: Instant::now(),
                commands,
                own: 0,
                busy: false,
            }),
        }
    }

    /// The notifier sends a writer command (not counted as the ledger's work).
    pub fn own_command(&self) {
        self.own.fetch_add(1, Ordering::Relaxed);
    }

    /// Is the ledger busy? Measured over the last `LEDGER_BUSY_WINDOW_MS`.
    pub fn busy(&self) -> bool {
        let Ok(mut w) = self.window.lock() else {
            return false;
        };
        let elapsed = w.at.elapsed();
        if elapsed >= Duration::from_millis(LEDGER_BUSY_WINDOW_MS) {
            let commands = self.stats.commands.load(Ordering::Relaxed);
            let own = self.own.load(Ordering::Relaxed);
            let ledger = commands
                .saturating_sub(w.commands)
                .saturating_sub(own.saturating_sub(w.own));
            w.busy = ledger as f64 / elapsed.as_secs_f64() > LEDGER_BUSY_COMMANDS_PER_S as f64;
            *w = Window {
                at: Instant::now(),
                commands,
                own,
                busy: w.busy,
            };
        }
        w.busy
    }

    /// After `worked` of notification work (the worker's own: not the time it waited for a
    /// receiver, which costs the ledger nothing): while the ledger is busy, rests so that the
    /// work took at most its share of the time, and no longer than the burst (the ledger is
    /// asked again as it rests) or the worker (`stopped`: the server stops, the endpoint is
    /// deleted). A rest once outlived its burst by minutes: a receiver that took 10 s to answer
    /// counted as 10 s of work, and bought 5 minutes of rest.
    pub fn rest(&self, worked: Duration, stopped: &dyn Fn() -> bool) {
        if !self.busy() {
            return;
        }
        self.rests.fetch_add(1, Ordering::Relaxed);
        let share = NOTIFY_BUSY_SHARE_PERCENT.clamp(1, 100);
        let rest = worked.saturating_mul(100 - share as u32) / share as u32;
        let until = Instant::now() + rest;
        while Instant::now() < until && !stopped() && self.busy() {
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
    }
}
