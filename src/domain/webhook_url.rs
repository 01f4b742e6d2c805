//! Where webhooks may go. A `WebhookUrl` is `https` (plain `http` only to a loopback host), has
//! no credentials in it and is not an address that is never public. Every address a delivery
//! connects to is checked again with `may_connect` (a name's addresses can change after it was
//! registered): private, shared, link-local and unique-local ranges only with
//! `REMIT_WEBHOOK_ALLOW_PRIVATE`; loopback only when the URL names a loopback host itself.

use crate::error::{Error, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an address is, for the webhook guard.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AddressKind {
    /// A public address.
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// Private, shared, link-local, unique-local, site-local or documentation ranges: a network
    /// of one's own, not the internet. The text names which.
    Private(&'static str),
    /// Unspecified, multicast, broadcast or reserved: never a receiver.
    Never(&'static str),
}

fn classify_v4(ip: Ipv4Addr) -> AddressKind {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (127, _, _) => AddressKind::Loopback,
        (0, _, _) => AddressKind::Never("\"this network\" (0.0.0.0/8)"),
        (224..=239, _, _) => AddressKind::Never("multicast"),
        (240..=255, _, _) => AddressKind::Never("reserved or broadcast"),
        // The 6to4 relays' anycast, deprecated (RFC 7526): whoever answers there is no receiver
        // anyone chose.
        (192, 88, 99) => AddressKind::Never("the deprecated 6to4 relay anycast (192.88.99.0/24)"),
        (10, _, _) => AddressKind::Private("private (10.0.0.0/8)"),
        (172, 16..=31, _) => AddressKind::Private("private (172.16.0.0/12)"),
        (192, 168, _) => AddressKind::Private("private (192.168.0.0/16)"),
        (100, 64..=127, _) => AddressKind::Private("shared address space (100.64.0.0/10)"),
        (169, 254, _) => AddressKind::Private("link-local (169.254.0.0/16)"),
        (192, 0, 0) => AddressKind::Private("IETF protocol assignments (192.0.0.0/24)"),
        (198, 18..=19, _) => AddressKind::Private("benchmarking (198.18.0.0/15)"),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressKind::Private("documentation"),
        _ => AddressKind::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressKind {
    let s = ip.segments();
    if ip.is_loopback() {
        return AddressKind::Loopback;
    }
    if ip.is_unspecified() {
        return AddressKind::Never("unspecified");
    }
    // An IPv4 address inside IPv6 is whatever that IPv4 address is: mapped (::ffff:a.b.c.d),
    // compatible (::a.b.c.d), translated (::ffff:0:a.b.c.d, RFC 2765) and NAT64's well-known
    // prefix (64:ff9b::a.b.c.d).
    let v4 = |hi: u16, lo: u16| {
        let ([a, b], [c, d]) = (hi.to_be_bytes(), lo.to_be_bytes());
        Ipv4Addr::new(a, b, c, d)
    };
    let embedded = v4(s[6], s[7]);
    let mapped = s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff;
    let compatible = s[..6] == [0, 0, 0, 0, 0, 0];
    let translated = s[..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0;
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    if mapped || compatible || translated || nat64 {
        return classify_v4(embedded);
    }
    // NAT64's local-use prefix (RFC 8215) carries IPv4 addresses of the operator's own network
    // where its operator chose (/48 to /96): none of it is anyone's public address.
    if s[..3] == [0x64, 0xff9b, 1] {
        return AddressKind::Private("local-use NAT64 (64:ff9b:1::/48)");
    }
    // 6to4 (2002:a.b.c.d::/48) reaches the IPv4 address it carries.
    if s[0] == 0x2002 {
        let carried = classify_v4(v4(s[1], s[2]));
        if carried != AddressKind::Public {
            return carried;
        }
    }
    match s[0] {
        0xff00..=0xffff => AddressKind::Never("multicast"),
        0x0100 if s[1..4] == [0, 0, 0] => AddressKind::Never("discard-only (100::/64)"),
        0xfe80..=0xfebf => AddressKind::Private("link-local (fe80::/10)"),
        0xfec0..=0xfeff => AddressKind::Private("site-local (fec0::/10)"),
        0xfc00..=0xfdff => AddressKind::Private("unique-local (fc00::/7)"),
        0x2001 if s[1] == 0x0db8 => AddressKind::Private("documentation (2001:db8::/32)"),
        0x3fff if s[1] < 0x1000 => AddressKind::Private("documentation (3fff::/20)"),
        // Teredo, ORCHID, benchmarking and the rest of IANA's protocol assignments.
        0x2001 if s[1] < 0x0200 => AddressKind::Private("IETF protocol assignments (2001::/23)"),
        _ => AddressKind::Public,
    }
}

/// What kind of address `ip` is.
pub fn classify(ip: IpAddr) -> AddressKind {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Is `host` (as a URL names it) this machine: `localhost` or a loopback address?
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `https`, or `http` for a loopback host only: the rule for every URL remit calls out to.
pub fn require_secure_scheme(field: &str, scheme: Option<&str>, host: &str) -> Result<()> {
    match scheme {
        Some("https") => Ok(()),
        Some("http") if is_loopback_host(host) => Ok(()),
        _ => Err(Error::invalid(
            field,
            "must be an https URL (http only for a loopback host)",
        )),
    }
}

/// May a delivery to a URL naming `host` connect to `ip`? `Err` says why not.
pub fn may_connect(host: &str, ip: IpAddr, allow_private: bool) -> std::result::Result<(), String> {
    match classify(ip) {
        AddressKind::Public => Ok(()),
        // Never by `allow_private`: a name (or a mapped, shortened or numbered address) that
        // leads here would reach this machine's own services.
        AddressKind::Loopback if is_loopback_host(host) => Ok(()),
        AddressKind::Loopback => Err(format!(
            "{host} resolves to a loopback address ({ip}), and the URL does not name this machine"
        )),
        AddressKind::Private(_) if allow_private => Ok(()),
        AddressKind::Private(what) => Err(format!(
            "{host} resolves to {} {what} address ({ip}); set REMIT_WEBHOOK_ALLOW_PRIVATE=true to allow it",
            article(what)
        )),
        AddressKind::Never(what) => Err(format!(
            "{host} resolves to {} {what} address ({ip})",
            article(what)
        )),
    }
}

/// "a" or "an" before a kind of address, as it is said ("an IETF…", "a unique-local…").
fn article(what: &str) -> &'static str {
    if what.starts_with("unspecified") || what.starts_with("IETF") {
        "an"
    } else {
        "a"
    }
}

/// A `dec-octet` of RFC 3986: 0 to 255, no leading zero.
fn is_dec_octet(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 3
        && text.bytes().all(|b| b.is_ascii_digit())
        && !(text.len() > 1 && text.starts_with('0'))
        && text.parse::<u16>().is_ok_and(|n| n <= 255)
}

/// A port: 1 to 65535, no leading zero.
fn is_port(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0')
        && text.parse::<u32>().is_ok_and(|n| n <= 65_535)
}

/// Characters of a path segment or a query (RFC 3986 `pchar`, `/` and, in a query, `?`), with
/// every `%` followed by two hex digits.
fn is_pchars(text: &str, also: &[u8]) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) || also.contains(&b)) {
            return false;
        }
        i += 1;
    }
    true
}

/// The host of an `https` URL: a name (labels of letters, digits, `-` and `_`, by dots) whose
/// last label is not a number, an IPv4 address as four numbers, or an IPv6 literal in brackets
/// (its characters; whether it parses is checked after).
fn is_https_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    let labels = host.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    labels && (!ends_in_a_number(host) || is_dotted_quad(host))
}

/// Does `host` end in a number (`1.1`, `16843009`, `0x7f.1`)? URLs read such a host as an IPv4
/// address however it is written (WHATWG's URL standard), and TLS takes only four plain numbers
/// as one: any other spelling could never be delivered to, nor is it a name.
fn ends_in_a_number(host: &str) -> bool {
    let last = host.rsplit('.').next().unwrap_or("");
    let hex = last
        .strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    hex || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
}

/// Four `dec-octet`s by dots: an IPv4 address as TLS and RFC 3986 write it.
fn is_dotted_quad(host: &str) -> bool {
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| is_dec_octet(p))
}

/// The host of a plain `http` URL: `localhost`, `127.x.y.z` or `[::1]`.
fn is_http_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") || host == "[::1]" {
        return true;
    }
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4 && parts[0] == "127" && parts[1..].iter().all(|p| is_dec_octet(p))
}

/// Has `text` the shape a webhook URL must have, exactly the `pattern` of `url` in
/// `docs/openapi.json` (`NewWebhookEndpoint`; a test holds the two equal): `https://` (any
/// case) and a host, or `http://` and a loopback host; an optional port; a path and a query of
/// RFC 3986 characters; no user name or password, no fragment.
#[cfg(test)]
pub fn has_url_shape(text: &str) -> bool {
    shape_problem(text).is_none()
}

/// What keeps `text` from the shape `has_url_shape` wants, in words for the caller who sent it
/// (the part that is wrong, not the whole rule again).
fn shape_problem(text: &str) -> Option<&'static str> {
    const SCHEME: &str = "must be an https URL (http only to localhost, 127.x.y.z or [::1])";
    let Some((scheme, rest)) = text.split_once("://") else {
        return Some(SCHEME);
    };
    let https = scheme.eq_ignore_ascii_case("https");
    if !https && !scheme.eq_ignore_ascii_case("http") {
        return Some(SCHEME);
    }
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    if rest.contains('#') {
        return Some("must not carry a fragment (#…)");
    }
    if authority.contains('@') {
        return Some("must not carry a user name or password (the signature authenticates us)");
    }
    let (host, port) = match authority.rfind(']') {
        Some(end) if authority.starts_with('[') => {
            let (host, after) = authority.split_at(end + 1);
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Some("must have a port from 1 to 65535, or none"),
            }
        }
        _ => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if https && !is_https_host(host) {
        if !host.starts_with('[') && ends_in_a_number(host) {
            return Some("must write an IPv4 address as four numbers from 0 to 255 (1.2.3.4), or name its host");
        }
        return Some("must name its host as a domain name or an IP address");
    }
    if !https && !is_http_host(host) {
        return Some("may use http only to localhost, 127.x.y.z (four numbers) or [::1]; any other host must be https");
    }
    if !port.is_none_or(is_port) {
        return Some("must have a port from 1 to 65535, or none");
    }
    let (path, query) = match tail.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (tail, None),
    };
    if !(path.is_empty() || path.starts_with('/'))
        || !is_pchars(path, b"/")
        || !query.is_none_or(|q| is_pchars(q, b"/?"))
    {
        let bytes = tail.as_bytes();
        let bad_escape = bytes.iter().enumerate().any(|(i, &b)| {
            b == b'%'
                && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        });
        return Some(if bad_escape {
            "must have two hex digits after each % in its path and query"
        } else {
            "must have a path and a query of URL characters only (%-encode a space, or a letter outside ASCII)"
        });
    }
    None
}

/// A URL webhooks may be posted to (as checked when it is registered; every connection is
/// checked again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    /// Parses a URL: `https://…`, or `http://…` to a loopback host; a host; no user name or
    /// password; at most `WEBHOOK_URL_BYTES_MAX` bytes; an address literal must be one a
    /// delivery may connect to.
    pub fn parse(field: &str, text: &str, allow_private: bool) -> Result<WebhookUrl> {
        if text.len() > crate::limits::WEBHOOK_URL_BYTES_MAX {
            return Err(Error::invalid(
                field,
                format!(
                    "must be at most {} bytes",
                    crate::limits::WEBHOOK_URL_BYTES_MAX
                ),
            ));
        }
        if let Some(problem) = shape_problem(text) {
            return Err(Error::invalid(field, problem));
        }
        let uri: ureq::http::Uri = text
            .parse()
            .map_err(|_| Error::invalid(field, "is not a URL"))?;
        let authority = uri
            .authority()
            .ok_or_else(|| Error::invalid(field, "must name a host"))?;
        if authority.as_str().contains('@') {
            return Err(Error::invalid(
                field,
                "must not carry a user name or password (the signature authenticates us)",
            ));
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(Error::invalid(field, "must name a host"));
        }
        require_secure_scheme(field, uri.scheme_str(), host)?;
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        // Brackets hold an IPv6 address only: `[1.2.3.4]` is no address.
        let parsed = if host.starts_with('[') {
            literal.parse::<Ipv6Addr>().map(IpAddr::V6).ok()
        } else {
            literal.parse::<IpAddr>().ok()
        };
        match parsed {
            Some(ip) => {
                may_connect(host, ip, allow_private).map_err(|why| Error::invalid(field, why))?
            }
            None if host.starts_with('[') => {
                return Err(Error::invalid(
                    field,
                    "names an IPv6 address in brackets that is not one",
                ))
            }
            None => {}
        }
        Ok(WebhookUrl(text.to_string()))
    }

    /// Refuses a URL whose host resolves now only to addresses a delivery may not connect to
    /// (a name of this machine's, `127.1`, `2130706433`): it would be refused at every
    /// delivery. A host that does not resolve now is let be (a kiosk may be offline; the
    /// receiver's name may come later), and so is one whose lookup takes more than
    /// `WEBHOOK_LOOKUP_MS` (a resolver that does not answer); every connection checks its
    /// addresses again.
    pub fn refuse_unreachable(&self, field: &str, allow_private: bool) -> Result<()> {
        use std::net::ToSocketAddrs;
        let Ok(uri) = self.0.parse::<ureq::http::Uri>() else {
            return Ok(());
        };
        let host = uri.host().unwrap_or("");
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if literal.parse::<IpAddr>().is_ok() {
            return Ok(()); // checked by `parse`
        }
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        // Looked up on a thread of its own, so that a resolver that does not answer holds the
        // request no longer than the bound (the thread ends when the lookup does).
        let (tx, rx) = std::sync::mpsc::channel();
        let name = literal.to_string();
        let looked_up = std::thread::Builder::new()
            .name("remit-lookup".into())
            .spawn(move || {
                let addrs: Vec<_> = (name.as_str(), port)
                    .to_socket_addrs()
                    .map(Iterator::collect)
                    .unwrap_or_default();
                let _ = tx.send(addrs);
            });
        if looked_up.is_err() {
            return Ok(());
        }
        let within = std::time::Duration::from_millis(crate::limits::WEBHOOK_LOOKUP_MS);
        let Ok(addrs) = rx.recv_timeout(within) else {
            return Ok(());
        };
        let mut refused = None;
        for addr in addrs {
            match may_connect(host, addr.ip(), allow_private) {
                Ok(()) => return Ok(()),
                Err(why) => refused = Some(why),
            }
        }
        match refused {
            Some(why) => Err(Error::invalid(field, why)),
            None => Ok(()),
        }
    }

    /// A URL stored earlier (checked when it was registered).
    pub fn from_stored(text: String) -> WebhookUrl {
        WebhookUrl(text)
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its origin, `scheme://host[:port]`: what is kept of it in the clear (its path and query
    /// may hold the receiver's own secret; the whole URL is sealed).
    pub fn origin(&self) -> String {
        self.0
            .parse::<ureq::http::Uri>()
            .ok()
            .and_then(|u| Some(format!("{}://{}", u.scheme_str()?, u.authority()?)))
            .unwrap_or_default()
    }

    /// Its host, as the URL names it (for logs and audit lines: a path may hold a secret).
    pub fn host(&self) -> String {
        self.0
            .parse::<ureq::http::Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_string))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> AddressKind {
        classify(text.parse().unwrap())
    }

    #[test]
    fn private_link_local_and_unique_local_ranges_are_not_public() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "fd00::1",
            "fc12::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "::ffff:0:a00:1",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1:a00:0:100::",
            "2001::1",
            "2001:10::1",
            "2001:1ff::1",
            "3fff::1",
            "2002:a00:1::1",
        ] {
            assert!(matches!(kind(ip), AddressKind::Private(_)), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:0:7f00:1",
        ] {
            assert_eq!(kind(ip), AddressKind::Loopback, "{ip}");
        }
        assert_eq!(kind("2002:7f00:1::1"), AddressKind::Loopback);
        for ip in [
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "192.88.99.1",
            "ff02::1",
            "100::1",
        ] {
            assert!(matches!(kind(ip), AddressKind::Never(_)), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "1.1.1.1",
            "2001:200::1",
            "2002:808:808::1",
            "100:0:0:1::1",
        ] {
            assert_eq!(kind(ip), AddressKind::Public, "{ip}");
        }
    }

    #[test]
    fn loopback_only_when_the_url_names_this_machine() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(may_connect("localhost", lo, false).is_ok());
        assert!(may_connect("127.0.0.1", lo, false).is_ok());
        assert!(may_connect("[::1]", "::1".parse().unwrap(), false).is_ok());
        assert!(may_connect("rebind.example.com", lo, false).is_err());
        // Allowing private addresses never allows this machine by another name.
        assert!(may_connect("rebind.example.com", lo, true).is_err());
        assert!(may_connect("127.1", lo, true).is_err());
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(may_connect("[::ffff:127.0.0.1]", mapped, true).is_err());
        let private: IpAddr = "10.0.0.7".parse().unwrap();
        assert!(may_connect("hooks.example.com", private, false).is_err());
        assert!(may_connect("hooks.example.com", private, true).is_ok());
        assert!(may_connect("hooks.example.com", "0.0.0.0".parse().unwrap(), true).is_err());
    }

    /// A string of URL-ish pieces, from a seeded generator (xorshift).
    fn urlish(seed: &mut u64) -> String {
        const PIECES: &[&str] = &[
            "https://",
            "http://",
            "HTTPS://",
            "hTTp://",
            "ftp://",
            "localhost",
            "LocalHost",
            "127.0.0.1",
            "127.255.0.01",
            "127.0.0.256",
            "[::1]",
            "[fd00::1]",
            "[0::1]",
            "[zz]",
            "[",
            "]",
            ":",
            "80",
            "65535",
            "65536",
            "08",
            "0",
            "/",
            "//",
            "?",
            "#",
            "@",
            "%",
            "%2F",
            "%g1",
            "a",
            "Z9",
            "-",
            "_",
            ".",
            "..",
            "~",
            "!",
            "'",
            " ",
            "é",
            "\"",
            "{",
            "|",
            "user:pw@",
            "example.com",
            "10.0.0.1",
            "::",
            "x=1&y=2",
        ];
        let mut next = || {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed
        };
        let n = 1 + next() % 9;
        let mut out = String::new();
        if next() % 3 > 0 {
            out.push_str(["https://", "http://", "HtTpS://"][(next() % 3) as usize]);
        }
        for _ in 0..n {
            out.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
        }
        out
    }

    /// The `pattern` of `url` in the OpenAPI document, as a validator of strings.
    fn documented_pattern() -> jsonschema::Validator {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
        let url = &doc["components"]["schemas"]["NewWebhookEndpoint"]["properties"]["url"];
        jsonschema::draft202012::new(&serde_json::json!({"pattern": url["pattern"]})).unwrap()
    }

    #[test]
    fn the_documented_pattern_is_the_shape_and_every_url_of_that_shape_is_a_url() {
        let documented = documented_pattern();
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        let mut shaped = 0;
        for _ in 0..50_000 {
            let text = urlish(&mut seed);
            assert_eq!(
                documented.is_valid(&serde_json::json!(text)),
                has_url_shape(&text),
                "docs/openapi.json and has_url_shape disagree on {text:?}"
            );
            if !has_url_shape(&text) {
                continue;
            }
            shaped += 1;
            assert!(
                text.parse::<ureq::http::Uri>().is_ok(),
                "{text:?} has the shape but does not parse"
            );
            if let Err(e) = WebhookUrl::parse("url", &text, true) {
                let why = e.to_string();
                assert!(
                    why.contains("resolves to") || why.contains("IPv6"),
                    "{text:?}: {why}"
                );
            }
        }
        assert!(
            shaped > 1_000,
            "only {shaped} shaped URLs: the generator is off"
        );
        for ok in [
            "https://hooks.example.com",
            "HTTPS://hooks.example.com:8443/a/b%20c?x=1&y=/?z",
            "https://[2606:4700::1111]/hook",
            "http://LOCALHOST/x",
            "http://127.0.0.1:65535",
            "http://[::1]:9/x",
            "https://a_b.example/x@y",
            "https://1.2.3.4/",
            "https://255.0.10.99:8443",
            "https://hooks.1a",
            "https://hooks.01a",
            "https://hooks.0xg1",
            "https://hooks.0_",
            "https://1.hooks",
        ] {
            assert!(has_url_shape(ok), "{ok}");
            assert!(documented.is_valid(&serde_json::json!(ok)), "{ok}");
        }
        for refused in [
            "HTtPs://:[%QUk*!{H7=ToO.S@2O",
            "https://user@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "https://hooks.example.com:0/",
            "https://hooks.example.com:65536/",
            "https://hooks..example.com/",
            "https://hooks.example.com/%zz",
            "https://hooks.example.com/a b",
            "http://127.0.0.01/",
            "http://[0::1]/",
            "http://hooks.example.com/",
            "https://",
            "https://[]/",
            // Hosts that end in a number but are not four numbers (an address no TLS connects to).
            "https://1.1/",
            "https://16843009/",
            "https://0x01010101/",
            "https://0x/",
            "https://hooks.0XfF",
            "https://1.2.3.256/",
            "https://01.2.3.4/",
            "https://1.2.3.4.5/",
            "https://hooks.example.0",
        ] {
            assert!(!has_url_shape(refused), "{refused}");
            assert!(
                !documented.is_valid(&serde_json::json!(refused)),
                "{refused}"
            );
        }
    }

    /// A URL refused for its shape is told the part that is wrong.
    #[test]
    fn a_url_of_the_wrong_shape_is_told_what_is_wrong() {
        for (url, said) in [
            ("ftp://hooks.example.com/", "must be an https URL"),
            ("hooks.example.com/x", "must be an https URL"),
            ("https://user@hooks.example.com/", "user name or password"),
            ("https://hooks.example.com#x", "fragment"),
            (
                "https://hooks..example.com/",
                "domain name or an IP address",
            ),
            ("http://127.1:39410/", "127.x.y.z (four numbers)"),
            ("https://16843009/", "as four numbers from 0 to 255"),
            ("http://hooks.example.com/", "any other host must be https"),
            ("http://127.0.0.1:65536/", "port from 1 to 65535"),
            ("http://127.0.0.1:39410/a b", "%-encode a space"),
            ("http://127.0.0.1:39410/\u{fc}", "letter outside ASCII"),
            (
                "https://hooks.example.com/%zz",
                "two hex digits after each %",
            ),
            ("https://[::1]#x", "fragment"),
            ("https://[::1]@evil.example/", "user name or password"),
        ] {
            let why = WebhookUrl::parse("url", url, false)
                .unwrap_err()
                .to_string();
            assert!(why.contains(said), "{url:?}: {why}");
        }
    }

    #[test]
    fn urls_must_be_https_unless_loopback_and_carry_no_credentials() {
        let ok = |t: &str| WebhookUrl::parse("url", t, false).is_ok();
        assert!(ok("https://hooks.example.com/remit"));
        assert!(ok("http://127.0.0.1:8080/hook"));
        assert!(ok("http://localhost:9/x"));
        assert!(ok("http://[::1]:9/x"));
        assert!(!ok("http://hooks.example.com/remit"));
        assert!(!ok("ftp://hooks.example.com/"));
        assert!(!ok("https://user:pass@hooks.example.com/"));
        assert!(!ok("https://10.0.0.1/hook"));
        assert!(!ok("https://[fd00::1]/hook"));
        assert!(!ok("https://169.254.169.254/latest/meta-data"));
        assert!(!ok("not a url"));
        assert!(!ok("/relative"));
        assert!(!ok("https://[1:2:3]/hook"));
        assert!(WebhookUrl::parse("url", "https://10.0.0.1/hook", true).is_ok());
        assert_eq!(
            WebhookUrl::parse("url", "https://hooks.example.com/secret-path", false)
                .unwrap()
                .host(),
            "hooks.example.com"
        );
    }
}
