use std::io::Error as IoError;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};

use std::fmt;
use std::net::SocketAddr;

use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

use crate::client::{ConnReader, Handover, ToConnection};
use crate::util::{BodyReader, Framing};
use crate::{HTTPVersion, Header, Method, Response, StatusCode};

/// Represents an HTTP request made by a client.
///
/// A `Request` object is what is produced by the server, and is your what
/// your code must analyse and answer.
///
/// This object implements the `Send` trait, therefore you can dispatch your requests to
/// worker threads.
///
/// # One request at a time per connection (remit patch)
///
/// The server reads the next request of a connection only once the answer to the previous
/// one has been written: a client that pipelines requests gets them answered one after the
/// other. The answer is written by the connection's own thread: `respond` hands it over and
/// returns at once, so a client that does not read its answers never blocks the caller.
///
/// # The body (remit patch)
///
/// No byte of the body is read before the application reads it through `as_reader` (which
/// also sends `100 Continue` to a client that asked for it). Reading it must end within the
/// server's `Limits::body_deadline` of the end of the head; past it, reads fail with
/// `ErrorKind::TimedOut`.
///
/// If the request is answered before its body has been read to its end (or with
/// `respond_and_close`), the response carries `Connection: close` and the connection is
/// closed after it: the rest of the body is never read.
///
/// # Automatic cleanup
///
/// If a `Request` object is destroyed without `into_writer` or `respond` being called,
/// an empty response with a 500 status code (internal server error) will automatically be
/// sent back to the client, and the connection is closed.
/// This means that if your code fails during the handling of a request, this "internal server
/// error" response will automatically be sent during the stack unwinding.
///
/// # Testing
///
/// If you want to build fake requests to test your server, use [`TestRequest`](crate::test::TestRequest).
pub struct Request {
    // where to read the body from
    data_reader: Body,

    // where the response goes; `None` once the request has been answered
    link: Option<Link>,

    remote_addr: Option<SocketAddr>,

    // true if HTTPS, false if HTTP
    secure: bool,

    method: Method,

    path: String,

    http_version: HTTPVersion,

    headers: Vec<Header>,

    body_length: Option<usize>,

    // true if a `100 Continue` response must be sent when `as_reader()` is called
    must_send_continue: bool,
}

/// remit patch: the body of a request, read from its connection (or, for requests built by
/// `TestRequest`, from any reader).
enum Body {
    Connection(Box<BodyReader<ConnReader>>),
    Detached(BodyReader<Box<dyn BufRead + Send + 'static>>),
    Gone,
}

impl Body {
    fn is_complete(&self) -> bool {
        match self {
            Body::Connection(body) => body.is_complete(),
            Body::Detached(body) => body.is_complete(),
            Body::Gone => false,
        }
    }

    fn limit_wait(&mut self, within: Duration) {
        if let Body::Connection(body) = self {
            let reader = body.source_mut().get_mut();
            let limit = Instant::now() + within;
            let deadline = reader.deadline().map_or(limit, |d| d.min(limit));
            reader.set_deadline(Some(deadline));
        }
    }

    fn is_buffered(&mut self) -> bool {
        match self {
            Body::Connection(body) => {
                let buffered = body.source_mut().buffer().len();
                body.rest_is_in(buffered)
            }
            Body::Detached(_) => true,
            Body::Gone => false,
        }
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Body::Connection(body) => body.read(buf),
            Body::Detached(body) => body.read(buf),
            Body::Gone => Ok(0),
        }
    }
}

/// remit patch: where the response of a request goes.
enum Link {
    /// To the thread of the connection, which writes it.
    Connection(Sender<ToConnection>),
    /// Written in place (requests built by `TestRequest`).
    Writer(Box<dyn Write + Send + 'static>),
}

/// Error that can happen when building a `Request` object.
#[derive(Debug)]
pub enum RequestCreationError {
    /// The client sent an `Expect` header that was not recognized by tiny-http.
    ExpectationFailed,

    /// Error while reading data from the socket during the creation of the `Request`.
    CreationIoError(IoError),

    /// remit patch: `Transfer-Encoding` other than `chunked`, or with `Content-Length`, or
    /// `Content-Length`s that differ or are not a number.
    AmbiguousBody,
}

impl From<IoError> for RequestCreationError {
    fn from(err: IoError) -> RequestCreationError {
        RequestCreationError::CreationIoError(err)
    }
}

/// Builds a new request, whose body is read from `source_data` and whose response is written
/// to `writer` by the thread that responds (used by `TestRequest`).
#[allow(clippy::too_many_arguments)]
pub fn new_request<R, W>(
    secure: bool,
    method: Method,
    path: String,
    version: HTTPVersion,
    headers: Vec<Header>,
    remote_addr: Option<SocketAddr>,
    source_data: R,
    writer: W,
) -> Result<Request, RequestCreationError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let (framing, body_length) =
        crate::client::framing(&headers).map_err(|_| RequestCreationError::AmbiguousBody)?;

    // true if the client sent a `Expect: 100-continue` header
    let expects_continue = {
        match headers
            .iter()
            .find(|h: &&Header| h.field.equiv("Expect"))
            .map(|h| h.value.as_str())
        {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("100-continue") => true,
            _ => return Err(RequestCreationError::ExpectationFailed),
        }
    };

    let source: Box<dyn BufRead + Send + 'static> = Box::new(BufReader::new(source_data));
    let body = BodyReader::new(source, framing, usize::MAX);
    let must_send_continue = expects_continue && !body.is_complete();

    Ok(Request {
        data_reader: Body::Detached(body),
        link: Some(Link::Writer(Box::new(writer))),
        remote_addr,
        secure,
        method,
        path,
        http_version: version,
        headers,
        body_length,
        must_send_continue,
    })
}

/// remit patch: a request read by the thread of its connection, answered through `link`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn from_connection(
    secure: bool,
    method: Method,
    path: String,
    version: HTTPVersion,
    headers: Vec<Header>,
    remote_addr: Option<SocketAddr>,
    body: BodyReader<ConnReader>,
    body_length: Option<usize>,
    must_send_continue: bool,
    link: Sender<ToConnection>,
) -> Request {
    Request {
        data_reader: Body::Connection(Box::new(body)),
        link: Some(Link::Connection(link)),
        remote_addr,
        secure,
        method,
        path,
        http_version: version,
        headers,
        body_length,
        must_send_continue,
    }
}

/// A writer that fails: what `upgrade` returns when the connection could not be upgraded.
struct Closed;

impl Write for Closed {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(IoError::new(
            ErrorKind::BrokenPipe,
            "the connection is closed",
        ))
    }

    fn flush(&mut self) -> io::Result<()> {
        Err(IoError::new(
            ErrorKind::BrokenPipe,
            "the connection is closed",
        ))
    }
}

impl Request {
    /// Returns true if the request was made through HTTPS.
    #[inline]
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Returns the method requested by the client (eg. `GET`, `POST`, etc.).
    #[inline]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Returns the resource requested by the client.
    #[inline]
    pub fn url(&self) -> &str {
        &self.path
    }

    /// Returns a list of all headers sent by the client.
    #[inline]
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Returns the HTTP version of the request.
    #[inline]
    pub fn http_version(&self) -> &HTTPVersion {
        &self.http_version
    }

    /// Returns the length of the body in bytes.
    ///
    /// Returns `None` if the length is unknown.
    #[inline]
    pub fn body_length(&self) -> Option<usize> {
        self.body_length
    }

    /// Returns the address of the client that sent this request.
    ///
    /// The address is always `Some` for TCP listeners, but always `None` for UNIX listeners
    /// (as the remote address of a UNIX client is almost always unnamed).
    ///
    /// Note that this is gathered from the socket. If you receive the request from a proxy,
    /// this function will return the address of the proxy and not the address of the actual
    /// user.
    #[inline]
    pub fn remote_addr(&self) -> Option<&SocketAddr> {
        self.remote_addr.as_ref()
    }

    /// remit patch: true when the body has been read to its end (an empty body always has).
    /// Answering a request whose body is not complete closes the connection.
    pub fn body_is_complete(&self) -> bool {
        self.data_reader.is_complete()
    }

    /// remit patch: true when the rest of the body has already arrived (it is in the
    /// connection's buffer, received with the head): reading it will not wait for the client.
    /// False for a chunked body not yet read, and for one larger than the buffer. Lets the
    /// application tell a body it can take at once from one a slow client may hold a thread on.
    pub fn body_is_buffered(&mut self) -> bool {
        self.data_reader.is_buffered()
    }

    /// remit patch: the rest of the body must arrive within `within` from now (or by the
    /// server's body deadline, if that is sooner); past it, reads fail with
    /// `ErrorKind::TimedOut`. For a client the application will wait for only briefly.
    pub fn limit_body_wait(&mut self, within: Duration) {
        self.data_reader.limit_wait(within);
    }

    /// Sends a response with a `Connection: upgrade` header, then turns the `Request` into a `Stream`.
    ///
    /// The main purpose of this function is to support websockets.
    /// If you detect that the request wants to use some kind of protocol upgrade, you can
    ///  call this function to obtain full control of the socket stream.
    ///
    /// remit patch: the stream has no deadline (the application owns the connection), and the
    /// connection counts as open until the stream is dropped. Unread body bytes, if any, are
    /// the first bytes read from the stream. If the response could not be written, the
    /// stream reads nothing and fails to write.
    pub fn upgrade<R: Read>(
        mut self,
        protocol: &str,
        response: Response<R>,
    ) -> Box<dyn ReadWrite + Send> {
        use crate::util::CustomStream;

        match self.link.take() {
            Some(Link::Connection(link)) => {
                let mut bytes = Vec::new();
                let printed = response.raw_print(
                    &mut bytes,
                    self.http_version.clone(),
                    &self.headers,
                    false,
                    Some(protocol),
                );
                let (reply, handed) = mpsc::channel();
                let handover =
                    if printed.is_ok() && link.send(ToConnection::Upgrade(bytes, reply)).is_ok() {
                        handed.recv().ok().flatten()
                    } else {
                        let _ = link.send(ToConnection::Dropped);
                        None
                    };
                let body = std::mem::replace(&mut self.data_reader, Body::Gone);
                match (handover, body) {
                    (Some(writer), Body::Connection(body)) => {
                        let mut source = body.into_source();
                        source.get_mut().set_deadline(None);
                        Box::new(CustomStream::new(source, writer))
                    }
                    _ => Box::new(CustomStream::new(io::empty(), Closed)),
                }
            }
            Some(Link::Writer(mut writer)) => {
                response
                    .raw_print(
                        writer.by_ref(),
                        self.http_version.clone(),
                        &self.headers,
                        false,
                        Some(protocol),
                    )
                    .ok(); // TODO: unused result

                writer.flush().ok(); // TODO: unused result

                let body = std::mem::replace(&mut self.data_reader, Body::Gone);
                Box::new(CustomStream::new(body, writer))
            }
            None => Box::new(CustomStream::new(io::empty(), Closed)),
        }
    }

    /// Allows to read the body of the request.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # use std::io::Read;
    /// # fn get_content_type(_: &tiny_http::Request) -> &'static str { "" }
    /// # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
    /// let mut request = server.recv().unwrap();
    ///
    /// if get_content_type(&request) == "application/json" {
    ///     let mut content = String::new();
    ///     request.as_reader().read_to_string(&mut content).unwrap();
    /// }
    /// ```
    ///
    /// (remit patch: the example no longer parses JSON with `rustc_serialize`, a
    /// dev-dependency the vendored copy does not have.)
    ///
    /// If the client sent a `Expect: 100-continue` header with the request, calling this
    ///  function will send back a `100 Continue` response.
    ///
    /// remit patch: the body is read from the connection only through this reader, and must
    /// be read within `Limits::body_deadline` of the end of the head; past it, reads fail with
    /// `ErrorKind::TimedOut` (bytes already received may still be returned first). Reads
    /// return `Ok(0)` at the end of the body. A malformed chunked body fails with
    /// `ErrorKind::InvalidData`, a connection closed too early with
    /// `ErrorKind::UnexpectedEof`; after an error every read fails.
    #[inline]
    pub fn as_reader(&mut self) -> &mut dyn Read {
        if self.must_send_continue {
            self.must_send_continue = false;
            match self.link.as_mut() {
                Some(Link::Connection(link)) => {
                    // The interim answer is written by the connection's thread, in order before
                    // the answer; this thread goes on to read the body without waiting for it
                    // (a client that read none of its answers held it for the write deadline).
                    let _ = link.send(ToConnection::Continue);
                }
                Some(Link::Writer(writer)) => {
                    let msg = Response::new_empty(StatusCode(100));
                    msg.raw_print(
                        writer.by_ref(),
                        self.http_version.clone(),
                        &self.headers,
                        true,
                        None,
                    )
                    .ok();
                    writer.flush().ok();
                }
                None => {}
            }
        }

        &mut self.data_reader
    }

    /// Turns the `Request` into a writer.
    ///
    /// The writer has a raw access to the stream to the user.
    /// This function is useful for things like CGI.
    ///
    /// remit patch: what is written must be a whole HTTP response, written within
    /// `Limits::write_deadline`; the connection is closed when the writer is dropped.
    #[inline]
    pub fn into_writer(mut self) -> Box<dyn Write + Send + 'static> {
        match self.link.take() {
            Some(Link::Connection(link)) => {
                let (reply, handed) = mpsc::channel::<Handover>();
                if link.send(ToConnection::IntoWriter(reply)).is_ok() {
                    if let Ok(writer) = handed.recv() {
                        return Box::new(writer);
                    }
                }
                Box::new(Closed)
            }
            Some(Link::Writer(writer)) => writer,
            None => Box::new(Closed),
        }
    }

    /// Sends a response to this request.
    ///
    /// remit patch: the response is handed to the connection's thread, which writes it within
    /// `Limits::write_deadline` (or closes the connection); this returns at once, without
    /// waiting for the client to read it, and returns `Ok(())` even if the client has gone.
    /// If the body has not been read to its end, the response carries `Connection: close` and
    /// the connection is closed after it, without reading the rest of the body.
    #[inline]
    pub fn respond<R>(mut self, response: Response<R>) -> Result<(), IoError>
    where
        R: Read + Send + 'static,
    {
        self.respond_impl(response, false)
    }

    /// remit patch: sends a response, then closes the connection (the response carries
    /// `Connection: close`) without reading any more of the request, its body included.
    /// Returns at once, like `respond`.
    pub fn respond_and_close<R>(mut self, response: Response<R>) -> Result<(), IoError>
    where
        R: Read + Send + 'static,
    {
        self.respond_impl(response, true)
    }

    fn respond_impl<R>(&mut self, response: Response<R>, close: bool) -> Result<(), IoError>
    where
        R: Read + Send + 'static,
    {
        match self.link.take() {
            Some(Link::Connection(link)) => {
                let close = close || !self.data_reader.is_complete();
                let source = match std::mem::replace(&mut self.data_reader, Body::Gone) {
                    Body::Connection(body) => Some(body.into_source()),
                    _ => None,
                };
                // The connection's thread is gone only if it failed: nothing to report.
                let _ = link.send(ToConnection::Respond {
                    response: response.boxed(),
                    close,
                    source,
                });
                Ok(())
            }
            Some(Link::Writer(mut writer)) => {
                let do_not_send_body = self.method == Method::Head;
                let response = if close {
                    response.with_connection_close()
                } else {
                    response
                };
                Self::ignore_client_closing_errors(response.raw_print(
                    writer.by_ref(),
                    self.http_version.clone(),
                    &self.headers,
                    do_not_send_body,
                    None,
                ))?;
                Self::ignore_client_closing_errors(writer.flush())
            }
            None => Ok(()),
        }
    }

    fn ignore_client_closing_errors(result: io::Result<()>) -> io::Result<()> {
        result.or_else(|err| match err.kind() {
            ErrorKind::BrokenPipe => Ok(()),
            ErrorKind::ConnectionAborted => Ok(()),
            ErrorKind::ConnectionRefused => Ok(()),
            ErrorKind::ConnectionReset => Ok(()),
            _ => Err(err),
        })
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> Result<(), fmt::Error> {
        write!(
            formatter,
            "Request({} {} from {:?})",
            self.method, self.path, self.remote_addr
        )
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        match self.link.take() {
            Some(Link::Connection(link)) => {
                // remit patch: answered 500 by the connection's thread, which then closes.
                let _ = link.send(ToConnection::Dropped);
            }
            Some(writer @ Link::Writer(_)) => {
                self.link = Some(writer);
                let response = Response::empty(500);
                let _ = self.respond_impl(response, true); // ignoring any potential error
            }
            None => {}
        }
    }
}

/// Dummy trait that regroups the `Read` and `Write` traits.
///
/// Automatically implemented on all types that implement both `Read` and `Write`.
pub trait ReadWrite: Read + Write {}
impl<T> ReadWrite for T where T: Read + Write {}

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn must_be_send() {
        #![allow(dead_code)]
        fn f<T: Send>(_: &T) {}
        fn bar(rq: &Request) {
            f(rq);
        }
    }
}
