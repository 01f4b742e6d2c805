//! Housekeeping in the background: token use is written every few seconds, payment requests
//! past their expiry are marked `expired` every minute, expired idempotency keys are forgotten
//! every hour.

use crate::app::App;
use crate::error::{Error, Result};
use crate::limits::{
    EXPIRY_SWEEP_EVERY_S, HOUSEKEEPING_TICK_MS, IDEMPOTENCY_PURGE_EVERY_S, TOKEN_USE_FLUSH_MS,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Starts the housekeeping thread; it stops soon after `stopping` is set.
pub fn start(app: Arc<App>, stopping: Arc<AtomicBool>) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("remit-housekeeping".into())
        .spawn(move || {
            let flush_every = Duration::from_millis(TOKEN_USE_FLUSH_MS);
            let purge_every = Duration::from_secs(IDEMPOTENCY_PURGE_EVERY_S);
            let sweep_every = Duration::from_secs(EXPIRY_SWEEP_EVERY_S);
            let mut flushed = Instant::now();
            let mut purged: Option<Instant> = None;
            let mut swept: Option<Instant> = None;
            while !stopping.load(Ordering::SeqCst) {
                if swept.is_none_or(|at| at.elapsed() >= sweep_every) {
                    swept = Some(Instant::now());
                    match app.store.write(crate::service::requests::expire_due) {
                        Ok(n) if n > 0 => log::info!("{n} payment request(s) expired"),
                        Ok(_) => {}
                        Err(e) => log::warn!("could not expire payment requests: {e:?}"),
                    }
                }
                if purged.is_none_or(|at| at.elapsed() >= purge_every) {
                    purged = Some(Instant::now());
                    match app.store.write(crate::service::idempotency::purge_expired) {
                        Ok(n) if n > 0 => log::info!("forgot {n} expired idempotency keys"),
                        Ok(_) => {}
                        Err(e) => log::warn!("could not purge idempotency keys: {e:?}"),
                    }
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
