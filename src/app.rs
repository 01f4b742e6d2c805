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
}
