//! What the HTTP handlers share: the store, the configuration, the metrics, the authenticator
//! and the payout worker's wakeup. Built once by `runtime::start`; nothing here knows HTTP.

use crate::auth::Authenticator;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;
use std::sync::{Arc, Condvar, Mutex};
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
}
