//! Names of files: a database's own path through symbolic links, the directory a file is in,
//! a name with a suffix added, and the sync that makes a new name last. Beneath the modules that
//! keep files beside a database (`crypto`'s key file, `ops`' locks, backups and restores).

use std::path::{Path, PathBuf};

/// `path` with `suffix` added to its name (`remit.db` → `remit.db.key`), as named.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The database's own path, symbolic links resolved (of the file, or of its directory while
/// the file does not exist yet): the lock and notice files beside it are the same files
/// whichever path names the database. Otherwise a second server, or a key rotation, reached
/// through a link took its own lock and wrote beside a running server (a rotation left the
/// rows the server wrote meanwhile under the old key). A hard link is not seen through.
pub fn real_path(db: &Path) -> PathBuf {
    real_path_within(db, 8)
}

/// The directory a file is in, as a person reads it (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Syncs the directory that holds `path`, so that a name made, changed or removed in it lasts a
/// power cut; best effort (not every platform can sync a directory, and what was done is done
/// whatever this says).
pub fn sync_dir_of(path: &Path) {
    let _ = std::fs::File::open(parent_dir(path)).and_then(|dir| dir.sync_all());
}

fn real_path_within(db: &Path, links_left: u32) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(db) {
        return real;
    }
    // A link to a file not made yet (a first start through it): where it points (a few links
    // deep at most: a loop of links is left as it is named).
    if let (Ok(target), true) = (std::fs::read_link(db), links_left > 0) {
        let target = match db.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
        return real_path_within(&target, links_left - 1);
    }
    match (std::fs::canonicalize(parent_dir(db)), db.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => db.to_path_buf(),
    }
}
