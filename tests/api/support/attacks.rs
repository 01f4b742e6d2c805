//! Hostile clients, as someone on the same network could run them: each kind holds or floods a
//! server at `addr` until `stop` is set. Shared by the HTTP limit tests and the benchmark.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The kinds of hostile client.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Attack {
    /// Declares a 60,000-byte body, sends one byte, and waits.
    SlowBody,
    /// Pipelines `GET /app.js` as fast as it can and never reads an answer.
    PipelineNoRead,
    /// Sends one header line that never ends.
    EndlessHeader,
    /// Sends its head one byte every 2 s.
    Slowloris,
    /// Connects and says nothing.
    Idle,
}

impl Attack {
    /// Every kind, for a mixed crowd.
    pub const ALL: [Attack; 5] = [
        Attack::SlowBody,
        Attack::PipelineNoRead,
        Attack::EndlessHeader,
        Attack::Slowloris,
        Attack::Idle,
    ];
}

/// A crowd of hostile clients and the bytes they managed to send.
pub struct Crowd {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Bytes the clients sent in all.
    pub sent: Arc<AtomicU64>,
}

impl Crowd {
    /// Starts `n` clients of `kind` against `addr`.
    pub fn start(addr: SocketAddr, kind: Attack, n: usize) -> Crowd {
        Crowd::mixed(addr, &[(kind, n)])
    }

    /// Starts `n` clients of each kind.
    pub fn mixed(addr: SocketAddr, kinds: &[(Attack, usize)]) -> Crowd {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for (kind, n) in kinds {
            for i in 0..*n {
                let (stop, sent, kind) = (Arc::clone(&stop), Arc::clone(&sent), *kind);
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("attack-{kind:?}-{i}"))
                        .stack_size(256 * 1024)
                        .spawn(move || run(addr, kind, i, &stop, &sent))
                        .expect("start a hostile client"),
                );
            }
        }
        Crowd {
            stop,
            threads,
            sent,
        }
    }

    /// Stops every client and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// How long a hostile client waits before it opens a new connection.
const RECONNECT_PAUSE_MS: u64 = 200;

fn connect(addr: SocketAddr) -> Option<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    Some(stream)
}

/// Sleeps `d` in small steps, returning early when told to stop.
fn pause(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One client: does its kind of harm over and over (a new connection shortly after the server
/// closes one: a crowd of hostile connections, not a flood of new ones) until told to stop.
fn run(addr: SocketAddr, kind: Attack, i: usize, stop: &AtomicBool, sent: &AtomicU64) {
    let mut first = true;
    while !stop.load(Ordering::SeqCst) {
        if !first {
            pause(Duration::from_millis(RECONNECT_PAUSE_MS), stop);
        }
        first = false;
        let Some(mut s) = connect(addr) else {
            pause(Duration::from_millis(50), stop);
            continue;
        };
        let write = |s: &mut TcpStream, bytes: &[u8]| -> bool {
            let ok = s.write_all(bytes).is_ok();
            if ok {
                sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            ok
        };
        match kind {
            Attack::SlowBody => {
                let (method, path) = [
                    ("GET", "/escrows"),
                    ("POST", "/webhooks/stripe"),
                    ("POST", "/nope"),
                ][i % 3];
                let head = format!(
                    "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{"
                );
                if write(&mut s, head.as_bytes()) {
                    // Hold the connection until the server lets go of it.
                    hold(&mut s, stop, true);
                }
            }
            Attack::PipelineNoRead => {
                // Hundreds of requests a write, for 3 s or until the server stops reading.
                let many = b"GET /app.css HTTP/1.1\r\nHost: x\r\n\r\n".repeat(512);
                let started = Instant::now();
                while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(3) {
                    if !write(&mut s, &many) {
                        break;
                    }
                }
                hold(&mut s, stop, false);
            }
            Attack::EndlessHeader => {
                // A header line of up to 1 MiB on each connection (the server may read 16 KiB).
                if write(&mut s, b"GET /health HTTP/1.1\r\nX-Endless: ") {
                    let chunk = vec![b'a'; 64 * 1024];
                    for _ in 0..16 {
                        if stop.load(Ordering::SeqCst) || !write(&mut s, &chunk) {
                            break;
                        }
                    }
                    hold(&mut s, stop, true);
                }
            }
            Attack::Slowloris => {
                let head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
                for byte in head.iter() {
                    if stop.load(Ordering::SeqCst) || !write(&mut s, &[*byte]) {
                        break;
                    }
                    pause(Duration::from_secs(2), stop);
                }
            }
            Attack::Idle => hold(&mut s, stop, true),
        }
    }
}
/// `read`, answers are read and thrown away (to notice the close); without, nothing is read,
/// as by a client that never reads its answers.
fn hold(s: &mut TcpStream, stop: &AtomicBool, read: bool) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        if !read {
            pause(Duration::from_millis(200), stop);
            continue;
        }
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}
