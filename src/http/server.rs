//! The HTTP server: tiny_http on a listener bound by the caller, and worker threads. Each
//! request's head is read, its route found, its caller authenticated before any body is read
//! (for routes that need a token), then its handler runs and the reply is written. One
//! access-log line per request, never with tokens, bodies or PII.

use super::reply::{error_reply, Reply};
use super::request::{read_body, Method, Req};
use super::routes::{self, Access, Found};
use crate::app::App;
use crate::error::{Error, Result};
use crate::limits::{BODY_BYTES_MAX, DRAINING_THREADS_MAX};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// The running HTTP workers.
pub struct HttpServer {
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
}

/// Serves `app` on an already bound listener with `app.config.workers` worker threads.
pub fn start(listener: TcpListener, app: Arc<App>) -> Result<HttpServer> {
    tune_listener(&listener);
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| Error::internal(format!("cannot serve HTTP: {e}")))?;
    let server = Arc::new(server);
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
    Ok(HttpServer {
        server,
        workers,
        stopping,
    })
}

impl HttpServer {
    /// Stops accepting and waits for every request in flight to be answered.
    pub fn shutdown(self) {
        self.stopping.store(true, Ordering::SeqCst);
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

/// Reads the body of a request whose head is in `req`: for a route that needs a token, only
/// once the caller is known, so that a client without a valid token cannot make a worker wait
/// for a body that trickles in.
fn read_body_of(app: &App, request: &mut tiny_http::Request, req: &mut Req) -> Result<()> {
    if request.body_length().is_some_and(|n| n > BODY_BYTES_MAX) {
        return Err(Error::BodyTooLarge);
    }
    let may_have_body = matches!(req.method, Method::Post | Method::Put | Method::Delete)
        && request.body_length() != Some(0);
    if may_have_body {
        if let Found::Route(route, _) = routes::find(req.method, &req.path) {
            if route.access == Access::Bearer {
                req.authenticate(app)?;
            }
        }
    }
    req.body = read_body(request.as_reader())?;
    Ok(())
}

fn handle(app: &App, mut request: tiny_http::Request) {
    let started = Instant::now();
    let mut req = Req::head(&request);
    // A request refused before its body was read leaves that body on the connection; tiny_http
    // discards it when the request is dropped, which is done away from the HTTP workers.
    let (result, route, close) = match read_body_of(app, &mut request, &mut req) {
        Ok(()) => {
            let (result, route) = routes::dispatch(app, &mut req);
            (result, route, false)
        }
        Err(error) => (Err(error), "-", true),
    };
    let reply = match result {
        Ok(reply) => reply,
        Err(error) => error_reply(&error, &req.request_id),
    };
    let status = reply.status;
    let response = response_of(reply, &req.request_id);
    if close {
        respond_and_drain(request, response, &req.request_id);
    } else if let Err(e) = request.respond(response) {
        log::debug!(
            "client went away before the response of {}: {e}",
            req.request_id
        );
    }
    let micros = started.elapsed().as_micros() as u64;
    let method = req.method.as_str();
    log::info!(target: "remit::access", "{method} {} {status} {:.1}ms rid={}", req.loggable_path(), micros as f64 / 1000.0, req.request_id);
    app.metrics.observe(method, route, status, micros);
}

/// The tiny_http response of a reply, with the headers every response carries.
fn response_of(reply: Reply, request_id: &str) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
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

/// Threads answering requests refused before their body was read.
static DRAINING: AtomicUsize = AtomicUsize::new(0);

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

/// `TCP_NODELAY`: tiny_http writes a response through a 1 KiB buffer, so a larger response
/// leaves in several segments, and with Nagle's algorithm the last one waits for the client's
/// delayed ACK (~40 ms on every keep-alive request). Linux copies the option from the listener
/// to every accepted connection.
fn tune_listener(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor owned by `listener`, and a pointer to a value that lives
    // for the duration of the call, with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        log::warn!(
            "could not set TCP_NODELAY: {}",
            std::io::Error::last_os_error()
        );
    }
}
