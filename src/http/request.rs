//! A request as the handlers see it: method, path, decoded query, the headers remit reads, the
//! body (read only once the route, and for authenticated routes the caller, are known), and the
//! path parameters of its route.

use super::body::Fields;
use crate::app::App;
use crate::error::{Error, Result};
use crate::limits::{
    BODY_BYTES_MAX, BODY_CHUNK_BYTES, REQUEST_ID_BYTES_MAX, REQUEST_ID_RANDOM_BYTES,
};
use crate::service::Actor;
use std::io::Read;

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
    /// The method's name.
    pub fn as_str(self) -> &'static str {
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
    /// Method (a `HEAD` is a `GET` here: `is_head` says which it was).
    pub method: Method,
    /// Was it a `HEAD` (answered as its `GET`, counted and logged as a `HEAD`)?
    pub is_head: bool,
    /// Path without the query.
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Body bytes (at most `BODY_BYTES_MAX`).
    pub body: Vec<u8>,
    /// `X-Request-Id`, the client's or a new one: what the answer carries.
    pub request_id: String,
    /// The client's id as the log writes it, when that differs (a phone or a token in it
    /// masked, `loggable_request_id`).
    logged_id: Option<String>,
    /// The values of the route's `:params`, in order.
    pub params: Vec<String>,
    /// The address the connection comes from.
    pub peer: Option<std::net::IpAddr>,
    forwarded_for: Option<String>,
    /// A header of `ONCE` the request sent twice.
    pub repeated: Option<&'static str>,
    authorization: Option<String>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    idempotency_key: Option<String>,
    stripe_signature: Option<String>,
    actor: Option<Actor>,
}

fn header(request: &tiny_http::Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_string())
}

/// Every line of a header that is a list (`X-Forwarded-For`), in order, joined with commas:
/// HTTP makes repeated lines of a list field one list, and a proxy may add a line of its own
/// after the client's instead of appending to it (HAProxy's `option forwardfor` does).
fn header_list(request: &tiny_http::Request, name: &'static str) -> Option<String> {
    let values: Vec<&str> = request
        .headers()
        .iter()
        .filter(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// The headers that name one thing, so that a request sending one twice is refused
/// (`RepeatedHeader`) rather than read by its first line or its last (for `Host`, RFC 9112
/// 3.2: a proxy in front may have read the other one).
const ONCE: [&str; 5] = [
    "Host",
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "Stripe-Signature",
];

/// The first of `ONCE` the request repeats.
fn repeated(request: &tiny_http::Request) -> Option<&'static str> {
    ONCE.into_iter().find(|name| {
        request
            .headers()
            .iter()
            .filter(|h| h.field.equiv(name))
            .nth(1)
            .is_some()
    })
}

/// The API roots whose paths `Req::loggable_path` cuts itself (a token's prefix, a webhook's
/// secret), routed or not.
const CUT_BY_LOGGABLE_PATH: [&str; 2] = ["tokens", "webhooks"];

impl Req {
    /// The request's head: everything but the body.
    pub fn head(request: &tiny_http::Request) -> Req {
        let sent = header(request, "X-Request-Id").filter(|id| {
            !id.is_empty()
                && id.len() <= REQUEST_ID_BYTES_MAX
                && id.bytes().all(tiny_http::is_request_id_byte)
        });
        // A client's id that holds a token or what reads as a phone is echoed as sent (the
        // client's to match its answers with) and logged masked, as a path is: a UUID's last
        // group of twelve digits reads as nine in a row (until 2026-12-06 such ids were
        // replaced). One of the server's own, random hex, holds neither, and is logged as
        // given (since 2026-12-07: one in sixteen had nine digits in a row, masked in the log,
        // and the id a client was given to quote was not found there).
        let logged_id = sent
            .as_deref()
            .map(loggable_request_id)
            .filter(|l| Some(l.as_str()) != sent.as_deref());
        let request_id = sent.unwrap_or_else(|| crate::crypto::random_hex(REQUEST_ID_RANDOM_BYTES));
        let method = match request.method() {
            // A HEAD is answered as its GET is, and tiny_http leaves the body out (monitors ask
            // `HEAD /health`).
            tiny_http::Method::Get | tiny_http::Method::Head => Method::Get,
            tiny_http::Method::Post => Method::Post,
            tiny_http::Method::Put => Method::Put,
            tiny_http::Method::Delete => Method::Delete,
            _ => Method::Other,
        };
        let url = origin_form(request.url());
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        // `application/x-www-form-urlencoded`, as browsers send a query: `+` is a space,
        // `%XX` a byte, bytes that are not UTF-8 become U+FFFD.
        let query = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Req {
            method,
            is_head: *request.method() == tiny_http::Method::Head,
            path: path.to_string(),
            query,
            body: Vec::new(),
            params: Vec::new(),
            peer: request.remote_addr().map(|a| a.ip()),
            forwarded_for: header_list(request, "X-Forwarded-For"),
            repeated: repeated(request),
            authorization: header(request, "Authorization"),
            content_type: header(request, "Content-Type"),
            content_encoding: header_list(request, "Content-Encoding"),
            idempotency_key: header(request, "Idempotency-Key"),
            stripe_signature: header(request, "Stripe-Signature"),
            request_id,
            logged_id,
            actor: None,
        }
    }

    /// The request's id as its log lines write it: the client's with a phone or a token in it
    /// masked.
    pub fn logged_request_id(&self) -> &str {
        self.logged_id.as_deref().unwrap_or(&self.request_id)
    }

    /// Authenticates the caller now (before the body is read) and remembers who it is.
    pub fn authenticate(&mut self, app: &App) -> Result<()> {
        let actor = app.auth.authenticate(self.authorization.as_deref())?;
        self.actor = Some(actor);
        Ok(())
    }

    /// Did the caller send an `Authorization` header at all?
    pub fn has_authorization(&self) -> bool {
        self.authorization.is_some()
    }

    /// Was the caller authenticated already (`authenticate`)?
    pub fn is_authenticated(&self) -> bool {
        self.actor.is_some()
    }

    /// The actor `authenticate` found, if it was called and succeeded.
    pub fn authenticated_actor(&self) -> Option<&Actor> {
        self.actor.as_ref()
    }

    /// The authenticated actor, or `Unauthenticated`.
    pub fn actor(&self, app: &App) -> Result<Actor> {
        match &self.actor {
            Some(actor) => Ok(actor.clone()),
            None => app.auth.authenticate(self.authorization.as_deref()),
        }
    }

    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter that, given, must hold something: `?escrowId=` is `400` naming it (an
    /// id of no shape would otherwise be "not found", a filter that was not meant).
    pub fn query_given(&self, name: &str) -> Result<Option<&str>> {
        match self.query(name) {
            Some("") => Err(Error::invalid(
                name,
                "is empty: give it a value, or leave the parameter out",
            )),
            given => Ok(given),
        }
    }

    /// The query as `k=v&…` (decoded), for request fingerprints.
    pub fn query_text(&self) -> String {
        let pairs: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.join("&")
    }

    /// The `i`-th path parameter of the route.
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }

    /// Refuses a body that is not JSON (an empty body is always fine). JSON is UTF-8 (RFC 8259):
    /// a `charset` other than that says the bytes are something else, so it is refused rather
    /// than read as UTF-8 (`é` in Latin-1 is not `é` in UTF-8). Other parameters are ignored.
    pub fn require_json(&self) -> Result<()> {
        if self.body.is_empty() {
            return Ok(());
        }
        self.require_json_type()
    }

    /// Refuses a `Content-Type` that is not JSON, whatever the body (which may not be read
    /// yet: a body on its way is refused by its head).
    pub fn require_json_type(&self) -> Result<()> {
        let is_json = self.content_type.as_deref().is_some_and(|ct| {
            let mut parts = ct.split(';');
            let essence = parts.next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case("application/json")
                && parts.all(|parameter| match parameter.split_once('=') {
                    Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
                        let value = value.trim();
                        let value = value
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .unwrap_or(value);
                        // UTF-8's names (its IANA alias too), and ASCII, of which it is the superset.
                        ["utf-8", "utf8", "csutf8", "us-ascii"]
                            .iter()
                            .any(|name| value.eq_ignore_ascii_case(name))
                    }
                    _ => true,
                })
        });
        // A body said to be compressed (`Content-Encoding: gzip`) is not read as it is: remit
        // takes no coding but `identity` (RFC 9110 §8.4: `415`), and a body that says it is
        // gzip but is plain JSON is not taken either (a proxy before remit would read it
        // otherwise).
        let coded = self.content_encoding.as_deref().is_some_and(|codings| {
            codings
                .split(',')
                .map(str::trim)
                .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity"))
        });
        if is_json && !coded {
            Ok(())
        } else {
            Err(Error::UnsupportedMediaType)
        }
    }

    /// The body as JSON fields (415 unless JSON).
    pub fn fields(&self) -> Result<Fields> {
        self.require_json()?;
        Fields::parse(&self.body)
    }

    /// The client's address: the connection's, or, when that is `trusted_proxy`, the last address
    /// that proxy added to `X-Forwarded-For` (the ones before it could be anything).
    pub fn client_ip(&self, trusted_proxy: Option<std::net::IpAddr>) -> Option<std::net::IpAddr> {
        match (self.peer, trusted_proxy) {
            (Some(peer), Some(proxy)) if peer == proxy => self
                .forwarded_for
                .as_deref()
                .and_then(|list| list.rsplit(',').next())
                .and_then(|last| last.trim().parse().ok()),
            (peer, _) => peer,
        }
    }

    /// The `Idempotency-Key` header.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }

    /// The `Stripe-Signature` header.
    pub fn stripe_signature(&self) -> Option<&str> {
        self.stripe_signature.as_deref()
    }

    /// The path as the access log writes it for a request routed to `template`:
    /// its literal parts, and each of the route's parameters kept only when it has the shape of
    /// one of remit's ids (or, for `:pair`, a currency pair); anything else a client wrote
    /// there (a name typed into `/users/…`) is logged as its template's name (since 2026-12-07:
    /// `GET /users/Amina 404` was logged as written). Tokens and webhook paths are cut by
    /// `loggable_path`, as before.
    pub fn loggable_path_of(&self, template: &str) -> String {
        if !template.starts_with('/') {
            return self.unrouted_loggable_path();
        }
        let root = template[1..].split('/').next().unwrap_or_default();
        if !template.contains("/:") || CUT_BY_LOGGABLE_PATH.contains(&root) {
            return self.loggable_path();
        }
        let Some(values) = super::routes::matches(template, &self.path) else {
            return self.unrouted_loggable_path();
        };
        // A currency pair (`/fx-rates/USD-KES`) is a few letters; any other parameter is an id
        // (a short name such as `/escrows/Amina` is not kept for being short).
        let kept = |part: &str, value: &str| {
            crate::domain::is_id_shaped(value)
                || (part == ":pair"
                    && value.len() <= 8
                    && value.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-'))
        };
        // Rebuilt from the template: an id is logged whole (one whose body has nine digits in a
        // row is no phone).
        let mut values = values.into_iter();
        template
            .split('/')
            .map(|part| {
                if !part.starts_with(':') {
                    return part.to_string();
                }
                match values.next() {
                    Some(value) if kept(part, value) => value.to_string(),
                    _ => part.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// A path no route has, under one of the API's own (`/users/Amina`, `/escrows/x/y`): logged
    /// as that root and `…`, since what follows it may be anything a client typed; any other
    /// (the web UI's files, a scanner's `/wp-login.php`) as `loggable_path` writes it.
    fn unrouted_loggable_path(&self) -> String {
        let routed = self.path.trim_start_matches('/');
        if let Some((root, _)) = routed.split_once('/') {
            let ours = super::routes::ROUTES.iter().any(|r| {
                r.path
                    .strip_prefix('/')
                    .and_then(|p| p.strip_prefix(root))
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            });
            if ours && !CUT_BY_LOGGABLE_PATH.contains(&root) {
                return format!("/{root}/…");
            }
        }
        self.loggable_path()
    }

    /// The path as it may be logged: webhook secrets replaced, control characters escaped (a
    /// raw CR or LF in a path must not start a forged line in the log), and otherwise as the
    /// client wrote it.
    pub fn loggable_path(&self) -> String {
        // Letters and digits written encoded are the same letters and digits (RFC 3986, 6.2.2.2):
        // read as such, so that `/%72mt_…` or `07%3112345678` is masked as its plain form is.
        let path = unreserved_decoded(&self.path);
        // Normalised as the router does (it ignores leading slashes), so `//webhooks/…` is
        // masked too.
        let routed = path.trim_start_matches('/');
        if routed.starts_with("webhooks/payouts/") {
            "/webhooks/payouts/:token".into()
        } else if routed.starts_with("webhooks/mpesa/") {
            "/webhooks/mpesa/:token".into()
        } else if routed.starts_with("webhooks/") && routed != "webhooks/stripe" {
            "/webhooks/…".into()
        } else if let Some(token) = routed.strip_prefix("tokens/") {
            // A whole token may be sent to be revoked: only its prefix is ever logged.
            let prefix: String = token
                .chars()
                .take(crate::service::users::TOKEN_PREFIX_CHARS)
                .collect();
            format!("/tokens/{}", escape_controls(&prefix))
        } else {
            // Logged as written, as it was routed (`/hea%6Cth` is not `/health`: a 404 logged
            // as `/health 404` misled), unless its plain form holds a token or a phone to mask.
            let cut = hex_runs_cut(&tokens_cut(&path)).into_owned();
            let masked = digit_runs_masked(&phones_masked(&cut)).into_owned();
            if masked == path {
                escape_controls(&self.path)
            } else {
                escape_controls(&masked)
            }
        }
    }
}

/// `path` with its percent-encoded unreserved characters (letters, digits, `-`, `.`, `_`, `~`)
/// decoded: the same path (RFC 3986, 6.2.2.2). Nothing else is decoded: no `/` is made (the
/// segments stay as they are) and no control character.
fn unreserved_decoded(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains('%') {
        return path.into();
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let decoded = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if let Some(b) = decoded {
                out.push(char::from(b));
                i += 3;
                continue;
            }
        }
        let c = path[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(c);
        i += c.len_utf8();
    }
    out.into()
}

/// `path` with each segment that reads as a phone number (digits, at least seven, and what
/// separates them in a phone: `+`, `-`, `.`, brackets, an encoded space) masked to its last
/// three digits: a phone typed into a URL by mistake (`/escrows/0712345678`) is personal data
/// the log must not keep. Ids always hold letters, so none is touched.
fn phones_masked(path: &str) -> std::borrow::Cow<'_, str> {
    // What a phone's separators look like encoded: a space, `+`, brackets, `-`, `.`.
    const ENCODED: [&str; 6] = ["%20", "%2B", "%28", "%29", "%2D", "%2E"];
    let unencoded = |segment: &str| {
        ENCODED
            .iter()
            .fold(segment.to_ascii_uppercase(), |s, code| s.replace(code, ""))
    };
    let looks_like_phone = |segment: &str| {
        let bare = unencoded(segment);
        bare.bytes().filter(u8::is_ascii_digit).count() >= 7
            && bare
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'(' | b')'))
    };
    if !path.split('/').any(looks_like_phone) {
        return path.into();
    }
    path.split('/')
        .map(|segment| {
            if !looks_like_phone(segment) {
                return segment.to_string();
            }
            // The segment is ASCII (checked above); an encoded space is kept as it is.
            let digits = unencoded(segment)
                .bytes()
                .filter(u8::is_ascii_digit)
                .count();
            let mut out = String::with_capacity(segment.len());
            let mut seen = 0;
            let mut rest = segment;
            while let Some(c) = rest.chars().next() {
                if rest.starts_with('%') && rest.len() >= 3 {
                    out.push_str(&rest[..3]);
                    rest = &rest[3..];
                    continue;
                }
                if c.is_ascii_digit() {
                    seen += 1;
                }
                out.push(if c.is_ascii_digit() && seen + 3 <= digits {
                    '*'
                } else {
                    c
                });
                rest = &rest[1..];
            }
            out
        })
        .collect::<Vec<_>>()
        .join("/")
        .into()
}

/// `text` with the digits of every run of nine digits or more masked but the last three, and so
/// those of a phone written in groups inside it, however they are joined (`x0799111222`,
/// `Wanjiru-0712-345-678`, `0712_345_678`, `+254/712/345/678`, and `712 345 678` or `07 1234
/// 5678`, which a field's refusal lets be: `domain::NumberRun::phones_loosely`);
/// other numbers, as in ids, dates and UUIDs, are left. An escape (`%20`) is read as the one
/// character it stands for, never as digits.
fn digit_runs_masked(text: &str) -> std::borrow::Cow<'_, str> {
    digit_runs_masked_by(text, true)
}

/// `digit_runs_masked`; with `loose` false, only the shapes a field's refusal takes for a phone
/// (`NumberRun::phones`): a client's request id is echoed unless it holds one so written, and
/// ids such as `trace-123-456-789` are the client's to keep.
fn digit_runs_masked_by(text: &str, loose: bool) -> std::borrow::Cow<'_, str> {
    const RUN: usize = 9;
    let bytes = text.as_bytes();
    if bytes.iter().filter(|b| b.is_ascii_digit()).count() < RUN {
        return text.into();
    }
    // The text as read (each escape one character), and where each of its bytes came from.
    let mut plain = Vec::with_capacity(bytes.len());
    let mut from = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let decoded = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            if let Some(b) = decoded {
                plain.push(if b.is_ascii_digit() || b >= 0x80 {
                    b'x'
                } else {
                    b
                });
                from.push(i);
                i += 3;
                continue;
            }
        }
        plain.push(bytes[i]);
        from.push(i);
        i += 1;
    }
    // Only ASCII bytes were replaced, by ASCII ones.
    let plain = String::from_utf8_lossy(&plain);
    let runs = crate::domain::number_runs(&plain, RUN);
    if runs.is_empty() {
        return text.into();
    }
    let mut masked = bytes.to_vec();
    let mut changed = false;
    for run in runs {
        let long = run.group_spans.iter().filter(|g| g.len() >= RUN).cloned();
        let phones = if loose {
            run.phones_loosely()
        } else {
            run.phones()
        };
        for span in long.chain(phones) {
            let digits: Vec<usize> = span
                .filter(|&at| plain.as_bytes()[at].is_ascii_digit())
                .collect();
            for &at in &digits[..digits.len() - 3] {
                masked[from[at]] = b'*';
                changed = true;
            }
        }
    }
    if !changed {
        return text.into();
    }
    String::from_utf8(masked).unwrap_or_default().into()
}

/// `path` with every run of 24 hexadecimal digits or more cut to its first four and `…`: a
/// secret remit made (a bearer token, a webhook's signing secret, the M-Pesa result URL's
/// token), pasted into a path without its prefix or under a path of its own. Ids hold letters
/// past `f`, so none is touched. (Four, not the eight a token's prefix shows elsewhere: a
/// phone's digits may begin such a run, and are masked only after.)
fn hex_runs_cut(path: &str) -> std::borrow::Cow<'_, str> {
    const RUN: usize = 24;
    const KEEP: usize = 4;
    let bytes = path.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_hexdigit() {
            i += 1;
        }
        if i - start >= RUN {
            let out = out.get_or_insert_with(|| String::with_capacity(path.len()));
            out.push_str(&path[copied..start + KEEP]);
            out.push('…');
            copied = i;
        }
        if i == start {
            i += path[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    match out {
        Some(mut out) => {
            out.push_str(&path[copied..]);
            out.into()
        }
        None => path.into(),
    }
}

/// The client's `X-Request-Id` as it is logged: a token or a phone in it masked as in a path
/// (the log is not the client's to write a secret into).
pub(crate) fn loggable_request_id(id: &str) -> String {
    escape_controls(&digit_runs_masked_by(
        &phones_masked(&tokens_cut(id)),
        false,
    ))
}

/// `path` with any bearer token in it (`rmt_…`, pasted into a URL by mistake, in any case, or
/// with a hyphen) cut to the prefix `user list` shows, as every other place that names a token
/// does.
fn tokens_cut(path: &str) -> std::borrow::Cow<'_, str> {
    const MARK: &str = "rmt_";
    // Where a token's mark begins (an ASCII byte, so a character's boundary).
    let mark = |text: &str| {
        text.as_bytes()
            .windows(MARK.len())
            .position(|w| w[..3].eq_ignore_ascii_case(b"rmt") && matches!(w[3], b'_' | b'-'))
    };
    if mark(path).is_none() {
        return path.into();
    }
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(at) = mark(rest) {
        out.push_str(&rest[..at]);
        let token = &rest[at..];
        let end = token
            .char_indices()
            .skip(MARK.len())
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            .map_or(token.len(), |(i, _)| i);
        let keep = end.min(crate::service::users::TOKEN_PREFIX_CHARS);
        out.push_str(&token[..keep]);
        if end > keep {
            out.push('…');
        }
        rest = &token[end..];
    }
    out.push_str(rest);
    out.into()
}

/// The request target in origin form: an absolute-form target (`http://host/path?q`, which
/// HTTP/1.1 servers must accept, and a proxy may send) is routed, and logged, by its path and
/// query (`/path?q`), so that a token in its path is masked as in any other.
fn origin_form(target: &str) -> std::borrow::Cow<'_, str> {
    let lower = |n: usize| target.get(..n).map(str::to_ascii_lowercase);
    let rest = if lower(7).as_deref() == Some("http://") {
        &target[7..]
    } else if lower(8).as_deref() == Some("https://") {
        &target[8..]
    } else {
        return target.into();
    };
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => rest[i..].into(),
        Some(i) => format!("/{}", &rest[i..]).into(),
        None => "/".into(),
    }
}

/// `text` with every control character written as `\xHH`, and the characters that change how
/// the rest of a line reads (line and paragraph separators, text-direction overrides and
/// isolates) as `\u{HHHH}`: a log line is read by a person, and must read as what it is.
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else if matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
        {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads a body of at most `BODY_BYTES_MAX` bytes (the vendored tiny_http bounds how long it may
/// take: `BODY_DEADLINE_MS` from the end of the head, however it trickles). A larger body is
/// `413` and is not read past the limit.
pub fn read_body(reader: &mut dyn Read) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut chunk = [0u8; BODY_CHUNK_BYTES];
    while body.len() <= BODY_BYTES_MAX {
        let n = match reader.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(Error::BodyTimedOut),
            // The vendored tiny_http's word for a chunked body that is not one (a size that is
            // not hex, a line without CRLF, a trailer line that is no header line).
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(Error::MalformedChunks)
            }
            Err(_) => {
                return Err(Error::InvalidJson {
                    message: "the body could not be read".into(),
                })
            }
        };
        if n == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Err(Error::BodyTooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absolute_target_is_routed_by_its_path() {
        assert_eq!(
            origin_form("http://127.0.0.1:3000/webhooks/payouts/abc?timeout=1"),
            "/webhooks/payouts/abc?timeout=1"
        );
        assert_eq!(origin_form("HTTPS://kiosk.example/health"), "/health");
        assert_eq!(origin_form("http://kiosk.example?x=1"), "/?x=1");
        assert_eq!(origin_form("http://kiosk.example"), "/");
        assert_eq!(origin_form("/escrows?limit=5"), "/escrows?limit=5");
        assert_eq!(origin_form("*"), "*");
    }

    #[test]
    fn control_characters_in_a_logged_path_are_escaped() {
        assert_eq!(
            escape_controls("/a\rINFO forged\n\u{7f}é"),
            "/a\\x0dINFO forged\\x0a\\x7fé"
        );
        // A right-to-left override would make the rest of the line read backwards.
        assert_eq!(
            escape_controls("/a\u{202E}404 live\u{2066}"),
            "/a\\u{202e}404 live\\u{2066}"
        );
    }

    #[test]
    fn a_phone_in_a_logged_path_is_masked_and_ids_are_not() {
        assert_eq!(phones_masked("/escrows/0712345678"), "/escrows/*******678");
        assert_eq!(
            phones_masked("/users/+254712345678/tokens"),
            "/users/+*********678/tokens"
        );
        assert_eq!(phones_masked("/x/0712%20345%20678"), "/x/****%20***%20678");
        assert_eq!(phones_masked("/x/%2b254712345678"), "/x/%2b*********678");
        // Inside other text (not a segment of its own), from nine digits on.
        assert_eq!(
            digit_runs_masked("/escrows/x0799111222"),
            "/escrows/x*******222"
        );
        assert_eq!(
            digit_runs_masked("/Zebedee%200799111222"),
            "/Zebedee%20*******222"
        );
        assert_eq!(
            loggable_request_id("Wanjiru-0712345678"),
            "Wanjiru-*******678"
        );
        assert_eq!(
            loggable_request_id("rmt_0123456789abcdef0123456789abcdef"),
            "rmt_01234567…"
        );
        assert_eq!(loggable_request_id("5f3a9c2e1d"), "5f3a9c2e1d");
        // Whatever joins the groups of a phone (a client's id may hold `-_.:+=/@`).
        for (id, logged) in [
            ("0712_345_678", "****_***_678"),
            ("+254/712/345/678", "+***/***/***/678"),
            ("254:712:345:678", "***:***:***:678"),
            ("0712@345@678", "****@***@678"),
            ("0712=345=678", "****=***=678"),
            ("RMT_0123456789abcdef0123", "RMT_01234567…"),
        ] {
            assert_eq!(loggable_request_id(id), logged);
        }
        for kept in [
            "run-2026-12-06",
            "f47ac10b-58cc-4372-a567-0e02b2c3d479",
            "9b2d5c1e-7f3a-4c8b-a1d2-3e4f5a6b7c8d",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "2026-12-06T10:15:30.123Z",
            "order-2026-000123",
            "job:20261206:1",
            "req:1234:5678",
        ] {
            assert_eq!(loggable_request_id(kept), kept);
        }
        assert_eq!(
            digit_runs_masked("/escrows/x0712-345-678"),
            "/escrows/x****-***-678"
        );
        assert_eq!(
            digit_runs_masked("/escrows/0712~345~678/x"),
            "/escrows/****~***~678/x"
        );
        // Written as a phone may be but a field's refusal does not take for one.
        for (path, logged) in [
            ("/x712%20345%20678", "/x***%20***%20678"),
            ("/x712-345678", "/x***-***678"),
            ("/x07%201234%205678", "/x**%20****%20*678"),
            ("/inv/01/2026/0001", "/inv/**/****/*001"),
            // A phone among other readings is masked whole, never left readable after another
            // reading took its first groups.
            ("/x/100/254/712/345/678", "/x/***/***/***/***/678"),
            ("/x/100/712/345/678", "/x/***/***/***/678"),
            ("/x/0110/254/712/345/678", "/x/****/***/***/***/678"),
        ] {
            assert_eq!(digit_runs_masked(path), logged);
        }
        // A client's request id keeps what only a loose shape reads as a phone.
        for id in ["trace-123-456-789", "job-07-1234-5678"] {
            assert_eq!(loggable_request_id(id), id);
        }
        // An escape's digits are not the number's.
        assert_eq!(digit_runs_masked("/a%20b%20c%201234"), "/a%20b%20c%201234");
        for untouched in [
            "/escrows/esc_01m8862jc5ndbthyz9teyn1fsa",
            "/escrows/1234567a",
            "/escrows/esc_12345678a",
            "/fx-rates/USD-KES",
            "/x/123456",
        ] {
            assert_eq!(phones_masked(untouched), untouched);
        }
    }

    #[test]
    fn a_token_in_a_logged_path_is_cut_to_its_prefix() {
        let token = "rmt_0123456789abcdef0123456789abcdef";
        assert_eq!(
            tokens_cut(&format!("/nothere/{token}/x")),
            "/nothere/rmt_01234567…/x"
        );
        assert_eq!(tokens_cut(&format!("/{token}{token}")), "/rmt_01234567…");
        assert_eq!(tokens_cut("/a/rmt_12"), "/a/rmt_12");
        assert_eq!(
            tokens_cut(&format!("/{}", token.to_uppercase())),
            "/RMT_01234567…"
        );
        assert_eq!(tokens_cut("/x/rmt-0123456789abcdef"), "/x/rmt-01234567…");
        // Without its prefix, or another secret of remit's: a long run of hex digits.
        assert_eq!(
            hex_runs_cut("/escrows/8e92f7115cbf2e08cb91176605b7bab1d1d684ab"),
            "/escrows/8e92…"
        );
        assert_eq!(
            hex_runs_cut("/api/webhooks/payouts/c0ffee1234567890abcdef1234567890/x"),
            "/api/webhooks/payouts/c0ff…/x"
        );
        assert_eq!(
            hex_runs_cut("/whsec_0123456789abcdef0123456789abcdef"),
            "/whsec_0123…"
        );
        assert_eq!(
            hex_runs_cut("/escrows/0712345678abcdef0123456789ab"),
            "/escrows/0712…"
        );
        for kept in ["/escrows/esc_01m8862jc5ndbthyz9teyn1fsa", "/é/abc"] {
            assert_eq!(hex_runs_cut(kept), kept);
        }
        assert_eq!(tokens_cut("/escrows/esc_1"), "/escrows/esc_1");
    }

    #[test]
    fn a_token_or_phone_written_encoded_is_masked_as_its_plain_form() {
        let logged = |path: &str| phones_masked(&tokens_cut(&unreserved_decoded(path))).to_string();
        assert_eq!(
            logged("/escrows/%72mt_0123456789abcdef0123456789abcdef"),
            "/escrows/rmt_01234567…"
        );
        assert_eq!(logged("/escrows/071%32345678"), "/escrows/*******678");
        // Only letters, digits and `-._~`: no slash, no control character is made.
        assert_eq!(
            unreserved_decoded("/a%2Fb%0d%0A%25%7e%41%4"),
            "/a%2Fb%0d%0A%25~A%4"
        );
        assert_eq!(unreserved_decoded("/é%41"), "/éA");
    }
}
