//! The real `remit` binary as a test drives it: run a command, start `remit serve` and talk to
//! it over HTTP, stop it with SIGTERM; and small helpers the `ops_*` tests share.

#![allow(dead_code)]

use super::app::*;
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// The real binary.

/// `remit` with a clean environment (nothing of the caller's `REMIT_*` leaks in), run in `dir`
/// (so no stray `.env` is read), with `ENCRYPTION_KEY` when given.
pub fn remit(dir: &Path, key: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_remit"));
    cmd.current_dir(dir).env_clear().env("RUST_LOG", "info");
    if let Some(key) = key {
        cmd.env("ENCRYPTION_KEY", key);
    }
    cmd
}

/// What a finished command printed.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs a command that should end by itself; kills it and fails after 30 s.
pub fn run(mut cmd: Command) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("run remit");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after 30 s; stderr:\n{}",
                std::fs::read_to_string(&err).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ran {
        code: status.code(),
        stdout: std::fs::read_to_string(&out).unwrap(),
        stderr: std::fs::read_to_string(&err).unwrap(),
    }
}

/// `remit rotate-key --new-key-file NEW --db DB`, run in `dir` with `key` as ENCRYPTION_KEY
/// (none: the key file beside the database).
pub fn rotate_key(dir: &Path, key: Option<&str>, new_key_file: &Path, db: &Path) -> Ran {
    let mut cmd = remit(dir, key);
    cmd.args(["rotate-key", "--new-key-file"])
        .arg(new_key_file)
        .arg("--db")
        .arg(db);
    run(cmd)
}

/// `remit check --db DB` with this key.
pub fn check(db: &Path, key: &str) -> Ran {
    let mut cmd = remit(db.parent().unwrap(), Some(key));
    cmd.arg("check").arg("--db").arg(db);
    run(cmd)
}

/// `remit user add …`: only the token on stdout.
/// The admin, sender and agent most ledger tests begin with: their tokens, in that order.
pub fn kiosk_users(db: &Path, key: &str) -> (String, String, String) {
    (
        user_add(db, key, "admin", "Admin", None),
        user_add(db, key, "sender", "Amina", None),
        user_add(db, key, "agent", "Kiosk", None),
    )
}

pub fn user_add(db: &Path, key: &str, role: &str, name: &str, phone: Option<&str>) -> String {
    if !db.exists() {
        // Only `serve` creates a database from the command line; make it the way serve does.
        let mut options = remit::store::OpenOptions::new(db);
        options.key_hex = Some(key.to_string());
        remit::store::open(&options).unwrap().close();
    }
    let mut cmd = remit(db.parent().unwrap(), Some(key));
    cmd.args(["user", "add", "--role", role, "--name", name])
        .arg("--db")
        .arg(db);
    if let Some(phone) = phone {
        cmd.args(["--phone", phone]);
    }
    let ran = run(cmd);
    assert_eq!(ran.code, Some(0), "user add: {ran}");
    let token = ran.stdout.trim().to_string();
    assert!(
        token.starts_with("rmt_") && !token.contains(char::is_whitespace),
        "user add prints only the token: {ran}"
    );
    token
}

/// A `remit serve` process on 127.0.0.1:0, its stderr (the log) going to a file.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// What it printed on stdout before it listened (the first admin's token, on first start).
    pub stdout: Vec<String>,
    /// Where its stderr goes.
    pub log: PathBuf,
    pub http: ureq::Agent,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Server {
    /// Starts `remit serve --db DB --addr 127.0.0.1:0` and returns once it printed its
    /// listening line (it binds first, then prints, so no waiting is needed).
    pub fn start(db: &Path, key: &str, log: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_with(db, key, log, env, &[])
    }

    /// The same with more arguments to `serve` (`--demo`).
    pub fn start_with(
        db: &Path,
        key: &str,
        log: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Server {
        let mut cmd = remit(db.parent().unwrap(), Some(key));
        cmd.arg("serve")
            .arg("--db")
            .arg(db)
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .env("REMIT_SIM_DELAY_MS", "0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Server::spawn(cmd, log)
    }

    /// `remit serve` whose files may not grow past `bytes` (`prlimit --fsize`; the signal that
    /// limit raises is remit's own to catch, so that a write past it fails as on a full disk:
    /// before, the signal ended the server without a word): a disk that fills, without a disk
    /// to fill.
    pub fn start_with_file_size_limit(db: &Path, key: &str, log: &Path, bytes: u64) -> Server {
        let mut cmd = Command::new("/bin/bash");
        cmd.current_dir(db.parent().unwrap())
            .env_clear()
            .env("RUST_LOG", "info")
            .env("ENCRYPTION_KEY", key)
            .env("REMIT_SIM_DELAY_MS", "0")
            .arg("-c")
            .arg(r#"exec /usr/bin/prlimit --fsize="$0" -- "$@""#)
            .arg(bytes.to_string())
            .arg(env!("CARGO_BIN_EXE_remit"))
            .args(["serve", "--addr", "127.0.0.1:0", "--db"])
            .arg(db);
        Server::spawn(cmd, log)
    }

    /// `remit serve` that may open at most `files` files (`prlimit --nofile`, soft and hard: as
    /// `ulimit -n` in a shell sets both).
    pub fn start_with_open_files(db: &Path, key: &str, log: &Path, files: u64) -> Server {
        let mut cmd = Command::new("/usr/bin/prlimit");
        cmd.current_dir(db.parent().unwrap())
            .env_clear()
            .env("RUST_LOG", "info")
            .env("ENCRYPTION_KEY", key)
            .arg(format!("--nofile={files}"))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_remit"))
            .args(["serve", "--addr", "127.0.0.1:0", "--db"])
            .arg(db);
        Server::spawn(cmd, log)
    }

    /// `remit serve` started with SIGHUP ignored, as `nohup` starts it.
    pub fn start_ignoring_hangup(db: &Path, key: &str, log: &Path) -> Server {
        let mut cmd = Command::new("/bin/bash");
        cmd.current_dir(db.parent().unwrap())
            .env_clear()
            .env("RUST_LOG", "info")
            .env("ENCRYPTION_KEY", key)
            .arg("-c")
            .arg(r#"trap '' HUP; exec "$@""#)
            .arg("remit")
            .arg(env!("CARGO_BIN_EXE_remit"))
            .args(["serve", "--addr", "127.0.0.1:0", "--db"])
            .arg(db);
        Server::spawn(cmd, log)
    }

    /// Spawns `cmd` (a `remit serve`), its stderr into `log`, and returns once it printed its
    /// listening line and `/health` answers `200` (it is `503 starting` between the two, while
    /// the start finishes: a test that called at once now and then met it).
    pub fn spawn(mut cmd: Command, log: &Path) -> Server {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("start remit serve");
        let stdout = child.stdout.take().unwrap();
        let (lines, receive) = mpsc::channel::<String>();
        // Reads every line for as long as the process runs, so its stdout never blocks.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    // Nobody listens any more: keep draining.
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut before = Vec::new();
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match receive.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("remit listening on ") {
                        break rest.split_whitespace().next().unwrap().to_string();
                    }
                    before.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait();
                    panic!(
                        "remit serve never said it was listening ({status:?}); stdout {before:?}; log:\n{}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    );
                }
            }
        };
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        let http = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build(),
        );
        loop {
            let status = http
                .get(&format!("{base}/health"))
                .call()
                .map(|r| r.status().as_u16());
            if matches!(status, Ok(200)) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "remit serve listened but /health never said 200 ({status:?}); log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        Server {
            child,
            base,
            stdout: before,
            log: log.to_path_buf(),
            http,
        }
    }

    /// The token the first start printed for the admin it created.
    pub fn admin_token(&self) -> String {
        self.stdout
            .iter()
            .find_map(|l| l.trim().strip_prefix("admin"))
            .map(|t| t.trim().to_string())
            .unwrap_or_else(|| panic!("no admin token in {:?}", self.stdout))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        sigterm(self.pid());
        self.wait()
    }

    /// `kill -9`: the process ends at once, with no chance to finish anything.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits at most 30 s for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("remit serve did not exit within 30 s; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        call(&self.http, &self.base, method, path, token, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn get(&self, path: &str, token: &str) -> Answer {
        self.call("GET", path, Some(token), None)
    }

    pub fn post(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.call("POST", path, Some(token), Some(body))
    }

    /// A POST with an `Idempotency-Key`.
    pub fn post_with_key(&self, path: &str, token: &str, body: &Value, key: &str) -> Answer {
        call_with(
            &self.http,
            &self.base,
            ("POST", path),
            Some(token),
            Some(body),
            &[("Idempotency-Key", key)],
        )
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `kill -TERM PID` (libc is not a dependency).
pub fn sigterm(pid: u32) {
    signal(pid, "-TERM");
}

/// `kill SIGNAL PID` (`-HUP`, `-TERM`).
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid}: {status}");
}

/// One HTTP call; `Err` when no answer came (connection refused or dropped).
pub fn call(
    http: &ureq::Agent,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<Answer, ureq::Error> {
    call_with(http, base, (method, path), token, body, &[])
}

/// `call` with more headers.
pub fn call_with(
    http: &ureq::Agent,
    base: &str,
    (method, path): (&str, &str),
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Result<Answer, ureq::Error> {
    let mut builder = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    if let Some(token) = token {
        builder = builder.header("Authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut response = match body {
        Some(body) => http.run(
            builder
                .header("Content-Type", "application/json")
                .body(body.to_string().into_bytes())
                .unwrap(),
        )?,
        None => http.run(builder.body(()).unwrap())?,
    };
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = response.body_mut().read_to_string()?;
    super::conformance::check(method, path, status, content_type.as_deref(), &text);
    Ok(Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    })
}

/// A read-only connection to a database file (never used while a test writes through it).
pub fn read_only(db: &Path) -> Connection {
    Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

/// Takes the database directory out of a `TestApp` and shuts the app down completely (its
/// store closed and dropped: the WAL is checkpointed into the file).
pub fn stop_app(mut app: TestApp) -> tempfile::TempDir {
    app.shutdown();
    let dir = std::mem::replace(&mut app.dir, tempfile::tempdir().unwrap());
    drop(app);
    dir
}

/// Counts answers across threads (shared by the shutdown and backup tests).
pub fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// Waits (bounded) until `n` is at least `at_least`.
pub fn wait_for_count(n: &AtomicUsize, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while n.load(Ordering::SeqCst) < at_least {
        assert!(
            Instant::now() < deadline,
            "only {} answers came",
            n.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Over a running server: an active escrow of `usd` dollars for `phone`, in `categories`.
pub fn funded_escrow(
    server: &Server,
    sender: &str,
    agent: &str,
    usd: i64,
    phone: &str,
    name: &str,
    categories: &[&str],
) -> String {
    let r = server.post(
        "/escrows",
        sender,
        &json!({"recipientPhone": phone, "recipientName": name, "totalAmountUsd": usd, "categories": categories}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["escrowId"].as_str().unwrap().to_string();
    let r = server.post(
        &format!("/escrows/{id}/deposits"),
        agent,
        &json!({"amountUsd": usd, "reference": format!("cash-{id}")}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["escrowStatus"], "active", "{}", r.text);
    id
}

/// `n` pending requests of KES 150 each on `escrow`'s `rent`, made by 4 clients at once.
pub fn pending_requests(server: &Server, agent: &str, escrow: &str, n: usize) -> Vec<String> {
    let ids = Mutex::new(Vec::with_capacity(n));
    std::thread::scope(|s| {
        for t in 0..4 {
            let ids = &ids;
            s.spawn(move || {
                for i in (t..n).step_by(4) {
                    let r = server.post(
                        "/payment-requests",
                        agent,
                        &json!({"escrowId": escrow, "category": "rent", "amountKes": 150,
                                "merchantName": "Kenya Power",
                                "merchantAccount": {"type": "paybill", "number": "888880", "accountReference": format!("R{i}")}}),
                    );
                    assert_eq!(r.status, 201, "{}", r.text);
                    ids.lock()
                        .unwrap()
                        .push(r.body["paymentRequestId"].as_str().unwrap().to_string());
                }
            });
        }
    });
    ids.into_inner().unwrap()
}

/// A payment request's status, read from the file.
pub fn request_status(conn: &Connection, id: &str) -> String {
    conn.query_row(
        "SELECT status FROM payment_requests WHERE id = ?1",
        [id],
        |r| r.get(0),
    )
    .unwrap_or_else(|e| panic!("{id}: {e}"))
}

/// Polls (bounded) until no request is `approved` any more: every payout has settled.
pub fn wait_for_payouts(server: &Server, admin: &str, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in ids {
        loop {
            let r = server.get(&format!("/payment-requests/{id}"), admin);
            if r.body["status"] != "approved" {
                break;
            }
            assert!(Instant::now() < deadline, "{id} never settled: {}", r.text);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Randomness for workloads.

/// xorshift64*: enough randomness for a workload, reproducible from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
