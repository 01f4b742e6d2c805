//! `remit backup FILE`: a consistent copy made while the server may be running.

use crate::error::{Error, Result};
use crate::store::{self, Store};
use serde_json::json;
use std::path::Path;

/// Writes a consistent copy (`VACUUM INTO` reads one snapshot and never blocks the writer),
/// then opens and checks it; audited.
pub fn backup(store: &Store, target: &Path) -> Result<crate::integrity::Report> {
    if target.exists() {
        return Err(Error::internal(format!(
            "{} already exists; choose a new file",
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
    let target_text = target
        .to_str()
        .ok_or_else(|| Error::internal("the backup path is not UTF-8"))?
        .to_string();
    // Not on a pooled read connection: those are read-only, and SQLite opens the INTO file
    // with the connection's flags, so the copy could not be written.
    {
        let conn = store::open_connection(store.path(), store::Synchronous::Full)?;
        // Into an empty file of the owner's only (SQLite takes an empty one), as the ledger is.
        store::create_private(target)?;
        if let Err(e) = conn.execute("VACUUM INTO ?1", [&target_text]) {
            let _ = std::fs::remove_file(target);
            return Err(e.into());
        }
    }
    let open_copy = || -> Result<rusqlite::Connection> {
        Ok(rusqlite::Connection::open_with_flags(
            target,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?)
    };
    let copy = open_copy()?;
    let report = crate::integrity::check_on_two(&copy, open_copy, store.keys())?;
    drop(copy);
    let details = json!({"clean": report.is_clean(), "bytes": std::fs::metadata(target).map(|m| m.len()).unwrap_or(0)});
    store.write(move |ctx| ctx.audit("system:cli", "backup.made", "database", &details))?;
    Ok(report)
}
