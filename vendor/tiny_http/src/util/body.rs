//! remit patch: bounded line reading for request heads and chunk headers, and the reader of a
//! request body.
//!
//! Upstream read a head line byte by byte into a `Vec` that grew with whatever the client
//! sent (300 MiB in, +300 MiB resident), decoded chunked bodies with a decoder whose chunk-size
//! line was just as unbounded, read small bodies eagerly before the application asked for
//! them, and on drop discarded any unread body by reading it to its end.
//!
//! Here a line is read into at most `max` bytes, a body is read only when the application
//! reads it, and a body left unread is never read: the connection is closed instead.

use std::convert::TryFrom;
use std::io::{BufRead, Error as IoError, ErrorKind, Read, Result as IoResult};

/// Longest chunk-size line (size and extensions) accepted in a chunked body.
const CHUNK_LINE_MAX: usize = 4096;

/// Why a line could not be read.
#[derive(Debug)]
pub(crate) enum LineError {
    /// No line end within the allowed bytes.
    TooLong,
    /// The stream ended before the line did.
    Eof,
    Io(IoError),
}

impl From<LineError> for IoError {
    fn from(e: LineError) -> IoError {
        match e {
            LineError::TooLong => IoError::new(ErrorKind::InvalidData, "line too long"),
            LineError::Eof => IoError::new(
                ErrorKind::UnexpectedEof,
                "the connection closed in the middle of a line",
            ),
            LineError::Io(e) => e,
        }
    }
}

/// Appends the next line to `line`, without its `\n` and a `\r` before it, reading at most
/// `max` bytes (line end included). Returns the bytes consumed. Memory used is bounded by
/// `max`, whatever the stream holds.
pub(crate) fn read_line_bounded<R: BufRead + ?Sized>(
    source: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> Result<usize, LineError> {
    let consumed = read_line_raw(source, line, max)?;
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(consumed)
}

/// A line of a request's head, which must end in CRLF (RFC 9112, 2.2) (remit patch): a bare LF
/// ending a header line could hide a framing header (`X-A: b\nTransfer-Encoding: chunked`)
/// from a proxy in front that reads it as part of the value. `Ok(false)` for a bare LF.
pub(crate) fn read_head_line<R: BufRead + ?Sized>(
    source: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> Result<(usize, bool), LineError> {
    let consumed = read_line_raw(source, line, max)?;
    Ok((consumed, line.pop() == Some(b'\r')))
}

/// The same for a line of a chunked body, which must end in CRLF (RFC 9112, 7.1): a bare LF
/// there is read otherwise by some proxies (remit patch).
fn read_crlf_line<R: BufRead + ?Sized>(
    source: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> IoResult<usize> {
    let consumed = read_line_raw(source, line, max)?;
    if line.pop() != Some(b'\r') {
        return Err(bad_chunk("a line does not end in CRLF"));
    }
    Ok(consumed)
}

/// Appends the next line to `line`, without its `\n`, reading at most `max` bytes.
fn read_line_raw<R: BufRead + ?Sized>(
    source: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> Result<usize, LineError> {
    let mut consumed = 0;
    loop {
        let room = max - consumed;
        let (found, used) = {
            let available = match source.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(LineError::Io(e)),
            };
            if available.is_empty() {
                return Err(LineError::Eof);
            }
            let window = &available[..available.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    line.extend_from_slice(&window[..at]);
                    (true, at + 1)
                }
                None if window.len() == room => return Err(LineError::TooLong),
                None => {
                    line.extend_from_slice(window);
                    (false, window.len())
                }
            }
        };
        source.consume(used);
        consumed += used;
        if found {
            return Ok(consumed);
        }
    }
}

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// `Content-Length`: the bytes still to read.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    /// Trailer section: bytes read so far.
    Trailers(usize),
    Done,
}

/// The body of a request, read from the connection only when the application reads it.
pub(crate) struct BodyReader<S> {
    source: S,
    state: State,
    /// Set once a read failed: the body cannot be read any further.
    failed: Option<ErrorKind>,
    /// Bytes allowed for the trailer section of a chunked body.
    trailers_max: usize,
}

impl<S: BufRead> BodyReader<S> {
    pub(crate) fn new(source: S, framing: Framing, trailers_max: usize) -> BodyReader<S> {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
        };
        BodyReader {
            source,
            state,
            failed: None,
            trailers_max,
        }
    }

    /// True when the body has been read to its end (an empty body always has): what follows
    /// on the connection is the next request.
    pub(crate) fn is_complete(&self) -> bool {
        self.state == State::Done && self.failed.is_none()
    }

    /// remit patch: true when the rest of the body is already in `buffered` (the bytes
    /// received and not yet read): reading it to its end will not wait for the network. Known
    /// for a sized body only; a chunked one is known complete only once read.
    pub(crate) fn rest_is_in(&self, buffered: usize) -> bool {
        match self.state {
            State::Done => self.failed.is_none(),
            State::Length(left) => self.failed.is_none() && left <= buffered as u64,
            _ => false,
        }
    }

    pub(crate) fn into_source(self) -> S {
        self.source
    }

    pub(crate) fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    fn read_body(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        loop {
            match self.state {
                State::Done => return Ok(0),
                State::Length(left) => {
                    if buf.is_empty() {
                        return Ok(0);
                    }
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let got = self.source.read(&mut buf[..want])?;
                    if got == 0 {
                        return Err(IoError::new(
                            ErrorKind::UnexpectedEof,
                            "the connection closed before the whole body was received",
                        ));
                    }
                    let left = left - got as u64;
                    self.state = if left == 0 {
                        State::Done
                    } else {
                        State::Length(left)
                    };
                    return Ok(got);
                }
                State::ChunkSize => {
                    let mut line = Vec::new();
                    read_crlf_line(&mut self.source, &mut line, CHUNK_LINE_MAX)?;
                    let size = parse_chunk_size(&line)?;
                    self.state = if size == 0 {
                        State::Trailers(0)
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkData(left) => {
                    if buf.is_empty() {
                        return Ok(0);
                    }
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let got = self.source.read(&mut buf[..want])?;
                    if got == 0 {
                        return Err(IoError::new(
                            ErrorKind::UnexpectedEof,
                            "the connection closed before the whole body was received",
                        ));
                    }
                    let left = left - got as u64;
                    self.state = if left == 0 {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left)
                    };
                    return Ok(got);
                }
                State::ChunkEnd => {
                    let mut line = Vec::new();
                    read_crlf_line(&mut self.source, &mut line, 2)?;
                    if !line.is_empty() {
                        return Err(bad_chunk("no line end after a chunk"));
                    }
                    self.state = State::ChunkSize;
                }
                State::Trailers(used) => {
                    let mut line = Vec::new();
                    let room = self.trailers_max.saturating_sub(used);
                    let n = read_crlf_line(&mut self.source, &mut line, room)?;
                    if !line.is_empty() && !is_field_line(&line) {
                        return Err(bad_chunk("a trailer line is not NAME: VALUE"));
                    }
                    self.state = if line.is_empty() {
                        State::Done
                    } else {
                        State::Trailers(used + n)
                    };
                }
            }
        }
    }
}

impl<S: BufRead> Read for BodyReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        if let Some(kind) = self.failed {
            return Err(IoError::new(kind, "the request body could not be read"));
        }
        match self.read_body(buf) {
            Err(e) if e.kind() != ErrorKind::Interrupted => {
                self.failed = Some(e.kind());
                Err(e)
            }
            other => other,
        }
    }
}

/// remit patch: a trailer line as the head's lines must be (RFC 9112, 7.1.2 and 5): a name of
/// token characters, a colon, a value without control characters but tab; not folded. The
/// trailers are dropped, but a line that is none (a request line, a NUL) is a body another
/// reader of the stream would end elsewhere.
fn is_field_line(line: &[u8]) -> bool {
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    match line.iter().position(|&b| b == b':') {
        Some(colon) => {
            line.is_ascii()
                && colon > 0
                && line[..colon].iter().all(token)
                && line[colon + 1..]
                    .iter()
                    .all(|&b| (b >= 0x20 || b == b'\t') && b != 0x7f)
        }
        None => false,
    }
}

fn bad_chunk(what: &str) -> IoError {
    IoError::new(
        ErrorKind::InvalidData,
        format!("malformed chunked body: {}", what),
    )
}

/// The size of a chunk, from its line: hex digits, then optional extensions after `;`.
fn parse_chunk_size(line: &[u8]) -> IoResult<u64> {
    let size = match line.iter().position(|&b| b == b';') {
        Some(at) => {
            // remit patch: extensions are ignored, but a control character in them (a bare CR,
            // a NUL) is a body that reads otherwise elsewhere.
            if line[at..].iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(bad_chunk("a control character in a chunk extension"));
            }
            // remit patch: blanks only before the `;` (RFC 9112's BWS), never before the size.
            trim_ows_end(&line[..at])
        }
        // remit patch: the size alone is hex digits and nothing else (`1*HEXDIG`): a size with
        // blanks around it is one a stricter reader of the stream refuses, or reads elsewhere.
        None => line,
    };
    if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad_chunk("bad chunk size"));
    }
    let size = std::str::from_utf8(size).map_err(|_| bad_chunk("bad chunk size"))?;
    u64::from_str_radix(size, 16).map_err(|_| bad_chunk("bad chunk size"))
}

fn trim_ows_end(mut bytes: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor};

    fn body(data: &'static [u8], framing: Framing) -> BodyReader<BufReader<&'static [u8]>> {
        BodyReader::new(BufReader::with_capacity(4, data), framing, 64)
    }

    #[test]
    fn a_line_longer_than_allowed_is_refused_without_reading_it_all() {
        let mut source = BufReader::with_capacity(8, Cursor::new(vec![b'a'; 1000]));
        let mut line = Vec::new();
        assert!(matches!(
            read_line_bounded(&mut source, &mut line, 100),
            Err(LineError::TooLong)
        ));
        assert!(line.len() <= 100);
        assert!(source.get_ref().position() <= 108);
    }

    #[test]
    fn lines_end_with_crlf_or_lf() {
        let mut source = BufReader::with_capacity(3, &b"ab\r\ncd\nrest"[..]);
        let mut line = Vec::new();
        assert_eq!(read_line_bounded(&mut source, &mut line, 10).unwrap(), 4);
        assert_eq!(line, b"ab");
        line.clear();
        assert_eq!(read_line_bounded(&mut source, &mut line, 10).unwrap(), 3);
        assert_eq!(line, b"cd");
    }

    #[test]
    fn content_length_stops_at_the_length() {
        let mut b = body(b"helloNEXT", Framing::Length(5));
        let mut out = String::new();
        b.read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello");
        assert!(b.is_complete());
        let mut rest = String::new();
        b.into_source().read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "NEXT");
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let mut b = body(
            b"3 ;x=y\r\nhel\r\nB\r\nlo world!!!\r\n0\r\nA: b\r\n\r\nNEXT",
            Framing::Chunked,
        );
        let mut out = String::new();
        b.read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello world!!!");
        assert!(b.is_complete());
        let mut rest = String::new();
        b.into_source().read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "NEXT");
    }

    #[test]
    fn malformed_chunks_fail_and_stay_failed() {
        for bad in [
            &b"zz\r\nab\r\n0\r\n\r\n"[..],
            b"2\r\nabc\r\n0\r\n\r\n",
            b"+2\r\nab\r\n0\r\n\r\n",
            // The size is hex digits alone: blanks only before an extension's `;`.
            b" 2\r\nab\r\n0\r\n\r\n",
            b"2 \r\nab\r\n0\r\n\r\n",
            b" 2;a\r\nab\r\n0\r\n\r\n",
            b"2\r\nab",
            // A bare LF ends no line of a chunked body; extensions hold no control characters.
            b"2\nab\r\n0\r\n\r\n",
            b"2\r\nab\n0\r\n\r\n",
            b"2\r\nab\r\n0\r\n\n",
            b"2;a\rb\r\nab\r\n0\r\n\r\n",
            b"2;a\x00b\r\nab\r\n0\r\n\r\n",
            // Trailer lines are NAME: VALUE lines, or the body ends elsewhere for a proxy.
            b"2\r\nab\r\n0\r\nGET /health HTTP/1.1\r\n\r\n",
            b"2\r\nab\r\n0\r\nA: b\x00c\r\n\r\n",
            b"2\r\nab\r\n0\r\nA: b\r\n c\r\n\r\n",
            b"2\r\nab\r\n0\r\n: b\r\n\r\n",
            b"2\r\nab\r\n0\r\nA: caf\xc3\xa9\r\n\r\n",
        ] {
            let mut b = BodyReader::new(BufReader::new(bad), Framing::Chunked, 64);
            let mut out = Vec::new();
            assert!(b.read_to_end(&mut out).is_err(), "{:?}", bad);
            assert!(b.read(&mut [0; 4]).is_err());
            assert!(!b.is_complete());
        }
    }

    #[test]
    fn an_early_end_of_a_sized_body_is_an_error() {
        let mut b = body(b"abc", Framing::Length(5));
        let mut out = Vec::new();
        assert_eq!(
            b.read_to_end(&mut out).unwrap_err().kind(),
            ErrorKind::UnexpectedEof
        );
        assert!(!b.is_complete());
    }

    #[test]
    fn an_empty_body_is_complete_at_once() {
        assert!(body(b"GET", Framing::Empty).is_complete());
        assert!(body(b"GET", Framing::Length(0)).is_complete());
        assert!(!body(b"abc", Framing::Length(3)).is_complete());
    }
}
