//! A fake Africa's Talking SMS API on loopback: `POST /version1/messaging` with the `apiKey`
//! header and a form body (`username`, `to`, `message`, `from`, `bulkSMSMode`), answered `201`
//! with `SMSMessageData.Recipients` as the official SDKs read it. It checks the key and the
//! fields, keeps every message, and answers as its script says: refuses a number, or fails with
//! a 500 the first times. Its JSON is written by hand here, not with remit's wire types.

#![allow(dead_code)]

use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const USERNAME: &str = "sandbox";
pub const API_KEY: &str = "atsk_fake_0123456789abcdef";
pub const SENDER_ID: &str = "REMIT";

/// A message the fake took (or refused).
#[derive(Clone, Debug)]
pub struct Sms {
    pub to: String,
    pub message: String,
    pub from: Option<String>,
    pub username: String,
    pub bulk_sms_mode: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct State {
    calls: Vec<Sms>,
    /// Numbers answered `InvalidPhoneNumber` (statusCode 403).
    invalid: Vec<String>,
    /// How many calls to answer with a bare 500 first.
    fail_first: usize,
    sequence: u64,
    refused_auth: usize,
    /// Run once, before the next well-formed call is answered.
    before_next_answer: Option<Box<dyn FnOnce() + Send>>,
    /// Every message taken is answered this late (a gateway that takes it, slowly).
    slow: Option<Duration>,
    /// How the next calls are answered, one each, before anything else is asked of the fake.
    turns: std::collections::VecDeque<Turn>,
}

/// How one call is answered (`FakeAt::answer_in_turn`).
#[derive(Clone, Copy, Debug)]
pub enum Turn {
    /// Taken, and answered this late.
    Late(Duration),
    /// A bare 500: not taken.
    Fail,
    /// Taken, and answered as sent to another number (`OTHER_NUMBER`).
    OtherNumber,
}

/// The number a `Turn::OtherNumber` answer names.
pub const OTHER_NUMBER: &str = "+254700000999";

/// The fake, listening on `base` until dropped.
pub struct FakeAt {
    pub base: String,
    state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
}

fn form(body: &str) -> HashMap<String, String> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

impl FakeAt {
    pub fn start() -> FakeAt {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        {
            let (server, state) = (Arc::clone(&server), Arc::clone(&state));
            std::thread::spawn(move || {
                // Each call answered by a thread of its own: a call answered late holds up no
                // other (a retry came while the fake slept on the call before).
                for request in server.incoming_requests() {
                    let state = Arc::clone(&state);
                    std::thread::spawn(move || answer(&state, request));
                }
            });
        }
        FakeAt {
            base,
            state,
            server,
        }
    }

    /// Answers the next `n` calls with a bare 500.
    pub fn fail_first(&self, n: usize) {
        self.state.lock().unwrap().fail_first = n;
    }

    /// Answers the next calls as `turns` say, one each.
    pub fn answer_in_turn(&self, turns: &[Turn]) {
        self.state.lock().unwrap().turns = turns.iter().copied().collect();
    }

    /// Takes every message, and answers each only after `late`.
    pub fn answer_late(&self, late: Duration) {
        self.state.lock().unwrap().slow = Some(late);
    }

    /// Answers messages to this number (E.164) with `InvalidPhoneNumber`.
    pub fn refuse_number(&self, e164: &str) {
        self.state.lock().unwrap().invalid.push(e164.to_string());
    }

    /// Runs `f` once, when the next well-formed call has come and before it is answered (the
    /// sender then waits for the answer).
    pub fn before_next_answer(&self, f: impl FnOnce() + Send + 'static) {
        self.state.lock().unwrap().before_next_answer = Some(Box::new(f));
    }

    pub fn calls(&self) -> Vec<Sms> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn refused_auth(&self) -> usize {
        self.state.lock().unwrap().refused_auth
    }

    /// Waits (bounded) until `n` calls came.
    pub fn wait_for_calls(&self, n: usize, within: Duration) -> Vec<Sms> {
        let deadline = Instant::now() + within;
        loop {
            let calls = self.calls();
            if calls.len() >= n {
                return calls;
            }
            assert!(
                Instant::now() < deadline,
                "the fake Africa's Talking got {} calls, wanted {n}: {calls:?}",
                calls.len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for FakeAt {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn respond(request: tiny_http::Request, status: u16, body: String) {
    let header =
        tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).unwrap();
    let _ = request.respond(
        tiny_http::Response::from_string(body)
            .with_status_code(status)
            .with_header(header),
    );
}

fn answer(state: &Mutex<State>, mut request: tiny_http::Request) {
    let header = |name: &'static str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_string())
    };
    let api_key = header("apiKey");
    let accept = header("Accept");
    let content_type = header("Content-Type").unwrap_or_default();
    let path = request.url().to_string();
    let mut body = String::new();
    let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
    if path != "/version1/messaging" || request.method() != &tiny_http::Method::Post {
        return respond(request, 404, "\"not found\"".into());
    }
    if api_key.as_deref() != Some(API_KEY) {
        state.lock().unwrap().refused_auth += 1;
        return respond(
            request,
            401,
            "The supplied authentication is invalid".into(),
        );
    }
    let fields = form(&body);
    let mut sms = Sms {
        to: fields.get("to").cloned().unwrap_or_default(),
        message: fields.get("message").cloned().unwrap_or_default(),
        from: fields.get("from").cloned(),
        username: fields.get("username").cloned().unwrap_or_default(),
        bulk_sms_mode: fields.get("bulkSMSMode").cloned(),
        status: 0,
    };
    let well_formed = accept.as_deref() == Some("application/json")
        && content_type.starts_with("application/x-www-form-urlencoded")
        && sms.username == USERNAME
        && sms.to.starts_with('+')
        && !sms.message.is_empty();
    let mut st = state.lock().unwrap();
    if !well_formed {
        sms.status = 400;
        st.calls.push(sms);
        drop(st);
        return respond(
            request,
            400,
            "\"Request is missing required form field\"".into(),
        );
    }
    // A turn first; else the first calls' failures.
    let turn = st.turns.pop_front();
    if matches!(turn, Some(Turn::Fail)) || (turn.is_none() && st.fail_first > 0) {
        if turn.is_none() {
            st.fail_first -= 1;
        }
        sms.status = 500;
        st.calls.push(sms);
        drop(st);
        return respond(request, 500, "\"Internal Server Error\"".into());
    }
    st.sequence += 1;
    let (code, status, message_id, cost) = if st.invalid.contains(&sms.to) {
        (403, "InvalidPhoneNumber", "None".to_string(), "0")
    } else {
        (
            101,
            "Success",
            format!("ATXid_fake{:08}", st.sequence),
            "KES 0.8000",
        )
    };
    sms.status = 201;
    let to = if matches!(turn, Some(Turn::OtherNumber)) {
        OTHER_NUMBER.to_string()
    } else {
        sms.to.clone()
    };
    st.calls.push(sms);
    let before = st.before_next_answer.take();
    let slow = match turn {
        Some(Turn::Late(late)) => Some(late),
        _ => st.slow,
    };
    drop(st);
    if let Some(f) = before {
        f();
    }
    if let Some(late) = slow {
        std::thread::sleep(late);
    }
    let sent = if code == 101 { 1 } else { 0 };
    respond(
        request,
        201,
        json!({"SMSMessageData": {
            "Message": format!("Sent to {sent}/1 Total Cost: {cost}"),
            "Recipients": [{"statusCode": code, "number": to, "status": status,
                            "cost": cost, "messageId": message_id}]
        }})
        .to_string(),
    );
}
