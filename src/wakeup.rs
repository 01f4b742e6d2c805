//! A wakeup for a sleeping background thread: rung when there is new work (an approval for the
//! payout worker, a commit that emitted events for the fan-out), waited on with a timeout.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Wakes a sleeping worker when there is new work. A ring while nobody waits is kept: the next
/// wait returns at once.
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
