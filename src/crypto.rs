//! Keys and the cryptography of the PII columns, the phone blind index, tokens and the audit
//! chain. One 256-bit master key; every purpose uses its own subkey derived with a fixed label.

use crate::error::{Error, Result};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

type HmacSha256 = Hmac<Sha256>;

/// Version tag of the stored ciphertext form `v1.<key id>.<base64url(nonce‖ciphertext‖tag)>`.
const CIPHERTEXT_VERSION: &str = "v1";
const NONCE_BYTES: usize = 12;
const LABEL_ENCRYPTION: &[u8] = b"remit/pii-encryption/v1";
const LABEL_BLIND_INDEX: &[u8] = b"remit/phone-blind-index/v1";
const LABEL_KEY_CHECK: &[u8] = b"remit/key-check/v1";
const LABEL_KEY_ID: &[u8] = b"remit/key-id/v1";

/// Fills `buf` from the operating system's CSPRNG. Without one nothing here is safe, so a
/// failure is fatal.
pub fn fill_random(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        panic!("the operating system's random number generator failed: {e}");
    }
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    fill_random(&mut buf);
    hex(&buf)
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Bytes of lowercase or uppercase hex; `None` on anything else.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// SHA-256 of bytes.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// What a `token.issued` audit line records of its token: a digest of the token's stored hash
/// (`api_tokens.token_hash`), so that `remit check` finds a hash replaced in the file by one
/// of a token someone else knows (their own token, then, opened the first one's account). A
/// digest rather than the hash: the audit log is shown to admins and copied to a replica, which
/// hold no credential.
pub fn token_digest(token_hash: &[u8]) -> String {
    hex(&sha256(
        &[b"remit/token-issued/v1\0".as_slice(), token_hash].concat(),
    ))
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts every key length"),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The 256-bit master key. Never printed: `Debug` shows only its key id.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// Parses 64 hex characters.
    pub fn from_hex(text: &str) -> Result<MasterKey> {
        let bytes = unhex(text.trim())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                Error::invalid("ENCRYPTION_KEY", "must be 64 hex characters (32 bytes)")
            })?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        Ok(MasterKey(key))
    }

    /// Was it typed by hand rather than drawn at random (all zeros, `abab…`, `0123…cdef`
    /// repeated, a pattern pasted in from an example)? Such a key protects nothing: fewer than
    /// 16 different byte values among its 32, as any pattern that repeats within 15 bytes has.
    /// 32 random bytes have about 30 different ones; fewer than 16 happens about once in 10^15.
    pub fn is_weak(&self) -> bool {
        let mut seen = [false; 256];
        for byte in self.0 {
            seen[usize::from(byte)] = true;
        }
        seen.iter().filter(|s| **s).count() < 16
    }

    /// A fresh random key.
    pub fn generate() -> MasterKey {
        let mut key = [0u8; 32];
        fill_random(&mut key);
        MasterKey(key)
    }

    /// The key as 64 hex characters, for writing the key file.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    fn derive(&self, label: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.0, &[label])
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id {})", Keys::new(self).key_id)
    }
}

/// The path of the key file that sits beside a database: `remit.db` → `remit.db.key`. A
/// database named through a symbolic link has its key beside the file the link names, where
/// its write-ahead log and lock files are (the key beside the link was left behind by a copy of
/// the database's directory, and the file named by its own path had no key), unless a key beside
/// the link already exists and none beside the file: a ledger made through a link before
/// 2026-12-08 keeps its key where it is.
pub fn key_file_path(db: &Path) -> PathBuf {
    let named = crate::paths::with_suffix(db, ".key");
    if !std::fs::symlink_metadata(db).is_ok_and(|m| m.file_type().is_symlink()) {
        return named;
    }
    let resolved = crate::paths::with_suffix(&crate::paths::real_path(db), ".key");
    if named.exists() && !resolved.exists() {
        named
    } else {
        resolved
    }
}

/// Warns of a key file of another key than `key` beside `db`, once `key` (ENCRYPTION_KEY's)
/// has opened the ledger: a command run without the setting (a cron's backup check, an
/// operator's `remit check`) reads the file, and is told the ledger's key is wrong.
pub fn warn_if_the_key_file_differs(db: &Path, key: &MasterKey) {
    let path = key_file_path(db);
    let file = std::fs::read_to_string(&path).ok();
    if file.is_some_and(|file| MasterKey::from_hex(&file).is_ok_and(|k| k.0 != key.0)) {
        log::warn!(
            "the key file {} holds another key than ENCRYPTION_KEY, which opened the ledger: a command run without ENCRYPTION_KEY reads the file and cannot read the ledger; remove the file, or make the two the same",
            path.display()
        );
    }
}

/// Where the master key came from, for the start-up message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The `ENCRYPTION_KEY` environment variable (or `.env`).
    Environment,
    /// An existing key file.
    File(PathBuf),
    /// A key file created just now.
    Created(PathBuf),
}

/// Reads the key from `env_hex` if given, else from the key file beside the database. With
/// `create` and neither present, writes a new random key file with mode 0600.
pub fn load_master_key(
    db: &Path,
    env_hex: Option<&str>,
    create: bool,
) -> Result<(MasterKey, KeySource)> {
    if let Some(text) = env_hex.filter(|t| !t.trim().is_empty()) {
        let key = MasterKey::from_hex(text)?;
        // Said of ENCRYPTION_KEY when it is that setting's: a key a command read elsewhere
        // (`restore` from the key file, `check --key-file`) is said by its caller, by name
        // (the operator was sent to look for a weak key in a setting that was not set).
        if std::env::var("ENCRYPTION_KEY").is_ok_and(|set| set.trim() == text.trim()) {
            warn_if_weak(&key, "ENCRYPTION_KEY");
        }
        return Ok((key, KeySource::Environment));
    }
    let path = key_file_path(db);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = MasterKey::from_hex(&text).map_err(|_| {
                // Nothing was ever sealed under a key file beside an empty database: a first
                // start stopped while writing it (a power cut).
                let unfinished = if holds_data(db) {
                    ""
                } else {
                    ", and the database beside it holds nothing: a first start that did not finish wrote it; remove it and start again"
                };
                Error::internal(format!(
                    "key file {} does not hold 64 hex characters{unfinished}",
                    path.display()
                ))
            })?;
            warn_if_readable_by_others(&path);
            warn_if_weak(&key, &format!("the key file {}", path.display()));
            Ok((key, KeySource::File(path)))
        }
        // A new key only for a new ledger: a file already there (a restored backup, a file
        // that is not a database) was written under a key of its own, and a new one beside it
        // would pass for that key.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create && !holds_data(db) => {
            let key = MasterKey::generate();
            write_key_file(&path, &key)?;
            Ok((key, KeySource::Created(path)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && holds_data(db) => {
            Err(Error::internal(format!(
                "no encryption key for the existing database {}: set ENCRYPTION_KEY or put its key file at {} (`remit check --key-file FILE` reads a copy whose key is kept elsewhere)",
                db.display(),
                path.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::internal(format!(
            "no encryption key: set ENCRYPTION_KEY or put the key file at {}",
            path.display()
        ))),
        Err(e) => Err(Error::internal(format!(
            "cannot read key file {}: {e}",
            path.display()
        ))),
    }
}

/// Words for a key typed by hand (`MasterKey::is_weak`).
const WEAK_KEY: &str = "is a pattern, not drawn at random (fewer than 16 different bytes among its 32): anyone who guesses it reads the ledger's names and phones; make one with `openssl rand -hex 32` and rotate to it (`remit rotate-key`, README \"Key rotation\")";

/// A key typed by hand (`MasterKey::is_weak`) is said at every start and by every command that
/// reads it, never refused: the contract asks only for 64 hex characters (DESIGN.md), the
/// guide remit grew from gives a pattern as its example, and refusing it would lock a ledger
/// out, or a start the operator scripted.
pub fn warn_if_weak(key: &MasterKey, whose: &str) {
    if key.is_weak() {
        log::warn!("{whose} {WEAK_KEY}");
    }
}

/// A key file any other user of the machine can read opens the ledger's PII to them: said at
/// every start (remit makes it 0600; a copy or a restore may not have kept that).
fn warn_if_readable_by_others(path: &Path) {
    warn_if_others_can_read(
        path,
        "key file",
        "anyone who can read it can read the ledger's names and phones",
    );
}

/// Says so when a file holding a secret (`what`) can be read by other users of the machine:
/// `why` says what they could do with it. Nothing is said of a file that is not there.
pub fn warn_if_others_can_read(path: &Path, what: &str, why: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                log::warn!(
                    "{what} {} can be read by other users (mode {mode:o}): {why}; make it the owner's only (chmod 600)",
                    path.display()
                );
            }
        }
    }
}

/// Is there a file at `db` with something in it?
fn holds_data(db: &Path) -> bool {
    std::fs::metadata(db).is_ok_and(|m| m.len() > 0)
}

/// Writes a key file readable only by its owner; refuses to overwrite one.
pub fn write_key_file(path: &Path, key: &MasterKey) -> Result<()> {
    write_owner_only(path, format!("{}\n", key.to_hex()).as_bytes())
        .map_err(|e| Error::internal(format!("cannot write key file {}: {e}", path.display())))
}

/// Gives the file at `path` (made by this process) the owner and group of the file at `like`,
/// not following a link: a key file beside the ledger written by a rotation run as root must
/// be readable by the service's user, whose start reads it. One that cannot be given them
/// (another user than root may not give a file away) is refused in words.
pub fn owned_like(path: &Path, like: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let said = |e: std::io::Error| {
            Error::internal(format!(
                "{} cannot be given the owner of {} ({e}): run the rotation as that owner or as root",
                path.display(),
                like.display()
            ))
        };
        let (made, wanted) = (
            std::fs::symlink_metadata(path).map_err(said)?,
            std::fs::metadata(like).map_err(said)?,
        );
        if (made.uid(), made.gid()) != (wanted.uid(), wanted.gid()) {
            std::os::unix::fs::lchown(path, Some(wanted.uid()), Some(wanted.gid()))
                .map_err(said)?;
        }
    }
    Ok(())
}

/// Whether the key file at `path` is one `replace_key_file` puts a new key in: a plain file
/// with no other name. A symbolic link or a hard link's other name would keep the old key, the
/// link broken by the rename: those are the operator's to change.
pub fn replaceable_key_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| one_plain_file(&meta))
}

/// A plain file (not a link) with one name.
fn one_plain_file(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.file_type().is_file() && meta.nlink() == 1
    }
    #[cfg(not(unix))]
    meta.file_type().is_file()
}

/// Puts `key` in the key file at `path` in place of the key there: written whole beside it
/// through the descriptor that made it (synced, with the old file's owner and mode: a rotation
/// run as root leaves the service's user able to read it; one that cannot give them is refused
/// before the rename), renamed over it, the name checked to be that file, the directory synced;
/// a crash leaves the old key or the new, never part of one. Only a `replaceable_key_file`.
pub fn replace_key_file(path: &Path, key: &MasterKey) -> Result<()> {
    use std::io::Write;
    let said = |e: std::io::Error| {
        Error::internal(format!("cannot replace key file {}: {e}", path.display()))
    };
    let old = std::fs::symlink_metadata(path).map_err(said)?;
    if !one_plain_file(&old) {
        return Err(Error::internal(format!(
            "cannot replace key file {}: it is a symbolic link or has other names",
            path.display()
        )));
    }
    let name = path
        .file_name()
        .ok_or_else(|| Error::internal("the key file's path has no file name"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(".new");
    let temp = path.with_file_name(temp_name);
    // One left by a rotation cut short (a crash before its rename; the rotation holds the key
    // lock alone, so none is being written now).
    let _ = std::fs::remove_file(&temp);
    let mut file = new_owner_only(&temp).map_err(said)?;
    let placed = (|| -> std::io::Result<()> {
        file.write_all(format!("{}\n", key.to_hex()).as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let made = file.metadata()?;
            if (made.uid(), made.gid()) != (old.uid(), old.gid()) {
                // Another user than root may not give a file away: refused, rather than a key
                // file the service's user cannot read (and the operator's group can).
                std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid())).map_err(
                    |e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("the new key's file cannot be given the key file's owner ({e}); run the rotation as that owner or as root"),
                        )
                    },
                )?;
            }
            file.set_permissions(std::fs::Permissions::from_mode(old.mode() & 0o7777))?;
        }
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        // The name now leads to the file written here, not one put at the temporary name
        // meanwhile by whoever else may write in the directory.
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let (now, ours) = (std::fs::symlink_metadata(path)?, file.metadata()?);
            if (now.dev(), now.ino()) != (ours.dev(), ours.ino()) {
                return Err(std::io::Error::other(
                    "another file took the new key's place before it was renamed: check the key file",
                ));
            }
        }
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        // The new name is durable once the directory is; not every platform can sync one, and
        // the key is in place whatever this says.
        if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
            log::warn!(
                "the key file holds the new key; its directory could not be synced ({e}): until the file system writes it back, a power cut may bring the old key file back"
            );
        }
        Ok(())
    })();
    if placed.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    placed.map_err(said)
}

/// Writes `bytes` to a new file readable by its owner only (0600), synced; refuses to
/// overwrite a file. For keys, and for what is as private as the ledger beside it.
///
/// A file that cannot be written whole (a full disk) is removed: a first start on a full disk
/// left an empty key file, and every start after space was freed refused it.
pub fn write_owner_only(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = new_owner_only(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if written.is_err() {
        drop(file);
        let _ = std::fs::remove_file(path);
        return written;
    }
    // The new name is durable once its directory is (a first start's key file was made durable
    // only by SQLite's own sync of the directory, when it made its journal there next).
    crate::paths::sync_dir_of(path);
    Ok(())
}

/// A new file at `path`, readable by its owner only (0600), open for writing; refuses a name
/// already taken (a file or a link planted there: `O_EXCL` follows none).
fn new_owner_only(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Every column that holds ciphertext. Each builds the associated data of its values (table,
/// column and row), so that a ciphertext copied to another row or column fails to decrypt; and
/// `ALL` is the list key rotation walks, so a new encrypted column cannot be skipped by it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EncryptedColumn {
    /// `users.name_enc`.
    UserName,
    /// `users.phone_enc` (E.164; found through `users.phone_index`).
    UserPhone,
    /// `escrows.recipient_name_enc`: the recipient's name as this escrow's sender typed it.
    RecipientName,
    /// `payment_requests.merchant_name_enc`.
    MerchantName,
    /// `payment_requests.merchant_account_enc` (JSON: type, number, accountReference).
    MerchantAccount,
    /// `payment_requests.note_enc`.
    RequestNote,
    /// `payment_requests.decision_reason_enc`.
    DecisionReason,
    /// `webhook_events.payload_enc`.
    WebhookPayload,
    /// `idempotency_keys.body`: a stored response, keyed by user and key (forgotten, not
    /// re-encrypted, when the key rotates: it is a 48-hour cache).
    IdempotentResponse,
    /// `webhook_endpoints.secret_enc`: the `whsec_…` secret outgoing webhooks are signed with.
    WebhookSecret,
    /// `sms_messages.body_enc`: the text of an SMS.
    SmsBody,
    /// `payouts.resolve_reason_enc`: an admin's words on a payout resolved as failed by hand.
    ResolveReason,
    /// `webhook_endpoints.url_enc`: where a webhook endpoint's deliveries go (its query or path
    /// may hold the receiver's own secret); `url` keeps its origin only.
    WebhookUrl,
    /// `payouts.payee_name_enc`: the payee as M-Pesa's result of the paid payout names it
    /// (`"254712345678 - JANE WANJIKU"`).
    PayeeName,
}

impl EncryptedColumn {
    /// Every encrypted column.
    pub const ALL: &'static [EncryptedColumn] = &[
        EncryptedColumn::UserName,
        EncryptedColumn::UserPhone,
        EncryptedColumn::RecipientName,
        EncryptedColumn::MerchantName,
        EncryptedColumn::MerchantAccount,
        EncryptedColumn::RequestNote,
        EncryptedColumn::DecisionReason,
        EncryptedColumn::WebhookPayload,
        EncryptedColumn::IdempotentResponse,
        EncryptedColumn::WebhookSecret,
        EncryptedColumn::SmsBody,
        EncryptedColumn::ResolveReason,
        EncryptedColumn::WebhookUrl,
        EncryptedColumn::PayeeName,
    ];

    /// (table, column, the column's name in associated data).
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            EncryptedColumn::UserName => ("users", "name_enc", "name"),
            EncryptedColumn::UserPhone => ("users", "phone_enc", "phone"),
            EncryptedColumn::RecipientName => ("escrows", "recipient_name_enc", "recipient_name"),
            EncryptedColumn::MerchantName => {
                ("payment_requests", "merchant_name_enc", "merchant_name")
            }
            EncryptedColumn::MerchantAccount => (
                "payment_requests",
                "merchant_account_enc",
                "merchant_account",
            ),
            EncryptedColumn::RequestNote => ("payment_requests", "note_enc", "note"),
            EncryptedColumn::DecisionReason => {
                ("payment_requests", "decision_reason_enc", "decision_reason")
            }
            EncryptedColumn::WebhookPayload => ("webhook_events", "payload_enc", "payload"),
            EncryptedColumn::IdempotentResponse => ("idempotency_keys", "body", "body"),
            EncryptedColumn::WebhookSecret => ("webhook_endpoints", "secret_enc", "secret"),
            EncryptedColumn::SmsBody => ("sms_messages", "body_enc", "body"),
            EncryptedColumn::ResolveReason => ("payouts", "resolve_reason_enc", "resolve_reason"),
            EncryptedColumn::WebhookUrl => ("webhook_endpoints", "url_enc", "url"),
            EncryptedColumn::PayeeName => ("payouts", "payee_name_enc", "payee_name"),
        }
    }

    /// The table.
    pub fn table(self) -> &'static str {
        self.names().0
    }

    /// The column.
    pub fn column(self) -> &'static str {
        self.names().1
    }

    /// The column beside this one that holds its keyed search index (`Keys::blind_index`),
    /// if any: the user's phone's.
    pub fn index_column(self) -> Option<&'static str> {
        (self == EncryptedColumn::UserPhone).then_some("phone_index")
    }

    /// The associated data of the value in row `row`: `table.column.row`.
    pub fn aad(self, row: &str) -> String {
        let (table, _, name) = self.names();
        format!("{table}.{name}.{row}")
    }
}

/// The working keys derived from a master key.
#[derive(Clone)]
pub struct Keys {
    cipher: Aes256Gcm,
    blind_index_key: [u8; 32],
    /// Public short id of the master key, stored in every ciphertext.
    pub key_id: String,
    /// A value stored in the database that proves the key is the right one.
    pub key_check: String,
    /// What idempotency keys and their requests are kept under (`store::idempotency`): set
    /// by the store that opens the ledger's audit chain, from its first key, the same across
    /// key rotations.
    idempotency_secret: std::sync::OnceLock<[u8; 32]>,
}

/// How `Keys::decrypt`'s refusal begins (`Keys::is_undecryptable` tells it by this).
const UNDECRYPTABLE: &str = "cannot decrypt ";

impl Keys {
    /// Keeps the secret idempotency keys are kept under (set once; a second call changes
    /// nothing).
    pub fn keep_idempotency_secret(&self, secret: [u8; 32]) {
        let _ = self.idempotency_secret.set(secret);
    }

    /// The secret idempotency keys are kept under, once the ledger's audit chain was opened.
    pub fn idempotency_secret(&self) -> Result<&[u8; 32]> {
        self.idempotency_secret.get().ok_or_else(|| {
            Error::internal(
                "the idempotency keys' secret is not known: the audit chain was not opened",
            )
        })
    }

    /// Derives every subkey from the master key.
    pub fn new(master: &MasterKey) -> Keys {
        let enc = master.derive(LABEL_ENCRYPTION);
        let cipher = match Aes256Gcm::new_from_slice(&enc) {
            Ok(c) => c,
            Err(_) => unreachable!("a 32-byte key is a valid AES-256 key"),
        };
        Keys {
            cipher,
            blind_index_key: master.derive(LABEL_BLIND_INDEX),
            key_id: hex(&master.derive(LABEL_KEY_ID)[..4]),
            key_check: hex(&master.derive(LABEL_KEY_CHECK)),
            idempotency_secret: std::sync::OnceLock::new(),
        }
    }

    /// Encrypts a PII value. `aad` names table, column and row (`users.phone.usr_…`), so the
    /// ciphertext decrypts only in that place.
    pub fn encrypt(&self, aad: &str, plaintext: &str) -> Result<String> {
        let mut nonce = [0u8; NONCE_BYTES];
        fill_random(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| Error::internal("encryption failed"))?;
        let mut blob = Vec::with_capacity(NONCE_BYTES + sealed.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        Ok(format!(
            "{CIPHERTEXT_VERSION}.{}.{}",
            self.key_id,
            URL_SAFE_NO_PAD.encode(blob)
        ))
    }

    /// Is `e` the refusal of `decrypt` (a value damaged, or sealed under another key), rather
    /// than an error of the database?
    pub fn is_undecryptable(e: &Error) -> bool {
        matches!(e, Error::Internal(message) if message.starts_with(UNDECRYPTABLE))
    }

    /// Decrypts a value stored by `encrypt` for the same `aad`.
    pub fn decrypt(&self, aad: &str, stored: &str) -> Result<String> {
        let fail = || {
            Error::internal(format!(
                "{UNDECRYPTABLE}{aad} (damaged, or sealed under another key: `remit check` lists every value that does not open)"
            ))
        };
        let mut parts = stored.splitn(3, '.');
        let (Some(version), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(fail());
        };
        if version != CIPHERTEXT_VERSION || key_id != self.key_id {
            return Err(fail());
        }
        let blob = URL_SAFE_NO_PAD.decode(body).map_err(|_| fail())?;
        if blob.len() < NONCE_BYTES + 16 {
            return Err(fail());
        }
        let (nonce, sealed) = blob.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| fail())?;
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| fail())?;
        String::from_utf8(plain).map_err(|_| fail())
    }

    /// Encrypts the value of `column` in row `row`.
    pub fn seal(&self, column: EncryptedColumn, row: &str, plaintext: &str) -> Result<String> {
        self.encrypt(&column.aad(row), plaintext)
    }

    /// Decrypts the value of `column` in row `row`.
    pub fn open(&self, column: EncryptedColumn, row: &str, stored: &str) -> Result<String> {
        self.decrypt(&column.aad(row), stored)
    }

    /// Keyed blind index of a phone (E.164): HMAC-SHA256 under its own subkey. A bare hash
    /// would fall to trying all ~10⁹ Kenyan numbers.
    pub fn blind_index(&self, e164: &str) -> String {
        hex(&hmac_sha256(
            &self.blind_index_key,
            &[b"phone:", e164.as_bytes()],
        ))
    }

    /// Wraps an audit-chain key for storage under this master key.
    pub fn wrap_audit_key(&self, from_seq: i64, audit_key: &[u8; 32]) -> Result<String> {
        self.encrypt(&format!("audit_keys.key.{from_seq}"), &hex(audit_key))
    }

    /// Unwraps an audit-chain key stored by `wrap_audit_key`.
    pub fn unwrap_audit_key(&self, from_seq: i64, stored: &str) -> Result<[u8; 32]> {
        let text = self.decrypt(&format!("audit_keys.key.{from_seq}"), stored)?;
        let bytes = unhex(&text)
            .filter(|b| b.len() == 32)
            .ok_or_else(|| Error::internal("bad audit key"))?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(&MasterKey::from_hex(&"11".repeat(32)).unwrap())
    }

    #[test]
    fn round_trip_and_a_fresh_nonce_each_time() {
        let k = keys();
        let a = k.encrypt("users.phone.usr_1", "+254712345678").unwrap();
        let b = k.encrypt("users.phone.usr_1", "+254712345678").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("v1.{}.", k.key_id)));
        assert_eq!(k.decrypt("users.phone.usr_1", &a).unwrap(), "+254712345678");
    }

    #[test]
    fn a_flipped_byte_fails() {
        let k = keys();
        let stored = k.encrypt("users.name.usr_1", "Wanjiru").unwrap();
        let (head, body) = stored.rsplit_once('.').unwrap();
        let mut blob = URL_SAFE_NO_PAD.decode(body).unwrap();
        for i in 0..blob.len() {
            blob[i] ^= 1;
            let tampered = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&blob));
            assert!(
                k.decrypt("users.name.usr_1", &tampered).is_err(),
                "byte {i}"
            );
            blob[i] ^= 1;
        }
    }

    #[test]
    fn a_ciphertext_moved_to_another_row_or_column_fails() {
        let k = keys();
        let stored = k.encrypt("users.phone.usr_1", "+254712345678").unwrap();
        assert!(k.decrypt("users.phone.usr_2", &stored).is_err());
        assert!(k.decrypt("users.name.usr_1", &stored).is_err());
    }

    #[test]
    fn another_key_cannot_decrypt_and_blind_index_is_keyed_and_stable() {
        let k = keys();
        let other = Keys::new(&MasterKey::from_hex(&"22".repeat(32)).unwrap());
        let stored = k.encrypt("t.c.r", "x").unwrap();
        assert!(other.decrypt("t.c.r", &stored).is_err());
        assert_eq!(
            k.blind_index("+254712345678"),
            k.blind_index("+254712345678")
        );
        assert_ne!(
            k.blind_index("+254712345678"),
            other.blind_index("+254712345678")
        );
        assert_ne!(
            k.blind_index("+254712345678"),
            hex(&sha256(b"+254712345678"))
        );
        assert_ne!(k.key_check, other.key_check);
    }

    #[test]
    fn master_key_parsing() {
        assert!(MasterKey::from_hex(&"ab".repeat(32)).is_ok());
        assert!(MasterKey::from_hex(&"ab".repeat(31)).is_err());
        assert!(MasterKey::from_hex(&"zz".repeat(32)).is_err());
        // Typed by hand, or drawn at random.
        assert!(MasterKey::from_hex(&"0".repeat(64)).unwrap().is_weak());
        assert!(MasterKey::from_hex(&"5a17c0".repeat(11)[..64])
            .unwrap()
            .is_weak());
        assert!(MasterKey::from_hex(&"0123456789abcdef".repeat(4))
            .unwrap()
            .is_weak());
        assert!(!MasterKey::generate().is_weak());
        let text = format!("{:?}", MasterKey::from_hex(&"ab".repeat(32)).unwrap());
        assert!(!text.contains("abab"));
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
