//! remit patch: the open connections of a server, capped. Upstream kept every connection (and
//! its thread) for as long as the client liked: 1,200 idle connections were all kept open.
//!
//! At the cap, the connection idle the longest (waiting for its next request, or still
//! receiving a request head) is shut down to admit the new one, so a fresh client is always
//! served; when every connection is handling a request, the new one is refused. An entry
//! leaves the registry when its `Registration` is dropped, however the connection ends
//! (panics included), or when it is evicted.

use std::collections::HashMap;
use std::net::Shutdown;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::connection::Connection;

struct Entry {
    socket: Connection,
    /// `Some(since)` while the connection is idle or receiving a head; `None` while it
    /// handles a request (from its complete head to its written response).
    idle_since: Option<Instant>,
}

#[derive(Default)]
struct Entries {
    next_id: u64,
    map: HashMap<u64, Entry>,
}

pub(crate) struct Registry {
    max: usize,
    entries: Mutex<Entries>,
}

/// A connection's place in the registry; dropping it removes the entry.
pub(crate) struct Registration {
    registry: Arc<Registry>,
    id: u64,
}

impl Registry {
    pub(crate) fn new(max: usize) -> Arc<Registry> {
        Arc::new(Registry {
            max,
            entries: Mutex::new(Entries::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic never happens while the lock is held; recover anyway rather than spread it.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection, idle since now. At the cap, shuts down the connection idle
    /// the longest to make room; `None` when none is idle (the caller closes the new one).
    pub(crate) fn admit(self: &Arc<Self>, socket: Connection) -> Option<Registration> {
        let mut evicted = None;
        let id = {
            let mut entries = self.lock();
            if entries.map.len() >= self.max {
                let oldest = entries
                    .map
                    .iter()
                    .filter_map(|(id, e)| e.idle_since.map(|since| (since, *id)))
                    .min()
                    .map(|(_, id)| id)?;
                evicted = entries.map.remove(&oldest);
            }
            let id = entries.next_id;
            entries.next_id += 1;
            entries.map.insert(
                id,
                Entry {
                    socket,
                    idle_since: Some(Instant::now()),
                },
            );
            id
        };
        if let Some(entry) = evicted {
            // Its thread, blocked reading, wakes up to an end of stream and ends.
            log::debug!("connection cap reached: closing the connection idle the longest");
            let _ = entry.socket.shutdown(Shutdown::Both);
        }
        Some(Registration {
            registry: Arc::clone(self),
            id,
        })
    }

    /// Connections open (evicted ones excepted, even if their thread has not ended yet).
    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Shuts down every idle connection (the server is going away).
    pub(crate) fn shutdown_idle(&self) {
        let entries = self.lock();
        for entry in entries.map.values() {
            if entry.idle_since.is_some() {
                let _ = entry.socket.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Registration {
    /// The connection starts handling a request: it can no longer be evicted. `false` when it
    /// has been evicted already (its socket is shut down).
    pub(crate) fn set_busy(&self) -> bool {
        match self.registry.lock().map.get_mut(&self.id) {
            Some(entry) => {
                entry.idle_since = None;
                true
            }
            None => false,
        }
    }

    /// The connection waits for its next request: it may be evicted, the longest idle first.
    /// `false` when it has been evicted already.
    pub(crate) fn set_idle(&self) -> bool {
        match self.registry.lock().map.get_mut(&self.id) {
            Some(entry) => {
                entry.idle_since = Some(Instant::now());
                true
            }
            None => false,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().map.remove(&self.id);
    }
}
