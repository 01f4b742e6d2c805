//! remit patch: the limits a server enforces on every connection, passed explicitly by the
//! application (`Server::from_listener_with_limits`, `Server::new_with_limits`). Upstream
//! tiny_http has none: an endless header line grows memory without bound, a client that
//! trickles its head or its body one byte at a time holds a thread forever, a client that
//! never reads its answers blocks the application's threads, and connections are unbounded.

use std::time::Duration;

/// Limits enforced by the server on every connection.
///
/// Every field must be non-zero; the constructors refuse limits that are not.
/// `Limits::default()` holds the values used by the constructors that take no limits
/// (`Server::http`, `Server::new`, `Server::from_listener`): 1,024 connections, a 16 KiB head
/// of at most 64 header lines within 10 s, and 10 s for the idle wait, the body and each
/// response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once. At the cap, the connection idle the longest (waiting for its
    /// next request, or still receiving a request head) is shut down to admit a new one; when
    /// none is idle, the one blocked the longest writing an answer (its client does not read);
    /// when every connection has a request with the application, the new one is closed at
    /// once.
    pub connections_max: usize,
    /// Bytes of the request line and all header lines together, line ends included. Over it,
    /// `431 Request Header Fields Too Large` is answered and the connection closed. The
    /// memory used to read a head is bounded by this, whatever the client sends.
    pub head_bytes_max: usize,
    /// Header lines of one request. Over it, `431` and the connection is closed.
    pub header_lines_max: usize,
    /// Time to receive a whole head, counted from its first byte. Past it the connection is
    /// closed without an answer; a client that trickles bytes does not extend it.
    pub head_deadline: Duration,
    /// Time a connection may wait for the first byte of its next request (or of its first
    /// one, after it is accepted). Past it the connection is closed without an answer.
    pub idle_timeout: Duration,
    /// Time to receive a whole body, counted from the end of its head. Past it, reading the
    /// body fails with `ErrorKind::TimedOut`; a client that trickles bytes does not extend it.
    pub body_deadline: Duration,
    /// Time to write one whole response (and the interim `100 Continue`). Past it the
    /// connection is closed.
    pub write_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connections_max: 1024,
            head_bytes_max: 16 * 1024,
            header_lines_max: 64,
            head_deadline: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            body_deadline: Duration::from_secs(10),
            write_deadline: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// Refuses limits of zero: they would refuse every connection or time out at once.
    pub(crate) fn check(&self) -> Result<(), String> {
        let zero = if self.connections_max == 0 {
            "connections_max"
        } else if self.head_bytes_max == 0 {
            "head_bytes_max"
        } else if self.header_lines_max == 0 {
            "header_lines_max"
        } else if self.head_deadline.is_zero() {
            "head_deadline"
        } else if self.idle_timeout.is_zero() {
            "idle_timeout"
        } else if self.body_deadline.is_zero() {
            "body_deadline"
        } else if self.write_deadline.is_zero() {
            "write_deadline"
        } else {
            return Ok(());
        };
        Err(format!("tiny_http limits: {} must not be zero", zero))
    }
}
