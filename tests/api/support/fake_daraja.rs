//! A fake M-Pesa Daraja: a real HTTP server on loopback that behaves like Daraja as the
//! wire-format reference describes it. It checks Basic auth on the OAuth call and the Bearer
//! token on every other one (a new token invalidates the one before; a test can expire it),
//! validates every field a request must carry, decrypts `SecurityCredential` with its own key
//! pair (`tests/fixtures/fake-daraja.key`) and compares it with the initiator's password,
//! keeps the transactions it took and the float they are paid from, and posts results, queue
//! timeouts, Transaction Status and Account Balance results to the ResultURL it was given:
//! at once, late, twice or never, as each payment's script says.
//!
//! It composes its JSON by hand from the reference, never with remit's own builders, so that a
//! mistake in remit's wire types cannot hide behind the same mistake here.

#![allow(dead_code)]

use base64::Engine;
use rsa::pkcs8::DecodePrivateKey;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const CONSUMER_KEY: &str = "fakeConsumerKey0123";
pub const CONSUMER_SECRET: &str = "fakeConsumerSecret4567";
pub const SHORTCODE: &str = "600998";
pub const INITIATOR: &str = "remit_api_op";
pub const INITIATOR_PASSWORD: &str = "Safaricom999!*!";

/// The fixture certificate remit encrypts the password under.
pub fn cert_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fake-daraja.cert"
    ))
}

fn key_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fake-daraja.key"
    ))
}

/// How the fake answers one payment request (B2C or B2B) synchronously.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `200`, `ResponseCode` `"0"`: taken, and processed as the script's outcome says.
    Accept,
    /// `400.002.02`: refused; nothing taken.
    Refuse,
    /// `500.003.02` Spike Arrest; nothing taken.
    SpikeArrest,
    /// A bare `500`; nothing taken.
    ServerError,
    /// Taken and processed, but answered `200` `{"ResponseCode":"0"}` without a
    /// `ConversationID`: an answer that does not say what became of it.
    AcceptWithoutId,
    /// `503` `{"ResponseCode":"1"}`; nothing taken.
    Unavailable,
    /// Taken and processed, but the connection is closed without an answer.
    Lose,
    /// Taken and processed; the answer comes after this long (past the client's timeout).
    Slow(Duration),
    /// Taken and processed, the answer naming this `ConversationID` (one M-Pesa gave before).
    AcceptAs(&'static str),
}

/// What M-Pesa does with a payment it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Paid, if the paying account holds enough (else failed with `ResultCode` 1).
    Pay,
    /// Failed with this `ResultCode`.
    Fail(i64),
}

/// When a result is posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Right away (it may arrive before the acknowledgement is read).
    Now,
    /// Twice.
    Twice,
    /// Never.
    Never,
    /// After this long.
    After(Duration),
    /// Not the result: a queue timeout to the QueueTimeOutURL, and nothing else.
    QueueTimeout,
}

/// The script of the payment of one amount.
#[derive(Clone, Debug)]
pub struct Script {
    /// Answers to the first calls, in order; every later call is accepted.
    pub replies: Vec<Reply>,
    /// What happens to the money.
    pub outcome: Outcome,
    /// How its result is delivered.
    pub result: Delivery,
    /// How the results of Transaction Status queries about it are delivered.
    pub status: Delivery,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            replies: Vec::new(),
            outcome: Outcome::Pay,
            result: Delivery::Now,
            status: Delivery::Now,
        }
    }
}

/// A payment the fake took.
#[derive(Clone, Debug)]
pub struct Txn {
    /// `b2c`, `BusinessPayBill` or `BusinessBuyGoods`.
    pub kind: String,
    pub originator: String,
    pub conversation: String,
    pub amount_kes: i64,
    pub party_b: String,
    pub account_reference: Option<String>,
    /// The receipt if it was paid, else the failure code.
    pub paid: Result<String, i64>,
    pub result_url: String,
    pub queue_url: String,
}

/// One call the fake answered.
#[derive(Clone, Debug)]
pub struct Call {
    pub path: String,
    pub status: u16,
    pub body: Value,
    /// `errorCode` of a refusal.
    pub error: Option<String>,
    /// When it came.
    pub at: Instant,
}

/// One post the fake made to remit.
#[derive(Clone, Debug)]
pub struct Posted {
    pub url: String,
    pub body: Value,
    pub status: Option<u16>,
    /// When remit's answer came (a result it answered is committed by then).
    pub answered: Instant,
}

struct State {
    /// OAuth answers 503 while this is set (an outage), counting each refusal.
    oauth_down: bool,
    oauth_refused: usize,
    token: Option<(String, Instant)>,
    token_lifetime: Duration,
    token_requests: usize,
    bearer_refused: usize,
    /// The path of every call whose bearer token was refused, in order.
    bearer_refused_paths: Vec<String>,
    /// Refusals of bearer tokens are held (not answered) while this is set.
    hold_refusals: bool,
    /// The paths of the calls whose refusal is being held.
    holding: Vec<String>,
    /// Every bearer token is refused (`404.001.03`) while this is set, though OAuth hands
    /// out new ones: an API gateway that turns every call away.
    refuse_bearers: bool,
    /// Every Transaction Status query is turned away (`500.003.02`, spike arrest) while this
    /// is set.
    refuse_status: bool,
    scripts: HashMap<i64, Script>,
    calls_by_amount: HashMap<i64, usize>,
    txns: Vec<Txn>,
    calls: Vec<Call>,
    posted: Vec<Posted>,
    utility_cents: i64,
    /// The Utility Account's currency as reported (`KES` unless a test says otherwise).
    utility_currency: &'static str,
    working_cents: i64,
    sequence: u64,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    key: rsa::RsaPrivateKey,
    stopping: AtomicBool,
    poster: ureq::Agent,
}

/// The fake, listening on `base` until dropped.
pub struct FakeDaraja {
    pub base: String,
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeDaraja {
    /// Starts the fake on 127.0.0.1:0 with KES 1,000,000 in each paying account.
    pub fn start() -> FakeDaraja {
        let pem = std::fs::read_to_string(key_path()).unwrap();
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                oauth_down: false,
                oauth_refused: 0,
                token: None,
                token_lifetime: Duration::from_secs(3599),
                token_requests: 0,
                bearer_refused: 0,
                bearer_refused_paths: Vec::new(),
                hold_refusals: false,
                holding: Vec::new(),
                refuse_bearers: false,
                refuse_status: false,
                scripts: HashMap::new(),
                calls_by_amount: HashMap::new(),
                txns: Vec::new(),
                calls: Vec::new(),
                posted: Vec::new(),
                utility_cents: 100_000_000,
                utility_currency: "KES",
                working_cents: 100_000_000,
                sequence: 0,
            }),
            changed: Condvar::new(),
            key,
            stopping: AtomicBool::new(false),
            poster: ureq::Agent::new_with_config(
                ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(10)))
                    .build(),
            ),
        });
        let thread = {
            let (server, shared) = (Arc::clone(&server), Arc::clone(&shared));
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    if shared.stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let shared = Arc::clone(&shared);
                    // One thread per call, so that a slow answer holds up no other.
                    std::thread::spawn(move || answer(&shared, request));
                }
            })
        };
        FakeDaraja {
            base,
            shared,
            server,
            thread: Some(thread),
        }
    }

    /// The payment of `amount_kes` follows `script`.
    pub fn script(&self, amount_kes: i64, script: Script) {
        self.state().scripts.insert(amount_kes, script);
    }

    /// Sets the float (whole KES).
    pub fn set_balances(&self, utility_kes: i64, working_kes: i64) {
        let mut state = self.state();
        state.utility_cents = utility_kes * 100;
        state.working_cents = working_kes * 100;
    }

    /// The Utility Account is reported in this currency from now on.
    pub fn set_utility_currency(&self, currency: &'static str) {
        self.state().utility_currency = currency;
    }

    /// OAuth is down (503) or up again; going down also ends the token in use.
    pub fn oauth_down(&self, down: bool) {
        let mut state = self.state();
        state.oauth_down = down;
        if down {
            state.token = None;
        }
    }

    /// Every call's bearer token is refused (OAuth still answers), or accepted again.
    pub fn refuse_every_token(&self, refuse: bool) {
        self.state().refuse_bearers = refuse;
    }

    /// Calls whose bearer token is refused wait for their answer until this is unset (the
    /// test can act while remit's call is on its way).
    pub fn hold_refusals(&self, hold: bool) {
        self.state().hold_refusals = hold;
        self.shared.changed.notify_all();
    }

    /// Every Transaction Status query is turned away (spike arrest), or answered again.
    pub fn refuse_status_queries(&self, refuse: bool) {
        self.state().refuse_status = refuse;
    }

    /// Token requests refused while OAuth was down.
    pub fn oauth_refused(&self) -> usize {
        self.state().oauth_refused
    }

    /// The token in use is no longer accepted, as if it expired.
    pub fn expire_token(&self) {
        self.state().token = None;
    }

    /// Tokens last this long.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state().token_lifetime = lifetime;
    }

    pub fn txns(&self) -> Vec<Txn> {
        self.state().txns.clone()
    }

    pub fn calls(&self, path: &str) -> Vec<Call> {
        self.state()
            .calls
            .iter()
            .filter(|c| c.path == path)
            .cloned()
            .collect()
    }

    pub fn posted(&self) -> Vec<Posted> {
        self.state().posted.clone()
    }

    pub fn token_requests(&self) -> usize {
        self.state().token_requests
    }

    pub fn bearer_refused(&self) -> usize {
        self.state().bearer_refused
    }

    /// Calls to `path` whose bearer token was refused.
    pub fn bearer_refused_on(&self, path: &str) -> usize {
        self.state()
            .bearer_refused_paths
            .iter()
            .filter(|p| *p == path)
            .count()
    }

    pub fn balances_kes(&self) -> (i64, i64) {
        let state = self.state();
        (state.utility_cents / 100, state.working_cents / 100)
    }

    /// Waits (bounded: 20 s) until `ready` holds of the fake's state.
    pub fn wait_for(&self, what: &str, ready: impl Fn(&FakeView) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut state = self.state();
        loop {
            let view = FakeView {
                holding: &state.holding,
                txns: &state.txns,
                calls: &state.calls,
                posted: &state.posted,
            };
            if ready(&view) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the fake Daraja never saw {what}; calls: {:#?}",
                state
                    .calls
                    .iter()
                    .map(|c| (&c.path, c.status, &c.error))
                    .collect::<Vec<_>>()
            );
            state = self.shared.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap()
    }
}

/// What `wait_for` looks at.
pub struct FakeView<'a> {
    /// The paths of calls whose refusal is being held (`hold_refusals`).
    pub holding: &'a [String],
    pub txns: &'a [Txn],
    pub calls: &'a [Call],
    pub posted: &'a [Posted],
}

impl FakeView<'_> {
    pub fn count(&self, path: &str) -> usize {
        self.calls.iter().filter(|c| c.path == path).count()
    }
}

impl Drop for FakeDaraja {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Answering.

const PAY_B2C: &str = "/mpesa/b2c/v3/paymentrequest";
const PAY_B2B: &str = "/mpesa/b2b/v1/paymentrequest";
const STATUS: &str = "/mpesa/transactionstatus/v1/query";
const BALANCE: &str = "/mpesa/accountbalance/v1/query";

fn respond(request: tiny_http::Request, status: u16, body: &Value) {
    let header =
        tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).unwrap();
    let _ = request.respond(
        tiny_http::Response::from_string(body.to_string())
            .with_status_code(status)
            .with_header(header),
    );
}

fn error_body(code: &str, message: &str) -> Value {
    json!({"requestId": "fake-0000-0001", "errorCode": code, "errorMessage": message})
}

fn answer(shared: &Arc<Shared>, mut request: tiny_http::Request) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let auth = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str().to_string())
        .unwrap_or_default();
    if path == "/oauth/v1/generate" {
        return oauth(shared, request, query, &auth);
    }
    let bearer_ok = {
        let mut state = shared.state.lock().unwrap();
        let ok = !state.refuse_bearers
            && matches!(&state.token, Some((token, until))
                if auth == format!("Bearer {token}") && Instant::now() < *until);
        if !ok {
            state.bearer_refused += 1;
            state.bearer_refused_paths.push(path.to_string());
            if state.hold_refusals {
                state.holding.push(path.to_string());
                shared.changed.notify_all();
                while state.hold_refusals {
                    state = shared.changed.wait(state).unwrap();
                }
                let at = state.holding.iter().position(|p| p == path);
                state.holding.remove(at.expect("held"));
            }
        }
        ok
    };
    if !bearer_ok {
        return respond(
            request,
            401,
            &error_body("404.001.03", "Invalid Access Token"),
        );
    }
    let mut text = String::new();
    if request.as_reader().read_to_string(&mut text).is_err() {
        return respond(
            request,
            400,
            &error_body("400.002.05", "Invalid Request Payload"),
        );
    }
    let Ok(body) = serde_json::from_str::<Value>(&text) else {
        return respond(
            request,
            400,
            &error_body("400.002.05", "Invalid Request Payload"),
        );
    };
    let checked = match path {
        PAY_B2C => check_b2c(shared, &body),
        PAY_B2B => check_b2b(shared, &body),
        STATUS => check_status(shared, &body),
        BALANCE => check_balance(shared, &body),
        _ => {
            return respond(
                request,
                404,
                &error_body("404.001.01", "Resource not found"),
            )
        }
    };
    let record = |status: u16, error: Option<&str>| {
        let mut state = shared.state.lock().unwrap();
        state.calls.push(Call {
            path: path.to_string(),
            status,
            body: body.clone(),
            error: error.map(str::to_string),
            at: Instant::now(),
        });
        shared.changed.notify_all();
    };
    if let Err(field) = checked {
        record(400, Some("400.002.02"));
        return respond(
            request,
            400,
            &error_body("400.002.02", &format!("Bad Request - Invalid {field}")),
        );
    }
    match path {
        PAY_B2C | PAY_B2B => pay(shared, request, path, &body, record),
        STATUS if shared.state.lock().unwrap().refuse_status => {
            record(500, Some("500.003.02"));
            respond(
                request,
                500,
                &error_body("500.003.02", "Spike arrest violation"),
            );
        }
        STATUS => {
            record(200, None);
            let conversation = next_conversation(shared);
            respond(request, 200, &ack(&conversation, "status"));
            status_result(shared, &body, &conversation);
        }
        _ => {
            record(200, None);
            let conversation = next_conversation(shared);
            respond(request, 200, &ack(&conversation, "balance"));
            balance_result(shared, &body, &conversation);
        }
    }
}

fn ack(conversation: &str, originator: &str) -> Value {
    json!({"ConversationID": conversation, "OriginatorConversationID": originator,
           "ResponseCode": "0", "ResponseDescription": "Accept the service request successfully."})
}

fn next_conversation(shared: &Shared) -> String {
    let mut state = shared.state.lock().unwrap();
    state.sequence += 1;
    format!("AG_20261201_{:020x}", state.sequence)
}

fn oauth(shared: &Shared, request: tiny_http::Request, query: &str, auth: &str) {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{CONSUMER_KEY}:{CONSUMER_SECRET}"))
    );
    if query != "grant_type=client_credentials" {
        return respond(
            request,
            400,
            &error_body("400.008.02", "Invalid grant type passed"),
        );
    }
    if auth != expected {
        return respond(
            request,
            400,
            &error_body("400.008.01", "Invalid Authentication passed"),
        );
    }
    let mut state = shared.state.lock().unwrap();
    if state.oauth_down {
        state.oauth_refused += 1;
        drop(state);
        return respond(request, 503, &json!({"fault": "Service Unavailable"}));
    }
    state.token_requests += 1;
    state.sequence += 1;
    // A new token invalidates the one before.
    let token = format!("fakeToken{:016x}", state.sequence.wrapping_mul(0x9e37_79b9));
    let lifetime = state.token_lifetime;
    let expires = Instant::now().checked_add(lifetime);
    state.token = Some((
        token.clone(),
        expires.unwrap_or_else(|| Instant::now() + Duration::from_secs(1 << 40)),
    ));
    drop(state);
    // `expires_in` as a numeric string, as some clients report it.
    respond(
        request,
        200,
        &json!({"access_token": token, "expires_in": lifetime.as_secs().to_string()}),
    );
}

// ---------------------------------------------------------------------------------------------
// Validation: every field the reference requires, with Daraja's limits.

type Checked = Result<(), &'static str>;

fn text<'a>(body: &'a Value, field: &'static str) -> Result<&'a str, &'static str> {
    body.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(field)
}

fn equal(body: &Value, field: &'static str, want: &str) -> Checked {
    (text(body, field)? == want).then_some(()).ok_or(field)
}

fn one_of(body: &Value, field: &'static str, allowed: &[&str]) -> Checked {
    allowed
        .contains(&text(body, field)?)
        .then_some(())
        .ok_or(field)
}

fn length(body: &Value, field: &'static str, range: std::ops::RangeInclusive<usize>) -> Checked {
    range
        .contains(&text(body, field)?.chars().count())
        .then_some(())
        .ok_or(field)
}

/// Whole shillings, as a number or a numeric string.
fn whole_kes(body: &Value) -> Result<i64, &'static str> {
    match body.get("Amount") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .filter(|&a| a > 0)
    .ok_or("Amount")
}

fn callback_url(body: &Value, field: &'static str) -> Checked {
    let url = text(body, field)?;
    let lower = url.to_ascii_lowercase();
    let banned = [
        "mpesa",
        "m-pesa",
        "safaricom",
        "exe",
        "exec",
        "cmd",
        "sql",
        "query",
    ];
    let ok = (lower.starts_with("http://") || lower.starts_with("https://"))
        && !url.contains(char::is_whitespace)
        && !banned.iter().any(|word| lower.contains(word));
    ok.then_some(()).ok_or(field)
}

/// The initiator and its credential: the credential must decrypt under the fake's key (else
/// the request is refused); whether it holds the right password shows in the result (2001).
fn credential(shared: &Shared, body: &Value, initiator_field: &'static str) -> Checked {
    equal(body, initiator_field, INITIATOR)?;
    let ciphertext = base64::engine::general_purpose::STANDARD
        .decode(text(body, "SecurityCredential")?)
        .map_err(|_| "SecurityCredential")?;
    shared
        .key
        .decrypt(rsa::Pkcs1v15Encrypt, &ciphertext)
        .map(|_| ())
        .map_err(|_| "SecurityCredential")
}

fn password_ok(shared: &Shared, body: &Value) -> bool {
    let Some(ciphertext) = body
        .get("SecurityCredential")
        .and_then(Value::as_str)
        .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
    else {
        return false;
    };
    shared
        .key
        .decrypt(rsa::Pkcs1v15Encrypt, &ciphertext)
        .is_ok_and(|p| p == INITIATOR_PASSWORD.as_bytes())
}

fn check_b2c(shared: &Shared, body: &Value) -> Checked {
    length(body, "OriginatorConversationID", 1..=64)?;
    credential(shared, body, "InitiatorName")?;
    one_of(
        body,
        "CommandID",
        &["BusinessPayment", "SalaryPayment", "PromotionPayment"],
    )?;
    let amount = whole_kes(body)?;
    if !(10..=250_000).contains(&amount) {
        return Err("Amount");
    }
    equal(body, "PartyA", SHORTCODE)?;
    let party_b = text(body, "PartyB")?;
    let msisdn = party_b.len() == 12
        && party_b.bytes().all(|b| b.is_ascii_digit())
        && (party_b.starts_with("2547") || party_b.starts_with("2541"));
    if !msisdn {
        return Err("PartyB");
    }
    length(body, "Remarks", 2..=100)?;
    callback_url(body, "QueueTimeOutURL")?;
    callback_url(body, "ResultURL")?;
    if body.get("Occassion").is_some() {
        length(body, "Occassion", 1..=100)?;
    }
    Ok(())
}

fn check_b2b(shared: &Shared, body: &Value) -> Checked {
    credential(shared, body, "Initiator")?;
    one_of(body, "CommandID", &["BusinessPayBill", "BusinessBuyGoods"])?;
    equal(body, "SenderIdentifierType", "4")?;
    equal(body, "RecieverIdentifierType", "4")?;
    whole_kes(body)?;
    equal(body, "PartyA", SHORTCODE)?;
    let party_b = text(body, "PartyB")?;
    if !((5..=8).contains(&party_b.len()) && party_b.bytes().all(|b| b.is_ascii_digit())) {
        return Err("PartyB");
    }
    if text(body, "CommandID")? == "BusinessPayBill" {
        length(body, "AccountReference", 1..=13)?;
    }
    length(body, "Remarks", 1..=100)?;
    callback_url(body, "QueueTimeOutURL")?;
    callback_url(body, "ResultURL")?;
    // remit's own id rides along (Daraja ignores fields it does not know); the fake needs it.
    length(body, "OriginatorConversationID", 1..=64)?;
    Ok(())
}

fn check_status(shared: &Shared, body: &Value) -> Checked {
    credential(shared, body, "Initiator")?;
    equal(body, "CommandID", "TransactionStatusQuery")?;
    if text(body, "TransactionID").is_err() && text(body, "OriginalConversationID").is_err() {
        return Err("TransactionID");
    }
    equal(body, "PartyA", SHORTCODE)?;
    equal(body, "IdentifierType", "4")?;
    callback_url(body, "ResultURL")?;
    callback_url(body, "QueueTimeOutURL")?;
    length(body, "Remarks", 1..=100)?;
    length(body, "Occasion", 1..=100)?;
    Ok(())
}

fn check_balance(shared: &Shared, body: &Value) -> Checked {
    credential(shared, body, "Initiator")?;
    equal(body, "CommandID", "AccountBalance")?;
    equal(body, "PartyA", SHORTCODE)?;
    equal(body, "IdentifierType", "4")?;
    length(body, "Remarks", 1..=100)?;
    callback_url(body, "QueueTimeOutURL")?;
    callback_url(body, "ResultURL")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Paying and posting results.

fn pay(
    shared: &Arc<Shared>,
    request: tiny_http::Request,
    path: &str,
    body: &Value,
    record: impl Fn(u16, Option<&str>),
) {
    let amount = whole_kes(body).unwrap_or(0);
    let originator = text(body, "OriginatorConversationID")
        .unwrap_or_default()
        .to_string();
    let mut state = shared.state.lock().unwrap();
    if state.txns.iter().any(|t| t.originator == originator) {
        drop(state);
        record(500, Some("500.002.1001"));
        return respond(
            request,
            500,
            &error_body("500.002.1001", "Duplicate OriginatorConversationID"),
        );
    }
    let script = state.scripts.get(&amount).cloned().unwrap_or_default();
    let n = state.calls_by_amount.entry(amount).or_insert(0);
    let reply = script.replies.get(*n).copied().unwrap_or(Reply::Accept);
    *n += 1;
    match reply {
        Reply::Refuse => {
            drop(state);
            record(400, Some("400.002.02"));
            // Echoing what it was sent, as an API's error message may: remit must not pass the
            // credential on to its log or the payout's description, nor a paybill's number and
            // reference in the clear.
            let mut message = format!(
                "Bad Request - Invalid PartyB (SecurityCredential {})",
                text(body, "SecurityCredential").unwrap_or_default()
            );
            if let Ok(reference) = text(body, "AccountReference") {
                message.push_str(&format!(
                    " {{\"PartyB\":\"{}\",\"AccountReference\":\"{reference}\"}}",
                    text(body, "PartyB").unwrap_or_default()
                ));
            }
            // Written as some JSON writers do, a `/` escaped (`\/`): the secret reaches the
            // reader only once the JSON is decoded.
            let header =
                tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
                    .unwrap();
            let escaped = error_body("400.002.02", &message)
                .to_string()
                .replace('/', "\\/");
            let _ = request.respond(
                tiny_http::Response::from_string(escaped)
                    .with_status_code(400)
                    .with_header(header),
            );
            return;
        }
        Reply::SpikeArrest => {
            drop(state);
            record(500, Some("500.003.02"));
            return respond(
                request,
                500,
                &error_body("500.003.02", "Error Occured: Spike Arrest Violation"),
            );
        }
        Reply::ServerError => {
            drop(state);
            record(500, Some("500"));
            return respond(request, 500, &json!({"fault": "internal"}));
        }
        Reply::Unavailable => {
            drop(state);
            record(503, Some("503"));
            return respond(
                request,
                503,
                &json!({"ResponseCode": "1", "ResponseDescription": "Service Unavailable"}),
            );
        }
        Reply::Accept
        | Reply::AcceptWithoutId
        | Reply::Lose
        | Reply::Slow(_)
        | Reply::AcceptAs(_) => {}
    }
    // Taken: M-Pesa moves the money (or not) whatever becomes of the answer.
    state.sequence += 1;
    let conversation = match reply {
        Reply::AcceptAs(conversation) => conversation.to_string(),
        _ => format!("AG_20261201_{:020x}", state.sequence),
    };
    let kind = if path == PAY_B2C {
        "b2c".to_string()
    } else {
        text(body, "CommandID").unwrap_or_default().to_string()
    };
    let cents = amount * 100;
    let paid = match script.outcome {
        Outcome::Fail(code) => Err(code),
        Outcome::Pay if !password_ok(shared, body) => Err(2001),
        Outcome::Pay => {
            let account = if kind == "b2c" {
                &mut state.utility_cents
            } else {
                &mut state.working_cents
            };
            if *account < cents {
                Err(1)
            } else {
                *account -= cents;
                Ok(format!("TLC{:07X}", state.sequence))
            }
        }
    };
    let txn = Txn {
        kind,
        originator: originator.clone(),
        conversation: conversation.clone(),
        amount_kes: amount,
        party_b: text(body, "PartyB").unwrap_or_default().to_string(),
        account_reference: text(body, "AccountReference").ok().map(str::to_string),
        paid,
        result_url: text(body, "ResultURL").unwrap_or_default().to_string(),
        queue_url: text(body, "QueueTimeOutURL")
            .unwrap_or_default()
            .to_string(),
    };
    state.txns.push(txn.clone());
    drop(state);
    let (status, error) = match reply {
        Reply::Lose => (0, Some("lost")),
        Reply::Slow(_) => (200, Some("slow")),
        Reply::AcceptWithoutId => (200, Some("no ConversationID")),
        _ => (200, None),
    };
    record(status, error);
    let ack = ack(&conversation, &originator);
    match reply {
        Reply::Lose => drop(request.into_writer()),
        Reply::AcceptWithoutId => respond(
            request,
            200,
            &json!({"ResponseCode": "0", "ResponseDescription": "Accept"}),
        ),
        Reply::Slow(delay) => {
            std::thread::sleep(delay);
            respond(request, 200, &ack);
        }
        _ => respond(request, 200, &ack),
    }
    match script.result {
        Delivery::QueueTimeout => deliver(
            shared,
            &txn.queue_url,
            queue_timeout_body(&txn),
            Delivery::Now,
        ),
        delivery => deliver(shared, &txn.result_url, result_body(&txn), delivery),
    }
}

/// Posts `body` to `url` as `delivery` says, from a thread of its own.
fn deliver(shared: &Arc<Shared>, url: &str, body: Value, delivery: Delivery) {
    let (times, delay) = match delivery {
        Delivery::Never => return,
        Delivery::Now | Delivery::QueueTimeout => (1, Duration::ZERO),
        Delivery::Twice => (2, Duration::ZERO),
        Delivery::After(delay) => (1, delay),
    };
    let (shared, url) = (Arc::clone(shared), url.to_string());
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        for _ in 0..times {
            if shared.stopping.load(Ordering::SeqCst) {
                return;
            }
            let status = shared
                .poster
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.to_string().as_bytes())
                .ok()
                .map(|r| r.status().as_u16());
            let mut state = shared.state.lock().unwrap();
            state.posted.push(Posted {
                url: url.clone(),
                body: body.clone(),
                status,
                answered: Instant::now(),
            });
            shared.changed.notify_all();
        }
    });
}

fn result_body(txn: &Txn) -> Value {
    let b2c = txn.kind == "b2c";
    match (&txn.paid, b2c) {
        (Ok(receipt), true) => json!({"Result": {
            "ResultType": 0, "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
            "OriginatorConversationID": txn.originator, "ConversationID": txn.conversation,
            "TransactionID": receipt,
            "ResultParameters": {"ResultParameter": [
                {"Key": "TransactionAmount", "Value": txn.amount_kes},
                {"Key": "TransactionReceipt", "Value": receipt},
                {"Key": "ReceiverPartyPublicName", "Value": format!("{} - JANE WANJIKU", txn.party_b)},
                {"Key": "TransactionCompletedDateTime", "Value": "01.12.2026 10:21:07"},
                {"Key": "B2CUtilityAccountAvailableFunds", "Value": 154320.00},
                {"Key": "B2CWorkingAccountAvailableFunds", "Value": 80000.00},
                {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
                {"Key": "B2CChargesPaidAccountAvailableFunds", "Value": -1250.00}]},
            "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL",
                "Value": "https://internalsandbox.example/b2cresults/v1/submit"}}}}),
        (Ok(receipt), false) => json!({"Result": {
            "ResultType": "0", "ResultCode": "0", "ResultDesc": "The service request is processed successfully",
            "OriginatorConversationID": txn.originator, "ConversationID": txn.conversation,
            "TransactionID": receipt,
            "ResultParameters": {"ResultParameter": [
                {"Key": "DebitAccountBalance", "Value": "{Amount={CurrencyCode=KES, MinimumAmount=4852000, BasicAmount=48520.00}}"},
                {"Key": "Amount", "Value": format!("{}.00", txn.amount_kes)},
                {"Key": "DebitPartyAffectedAccountBalance", "Value": "Working Account|KES|48520.00|48520.00|0.00|0.00"},
                {"Key": "TransCompletedTime", "Value": "20261201103512"},
                {"Key": "DebitPartyCharges", "Value": ""},
                {"Key": "ReceiverPartyPublicName", "Value": format!("{} - BILLER", txn.party_b)},
                {"Key": "Currency", "Value": "KES"}]},
            "ReferenceData": {"ReferenceItem": [
                {"Key": "BillReferenceNumber", "Value": txn.account_reference.clone().unwrap_or_default()},
                {"Key": "QueueTimeoutURL", "Value": "https://internalsandbox.example/b2bresults"}]}}}),
        (Err(code), true) => json!({"Result": {
            "ResultType": 0, "ResultCode": code, "ResultDesc": failure_text(*code),
            "OriginatorConversationID": txn.originator, "ConversationID": txn.conversation,
            "TransactionID": "TLC0000000",
            "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL",
                "Value": "https://internalsandbox.example/b2cresults/v1/submit"}}}}),
        (Err(code), false) => json!({"Result": {
            "ResultType": 0, "ResultCode": code, "ResultDesc": failure_text(*code),
            "OriginatorConversationID": txn.originator, "ConversationID": txn.conversation,
            "TransactionID": "TLC0000000",
            "ResultParameters": {"ResultParameter": {"Key": "BOCompletedTime", "Value": 20261201103902_i64}},
            "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "https://internalsandbox.example/b2bresults"}}}}),
    }
}

fn failure_text(code: i64) -> &'static str {
    match code {
        1 => "The balance is insufficient for the transaction.",
        2001 => "The initiator information is invalid.",
        2040 => "Credit Party customer type (Unregistered or Registered Customer) can't be supported by the service.",
        _ => "The transaction failed.",
    }
}

fn queue_timeout_body(txn: &Txn) -> Value {
    json!({"Result": {"ResultType": 0, "ResultCode": 1, "ResultDesc": "The service request timed out in the queue.",
        "OriginatorConversationID": txn.originator, "ConversationID": txn.conversation,
        "TransactionID": "TLC0000000"}})
}

/// A Transaction Status result about the payment the query names.
fn status_result(shared: &Arc<Shared>, query: &Value, conversation: &str) {
    let by_receipt = text(query, "TransactionID").ok();
    let by_originator = text(query, "OriginalConversationID").ok();
    let state = shared.state.lock().unwrap();
    let txn = state
        .txns
        .iter()
        .find(|t| {
            by_originator == Some(t.originator.as_str())
                || (by_receipt.is_some() && t.paid.as_ref().ok().map(String::as_str) == by_receipt)
        })
        .cloned();
    let delivery = txn
        .as_ref()
        .and_then(|t| state.scripts.get(&t.amount_kes))
        .map_or(Delivery::Now, |s| s.status);
    drop(state);
    let url = text(query, "ResultURL").unwrap_or_default().to_string();
    let originator = format!("fake-query-{conversation}");
    let body = match (&txn, password_ok(shared, query)) {
        (_, false) => json!({"Result": {"ResultType": 0, "ResultCode": 2001,
            "ResultDesc": "The initiator information is invalid.",
            "OriginatorConversationID": originator, "ConversationID": conversation,
            "TransactionID": "TLC0000000"}}),
        (None, true) => json!({"Result": {"ResultType": 0, "ResultCode": "R000001",
            "ResultDesc": "The transaction could not be found.",
            "OriginatorConversationID": originator, "ConversationID": conversation,
            "TransactionID": "TLC0000000"}}),
        (Some(t), true) => {
            let (status, receipt) = match &t.paid {
                Ok(receipt) => ("Completed", receipt.clone()),
                Err(_) => ("Failed", "TLC0000000".to_string()),
            };
            json!({"Result": {"ResultType": 0, "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "OriginatorConversationID": originator, "ConversationID": conversation,
                "TransactionID": receipt,
                "ResultParameters": {"ResultParameter": [
                    {"Key": "DebitPartyName", "Value": format!("{SHORTCODE} - remit")},
                    {"Key": "CreditPartyName", "Value": format!("{} - PAYEE", t.party_b)},
                    {"Key": "OriginatorConversationID", "Value": t.originator},
                    {"Key": "InitiatedTime", "Value": 20261201102100_i64},
                    {"Key": "DebitAccountType", "Value": if t.kind == "b2c" { "Utility Account" } else { "Working Account" }},
                    {"Key": "DebitPartyCharges", "Value": ""},
                    {"Key": "TransactionReason"},
                    {"Key": "ReasonType", "Value": "Business Payment"},
                    {"Key": "TransactionStatus", "Value": status},
                    {"Key": "FinalisedTime", "Value": 20261201102107_i64},
                    {"Key": "Amount", "Value": t.amount_kes},
                    {"Key": "ConversationID", "Value": t.conversation},
                    {"Key": "ReceiptNo", "Value": receipt}]},
                "ReferenceData": {"ReferenceItem": {"Key": "Occasion", "Value": "status"}}}})
        }
    };
    deliver(shared, &url, body, delivery);
}

/// An Account Balance result with the float as it stands.
fn balance_result(shared: &Arc<Shared>, query: &Value, conversation: &str) {
    let (utility, working, currency) = {
        let state = shared.state.lock().unwrap();
        (
            state.utility_cents,
            state.working_cents,
            state.utility_currency,
        )
    };
    let money = |cents: i64| format!("{}.{:02}", cents / 100, cents % 100);
    let accounts = format!(
        "Working Account|KES|{w}|{w}|0.00|0.00&Float Account|KES|0.00|0.00|0.00|0.00&Utility Account|{currency}|{u}|{u}|0.00|0.00&Charges Paid Account|KES|-1250.00|-1250.00|0.00|0.00&Organization Settlement Account|KES|0.00|0.00|0.00|0.00",
        w = money(working),
        u = money(utility)
    );
    let body = if password_ok(shared, query) {
        json!({"Result": {"ResultType": 0, "ResultCode": 0,
            "ResultDesc": "The service request is processed successfully.",
            "OriginatorConversationID": format!("fake-balance-{conversation}"),
            "ConversationID": conversation, "TransactionID": "TLC0000000",
            "ResultParameters": {"ResultParameter": [
                {"Key": "AccountBalance", "Value": accounts},
                {"Key": "BOCompletedTime", "Value": 20261201102115_i64}]},
            "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL",
                "Value": "https://internalsandbox.example/abresults/v1/submit"}}}})
    } else {
        json!({"Result": {"ResultType": 0, "ResultCode": 2001,
            "ResultDesc": "The initiator information is invalid.",
            "OriginatorConversationID": format!("fake-balance-{conversation}"),
            "ConversationID": conversation, "TransactionID": "TLC0000000"}})
    };
    let url = text(query, "ResultURL").unwrap_or_default().to_string();
    deliver(shared, &url, body, Delivery::Now);
}
