//! Ctrl-C (`SIGINT`) and `SIGTERM` during a command that writes a copy of the ledger beside its
//! destination (`backup`, `restore`): the unfinished copy is removed before the process ends,
//! as the command's own failure would remove it, instead of a hidden file as large as the
//! ledger left for the next run to find. A `kill -9` or a power cut still leaves it (the next
//! run clears it, `backup::clear_unfinished`).
//!
//! The steps that give a finished copy its final name run whole (`Unfinished::naming`): a stop
//! that comes meanwhile waits for them, and a second one stops at once (the steps are safe to
//! cut, as a `kill -9` would). Once the copy has its name the command's work is done: it is let
//! finish and say what it did (a restore's lines about what the backup does not know, revoked
//! tokens among them, must not be lost to an exit), and a second stop ends it at once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once, TryLockError};
use std::time::Duration;

/// The copies under way. Its lock is also held while a copy takes its final name.
static UNFINISHED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A copy has taken its final name: the command's work is done, what is left is saying so.
static PLACED: AtomicBool = AtomicBool::new(false);

fn unfinished() -> MutexGuard<'static, Vec<PathBuf>> {
    UNFINISHED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What SQLite may keep beside a database file while it is open.
pub(super) const COMPANIONS: [&str; 3] = ["-journal", "-wal", "-shm"];

/// Removes a copy and what SQLite kept beside it; says whether anything was there.
pub(super) fn remove_with_companions(copy: &Path) -> bool {
    let mut removed = std::fs::remove_file(copy).is_ok();
    for companion in COMPANIONS {
        removed |= std::fs::remove_file(super::beside(copy, companion)).is_ok();
    }
    removed
}

/// Watches for `SIGINT` and `SIGTERM` from now on (once per process); see the module's words
/// for what each does. A process stopped ends with the shell's code for the signal (130, 143).
pub fn remove_copies_on_interrupt() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
            Ok(signals) => signals,
            Err(e) => {
                log::warn!("an interrupted copy will be left for the next run to remove: cannot watch for Ctrl-C ({e})");
                return;
            }
        };
        let watcher = std::thread::Builder::new()
            .name("remit-interrupt".into())
            .spawn(move || {
                let Some(signal) = signals.forever().next() else {
                    return;
                };
                let stop_now = |signal: i32| -> ! {
                    crate::say!("remit: stopped");
                    std::process::exit(128 + signal)
                };
                // Waits out a copy taking its final name; a second stop meanwhile ends it.
                let mut said = false;
                let copies = loop {
                    match UNFINISHED.try_lock() {
                        Ok(copies) => break copies,
                        Err(TryLockError::Poisoned(p)) => break p.into_inner(),
                        Err(TryLockError::WouldBlock) => {}
                    }
                    if !said {
                        crate::say!("remit: putting the finished copy in place; the command ends once that is done (again to stop at once)");
                        said = true;
                    }
                    if let Some(again) = signals.pending().next() {
                        stop_now(again);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                };
                if PLACED.load(Ordering::SeqCst) {
                    drop(copies);
                    crate::say!("remit: the copy is in place: finishing (again to stop at once)");
                    if let Some(again) = signals.forever().next() {
                        stop_now(again);
                    }
                    return;
                }
                let mut removed_any = false;
                for copy in copies.iter() {
                    if remove_with_companions(copy) {
                        crate::say!(
                            "remit: interrupted: removed the unfinished copy {}",
                            copy.display()
                        );
                        removed_any = true;
                    }
                }
                if !removed_any {
                    crate::say!("remit: interrupted");
                }
                // The command's thread goes on until the exit: a stop at the copy's very start
                // found SQLite opening it (and its journal) again after the removal, and left
                // both (once in a CI run). Removed again once it has had a moment.
                std::thread::sleep(Duration::from_millis(50));
                for copy in copies.iter() {
                    remove_with_companions(copy);
                }
                std::process::exit(128 + signal);
            });
        if let Err(e) = watcher {
            log::warn!("an interrupted copy will be left for the next run to remove: cannot watch for Ctrl-C ({e})");
        }
    });
}

/// A copy under way at `path`: removed, with its companions, if the process is stopped while
/// this lives and before `naming` has given it its name.
pub struct Unfinished(PathBuf);

impl Unfinished {
    pub fn new(path: &Path) -> Unfinished {
        unfinished().push(path.to_path_buf());
        Unfinished(path.to_path_buf())
    }

    /// Gives the copy its final name (`name` does, `Ok` once it has): a stop meanwhile waits
    /// for it to end, then lets the command finish if the copy has its name.
    pub fn naming<T, E>(&self, name: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let _whole = unfinished();
        let named = name();
        if named.is_ok() {
            PLACED.store(true, Ordering::SeqCst);
        }
        named
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let mut copies = unfinished();
        if let Some(at) = copies.iter().position(|c| *c == self.0) {
            copies.remove(at);
        }
    }
}
