//! The HTTP server: tiny_http bound first, then worker threads. Each request is read with a
//! bounded reader, routed, authorised, handed to one service call, and answered; errors become
//! HTTP in exactly one place (`error_reply`). One access-log line per request, never with
//! tokens, bodies or PII.

pub mod body;
mod idempotency;
mod routes;
mod static_files;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::limits::{
    BODY_BYTES_MAX, BODY_READ_DEADLINE_MS, DRAINING_THREADS_MAX, REQUEST_ID_BYTES_MAX,
};
use crate::metrics::Metrics;
use crate::service::Actor;
use crate::store::Store;
use std::collections::HashSet;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Wakes a sleeping worker (the payout worker) when there is new work.
#[derive(Default)]
pub struct Wakeup {
    pending: Mutex<bool>,
    cond: Condvar,
}

impl Wakeup {
    /// There is work.
    pub fn notify(&self) {
        if let Ok(mut pending) = self.pending.lock() {
            *pending = true;
            self.cond.notify_all();
        }
    }

    /// Waits until notified or `timeout` passes.
    pub fn wait(&self, timeout: Duration) {
        if let Ok(mut pending) = self.pending.lock() {
            if !*pending {
                if let Ok((guard, _)) = self.cond.wait_timeout(pending, timeout) {
                    pending = guard;
                } else {
                    return;
                }
            }
            *pending = false;
        }
    }
}

/// What every request handler shares.
pub struct App {
    /// The database.
    pub store: Arc<Store>,
    /// The configuration.
    pub config: Config,
    /// Request counters.
    pub metrics: Metrics,
    /// The secret path token of the M-Pesa result URL.
    pub callback_token: String,
    /// Wakes the payout worker after an approval.
    pub payouts_wakeup: Arc<Wakeup>,
    /// `http://host:port` of this server, for callbacks to itself.
    pub base_url: String,
    /// Hashes of tokens used since the last flush of `last_used_at`.
    touched_tokens: Mutex<HashSet<[u8; 32]>>,
}

impl App {
    /// Records that a token was used; written in the background, never per request.
    fn touch(&self, hash: [u8; 32]) {
        if let Ok(mut set) = self.touched_tokens.lock() {
            set.insert(hash);
        }
    }

    /// Writes `last_used_at` for the tokens used since the last call.
    pub fn flush_touched_tokens(&self) {
        let hashes: Vec<[u8; 32]> = match self.touched_tokens.lock() {
            Ok(mut set) => set.drain().collect(),
            Err(_) => return,
        };
        if hashes.is_empty() {
            return;
        }
        if let Err(e) = self
            .store
            .write(move |ctx| crate::service::users::touch_tokens(ctx, &hashes))
        {
            log::warn!("could not record token use: {e:?}");
        }
    }
}

/// A response before it is written.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// What an idempotent replay answers instead of `body`, when `body` holds a secret that is
    /// shown once (a new token).
    pub replay_body: Option<Vec<u8>>,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply {
            status,
            body: value.to_string().into_bytes(),
            content_type: "application/json",
            headers: Vec::new(),
            replay_body: None,
        }
    }
}

/// The one place where an error becomes an HTTP status, a `code` and a message. A 500 says
/// only `internal` and the request id; its detail goes to the log.
pub fn error_reply(error: &Error, request_id: &str) -> Reply {
    let status = match error {
        Error::Validation { .. }
        | Error::MissingField { .. }
        | Error::UnknownField { .. }
        | Error::InvalidJson { .. } => 400,
        Error::Unauthenticated => 401,
        Error::Forbidden => 403,
        Error::NotFound { .. } => 404,
        Error::MethodNotAllowed => 405,
        Error::InsufficientBalance { .. }
        | Error::InsufficientCategoryBalance { .. }
        | Error::DailyLimitExceeded { .. }
        | Error::InvalidState { .. } => 409,
        Error::BodyTooLarge => 413,
        Error::UnsupportedMediaType => 415,
        Error::IdempotencyKeyReused => 422,
        Error::Busy => 503,
        Error::WrongKey | Error::Internal(_) => 500,
    };
    let body = if status == 500 {
        log::error!("request {request_id} failed: {error:?}");
        serde_json::json!({"error": format!("internal error (request id {request_id})"), "code": "internal", "requestId": request_id})
    } else {
        let mut body = serde_json::json!({"error": error.to_string(), "code": error.code()});
        if let Error::Validation { field, .. }
        | Error::MissingField { field }
        | Error::UnknownField { field } = error
        {
            body["field"] = serde_json::json!(field);
        }
        body
    };
    let mut reply = Reply::json(status, &body);
    match status {
        401 => reply.headers.push(("WWW-Authenticate", "Bearer".into())),
        503 => reply.headers.push(("Retry-After", "1".into())),
        _ => {}
    }
    reply
}

/// HTTP methods remit answers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// Anything else
    Other,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Other => "OTHER",
        }
    }
}

/// One parsed request.
pub struct Req {
    /// Method.
    pub method: Method,
    /// Path without the query.
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Body bytes (at most `BODY_BYTES_MAX`).
    pub body: Vec<u8>,
    /// `X-Request-Id`.
    pub request_id: String,
    authorization: Option<String>,
    content_type: Option<String>,
    idempotency_key: Option<String>,
    stripe_signature: Option<String>,
    actor: Option<Actor>,
}

impl Req {
    /// The authenticated actor, or `Unauthenticated`.
    pub fn actor(&self, app: &App) -> Result<Actor> {
        if let Some(actor) = &self.actor {
            return Ok(actor.clone());
        }
        let token = self
            .authorization
            .as_deref()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 128)
            .ok_or(Error::Unauthenticated)?;
        let actor = app
            .store
            .read(|conn, _| crate::service::users::authenticate(conn, token))?;
        app.touch(crate::crypto::sha256(token.as_bytes()));
        Ok(actor)
    }

    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Refuses a body that is not JSON (an empty body is always fine).
    pub fn require_json(&self) -> Result<()> {
        if self.body.is_empty() {
            return Ok(());
        }
        let is_json = self
            .content_type
            .as_deref()
            .map(|ct| {
                ct.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("application/json")
            })
            .unwrap_or(false);
        if is_json {
            Ok(())
        } else {
            Err(Error::UnsupportedMediaType)
        }
    }

    /// The body as JSON fields (415 unless JSON).
    pub fn fields(&self) -> Result<body::Fields> {
        self.require_json()?;
        body::Fields::parse(&self.body)
    }

    /// The `Stripe-Signature` header.
    pub fn stripe_signature(&self) -> Option<&str> {
        self.stripe_signature.as_deref()
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match text.get(i + 1..i + 3).and_then(crate::crypto::unhex) {
                    Some(v) => {
                        out.push(v[0]);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn header(request: &tiny_http::Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_string())
}

/// Reads a request: its head, then (after authentication, where the route needs it) its body.
/// On error the head is returned with the error, for the reply and the access log.
fn read_request(
    app: &App,
    request: &mut tiny_http::Request,
) -> std::result::Result<Req, Box<(Error, Req)>> {
    let request_id = header(request, "X-Request-Id")
        .filter(|id| {
            !id.is_empty()
                && id.len() <= REQUEST_ID_BYTES_MAX
                && id.bytes().all(|b| b.is_ascii_graphic())
        })
        .unwrap_or_else(|| crate::crypto::random_hex(8));
    let method = match request.method() {
        tiny_http::Method::Get => Method::Get,
        tiny_http::Method::Post => Method::Post,
        tiny_http::Method::Put => Method::Put,
        tiny_http::Method::Delete => Method::Delete,
        _ => Method::Other,
    };
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let mut req = Req {
        method,
        path: path.to_string(),
        query,
        body: Vec::new(),
        authorization: header(request, "Authorization"),
        content_type: header(request, "Content-Type"),
        idempotency_key: header(request, "Idempotency-Key"),
        stripe_signature: header(request, "Stripe-Signature"),
        request_id,
        actor: None,
    };
    if request.body_length().is_some_and(|n| n > BODY_BYTES_MAX) {
        return Err(Box::new((Error::BodyTooLarge, req)));
    }
    // Who is asking is known before any body is read: a client without a valid token cannot
    // make a worker wait for a body that trickles in.
    let may_have_body = matches!(req.method, Method::Post | Method::Put | Method::Delete)
        && request.body_length() != Some(0);
    if may_have_body && routes::requires_bearer(req.method, &req.path) {
        match req.actor(app) {
            Ok(actor) => req.actor = Some(actor),
            Err(e) => return Err(Box::new((e, req))),
        }
    }
    let mut body = Vec::new();
    let read = read_body(request.as_reader(), &mut body);
    if read.is_err() {
        let error = Error::InvalidJson {
            message: "the body could not be read".into(),
        };
        return Err(Box::new((error, req)));
    }
    if body.len() > BODY_BYTES_MAX {
        return Err(Box::new((Error::BodyTooLarge, req)));
    }
    req.body = body;
    Ok(req)
}

/// Threads answering requests refused before their body was read.
static DRAINING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Answers a request whose body was never read. tiny_http reads (and discards) such a body when
/// the request is dropped, which for a body that trickles in or never comes blocks up to the
/// socket timeout: that wait happens on a thread of its own, not on an HTTP worker.
fn respond_and_drain(
    request: tiny_http::Request,
    response: tiny_http::Response<std::io::Cursor<Vec<u8>>>,
    request_id: &str,
) {
    let answer = move || {
        let _ = request.respond(response);
        DRAINING.fetch_sub(1, Ordering::SeqCst);
    };
    if DRAINING.fetch_add(1, Ordering::SeqCst) >= DRAINING_THREADS_MAX {
        answer();
        return;
    }
    if let Err(e) = std::thread::Builder::new()
        .name("remit-drain".into())
        .spawn(answer)
    {
        // The closure, and the request in it, went with the failed spawn: the client sees the
        // connection close.
        DRAINING.fetch_sub(1, Ordering::SeqCst);
        log::warn!("cannot answer {request_id} on its own thread: {e}");
    }
}

/// Reads a body of at most `BODY_BYTES_MAX + 1` bytes within `BODY_READ_DEADLINE_MS`, however
/// slowly it trickles in (each read is also bounded by the socket timeout).
fn read_body(reader: &mut dyn Read, body: &mut Vec<u8>) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_millis(BODY_READ_DEADLINE_MS);
    let mut chunk = [0u8; 16 * 1024];
    while body.len() <= BODY_BYTES_MAX {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        body.extend_from_slice(&chunk[..n]);
        if Instant::now() > deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "body took too long",
            ));
        }
    }
    Ok(())
}

/// The path as it may be logged: webhook secrets replaced.
fn loggable_path(path: &str) -> &str {
    // Normalised as the router does (it ignores leading slashes), so `//webhooks/…` is masked too.
    let routed = path.trim_start_matches('/');
    if routed.starts_with("webhooks/payouts/") {
        "/webhooks/payouts/:token"
    } else if routed.starts_with("webhooks/mpesa/") {
        "/webhooks/mpesa/:token"
    } else if routed.starts_with("webhooks/") && routed != "webhooks/stripe" {
        "/webhooks/…"
    } else {
        path
    }
}

fn handle(app: &App, mut request: tiny_http::Request) {
    let started = Instant::now();
    // A request refused before its body was read leaves that body on the connection; tiny_http
    // discards it when the request is dropped, which is done away from the HTTP workers.
    let (req, outcome, close) = match read_request(app, &mut request) {
        Ok(req) => {
            let outcome = routes::dispatch(app, &req);
            (req, outcome, false)
        }
        Err(refused) => {
            let (error, req) = *refused;
            let request_id = req.request_id.clone();
            (req, (Err(error), "-", request_id), true)
        }
    };
    let (result, route, request_id) = outcome;
    let reply = match result {
        Ok(reply) => reply,
        Err(error) => error_reply(&error, &request_id),
    };
    let status = reply.status;
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(status);
    let mut add = |name: &str, value: &str| {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    };
    add("Content-Type", reply.content_type);
    add("X-Request-Id", &request_id);
    add("X-Content-Type-Options", "nosniff");
    for (name, value) in &reply.headers {
        add(name, value);
    }
    if !reply.headers.iter().any(|(n, _)| *n == "Cache-Control") {
        add("Cache-Control", "no-store");
    }
    if close {
        respond_and_drain(request, response, &request_id);
    } else if let Err(e) = request.respond(response) {
        log::debug!("client went away before the response of {request_id}: {e}");
    }
    let micros = started.elapsed().as_micros() as u64;
    let method = req.method.as_str();
    let path = loggable_path(&req.path);
    log::info!(target: "remit::access", "{method} {path} {status} {:.1}ms rid={request_id}", micros as f64 / 1000.0);
    app.metrics.observe(method, route, status, micros);
}

/// Sets a socket option on the listener; Linux copies these to every accepted connection.
fn set_socket_option<T>(
    listener: &std::net::TcpListener,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket descriptor owned by `listener`, and a pointer to a value that lives
    // for the duration of the call, with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// `TCP_NODELAY`: tiny_http writes a response through a 1 KiB buffer, so a larger response
/// leaves in several segments, and with Nagle's algorithm the last one waits for the client's
/// delayed ACK (~40 ms on every keep-alive request). (Read and write timeouts are set on each
/// accepted connection by the vendored tiny_http: on the listener they would time out accept.)
fn tune_listener(listener: &std::net::TcpListener) {
    let on: libc::c_int = 1;
    if !set_socket_option(listener, libc::IPPROTO_TCP, libc::TCP_NODELAY, &on) {
        log::warn!(
            "could not set TCP_NODELAY: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// A running server; dropping it without `shutdown` leaves its threads running.
pub struct RunningServer {
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
    /// The bound address (port 0 is resolved).
    pub addr: SocketAddr,
    /// The shared state, for the payout worker and tests.
    pub app: Arc<App>,
}

/// Binds the listener (so the port is ready before this returns), then starts the workers and
/// the background threads: token use flushing and the payout worker.
pub fn start(config: Config, store: Arc<Store>) -> Result<RunningServer> {
    let listener = std::net::TcpListener::bind(&config.addr)
        .map_err(|e| Error::internal(format!("cannot listen on {}: {e}", config.addr)))?;
    tune_listener(&listener);
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| Error::internal(format!("cannot listen on {}: {e}", config.addr)))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Error::internal("the listener has no IP address"))?;
    let server = Arc::new(server);
    let callback_token = config
        .mpesa_callback_token
        .clone()
        .unwrap_or_else(|| crate::crypto::random_hex(16));
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let app = Arc::new(App {
        store,
        metrics: Metrics::default(),
        callback_token,
        payouts_wakeup: Arc::new(Wakeup::default()),
        base_url: format!("http://{host}:{}", addr.port()),
        touched_tokens: Mutex::new(HashSet::new()),
        config,
    });
    let stopping = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::with_capacity(app.config.workers);
    for i in 0..app.config.workers.max(1) {
        let (server, app, stopping) =
            (Arc::clone(&server), Arc::clone(&app), Arc::clone(&stopping));
        let handle = std::thread::Builder::new()
            .name(format!("remit-http-{i}"))
            .spawn(move || {
                while !stopping.load(Ordering::SeqCst) {
                    match server.recv() {
                        Ok(request) => handle(&app, request),
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
    let mut background = Vec::new();
    {
        let (app, stopping) = (Arc::clone(&app), Arc::clone(&stopping));
        background.push(
            std::thread::Builder::new()
                .name("remit-token-use".into())
                .spawn(move || {
                    let mut rounds: u64 = 0;
                    while !stopping.load(Ordering::SeqCst) {
                        rounds += 1;
                        if rounds % 720 == 1 {
                            // Hourly (every 720 rounds of 5 s): forget expired idempotency keys.
                            match app.store.write(idempotency::purge_expired) {
                                Ok(n) if n > 0 => log::info!("forgot {n} expired idempotency keys"),
                                Ok(_) => {}
                                Err(e) => log::warn!("could not purge idempotency keys: {e:?}"),
                            }
                        }
                        for _ in 0..50 {
                            if stopping.load(Ordering::SeqCst) {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        app.flush_touched_tokens();
                    }
                })
                .map_err(|e| Error::internal(format!("cannot start a thread: {e}")))?,
        );
    }
    background.extend(crate::payout::start_worker(
        Arc::clone(&app),
        Arc::clone(&stopping),
    )?);
    Ok(RunningServer {
        server,
        workers,
        background,
        stopping,
        addr,
        app,
    })
}

impl RunningServer {
    /// Stops accepting, lets every request in flight finish, stops the background threads,
    /// then commits and answers the writer's queue and checkpoints.
    pub fn shutdown(self) {
        self.stopping.store(true, Ordering::SeqCst);
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
        for worker in self.workers {
            let _ = worker.join();
        }
        self.app.payouts_wakeup.notify();
        for thread in self.background {
            let _ = thread.join();
        }
        self.app.flush_touched_tokens();
        self.app.store.close();
    }
}
