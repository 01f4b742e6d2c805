//! Authentication of bearer tokens, and the record of their use: `last_used_at` is written in
//! the background, never by the request that used the token.

use crate::error::{Error, Result};
use crate::limits::TOKEN_BYTES_MAX;
use crate::service::{users, Actor};
use crate::store::Store;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Turns bearer tokens into actors.
pub struct Authenticator {
    store: Arc<Store>,
    /// Hashes of tokens used since the last flush of `last_used_at`.
    touched: Mutex<HashSet<[u8; 32]>>,
}

impl Authenticator {
    /// An authenticator over the users of `store`.
    pub fn new(store: Arc<Store>) -> Authenticator {
        Authenticator {
            store,
            touched: Mutex::new(HashSet::new()),
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
        let actor = self
            .store
            .read(|conn, _| users::authenticate(conn, token))?;
        if let Ok(mut set) = self.touched.lock() {
            set.insert(crate::crypto::sha256(token.as_bytes()));
        }
        Ok(actor)
    }

    /// Writes `last_used_at` for the tokens used since the last call.
    pub fn flush_token_use(&self) {
        let hashes: Vec<[u8; 32]> = match self.touched.lock() {
            Ok(mut set) => set.drain().collect(),
            Err(_) => return,
        };
        if hashes.is_empty() {
            return;
        }
        if let Err(e) = self
            .store
            .write(move |ctx| users::touch_tokens(ctx, &hashes))
        {
            log::warn!("could not record token use: {e:?}");
        }
    }
}
