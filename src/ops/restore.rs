//! `remit restore BACKUP`: a checked backup put in the database's place, the server stopped.
//!
//! A file copied over the database by hand keeps the old database's `-wal` beside it, and the
//! next open would apply that log's pages to the copy: a ledger damaged in the act of being
//! restored. Here the backup is checked under the database's key first, copied beside the
//! database and synced; the database it replaces is moved aside with its log (kept, under a
//! name that says when, until the operator deletes it), and only then is the copy given the
//! database's name.

use crate::error::{Error, Result};
use crate::store;
use std::path::{Path, PathBuf};

/// What a restore did.
pub struct Restored {
    /// The check of the backup, run before anything was moved.
    pub report: crate::integrity::Report,
    /// Where the database it replaced now is (with its `-wal`, if it had one), if there was one.
    pub kept: Option<PathBuf>,
}

/// Puts `backup` in `db`'s place. The caller holds the database's lock (no server runs) and its
/// key lock alone (nothing writes with the key). `key_hex` is the key configured for `db`
/// (`ENCRYPTION_KEY`), else the key file beside `db` is read: a backup under another key would
/// leave a ledger the server cannot open.
pub fn restore(db: &Path, backup: &Path, key_hex: Option<&str>) -> Result<Restored> {
    if same_file(db, backup) {
        return Err(Error::internal(format!(
            "{} is the database itself: name the backup to restore",
            backup.display()
        )));
    }
    let key_hex = match key_hex.filter(|k| !k.trim().is_empty()) {
        Some(hex) => hex.trim().to_string(),
        None => {
            let path = crate::crypto::key_file_path(db);
            std::fs::read_to_string(&path)
                .map_err(|e| {
                    Error::internal(format!(
                        "no key for {}: set ENCRYPTION_KEY or put its key file at {} ({e})",
                        db.display(),
                        path.display()
                    ))
                })?
                .trim()
                .to_string()
        }
    };
    let (conn, keys) = store::open_for_check(backup, Some(&key_hex)).map_err(|e| match e {
        Error::WrongKey => Error::internal(format!(
            "{} is under another key than {}'s (a backup made before a key rotation?): configure the key it was made under, then restore it",
            backup.display(),
            db.display()
        )),
        other => other,
    })?;
    let open_again = || -> Result<rusqlite::Connection> { store::read_only_connection(backup) };
    let report = crate::integrity::check_on_two(&conn, open_again, &keys)?;
    drop(conn);
    if !report.is_clean() {
        return Err(Error::internal(format!(
            "{} does not pass the integrity check ({}): nothing was restored",
            backup.display(),
            report.mismatches.join("; ")
        )));
    }

    let dir = match db.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = db
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::internal("the database path must end in a UTF-8 file name"))?;
    let copy = dir.join(format!(".{name}.{}.restoring", std::process::id()));
    let placed = copy_synced(backup, &copy).and_then(|()| put_in_place(db, &copy, &dir));
    if placed.is_err() {
        let _ = std::fs::remove_file(&copy);
    }
    Ok(Restored {
        report,
        kept: placed?,
    })
}

/// Do both paths name one file (the same name, or a link to it)?
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Copies `from` into a new file `to`, the owner's only, and syncs it.
fn copy_synced(from: &Path, to: &Path) -> Result<()> {
    let mut source = std::fs::File::open(from)
        .map_err(|e| Error::internal(format!("cannot read {}: {e}", from.display())))?;
    store::create_private(to)?;
    let mut target = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(to)
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", to.display())))?;
    std::io::copy(&mut source, &mut target)
        .and_then(|_| target.sync_all())
        .map_err(|e| Error::internal(format!("cannot copy the backup to {}: {e}", to.display())))
}

/// Moves the database and its log aside (together, so they stay one database under the new
/// name), drops its shared-memory index, and gives the copy the database's name.
fn put_in_place(db: &Path, copy: &Path, dir: &Path) -> Result<Option<PathBuf>> {
    let beside = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let stamp = crate::time::rfc3339(crate::time::now_unix()).replace(':', "");
    let kept = beside(&format!(".before-restore-{stamp}"));
    let moved = |from: &Path, to: &Path| {
        std::fs::rename(from, to).map_err(|e| {
            Error::internal(format!(
                "cannot move {} aside to {}: {e}",
                from.display(),
                to.display()
            ))
        })
    };
    // The log first: stopped between the two moves, a database without its log is left (the
    // one being replaced), never a log beside the restored copy. A log found with no database
    // (such a stop) is moved aside all the same.
    let wal = beside("-wal");
    if wal.exists() {
        let mut kept_wal = kept.as_os_str().to_owned();
        kept_wal.push("-wal");
        moved(&wal, Path::new(&kept_wal))?;
    }
    let kept = if db.exists() {
        moved(db, &kept)?;
        Some(kept)
    } else {
        None
    };
    let shm = beside("-shm");
    if shm.exists() {
        std::fs::remove_file(&shm)
            .map_err(|e| Error::internal(format!("cannot remove {}: {e}", shm.display())))?;
    }
    std::fs::rename(copy, db).map_err(|e| {
        Error::internal(format!(
            "cannot give the restored copy the name {}: {e}",
            db.display()
        ))
    })?;
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(kept)
}
