//! The composition of a running server: it binds the listener first (so a start that cannot
//! listen changes nothing), then starts the HTTP workers, the payout worker, housekeeping, the
//! notifier (fan-out, webhook and SMS workers) and (with `REMIT_REPLICATE_TO`) replication into
//! PostgreSQL, and stops them in order. `remit serve`, the tests and the benchmark all start it here.

use crate::app::App;
use crate::auth::Authenticator;
use crate::config::{Config, GatewayKind};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::payout::{self, CallbackUrls, Wakeup};
use crate::store::Store;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running server. Dropping it without `shutdown` leaves its threads running.
pub struct Running {
    http: crate::http::HttpServer,
    stopping: Arc<AtomicBool>,
    /// The bound address (port 0 is resolved).
    pub addr: SocketAddr,
    /// `http://host:port` of this server.
    pub base_url: String,
    /// The shared state of the handlers.
    pub(crate) app: Arc<App>,
}

/// The background threads of a running server. None ends before the stop unless something
/// went wrong in it (a panic: the log has it): the payouts stop being sent, or the
/// notifications, or replication, while the HTTP workers go on answering. `/health` says
/// which (`503`, `"status": "degraded"`) and `/metrics` counts them, so a monitor hears of it.
#[derive(Default)]
pub struct Threads {
    background: Mutex<Vec<JoinHandle<()>>>,
    /// Replication's thread, waited for at the stop only a while (`REPLICATION_STOP_WAIT_MS`).
    replicator: Mutex<Option<JoinHandle<()>>>,
}

impl Threads {
    /// The names of the threads that have ended (none while all run; none once the stop has
    /// taken them to wait for).
    pub fn ended(&self) -> Vec<String> {
        let background = self.background.lock().unwrap_or_else(|e| e.into_inner());
        let replicator = self.replicator.lock().unwrap_or_else(|e| e.into_inner());
        background
            .iter()
            .chain(replicator.iter())
            .filter(|t| t.is_finished())
            .map(|t| t.thread().name().unwrap_or("remit-thread").to_string())
            .collect()
    }

    fn add(&self, thread: JoinHandle<()>) {
        self.background
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(thread);
    }

    /// Takes every thread out, for the stop to wait for (so that `ended` no longer names them).
    fn take(&self) -> (Vec<JoinHandle<()>>, Option<JoinHandle<()>>) {
        (
            std::mem::take(&mut *self.background.lock().unwrap_or_else(|e| e.into_inner())),
            self.replicator
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        )
    }
}

impl Running {
    /// Replication's status, when it runs (tests and the benchmark read its lag).
    pub fn replication(&self) -> Option<Arc<crate::replicate::Status>> {
        self.app.replication.clone()
    }
}

/// Binds `config.addr`, then starts everything that serves the store, ready at once.
pub fn start(config: Config, store: Arc<Store>) -> Result<Running> {
    let listener = bind(&config.addr)?;
    let running = start_on(listener, config, store)?;
    running.ready();
    Ok(running)
}

/// Binds the listening address (before anything else is opened or created, so that a start
/// that cannot listen leaves nothing behind).
pub fn bind(addr: &str) -> Result<TcpListener> {
    let listener = TcpListener::bind(addr).map_err(|e| {
        Error::internal(format!(
            "cannot listen on {addr} (set by --addr or --port, REMIT_ADDR or PORT; an address is HOST:PORT such as 127.0.0.1:3000): {e}"
        ))
    })?;
    // Listened again with a longer queue of connections not yet accepted (`LISTEN_BACKLOG`):
    // the kernel takes the new length for the socket already listening.
    let socket = socket2::Socket::from(listener);
    socket
        .listen(crate::limits::LISTEN_BACKLOG)
        .map_err(|e| Error::internal(format!("cannot listen on {addr}: {e}")))?;
    Ok(socket.into())
}

/// Starts everything that serves the store on a bound listener; `/health` says `starting`
/// until [`Running::ready`].
pub fn start_on(listener: TcpListener, config: Config, store: Arc<Store>) -> Result<Running> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::internal(format!("the listener has no address: {e}")))?;
    // The address this server calls itself at (the simulator's results): a listener on every
    // address is reached on loopback; an IPv6 one is written in brackets.
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    let base_url = format!("http://{}", std::net::SocketAddr::new(ip, addr.port()));
    let callback_token = config
        .mpesa_callback_token
        .clone()
        .unwrap_or_else(|| crate::crypto::random_hex(crate::limits::CALLBACK_TOKEN_RANDOM_BYTES));
    let notify = Arc::new(crate::notify::Hub::new(&store));
    let app = Arc::new(App {
        auth: Authenticator::new(Arc::clone(&store)),
        store,
        metrics: Metrics::default(),
        callback_token,
        payouts_wakeup: Arc::new(Wakeup::default()),
        notify,
        replication: config
            .replicate_to
            .as_ref()
            .map(|_| Arc::new(crate::replicate::Status::default())),
        config,
        ready: AtomicBool::new(false),
        threads: Threads::default(),
        integrity_check: Default::default(),
    });
    let http = crate::http::start(listener, Arc::clone(&app))?;
    let stopping = Arc::new(AtomicBool::new(false));
    let mut background = vec![crate::housekeeping::start(
        Arc::clone(&app),
        Arc::clone(&stopping),
    )?];
    let notifier = crate::notify::Notifier {
        store: Arc::clone(&app.store),
        config: app.config.notify.clone(),
        hub: Arc::clone(&app.notify),
    };
    background.extend(notifier.start(Arc::clone(&stopping))?);
    if let Some(gateway) = payout::gateway_for(&app.config) {
        // M-Pesa calls back at the public address; the simulator at this server's own.
        let callback_base = match &app.config.gateway {
            GatewayKind::Daraja(daraja) => daraja.callback_base(&base_url).to_string(),
            _ => base_url.clone(),
        };
        let float_every = gateway
            .can_query()
            .then(|| Duration::from_secs(app.config.float_check_s.max(1)));
        let worker = payout::Worker {
            store: Arc::clone(&app.store),
            gateway,
            urls: CallbackUrls::under(&callback_base, &app.callback_token),
            wakeup: Arc::clone(&app.payouts_wakeup),
            status_after_s: app.config.payout_status_after_s,
            float_every,
            not_sent: Default::default(),
            calls: Arc::clone(&app.metrics.payout_calls),
        };
        background.push(worker.start(Arc::clone(&stopping))?);
    }
    for thread in background {
        app.threads.add(thread);
    }
    if let (Some(target), Some(status)) = (&app.config.replicate_to, &app.replication) {
        // Only reads the file: the writer never waits for it, nor for PostgreSQL.
        let replicator = crate::replicate::Replicator {
            store: Arc::clone(&app.store),
            target: target.clone(),
            status: Arc::clone(status),
        };
        *app.threads
            .replicator
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(replicator.start(Arc::clone(&stopping))?);
    }
    Ok(Running {
        http,
        stopping,
        addr,
        base_url,
        app,
    })
}

impl Running {
    /// The start is done: `/health` answers `200` from now on (while the database does).
    pub fn ready(&self) {
        self.app.ready.store(true, Ordering::SeqCst);
    }

    /// Tells the background threads to stop, stops accepting, lets every request in flight
    /// finish, waits for the background threads, then commits and answers the writer's queue
    /// and checkpoints.
    ///
    /// The background threads are told first: the payout worker went on claiming and sending
    /// payouts through the whole drain (up to 15 s), whose results then came to a server that
    /// no longer listened. What they leave (events to fan out, payouts queued during the drain)
    /// is the next start's. Replication is waited for a while only: a cycle blocked on a
    /// PostgreSQL that does not answer (or copying a large ledger) held the stop until the
    /// service manager killed the process, its final checkpoint skipped; it only reads the
    /// file, and PostgreSQL rolls back its open transaction.
    pub fn shutdown(self) {
        let began = std::time::Instant::now();
        let (background, replicator) = self.app.threads.take();
        self.stopping.store(true, Ordering::SeqCst);
        self.app.payouts_wakeup.notify();
        self.app.notify.endpoints_changed();
        self.http.shutdown();
        // Each thread ends at its next look at `stopping`, unless it is in a call that has not
        // been answered: the stop does not wait for that past its bound (a Daraja call in
        // flight held it up to two minutes, past the service manager's patience).
        let until = (began + Duration::from_millis(crate::limits::BACKGROUND_STOP_WAIT_MS))
            .max(std::time::Instant::now() + Duration::from_millis(500));
        for thread in background {
            while !thread.is_finished() && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                log::warn!(
                    "the stop goes on without {}, still waiting for an answer (M-Pesa, Africa's Talking or a webhook receiver): what it was doing is taken up again at the next start",
                    thread.thread().name().unwrap_or("a background thread")
                );
            }
        }
        if let Some(replicator) = replicator {
            let until = std::time::Instant::now()
                + std::time::Duration::from_millis(crate::limits::REPLICATION_STOP_WAIT_MS);
            while !replicator.is_finished() && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            if replicator.is_finished() {
                let _ = replicator.join();
            } else {
                log::warn!(
                    "replication is still in a cycle (waiting for PostgreSQL, or copying the ledger): the stop goes on without it; PostgreSQL rolls its transaction back, and the next start catches up"
                );
            }
        }
        self.app.auth.flush_token_use();
        self.app.store.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(base: &str, path: &str) -> (u16, String) {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        );
        let mut answer = agent.get(&format!("{base}{path}")).call().unwrap();
        let status = answer.status().as_u16();
        (status, answer.body_mut().read_to_string().unwrap())
    }

    #[test]
    fn a_background_thread_that_ends_before_the_stop_makes_health_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path().join("remit.db"));
        config.addr = "127.0.0.1:0".into();
        config.key_hex = Some("11".repeat(32));
        config.workers = 2;
        let store = Arc::new(crate::store::open(&config.open_options(true)).unwrap());
        let running = start(config, store).unwrap();
        let (status, body) = get(&running.base_url, "/health");
        assert_eq!(
            (status, body.contains("\"stopped\"")),
            (200, false),
            "{body}"
        );

        // A thread of the server's that ends on a fault (as the payout worker would on a
        // panic): the HTTP workers go on answering, and say it.
        let (go, wait) = std::sync::mpsc::channel::<()>();
        running.app.threads.add(
            std::thread::Builder::new()
                .name("remit-payouts".into())
                .spawn(move || {
                    let _ = wait.recv();
                    panic!("a fault in the payout worker");
                })
                .unwrap(),
        );
        assert!(running.app.threads.ended().is_empty());
        go.send(()).unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while running.app.threads.ended().is_empty() && std::time::Instant::now() < until {
            std::thread::yield_now();
        }
        let (status, body) = get(&running.base_url, "/health");
        assert_eq!(status, 503, "{body}");
        let health: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(health["status"], "degraded");
        assert_eq!(health["db"], "ok");
        assert_eq!(health["stopped"], serde_json::json!(["remit-payouts"]));
        // In the shape of every error answer too.
        assert_eq!(health["code"], "degraded");
        assert!(
            health["error"]
                .as_str()
                .is_some_and(|e| e.contains("remit-payouts")),
            "{body}"
        );
        let (_, metrics) = get(&running.base_url, "/metrics");
        assert!(
            metrics
                .lines()
                .any(|l| l == "remit_background_threads_ended 1"),
            "{metrics}"
        );
        running.shutdown();
    }
}
