//! What the HTTP handlers share: the store, the configuration, the metrics, the authenticator,
//! the payout worker's wakeup, the notifier's hub and replication's status. Built once by
//! `runtime::start`; nothing here knows HTTP.

use crate::auth::Authenticator;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::payout::Wakeup;
use crate::store::Store;
use std::sync::Arc;

/// The shared context of the HTTP handlers.
pub struct App {
    /// The database.
    pub store: Arc<Store>,
    /// The configuration.
    pub config: Config,
    /// Request counters.
    pub metrics: Metrics,
    /// Bearer tokens → users.
    pub auth: Authenticator,
    /// The secret path token of the M-Pesa result URL.
    pub callback_token: String,
    /// Wakes the payout worker after an approval.
    pub payouts_wakeup: Arc<Wakeup>,
    /// Wakes the notifier (an endpoint changed, a delivery to retry) and counts what it did.
    pub notify: Arc<crate::notify::Hub>,
    /// Replication into PostgreSQL, when `REMIT_REPLICATE_TO` is set.
    pub replication: Option<Arc<crate::replicate::Status>>,
    /// False until the start has done its work (`remit serve`: the first admin made and its
    /// token printed): `/health` answers `503 starting` until then, so a script that waits
    /// for it finds what the start prints already written.
    pub ready: std::sync::atomic::AtomicBool,
    /// The background threads (payouts, housekeeping, notifications, replication): `/health`
    /// and `/metrics` name any that ended before the stop.
    pub threads: crate::runtime::Threads,
    /// `GET /admin/integrity`'s check, one at a time: it reads the whole ledger.
    pub integrity_check: OneAtATime,
}

/// Work that runs once at a time: `start` is `None` while it runs.
#[derive(Default)]
pub struct OneAtATime(std::sync::atomic::AtomicBool);

/// Held while the work runs; ends it when dropped (a panic included).
pub struct Running<'a>(&'a OneAtATime);

impl OneAtATime {
    pub fn start(&self) -> Option<Running<'_>> {
        use std::sync::atomic::Ordering;
        self.0
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Running(self))
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0 .0.store(false, std::sync::atomic::Ordering::Release);
    }
}
