//! The HTTP server: the vendored tiny_http on a listener bound by the caller, with every limit
//! of API.md ("Limits every client can rely on") passed to it explicitly, and worker threads.
//! A request's head is read, its route found, and its body read only when its route takes one,
//! after its caller is known: a bearer route authenticates first (and refuses a role the route
//! table excludes); M-Pesa's result URL checks
//! its path token first. A body still arriving needs one of the places kept for slow uploads
//! (`Gates`: a quarter of the workers for clients without a token, a quarter for any one
//! caller, half for all); one that came with its head needs none. A body that is never read is never drained: the answer goes out and the connection is
//! closed. Answers are written by the connection's own thread, so a client that does not read
//! them holds no worker. One access-log line per request, never with tokens, bodies or PII.

use super::handlers::webhooks;
use super::reply::{error_reply, Reply};
use super::request::{read_body, Req};
use super::routes::{self, Access, Found, Route};
use crate::app::App;
use crate::error::{Error, Result};
use crate::limits::{
    BODY_AT_HAND_MS, BODY_BYTES_MAX, BODY_DEADLINE_MS, BODY_GRACE_MS, HEADER_LINES_MAX,
    HEAD_BYTES_MAX, HEAD_DEADLINE_MS, KEEPALIVE_IDLE_MS, SHUTDOWN_DRAIN_MS, SHUTDOWN_DRAIN_POLL_MS,
    UNAUTHENTICATED_WORKERS_DIVISOR, WRITE_DEADLINE_MS,
};
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The running HTTP workers.
pub struct HttpServer {
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
}

/// The limits the server enforces for every client, from `limits.rs` and the configuration.
fn limits(app: &App) -> tiny_http::Limits {
    tiny_http::Limits {
        connections_max: connections_within_open_files(app.config.connections_max),
        head_bytes_max: HEAD_BYTES_MAX,
        header_lines_max: HEADER_LINES_MAX,
        head_deadline: Duration::from_millis(HEAD_DEADLINE_MS),
        idle_timeout: Duration::from_millis(KEEPALIVE_IDLE_MS),
        body_deadline: Duration::from_millis(BODY_DEADLINE_MS),
        write_deadline: Duration::from_millis(WRITE_DEADLINE_MS),
    }
}

/// The connection cap, within the process's limit of open files (`ulimit -n`): its soft limit
/// is raised to the hard one as far as the cap needs, and where that is still too few, the cap
/// is lowered to fit (said once, with what to do). A cap above the limit was never reached: the
/// server ran out of descriptors first, every new client was refused by the kernel's accept
/// (`Too many open files`) rather than admitted by closing the connection idle the longest, one
/// client holding idle sockets locked everyone out, and the refusals filled the log.
fn connections_within_open_files(configured: usize) -> usize {
    let reserved = crate::limits::OPEN_FILES_RESERVED as u64;
    let wanted = configured as u64 + reserved;
    // `None` is no limit.
    let Some(current) = open_files_raised_toward(wanted) else {
        return configured;
    };
    if current >= wanted {
        return configured;
    }
    let fitted =
        (current.saturating_sub(reserved) as usize).max(crate::limits::CONNECTIONS_MAX_LEAST);
    log::warn!(
        "this process may open {current} files (ulimit -n), too few for {configured} connections (REMIT_MAX_CONNECTIONS) and the server's own {reserved}: at most {fitted} connections here, the one idle the longest closed for each beyond; raise the limit (ulimit -n, or LimitNOFILE= in a systemd unit) to {wanted} for {configured}"
    );
    fitted
}

/// The process's soft limit of open files, raised toward `wanted` as far as its hard limit
/// lets it; `None` when there is no limit.
fn open_files_raised_toward(wanted: u64) -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current?;
    if current < wanted && limit.maximum.is_none_or(|most| current < most) {
        let raised = wanted.min(limit.maximum.unwrap_or(wanted));
        let asked = Rlimit {
            current: Some(raised),
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, asked).is_ok() {
            return Some(raised);
        }
    }
    Some(current)
}

/// Refuses to serve where the process may open too few files for the server's own (the
/// database, its log and index for each connection, the listener, the workers' sockets) and
/// the fewest connections: with `ulimit -n 12` the start said only "unable to open database
/// file", retried for seconds. Raises the soft limit first, as the connection cap will want.
pub fn enough_open_files(connections: usize) -> crate::error::Result<()> {
    let reserved = crate::limits::OPEN_FILES_RESERVED as u64;
    let least = reserved + crate::limits::CONNECTIONS_MAX_LEAST as u64;
    match open_files_raised_toward(connections as u64 + reserved) {
        Some(current) if current < least => Err(crate::error::Error::internal(format!(
            "this process may open only {current} files (ulimit -n), and the server needs at least {least}: raise the limit (ulimit -n {}, or LimitNOFILE= in a systemd unit)",
            connections as u64 + reserved
        ))),
        _ => Ok(()),
    }
}

/// The workers waiting for a body that has not arrived whole (one that came with its head
/// needs no place: reading it waits for nobody). Clients that have not authenticated may hold
/// at most a quarter of the workers so; each caller that has (a user, whatever its tokens;
/// M-Pesa by its path token) a quarter too; and all of them together at most half. So
/// however many slow uploads any number of tokens start, half the workers are left for
/// everyone else. A request over its share whose body does not arrive within `BODY_GRACE_MS`
/// is `503 busy`. The places held and the refusals are in `/metrics`.
struct Gates {
    held: Mutex<Held>,
    anonymous_max: usize,
    caller_max: usize,
    waiting_max: usize,
    graced_max: usize,
    app: Arc<App>,
    /// When the last refusal was logged (seconds since start): at most one line a minute.
    warned_at: AtomicU64,
    started: Instant,
    /// The access log's budget for requests refused or sent without a token.
    access_budget: AccessBudget,
}

/// The places held: by clients without a token, by each caller, and in all.
#[derive(Default)]
struct Held {
    anonymous: usize,
    callers: HashMap<String, usize>,
    total: usize,
    /// Requests over their share given a moment for their body (`BODY_GRACE_MS`).
    graced: usize,
}

/// One of the few moments given at once to a request over its share; given back when dropped.
struct Grace<'a>(&'a Gates);

impl Drop for Grace<'_> {
    fn drop(&mut self) {
        self.0.held().graced -= 1;
    }
}

/// A place at the gates, given back when dropped: `None` for a client without a token.
struct Pass<'a>(&'a Gates, Option<String>);

impl Gates {
    fn new(workers: usize, app: Arc<App>) -> Gates {
        Gates {
            held: Mutex::new(Held::default()),
            anonymous_max: (workers / UNAUTHENTICATED_WORKERS_DIVISOR).max(1),
            caller_max: (workers / UNAUTHENTICATED_WORKERS_DIVISOR).max(1),
            waiting_max: (workers / 2).max(1),
            graced_max: (workers / 8).max(1),
            app,
            warned_at: AtomicU64::new(0),
            started: Instant::now(),
            access_budget: AccessBudget::default(),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for `caller` (`None`: a client without a token) within its share and the share
    /// of all; or whose share is full.
    fn enter(&self, caller: Option<&str>) -> std::result::Result<Pass<'_>, &'static str> {
        let mut held = self.held();
        if held.total >= self.waiting_max {
            return Err("all clients together");
        }
        match caller {
            None if held.anonymous >= self.anonymous_max => return Err("clients without a token"),
            None => held.anonymous += 1,
            Some(caller) => {
                let mine = held.callers.entry(caller.to_string()).or_insert(0);
                if *mine >= self.caller_max {
                    return Err("one caller");
                }
                *mine += 1;
            }
        }
        held.total += 1;
        self.app
            .metrics
            .body_waits
            .store(held.total as u64, Ordering::Relaxed);
        Ok(Pass(self, caller.map(str::to_string)))
    }

    /// A moment for a request over its share to take its body, if fewer than an eighth of
    /// the workers are giving one now.
    fn grace(&self) -> Option<Grace<'_>> {
        let mut held = self.held();
        if held.graced >= self.graced_max {
            return None;
        }
        held.graced += 1;
        Some(Grace(self))
    }

    /// The refusal of a request over `whose` share whose body did not come in its grace,
    /// counted, and logged once a minute at most (the access log has each one).
    fn refused(&self, whose: &str) -> Error {
        self.app
            .metrics
            .body_waits_refused
            .fetch_add(1, Ordering::Relaxed);
        let now = self.started.elapsed().as_secs() + 1;
        let last = self.warned_at.load(Ordering::Relaxed);
        if (last == 0 || now >= last + 60)
            && self
                .warned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            log::warn!(
                "requests refused 503: the workers {whose} may hold waiting for slow request bodies are all waiting (said once a minute at most)"
            );
        }
        Error::SlowBodies
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut held = self.0.held();
        match &self.1 {
            None => held.anonymous -= 1,
            Some(caller) => {
                if let Some(n) = held.callers.get_mut(caller.as_str()) {
                    *n -= 1;
                    if *n == 0 {
                        held.callers.remove(caller.as_str());
                    }
                }
            }
        }
        held.total -= 1;
        self.0
            .app
            .metrics
            .body_waits
            .store(held.total as u64, Ordering::Relaxed);
    }
}

/// Serves `app` on an already bound listener with `app.config.workers` worker threads.
pub fn start(listener: TcpListener, app: Arc<App>) -> Result<HttpServer> {
    let server = tiny_http::Server::from_listener_with_limits(listener, limits(&app))
        .map_err(|e| Error::internal(format!("cannot serve HTTP: {e}")))?;
    let server = Arc::new(server);
    let stopping = Arc::new(AtomicBool::new(false));
    let workers_n = app.config.workers.max(1);
    let gate = Arc::new(Gates::new(workers_n, Arc::clone(&app)));
    let mut workers = Vec::with_capacity(workers_n);
    for i in 0..workers_n {
        let (server, app, stopping, gate) = (
            Arc::clone(&server),
            Arc::clone(&app),
            Arc::clone(&stopping),
            Arc::clone(&gate),
        );
        let handle = std::thread::Builder::new()
            .name(format!("remit-http-{i}"))
            .spawn(move || {
                while !stopping.load(Ordering::SeqCst) {
                    match server.recv() {
                        // A handler that panics answers its request 500 (the request dropped
                        // unanswered) and leaves this worker serving: each panic cost one of
                        // the workers for good.
                        Ok(request) => {
                            let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                                || handle(&app, &gate, request),
                            ));
                            if handled.is_err() {
                                app.metrics.observe_panicked();
                                log::error!("a request's handler panicked; it was answered 500 and this worker goes on");
                            }
                        }
                        Err(e) => {
                            log::debug!("accept stopped: {e}");
                            break;
                        }
                    }
                }
            })
            .map_err(|e| Error::internal(format!("cannot start an HTTP worker: {e}")))?;
        workers.push(handle);
    }
    Ok(HttpServer {
        server,
        workers,
        stopping,
    })
}

impl HttpServer {
    /// Stops accepting and waits for every request in flight to be answered: first no new
    /// connection or request is read, idle connections end, and the workers go on answering
    /// what was read until every connection has ended (each ends once its last answer is
    /// written), for at most `SHUTDOWN_DRAIN_MS`; then the workers stop, each after the request
    /// in its hands (a body still arriving is read until its own deadline, `BODY_DEADLINE_MS`). Before, the workers stopped at once, and a request
    /// already read but not yet taken by a worker was dropped, answered 500 and never logged.
    pub fn shutdown(self) {
        self.server.stop_accepting();
        let deadline = Instant::now() + Duration::from_millis(SHUTDOWN_DRAIN_MS);
        while self.server.num_connections() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(SHUTDOWN_DRAIN_POLL_MS));
        }
        if self.server.num_connections() > 0 {
            log::info!(
                "stopping with {} connection(s) still open (a request not read whole in {} ms)",
                self.server.num_connections(),
                SHUTDOWN_DRAIN_MS
            );
        }
        self.stopping.store(true, Ordering::SeqCst);
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

/// Reads the body of a request whose route takes one, once its caller may send one: a bearer
/// route's caller is authenticated first, and refused `403` if the route table says its role
/// may never call the route; M-Pesa's result URL checks its path token first. A body that has
/// not arrived whole with its head needs a place at the gates (`Gates`): the caller's, or for
/// a webhook (which authenticates by its body) the anonymous one. Anything refused here leaves
/// the body unread (and the connection is then closed).
fn read_body_of(
    app: &App,
    gates: &Gates,
    request: &mut tiny_http::Request,
    req: &mut Req,
    route: &Route,
) -> Result<()> {
    let buffered = request.body_is_buffered();
    let caller = match route.access {
        Access::Bearer => {
            req.authenticate(app)?;
            route.check_role(req, app)?;
            // Named only when a place is needed (no copy for a body already here).
            match buffered {
                true => None,
                false => Some(req.actor(app)?.id),
            }
        }
        Access::PathToken => {
            // Its token is in its path: a wrong one is refused before the body (and before
            // it takes a place at the gates).
            webhooks::mpesa_caller(app, req)?;
            Some("system:mpesa".to_string())
        }
        Access::Webhook | Access::Public => None,
    };
    // Who asks is judged before what they send: a declared body over the limit is `413` only
    // to a caller who may send one (a stranger hears `401`, a role that may never call `403`).
    if request.body_length().is_some_and(|n| n > BODY_BYTES_MAX) {
        return Err(Error::BodyTooLarge);
    }
    // A body that is coming in another type than JSON is refused by its head, once the caller
    // is known: unread, and without a `100 Continue` asking for it first. Only a sized one: a
    // chunked body may be empty, which any type may be. (A webhook is told `401` first if
    // forged, which takes its body, and M-Pesa's refusals are logged by their handler: their
    // type is looked at after.)
    let coming = request.body_length().is_some_and(|n| n > 0);
    if coming && route.access == Access::Bearer {
        req.require_json_type()?;
    }
    let pass = (!buffered).then(|| gates.enter(caller.as_deref()));
    if let Some(Err(whose)) = pass {
        // Over its share: a body on its way (a burst of one client's requests, each body
        // written a moment after its head) is still taken if it arrives within a moment;
        // a slow one is refused then, having held the worker no longer. Only a few such
        // moments at once (an eighth of the workers): past them a body is taken only if it is
        // already at hand (received, not yet read: `BODY_AT_HAND_MS`), so that a client
        // reconnecting over and over holds no more workers with its moments, while a burst of
        // one client's requests, each body written just after its head, is still served.
        let grace = gates.grace();
        let wait = if grace.is_some() {
            BODY_GRACE_MS
        } else {
            BODY_AT_HAND_MS
        };
        request.limit_body_wait(Duration::from_millis(wait));
        req.body = read_body(request.as_reader()).map_err(|e| match e {
            Error::InvalidJson { .. } | Error::BodyTimedOut => gates.refused(whose),
            other => other,
        })?;
        return Ok(());
    }
    req.body = read_body(request.as_reader())?;
    Ok(())
}

fn handle(app: &App, gate: &Gates, mut request: tiny_http::Request) {
    let started = Instant::now();
    let mut req = Req::head(&request);
    let path = req.path.clone();
    let found = routes::find(req.method, &path);
    let body = match (&found, req.repeated) {
        // Refused before anything else of it is read.
        (_, Some(name)) => Err(Error::RepeatedHeader { name }),
        (Found::Route(route, params), None) if route.takes_body() => {
            req.params = params.iter().map(|p| p.to_string()).collect();
            read_body_of(app, gate, &mut request, &mut req, route)
        }
        _ => Ok(()),
    };
    let (result, route) = match body {
        Ok(()) => routes::answer(app, &mut req, found),
        // Refused before its handler ran (a refused body, a missing token): counted under
        // its route all the same.
        Err(error) => match found {
            Found::Route(route, _) => (Err(error), route.path),
            _ => (Err(error), "-"),
        },
    };
    let reply = match result {
        Ok(reply) => reply,
        Err(error) => error_reply(&error, &req.request_id),
    };
    let status = reply.status;
    // Written by the connection's own thread; with `Connection: close` when the body was not
    // read to its end.
    if let Err(e) = request.respond(response_of(reply, &req.request_id)) {
        log::debug!(
            "could not hand over the response of {}: {e}",
            req.logged_request_id()
        );
    }
    let micros = started.elapsed().as_micros() as u64;
    let method = if req.is_head {
        "HEAD"
    } else {
        req.method.as_str()
    };
    if gate.access_budget.may_write(status, req.is_authenticated()) {
        log::info!(target: "remit::access", "{method} {} {status} {:.1}ms rid={}", req.loggable_path_of(route), micros as f64 / 1000.0, req.logged_request_id());
    }
    app.metrics.observe(method, route, status, micros);
}

/// The access log's budget for requests refused or sent without a token: a client that sends
/// 404s as fast as it can (a keep-alive connection pipelining `GET /n`) made 80,000 lines a
/// second, four and a half times the bytes it sent, which a kiosk's disk pays for, and
/// `GET /health` (public) would do the same. At most `ACCESS_BUDGET_LINES_PER_S` of them a
/// second are logged one by one; the rest are counted and said in one line with the next
/// access line (`/metrics` counts every request). The answers of a caller whose token was
/// verified are always logged, unless refused.
struct AccessBudget(LogBudget);

impl Default for AccessBudget {
    fn default() -> AccessBudget {
        AccessBudget(LogBudget::new(crate::limits::ACCESS_BUDGET_LINES_PER_S))
    }
}

impl AccessBudget {
    /// Whether the access line of an answer with `status`, to a caller `authenticated` or not,
    /// is written; says first how many were left out since the last one said.
    fn may_write(&self, status: u16, authenticated: bool) -> bool {
        self.0.admit(status < 400 && authenticated, |n| {
            log::warn!(target: "remit::access", "{n} requests refused or sent without a token were not logged one by one: at most {} a second are; /metrics counts every request", crate::limits::ACCESS_BUDGET_LINES_PER_S);
        })
    }
}

/// At most `per_s` lines a second of one kind a caller without a token can cause (an access
/// line, a refused webhook's warning); the rest are counted and said in one line, at most once a
/// second, before the next line written.
pub(crate) struct LogBudget {
    per_s: u32,
    /// The current second (since the epoch), and the budgeted lines written in it.
    window: Mutex<(u64, u32)>,
    /// Budgeted lines left out and not said yet.
    left_out: AtomicU64,
    /// The second the lines left out were last said in.
    said_in: AtomicU64,
}

impl LogBudget {
    /// A budget of `per_s` lines a second.
    pub(crate) const fn new(per_s: u32) -> LogBudget {
        LogBudget {
            per_s,
            window: Mutex::new((0, 0)),
            left_out: AtomicU64::new(0),
            said_in: AtomicU64::new(0),
        }
    }

    /// Whether a line may be written now (always when `exempt`); `say_left_out(n)` is called
    /// first when `n` lines were left out since they were last said.
    pub(crate) fn admit(&self, exempt: bool, say_left_out: impl FnOnce(u64)) -> bool {
        let second = crate::time::now_unix_ms().max(0) as u64 / 1000;
        let write = exempt || {
            let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
            if window.0 != second {
                *window = (second, 0);
            }
            window.1 < self.per_s && {
                window.1 += 1;
                true
            }
        };
        if !write {
            self.left_out.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        // Said at most once a second: said before every line written, a line was said for each
        // line left out, as many as there were.
        if self.left_out.load(Ordering::Relaxed) > 0
            && self.said_in.swap(second, Ordering::Relaxed) != second
        {
            let n = self.left_out.swap(0, Ordering::Relaxed);
            if n > 0 {
                say_left_out(n);
            }
        }
        true
    }
}

/// The tiny_http response of a reply, with the headers every response carries.
fn response_of(
    reply: Reply,
    request_id: &str,
) -> tiny_http::Response<std::io::Cursor<std::borrow::Cow<'static, [u8]>>> {
    let length = reply.body.len();
    let mut response = tiny_http::Response::new(
        tiny_http::StatusCode(reply.status),
        Vec::new(),
        std::io::Cursor::new(reply.body),
        Some(length),
        None,
    );
    let mut add = |name: &str, value: &str| {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    };
    add("Content-Type", reply.content_type);
    add("X-Request-Id", request_id);
    add("X-Content-Type-Options", "nosniff");
    for (name, value) in &reply.headers {
        add(name, value);
    }
    if !reply.headers.iter().any(|(n, _)| *n == "Cache-Control") {
        add("Cache-Control", "no-store");
    }
    response
}
