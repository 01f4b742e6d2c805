//! What the benchmarks share: driving work from many client threads, latency percentiles, and
//! reading a process's CPU time and memory from `/proc`.

#![allow(dead_code)] // each benchmark uses its part

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// One keep-alive HTTP/1.1 connection of the load: one request at a time, its answer read whole
/// (head parsed by `httparse`, body by its `Content-Length`). The load's clients run on the same
/// two cores as the server, so they are as light as a client can be: a general HTTP client
/// (`ureq`) spent 0.15 – 0.19 ms of CPU per approval, more than the server.
pub struct Client {
    host: String,
    stream: Option<TcpStream>,
    out: Vec<u8>,
    answer: Vec<u8>,
}

impl Client {
    /// A client of `base` (`http://127.0.0.1:PORT`); it connects at its first call.
    pub fn new(base: &str) -> Client {
        Client {
            host: base
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string(),
            stream: None,
            out: Vec::with_capacity(512),
            answer: Vec::with_capacity(16 * 1024),
        }
    }

    /// `method path` with a bearer token and a JSON body (none when empty): the answer's status,
    /// or `None` when the connection failed or the answer could not be read (the connection is
    /// then opened again at the next call).
    pub fn call(&mut self, method: &str, path: &str, token: &str, body: &str) -> Option<u16> {
        let status = self.exchange(method, path, token, body);
        if status.is_none() {
            self.stream = None;
        }
        status
    }

    fn exchange(&mut self, method: &str, path: &str, token: &str, body: &str) -> Option<u16> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.host).ok()?;
            stream.set_nodelay(true).ok()?;
            stream
                .set_read_timeout(Some(Duration::from_secs(60)))
                .ok()?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut()?;
        self.out.clear();
        write!(
            self.out,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n",
            self.host
        )
        .ok()?;
        if !body.is_empty() {
            write!(
                self.out,
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            )
            .ok()?;
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(body.as_bytes());
        stream.write_all(&self.out).ok()?;
        self.answer.clear();
        let mut chunk = [0u8; 8192];
        let (status, head, length, close) = loop {
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            self.answer.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) = response.parse(&self.answer).ok()? {
                let value = |name: &str| {
                    response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| h.value)
                };
                // Every answer of remit has a length; a chunked one would be a failure here.
                let length: usize = std::str::from_utf8(value("content-length")?)
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                let close = value("connection").is_some_and(|v| v.eq_ignore_ascii_case(b"close"));
                break (response.code?, head, length, close);
            }
        };
        while self.answer.len() < head + length {
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            self.answer.extend_from_slice(&chunk[..n]);
        }
        if close {
            self.stream = None;
        }
        Some(status)
    }
}

/// One client per connection of the load (each driver thread locks only its own).
pub fn clients(base: &str, connections: usize) -> Arc<Vec<Mutex<Client>>> {
    Arc::new(
        (0..connections)
            .map(|_| Mutex::new(Client::new(base)))
            .collect(),
    )
}

/// One approval over HTTP on the client's keep-alive connection: did it answer 200?
pub fn approve(client: &Mutex<Client>, token: &str, id: &str) -> bool {
    let mut client = client.lock().unwrap_or_else(|e| e.into_inner());
    client.call(
        "POST",
        &format!("/payment-requests/{id}/approve"),
        token,
        "{}",
    ) == Some(200)
}

/// One read of an escrow over HTTP: did it answer 200?
pub fn read_escrow(client: &Mutex<Client>, token: &str, id: &str) -> bool {
    let mut client = client.lock().unwrap_or_else(|e| e.into_inner());
    client.call("GET", &format!("/escrows/{id}"), token, "") == Some(200)
}

/// The value at `p` (0–1) of sorted latencies.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Runs `work` for every item on `threads` threads (each knows its index); returns the wall
/// time, the sorted latencies and the failures.
pub fn drive<T: Send + Sync + 'static>(
    items: Vec<T>,
    threads: usize,
    work: impl Fn(usize, &T) -> bool + Send + Sync + 'static,
) -> (Duration, Vec<Duration>, usize) {
    let items = Arc::new(items);
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (items, work, next, barrier) = (
                Arc::clone(&items),
                Arc::clone(&work),
                Arc::clone(&next),
                Arc::clone(&barrier),
            );
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut failures = 0;
                barrier.wait();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else {
                        return (latencies, failures);
                    };
                    let started = Instant::now();
                    if !work(t, item) {
                        failures += 1;
                    }
                    latencies.push(started.elapsed());
                }
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let mut all = Vec::new();
    let mut failures = 0;
    for h in handles {
        let (l, f) = h.join().expect("driver thread");
        all.extend(l);
        failures += f;
    }
    let wall = started.elapsed();
    all.sort();
    (wall, all, failures)
}

/// Clock ticks per second of `/proc/*/stat` (USER_HZ).
const TICKS_PER_S: f64 = 100.0;

fn cpu_of_stat(stat: &str) -> Duration {
    // Fields after the `(comm)`: state is the 3rd field, utime the 14th, stime the 15th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_secs_f64((field(14) + field(15)) as f64 / TICKS_PER_S)
}

/// CPU time (user + system) of a whole process so far.
pub fn process_cpu(pid: u32) -> Duration {
    cpu_of_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

/// CPU time of the threads of this process whose name starts with `prefix` (the in-process
/// server's threads are `remit-…`; the clients' are not).
pub fn threads_cpu(prefix: &str) -> Duration {
    threads_cpu_in("self", prefix)
}

/// `threads_cpu` of another process (`pid`: its number, or `self`).
pub fn threads_cpu_in(pid: &str, prefix: &str) -> Duration {
    let mut total = Duration::ZERO;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.starts_with(prefix) {
                total += cpu_of_stat(
                    &std::fs::read_to_string(task.path().join("stat")).unwrap_or_default(),
                );
            }
        }
    }
    total
}

/// CPU time of every process of this machine whose name is `comm` (e.g. `postgres`: the
/// postmaster and its backends), as far as they are alive now. Every one: the benchmark's
/// figure for PostgreSQL assumes its cluster is the only one running.
pub fn processes_cpu(comm: &str) -> Duration {
    let mut total = Duration::ZERO;
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            let name = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
            if name.trim_end() == comm {
                total += cpu_of_stat(
                    &std::fs::read_to_string(p.path().join("stat")).unwrap_or_default(),
                );
            }
        }
    }
    total
}

/// A `/proc/<pid>/status` line in KiB (`VmRSS`, `VmHWM`), as MiB.
pub fn memory_mib(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
