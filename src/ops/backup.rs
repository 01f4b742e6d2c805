//! `remit backup FILE`: a consistent copy made while the server may be running.

use crate::error::{Error, Result};
use crate::store::{self, Store};
use serde_json::json;
use std::path::Path;

/// The files SQLite and remit keep beside a database, by the suffix of their name.
const BESIDE_THE_DATABASE: [&str; 8] = [
    "-journal",
    "-wal",
    "-shm",
    ".key",
    ".lock",
    ".keylock",
    ".revoked",
    ".rebuild-owed",
];

/// Writes a consistent copy (`VACUUM INTO` reads one snapshot and never blocks the writer),
/// then opens and checks it; audited.
///
/// The copy is made under a hidden name beside the target (`.NAME.PID.partial`), synced, checked
/// and only then given the target's name, so a file under that name is always a whole backup:
/// a backup killed half-way, or one whose copy could not be checked, leaves nothing there.
/// What a backup to the same name killed earlier left under its hidden name is removed first.
pub fn backup(store: &Store, target: &Path) -> Result<crate::integrity::Report> {
    if target.is_dir() {
        return Err(Error::internal(format!(
            "{} is a directory: give the backup a file name in it ({})",
            target.display(),
            target.join("remit-backup.db").display()
        )));
    }
    // A name SQLite or remit keeps beside the database: a backup there would be taken for the
    // ledger's hot journal (SQLite deletes it, or refuses to read the ledger until then), its
    // key (every later command fails to read it) or a lock file. Said by name, whether or not
    // the file is there now.
    let real = super::real_path(target);
    // (The key file is beside the file a link names, or beside the link's name for a ledger
    // made through it before 2026-12-08: both names are refused.)
    let keys = [
        super::real_path(&crate::crypto::key_file_path(store.path())),
        super::real_path(&crate::paths::with_suffix(store.path(), ".key")),
    ];
    if let Some(suffix) = BESIDE_THE_DATABASE.iter().find(|suffix| {
        real == super::beside(store.path(), suffix) || (**suffix == ".key" && keys.contains(&real))
    }) {
        return Err(Error::internal(format!(
            "{} is the name of the database's {} file ({}): choose another name for the backup",
            target.display(),
            suffix.trim_start_matches(['-', '.']),
            store.path().display()
        )));
    }
    if target.exists() {
        return Err(Error::internal(format!(
            "{} already exists; choose a new file",
            target.display()
        )));
    }
    // `dir/` names a directory (one not made yet): said now, not after the whole copy.
    if target.as_os_str().to_string_lossy().ends_with('/') {
        return Err(Error::internal(format!(
            "{} names a directory, and it does not exist: make it first, then give the backup a file name in it",
            target.display()
        )));
    }
    // Named plainly before SQLite says "unable to open database".
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::internal(format!(
            "cannot write the backup: {} is not a directory that exists",
            dir.display()
        )));
    }
    let name = target
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| Error::internal("the backup path must end in a UTF-8 file name"))?;
    clear_unfinished(
        dir,
        name,
        "partial",
        "backup",
        "to the same name",
        Unseen::Recent,
    );
    let partial = dir.join(format!(".{name}.{}.partial", std::process::id()));
    let unfinished = super::interrupt::Unfinished::new(&partial);
    let made = copy_and_check(store, &partial);
    let report = match made.and_then(|report| {
        unfinished
            .naming(|| publish(&partial, target, dir))
            .map(|()| report)
    }) {
        Ok(report) => report,
        Err(e) => {
            super::interrupt::remove_with_companions(&partial);
            return Err(e);
        }
    };
    let details = json!({"clean": report.is_clean(), "bytes": std::fs::metadata(target).map(|m| m.len()).unwrap_or(0)});
    // The copy is whole and checked whatever happens now: a ledger that cannot take its audit
    // line (its disk full) says so, in words that say the copy is good.
    store
        .write(move |ctx| ctx.audit("system:cli", "backup.made", "database", &details))
        .map_err(|e| {
            Error::internal(format!(
                "the backup {} is whole and checked, but the ledger could not record it in its audit log: {}. Mend that (the ledger takes no writes), and keep the copy",
                target.display(),
                e.logged()
            ))
        })?;
    Ok(report)
}

/// What a hidden copy whose process is not seen is taken for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Unseen {
    /// Another command's still under way while it is younger than an hour (a backup: two may
    /// run at once, one on another machine sharing the stick).
    Recent,
    /// A dead command's, whatever its age: the caller holds the ledger's lock, which every
    /// command making such a copy holds while it runs (a restore).
    Dead,
}

/// `remove_unfinished`, saying in the log what it removed and what it left: `command` (a
/// `backup`, a `restore`) `whose` (`to the same name`) wrote them.
pub(super) fn clear_unfinished(
    dir: &Path,
    name: &str,
    kind: &str,
    command: &str,
    whose: &str,
    unseen: Unseen,
) {
    let unfinished = remove_unfinished(dir, name, kind, unseen);
    for gone in &unfinished.removed {
        log::info!(
            "removed {}, left by a {command} {whose} that did not finish",
            gone.display()
        );
    }
    for (left, pid, running) in &unfinished.kept {
        if *running {
            log::warn!(
                "{} may be a {command} {whose} still under way (process {pid} is running): it is \
                 left (if that process is no remit {command}, remove the file by hand)",
                left.display()
            );
        } else {
            log::warn!(
                "{} may be a {command} {whose} still under way (written within the hour, process \
                 {pid} not seen): it is left (the next {command} removes it once it is an hour \
                 old; remove it by hand if none runs)",
                left.display()
            );
        }
    }
}

/// Removes the hidden copies (`.NAME.PID.<kind>`, and the journals SQLite kept beside them) of
/// backups (or restores) to `name` that were killed
/// half-way (a power cut, `kill -9`): on a memory stick each is as large as the ledger. One is
/// taken for another backup's still under way, and left alone, while its process runs or it was
/// written in the last hour (a backup on another machine sharing the stick, or a `/proc` that
/// hides other users' processes, looks gone; a running one writes its copy, then checks it for
/// minutes at most). One named with this process's id is a dead one's (the id came round
/// again): this process has not begun its own. Where processes cannot be seen (no `/proc`),
/// nothing is removed. With `Unseen::Dead` (the caller holds the ledger's lock), one whose
/// process is not seen is removed whatever its age (a restore warned of six copies of killed
/// restores as "may be still under way" while it held the lock they would have needed).
fn remove_unfinished(dir: &Path, name: &str, kind: &str, unseen: Unseen) -> Unfinished {
    let mut found = Unfinished::default();
    let processes = Path::new("/proc");
    if !processes.join("self").is_dir() {
        return found;
    }
    let prefix = format!(".{name}.");
    // The copy, and what SQLite kept beside it (a killed copy's log too: opened as a store,
    // a restore's copy has one while it is written).
    let suffixes: Vec<String> = std::iter::once(format!(".{kind}"))
        .chain(
            super::interrupt::COMPANIONS
                .iter()
                .map(|c| format!(".{kind}{c}")),
        )
        .collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        // The copy, or a file SQLite keeps beside it while it writes it.
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| suffixes.iter().find_map(|s| n.strip_suffix(s.as_str())))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        // A symbolic link at a copy's name is never a copy (each is made new, without
        // following links): whoever planted it, it goes (the link, not what it names).
        if metadata.file_type().is_symlink() {
            if std::fs::remove_file(entry.path()).is_ok() {
                found.removed.push(entry.path());
            }
            continue;
        }
        if !metadata.is_file() {
            continue;
        }
        let recent = unseen == Unseen::Recent
            && metadata
                .modified()
                .ok()
                .and_then(|at| at.elapsed().ok())
                .is_none_or(|age| age < UNFINISHED_AFTER);
        let running = processes.join(pid.to_string()).exists();
        if pid != std::process::id() && (recent || running) {
            found.kept.push((entry.path(), pid, running));
        } else if std::fs::remove_file(entry.path()).is_ok() {
            found.removed.push(entry.path());
        }
    }
    found
}

/// What `remove_unfinished` found.
#[derive(Default)]
struct Unfinished {
    removed: Vec<std::path::PathBuf>,
    /// Copies that may be another command's, still running: its process id, and whether a
    /// process of that id runs (else the copy is younger than an hour).
    kept: Vec<(std::path::PathBuf, u32, bool)>,
}

/// How long after its last write a hidden copy whose process cannot be seen is taken for a
/// killed backup's.
const UNFINISHED_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// `VACUUM INTO` the hidden file, sync it, and run the integrity check on it.
fn copy_and_check(store: &Store, partial: &Path) -> Result<crate::integrity::Report> {
    let partial_text = partial
        .to_str()
        .ok_or_else(|| Error::internal("the backup path is not UTF-8"))?;
    // Not on a pooled read connection: those are read-only, and SQLite opens the INTO file
    // with the connection's flags, so the copy could not be written.
    {
        let conn = store::open_connection(store.path(), store::Synchronous::Full)?;
        // Into an empty file of the owner's only (SQLite takes an empty one), as the ledger is,
        // made new, not through a link.
        drop(super::create_new_private(partial)?);
        conn.execute("VACUUM INTO ?1", [partial_text])
            .map_err(|e| match e.sqlite_error_code() {
                // It is the copy's disk that is full, not the ledger's.
                Some(rusqlite::ErrorCode::DiskFull) => Error::internal(format!(
                    "the backup's disk is full: {} has no room for the copy (the ledger is untouched)",
                    partial
                        .parent()
                        .filter(|d| !d.as_os_str().is_empty())
                        .unwrap_or(Path::new("."))
                        .display()
                )),
                _ => e.into(),
            })?;
    }
    sync(partial)?;
    let open_copy = || -> Result<rusqlite::Connection> {
        Ok(rusqlite::Connection::open_with_flags(
            partial,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?)
    };
    let copy = open_copy()?;
    crate::integrity::check_on_two(
        &copy,
        open_copy,
        store.keys(),
        crate::integrity::Pages::Skip,
    )
}

/// Gives the finished copy the backup's name without ever replacing a file that appeared
/// there meanwhile: a hard link fails if the name is taken. Where links are not supported
/// (a FAT memory stick), a rename after one more look.
fn publish(partial: &Path, target: &Path, dir: &Path) -> Result<()> {
    let taken = || {
        Error::internal(format!(
            "{} already exists; choose a new file",
            target.display()
        ))
    };
    match std::fs::hard_link(partial, target) {
        // The backup is whole under its name now; a second name left behind is only untidy.
        Ok(()) => {
            let _ = std::fs::remove_file(partial);
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(taken()),
        Err(_) => {
            if target.exists() {
                return Err(taken());
            }
            std::fs::rename(partial, target).map_err(|e| {
                Error::internal(format!("cannot name the backup {}: {e}", target.display()))
            })?;
        }
    }
    // The new name is durable once the directory is; not every platform can sync one.
    let _ = sync(dir);
    Ok(())
}

fn sync(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|e| Error::internal(format!("cannot sync {}: {e}", path.display())))
}
