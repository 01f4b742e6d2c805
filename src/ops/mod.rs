//! Operator tasks behind the command line: the database lock, first-start bootstrap, demo
//! data (`demo`), online backup (`backup`), restore (`restore`), key rotation (`rotate`), and
//! the stop of a backup or restore by a signal (`interrupt`).

mod backup;
mod demo;
pub mod interrupt;
mod restore;
mod rotate;

pub use backup::backup;
pub use demo::{holds_demo_data, holds_money_but_no_demo, seed_demo};
pub(crate) use restore::HOLD_KEY as RESTORE_HOLD_KEY;
pub use restore::{a_ledger_file as a_backup, payouts_held, release_payouts, restore};
pub use rotate::{
    rotate_key, rotating_key_path, settle_before_use, settle_stopped_rotation, unfinished_name,
};

pub use crate::paths::{parent_dir, real_path, sync_dir_of};

use crate::error::{Error, Result};
use crate::paths::with_suffix;
use crate::service::users::{self, NewUser};
use crate::service::{Actor, Role};
use crate::store::Store;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The lock file beside a database that a server holds while it runs.
pub fn lock_file_path(db: &Path) -> PathBuf {
    beside(db, ".lock")
}

/// A new file at `path`, the owner's only (0600), opened for writing; never through a symbolic
/// link and never over anything at that name (a backup's or a restore's copy: run as root in a
/// directory its service user can write, it wrote through a link planted there).
pub(crate) fn create_new_private(path: &Path) -> Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options
        .open(path)
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))
}

/// Whether another open file holds `lock` (a server's lock file, `lock_file_path`): a
/// missing file or one that cannot be locked is held by no one.
pub(crate) fn held_by_another(lock: &Path) -> bool {
    File::open(lock).is_ok_and(|file| {
        matches!(
            file.try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        )
    })
}

/// The path of a file beside the database (`suffix` after its name), beside the file a
/// symbolic link points to, as SQLite keeps its log.
pub(crate) fn beside(db: &Path, suffix: &str) -> PathBuf {
    with_suffix(&real_path(db), suffix)
}

/// Opens (making it if needed) the lock file at `path` beside the database `db`.
fn open_lock_file(db: &Path, path: &Path) -> Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if dir.exists() && !dir.is_dir() {
            return Err(Error::internal(format!(
                "{} is a file, not a directory: check --db",
                dir.display()
            )));
        }
        if !dir.is_dir() {
            return Err(Error::internal(format!(
                "the directory {} does not exist: make it first, or check --db",
                dir.display()
            )));
        }
    }
    let file = open_beside(db, path, false).map_err(|e| {
        let denied = e.kind() == std::io::ErrorKind::PermissionDenied;
        let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        if denied && !path.exists() && !link {
            Error::internal(format!(
                "this user may not write in {}: remit keeps its lock file ({}), and SQLite its -wal and -shm files, beside the database; choose a directory it may write, or run as its owner",
                parent_dir(path).display(),
                path.display()
            ))
        } else if link {
            Error::internal(format!(
                "{} is a symbolic link: remit keeps its lock files as plain files beside the database and never opens one through a link; remove it",
                path.display()
            ))
        } else if denied {
            // One made by another user (a command run as root by an older version): said
            // with what to do, not as a bare "Permission denied".
            Error::internal(format!(
                "cannot open the lock file {}: it belongs to another user (a command run as another user, root perhaps, made it): give it to this user (chown) or remove it while nothing uses the database",
                path.display()
            ))
        } else {
            Error::internal(format!("cannot open lock file {}: {e}", path.display()))
        }
    })?;
    Ok(file)
}

/// Opens (for writing, or appending) a file remit keeps beside the database `db`, making it
/// owner-only (0600) if it is not there. Never through a symbolic link (one at that name is
/// refused, `ELOOP`), and its mode and owner are changed only on a file this process made, or
/// a plain file of one link: root runs commands too (`sudo remit user list`), in a directory
/// the service's user owns, and a link planted there (`remit.db.keylock` → `/etc/shadow`) would
/// otherwise have root give the file it leads to away.
///
/// A file made here is given to the database's owner, as SQLite gives its -wal and -shm: one
/// that root made would be root's, and the service, run as the database's owner, could then
/// neither start nor back up (`Permission denied`). Only root can give a file away; for anyone
/// else that is a no-op. One made before as 0644 by an older version is made owner-only.
pub(crate) fn open_beside(db: &Path, path: &Path, append: bool) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    match append {
        true => options.append(true),
        false => options.write(true),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let (file, made) = match options.clone().create_new(true).open(path) {
        Ok(file) => (file, true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => (options.open(path)?, false),
        Err(e) => return Err(e),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::other("not a plain file"));
        }
        if made {
            if let Ok(database) = std::fs::metadata(db) {
                if (database.uid(), database.gid()) != (meta.uid(), meta.gid()) {
                    let _ = std::os::unix::fs::fchown(
                        &file,
                        Some(database.uid()),
                        Some(database.gid()),
                    );
                }
            }
        } else if meta.nlink() == 1 && meta.permissions().mode() & 0o077 != 0 {
            let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
        }
    }
    #[cfg(not(unix))]
    let _ = (db, made);
    Ok(file)
}

/// The exclusive lock of a database, held until dropped: its lock file's, and the database
/// file's own.
pub struct DatabaseLock {
    _lock_file: File,
    database: Option<File>,
}

impl DatabaseLock {
    /// Takes the database file's own lock once the file exists (a first start makes it after
    /// the lock file's lock is taken).
    pub fn hold_the_file(&mut self, db: &Path) -> Result<()> {
        if self.database.is_none() {
            self.database = lock_the_file(db)?;
        }
        Ok(())
    }
}

/// The ledger's lock is held: by a server, a restore or a key rotation (each takes it; the
/// words name all three, as nothing tells which: a restore or a rotation running is no
/// server to stop).
fn another_server(db: &Path, how: &str) -> Error {
    Error::internal(format!(
        "another remit process (a server, a restore or a key rotation) is using {} ({how}): stop the server, or wait for the restore or rotation to finish, then run this again",
        db.display()
    ))
}

/// The database file's own lock (`flock`, which SQLite's locks do not touch): a second name of
/// the same file, a hard link, has a lock file of its own, but not a file of its own. Two
/// servers on one file through two names would each keep a log of their own beside it, and
/// their writes would corrupt it.
fn lock_the_file(db: &Path) -> Result<Option<File>> {
    let file = match File::open(db) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::internal(format!(
                "cannot open {}: {e}",
                db.display()
            )))
        }
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        // Held with the lock file free: a server under another name (a hard link), or one whose
        // lock file was removed while it ran (the file has one name then).
        Err(std::fs::TryLockError::WouldBlock) => {
            use std::os::unix::fs::MetadataExt;
            let names = file.metadata().map(|m| m.nlink()).unwrap_or(1);
            Err(another_server(
                db,
                &if names > 1 {
                    "the same file under another name: a hard link".to_string()
                } else {
                    format!(
                        "it holds the file's own lock, though its lock file {} was free: it was removed while the server ran",
                        lock_file_path(db).display()
                    )
                },
            ))
        }
        // A file system without such locks (some network mounts): the lock file's lock
        // stands alone, as before.
        Err(std::fs::TryLockError::Error(e)) => {
            log::warn!(
                "cannot lock {} itself ({e}): a second server through a hard link would not be seen",
                db.display()
            );
            Ok(None)
        }
    }
}

/// Takes the exclusive lock of a database (held until it is dropped). Only one server runs per
/// database, and key rotation needs none running.
pub fn lock(db: &Path) -> Result<DatabaseLock> {
    crate::store::a_file_or_nothing(db)?;
    crate::store::not_another_programs(db)?;
    Ok(DatabaseLock {
        _lock_file: lock_file_alone(db)?,
        database: lock_the_file(db)?,
    })
}

/// The ledger's lock file, locked by this process alone (no server, restore or rotation runs).
fn lock_file_alone(db: &Path) -> Result<File> {
    let path = lock_file_path(db);
    let file = open_lock_file(db, &path)?;
    if file.try_lock().is_err() {
        return Err(another_server(db, &format!("lock file {}", path.display())));
    }
    Ok(file)
}

/// `lock` for a restore: a restore stopped with the ledger under a second name of its own making
/// (which `lock` refuses, as every command does) is undone first, under the lock file's lock
/// (`restore::undo_a_stopped_keep`), so that the next restore runs where the stopped one did.
pub fn lock_for_restore(db: &Path) -> Result<DatabaseLock> {
    if std::fs::metadata(db).is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.is_file() && m.nlink() > 1
    }) {
        let _alone = lock_file_alone(db)?;
        restore::undo_a_stopped_keep(&real_path(db))?;
    }
    lock(db)
}

/// Who may use the database's key at the same time: everything that writes with it (the
/// server, `user add`, `fx set`, `token revoke`, `backup`) shares this lock; a key rotation
/// takes it alone, so that nothing writes under the old key while it re-encrypts.
pub enum KeyUse {
    /// Writing with the current key.
    Shared,
    /// Rotating the key.
    Exclusive,
}

/// Takes the key lock of a database (held until the file is dropped).
pub fn key_lock(db: &Path, how: KeyUse) -> Result<File> {
    // Said before a lock file is made beside it (`/dev/null.keylock`).
    crate::store::a_file_or_nothing(db)?;
    crate::store::not_another_programs(db)?;
    let path = beside(db, ".keylock");
    let file = open_lock_file(db, &path)?;
    let taken = match how {
        KeyUse::Shared => file.try_lock_shared(),
        KeyUse::Exclusive => file.try_lock(),
    };
    match (taken, how) {
        (Ok(()), _) => Ok(file),
        (Err(_), KeyUse::Shared) => Err(Error::internal(format!(
            "a key rotation or a restore is running on {}: wait for it to finish",
            db.display()
        ))),
        (Err(_), KeyUse::Exclusive) => Err(Error::internal(format!(
            "another remit command is using {} (one that writes, a backup, or a replicator that reads it): wait for it to finish, or stop it",
            db.display()
        ))),
    }
}

/// On an empty database, creates the first admin and returns its token (shown once).
pub fn bootstrap_admin(store: &Store) -> Result<Option<(crate::domain::UserId, String)>> {
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
        Ok(Some((created.user.user_id, created.token)))
    })
}

#[cfg(all(test, unix))]
mod real_path_tests {
    use super::real_path;

    #[test]
    fn a_link_is_seen_through_also_to_a_file_not_made_yet_and_a_loop_ends() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = std::fs::canonicalize(dir.path()).unwrap();
        let target = real_dir.join("ledger.db");
        let link = real_dir.join("link.db");
        std::os::unix::fs::symlink("ledger.db", &link).unwrap();
        // Not made yet: the link's target, by name.
        assert_eq!(real_path(&link), target);
        std::fs::write(&target, b"x").unwrap();
        assert_eq!(real_path(&link), target);
        assert_eq!(
            real_path(&real_dir.join("none.db")),
            real_dir.join("none.db")
        );
        let (a, b) = (real_dir.join("a.db"), real_dir.join("b.db"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let _ = real_path(&a); // ends
    }
}
