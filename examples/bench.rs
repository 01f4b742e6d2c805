//! The approval benchmark: durable approvals per second over real HTTP, and the same number
//! straight through the writer, on a temp database with `synchronous=FULL`.
//!
//! `cargo run --release --example bench -- [--escrows N] [--per-escrow K] [--connections C]
//! [--attackers A] [--webhooks W] [--replicate | --replicate-to URL]`
//!
//! The HTTP load runs twice: alone, then beside `A` hostile connections of every kind API.md's
//! limits guard against (slow bodies, pipelining without reading, endless header lines, slow
//! heads, idle connections), so that both figures come from one run.
//!
//! With `--webhooks W` it also compares the load with `W` webhook endpoints on loopback
//! subscribed to every event against the same load without them, in alternating rounds, and says
//! how many deliveries were made during the loads and how long the rest took to drain.
//!
//! With `--replicate` (a throwaway PostgreSQL cluster started here, as the tests do) or
//! `--replicate-to URL`, one more HTTP run goes with replication into PostgreSQL on: the first
//! run (replication off) is the reference, then the replica is made and caught up, then the
//! same load runs while it replicates; it prints both rates, their ratio, and the lag of each
//! replication cycle's oldest change (p50, p99, max).

// A benchmark, not a service: a setup that fails should stop it with its reason.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use remit::config::{Config, GatewayKind};
use remit::domain::{
    CategoryName, DepositSource, EscrowId, EventType, KenyanPhone, PaymentRequestId,
};
use remit::money::{KesCents, UsdCents};
use remit::service::deposits;
use remit::service::escrows::{self, Categories, NewEscrow};
use remit::service::requests::{self, MerchantAccount, NewPaymentRequest};
use remit::service::users::{self, NewUser};
use remit::service::{Actor, Role};
use remit::store::{self, Store};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../tests/api/support/attacks.rs"]
mod attacks;
#[path = "load/mod.rs"]
mod load;
#[path = "../tests/api/support/postgres.rs"]
mod pg;

use load::{drive, percentile};

fn peak_rss_mib() -> f64 {
    load::memory_mib("self", "VmHWM:")
}

fn server_cpu() -> Duration {
    load::threads_cpu("remit-")
}

struct Args {
    escrows: usize,
    per_escrow: usize,
    connections: usize,
    attackers: usize,
    wal_max_mib: u64,
    webhooks: usize,
    /// Start a throwaway PostgreSQL and replicate into it.
    replicate: bool,
    /// Replicate into this PostgreSQL.
    replicate_to: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        escrows: 2_000,
        per_escrow: 5,
        connections: 32,
        attackers: 200,
        wal_max_mib: 64,
        webhooks: 0,
        replicate: false,
        replicate_to: None,
    };
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = argv.iter().position(|a| a == "--replicate") {
        argv.remove(i);
        a.replicate = true;
    }
    if let Some(i) = argv.iter().position(|a| a == "--replicate-to") {
        argv.remove(i);
        a.replicate_to = (i < argv.len()).then(|| argv.remove(i));
    }
    for pair in argv.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse().ok());
        match (pair[0].as_str(), value) {
            ("--escrows", Some(v)) => a.escrows = v,
            ("--per-escrow", Some(v)) => a.per_escrow = v,
            ("--connections", Some(v)) => a.connections = v,
            ("--attackers", Some(v)) => a.attackers = v,
            ("--wal-max-mb", Some(v)) => a.wal_max_mib = v as u64,
            ("--webhooks", Some(v)) => a.webhooks = v,
            _ => {
                eprintln!(
                    "usage: bench [--escrows N] [--per-escrow K] [--connections C] [--attackers A] [--wal-max-mb M] [--webhooks W] [--replicate | --replicate-to URL]"
                );
                std::process::exit(2);
            }
        }
    }
    a
}

/// Creates `escrows` funded escrows with `per_escrow` pending requests each; returns the
/// request ids. Runs on several threads so that the writer batches.
fn prepare(
    store: &Arc<Store>,
    sender: &Actor,
    agent: &Actor,
    escrows: usize,
    per_escrow: usize,
) -> Vec<String> {
    let threads = 16;
    let next = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (store, sender, agent, next) = (
                Arc::clone(store),
                sender.clone(),
                agent.clone(),
                Arc::clone(&next),
            );
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= escrows {
                        return ids;
                    }
                    let (s, a) = (sender.clone(), agent.clone());
                    let escrow_id: EscrowId = store
                        .write(move |ctx| {
                            let input = NewEscrow {
                                recipient_phone: KenyanPhone::parse("p", &format!("07{:08}", i))?,
                                recipient_name: format!("Recipient {i}"),
                                total: UsdCents::new(100_000).unwrap_or_default(),
                                categories: Categories::Names(vec![CategoryName::parse(
                                    "c",
                                    "school_fees",
                                )?]),
                                daily_limit: None,
                                recipient_language: remit::domain::Language::En,
                            };
                            let id = escrows::create(ctx, &s, &input)?.escrow_id;
                            deposits::record(
                                ctx,
                                &a,
                                id.as_str(),
                                DepositSource::Cash,
                                &format!("bench-{id}"),
                                input.total,
                            )?;
                            Ok(id)
                        })
                        .expect("create escrow");
                    for _ in 0..per_escrow {
                        let (a, e) = (agent.clone(), escrow_id.clone());
                        let view = store
                            .write(move |ctx| {
                                let input = NewPaymentRequest {
                                    escrow_id: e.clone(),
                                    category: CategoryName::parse("c", "school_fees")?,
                                    amount: KesCents::new(150_000).unwrap_or_default(),
                                    merchant_name: "Bench School".into(),
                                    merchant_account: MerchantAccount::Paybill {
                                        number: "888880".into(),
                                        account_reference: "BENCH".into(),
                                    },
                                    note: None,
                                };
                                requests::create(ctx, &a, &input, 72 * 3600)
                            })
                            .expect("create request");
                        ids.push(view.payment_request_id.to_string());
                    }
                }
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("prepare thread"))
        .collect()
}

fn report(name: &str, n: usize, wall: Duration, latencies: &[Duration], failures: usize) -> f64 {
    let rate = n as f64 / wall.as_secs_f64();
    println!(
        "{name:<28} {n} approvals in {:.2} s = {rate:>8.0} approvals/s   p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>7.2} ms   failures {failures}",
        wall.as_secs_f64(),
        percentile(latencies, 0.50).as_secs_f64() * 1e3,
        percentile(latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    rate
}

/// The approval load over HTTP: one keep-alive client per connection.
struct HttpLoad {
    clients: Arc<Vec<std::sync::Mutex<load::Client>>>,
    base: String,
    token: String,
    connections: usize,
}

impl HttpLoad {
    /// Approves every id over HTTP; prints the figures; returns approvals/s and p99 (ms).
    fn run(&self, store: &Store, label: &str, ids: Vec<String>) -> (f64, f64) {
        let n = ids.len();
        let batches_before = store.stats.batches.load(Ordering::Relaxed);
        let commit_before = store.stats.commit_micros_total.load(Ordering::Relaxed);
        let cpu_before = server_cpu();
        let writer_before = load::threads_cpu("remit-writer");
        let process_before = load::process_cpu(std::process::id());
        let resets_before = store.stats.wal_resets.load(Ordering::Relaxed);
        store.stats.wal_peak_bytes.store(0, Ordering::Relaxed);
        store.stats.wal_reset_micros_max.store(0, Ordering::Relaxed);
        let (wall, latencies, failures) = drive(ids, self.connections, {
            let (clients, token) = (Arc::clone(&self.clients), self.token.clone());
            move |t, id| load::approve(&clients[t], &token, id)
        });
        let cpu = server_cpu().saturating_sub(cpu_before);
        let writer = load::threads_cpu("remit-writer").saturating_sub(writer_before);
        let process = load::process_cpu(std::process::id()).saturating_sub(process_before);
        let batches = store.stats.batches.load(Ordering::Relaxed) - batches_before;
        let rate = report(
            &format!("{label}, {} connections", self.connections),
            n,
            wall,
            &latencies,
            failures,
        );
        let commit_ms =
            (store.stats.commit_micros_total.load(Ordering::Relaxed) - commit_before) as f64 / 1e3;
        println!(
            "{:<28} {} group commits, {:.1} approvals per commit, {:.2} ms per COMMIT (fsync), {:.0}% of the wall time in COMMIT",
            "",
            batches,
            n as f64 / batches.max(1) as f64,
            commit_ms / batches.max(1) as f64,
            100.0 * commit_ms / (wall.as_secs_f64() * 1e3)
        );
        println!(
            "{:<28} server CPU {:.3} ms per approval ({:.2} cores busy; the writer thread {:.3} ms), clients {:.3} ms ({:.2} cores); WAL peak {:.1} MiB, {} checkpoints to empty (longest {:.1} ms)",
            "",
            cpu.as_secs_f64() * 1e3 / n as f64,
            cpu.as_secs_f64() / wall.as_secs_f64(),
            writer.as_secs_f64() * 1e3 / n as f64,
            process.saturating_sub(cpu).as_secs_f64() * 1e3 / n as f64,
            process.saturating_sub(cpu).as_secs_f64() / wall.as_secs_f64(),
            store.stats.wal_peak_bytes.load(Ordering::Relaxed) as f64 / 1048576.0,
            store.stats.wal_resets.load(Ordering::Relaxed) - resets_before,
            store.stats.wal_reset_micros_max.load(Ordering::Relaxed) as f64 / 1e3
        );
        (rate, percentile(&latencies, 0.99).as_secs_f64() * 1e3)
    }
}

/// A webhook receiver on loopback, as cheap as one can be: it reads each delivery and answers
/// 200 (it runs on the same cores as the server).
struct Receiver {
    url: String,
    received: Arc<AtomicUsize>,
    server: Arc<tiny_http::Server>,
}

impl Receiver {
    fn start() -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("receiver"));
        let url = format!(
            "http://{}/hooks",
            server.server_addr().to_ip().expect("receiver address")
        );
        let received = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let (server, received) = (Arc::clone(&server), Arc::clone(&received));
            std::thread::spawn(move || {
                for mut request in server.incoming_requests() {
                    let mut body = Vec::new();
                    let _ = std::io::Read::read_to_end(request.as_reader(), &mut body);
                    received.fetch_add(1, Ordering::Relaxed);
                    let _ = request.respond(tiny_http::Response::empty(200));
                }
            });
        }
        Receiver {
            url,
            received,
            server,
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
        self.server.unblock();
    }
}

/// Deliveries still pending and events not yet fanned out.
fn notify_backlog(store: &Store) -> (i64, i64) {
    store
        .read(|conn, _| {
            Ok(conn.query_row(
                "SELECT (SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'),
                 (SELECT COALESCE(MAX(seq), 0) FROM outbox_events)
                 - (SELECT seq FROM outbox_positions WHERE consumer = 'fanout')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .expect("backlog")
}

fn main() {
    // Quiet by default; RUST_LOG=remit::replicate=debug shows each replication cycle.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let a = args();
    let dir = tempfile_dir();
    let mut config = Config::new(dir.join("bench.db"));
    config.addr = "127.0.0.1:0".into();
    config.key_hex =
        Some("5950bc8494a1160f8a9d8b1c69960e0525544ed0dfa0fbaa4903a292c3be3abb".into());
    config.gateway = GatewayKind::None; // measure approvals, not the payout simulator
    config.workers = remit::config::Config::new("-").workers.max(a.connections);
    config.read_pool_size = 8;
    config.wal_max_mib = a.wal_max_mib;
    let mut options = config.open_options(true);
    // As `serve` with REMIT_REPLICATE_TO: the writer can keep the change log replication reads
    // (it records only while the replicator runs, in the "on" rounds).
    options.track_changes = a.replicate || a.replicate_to.is_some();
    options.grow_wal = true; // as `serve`
    let store = Arc::new(store::open(&options).expect("open"));
    let make = |role, name: &str| {
        let user = NewUser {
            role,
            name: name.into(),
            phone: None,
        };
        let created = store
            .write(move |ctx| users::create(ctx, &Actor::system("bench"), &user))
            .expect("user");
        (Actor::user(&created.user.user_id, role), created.token)
    };
    let (sender, sender_token) = make(Role::Sender, "Bench sender");
    let (agent, _) = make(Role::Agent, "Bench agent");
    let (_, admin_token) = make(Role::Admin, "Bench admin");

    let n = a.escrows * a.per_escrow;
    println!(
        "machine: {} cores; database {} (WAL, synchronous=FULL)",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        dir.display()
    );
    let started = Instant::now();
    // A throwaway cluster lives as long as this value.
    let cluster = a.replicate.then(pg::Postgres::start);
    let replicate_to = match (&cluster, &a.replicate_to) {
        (Some(cluster), _) => Some(cluster.database("bench")),
        (None, Some(url)) => Some(url.clone()),
        (None, None) => None,
    };
    // Replication on against off: two more sets of each, run in alternating rounds.
    let replicated_ids = replicate_to.as_ref().map(|_| {
        let two = || {
            let mut ids = prepare(&store, &sender, &agent, a.escrows, a.per_escrow);
            ids.extend(prepare(&store, &sender, &agent, a.escrows, a.per_escrow));
            ids
        };
        (two(), two())
    });
    let http_ids = prepare(&store, &sender, &agent, a.escrows, a.per_escrow);
    let webhook_ids = (a.webhooks > 0).then(|| {
        (
            prepare(&store, &sender, &agent, a.escrows, a.per_escrow),
            prepare(&store, &sender, &agent, a.escrows, a.per_escrow),
        )
    });
    let hostile_ids = prepare(&store, &sender, &agent, a.escrows, a.per_escrow);
    let direct_ids = prepare(&store, &sender, &agent, a.escrows, a.per_escrow);
    let sets = 3 + 2 * usize::from(a.webhooks > 0) + 4 * usize::from(replicate_to.is_some());
    println!(
        "prepared {} escrows and {} payment requests in {:.1} s",
        sets * a.escrows,
        sets * n,
        started.elapsed().as_secs_f64()
    );

    let server = remit::runtime::start(config, Arc::clone(&store)).expect("server");
    let base = server.base_url.clone();
    let http = HttpLoad {
        clients: load::clients(&base, a.connections),
        base: base.clone(),
        token: sender_token.clone(),
        connections: a.connections,
    };
    // Let the fan-out of what `prepare` made settle first, so that it is not in the figure.
    while notify_backlog(&store).1 > 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (http_rate, http_p99) = http.run(&store, "HTTP", http_ids);
    let rss_http = peak_rss_mib();
    if let Some((with_ids, alone_ids)) = webhook_ids {
        webhooks_run(&a, &store, &http, &admin_token, with_ids, alone_ids);
    }
    if let (Some(url), Some((off, on))) = (&replicate_to, replicated_ids) {
        replicated_runs(&store, &http, url, off, on);
    }
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().expect("address");
    let kinds: Vec<(attacks::Attack, usize)> = attacks::Attack::ALL
        .iter()
        .map(|k| (*k, a.attackers / attacks::Attack::ALL.len()))
        .collect();
    let crowd = attacks::Crowd::mixed(addr, &kinds);
    std::thread::sleep(Duration::from_secs(1));
    let (hostile_rate, hostile_p99) = http.run(
        &store,
        &format!("HTTP + {} hostile", a.attackers),
        hostile_ids,
    );
    crowd.stop();
    println!(
        "with {} hostile connections: {:.0}% of the approvals/s, p99 {:.2} ms against {:.2} ms",
        a.attackers,
        100.0 * hostile_rate / http_rate,
        hostile_p99,
        http_p99
    );

    let (wall, latencies, failures) = drive(direct_ids, a.connections, {
        let (store, sender) = (Arc::clone(&store), sender.clone());
        move |_, id| {
            let s = sender.clone();
            let Ok(id) = PaymentRequestId::parse(id) else {
                return false;
            };
            // As the HTTP handler submits it: a repeatable command (`Store::write_repeatable`).
            store
                .write_repeatable(move |ctx| requests::approve(ctx, &s, &id))
                .is_ok()
        }
    });
    let direct_rate = report(
        &format!("writer only, {} threads", a.connections),
        n,
        wall,
        &latencies,
        failures,
    );
    println!("HTTP / writer-only ratio: {:.2}", http_rate / direct_rate);
    println!("peak RSS: {rss_http:.1} MiB after the HTTP run, {:.1} MiB at the end (whole process, clients included)", peak_rss_mib());
    server.shutdown();
    let started = Instant::now();
    let report = store.read(remit::integrity::check).expect("check");
    println!(
        "integrity after the run: {} ({:.2} s)",
        if report.is_clean() { "ok" } else { "MISMATCH" },
        started.elapsed().as_secs_f64()
    );
    if std::env::var_os("REMIT_BENCH_KEEP").is_some() {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Rounds of the webhook comparison: each runs a slice of approvals without the endpoints
/// (disabled), then a slice with them, then waits for their deliveries to drain, so that a
/// machine that slows down or speeds up during the run weighs on both figures alike.
const WEBHOOK_ROUNDS: usize = 4;

/// The approval load with `a.webhooks` endpoints on loopback subscribed to every event, against
/// the same load without them, in alternating rounds; prints both figures and their ratio.
fn webhooks_run(
    a: &Args,
    store: &Arc<Store>,
    http: &HttpLoad,
    admin_token: &str,
    with_ids: Vec<String>,
    alone_ids: Vec<String>,
) {
    let receivers: Vec<Receiver> = (0..a.webhooks).map(|_| Receiver::start()).collect();
    let all: Vec<&str> = EventType::ALL.iter().map(|e| e.as_str()).collect();
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let admin = |method: &str, path: &str, body: Option<serde_json::Value>| -> serde_json::Value {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", http.base))
            .header("Authorization", format!("Bearer {admin_token}"))
            .header("Content-Type", "application/json")
            .body(body.map(|b| b.to_string()).unwrap_or_default())
            .expect("request");
        let mut answer = agent.run(request).expect("admin call");
        answer.body_mut().read_json().unwrap_or_default()
    };
    // Events of the runs before are fanned out before the endpoints exist (else they would be
    // delivered too).
    let settle = |with_deliveries: bool| loop {
        let (pending, backlog) = notify_backlog(store);
        if backlog == 0 && (!with_deliveries || pending == 0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    settle(false);
    let endpoints: Vec<String> = receivers
        .iter()
        .map(|r| {
            admin(
                "POST",
                "/webhook-endpoints",
                Some(serde_json::json!({"url": r.url, "events": all})),
            )["webhookEndpointId"]
                .as_str()
                .expect("endpoint id")
                .to_string()
        })
        .collect();
    let switch = |on: bool| {
        for id in &endpoints {
            let verb = if on { "enable" } else { "disable" };
            admin(
                "POST",
                &format!("/webhook-endpoints/{id}/{verb}"),
                Some(serde_json::json!({})),
            );
        }
    };
    let received = || -> usize {
        receivers
            .iter()
            .map(|r| r.received.load(Ordering::Relaxed))
            .sum()
    };
    let slice = |ids: &[String], round: usize| -> Vec<String> {
        let per = ids.len().div_ceil(WEBHOOK_ROUNDS);
        ids.iter().skip(round * per).take(per).cloned().collect()
    };
    let (mut alone_n, mut alone_s, mut with_n, mut with_s) = (0, 0.0, 0, 0.0);
    let (mut during, mut after, mut drain_s, mut delivered) = (0, 0, 0.0, 0);
    for round in 0..WEBHOOK_ROUNDS {
        switch(false);
        settle(true);
        let ids = slice(&alone_ids, round);
        let n = ids.len();
        let (rate, _) = http.run(store, &format!("HTTP alone (round {})", round + 1), ids);
        alone_n += n;
        alone_s += n as f64 / rate;
        // Every event of the run without them is fanned out (to nobody) before they are on.
        settle(false);
        switch(true);
        let before = received();
        let ids = slice(&with_ids, round);
        let n = ids.len();
        let (rate, _) = http.run(
            store,
            &format!("HTTP + {} webhooks (round {})", a.webhooks, round + 1),
            ids,
        );
        with_n += n;
        with_s += n as f64 / rate;
        let at_end = received();
        let drained = Instant::now();
        settle(true);
        drain_s += drained.elapsed().as_secs_f64();
        during += at_end - before;
        after += received() - at_end;
        delivered += received() - before;
    }
    switch(false);
    drop(receivers);
    let (alone_rate, with_rate) = (alone_n as f64 / alone_s, with_n as f64 / with_s);
    println!(
        "webhooks: {delivered} deliveries to {} endpoints, {during} of them during the loads and {after} after them (drained in {:.2} s per round on average)",
        a.webhooks,
        drain_s / WEBHOOK_ROUNDS as f64
    );
    println!(
        "with {} webhook endpoints subscribed to every event: {with_rate:.0} approvals/s against {alone_rate:.0} without them ({:.0}%), {WEBHOOK_ROUNDS} rounds of each",
        a.webhooks,
        100.0 * with_rate / alone_rate
    );
}

/// Where a round's CPU went: the writer thread, the replication thread, PostgreSQL's processes.
struct CpuShares {
    writer: Duration,
    replicator: Duration,
    postgres: Duration,
}

impl CpuShares {
    fn now() -> CpuShares {
        CpuShares {
            writer: load::threads_cpu("remit-writer"),
            replicator: load::threads_cpu("remit-replicate"),
            postgres: load::processes_cpu("postgres"),
        }
    }

    fn print(&self, approvals: usize) {
        let now = CpuShares::now();
        let per = |a: Duration, b: Duration| {
            a.saturating_sub(b).as_secs_f64() * 1e3 / approvals.max(1) as f64
        };
        println!(
            "{:<28} CPU per approval: writer {:.3} ms, replication thread {:.3} ms, PostgreSQL {:.3} ms",
            "",
            per(now.writer, self.writer),
            per(now.replicator, self.replicator),
            per(now.postgres, self.postgres)
        );
    }
}

/// Rounds of each way in the replication comparison.
const REPLICATION_ROUNDS: usize = 4;

/// Replication on against off, in one run: the load in quarters, off, on, off, on, … (the
/// machine's speed drifts; alternating keeps the comparison fair). Before each "on" half the replicator
/// starts and catches up with everything before it (not measured); after it, it catches up again
/// and stops. Prints both rates, their ratio, and each replication cycle's lag.
fn replicated_runs(
    store: &Arc<Store>,
    http: &HttpLoad,
    url: &str,
    off: Vec<String>,
    on: Vec<String>,
) {
    let target = remit::replicate::Target::parse("--replicate-to", url, None).expect("URL");
    let status = Arc::new(remit::replicate::Status::default());
    let caught_up = |what: &str| {
        let started = Instant::now();
        loop {
            let view = status.view();
            let file = store
                .read(|conn, _| remit::store::changes::committed(conn))
                .expect("counter");
            if view.connected && view.replicated_change_seq >= file {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "replication did not catch up: {:?}",
                status.view()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        println!(
            "{:<28} {what} in {:.2} s ({} rows written so far)",
            "",
            started.elapsed().as_secs_f64(),
            status.view().rows
        );
    };
    let (mut off_n, mut off_s, mut on_n, mut on_s) = (0usize, 0.0, 0usize, 0.0);
    let mut lags = Vec::new();
    let rounds = |ids: Vec<String>| {
        let per = ids.len().div_ceil(REPLICATION_ROUNDS);
        ids.chunks(per).map(<[String]>::to_vec).collect::<Vec<_>>()
    };
    for (round, (off, on)) in rounds(off).into_iter().zip(rounds(on)).enumerate() {
        let n = off.len();
        let shares = CpuShares::now();
        let rate = http
            .run(store, &format!("HTTP, no replication ({})", round + 1), off)
            .0;
        shares.print(n);
        off_n += n;
        off_s += n as f64 / rate;
        let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let replicator = remit::replicate::Replicator {
            store: Arc::clone(store),
            target: target.clone(),
            status: Arc::clone(&status),
        }
        .start(Arc::clone(&stopping))
        .expect("replicator");
        caught_up("replica caught up before the load");
        let lags_before = status.cycle_lags_ms().len();
        let n = on.len();
        let shares = CpuShares::now();
        let rate = http
            .run(store, &format!("HTTP, replicating ({})", round + 1), on)
            .0;
        shares.print(n);
        on_n += n;
        on_s += n as f64 / rate;
        caught_up("replica caught up after the load");
        lags.extend_from_slice(&status.cycle_lags_ms()[lags_before..]);
        stopping.store(true, Ordering::SeqCst);
        let _ = replicator.join();
    }
    let (off_rate, on_rate) = (off_n as f64 / off_s, on_n as f64 / on_s);
    lags.sort_by(f64::total_cmp);
    let at = |p: f64| {
        lags.get(((lags.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "with replication on: {:.0}% of the approvals/s ({on_rate:.0} against {off_rate:.0}, {on_n} approvals each way)",
        100.0 * on_rate / off_rate
    );
    println!(
        "replication lag (the oldest change of each of {} cycles): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        lags.len(),
        at(0.50),
        at(0.99),
        lags.last().copied().unwrap_or(0.0)
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("remit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
