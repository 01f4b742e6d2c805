//! Configuration from the environment (and a `.env` file): every `REMIT_*` variable, checked at
//! start so that a missing or malformed one stops the server with a sentence that names it.

use super::{Config, GatewayKind};
use crate::error::{Error, Result};
use crate::store::Synchronous;
use std::path::PathBuf;

/// A setting's value, without the white space around it (a secret or an address copied with a
/// space, or read from a file written on Windows with its carriage return, means the same
/// without it); none when unset or blank.
fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A yes-or-no setting: `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off` (any case);
/// anything else is refused, an empty value too (a template that left
/// `REMIT_METRICS_PUBLIC=` blank must not get the default, open metrics, without a word).
fn boolean(name: &str) -> Result<Option<bool>> {
    let Ok(value) = std::env::var(name) else {
        return Ok(None);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(Some(true)),
        "0" | "false" | "no" | "off" => Ok(Some(false)),
        "" => Err(Error::invalid(
            name,
            "must be true or false; it is set but empty (unset it for the default)",
        )),
        _ => Err(not_a_choice(
            name,
            value.trim(),
            "true or false (or 1 or 0, yes or no, on or off)",
        )),
    }
}

/// A setting that names one of a few choices: `None` when unset, and an empty value refused
/// (a blank `REMIT_GATEWAY=` in a template must not choose the default, the simulator, without
/// a word).
fn choice(name: &str, choices: &str) -> Result<Option<String>> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(value) if value.trim().is_empty() => Err(Error::invalid(
            name,
            format!("is set but empty: set {choices}, or unset it for the default"),
        )),
        Ok(value) => Ok(Some(value.trim().to_string())),
    }
}

/// A choice setting's value that is none of its choices, said back (these values are words,
/// never secrets): a comment after the value is part of it in an environment file (systemd's
/// `EnvironmentFile`, a `.env`), and the value read says so at once.
fn not_a_choice(name: &str, value: &str, choices: &str) -> Error {
    Error::invalid(
        name,
        format!("must be {choices}, not {value:?}{}", comment_hint(value)),
    )
}

/// What to add to a refusal of `value` when it holds a `#`: in an environment file a comment
/// after a value is part of the value.
pub fn comment_hint(value: &str) -> &'static str {
    if value.contains('#') {
        "; a comment after a value is part of it in an environment file: put comments on lines of their own"
    } else {
        ""
    }
}

fn list(name: &str) -> Vec<String> {
    env(name)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// What a setting of this type takes, in the words of its refusal.
trait Takes {
    const TAKES: &'static str;
    /// What is wrong with `text`, which does not parse, before what the setting takes.
    fn wrong(_text: &str) -> &'static str {
        "it takes"
    }
}

/// What is wrong with a whole number that does not fit its type (`signed`: may it be below 0?).
fn wrong_number(text: &str, signed: bool) -> &'static str {
    use std::num::IntErrorKind;
    match text.trim().parse::<i128>().map_err(|e| *e.kind()) {
        Ok(n) if n < 0 && !signed => "it is below 0; it takes",
        Ok(n) if n < 0 => "too small a number; it takes",
        // `-0`, which an unsigned type does not read.
        Ok(0) => "it takes",
        Ok(_) | Err(IntErrorKind::PosOverflow) => "too large a number; it takes",
        Err(IntErrorKind::NegOverflow) => "too small a number; it takes",
        Err(_) => "it takes",
    }
}

// A u16 is read for `PORT` alone, which refuses 0 (`listen_addr`).
impl Takes for u16 {
    const TAKES: &'static str = "a whole number from 1 to 65535";
    fn wrong(text: &str) -> &'static str {
        wrong_number(text, false)
    }
}

impl Takes for u64 {
    const TAKES: &'static str = "a whole number, 0 or more";
    fn wrong(text: &str) -> &'static str {
        wrong_number(text, false)
    }
}

impl Takes for usize {
    const TAKES: &'static str = "a whole number, 0 or more";
    fn wrong(text: &str) -> &'static str {
        wrong_number(text, false)
    }
}

impl Takes for i64 {
    const TAKES: &'static str = "a whole number";
    fn wrong(text: &str) -> &'static str {
        wrong_number(text, true)
    }
}

impl Takes for std::net::IpAddr {
    const TAKES: &'static str = "an IP address (10.0.0.2, fd00::2)";
}

impl Takes for String {
    const TAKES: &'static str = "text";
}

fn parse_env<T: std::str::FromStr + Takes>(name: &str) -> Result<Option<T>> {
    match env(name) {
        Some(v) => v.trim().parse().map(Some).map_err(|_| {
            // A number that does not fit is a number, just not one this setting can hold.
            let what = T::wrong(&v);
            Error::invalid(
                name,
                format!(
                    "cannot be read ({v:?}): {what} {} (the README's Configuration table says more){}",
                    T::TAKES,
                    comment_hint(&v)
                ),
            )
        }),
        None => Ok(None),
    }
}

/// A whole-number setting within `low..=high` (`unit` said after the range: `" (MiB)"`): unset
/// is `None`; a value that is no such number, or one outside the range, is refused naming the
/// range (a word said "0 or more" for a setting that takes 16 to 16384).
fn ranged<T>(name: &str, low: T, high: T, unit: &str) -> Result<Option<T>>
where
    T: std::str::FromStr + Takes + PartialOrd + std::fmt::Display + Copy,
{
    bounded(
        name,
        format!("a whole number from {low} to {high}{unit}"),
        |n| (low..=high).contains(n),
    )
}

/// A whole-number setting that `holds`, said as `takes` when it cannot be read and when it does
/// not hold.
fn bounded<T>(name: &str, takes: String, holds: impl Fn(&T) -> bool) -> Result<Option<T>>
where
    T: std::str::FromStr + Takes,
{
    let Some(v) = env(name) else { return Ok(None) };
    let n: T = v.trim().parse().map_err(|_| {
        Error::invalid(
            name,
            format!(
                "cannot be read ({v:?}): {} {takes} (the README's Configuration table says more){}",
                T::wrong(&v),
                comment_hint(&v)
            ),
        )
    })?;
    if !holds(&n) {
        return Err(Error::invalid(name, format!("must be {takes}")));
    }
    Ok(Some(n))
}

/// Which settings a command reads, and so checks: a malformed setting of the server (a `PORT`
/// left as a word, an unknown `REMIT_GATEWAY`) stops `remit serve` with its name, but not
/// `remit check` or `remit backup`, which never read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Settings {
    /// The ledger's own: its key, its durability, its log's bound (every command).
    Ledger,
    /// And replication's (`remit replicate`, `remit check --postgres`).
    Replication,
    /// All of them (`remit serve`, `remit daraja ping`).
    Server,
}

/// Builds a command's configuration from the environment over the defaults, reading (and
/// checking) only the settings it uses.
pub fn from_env(db: PathBuf, settings: Settings) -> Result<Config> {
    refuse_settings_not_text()?;
    let mut config = Config::new(db);
    ledger(&mut config)?;
    if settings >= Settings::Replication {
        replication(&mut config)?;
    }
    if settings == Settings::Server {
        server(&mut config)?;
    }
    Ok(config)
}

/// Every `REMIT_*` variable remit reads (README, "Configuration").
const KNOWN_SETTINGS: &[&str] = &[
    "REMIT_ADDR",
    "REMIT_AT_API_KEY",
    "REMIT_AT_SENDER_ID",
    "REMIT_AT_URL",
    "REMIT_AT_USERNAME",
    "REMIT_CALLBACK_ALLOW_IPS",
    "REMIT_DARAJA_B2C_COMMAND",
    "REMIT_DARAJA_CERT",
    "REMIT_DARAJA_CONSUMER_KEY",
    "REMIT_DARAJA_CONSUMER_SECRET",
    "REMIT_DARAJA_INITIATOR",
    "REMIT_DARAJA_INITIATOR_PASSWORD",
    "REMIT_DARAJA_SECURITY_CREDENTIAL",
    "REMIT_DARAJA_SHORTCODE",
    "REMIT_DARAJA_TIMEOUT_S",
    "REMIT_DARAJA_URL",
    "REMIT_DB",
    "REMIT_FLOAT_ALERT_KES",
    "REMIT_FLOAT_CHECK_S",
    "REMIT_GATEWAY",
    "REMIT_MAX_CONNECTIONS",
    "REMIT_MAX_ESCROW_USD",
    "REMIT_MAX_REQUEST_KES",
    "REMIT_METRICS_PUBLIC",
    "REMIT_MPESA_CALLBACK_TOKEN",
    "REMIT_NOTIFICATIONS_KEEP_DAYS",
    "REMIT_PAYOUT_STATUS_AFTER_S",
    "REMIT_PAYOUT_TIMEOUT_S",
    "REMIT_PUBLIC_URL",
    "REMIT_REPLICATE_CA_FILE",
    "REMIT_REPLICATE_TO",
    "REMIT_REQUEST_TTL_H",
    "REMIT_SIM_DELAY_MS",
    "REMIT_SIM_FAIL_ACCOUNTS",
    "REMIT_SIM_TIMEOUT_ACCOUNTS",
    "REMIT_SMS_GATEWAY",
    "REMIT_SMS_LANGUAGE",
    "REMIT_STRIPE_LIVEMODE",
    "REMIT_STRIPE_WEBHOOK_SECRET",
    "REMIT_SYNCHRONOUS",
    "REMIT_TRUSTED_PROXY",
    "REMIT_UI_IDLE_S",
    "REMIT_WAL_MAX_MB",
    "REMIT_WEBHOOK_ALLOW_PRIVATE",
    "REMIT_WORKERS",
];

/// Warns of each `REMIT_*` variable that is no setting of remit's (a misspelt one is ignored,
/// and its default taken without a word: `REMIT_METRICS_PUBILC=0` left the metrics open,
/// `REMIT_GATWAY=daraja` ran the simulator), naming the setting it is nearest to. Its value is
/// never said. Called once the log is set up.
pub fn warn_of_unknown_settings() {
    let mut unknown: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| {
            name.starts_with("REMIT_")
                && !KNOWN_SETTINGS.contains(&name.as_str())
                && !super::NOT_SETTINGS.contains(&name.as_str())
        })
        .collect();
    unknown.sort();
    for name in unknown {
        // `REMIT_ENCRYPTION_KEY`, `REMIT_PORT`: the two settings without the prefix, named
        // with it (a first start would quietly make a key file, or listen on 3000).
        let unprefixed = name
            .strip_prefix("REMIT_")
            .filter(|rest| ["ENCRYPTION_KEY", "PORT"].contains(rest));
        let nearest = KNOWN_SETTINGS
            .iter()
            .map(|known| (edit_distance(&name, known), *known))
            .min()
            .filter(|(distance, _)| *distance <= 3)
            .map(|(_, known)| known);
        let nearest = unprefixed
            .or(nearest)
            .map(|known| format!(": did you mean {known}?"))
            .unwrap_or_default();
        log::warn!("{name} is not a remit setting and is ignored{nearest} (README, \"Configuration\", lists them)");
    }
}

/// How many single-character insertions, deletions or substitutions turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Is this variable one of remit's settings (`REMIT_*`, `ENCRYPTION_KEY`, `PORT`)?
fn is_setting(name: &str) -> bool {
    name.starts_with("REMIT_") || name == "ENCRYPTION_KEY" || name == "PORT"
}

/// A setting read as a path by the command line itself, which takes any bytes a file name may
/// have (`REMIT_DB`, behind `--db`).
fn is_read_as_a_path(name: &str) -> bool {
    name == "REMIT_DB"
}

/// Refuses a setting whose value is not text (bytes that are not UTF-8): read as unset, it
/// would choose the default without a word (a new key file for a mangled `ENCRYPTION_KEY`,
/// open metrics for a mangled `REMIT_METRICS_PUBLIC`). The value is never said back.
fn refuse_settings_not_text() -> Result<()> {
    // The first by name, so that the same environment always names the same one.
    let mangled = std::env::vars_os()
        .filter(|(_, value)| value.to_str().is_none())
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| is_setting(name) && !is_read_as_a_path(name))
        .min();
    match mangled {
        None => Ok(()),
        Some(name) => Err(Error::invalid(
            &name,
            "holds bytes that are not text (UTF-8): set it again as plain text, or unset it for the default",
        )),
    }
}

/// The listen address: the flag, else `REMIT_ADDR`, else `127.0.0.1:$PORT`, else the default;
/// a variable that a flag overrides is not read. (Called after `from_env`, which has refused
/// a setting that is not text.)
pub fn listen_addr(flag: Option<String>) -> Result<String> {
    if let Some(addr) = flag.or_else(|| env("REMIT_ADDR")) {
        return Ok(addr);
    }
    Ok(match parse_env::<u16>("PORT")? {
        // As `--port 0` is refused: a port the system picks is no place a client can find.
        Some(0) => {
            return Err(Error::invalid(
                "PORT",
                format!("is 0: it takes {}", <u16 as Takes>::TAKES),
            ))
        }
        Some(port) => format!("127.0.0.1:{port}"),
        None => Config::new("").addr,
    })
}

/// The HTTP worker threads: the flag, else `REMIT_WORKERS`, else the default.
pub fn workers(flag: Option<usize>) -> Result<usize> {
    let max = crate::limits::HTTP_WORKERS_MAX;
    let n = match flag {
        Some(n) => n,
        None => match ranged::<usize>("REMIT_WORKERS", 1, max, "")? {
            Some(n) => n,
            None => return Ok(crate::limits::HTTP_WORKERS_DEFAULT),
        },
    };
    if !(1..=max).contains(&n) {
        return Err(Error::invalid(
            "REMIT_WORKERS",
            format!("must be from 1 to {max}"),
        ));
    }
    Ok(n)
}

fn ledger(config: &mut Config) -> Result<()> {
    // Set but blank is not "no key": a template's blank `ENCRYPTION_KEY=` would have a first
    // start make a key file beside the database, on the disk its backups are copied from.
    if std::env::var("ENCRYPTION_KEY").is_ok_and(|v| v.trim().is_empty()) {
        return Err(Error::invalid(
            "ENCRYPTION_KEY",
            "is set but empty: set the ledger's key (64 hex characters), or unset it to use the key file beside the database",
        ));
    }
    config.key_hex = env("ENCRYPTION_KEY");
    // Refused here, before a first start makes the database file it would leave empty. Never
    // said back (a secret), but a comment after it is named as the cause.
    if let Some(hex) = &config.key_hex {
        crate::crypto::MasterKey::from_hex(hex).map_err(|e| match comment_hint(hex) {
            "" => e,
            hint => Error::invalid(
                "ENCRYPTION_KEY",
                format!("must be 64 hex characters (32 bytes){hint}"),
            ),
        })?;
    }
    config.synchronous = match choice("REMIT_SYNCHRONOUS", "full or normal")?
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("full") => Synchronous::Full,
        Some("normal") => Synchronous::Normal,
        Some(other) => return Err(not_a_choice("REMIT_SYNCHRONOUS", other, "full or normal")),
    };
    let (low, high) = crate::limits::WAL_MAX_MIB_RANGE;
    if let Some(mib) = ranged::<u64>("REMIT_WAL_MAX_MB", low, high, " (MiB)")? {
        config.wal_max_mib = mib;
    }
    Ok(())
}

fn replication(config: &mut Config) -> Result<()> {
    config.replicate_ca_file = env("REMIT_REPLICATE_CA_FILE").map(PathBuf::from);
    if let Some(url) = env("REMIT_REPLICATE_TO") {
        config.replicate_to = Some(crate::replicate::Target::parse(
            "REMIT_REPLICATE_TO",
            &url,
            config.replicate_ca_file.as_deref(),
        )?);
    }
    Ok(())
}

/// The server's settings but its address and workers, which a flag may override
/// (`listen_addr`, `workers`).
fn server(config: &mut Config) -> Result<()> {
    config.stripe_webhook_secret = env("REMIT_STRIPE_WEBHOOK_SECRET");
    config.mpesa_callback_token = env("REMIT_MPESA_CALLBACK_TOKEN");
    if let Some(token) = &config.mpesa_callback_token {
        if token.len() < 32
            || !token
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(Error::invalid(
                "REMIT_MPESA_CALLBACK_TOKEN",
                "must be at least 32 lowercase hex characters",
            ));
        }
        // The token is the only proof a result comes from M-Pesa: one typed by hand (all zeros,
        // `abab…`) is guessed. 32 random hex characters have 14 different ones
        // on average; fewer than 8 happens about once in 28 million.
        let mut seen = [false; 256];
        token.bytes().for_each(|b| seen[usize::from(b)] = true);
        if seen.iter().filter(|s| **s).count() < 8 {
            return Err(Error::invalid(
                "REMIT_MPESA_CALLBACK_TOKEN",
                "is not random (fewer than 8 different characters): make one with `openssl rand -hex 16`",
            ));
        }
    }
    // Every Daraja and Africa's Talking setting that is given is checked whoever pays, so a
    // mistake shows at this start, not on the day real money is switched on.
    let daraja_settings = DarajaSettings::read()?;
    let at_url = optional_secure_url("REMIT_AT_URL")?;
    config.gateway = match choice("REMIT_GATEWAY", "simulator, daraja or none")?.as_deref() {
        None | Some("simulator") => GatewayKind::Simulator,
        Some("daraja") => {
            if config.mpesa_callback_token.is_none() {
                // A token made up at each start would orphan the results of payouts in flight.
                return Err(required("REMIT_MPESA_CALLBACK_TOKEN"));
            }
            GatewayKind::Daraja(Box::new(daraja(daraja_settings)?))
        }
        Some("none") => GatewayKind::None,
        Some(other) => {
            return Err(not_a_choice(
                "REMIT_GATEWAY",
                other,
                "simulator, daraja or none",
            ))
        }
    };
    // The range said whether the value cannot be read or is outside it (a word was told "0 or
    // more", and 0 then refused).
    // Every time setting has a top: a time added to the clock must not overflow (a query due in
    // the past was asked again at once, forever).
    let most = crate::limits::PAYOUT_STATUS_AFTER_S_MAX;
    if let Some(s) = ranged::<i64>("REMIT_PAYOUT_STATUS_AFTER_S", 1, most, " seconds")? {
        config.payout_status_after_s = s;
    }
    let most = crate::limits::FLOAT_CHECK_S_MAX;
    if let Some(s) = ranged::<u64>("REMIT_FLOAT_CHECK_S", 60, most, " seconds")? {
        config.float_check_s = s;
    }
    if let Some(v) = env("REMIT_FLOAT_ALERT_KES") {
        if v.trim().starts_with('-') {
            return Err(Error::invalid(
                "REMIT_FLOAT_ALERT_KES",
                "must be 0 (no alert) or more shillings",
            ));
        }
        let cents = crate::money::parse_major("REMIT_FLOAT_ALERT_KES", v.trim(), 2)?;
        config.float_alert = crate::money::KesCents::new(cents).unwrap_or_default();
    }
    // Unset, any address may post results (the path token still guards them); a blank value
    // is no list at all, and says nothing of which was meant.
    choice(
        "REMIT_CALLBACK_ALLOW_IPS",
        "the addresses or CIDR networks that may post M-Pesa results",
    )?;
    config.callback_allow = list("REMIT_CALLBACK_ALLOW_IPS")
        .iter()
        .map(|cidr| {
            cidr.parse::<ipnet::IpNet>()
                .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    Error::invalid(
                        "REMIT_CALLBACK_ALLOW_IPS",
                        format!("{cidr:?} is not an address or a CIDR network"),
                    )
                })
        })
        .collect::<Result<_>>()?;
    config.trusted_proxy = parse_env::<std::net::IpAddr>("REMIT_TRUSTED_PROXY")?;
    if let Some(s) = ranged::<u64>(
        "REMIT_UI_IDLE_S",
        0,
        crate::limits::UI_IDLE_S_MAX,
        " seconds (0: never)",
    )? {
        config.ui_idle_s = s;
    }
    let most = crate::limits::SIM_DELAY_MS_MAX;
    if let Some(ms) = ranged::<u64>("REMIT_SIM_DELAY_MS", 0, most, " milliseconds")? {
        config.sim_delay_ms = ms;
    }
    config.sim_fail_accounts = list("REMIT_SIM_FAIL_ACCOUNTS");
    config.sim_timeout_accounts = list("REMIT_SIM_TIMEOUT_ACCOUNTS");
    let most = crate::limits::PAYOUT_TIMEOUT_S_MAX;
    if let Some(s) = ranged::<i64>("REMIT_PAYOUT_TIMEOUT_S", 1, most, " seconds")? {
        config.payout_timeout_s = s;
    }
    let most = crate::limits::CONNECTIONS_MAX_LIMIT;
    let least = crate::limits::CONNECTIONS_MAX_LEAST;
    if let Some(n) = ranged::<usize>("REMIT_MAX_CONNECTIONS", least, most, "")? {
        config.connections_max = n;
    }
    // Read as a signed number, so that -1 hears the range too.
    let most = crate::limits::REQUEST_TTL_H_MAX;
    if let Some(hours) = ranged::<i64>("REMIT_REQUEST_TTL_H", 1, most, " (hours)")? {
        config.request_ttl_s = hours * 3600;
    }
    if let Some(live) = boolean("REMIT_STRIPE_LIVEMODE")? {
        config.stripe_livemode = live;
    }
    // A value that is not a yes or a no is refused rather than read as "public": `off` must
    // never leave the metrics open.
    if let Some(public) = boolean("REMIT_METRICS_PUBLIC")? {
        config.metrics_public = public;
    }
    if let Some(allow) = boolean("REMIT_WEBHOOK_ALLOW_PRIVATE")? {
        config.notify.webhook_allow_private = allow;
    }
    // Read as a signed number, so that -1 hears the range too.
    let max = crate::limits::NOTIFICATIONS_KEEP_DAYS_MAX;
    if let Some(days) = ranged::<u64>("REMIT_NOTIFICATIONS_KEEP_DAYS", 1, max, " days")? {
        config.notify.keep_for = std::time::Duration::from_secs(days * 86_400);
    }
    config.notify.sms = match choice("REMIT_SMS_GATEWAY", "log or africastalking")?.as_deref() {
        None | Some("log") => super::SmsGatewayKind::Log,
        Some("africastalking") => {
            super::SmsGatewayKind::AfricasTalking(Box::new(africastalking(at_url)?))
        }
        Some(other) => {
            return Err(not_a_choice(
                "REMIT_SMS_GATEWAY",
                other,
                "log or africastalking",
            ))
        }
    };
    config.notify.recipient_language = match choice("REMIT_SMS_LANGUAGE", "en or sw")?.as_deref() {
        None | Some("en") => crate::domain::Language::En,
        Some("sw") => crate::domain::Language::Sw,
        Some(other) => return Err(not_a_choice("REMIT_SMS_LANGUAGE", other, "en or sw")),
    };
    if let Some(cents) = amount_limit("REMIT_MAX_ESCROW_USD")? {
        config.escrow_total_max =
            crate::money::UsdCents::new(cents).unwrap_or(config.escrow_total_max);
    }
    if let Some(cents) = amount_limit("REMIT_MAX_REQUEST_KES")? {
        config.request_kes_max =
            crate::money::KesCents::new(cents).unwrap_or(config.request_kes_max);
    }
    Ok(())
}

/// An amount limit in major units, in cents: above zero (a limit of 0 would refuse every
/// escrow or request) and at most `AMOUNT_LIMIT_MAJOR_MAX` (so no sum of amounts nears i64).
fn amount_limit(name: &str) -> Result<Option<i64>> {
    let Some(text) = parse_env::<String>(name)? else {
        return Ok(None);
    };
    let cents = crate::money::parse_major(name, &text, 2)?;
    let max = crate::limits::AMOUNT_LIMIT_MAJOR_MAX;
    if cents == 0 || cents > max * 100 {
        return Err(Error::invalid(
            name,
            format!("must be greater than 0 and at most {max}"),
        ));
    }
    Ok(Some(cents))
}

/// Whether dotenv would replace a `$` in this value (what follows `KEY=`): not in single quotes,
/// not escaped (`\$`), not in a comment after an unquoted value (` # costs $5`).
fn substituted(value: &str) -> bool {
    if value.starts_with('\'') {
        return false;
    }
    let (text, quoted) = match value.strip_prefix('"') {
        Some(rest) => (rest, true),
        None => (value.split(" #").next().unwrap_or(value), false),
    };
    let mut escaped = false;
    for c in text.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' if quoted => return false,
            '$' => return true,
            _ => {}
        }
    }
    false
}

/// Did the `.env` file read hold a secret (a key, a password, a token, a database URL)?
static DOTENV_HOLDS_SECRETS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Warns, once logging is set up, when the `.env` file read holds secrets and other users of
/// the machine can read it.
pub fn warn_if_dotenv_readable(path: &std::path::Path) {
    if DOTENV_HOLDS_SECRETS.load(std::sync::atomic::Ordering::Relaxed) {
        crate::crypto::warn_if_others_can_read(
            path,
            ".env file",
            "it holds secrets (the encryption key, credentials or tokens) that anyone who reads it can use",
        );
    }
}

/// Whether this user can see that `path` is there, though it may not read it: the name itself
/// (a link into a directory it may not enter is seen), or its directory's list of names (one
/// it may list but not search). A `.env` seen is refused when it cannot be read.
fn seen_there(path: &std::path::Path) -> bool {
    if std::fs::symlink_metadata(path).is_ok() {
        return true;
    }
    std::fs::read_dir(crate::paths::parent_dir(path)).is_ok_and(|mut names| {
        names.any(|n| n.is_ok_and(|n| Some(n.file_name().as_os_str()) == path.file_name()))
    })
}

/// Reads a `.env` file's `KEY=VALUE` lines into the environment (with `dotenvy`, dotenv's
/// rules: quotes, `export`, comments, `$VAR` in unquoted and double-quoted values), never
/// overriding a variable that is already set (as the Fastify edition's dotenv did). No file is
/// nothing to read. A file that cannot be read, or a line that is not a setting, is a sentence
/// naming the line by its number, never its text (it may hold a secret): a mistyped line
/// skipped would run the server on a default nobody chose (`REMIT_GATEWAY daraja` would leave
/// the simulator "paying").
pub fn load_dotenv(path: &std::path::Path) -> std::result::Result<(), String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // A working directory this user may not search (a command run as the service's user
        // from root's home, or by cron from it): whether a `.env` is there cannot be known,
        // and none this user could read is. Every such command stopped with "cannot be read"
        // of a file that was not there.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && !seen_there(path) => {
            return Ok(())
        }
        Err(e) => {
            return Err(format!(
                "{} cannot be read ({e}); fix it or move it away",
                path.display(),
            ))
        }
    };
    // An editor's UTF-8 signature (Notepad's): dotenv reads it as part of the first name, and
    // said "line 1 is not a setting" of a line that looks right.
    if text.starts_with('\u{feff}') {
        return Err(format!(
            "{} begins with a byte order mark (an editor's invisible UTF-8 signature), which would be read as part of the first setting's name: save it as UTF-8 without one",
            path.display()
        ));
    }
    // Said once the log is up (`warn_if_dotenv_readable`).
    DOTENV_HOLDS_SECRETS.store(
        text.lines().any(|l| {
            let key = l
                .trim()
                .trim_start_matches("export ")
                .split('=')
                .next()
                .unwrap_or("");
            ["KEY", "SECRET", "PASSWORD", "TOKEN", "CREDENTIAL"]
                .iter()
                .any(|s| key.trim().ends_with(s))
                || key.trim().starts_with("REMIT_REPLICATE_TO")
        }),
        std::sync::atomic::Ordering::Relaxed,
    );
    // dotenv replaces `$NAME` in a value not in single quotes by another setting's value: a
    // password or a database URL holding `$` would change without a word (remit's own reader
    // kept it as written until 2026-12-05). Refused, naming the line, with the way to keep it.
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.starts_with('#') {
            continue;
        }
        if let Some((_, value)) = line.split_once('=') {
            if substituted(value.trim_start()) {
                return Err(format!(
                    "{}: line {} has a $ in its value, which dotenv's rules replace by another setting's value: put the value in single quotes ('…') to keep it as written",
                    path.display(),
                    i + 1
                ));
            }
        }
    }
    // A setting given twice: the shell that sources the file (`set -a; . ./.env`) takes the
    // last, dotenv the first. Refused, naming both lines, rather than either guessed.
    // The keys as dotenv reads them (a quoted value may span lines, and a line of a
    // certificate's base64 may hold a `=`), then the lines that set the one given twice.
    let mut seen = std::collections::HashSet::new();
    // Only remit's own: a `.env` shared with another program is its business beyond them.
    for (key, _) in dotenvy::from_read_iter(text.as_bytes()).flatten() {
        if is_setting(&key) && !seen.insert(key.clone()) {
            let lines: Vec<String> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| {
                    let l = l.trim_start();
                    let l = l.strip_prefix("export ").unwrap_or(l).trim_start();
                    l.strip_prefix(key.as_str())
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                })
                .map(|(i, _)| (i + 1).to_string())
                .collect();
            return Err(format!(
                "{}: {key} is set twice (lines {}), and the programs that read such a file disagree on which counts (a shell the last, remit the first): keep one",
                path.display(),
                lines.join(" and ")
            ));
        }
    }
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((key, value)) => {
                if std::env::var_os(&key).is_none() {
                    std::env::set_var(key, value);
                }
            }
            Err(dotenvy::Error::LineParse(line, _)) => {
                let first = line.lines().next().unwrap_or("");
                // dotenvy gives the line it could not read without a comment after it, or, for
                // a value it could not read, the value alone.
                let number = text
                    .lines()
                    .position(|l| {
                        l.strip_prefix(first)
                            .is_some_and(|rest| rest.is_empty() || rest.starts_with('#'))
                    })
                    .or_else(|| {
                        let first = first.trim();
                        (!first.is_empty())
                            .then(|| text.lines().position(|l| l.contains(first)))
                            .flatten()
                    })
                    .map_or_else(String::new, |i| format!(" {}", i + 1));
                return Err(format!(
                    "{}: line{number} is not a setting (KEY=VALUE, a comment after #, or blank; quote a value with spaces, and use single quotes for one holding $ or \\)",
                    path.display()
                ));
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Ok(())
}

fn required(name: &str) -> Error {
    Error::invalid(name, "is required when REMIT_GATEWAY=daraja")
}

fn need(name: &str) -> Result<String> {
    env(name).ok_or_else(|| required(name))
}

/// The word of a callback address that Daraja is documented to refuse (reference §1: M-PESA
/// in any spelling, Safaricom, exe, exec, cmd, SQL, query; in any case), if it has one.
fn daraja_refused_word(url: &str) -> Option<&'static str> {
    let letters: String = url
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    ["mpesa", "safaricom", "exe", "cmd", "sql", "query"]
        .into_iter()
        .find(|word| letters.contains(word))
}

fn is_loopback_url(url: &str) -> bool {
    url.parse::<ureq::http::Uri>()
        .ok()
        .and_then(|uri| uri.host().map(crate::domain::is_loopback_host))
        .unwrap_or(false)
}

/// `https://…`, or `http://…` for a loopback host only (tests, a local tunnel).
fn secure_url(name: &str, text: &str) -> Result<String> {
    let uri: ureq::http::Uri = text.parse().map_err(|_| {
        // Said back unless it may hold a password (`https://user:pass word@host`).
        let said = if text.contains('@') {
            String::new()
        } else {
            format!("{text:?} ")
        };
        Error::invalid(name, format!("{said}is not a URL"))
    })?;
    let host = uri
        .host()
        .ok_or_else(|| Error::invalid(name, "has no host"))?;
    crate::domain::require_secure_scheme(name, uri.scheme_str(), host)?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(Error::invalid(
            name,
            "must not carry a user name or password (it would be sent with every call)",
        ));
    }
    // A fragment (`…/#f`) too: the paths remit adds after it would be in the fragment, never
    // sent (every text went to `/`).
    if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() || text.contains('#') {
        return Err(Error::invalid(
            name,
            "must be a scheme and a host only (no path, query or fragment)",
        ));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// A URL setting checked as [`secure_url`] when it is given.
fn optional_secure_url(name: &str) -> Result<Option<String>> {
    env(name).map(|url| secure_url(name, &url)).transpose()
}

/// The Daraja settings whose form can be checked without the gateway chosen: each one given
/// is checked at every start.
struct DarajaSettings {
    url: Option<String>,
    security_credential: Option<String>,
    b2c_command: super::B2cCommand,
    timeout_s: u64,
    public_url: Option<String>,
    shortcode: Option<String>,
}

impl DarajaSettings {
    fn read() -> Result<DarajaSettings> {
        let security_credential = env("REMIT_DARAJA_SECURITY_CREDENTIAL")
            .map(|ready| {
                use base64::Engine as _;
                let ready = ready.trim().to_string();
                match base64::engine::general_purpose::STANDARD.decode(&ready) {
                    Ok(bytes) if !bytes.is_empty() => Ok(ready),
                    _ => Err(Error::invalid(
                        "REMIT_DARAJA_SECURITY_CREDENTIAL",
                        "must be the credential in base64, as the Daraja portal gives it",
                    )),
                }
            })
            .transpose()?;
        let b2c_command = match choice(
            "REMIT_DARAJA_B2C_COMMAND",
            "BusinessPayment, SalaryPayment or PromotionPayment",
        )?
        .as_deref()
        {
            None | Some("BusinessPayment") => super::B2cCommand::BusinessPayment,
            Some("SalaryPayment") => super::B2cCommand::SalaryPayment,
            Some("PromotionPayment") => super::B2cCommand::PromotionPayment,
            Some(other) => {
                return Err(not_a_choice(
                    "REMIT_DARAJA_B2C_COMMAND",
                    other,
                    "BusinessPayment, SalaryPayment or PromotionPayment",
                ))
            }
        };
        let timeout_s = ranged::<u64>(
            "REMIT_DARAJA_TIMEOUT_S",
            1,
            crate::limits::DARAJA_CALL_TIMEOUT_S_MAX,
            " seconds",
        )?
        .unwrap_or(crate::limits::DARAJA_CALL_TIMEOUT_S_DEFAULT);
        // M-Pesa's certificate, when given, is read and used once (to seal the password given,
        // or a stand-in): a path that is wrong or a file that is no certificate shows now,
        // under the simulator too, not the day Daraja is switched on.
        let cert = env("REMIT_DARAJA_CERT");
        if cert.is_some() && security_credential.is_some() {
            log::warn!("REMIT_DARAJA_CERT and REMIT_DARAJA_INITIATOR_PASSWORD are not used: REMIT_DARAJA_SECURITY_CREDENTIAL is given, and it is the credential sent");
        }
        if let Some(path) = cert.filter(|_| security_credential.is_none()) {
            let pem = std::fs::read_to_string(&path).map_err(|e| {
                Error::invalid(
                    "REMIT_DARAJA_CERT",
                    format!("cannot read the certificate {path}: {e}"),
                )
            })?;
            let password =
                env("REMIT_DARAJA_INITIATOR_PASSWORD").unwrap_or_else(|| "check".to_string());
            crate::wire::daraja::requests::security_credential(&password, &pem)
                .map_err(|e| Error::invalid("REMIT_DARAJA_CERT", crate::error::describe(&e)))?;
        }
        let shortcode = env("REMIT_DARAJA_SHORTCODE");
        if let Some(shortcode) = &shortcode {
            if !(5..=8).contains(&shortcode.len()) || !shortcode.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(Error::invalid(
                    "REMIT_DARAJA_SHORTCODE",
                    "must be a shortcode of 5 to 8 digits",
                ));
            }
        }
        Ok(DarajaSettings {
            url: optional_secure_url("REMIT_DARAJA_URL")?,
            security_credential,
            b2c_command,
            timeout_s,
            public_url: optional_secure_url("REMIT_PUBLIC_URL")?,
            shortcode,
        })
    }
}

/// The Daraja gateway's settings (DESIGN.md, "The Daraja gateway"). The security credential is
/// taken ready-made, or computed now from the initiator password and M-Pesa's certificate.
fn daraja(settings: DarajaSettings) -> Result<super::DarajaConfig> {
    let url = settings
        .url
        .unwrap_or_else(|| "https://sandbox.safaricom.co.ke".into());
    // Every setting still missing, named at once: one restart each was seven restarts.
    let mut missing: Vec<&str> = [
        "REMIT_DARAJA_CONSUMER_KEY",
        "REMIT_DARAJA_CONSUMER_SECRET",
        "REMIT_DARAJA_INITIATOR",
    ]
    .into_iter()
    .filter(|name| env(name).is_none())
    .collect();
    if settings.shortcode.is_none() {
        missing.push("REMIT_DARAJA_SHORTCODE");
    }
    if settings.security_credential.is_none() {
        missing.extend(
            ["REMIT_DARAJA_INITIATOR_PASSWORD", "REMIT_DARAJA_CERT"]
                .into_iter()
                .filter(|name| env(name).is_none()),
        );
    }
    if settings.public_url.is_none() && !is_loopback_url(&url) {
        missing.push("REMIT_PUBLIC_URL");
    }
    if missing.len() > 1 {
        return Err(Error::invalid(
            "REMIT_GATEWAY",
            format!(
                "daraja needs {} as well (REMIT_DARAJA_INITIATOR_PASSWORD and REMIT_DARAJA_CERT may be replaced by REMIT_DARAJA_SECURITY_CREDENTIAL): the README's \"Going live with M-Pesa\" says where each comes from",
                missing.join(", ")
            ),
        ));
    }
    let security_credential = match settings.security_credential {
        Some(ready) => ready,
        None => {
            let password = need("REMIT_DARAJA_INITIATOR_PASSWORD").map_err(|_| {
                Error::invalid(
                    "REMIT_DARAJA_INITIATOR_PASSWORD",
                    "is required when REMIT_GATEWAY=daraja (with REMIT_DARAJA_CERT), unless REMIT_DARAJA_SECURITY_CREDENTIAL is given",
                )
            })?;
            let path = need("REMIT_DARAJA_CERT")?;
            let pem = std::fs::read_to_string(&path).map_err(|e| {
                Error::invalid(
                    "REMIT_DARAJA_CERT",
                    format!("cannot read the certificate {path}: {e}"),
                )
            })?;
            crate::wire::daraja::requests::security_credential(&password, &pem)
                .map_err(|e| Error::invalid("REMIT_DARAJA_CERT", crate::error::describe(&e)))?
        }
    };
    // A public address is needed for M-Pesa to reach us, except for a Daraja on this machine
    // (a local fake), which can call the server's own address.
    let public_url = match settings.public_url {
        Some(public) => {
            if let Some(word) = daraja_refused_word(&public) {
                log::warn!(
                    "REMIT_PUBLIC_URL contains \"{word}\": Daraja is documented to refuse callback addresses with M-PESA, Safaricom, exe, exec, cmd, SQL or query in them (in any case); if payouts are refused for their ResultURL, receive M-Pesa's results on a host name without it"
                );
            }
            Some(public)
        }
        None if is_loopback_url(&url) => None,
        None => return Err(required("REMIT_PUBLIC_URL")),
    };
    Ok(super::DarajaConfig {
        url,
        consumer_key: need("REMIT_DARAJA_CONSUMER_KEY")?,
        consumer_secret: need("REMIT_DARAJA_CONSUMER_SECRET")?,
        shortcode: settings
            .shortcode
            .ok_or_else(|| required("REMIT_DARAJA_SHORTCODE"))?,
        initiator: need("REMIT_DARAJA_INITIATOR")?,
        security_credential,
        b2c_command: settings.b2c_command,
        public_url,
        timeout: std::time::Duration::from_secs(settings.timeout_s),
    })
}

/// Africa's Talking's settings (README, "SMS"): the user name and API key are required; the
/// URL is the sandbox's for the `sandbox` user, production's otherwise, unless given.
fn africastalking(url: Option<String>) -> Result<super::AfricasTalkingConfig> {
    // Every one missing named at once, as Daraja's: one restart each was two.
    let (username, api_key) = match (env("REMIT_AT_USERNAME"), env("REMIT_AT_API_KEY")) {
        (Some(username), Some(api_key)) => (username, api_key),
        (username, api_key) => {
            let missing: Vec<&str> = [
                ("REMIT_AT_USERNAME", username.is_none()),
                ("REMIT_AT_API_KEY", api_key.is_none()),
            ]
            .into_iter()
            .filter_map(|(name, missing)| missing.then_some(name))
            .collect();
            return Err(Error::invalid(
                "REMIT_SMS_GATEWAY",
                format!(
                    "africastalking needs {} as well: the README's \"SMS\" says where each comes from",
                    missing.join(", ")
                ),
            ));
        }
    };
    let default_url = if username == "sandbox" {
        "https://api.sandbox.africastalking.com"
    } else {
        "https://api.africastalking.com"
    };
    let url = url.unwrap_or_else(|| default_url.into());
    Ok(super::AfricasTalkingConfig {
        url,
        username,
        api_key,
        sender_id: env("REMIT_AT_SENDER_ID"),
        timeout: std::time::Duration::from_secs(crate::limits::SMS_CALL_TIMEOUT_S),
    })
}

#[cfg(test)]
mod tests {
    use super::substituted;

    #[test]
    fn a_dollar_is_said_where_dotenv_would_replace_it_and_only_there() {
        for value in ["pa$word", "\"a$b\"", "$HOME/x", "a#b$c"] {
            assert!(substituted(value), "{value}");
        }
        for value in [
            "'pa$word'",
            "\"a\\$b\"",
            "a\\$b",
            "x # costs $5",
            "\"quoted\" # $5",
            "plain",
        ] {
            assert!(!substituted(value), "{value}");
        }
    }
}

#[cfg(test)]
mod wrong_number_tests {
    /// A number that does not fit its setting is told why: too large, too small, below 0.
    #[test]
    fn a_number_that_does_not_fit_is_told_why() {
        for (text, signed, said) in [
            ("70000", false, "too large a number; it takes"),
            ("99999999999999999999", true, "too large a number; it takes"),
            (
                "-99999999999999999999",
                true,
                "too small a number; it takes",
            ),
            ("-5", false, "it is below 0; it takes"),
            ("-0", false, "it takes"),
            ("--5", false, "it takes"),
            ("+", false, "it takes"),
            ("1_000", true, "it takes"),
            ("abc", true, "it takes"),
        ] {
            assert_eq!(super::wrong_number(text, signed), said, "{text}");
        }
    }
}
