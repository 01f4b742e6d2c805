//! remit patch: the open connections of a server, capped. Upstream kept every connection (and
//! its thread) for as long as the client liked: 1,200 idle connections were all kept open.
//!
//! At the cap, the connection idle the longest (waiting for its next request, or still
//! receiving a request head) is shut down to admit the new one, so a fresh client is always
//! served. When none is idle, the connection blocked the longest writing an answer (its client
//! does not read it: the answer is ready, only the client holds it up) is shut down instead.
//! Only when every connection has a request with the application (waiting for a worker, its
//! body being read, its answer being made) is the new one refused: the server is busy with
//! work, not held by clients. An entry leaves the registry when its `Registration` is dropped,
//! however the connection ends (panics included), or when it is evicted.

use std::collections::HashMap;
use std::net::Shutdown;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::connection::Connection;

/// What a connection is doing, as far as eviction is concerned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Idle or receiving a head, since then: evicted first, the longest idle first.
    Idle(Instant),
    /// Its request is with the application (from its complete head until its answer is
    /// handed back): never evicted.
    Handling,
    /// Writing its answer, since then: evicted when none is idle, the longest first.
    Writing(Instant),
}

struct Entry {
    socket: Connection,
    stage: Stage,
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
    /// the longest to make room, or when none is idle the one writing an answer the longest;
    /// `None` when every connection is handling a request (the caller closes the new one).
    pub(crate) fn admit(self: &Arc<Self>, socket: Connection) -> Option<Registration> {
        let mut evicted = None;
        let id = {
            let mut entries = self.lock();
            if entries.map.len() >= self.max {
                let longest = |idle: bool| {
                    entries
                        .map
                        .iter()
                        .filter_map(|(id, e)| match e.stage {
                            Stage::Idle(since) if idle => Some((since, *id)),
                            Stage::Writing(since) if !idle => Some((since, *id)),
                            _ => None,
                        })
                        .min()
                        .map(|(_, id)| id)
                };
                let oldest = longest(true).or_else(|| longest(false))?;
                evicted = entries.map.remove(&oldest);
            }
            let id = entries.next_id;
            entries.next_id += 1;
            entries.map.insert(
                id,
                Entry {
                    socket,
                    stage: Stage::Idle(Instant::now()),
                },
            );
            id
        };
        if let Some(entry) = evicted {
            // Its thread, blocked reading or writing, wakes up to an end of stream or a failed
            // write and ends.
            log::debug!("connection cap reached: closing the connection idle or stalled writing the longest");
            if matches!(entry.stage, Stage::Writing(_)) {
                entry.socket.reset_on_close();
            }
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
    ///
    /// remit patch: each is taken out of the registry, as an evicted one is, so that a request
    /// whose head arrives at this moment is not handled on a socket already shut down (it was:
    /// it was applied, and its answer was lost): its `set_busy` fails and it is closed unread.
    pub(crate) fn shutdown_idle(&self) {
        let mut entries = self.lock();
        entries.map.retain(|_, entry| {
            let idle = matches!(entry.stage, Stage::Idle(_));
            if idle {
                let _ = entry.socket.shutdown(Shutdown::Both);
            }
            !idle
        });
    }
}

impl Registration {
    fn set(&self, stage: Stage) -> bool {
        match self.registry.lock().map.get_mut(&self.id) {
            Some(entry) => {
                entry.stage = stage;
                true
            }
            None => false,
        }
    }

    /// The connection starts handling a request: it can no longer be evicted. `false` when it
    /// has been evicted already (its socket is shut down).
    pub(crate) fn set_busy(&self) -> bool {
        self.set(Stage::Handling)
    }

    /// The connection starts writing an answer: when none is idle, it may be evicted, the one
    /// writing the longest first. `false` when it has been evicted already.
    pub(crate) fn set_writing(&self) -> bool {
        self.set(Stage::Writing(Instant::now()))
    }

    /// The connection waits for its next request: it may be evicted, the longest idle first.
    /// `false` when it has been evicted already.
    pub(crate) fn set_idle(&self) -> bool {
        self.set(Stage::Idle(Instant::now()))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().map.remove(&self.id);
    }
}
