//! remit patch: one thread per connection that reads a request, hands it to the application,
//! waits for its answer and writes it, then (keep-alive) reads the next one.
//!
//! Upstream parsed pipelined requests ahead of their answers and let the application's threads
//! write the responses: a client pipelining requests without reading the answers made every
//! application thread block in a write. Here at most one request per connection is in flight,
//! the next request is not parsed before the previous answer is written, and answers are
//! written by this thread, bounded by `Limits::write_deadline`. The head of a request is read
//! within `Limits::{head_bytes_max, header_lines_max, head_deadline}`; the body is read only
//! when the application reads it (see `Request::as_reader`).

use ascii::AsciiString;

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Weak};
use std::time::Instant;

use crate::common::{HTTPVersion, Header, Method, StatusCode};
use crate::connection::Connection;
use crate::limits::Limits;
use crate::util::{
    read_head_line, BodyReader, DeadlineReader, DeadlineWriter, Framing, LineError, MessagesQueue,
    RefinedTcpStream, Registration,
};
use crate::{Message, Request, Response, ResponseBox};

/// The reading half of a connection, as the body of a request reads it.
pub(crate) type ConnReader = BufReader<DeadlineReader>;
/// The writing half of a connection.
pub(crate) type ConnWriter = BufWriter<DeadlineWriter>;

const READ_BUFFER: usize = 4 * 1024;

/// remit patch: the refusals logged one by one in a second. Each refusal closes its connection,
/// so a client opening connections as fast as it can (thousands a second on a fast link) wrote
/// as many lines, which a kiosk's disk pays for; the rest are counted and said in one line
/// before the next refusal logged (at most once a second).
pub const REFUSALS_LOGGED_PER_S: u32 = 100;

/// The current second and the refusals logged in it (`refusal_may_be_logged`).
static REFUSALS_WINDOW: std::sync::Mutex<(u64, u32)> = std::sync::Mutex::new((0, 0));
/// Refusals not logged and not said yet.
static REFUSALS_LEFT_OUT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// remit patch: the requests refused here, before the application saw them, by status (400 to
/// 599), since the process started: for the application's metrics, where a header flood or a
/// smuggling probe was in the log only.
static REFUSED: [AtomicU64; 200] = [const { AtomicU64::new(0) }; 200];

/// remit patch: how many requests were refused before the application saw them, by status
/// (the statuses never answered left out), since the process started.
pub fn refused_before_routing() -> Vec<(u16, u64)> {
    (400u16..)
        .zip(REFUSED.iter())
        .map(|(status, n)| (status, n.load(Ordering::Relaxed)))
        .filter(|&(_, n)| n > 0)
        .collect()
}

/// remit patch: whether this refusal is logged; if so, how many were left out since the last
/// one logged (to be said first).
fn refusal_may_be_logged() -> Option<u64> {
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut window = REFUSALS_WINDOW.lock().unwrap_or_else(|e| e.into_inner());
    if window.0 != second {
        *window = (second, 0);
    }
    if window.1 >= REFUSALS_LOGGED_PER_S {
        REFUSALS_LEFT_OUT.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    window.1 += 1;
    // Said with the first refusal logged in a second: at most once a second.
    let left_out = if window.1 == 1 {
        REFUSALS_LEFT_OUT.swap(0, Ordering::Relaxed)
    } else {
        0
    };
    Some(left_out)
}
const WRITE_BUFFER: usize = 8 * 1024;

/// What a `Request` tells the thread of its connection.
pub(crate) enum ToConnection {
    /// Write `100 Continue` now (the application started reading the body), then answer. The
    /// application does not wait for it to be written: a client that reads none of its answers
    /// held the worker for the whole write deadline (its body, once it comes, is read within
    /// the body's own deadline).
    Continue,
    /// Write this response. `close`: the connection ends after it (the body was not read to
    /// its end, or the application asked). `source` is the reading half of the connection,
    /// handed back from the request's body.
    Respond {
        response: ResponseBox,
        close: bool,
        source: Option<ConnReader>,
    },
    /// The request was dropped without a response: answer 500 and close.
    Dropped,
    /// `Request::into_writer`: hand the writing half (with `write_deadline` from now) over.
    IntoWriter(Sender<Handover>),
    /// `Request::upgrade`: write these bytes (the upgrade response), then hand the writing
    /// half over without deadline; `None` when the write failed.
    Upgrade(Vec<u8>, Sender<Option<Handover>>),
}

/// The writing half of a connection handed over to the application, with the connection's
/// place in the registry: the connection counts as open until this is dropped.
pub(crate) struct Handover {
    writer: ConnWriter,
    _registration: Option<Registration>,
}

impl Write for Handover {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

impl Drop for Handover {
    fn drop(&mut self) {
        let _ = self.writer.flush();
    }
}

/// A parsed request head.
struct Head {
    method: Method,
    path: String,
    version: HTTPVersion,
    headers: Vec<Header>,
}

enum HeadError {
    /// Over `head_bytes_max` or `header_lines_max`: 431.
    TooLarge,
    /// Not a valid request line or header line: 400, with why (remit patch: the answer says
    /// which line is wrong, never echoing its value).
    Malformed(&'static str, Option<String>),
    /// End of stream, deadline or I/O error: closed without an answer.
    Closed(std::io::Error),
}

impl From<LineError> for HeadError {
    fn from(e: LineError) -> HeadError {
        match e {
            LineError::TooLong => HeadError::TooLarge,
            other => HeadError::Closed(other.into()),
        }
    }
}

/// What the connection does after a request.
enum Next {
    KeepAlive,
    Close,
    /// The application owns the connection now (`into_writer`, `upgrade`).
    HandedOver,
}

/// A connection to a client, served on its own thread by `run`.
pub(crate) struct ClientConnection {
    remote_addr: Option<SocketAddr>,
    secure: bool,
    reader: Option<ConnReader>,
    writer: Option<ConnWriter>,
    registration: Option<Registration>,
    limits: Limits,
    messages: Weak<MessagesQueue<Message>>,
    closing: Arc<AtomicBool>,
}

impl ClientConnection {
    pub(crate) fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
        socket: Connection,
        registration: Registration,
        limits: Limits,
        messages: Weak<MessagesQueue<Message>>,
        closing: Arc<AtomicBool>,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr().ok().flatten();
        let secure = read_socket.secure();
        let reader = DeadlineReader::new(read_socket, socket.clone());
        let writer = DeadlineWriter::new(write_socket, socket);
        ClientConnection {
            remote_addr,
            secure,
            reader: Some(BufReader::with_capacity(READ_BUFFER, reader)),
            writer: Some(BufWriter::with_capacity(WRITE_BUFFER, writer)),
            registration: Some(registration),
            limits,
            messages,
            closing,
        }
    }

    /// true if the connection is HTTPS
    pub(crate) fn secure(&self) -> bool {
        self.secure
    }

    /// Serves requests until the connection closes.
    pub(crate) fn run(mut self) {
        let mut idle_since = Instant::now();
        while !self.closing.load(Ordering::Relaxed) {
            match self.serve_one(idle_since) {
                Next::KeepAlive => {
                    idle_since = Instant::now();
                    match &self.registration {
                        Some(registration) if registration.set_idle() => {}
                        _ => break,
                    }
                }
                Next::Close => break,
                Next::HandedOver => return,
            }
        }
        self.close();
    }

    /// Flushes what is left to write, then closes: the writing half first, so that the
    /// client sees the end of the last response before anything else.
    fn close(&mut self) {
        if let Some(mut writer) = self.writer.take() {
            let _ = writer.flush();
        }
        self.reader = None;
        self.registration = None;
    }

    /// Reads one request, hands it to the application and writes its answer.
    fn serve_one(&mut self, idle_since: Instant) -> Next {
        let limits = self.limits.clone();
        let reader = match self.reader.as_mut() {
            Some(reader) => reader,
            None => return Next::Close,
        };

        // Waiting for the first byte of the request: at most `idle_timeout`. Bytes of a
        // pipelined request may be buffered already.
        reader
            .get_mut()
            .set_deadline(Some(idle_since + limits.idle_timeout));
        loop {
            match reader.fill_buf() {
                Ok([]) => return Next::Close,
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("connection idle or failed, closing: {}", e);
                    return Next::Close;
                }
            }
        }

        // The head: within `head_deadline` of its first byte, however slowly it comes.
        reader
            .get_mut()
            .set_deadline(Some(Instant::now() + limits.head_deadline));
        let head = match read_head(reader, &limits) {
            Ok(head) => head,
            Err(HeadError::TooLarge) => {
                let why = format!(
                    "the request line and headers must be at most {} bytes and {} header lines",
                    limits.head_bytes_max, limits.header_lines_max
                );
                self.write_error(431, "headers_too_large", &why, None, None);
                return Next::Close;
            }
            Err(HeadError::Malformed(why, header)) => {
                self.write_malformed(why, header.as_deref());
                return Next::Close;
            }
            Err(HeadError::Closed(e)) => {
                log::debug!("request head not received, closing: {}", e);
                return Next::Close;
            }
        };
        match &self.registration {
            Some(registration) if registration.set_busy() => {}
            _ => return Next::Close, // evicted while its head arrived
        }

        // remit patch: the client's X-Request-Id, for the answers this thread gives itself.
        let client_id = header_value(&head.headers, "X-Request-Id").map(str::to_string);
        let client_id = client_id.as_deref();
        // remit patch: below 1.0 too: HTTP/0.9 has no status line nor headers, and an answer
        // may not claim a version the server does not speak (RFC 9112, 2.3).
        if head.version > (1, 1) || head.version < (1, 0) {
            let why = "HTTP versions other than 1.0 and 1.1 are not supported";
            self.write_error(505, "http_version_not_supported", why, None, client_id);
            return Next::Close;
        }
        // remit patch: HTTP/1.0 has no chunked framing: a 1.0 request with `Transfer-Encoding`
        // is read one way here and another by a 1.0 proxy in front (RFC 9112, 6.1: faulty
        // framing, the connection closed).
        if head.version < (1, 1) && header_value(&head.headers, "Transfer-Encoding").is_some() {
            let why = "the Transfer-Encoding header is not for HTTP/1.0 requests";
            self.write_error(400, "invalid_header", why, Some("Transfer-Encoding"), client_id);
            return Next::Close;
        }
        // remit patch: a `Host` that is no host (RFC 9112, 3.2: `400`). Empty is allowed.
        if header_value(&head.headers, "Host").is_some_and(|host| !is_host(host.trim())) {
            let why = "the Host header is not a host name or address, with an optional port";
            self.write_error(400, "invalid_header", why, Some("Host"), client_id);
            return Next::Close;
        }
        let (framing, body_length) = match framing(&head.headers) {
            Ok(framing) => framing,
            Err(name) => {
                let why = match name {
                    "Transfer-Encoding" => "must be exactly chunked, once, without Content-Length",
                    _ => "must be one whole number (the same one if repeated)",
                };
                let why = format!("the {} header {}", name, why);
                self.write_error(400, "invalid_header", &why, Some(name), client_id);
                return Next::Close;
            }
        };
        let expects_continue = match header_value(&head.headers, "Expect") {
            None => false,
            Some(v) if v.trim().eq_ignore_ascii_case("100-continue") => true,
            Some(_) => {
                let why = "the Expect header may only be 100-continue";
                self.write_error(417, "invalid_header", why, Some("Expect"), client_id);
                return Next::Close;
            }
        };
        let last_request = is_last_request(&head);

        // The body: read by the application only, within `body_deadline` of the head's end.
        let mut source = match self.reader.take() {
            Some(source) => source,
            None => return Next::Close,
        };
        source
            .get_mut()
            .set_deadline(Some(Instant::now() + limits.body_deadline));
        let body = BodyReader::new(source, framing, limits.head_bytes_max);
        let must_send_continue = expects_continue && !body.is_complete() && head.version >= (1, 1);

        // What the response needs to know of the request.
        let te: Vec<Header> = head
            .headers
            .iter()
            .filter(|h| h.field.equiv("TE"))
            .cloned()
            .collect();
        let is_head = head.method == Method::Head;
        let version = head.version.clone();

        let (to_connection, from_request) = mpsc::channel();
        let request = crate::request::from_connection(
            self.secure,
            head.method,
            head.path,
            head.version,
            head.headers,
            self.remote_addr,
            body,
            body_length,
            must_send_continue,
            to_connection,
        );
        match self.messages.upgrade() {
            Some(messages) => messages.push(Message::NewRequest(request)),
            None => return Next::Close, // the server is gone
        }

        // One request in flight: nothing more is read until its answer is written.
        let mut failed = false;
        loop {
            let message = match from_request.recv() {
                Ok(message) => message,
                Err(_) => return Next::Close,
            };
            match message {
                ToConnection::Continue => {
                    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
                    failed |= self.write_all(interim).is_err();
                }
                ToConnection::Respond {
                    response,
                    close,
                    source,
                } => {
                    // remit patch: an answer written while the server stops says so
                    // (`Connection: close`), so that its client does not send its next
                    // request down a connection about to close.
                    let close = close
                        || last_request
                        || failed
                        || source.is_none()
                        || self.closing.load(Ordering::Relaxed);
                    let response = if close {
                        response.with_connection_close()
                    } else if version < (1, 1) {
                        // remit patch: a 1.0 client kept alive is told so.
                        response.with_connection_keep_alive()
                    } else {
                        response
                    };
                    self.reader = source;
                    // remit patch: while it writes, the connection may be evicted at the cap
                    // when none is idle (its client may not read).
                    match &self.registration {
                        Some(registration) if registration.set_writing() => {}
                        _ => return Next::Close, // evicted while its request was handled
                    }
                    let written = self.write_response(response, &version, &te, is_head);
                    if written.is_err() || close {
                        return Next::Close;
                    }
                    return Next::KeepAlive;
                }
                ToConnection::Dropped => {
                    self.write_error(500, "internal", "internal error", None, client_id);
                    return Next::Close;
                }
                ToConnection::IntoWriter(reply) => {
                    let mut writer = match self.writer.take() {
                        Some(writer) => writer,
                        None => return Next::Close,
                    };
                    writer
                        .get_mut()
                        .set_deadline(Some(Instant::now() + limits.write_deadline));
                    let _ = reply.send(Handover {
                        writer,
                        _registration: self.registration.take(),
                    });
                    return Next::HandedOver;
                }
                ToConnection::Upgrade(bytes, reply) => {
                    if failed || self.write_all(&bytes).is_err() {
                        let _ = reply.send(None);
                        return Next::Close;
                    }
                    let mut writer = match self.writer.take() {
                        Some(writer) => writer,
                        None => return Next::Close,
                    };
                    writer.get_mut().set_deadline(None);
                    let _ = reply.send(Some(Handover {
                        writer,
                        _registration: self.registration.take(),
                    }));
                    return Next::HandedOver;
                }
            }
        }
    }

    /// Writes and flushes `bytes` within `write_deadline`.
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let deadline = Instant::now() + self.limits.write_deadline;
        let writer = self.writer_within(deadline)?;
        writer.write_all(bytes)?;
        writer.flush()
    }

    /// Writes and flushes a response within `write_deadline`.
    fn write_response<R: std::io::Read>(
        &mut self,
        response: Response<R>,
        version: &HTTPVersion,
        te: &[Header],
        is_head: bool,
    ) -> std::io::Result<()> {
        let deadline = Instant::now() + self.limits.write_deadline;
        let writer = self.writer_within(deadline)?;
        let written = response
            .raw_print(&mut *writer, version.clone(), te, is_head, None)
            .and_then(|()| writer.flush());
        if let Err(e) = &written {
            log::debug!("response not written, closing: {}", e);
        }
        written
    }

    /// Answers an error of the client (or 500) and marks the connection to be closed.
    ///
    /// remit patch: in the application's error shape, `{"error", "code"}` with `"field"`
    /// naming a header at fault (never echoing its value) and, on a 500, `"requestId"`; with an
    /// `X-Request-Id`: the client's own (`client_id`, when its head was read) or a new one.
    fn write_error(
        &mut self,
        status: u16,
        code: &str,
        why: &str,
        field: Option<&str>,
        client_id: Option<&str>,
    ) {
        let id = request_id(client_id);
        // remit patch: counted for the application's metrics (`refused_before_routing`); not a
        // 500, the answer of a request the application dropped (its handler panicked), which
        // reached its route and is the application's to count.
        if let Some(n) = usize::from(status)
            .checked_sub(400)
            .filter(|_| status != 500)
            .and_then(|i| REFUSED.get(i))
        {
            n.fetch_add(1, Ordering::Relaxed);
        }
        // remit patch: an id that holds what the log must not is answered as sent and logged
        // withheld (the application logs it masked; this refusal does not mask).
        let logged_id = if holds_a_token_or_a_phone(&id) {
            "(the client's, withheld: it holds what reads as a phone or a token)"
        } else {
            id.as_str()
        };
        // remit patch: a request answered here, before the application saw it, is in the
        // access log as every other (a header flood or a smuggling probe was not seen at all):
        // the status, the fixed words of the refusal (a header's name, cut) and the request id,
        // never a value sent.
        // A 500 (a request dropped unanswered) is always logged: its answer names its id.
        let logged = if status == 500 {
            Some(0)
        } else {
            refusal_may_be_logged()
        };
        if let Some(left_out) = logged {
            if left_out > 0 {
                log::warn!(
                    target: "remit::access",
                    "{} requests refused before routing were not logged one by one: at most {} a second are",
                    left_out,
                    REFUSALS_LOGGED_PER_S
                );
            }
            log::info!(
                target: "remit::access",
                "- - {} rid={} (refused before routing: {})",
                status,
                logged_id,
                why
            );
        }
        let mut message = why.to_string();
        if status == 500 {
            message = format!("{} (request id {})", why, id);
        }
        let mut body = format!(
            "{{\"error\":\"{}\",\"code\":\"{}\"",
            json_text(&message),
            code
        );
        if let Some(name) = field {
            body.push_str(&format!(",\"field\":\"{}\"", json_text(name)));
        }
        if status == 500 {
            body.push_str(&format!(",\"requestId\":\"{}\"", json_text(&id)));
        }
        body.push('}');
        let mut response = Response::from_string(body)
            .with_status_code(StatusCode(status))
            .with_connection_close();
        for (name, value) in [
            ("Content-Type", "application/json"),
            ("X-Request-Id", id.as_str()),
            ("X-Content-Type-Options", "nosniff"),
            ("Cache-Control", "no-store"),
        ] {
            if let Ok(header) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response = response.with_header(header);
            }
        }
        let _ = self.write_response(response, &HTTPVersion(1, 1), &[], false);
    }

    /// remit patch: a 400 for a head that cannot be read says why (`invalid_header`), naming
    /// the header but never echoing what was sent.
    fn write_malformed(&mut self, why: &str, header: Option<&str>) {
        // A name is token characters, but may be as long as the head: said by its first 64.
        let cut = header.map(|name| match name.char_indices().nth(64) {
            Some((at, _)) => format!("{}…", &name[..at]),
            None => name.to_string(),
        });
        let header = cut.as_deref();
        let message = match header {
            Some(name) => format!("the {name} header {why}"),
            // A line without a name ("no colon here", ": v") is said as a header line.
            None if why.starts_with("is ") || why.starts_with("has ") => {
                format!("a header line {why}")
            }
            None => why.to_string(),
        };
        self.write_error(400, "invalid_header", &message, header, None);
    }

    fn writer_within(&mut self, deadline: Instant) -> std::io::Result<&mut ConnWriter> {
        match self.writer.as_mut() {
            Some(writer) => {
                writer.get_mut().set_deadline(Some(deadline));
                Ok(writer)
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "the connection was handed over",
            )),
        }
    }
}

/// Reads a request head: at most `head_bytes_max` bytes (request line and header lines, line
/// ends included) and `header_lines_max` header lines. The memory used is bounded by the
/// limit, whatever the client sends.
fn read_head(reader: &mut ConnReader, limits: &Limits) -> Result<Head, HeadError> {
    let mut budget = limits.head_bytes_max;
    let mut line = Vec::new();

    // remit patch: every line of the head ends in CRLF (`read_head_line`); an empty line
    // before the request line, ignored, may end in a bare LF (a stray one after a body).
    let bare_lf = || {
        HeadError::Malformed(
            "a line of the request's head ends in a bare LF, not CRLF",
            None,
        )
    };
    let mut next_line = |line: &mut Vec<u8>, budget: &mut usize| -> Result<bool, HeadError> {
        line.clear();
        let (consumed, crlf) = read_head_line(reader, line, *budget)?;
        *budget -= consumed;
        Ok(crlf)
    };
    // The request line. Empty lines before it are ignored (RFC 9112, 2.2), within the budget.
    loop {
        let crlf = next_line(&mut line, &mut budget)?;
        if !line.is_empty() {
            if !crlf {
                return Err(bare_lf());
            }
            break;
        }
    }
    let (method, path, version) = {
        let line = std::str::from_utf8(&line)
            .map_err(|_| HeadError::Malformed("the request line is not ASCII text", None))?;
        // remit patch: not trimmed: white space before the method or after the version is no
        // request line (RFC 9112, 3: one space between its three parts, nothing around them).
        parse_request_line(line)
            .ok_or(HeadError::Malformed("the request line is not METHOD PATH HTTP/1.1", None))?
    };

    let mut headers: Vec<Header> = Vec::new();
    loop {
        if !next_line(&mut line, &mut budget)? {
            return Err(bare_lf());
        }
        if line.is_empty() {
            break;
        }
        if headers.len() == limits.header_lines_max {
            return Err(HeadError::TooLarge);
        }
        // A line starting with white space (obsolete line folding) is refused (RFC 9112, 5.2),
        // naming the header it would continue (remit patch).
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(match headers.last() {
                Some(folded) => HeadError::Malformed(
                    "is folded onto a line that starts with white space",
                    Some(folded.field.as_str().as_str().to_string()),
                ),
                None => HeadError::Malformed(
                    "a header line is folded (starts with white space)",
                    None,
                ),
            });
        }
        let name = header_name(&line);
        if !line.is_ascii() {
            return Err(HeadError::Malformed("is not ASCII text", name));
        }
        // remit patch: a name of token characters only, and a value without control characters
        // but tab (RFC 9110, 5.1 and 5.5): a proxy in front may read `X\x01Y:` or a value with
        // a NUL, a bare CR or a vertical tab otherwise (and `trim` took `chunked\x0b` as
        // `chunked`).
        let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
        if colon < line.len() && !line[..colon].iter().all(token) {
            return Err(HeadError::Malformed(
                "a header name is not made of token characters",
                None,
            ));
        }
        if line[colon..]
            .iter()
            .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return Err(HeadError::Malformed(
                "has a control character in its value",
                name,
            ));
        }
        let text = std::str::from_utf8(&line)
            .map_err(|_| HeadError::Malformed("is not ASCII text", name.clone()))?;
        let header = Header::from_str(text)
            .map_err(|()| HeadError::Malformed("is not a NAME: VALUE line", name.clone()))?;
        if header.field.as_str().as_str().is_empty() {
            return Err(HeadError::Malformed("has no name", None));
        }
        headers.push(header);
    }

    Ok(Head {
        method,
        path,
        version,
        headers,
    })
}

/// remit patch: the name of a header line, if it has one made of token characters (RFC 9110,
/// 5.1), to say which header is malformed.
fn header_name(line: &[u8]) -> Option<String> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    (!name.is_empty() && name.len() <= 64 && name.iter().all(token))
        .then(|| String::from_utf8_lossy(name).into_owned())
}

/// remit patch: does a client's request id hold what the log must not (a bearer token,
/// `rmt_…` or `rmt-…` in any case, or a phone: a part between `/` made of digits and a phone's
/// separators `+ - . ( )` with seven digits or more, as the application reads one; nine digits
/// or more in a row; or ten digits or more that begin as a Kenyan mobile does, `07`, `01`,
/// `2547`, `2541`, `00254`, among the characters that may join a number's groups in an id,
/// `-_.:+=/@`, as in `0712_345_678` or `+254/712/345/678`)? Such an id is answered as sent, as
/// the application answers it, but not logged (the application logs it masked; until
/// 2026-12-06 both replaced it, and before that it was logged as sent with a refusal made here).
fn holds_a_token_or_a_phone(id: &str) -> bool {
    let lower = id.to_ascii_lowercase();
    if lower.contains("rmt_") || lower.contains("rmt-") {
        return true;
    }
    let phone_part = |part: &str| {
        part.bytes().filter(u8::is_ascii_digit).count() >= 7
            && part
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'(' | b')'))
    };
    if id.split('/').any(phone_part) {
        return true;
    }
    id.split(|c: char| !(c.is_ascii_digit() || "-_.:+=/@".contains(c)))
        .any(|number| {
            let in_a_row = number
                .split(|c: char| !c.is_ascii_digit())
                .any(|run| run.len() >= 9);
            // From each group on (`order-2026-0712-345-678`), as a phone begins.
            let phone_like = number
                .char_indices()
                .filter(|&(at, c)| {
                    c.is_ascii_digit() && !number[..at].ends_with(|d: char| d.is_ascii_digit())
                })
                .any(|(at, _)| {
                    let digits: String =
                        number[at..].chars().filter(char::is_ascii_digit).collect();
                    digits.len() >= 10
                        && ["07", "01", "2547", "2541", "00254"]
                            .iter()
                            .any(|p| digits.starts_with(p))
                });
            in_a_row || phone_like
        })
}

/// remit patch: the `X-Request-Id` of an answer the application never saw: the client's own
/// when it sent one the application would take (1 to 64 of `is_request_id_byte`), else a new
/// one of 16 hex digits, like the application's (unique, not secret).
fn request_id(client_id: Option<&str>) -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if let Some(id) = client_id {
        if !id.is_empty() && id.len() <= 64 && id.bytes().all(is_request_id_byte) {
            return id.to_string();
        }
    }
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    format!("{:016x}", hasher.finish())
}

/// remit patch: a byte a client's `X-Request-Id` may hold: letters, digits and `-_.:+=/@`
/// (UUIDs, trace ids, base64), nothing a log viewer or a page could read as markup.
pub fn is_request_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.:+=/@".contains(&b)
}

/// remit patch: `uri-host [ ":" port ]` (RFC 9112, 3.2; RFC 3986, 3.2.2): a name of unreserved,
/// percent-encoded and sub-delimiter characters, or an address in brackets; the port digits.
fn is_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((address, after)) => {
                // An IPv6 address may name its zone after `%` (RFC 6874: `%25eth0`; Python
                // and Node send `%eth0`).
                let (address, zone) = address.split_once('%').unwrap_or((address, ""));
                let literal = !address.is_empty()
                    && address
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b":.vV".contains(&b))
                    && zone
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b));
                if !literal {
                    return false;
                }
                match after {
                    "" => return true,
                    _ => ("", after.strip_prefix(':')),
                }
            }
            None => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let name_ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b));
    let port_ok = match port {
        None => !host.starts_with('['),
        Some(port) => port.bytes().all(|b| b.is_ascii_digit()),
    };
    name_ok && port_ok
}

/// Text as the inside of a JSON string (the messages above are ASCII without control
/// characters; quotes and backslashes are escaped all the same).
fn json_text(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

/// How the body is delimited, and its declared length. `Err` (400) for what could be read
/// two ways (request smuggling): `Transfer-Encoding` other than exactly `chunked`, both
/// `Transfer-Encoding` and `Content-Length`, `Content-Length`s that differ or that are not a
/// number. remit patch: the `Err` names the header at fault; a length of more digits than a
/// `usize` holds is read as `usize::MAX` (a body too large to take, `413` for the application,
/// not a malformed header).
pub(crate) fn framing(headers: &[Header]) -> Result<(Framing, Option<usize>), &'static str> {
    let mut transfer_encodings = headers
        .iter()
        .filter(|h| h.field.equiv("Transfer-Encoding"));
    let mut content_lengths = headers.iter().filter(|h| h.field.equiv("Content-Length"));

    if let Some(te) = transfer_encodings.next() {
        let chunked = te.value.as_str().trim().eq_ignore_ascii_case("chunked");
        if !chunked || transfer_encodings.next().is_some() || content_lengths.next().is_some() {
            return Err("Transfer-Encoding");
        }
        return Ok((Framing::Chunked, None));
    }

    let mut length = None;
    for cl in content_lengths {
        let value = cl.value.as_str().trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err("Content-Length");
        }
        // Only digits: the one way it cannot be read is by being too large.
        let value: usize = value.parse().unwrap_or(usize::MAX);
        match length {
            Some(previous) if previous != value => return Err("Content-Length"),
            _ => length = Some(value),
        }
    }
    match length {
        Some(n) => Ok((Framing::Length(n as u64), Some(n))),
        None => Ok((Framing::Empty, None)),
    }
}

fn header_value<'a>(headers: &'a [Header], name: &'static str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

/// True when the client will send no request after this one.
fn is_last_request(head: &Head) -> bool {
    // remit patch: every `Connection` line, as one list (RFC 9110, 5.3).
    let lines: Vec<String> = head
        .headers
        .iter()
        .filter(|h| h.field.equiv("Connection"))
        .map(|h| h.value.as_str().to_ascii_lowercase())
        .collect();
    let connection = (!lines.is_empty()).then(|| lines.join(","));
    // remit patch: options are the list's tokens, not text anywhere in it (`closed-x`).
    let has = |v: &str, option: &str| v.split(',').any(|token| token.trim() == option);
    match connection {
        Some(ref v) if has(v, "close") => true,
        Some(ref v) if has(v, "upgrade") => true,
        Some(ref v) if !has(v, "keep-alive") && head.version == HTTPVersion(1, 0) => true,
        None if head.version <= HTTPVersion(1, 0) => true,
        _ => false,
    }
}

/// Parses a "HTTP/1.1" string: `HTTP/` DIGIT `.` DIGIT (RFC 9112, 2.3; remit patch: any
/// such version, so that one above 1.1, `HTTP/1.2` as `HTTP/2.0`, is answered `505`, not
/// taken for a malformed line).
fn parse_http_version(version: &str) -> Option<HTTPVersion> {
    match version.strip_prefix("HTTP/")?.as_bytes() {
        [major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit() => {
            Some(HTTPVersion(major - b'0', minor - b'0'))
        }
        _ => None,
    }
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Option<(Method, String, HTTPVersion)> {
    let mut parts = line.split(' ');

    // remit patch: a method is a token (RFC 9110, 9.1): `GE\rT` or a NUL in it is no method.
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let method = parts
        .next()
        .filter(|w| !w.is_empty() && w.bytes().all(token))
        .and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(parse_http_version);
    // remit patch: nothing after the version, and a target of visible ASCII only (a bare CR,
    // a control character or a raw non-ASCII byte is no request target, RFC 9112 3.2).
    // A `#` begins a fragment, which a client never sends (RFC 9112, 3.2).
    if parts.next().is_some()
        || path.as_deref().is_some_and(|p| {
            p.is_empty() || !p.bytes().all(|b| b.is_ascii_graphic()) || p.contains('#')
        })
    {
        return None;
    }

    method.and_then(|method| Some((method, path?, version?)))
}

#[cfg(test)]
mod test {
    use super::*;

    // remit patch: a client's request id is answered as sent; one holding a token or a phone
    // is not logged.
    #[test]
    fn a_request_id_is_answered_as_sent_and_one_holding_a_token_or_a_phone_is_not_logged() {
        for kept in [
            "abc-123",
            "req-12345678",
            "run-2026-12-06",
            "550e8400-e29b",
            "f47ac10b-58cc-4372-a567-0e02b2c3d479",
            "2026-12-06T10:15:30.123Z",
            "order-2026-000123",
        ] {
            assert_eq!(request_id(Some(kept)), kept);
            assert!(!super::holds_a_token_or_a_phone(kept), "{kept}");
        }
        for replaced in [
            "0712345678",
            "Wanjiru-0712-345-678",
            "RMT_0123456789abcdef",
            "x254712345678",
            "0712.345.678",
            "+254.712.345.678",
            "trace/(0712)345-678",
            "0712_345_678",
            "+254/712/345/678",
            "254:712:345:678",
            "0712@345@678",
            "0712=345=678",
            "rmt-a1b2c3d4e5f6a7b8",
            "order-2026-0712-345-678",
            "v2:0712:345:678",
        ] {
            // Answered as sent when it is an id (an application echoes it too), never logged
            // as sent.
            if replaced.bytes().all(is_request_id_byte) {
                assert_eq!(request_id(Some(replaced)), replaced);
            } else {
                assert_eq!(request_id(Some(replaced)).len(), 16);
            }
            assert!(super::holds_a_token_or_a_phone(replaced), "{replaced}");
        }
    }

    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_none());
        assert!(super::parse_request_line("GET /hello HTTP/1.1 junk").is_none());
        assert!(super::parse_request_line("GET /he\rllo HTTP/1.1").is_none());
        assert!(super::parse_request_line("GET /he\x7fllo HTTP/1.1").is_none());
        assert!(super::parse_request_line("GET /h\u{e9}llo HTTP/1.1").is_none());
        assert!(super::parse_request_line("GET  HTTP/1.1").is_none());
        assert!(super::parse_request_line("GE\rT /hello HTTP/1.1").is_none());
        assert!(super::parse_request_line("GE\0T /hello HTTP/1.1").is_none());
        assert!(super::parse_request_line("G\x7fET /hello HTTP/1.1").is_none());
        assert!(super::parse_request_line("GET /hello HTTP/2").is_none());
        let (_, _, ver) = super::parse_request_line("GET /hello HTTP/1.2").unwrap();
        assert!(ver == crate::common::HTTPVersion(1, 2));
        assert!(super::parse_request_line("GET /h%C3%A9llo?a=b HTTP/1.1").is_some());
        assert!(super::parse_request_line("qsd qsd qsd").is_none());
    }

    fn headers(lines: &[&str]) -> Vec<Header> {
        lines.iter().map(|l| Header::from_str(l).unwrap()).collect()
    }

    #[test]
    fn framing_refuses_ambiguous_bodies() {
        let ok = |lines: &[&str]| framing(&headers(lines));
        assert_eq!(ok(&[]), Ok((Framing::Empty, None)));
        assert_eq!(
            ok(&["Content-Length: 5"]),
            Ok((Framing::Length(5), Some(5)))
        );
        assert_eq!(
            ok(&["Content-Length: 5", "Content-Length: 5"]),
            Ok((Framing::Length(5), Some(5)))
        );
        let huge = "Content-Length: 99999999999999999999999999";
        assert_eq!(
            ok(&[huge]),
            Ok((Framing::Length(usize::MAX as u64), Some(usize::MAX)))
        );
        assert_eq!(
            ok(&["Transfer-Encoding:  Chunked "]),
            Ok((Framing::Chunked, None))
        );
        for bad in [
            &["Content-Length: 5", "Content-Length: 6"][..],
            &["Content-Length: +5"],
            &["Content-Length: 5, 5"],
            &["Content-Length: -1"],
            &["Content-Length: "],
            &["Transfer-Encoding: gzip, chunked"],
            &["Transfer-Encoding: identity"],
            &["Transfer-Encoding: chunked, chunked"],
            &["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
            &["Transfer-Encoding: chunked", "Content-Length: 5"],
        ] {
            assert!(ok(bad).is_err(), "{:?}", bad);
        }
    }
}
