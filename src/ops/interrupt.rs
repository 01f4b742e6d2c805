//! Ctrl-C (`SIGINT`) and `SIGTERM` during a command that writes a copy of the ledger beside its
//! destination (`backup`, `restore`): the unfinished copy is removed before the process ends,
//! as the command's own failure would remove it, instead of a hidden file as large as the
//! ledger left for the next run to find. A `kill -9` or a power cut still leaves it (the next
//! run clears it, `backup::clear_unfinished`). The steps that give a finished copy its final
//! name run whole: an interruption waits for them (`naming`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, Once};

/// The copies under way. Its lock is also held while a copy takes its final name.
static UNFINISHED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn unfinished() -> MutexGuard<'static, Vec<PathBuf>> {
    UNFINISHED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What SQLite may keep beside a database file while it is open.
const COMPANIONS: [&str; 3] = ["-journal", "-wal", "-shm"];

/// Watches for `SIGINT` and `SIGTERM` from now on (once per process): at either, the copies
/// under way and their companions are removed, said on stderr, and the process ends with the
/// shell's code for the signal (130, 143).
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
                // Waits out a copy taking its final name.
                let copies = unfinished();
                let mut said = false;
                for copy in copies.iter() {
                    let mut removed = std::fs::remove_file(copy).is_ok();
                    for companion in COMPANIONS {
                        let mut name = copy.as_os_str().to_owned();
                        name.push(companion);
                        removed |= std::fs::remove_file(PathBuf::from(name)).is_ok();
                    }
                    if removed {
                        eprintln!(
                            "remit: interrupted: removed the unfinished copy {}",
                            copy.display()
                        );
                        said = true;
                    }
                }
                if !said {
                    eprintln!("remit: interrupted");
                }
                std::process::exit(128 + signal);
            });
        if let Err(e) = watcher {
            log::warn!("an interrupted copy will be left for the next run to remove: cannot watch for Ctrl-C ({e})");
        }
    });
}

/// A copy under way at `path`: removed, with its companions, if the process is interrupted
/// while this lives.
pub struct Unfinished(PathBuf);

impl Unfinished {
    pub fn new(path: &Path) -> Unfinished {
        unfinished().push(path.to_path_buf());
        Unfinished(path.to_path_buf())
    }

    /// Gives the copy its final name (`name` does): an interruption meanwhile waits for it to
    /// end, then finds no copy under the unfinished name.
    pub fn naming<T>(&self, name: impl FnOnce() -> T) -> T {
        let _whole = unfinished();
        name()
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let mut copies = unfinished();
        if let Some(at) = copies.iter().position(|p| *p == self.0) {
            copies.remove(at);
        }
    }
}
