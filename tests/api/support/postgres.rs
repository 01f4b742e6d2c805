//! A throwaway PostgreSQL for the replication tests: its own cluster (`initdb`) in a temp
//! directory, on a loopback port found free by binding first, with a password (so that tests
//! can look for it in logs), stopped and removed on drop.
//!
//! PostgreSQL refuses to run as root, and CI runs as root: then the cluster belongs to the
//! `postgres` system user (made by Debian's package; `nobody` where it is missing) and its
//! programs run under that user through `setpriv`, which execs them (so the postmaster is our
//! child and `kill` reaches it). As another user, they run as that user. The binaries are found
//! in `REMIT_PG_BIN`, else Debian's `/usr/lib/postgresql/<newest>/bin`, else `initdb` on the
//! PATH. When PostgreSQL cannot be started, the test fails saying why; only a developer who
//! sets `REMIT_SKIP_POSTGRES=1` (never CI) skips these tests, and each says so.

#![allow(dead_code)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The password of the test role: tests check that no log line holds it.
pub const PASSWORD: &str = "pw-4e7b1c9d2a";

/// How long a start (or a restart after kill -9, with crash recovery) may take.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// `Postgres::continued_on_drop`'s guard.
pub struct Continued<'a>(&'a Postgres);

impl Drop for Continued<'_> {
    fn drop(&mut self) {
        if let Some(child) = &self.0.child {
            let pid = child.id().to_string();
            let _ = Command::new("pkill").args(["-CONT", "-P", &pid]).status();
            let _ = Command::new("kill").args(["-CONT", "--", &pid]).status();
        }
    }
}

/// A running cluster.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    pub port: u16,
    child: Option<Child>,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Should this test be skipped (a developer without PostgreSQL said so)? Never in CI.
pub fn skipped(test: &str) -> bool {
    let skip = std::env::var_os("REMIT_SKIP_POSTGRES").is_some_and(|v| v == "1");
    if skip && std::env::var_os("CI").is_none() {
        eprintln!("{test}: SKIPPED (REMIT_SKIP_POSTGRES=1): it needs PostgreSQL");
        return true;
    }
    false
}

fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("REMIT_PG_BIN") {
        return PathBuf::from(dir);
    }
    let debian = Path::new("/usr/lib/postgresql");
    if let Ok(entries) = std::fs::read_dir(debian) {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((v, bin))
            })
            .collect();
        versions.sort();
        if let Some((_, bin)) = versions.pop() {
            return bin;
        }
    }
    let found = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|p| !p.is_empty());
    match found {
        // Through the symlink: postgres finds its share directory beside its real binary.
        Some(path) => std::fs::canonicalize(&path)
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf(),
        None => panic!(
            "PostgreSQL is not installed (no initdb in REMIT_PG_BIN, /usr/lib/postgresql/*/bin or the PATH): \
             .ci/run installs Debian's postgresql; on a developer machine `sudo apt-get install postgresql`, \
             or REMIT_SKIP_POSTGRES=1 to skip the replication tests"
        ),
    }
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The user PostgreSQL runs as when we are root: `postgres`, else `nobody`.
fn run_as() -> Option<String> {
    if output(Command::new("id").arg("-u")) != "0" {
        return None;
    }
    let exists = |user: &str| {
        Command::new("id")
            .arg(user)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    Some(
        ["postgres", "nobody"]
            .into_iter()
            .find(|u| exists(u))
            .expect("running as root, and neither a postgres nor a nobody user exists to run PostgreSQL")
            .to_string(),
    )
}

impl Postgres {
    /// A new cluster, started, with the role `remit` (password `PASSWORD`) and no database
    /// but the defaults (`database()` makes one).
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let run_as = run_as();
        let dir = tempfile::Builder::new()
            .prefix("remit-pg-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("pw"), PASSWORD).unwrap();
        if let Some(user) = &run_as {
            output(
                Command::new("chown")
                    .arg("-R")
                    .arg(format!("{user}:"))
                    .arg(dir.path()),
            );
        }
        let mut pg = Postgres {
            dir,
            bin,
            run_as,
            port: 0,
            child: None,
            log: Default::default(),
        };
        let data = pg.data();
        let pwfile = pg.dir.path().join("pw");
        output(
            pg.command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", "remit", "-A", "scram-sha-256", "--auth-local=trust"])
                .arg(format!("--pwfile={}", pwfile.display()))
                .args(["-E", "UTF8", "--locale=C", "--no-sync"]),
        );
        // Free now: bound, read, released, then given to the server.
        pg.port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        pg.run();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A PostgreSQL program, as the user the cluster belongs to.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut cmd = Command::new("setpriv");
                cmd.arg(format!("--reuid={user}"))
                    .arg(format!(
                        "--regid={}",
                        output(Command::new("id").args(["-g", user]))
                    ))
                    .arg("--clear-groups")
                    .arg(path);
                cmd
            }
            None => Command::new(path),
        }
    }

    /// Starts the server and waits for it to say it accepts connections (read from its own
    /// log, not guessed with a sleep).
    fn run(&mut self) {
        use std::os::unix::process::CommandExt;
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            // A killed server recovers from its WAL whatever the OS did not write yet: fsync
            // only matters when the machine itself stops, which no test does.
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            // PostgreSQL's own default cache: at 32 MB the benchmark's replica read its pages
            // back from the kernel at every cycle (docs/performance.md, "With replication into PostgreSQL").
            .args(["-c", "shared_buffers=128MB", "-c", "max_connections=40"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group: kill -9 reaches the postmaster and every backend.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
        let stderr = child.stderr.take().unwrap();
        let (ready, is_ready) = mpsc::channel();
        let log = std::sync::Arc::clone(&self.log);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("ready to accept connections") {
                    let _ = ready.send(());
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        if is_ready.recv_timeout(READY_WITHIN).is_err() {
            let _ = child.kill();
            panic!(
                "PostgreSQL did not start within {READY_WITHIN:?}; its log:\n{}",
                self.log.lock().unwrap()
            );
        }
        self.child = Some(child);
    }

    /// Kills the server and every backend at once (SIGKILL to its process group) and waits
    /// for them to be gone.
    pub fn kill9(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = child.wait();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Command::new("kill")
            .args(["-0", "--", &group])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL's backends outlived kill -9"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops (`-STOP`) or continues (`-CONT`) the server and every backend (each backend is a
    /// process group of its own: the server's children are signalled by their parent): the
    /// connections stay open, nothing answers (a network that drops packets).
    pub fn signal_all(&self, signal: &str) {
        let child = self.child.as_ref().expect("PostgreSQL runs");
        let pid = child.id().to_string();
        let children = Command::new("pkill")
            .args([signal, "-P", &pid])
            .status()
            .unwrap();
        assert!(children.success(), "pkill {signal} -P {pid}");
        let server = Command::new("kill")
            .args([signal, "--", &pid])
            .status()
            .unwrap();
        assert!(server.success(), "kill {signal} {pid}");
    }

    /// Continues the server and its backends when the guard is dropped, whatever happened: a
    /// test that stopped them and then failed an assertion hung, dropping a ledger whose
    /// replication waited on the stopped server, and held the whole suite.
    pub fn continued_on_drop(&self) -> Continued<'_> {
        Continued(self)
    }

    /// Starts the same cluster again (after `kill9`: crash recovery first).
    pub fn restart(&mut self) {
        self.kill9();
        self.run();
    }

    /// Makes a database and returns its URL (with the password).
    pub fn database(&self, name: &str) -> String {
        let mut admin = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL: {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        self.url(name)
    }

    /// `postgres://remit:PASSWORD@127.0.0.1:PORT/db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://remit:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    /// The same database through the server's Unix socket (its directory as the host,
    /// percent-encoded), with TLS refused as PostgreSQL's own clients would ask.
    pub fn socket_url(&self, db: &str) -> String {
        let dir: String = self.dir.path().display().to_string().replace('/', "%2F");
        format!(
            "postgres://remit:{PASSWORD}@{dir}:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// A client of database `db`.
    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls).unwrap()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.kill9();
    }
}
