//! Operator tasks behind the command line: the database lock, first-start bootstrap, demo
//! data (`demo`), online backup (`backup`) and key rotation (`rotate`).

mod backup;
mod demo;
mod rotate;

pub use backup::backup;
pub use demo::seed_demo;
pub use rotate::rotate_key;

use crate::error::{Error, Result};
use crate::service::users::{self, NewUser};
use crate::service::{Actor, Role};
use crate::store::Store;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The lock file beside a database that a server holds while it runs.
pub fn lock_file_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the exclusive lock of a database (held until the file is dropped). Only one server
/// runs per database, and key rotation needs none running.
pub fn lock(db: &Path) -> Result<File> {
    let path = lock_file_path(db);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::internal(format!("cannot open lock file {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(_) => Err(Error::internal(format!(
            "another remit server is using {} (lock file {})",
            db.display(),
            path.display()
        ))),
    }
}

/// On an empty database, creates the first admin and returns its token (shown once).
pub fn bootstrap_admin(store: &Store) -> Result<Option<String>> {
    store.write(|ctx| {
        if users::any_user(ctx.conn)? {
            return Ok(None);
        }
        let admin = NewUser {
            role: Role::Admin,
            name: "Administrator".into(),
            phone: None,
        };
        let created = users::create(ctx, &Actor::system("bootstrap"), &admin)?;
        Ok(Some(created.token))
    })
}
