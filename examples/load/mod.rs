//! What the benchmarks share: driving work from many client threads, latency percentiles, and
//! reading a process's CPU time and memory from `/proc`.

#![allow(dead_code)] // each benchmark uses its part

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// One approval over HTTP on the client's keep-alive connection: did it answer 200? The body is
/// read to its end, which is what lets the connection be kept alive.
pub fn approve(agent: &ureq::Agent, base: &str, token: &str, id: &str) -> bool {
    let answer = agent
        .post(&format!("{base}/payment-requests/{id}/approve"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send("{}");
    match answer {
        Ok(mut resp) => resp.status() == 200 && resp.body_mut().read_to_vec().is_ok(),
        Err(_) => false,
    }
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
