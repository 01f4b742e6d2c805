//! A webhook receiver on loopback, as another system would run one: it checks every delivery's
//! `Remit-Signature` with its own HMAC code (the `hmac` and `sha2` crates, not remit's), keeps
//! what it received, and answers as its script says: 200, an error status, slowly, never; or it
//! disappears altogether (nothing listens on its port any more).

#![allow(dead_code)]

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How the receiver answers one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// This status at once.
    Status(u16),
    /// This status after this long.
    Slow(Duration, u16),
    /// Nothing: the connection is held open without an answer for this long, then closed.
    Hang(Duration),
}

/// A delivery as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub kind: String,
    pub created_at: String,
    pub data: Value,
    /// The whole body, parsed.
    pub body: Value,
    pub signature: String,
    /// Did `Remit-Signature` verify under the secret (and within 300 s)?
    pub verified: bool,
    /// Which time this event id arrived (1 for the first).
    pub nth: usize,
    pub at: Instant,
}

type Script = dyn Fn(&Received) -> Answer + Send + Sync;

struct Shared {
    secret: Mutex<String>,
    received: Mutex<Vec<Received>>,
    changed: Condvar,
    script: Mutex<Box<Script>>,
    counts: Mutex<HashMap<String, usize>>,
}

/// The receiver, listening on `url` until it disappears or is dropped.
pub struct Receiver {
    pub url: String,
    pub port: u16,
    shared: Arc<Shared>,
    server: Option<Arc<tiny_http::Server>>,
    stopping: Arc<AtomicBool>,
}

/// HMAC-SHA256 of `t.body` under `secret`, in hex, computed here without remit's code.
fn expected_signature(secret: &str, t: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Verifies `t=…,v1=…` as a receiver would: a `v1` must match, `t` within 300 s of now.
pub fn verify(header: &str, body: &[u8], secret: &str) -> bool {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1.push(value),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let Ok(when) = t.parse::<i64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expected = expected_signature(secret, t, body);
    (now - when).abs() <= 300 && v1.iter().any(|s| *s == expected)
}

impl Receiver {
    /// A receiver that answers 200 to everything.
    pub fn start() -> Receiver {
        Receiver::start_with(|_| Answer::Status(200))
    }

    /// A receiver that answers as `script` says for each delivery.
    pub fn start_with(script: impl Fn(&Received) -> Answer + Send + Sync + 'static) -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let shared = Arc::new(Shared {
            secret: Mutex::new(String::new()),
            received: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            script: Mutex::new(Box::new(script)),
            counts: Mutex::new(HashMap::new()),
        });
        let stopping = Arc::new(AtomicBool::new(false));
        {
            let (server, shared, stopping) = (
                Arc::clone(&server),
                Arc::clone(&shared),
                Arc::clone(&stopping),
            );
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let shared = Arc::clone(&shared);
                    // One thread per delivery: a slow answer holds up no other.
                    std::thread::spawn(move || answer(&shared, request));
                }
            });
        }
        Receiver {
            url: format!("http://127.0.0.1:{port}/hooks/remit"),
            port,
            shared,
            server: Some(server),
            stopping,
        }
    }

    /// The endpoint's signing secret (known once the endpoint is created).
    pub fn set_secret(&self, secret: &str) {
        *self.shared.secret.lock().unwrap() = secret.to_string();
    }

    /// Answer differently from now on.
    pub fn set_script(&self, script: impl Fn(&Received) -> Answer + Send + Sync + 'static) {
        *self.shared.script.lock().unwrap() = Box::new(script);
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// The distinct event ids received.
    pub fn ids(&self) -> BTreeSet<String> {
        self.received().into_iter().map(|r| r.id).collect()
    }

    /// Waits (bounded) until `done` holds of what was received; returns it.
    pub fn wait_for(&self, within: Duration, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + within;
        let mut received = self.shared.received.lock().unwrap();
        loop {
            if done(&received) {
                return received.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the receiver waited {within:?} in vain; it has {:?}",
                received
                    .iter()
                    .map(|r| (&r.kind, r.nth))
                    .collect::<Vec<_>>()
            );
            received = self.shared.changed.wait_timeout(received, left).unwrap().0;
        }
    }

    /// Stops listening: from now on a connection to its port is refused.
    pub fn disappear(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(server) = self.server.take() {
            server.unblock();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.disappear();
    }
}

fn answer(shared: &Shared, mut request: tiny_http::Request) {
    let signature = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Remit-Signature"))
        .map(|h| h.value.as_str().to_string())
        .unwrap_or_default();
    let mut raw = Vec::new();
    if std::io::Read::read_to_end(request.as_reader(), &mut raw).is_err() {
        return;
    }
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let secret = shared.secret.lock().unwrap().clone();
    let id = body["id"].as_str().unwrap_or("").to_string();
    let nth = {
        let mut counts = shared.counts.lock().unwrap();
        let n = counts.entry(id.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let received = Received {
        kind: body["type"].as_str().unwrap_or("").to_string(),
        created_at: body["createdAt"].as_str().unwrap_or("").to_string(),
        data: body["data"].clone(),
        verified: !secret.is_empty() && verify(&signature, &raw, &secret),
        body,
        signature,
        id,
        nth,
        at: Instant::now(),
    };
    let reply = (shared.script.lock().unwrap())(&received);
    let status = match reply {
        Answer::Status(s) => s,
        Answer::Slow(wait, s) => {
            std::thread::sleep(wait);
            s
        }
        Answer::Hang(wait) => {
            record(shared, received);
            std::thread::sleep(wait);
            return; // dropped without an answer: the connection closes
        }
    };
    // Recorded before the answer: a delivery is received once its body is here, whatever
    // becomes of the answer.
    record(shared, received);
    let _ = request.respond(tiny_http::Response::from_string("ok").with_status_code(status));
}

fn record(shared: &Shared, received: Received) {
    shared.received.lock().unwrap().push(received);
    shared.changed.notify_all();
}
