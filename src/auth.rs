//! Authentication of bearer tokens, and the record of their use: `last_used_at` is written in
//! the background, never by the request that used the token. A token found valid is
//! remembered for `TOKEN_CACHE_TTL_S` (its SHA-256 → its actor), so that a client's requests
//! do not each read the database: a token revoked through the API is forgotten at once, and so
//! is one revoked by `remit token revoke` in another process: the command appends a line to
//! `<db>.revoked` before its commit and after it, and the server looks at that file's size and
//! time before believing any token it remembers (one `stat` per request), forgetting them all
//! when it changed, and remembering none for `TOKEN_CACHE_TTL_S` after: a token read between
//! the first line and the commit is not believed on its old reading, even if the command is
//! killed before its second line.

use crate::error::{Error, Result};
use crate::limits::{TOKEN_BYTES_MAX, TOKEN_CACHE_ENTRIES_MAX, TOKEN_CACHE_TTL_S};
use crate::service::{users, Actor};
use crate::store::Store;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The file beside the database where `remit token revoke` leaves word of a revocation for a
/// server running on it (`<db>.revoked`).
pub fn revocations_file(db: &Path) -> PathBuf {
    let mut path = crate::ops::real_path(db).into_os_string();
    path.push(".revoked");
    PathBuf::from(path)
}

/// Leaves word of a revocation just committed (a line appended, so the file's size changes
/// even when its time does not).
pub fn note_revocation(db: &Path) -> std::io::Result<()> {
    use std::io::Write;
    // Owner-only, as every file beside the ledger is, never through a link, and the
    // database owner's when root makes it (`ops::open_beside`).
    let mut file = crate::ops::open_beside(db, &revocations_file(db), true)?;
    writeln!(
        file,
        "{}",
        crate::time::rfc3339_ms(crate::time::now_unix_ms())
    )
}

/// The size and time of the revocations file (`None` while there is none).
fn revocations_seen(file: &Path) -> Option<(u64, Option<SystemTime>)> {
    std::fs::metadata(file)
        .ok()
        .map(|m| (m.len(), m.modified().ok()))
}

/// A token found valid: whose, its prefix (to forget it on revocation), and until when it is
/// believed without asking the database.
struct Known {
    actor: Actor,
    prefix: String,
    until: Instant,
}

/// Turns bearer tokens into actors.
pub struct Authenticator {
    store: Arc<Store>,
    /// Tokens used since the last flush of `last_used_at` (their hashes), each with the time
    /// of its latest use.
    touched: Mutex<HashMap<[u8; 32], i64>>,
    /// Tokens found valid lately.
    known: Mutex<HashMap<[u8; 32], Known>>,
    /// `<db>.revoked`, and its size and time when `known` was last emptied for it.
    revocations: PathBuf,
    revocations_at: Mutex<Option<(u64, Option<SystemTime>)>>,
    /// Until when nothing is remembered: a revocation by another process was announced and
    /// may not be committed yet.
    unremembered_until: Mutex<Option<Instant>>,
    /// Counts the times `known` forgot tokens for a revocation (changed with `known` locked): a
    /// token read from the database before a revocation is remembered only if none came
    /// between the read and the remembering (it would be believed for the cache's 10 s).
    forgotten: AtomicU64,
}

impl Authenticator {
    /// An authenticator over the users of `store`.
    pub fn new(store: Arc<Store>) -> Authenticator {
        let revocations = revocations_file(store.path());
        Authenticator {
            store,
            touched: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
            revocations_at: Mutex::new(revocations_seen(&revocations)),
            revocations,
            unremembered_until: Mutex::new(None),
            forgotten: AtomicU64::new(0),
        }
    }

    /// Has another process revoked a token since we last looked? (Then nothing remembered is
    /// believed any more.)
    fn revoked_elsewhere(&self) -> bool {
        let now = revocations_seen(&self.revocations);
        match self.revocations_at.lock() {
            Ok(mut at) if *at != now => {
                *at = now;
                true
            }
            Ok(_) => false,
            Err(_) => true,
        }
    }

    /// Forgets a token at once (it was revoked through this server).
    pub fn forget(&self, prefix: &str) {
        if let Ok(mut known) = self.known.lock() {
            self.forgotten.fetch_add(1, Ordering::SeqCst);
            known.retain(|_, k| k.prefix != prefix);
        }
    }

    /// The user behind an `Authorization` header value (`Bearer <token>`), or
    /// `Unauthenticated`.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Actor> {
        let header = authorization.map(str::trim).unwrap_or_default();
        let token = header
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("Bearer "))
            .map(|_| header[7..].trim())
            .filter(|t| !t.is_empty() && t.len() <= TOKEN_BYTES_MAX);
        let token = match token {
            Some(token) => token,
            // A token sent bare (or under another scheme) gets a hint, never an echo of it.
            None if !header.is_empty() => return Err(Error::AuthScheme),
            None => return Err(Error::Unauthenticated),
        };
        let hash = crate::crypto::sha256(token.as_bytes());
        let now = Instant::now();
        if self.revoked_elsewhere() {
            if let Ok(mut until) = self.unremembered_until.lock() {
                *until = Some(now + Duration::from_secs(TOKEN_CACHE_TTL_S));
            }
            if let Ok(mut known) = self.known.lock() {
                self.forgotten.fetch_add(1, Ordering::SeqCst);
                known.clear();
            }
        }
        let forgotten = self.forgotten.load(Ordering::SeqCst);
        let cached = self.known.lock().ok().and_then(|known| {
            known
                .get(&hash)
                .filter(|k| now < k.until)
                .map(|k| k.actor.clone())
        });
        let actor = match cached {
            Some(actor) => actor,
            None => {
                let actor = self
                    .store
                    .read(|conn, _| users::authenticate(conn, token))?;
                // Asked only here, of a token read from the database (a request whose token is
                // remembered takes no lock for it).
                let remembering = self
                    .unremembered_until
                    .lock()
                    .map(|until| until.is_none_or(|until| now >= until))
                    .unwrap_or(false);
                let known =
                    self.known.lock().ok().filter(|_| {
                        remembering && self.forgotten.load(Ordering::SeqCst) == forgotten
                    });
                if let Some(mut known) = known {
                    if known.len() >= TOKEN_CACHE_ENTRIES_MAX {
                        known.retain(|_, k| now < k.until);
                        if known.len() >= TOKEN_CACHE_ENTRIES_MAX {
                            known.clear();
                        }
                    }
                    known.insert(
                        hash,
                        Known {
                            actor: actor.clone(),
                            prefix: token.chars().take(users::TOKEN_PREFIX_CHARS).collect(),
                            until: now + Duration::from_secs(TOKEN_CACHE_TTL_S),
                        },
                    );
                }
                actor
            }
        };
        if let Ok(mut used) = self.touched.lock() {
            used.insert(hash, crate::time::now_unix());
        }
        Ok(actor)
    }

    /// Writes `last_used_at` for the tokens used since the last call.
    pub fn flush_token_use(&self) {
        let hashes: Vec<([u8; 32], i64)> = match self.touched.lock() {
            Ok(mut used) => used.drain().collect(),
            Err(_) => return,
        };
        // One command per few hundred tokens: each updates a row of its own, on a page of its
        // own in a large table, so a command of thousands would outgrow the writer's journal
        // piece (`Writer::run_batch`).
        for chunk in hashes.chunks(crate::limits::TOKEN_USE_FLUSH_CHUNK) {
            let chunk = chunk.to_vec();
            if let Err(e) = self
                .store
                .write(move |ctx| users::touch_tokens(ctx, &chunk))
            {
                log::warn!("could not record token use: {}", e.logged());
            }
        }
    }
}
