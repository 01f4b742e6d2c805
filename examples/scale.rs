//! The scale benchmark: does the cost of an approval, a read and the operator's work stay flat
//! as the ledger grows? It builds ledgers through the service layer — escrows of 2
//! categories, each funded by a cash deposit, with 2 payment requests (one paid; the other
//! paid or rejected), their payouts, journal and audit lines: the smallest size in a ledger of
//! its own, the others by growing one ledger to each in turn. At each size it runs the real
//! `remit` binary on it and measures:
//!
//! - durable approvals over HTTP at 32 connections, of requests on escrows spread over the
//!   whole ledger (approvals/s, p99, server CPU and file reads per approval, and of the CPU
//!   the writer thread's and the checkpointer's; commands per group commit and the writer's
//!   time in each `COMMIT`);
//! - reads of random escrows (`GET /escrows/:id`, reads/s, p99, CPU and file reads per read);
//! - the server's peak resident memory, the WAL's peak size, its restarts and the writer's
//!   pauses for them;
//! - the admin lists, a recipient-phone search and the API calls of the first page of the
//!   admin and agent screens;
//! - `remit check` (time and peak memory), `remit backup`, and a restart after `kill -9`
//!   under load, to the first `/health` answer.
//!
//! The approvals and reads at the largest size run in `--rounds` rounds (3), each beside a
//! round at the smallest, and the table gives the medians: over a run of a quarter of an hour
//! the machine's speed drifts by more than the difference measured. Each round first reads
//! the database file through (timed, printed past 1 GiB), so that it is measured in memory as a
//! busy server's is (`warm`). `--load-only` skips the
//! operator's work; `--keep DIR` keeps the largest ledger for a later run, which takes it from
//! there (the smallest is built anew at every run: a run spends about a sixth of its money,
//! always on the same escrows, and a kept one began refusing approvals after a few runs).
//!
//! `cargo build --release && cargo run --release --example scale -- [--sizes 2000,100000,1000000]
//! [--approvals 10000] [--reads 10000] [--connections 32] [--rounds 3] [--keep DIR] [--load-only]`
//!
//! The servers it starts log nothing but warnings, and to nowhere; `SCALE_SERVER_LOG=FILE`
//! appends their logs to FILE, and `SCALE_SERVER_LOG_LEVEL` is their `RUST_LOG`
//! (`remit::store=debug` says when the WAL was copied and restarted, and how long each took).

// A benchmark, not a service: a setup that fails should stop it with its reason.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "load/mod.rs"]
mod load;

use load::{drive, memory_mib, percentile, process_cpu};
use remit::domain::{CategoryName, DepositSource, EscrowId, KenyanPhone, PaymentRequestId};
use remit::money::{KesCents, UsdCents};
use remit::service::escrows::{self, Categories, NewEscrow};
use remit::service::payouts::{self, PayoutResult};
use remit::service::requests::{self, MerchantAccount, NewPaymentRequest};
use remit::service::users::{self, NewUser};
use remit::service::{deposits, Actor, Role};
use remit::store::{self, OpenOptions, Store};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "4cc62ea96075a7926117e4898568a0d19c01d737e8750420b5337b719e1c5757";
/// Escrows per sender and per recipient of the built ledger.
const ESCROWS_PER_SENDER: usize = 1_000;
const ESCROWS_PER_RECIPIENT: usize = 10;
/// Escrows per writer command while building: small, because SQLite keeps a command's
/// savepoint journal in memory and cuts it back after every statement by walking it from its
/// start (a command of 200 escrows spent a fifth of the build there).
const BUILD_COMMAND: usize = 1;
/// Threads sending those commands, so that the writer groups several into each transaction.
const BUILD_THREADS: usize = 64;
/// The WAL's bound while building (the servers measured run with the default, 64 MiB): the
/// writer restarts the log 16 times less often, and each restart at a million escrows waits
/// for scattered pages to reach the disk (11 % more escrows a second at 100,000). The build
/// ends with the store closed, which empties the log.
const BUILD_WAL_MIB: u64 = 1_024;

struct Args {
    sizes: Vec<usize>,
    approvals: usize,
    reads: usize,
    connections: usize,
    /// A directory to keep the ledger in (and to take it from on a later run).
    keep: Option<PathBuf>,
    /// Only the approvals and the reads at each size (no lists, check, backup or restart).
    load_only: bool,
    /// Load rounds at the smallest and the largest size, alternated.
    rounds: usize,
}

fn args() -> Args {
    let mut a = Args {
        sizes: vec![2_000, 100_000, 1_000_000],
        approvals: 10_000,
        reads: 10_000,
        connections: 32,
        keep: None,
        load_only: false,
        rounds: 3,
    };
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = argv.iter().position(|a| a == "--load-only") {
        a.load_only = true;
        argv.remove(at);
    }
    for pair in argv.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--sizes" => {
                a.sizes = value
                    .split(',')
                    .map(|s| s.trim().replace('_', "").parse().expect("--sizes"))
                    .collect()
            }
            "--approvals" => a.approvals = value.parse().expect("--approvals"),
            "--reads" => a.reads = value.parse().expect("--reads"),
            "--connections" => a.connections = value.parse().expect("--connections"),
            "--rounds" => a.rounds = value.parse::<usize>().expect("--rounds").max(1),
            "--keep" => a.keep = Some(PathBuf::from(value)),
            _ => {
                eprintln!("usage: scale [--sizes 2000,100000,1000000] [--approvals N] [--reads N] [--connections C] [--rounds R] [--keep DIR] [--load-only]");
                std::process::exit(2);
            }
        }
    }
    a
}

/// A small deterministic generator (xorshift), so that runs pick the same escrows.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The people of the ledger: senders (with a token each), an agent, an admin.
struct People {
    senders: Vec<(Actor, String)>,
    agent: Actor,
    admin_token: String,
    agent_token: String,
}

fn user(store: &Store, role: Role, name: String) -> (Actor, String) {
    let created = store
        .write(move |ctx| {
            users::create(
                ctx,
                &Actor::system("scale"),
                &NewUser {
                    role,
                    name: name.clone(),
                    phone: None,
                },
            )
        })
        .expect("user");
    (Actor::user(&created.user.user_id, role), created.token)
}

fn paybill(reference: &str) -> MerchantAccount {
    MerchantAccount::Paybill {
        number: "888880".into(),
        account_reference: reference.into(),
    }
}

fn request_input(escrow: &EscrowId, category: &str, kes: i64) -> NewPaymentRequest {
    NewPaymentRequest {
        escrow_id: escrow.clone(),
        category: CategoryName::parse("c", category).unwrap(),
        amount: KesCents::new(kes * 100).unwrap(),
        merchant_name: "Kenya Power".into(),
        merchant_account: paybill("3719450261"),
        note: None,
    }
}

/// Builds escrows `from..to` through the service layer: each funded, with one paid request
/// and one paid or rejected. Returns the escrow ids (with their sender's index).
fn build(store: &Store, people: &People, from: usize, to: usize) -> Vec<(EscrowId, usize)> {
    let receipts = Arc::new(AtomicU64::new(from as u64 * 2));
    let next = AtomicU64::new(from as u64);
    let mut built: Vec<(usize, EscrowId, usize)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..BUILD_THREADS)
            .map(|_| scope.spawn(|| build_some(store, people, &next, to, &receipts)))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("builder"))
            .collect()
    });
    built.sort_unstable_by_key(|(i, _, _)| *i);
    built.into_iter().map(|(_, id, s)| (id, s)).collect()
}

/// One builder thread: takes `BUILD_COMMAND` escrows at a time below `to` until none are left.
fn build_some(
    store: &Store,
    people: &People,
    next: &AtomicU64,
    to: usize,
    receipts: &Arc<AtomicU64>,
) -> Vec<(usize, EscrowId, usize)> {
    let mut built = Vec::new();
    loop {
        let start = next.fetch_add(BUILD_COMMAND as u64, Ordering::Relaxed) as usize;
        if start >= to {
            return built;
        }
        let end = (start + BUILD_COMMAND).min(to);
        let senders: Vec<(usize, Actor)> = (start..end)
            .map(|i| {
                let s = (i / ESCROWS_PER_SENDER) % people.senders.len();
                (s, people.senders[s].0.clone())
            })
            .collect();
        let (agent, receipts) = (people.agent.clone(), Arc::clone(receipts));
        let ids = store
            .write(move |ctx| {
                let system = Actor::system("scale");
                let mut ids = Vec::with_capacity(end - start);
                for (i, (s, sender)) in (start..end).zip(&senders) {
                    let recipient = i / ESCROWS_PER_RECIPIENT;
                    let input = NewEscrow {
                        recipient_phone: KenyanPhone::parse("p", &format!("07{recipient:08}"))?,
                        recipient_name: format!("Recipient {recipient}"),
                        total: UsdCents::new(20_000).unwrap(),
                        categories: Categories::Names(vec![
                            CategoryName::parse("c", "rent")?,
                            CategoryName::parse("c", "school_fees")?,
                        ]),
                        daily_limit: None,
                        recipient_language: remit::domain::Language::En,
                    };
                    let id = escrows::create(ctx, sender, &input)?.escrow_id;
                    deposits::record(
                        ctx,
                        &agent,
                        id.as_str(),
                        DepositSource::Cash,
                        &format!("scale-{i}"),
                        input.total,
                    )?;
                    let paid = |ctx: &remit::store::WriteCtx<'_>, category: &str, kes: i64| {
                        let view = requests::create(
                            ctx,
                            &agent,
                            &request_input(&id, category, kes),
                            72 * 3600,
                        )?;
                        let payout =
                            requests::approve_unviewed(ctx, sender, &view.payment_request_id)?;
                        let n = receipts.fetch_add(1, Ordering::Relaxed);
                        payouts::apply_result(
                            ctx,
                            &system,
                            &payout,
                            &PayoutResult::Succeeded {
                                receipt: format!("SC{n:08}"),
                            },
                            payouts::Reported::NotCarried,
                        )
                    };
                    paid(ctx, "rent", 3_000)?;
                    if i % 2 == 0 {
                        paid(ctx, "school_fees", 1_500)?;
                    } else {
                        let view = requests::create(
                            ctx,
                            &agent,
                            &request_input(&id, "school_fees", 1_500),
                            72 * 3600,
                        )?;
                        requests::reject(
                            ctx,
                            sender,
                            &view.payment_request_id,
                            Some("not this term"),
                        )?;
                    }
                    ids.push((i, id, *s));
                }
                Ok(ids)
            })
            .expect("build");
        built.extend(ids);
    }
}

/// Pending requests on `n` escrows picked at random over the whole ledger, with the token of
/// the sender who may approve each.
fn pending(
    store: &Store,
    people: &People,
    escrows: &[(EscrowId, usize)],
    n: usize,
    rng: &mut Rng,
) -> Vec<(String, String)> {
    let picks: Vec<(EscrowId, usize)> = (0..n)
        .map(|_| escrows[rng.below(escrows.len())].clone())
        .collect();
    let mut out = Vec::with_capacity(n);
    for chunk in picks.chunks(500) {
        let (agent, chunk) = (people.agent.clone(), chunk.to_vec());
        // 500 requests on escrows all over a large ledger change over a thousand pages: more
        // than an ordinary command may journal (`Store::write_bulk`).
        let ids: Vec<(PaymentRequestId, usize)> = store
            .write_bulk(move |ctx| {
                chunk
                    .iter()
                    .map(|(id, s)| {
                        // KES 150 at 150: USD 1, so that thousands fit in a category.
                        requests::create(ctx, &agent, &request_input(id, "rent", 150), 72 * 3600)
                            .map(|v| (v.payment_request_id, *s))
                    })
                    .collect()
            })
            .expect("pending requests");
        out.extend(
            ids.into_iter()
                .map(|(id, s)| (id.to_string(), people.senders[s].1.clone())),
        );
    }
    out
}

/// Users (id, role) and escrows (id, sender id) of a kept ledger.
type Kept = (Vec<(String, Role)>, Vec<(EscrowId, String)>);

/// The people and escrows of a ledger built by an earlier run (`--keep`), with new tokens.
fn reuse(store: &Store) -> (People, Vec<(EscrowId, usize)>) {
    let (users, escrows): Kept = store
        .read(|conn, _| {
            let users = conn
                .prepare("SELECT id, role FROM users WHERE role <> 'recipient' ORDER BY id")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let escrows = conn
                .prepare("SELECT id, sender_id FROM escrows ORDER BY id")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok((users, escrows))
        })
        .expect("read the kept ledger");
    let token = |id: &str| {
        let id = remit::domain::UserId::parse(id).expect("user id");
        store
            .write(move |ctx| users::issue_token(ctx, &Actor::system("scale"), &id))
            .expect("token")
            .token
    };
    let mut senders = Vec::new();
    let mut sender_index = std::collections::HashMap::new();
    let (mut agent, mut admin_token, mut agent_token) = (None, String::new(), String::new());
    for (id, role) in &users {
        let actor = Actor::user(&remit::domain::UserId::parse(id).expect("id"), *role);
        match role {
            Role::Sender => {
                sender_index.insert(id.clone(), senders.len());
                senders.push((actor, token(id)));
            }
            Role::Agent => {
                agent_token = token(id);
                agent = Some(actor);
            }
            Role::Admin => admin_token = token(id),
            Role::Recipient => {}
        }
    }
    let escrows = escrows
        .into_iter()
        .map(|(id, sender)| (id, sender_index[&sender]))
        .collect();
    (
        People {
            senders,
            agent: agent.expect("an agent"),
            admin_token,
            agent_token,
        },
        escrows,
    )
}

fn open(db: &Path) -> Store {
    open_with_wal(db, None)
}

/// `open` with the WAL bounded at `wal_mib` MiB instead of the default.
fn open_with_wal(db: &Path, wal_mib: Option<u64>) -> Store {
    let mut options = OpenOptions::new(db);
    options.key_hex = Some(KEY.into());
    if let Some(mib) = wal_mib {
        options.wal_max_bytes = mib << 20;
    }
    store::open(&options).expect("open")
}

/// The `remit` binary next to this example (`target/release/remit`).
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("remit"))
        .expect("target dir");
    if !bin.exists() {
        eprintln!(
            "{} is missing: run `cargo build --release` first",
            bin.display()
        );
        std::process::exit(2);
    }
    bin
}

/// A running `remit serve` on a loopback port.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(bin: &Path, db: &Path) -> (Server, Duration) {
        let started = Instant::now();
        let mut child = Command::new(bin)
            .args(["serve", "--db"])
            .arg(db)
            .args(["--addr", "127.0.0.1:0"])
            .env_clear()
            .env("ENCRYPTION_KEY", KEY)
            .env("REMIT_GATEWAY", "none")
            .env(
                "RUST_LOG",
                std::env::var("SCALE_SERVER_LOG_LEVEL").unwrap_or("warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(match std::env::var("SCALE_SERVER_LOG") {
                Ok(p) => Stdio::from(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(p)
                        .expect("SCALE_SERVER_LOG"),
                ),
                Err(_) => Stdio::null(),
            })
            .spawn()
            .expect("start remit");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("remit exited before listening")
                .expect("stdout");
            if let Some(rest) = line.strip_prefix("remit listening on ") {
                break rest.split_whitespace().next().expect("address").to_string();
            }
        };
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        let server = Server { child, base };
        let healthy = server.wait_healthy();
        (server, started.elapsed().max(healthy))
    }

    /// Time until `/health` answers 200.
    fn wait_healthy(&self) -> Duration {
        let started = Instant::now();
        let agent = http_agent();
        loop {
            if let Ok(r) = agent.get(&format!("{}/health", self.base)).call() {
                if r.status() == 200 {
                    return started.elapsed();
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "no /health in 2 minutes"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .max_idle_connections_per_host(1)
            .build(),
    )
}

/// Samples the WAL's size every 10 ms until stopped; returns the peak.
struct WalWatch {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl WalWatch {
    fn start(db: &Path) -> WalWatch {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let (stop, peak) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let thread = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                    peak.fetch_max(size, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        WalWatch { stop, peak, thread }
    }

    fn peak_mib(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed) as f64 / 1048576.0
    }
}

/// Approvals over HTTP: (approvals/s, p99 ms, server CPU ms per approval, failures).
fn approvals(
    base: &str,
    pid: Option<u32>,
    requests: Vec<(String, String)>,
    connections: usize,
) -> Approvals {
    let n = requests.len();
    let clients = load::clients(base, connections);
    let cpu_of = move || pid.map_or(Duration::ZERO, process_cpu);
    let thread_of = move |prefix: &str| {
        pid.map_or(Duration::ZERO, |p| {
            load::threads_cpu_in(&p.to_string(), prefix)
        })
    };
    let (cpu_before, writer_before, checkpointer_before) = (
        cpu_of(),
        thread_of("remit-writer"),
        thread_of("remit-checkpoin"),
    );
    let (wall, latencies, failures) = drive(requests, connections, move |t, (id, token)| {
        load::approve(&clients[t], token, id)
    });
    let per_approval = |d: Duration| d.as_secs_f64() * 1e3 / n as f64;
    Approvals {
        per_s: n as f64 / wall.as_secs_f64(),
        p99_ms: percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        cpu_ms: per_approval(cpu_of().saturating_sub(cpu_before)),
        writer_ms: per_approval(thread_of("remit-writer").saturating_sub(writer_before)),
        checkpointer_ms: per_approval(
            thread_of("remit-checkpoin").saturating_sub(checkpointer_before),
        ),
        failed: failures,
    }
}

/// What the approvals measured.
struct Approvals {
    per_s: f64,
    p99_ms: f64,
    /// The server's CPU per approval, and of it the writer thread's and the checkpointer's.
    cpu_ms: f64,
    writer_ms: f64,
    checkpointer_ms: f64,
    failed: usize,
}

/// What the reads of random escrows measured.
struct Reads {
    per_s: f64,
    p99_ms: f64,
    failed: usize,
    /// The server's CPU per read.
    cpu_ms: f64,
    /// The server's `read` system calls per read (the request's own and the file's pages
    /// fetched from the operating system: what the readers' page caches did not hold).
    syscalls: f64,
}

/// The number of `read`-family system calls a process has made (`syscr` of `/proc/PID/io`).
fn read_syscalls(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("syscr: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Reads of random escrows.
fn reads(server: &Server, ids: Vec<String>, token: &str, connections: usize) -> Reads {
    let n = ids.len();
    let (cpu_before, syscalls_before) = (process_cpu(server.pid()), read_syscalls(server.pid()));
    let clients = load::clients(&server.base, connections);
    let token = token.to_string();
    let (wall, latencies, failures) = drive(ids, connections, move |t, id| {
        load::read_escrow(&clients[t], &token, id)
    });
    let cpu = process_cpu(server.pid()).saturating_sub(cpu_before);
    let syscalls = read_syscalls(server.pid()).saturating_sub(syscalls_before);
    Reads {
        per_s: n as f64 / wall.as_secs_f64(),
        p99_ms: percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        failed: failures,
        cpu_ms: cpu.as_secs_f64() * 1e3 / n as f64,
        syscalls: syscalls as f64 / n as f64,
    }
}

/// A figure of the server's `/metrics` (0 if it has none by that name).
fn metric(server: &Server, token: &str, name: &str) -> f64 {
    let text = http_agent()
        .get(&format!("{}/metrics", server.base))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The slowest of five answers to one GET, in ms (and its status).
fn slowest_get(server: &Server, path: &str, token: &str) -> (f64, u16) {
    let agent = http_agent();
    let mut worst = 0.0_f64;
    let mut status = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let mut r = agent
            .get(&format!("{}{path}", server.base))
            .header("Authorization", &format!("Bearer {token}"))
            .call()
            .expect("GET");
        status = r.status().as_u16();
        let _ = r.body_mut().read_to_vec();
        worst = worst.max(started.elapsed().as_secs_f64() * 1e3);
    }
    (worst, status)
}

/// Reads the database file through once, so that a round finds it in the kernel's page cache
/// as a server that has been running does (the file fits in memory here), and says how long
/// that took. On this machine a ledger idle for a minute is partly read from the disk again:
/// its memory is reclaimed behind its back (the kernel's DAMON `pageout` scheme, pages not
/// touched for 60 s, 128 MiB a second), and a round that found it so ran at half the rate.
fn warm(db: &Path) {
    use std::io::Read;
    let started = Instant::now();
    let Ok(mut file) = std::fs::File::open(db) else {
        return;
    };
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    while let Ok(n) = file.read(&mut buffer) {
        if n == 0 {
            break;
        }
        bytes += n as u64;
    }
    let s = started.elapsed().as_secs_f64();
    if bytes > 1 << 30 {
        println!(
            "  (the file read through before the round: {:.1} GiB in {s:.1} s, {:.1} GiB/s)",
            bytes as f64 / f64::from(1u32 << 30),
            bytes as f64 / f64::from(1u32 << 30) / s.max(1e-9)
        );
    }
}

/// Runs a `remit` command; returns its time and peak memory (sampled).
fn timed_command(bin: &Path, args: &[&str], db: &Path) -> (Duration, f64, bool) {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .arg("--db")
        .arg(db)
        .env_clear()
        .env("ENCRYPTION_KEY", KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run remit");
    let pid = child.id().to_string();
    let mut peak = 0.0_f64;
    let status = loop {
        peak = peak.max(memory_mib(&pid, "VmHWM:"));
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    (started.elapsed(), peak, status.success())
}

fn file_mib(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1048576.0)
}

/// One load round at one size: the approvals, then the reads, on a server just started.
#[derive(Clone)]
struct Load {
    approvals_s: f64,
    approval_p99: f64,
    cpu_ms: f64,
    reads_s: f64,
    read_p99: f64,
    rss_mib: f64,
    wal_peak_mib: f64,
}

/// What the operator's work measured at one size.
#[derive(Default)]
struct Ops {
    check_s: f64,
    check_mib: f64,
    backup_s: f64,
    restart_ms: f64,
    lists_ms: f64,
}

struct Row {
    escrows: usize,
    build_s: f64,
    /// The median of the rounds' figures (their peaks for memory and the WAL).
    load: Load,
    rounds: Vec<Load>,
    file_mib: f64,
    ops: Ops,
}

/// A ledger the benchmark builds and measures: its file, its people and its escrows.
struct Ledger {
    db: PathBuf,
    people: People,
    escrows: Vec<(EscrowId, usize)>,
}

impl Ledger {
    /// Opens (or creates) the ledger in `dir`, with senders enough for `largest` escrows.
    fn open(dir: &Path, largest: usize) -> Ledger {
        std::fs::create_dir_all(dir).expect("ledger dir");
        let db = dir.join("scale.db");
        let reused = db.exists();
        let store = open(&db);
        let (people, escrows) = if reused {
            reuse(&store)
        } else {
            let senders = largest.div_ceil(ESCROWS_PER_SENDER).max(1);
            let people = People {
                senders: (0..senders)
                    .map(|i| user(&store, Role::Sender, format!("Sender {i}")))
                    .collect(),
                agent: user(&store, Role::Agent, "Kiosk".into()).0,
                admin_token: user(&store, Role::Admin, "Operator".into()).1,
                agent_token: String::new(),
            };
            (people, Vec::new())
        };
        if reused {
            println!(
                "reusing the ledger of {} escrows in {}",
                escrows.len(),
                db.display()
            );
        }
        let agent_token = {
            let id = remit::domain::UserId::parse(&people.agent.id).expect("agent id");
            store
                .write(move |ctx| users::issue_token(ctx, &Actor::system("scale"), &id))
                .expect("agent token")
                .token
        };
        store.close();
        Ledger {
            db,
            people: People {
                agent_token,
                ..people
            },
            escrows,
        }
    }

    /// Builds escrows up to `size`; the seconds it took.
    fn grow(&mut self, size: usize) -> f64 {
        let store = open_with_wal(&self.db, Some(BUILD_WAL_MIB));
        let started = Instant::now();
        let from = self.escrows.len().min(size);
        if size > from {
            let built = build(&store, &self.people, from, size);
            self.escrows.extend(built);
        }
        store.close();
        let build_s = started.elapsed().as_secs_f64();
        println!(
            "built escrows {from}..{size} in {build_s:.1} s ({:.0} escrows/s)",
            (size - from) as f64 / build_s.max(1e-9)
        );
        // The build leaves gigabytes for the kernel to write back: measured in the middle of
        // that, the ledger's first round would pay for its building.
        let _ = Command::new("sync").status();
        build_s
    }

    /// Pending requests (`pending`), made by a store opened for the purpose.
    fn pending(&self, n: usize, rng: &mut Rng) -> Vec<(String, String)> {
        let store = open(&self.db);
        let requests = pending(&store, &self.people, &self.escrows, n, rng);
        // What was built here is history, not news: nobody was subscribed while it was made, so
        // the notifier starts from the newest event, as on a server that has kept up with it.
        store
            .write(|ctx| {
                ctx.conn.execute(
                    "UPDATE outbox_positions SET seq = (SELECT COALESCE(MAX(seq), 0) FROM outbox_events)
                     WHERE consumer = 'fanout'",
                    [],
                )?;
                Ok(())
            })
            .expect("outbox position");
        store.close();
        requests
    }

    /// One load round: approvals, then reads of random escrows, on a server just started.
    fn round(&self, bin: &Path, a: &Args, rng: &mut Rng) -> Load {
        let load = self.pending(a.approvals, rng);
        // What the round before (on this ledger or the other) left for the kernel to write back
        // is written before this one starts, not during it.
        let _ = Command::new("sync").status();
        warm(&self.db);
        let (server, _) = Server::start(bin, &self.db);
        let watch = WalWatch::start(&self.db);
        let syscalls_before = read_syscalls(server.pid());
        let n = load.len().max(1);
        let Approvals {
            per_s: approvals_s,
            p99_ms: approval_p99,
            cpu_ms,
            writer_ms,
            checkpointer_ms,
            failed,
        } = approvals(&server.base, Some(server.pid()), load, a.connections);
        let approval_reads =
            read_syscalls(server.pid()).saturating_sub(syscalls_before) as f64 / n as f64;
        let token = &self.people.admin_token;
        let restarts = metric(&server, token, "remit_wal_resets_total");
        let pause_ms = metric(&server, token, "remit_wal_reset_seconds_max") * 1e3;
        let paused_ms = metric(&server, token, "remit_wal_reset_seconds_total") * 1e3;
        // The group commits of the round (the approvals', and the notifier's and housekeeping's
        // few): how many, and the writer's time in their `COMMIT` (the WAL's writes and fsync).
        let batches = metric(&server, token, "remit_writer_batches_total").max(1.0);
        let commit_ms = metric(&server, token, "remit_writer_commit_seconds_total") * 1e3 / batches;
        let per_commit = metric(&server, token, "remit_writer_commands_total") / batches;
        let read_ids: Vec<String> = (0..a.reads)
            .map(|_| self.escrows[rng.below(self.escrows.len())].0.to_string())
            .collect();
        let read = reads(&server, read_ids, token, a.connections);
        let wal_peak_mib = watch.peak_mib();
        let rss_mib = memory_mib(&server.pid().to_string(), "VmHWM:");
        server.stop();
        println!(
            "{:>9} escrows: {approvals_s:>6.0} approvals/s p99 {approval_p99:.1} ms, {cpu_ms:.3} ms CPU (writer {writer_ms:.3}, checkpointer {checkpointer_ms:.3}) and {approval_reads:.1} read calls each ({failed} failed), {per_commit:.1} commands per commit, {commit_ms:.2} ms per COMMIT; {:>6.0} reads/s p99 {:.1} ms, {:.3} ms CPU and {:.1} read calls each ({} failed); server peak RSS {rss_mib:.1} MiB; WAL peak {wal_peak_mib:.1} MiB, {restarts} restarts of it (pauses {paused_ms:.0} ms in all, longest {pause_ms:.0} ms)",
            self.escrows.len(), read.per_s, read.p99_ms, read.cpu_ms, read.syscalls, read.failed
        );
        Load {
            approvals_s,
            approval_p99,
            cpu_ms,
            reads_s: read.per_s,
            read_p99: read.p99_ms,
            rss_mib,
            wal_peak_mib,
        }
    }

    /// The operator's lists and screens, `remit check`, `remit backup`, and a restart after
    /// `kill -9` under load.
    fn operations(&self, bin: &Path, dir: &Path, a: &Args, rng: &mut Rng) -> Ops {
        let under_kill = self.pending(3_000, rng);
        let people = &self.people;
        let (server, _) = Server::start(bin, &self.db);
        // The first page of the admin and agent screens, on a server just started (its
        // connections' page caches cold).
        let phone = format!(
            "07{:08}",
            rng.below(self.escrows.len()) / ESCROWS_PER_RECIPIENT
        );
        let gets = [
            ("/payouts?status=stuck&limit=50", &people.admin_token),
            ("/payouts?status=succeeded&limit=50", &people.admin_token),
            ("/payouts?status=queued&limit=50", &people.admin_token),
            ("/deposits?status=flagged&limit=50", &people.admin_token),
            ("/deposits?limit=50", &people.admin_token),
            ("/users?limit=100", &people.admin_token),
            ("/payment-requests?limit=50", &people.admin_token),
            ("/escrows?limit=100", &people.admin_token),
            (
                &format!("/escrows?recipientPhone={phone}&limit=50") as &str,
                &people.agent_token,
            ),
            ("/escrows?status=active&limit=20", &people.agent_token),
            (
                "/payment-requests?status=pending_approval&limit=100",
                &people.senders[0].1,
            ),
            ("/admin/float", &people.admin_token),
            ("/fx-rates", &people.admin_token),
            ("/me", &people.agent_token),
            ("/metrics", &people.admin_token),
        ];
        let mut lists_ms = 0.0_f64;
        for (path, token) in gets {
            let (ms, status) = slowest_get(&server, path, token);
            lists_ms = lists_ms.max(ms);
            println!("{:>30} {path}: {ms:.1} ms (status {status})", "");
        }
        server.stop();

        let (check, check_mib, check_ok) = timed_command(bin, &["check"], &self.db);
        let copy = dir.join(format!("backup-{}.db", self.escrows.len()));
        let (backup, _, backup_ok) =
            timed_command(bin, &["backup", copy.to_str().unwrap()], &self.db);
        let _ = std::fs::remove_file(&copy);
        println!(
            "{:>30} remit check {:.2} s ({}; peak {check_mib:.1} MiB), remit backup {:.2} s ({})",
            "",
            check.as_secs_f64(),
            if check_ok { "ok" } else { "FAILED" },
            backup.as_secs_f64(),
            if backup_ok { "ok" } else { "FAILED" }
        );

        // kill -9 under load, then the time from the new start to its first /health.
        let (server, _) = Server::start(bin, &self.db);
        let (base, connections) = (server.base.clone(), a.connections);
        let loader = std::thread::spawn(move || approvals(&base, None, under_kill, connections));
        std::thread::sleep(Duration::from_millis(800));
        server.kill9();
        let _ = loader.join();
        let (server, restart) = Server::start(bin, &self.db);
        println!(
            "{:>30} restart after kill -9 under load: {:.0} ms to the first /health",
            "",
            restart.as_secs_f64() * 1e3
        );
        server.stop();
        Ops {
            check_s: check.as_secs_f64(),
            check_mib,
            backup_s: backup.as_secs_f64(),
            restart_ms: restart.as_secs_f64() * 1e3,
            lists_ms,
        }
    }

    fn row(&self, build_s: f64, rounds: Vec<Load>, ops: Ops) -> Row {
        let median = |f: fn(&Load) -> f64| {
            let mut v: Vec<f64> = rounds.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            let mid = v.len() / 2;
            if v.len().is_multiple_of(2) {
                (v[mid - 1] + v[mid]) / 2.0
            } else {
                v[mid]
            }
        };
        let peak = |f: fn(&Load) -> f64| rounds.iter().map(f).fold(0.0, f64::max);
        Row {
            escrows: self.escrows.len(),
            build_s,
            load: Load {
                approvals_s: median(|l| l.approvals_s),
                approval_p99: median(|l| l.approval_p99),
                cpu_ms: median(|l| l.cpu_ms),
                reads_s: median(|l| l.reads_s),
                read_p99: median(|l| l.read_p99),
                rss_mib: peak(|l| l.rss_mib),
                wal_peak_mib: peak(|l| l.wal_peak_mib),
            },
            rounds,
            file_mib: file_mib(&self.db),
            ops,
        }
    }
}

fn main() {
    let a = args();
    let bin = binary();
    let dir = a.keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("remit-scale-{}", std::process::id()))
    });
    println!(
        "machine: {} cores; ledgers in {} (WAL, synchronous=FULL); sizes {:?}, {} rounds at the smallest and the largest",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        dir.display(),
        a.sizes,
        a.rounds
    );
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (&smallest, larger) = a.sizes.split_first().expect("--sizes");
    let largest = larger.iter().copied().max().unwrap_or(smallest);

    // The smallest size is a ledger of its own, measured in rounds alternated with the
    // largest's once that is built: the machine's speed drifts over a run of minutes by more than
    // the difference being measured.
    // It is built anew at every run (a second or two): kept, each run spent about a sixth of
    // its money on the same escrows, and after a few runs its approvals were refused.
    let base_dir = dir.join("smallest");
    if base_dir.exists() {
        std::fs::remove_dir_all(&base_dir).expect("remove the smallest ledger of a run before");
    }
    let mut base = Ledger::open(&base_dir, smallest);
    let base_build = base.grow(smallest);
    let base_ops = if a.load_only {
        Ops::default()
    } else {
        base.operations(&bin, &dir, &a, &mut rng)
    };
    let mut base_rounds = Vec::new();
    let mut rows = Vec::new();
    let mut grown = None;
    for &size in larger {
        let ledger = grown.get_or_insert_with(|| Ledger::open(&dir, largest));
        let build_s = ledger.grow(size);
        let mut rounds = Vec::new();
        let alternated = if size == largest { a.rounds } else { 1 };
        for _ in 0..alternated {
            rounds.push(ledger.round(&bin, &a, &mut rng));
            if size == largest {
                base_rounds.push(base.round(&bin, &a, &mut rng));
            }
        }
        let ops = if a.load_only {
            Ops::default()
        } else {
            ledger.operations(&bin, &dir, &a, &mut rng)
        };
        rows.push(ledger.row(build_s, rounds, ops));
    }
    if larger.is_empty() {
        for _ in 0..a.rounds {
            base_rounds.push(base.round(&bin, &a, &mut rng));
        }
    }
    rows.insert(0, base.row(base_build, base_rounds, base_ops));

    println!();
    println!("| escrows | build | approvals/s | approval p99 | server CPU per approval | reads/s | read p99 | server peak RSS | file | WAL peak | `remit check` (peak RSS) | `remit backup` | restart after kill -9 | slowest list or screen call |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let (l, o) = (&r.load, &r.ops);
        println!(
            "| {} | {:.0} s | {:.0} | {:.1} ms | {:.3} ms | {:.0} | {:.1} ms | {:.1} MiB | {:.0} MiB | {:.1} MiB | {:.1} s ({:.0} MiB) | {:.1} s | {:.0} ms | {:.1} ms |",
            r.escrows, r.build_s, l.approvals_s, l.approval_p99, l.cpu_ms, l.reads_s, l.read_p99,
            l.rss_mib, r.file_mib, l.wal_peak_mib, o.check_s, o.check_mib, o.backup_s, o.restart_ms,
            o.lists_ms
        );
    }
    let figures = |r: &Row, f: fn(&Load) -> f64| {
        r.rounds
            .iter()
            .map(|l| format!("{:.0}", f(l)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for r in &rows {
        if r.rounds.len() > 1 {
            println!(
                "{} escrows, {} rounds (medians above): approvals/s {}; reads/s {}; approval p99 ms {}",
                r.escrows,
                r.rounds.len(),
                figures(r, |l| l.approvals_s),
                figures(r, |l| l.reads_s),
                figures(r, |l| l.approval_p99)
            );
        }
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        println!(
            "largest against smallest (medians of alternated rounds): approvals/s {:.0} %, reads/s {:.0} %, approval p99 {:.2}×",
            100.0 * last.load.approvals_s / first.load.approvals_s,
            100.0 * last.load.reads_s / first.load.reads_s,
            last.load.approval_p99 / first.load.approval_p99
        );
    }
    if a.keep.is_some() {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
