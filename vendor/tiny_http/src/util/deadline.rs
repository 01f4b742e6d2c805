//! remit patch: reads and writes bounded by a deadline in total, not per call.
//!
//! A socket timeout alone restarts with every read: a client sending one byte every 2 s is
//! never timed out by a 10 s timeout. Here the socket timeout is set to the time remaining
//! before the deadline ahead of every read (or write), so the total is bounded however the
//! bytes trickle in (or out). Past the deadline a call fails with `ErrorKind::TimedOut`.

use std::io::{Error as IoError, ErrorKind, Read, Result as IoResult, Write};
use std::time::{Duration, Instant};

use crate::connection::Connection;
use crate::util::RefinedTcpStream;

fn timed_out(what: &str) -> IoError {
    IoError::new(ErrorKind::TimedOut, what.to_owned())
}

/// The time left before `deadline`, or a `TimedOut` error.
fn remaining(deadline: Instant, what: &str) -> IoResult<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(timed_out(what))
    } else {
        Ok(left)
    }
}

/// A socket timeout expiring reads as `WouldBlock` on Unix and `TimedOut` on Windows.
fn map_timeout<T>(result: IoResult<T>, what: &str) -> IoResult<T> {
    result.map_err(|e| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => timed_out(what),
        _ => e,
    })
}

/// The reading half of a connection; every read ends by `deadline` (when set).
pub(crate) struct DeadlineReader {
    inner: RefinedTcpStream,
    socket: Connection,
    deadline: Option<Instant>,
    timeout_set: bool,
}

impl DeadlineReader {
    pub(crate) fn new(inner: RefinedTcpStream, socket: Connection) -> DeadlineReader {
        DeadlineReader {
            inner,
            socket,
            deadline: None,
            timeout_set: false,
        }
    }

    /// Sets the instant by which every later read must end (`None`: no deadline).
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

impl Read for DeadlineReader {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        match self.deadline {
            Some(deadline) => {
                let left = remaining(deadline, "read deadline passed")?;
                self.socket.set_read_timeout(Some(left))?;
                self.timeout_set = true;
            }
            None if self.timeout_set => {
                self.socket.set_read_timeout(None)?;
                self.timeout_set = false;
            }
            None => {}
        }
        map_timeout(self.inner.read(buf), "read deadline passed")
    }
}

/// The writing half of a connection; every write ends by `deadline` (when set).
pub(crate) struct DeadlineWriter {
    inner: RefinedTcpStream,
    socket: Connection,
    deadline: Option<Instant>,
    timeout_set: bool,
}

impl DeadlineWriter {
    pub(crate) fn new(inner: RefinedTcpStream, socket: Connection) -> DeadlineWriter {
        DeadlineWriter {
            inner,
            socket,
            deadline: None,
            timeout_set: false,
        }
    }

    /// Sets the instant by which every later write must end (`None`: no deadline).
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    fn arm(&mut self) -> IoResult<()> {
        match self.deadline {
            Some(deadline) => {
                let left = remaining(deadline, "write deadline passed")?;
                self.socket.set_write_timeout(Some(left))?;
                self.timeout_set = true;
            }
            None if self.timeout_set => {
                self.socket.set_write_timeout(None)?;
                self.timeout_set = false;
            }
            None => {}
        }
        Ok(())
    }
}

impl DeadlineWriter {
    /// A write past the deadline gives the connection up: it is reset when it closes.
    fn given_up<T>(&self, result: IoResult<T>) -> IoResult<T> {
        let result = map_timeout(result, "write deadline passed");
        if matches!(&result, Err(e) if e.kind() == ErrorKind::TimedOut) {
            self.socket.reset_on_close();
        }
        result
    }
}

impl Write for DeadlineWriter {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        let armed = self.arm();
        self.given_up(armed)?;
        let written = self.inner.write(buf);
        self.given_up(written)
    }

    fn flush(&mut self) -> IoResult<()> {
        let armed = self.arm();
        self.given_up(armed)?;
        let flushed = self.inner.flush();
        self.given_up(flushed)
    }
}
