//! The HTTP client of webhook deliveries, guarded against being pointed at the inside of the
//! network: its resolver keeps only the addresses a delivery may connect to
//! (`domain::may_connect`), so the check is made on the address actually connected to, at every
//! new connection, not on the name once at registration. No proxy (a proxy would resolve the
//! name itself), no redirects (a receiver cannot send a delivery elsewhere), a connect timeout
//! and a total timeout.

use crate::domain::may_connect;
use std::io;
use std::time::Duration;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// Resolves like ureq does, then keeps only the addresses webhooks may go to.
#[derive(Debug)]
pub struct GuardResolver {
    inner: DefaultResolver,
    allow_private: bool,
}

impl Resolver for GuardResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let resolved = self.inner.resolve(uri, config, timeout)?;
        let host = uri.host().unwrap_or("");
        let mut kept = self.inner.empty();
        let mut refused = None;
        for addr in resolved.iter().copied() {
            match may_connect(host, addr.ip(), self.allow_private) {
                Ok(()) => kept.push(addr),
                Err(why) => refused = Some(why),
            }
        }
        if kept.is_empty() {
            let why = refused.unwrap_or_else(|| format!("{host} has no address"));
            return Err(ureq::Error::Io(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("refused: {why}"),
            )));
        }
        Ok(kept)
    }
}

/// A client for one endpoint's deliveries: its own connections (kept alive between deliveries),
/// the guard, `timeout` for the whole exchange and `connect_timeout` to connect.
pub fn agent(allow_private: bool, timeout: Duration, connect_timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .timeout_connect(Some(connect_timeout.min(timeout)))
        .max_redirects(0)
        .proxy(None)
        .max_idle_connections_per_host(1)
        .user_agent("remit-webhooks")
        .build();
    ureq::Agent::with_parts(
        config,
        DefaultConnector::new(),
        GuardResolver {
            inner: DefaultResolver::default(),
            allow_private,
        },
    )
}

/// A delivery error in a few words for the attempt's record: never a URL (its path may carry a
/// receiver's secret), never our secret (it is not in any error).
pub fn describe(error: &ureq::Error) -> String {
    let text = match error {
        ureq::Error::Timeout(_) => "no answer in time".to_string(),
        ureq::Error::HostNotFound => "host not found".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::PermissionDenied => e.to_string(),
        // The operating system's words ("failed to lookup address information: Name or
        // service not known", "received corrupt message"): they name no URL.
        ureq::Error::Io(e) => format!("connection: {e}"),
        other => other.to_string(),
    };
    text.chars()
        .take(crate::limits::WEBHOOK_ERROR_BYTES_MAX)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_error_is_told_in_the_system_s_words_and_cut_short() {
        let dns =
            io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(
            describe(&ureq::Error::Io(dns)),
            "connection: failed to lookup address information: Name or service not known"
        );
        let long = io::Error::other("x".repeat(10_000));
        assert!(describe(&ureq::Error::Io(long)).len() <= crate::limits::WEBHOOK_ERROR_BYTES_MAX);
    }
}
