//! `spawn_app()`: the real server on 127.0.0.1:0 over a temp-file database, with a test key,
//! the simulator at 0 ms, tokens for each role, and a small blocking HTTP client. Shut down on
//! drop.

#![allow(dead_code)]

use remit::config::Config;
use remit::domain::KenyanPhone;
use remit::payout::{CallbackUrls, Gateway, Worker};
use remit::runtime::Running;
use remit::service::users::{self, NewUser};
use remit::service::{Actor, Role};
use remit::store::{self, Store};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const STRIPE_SECRET: &str = "whsec_remit_test_7f3a9c2e5b1d4f60";
pub const CALLBACK_TOKEN: &str = "3f9a1c0d7e2b4a65b8c9d0e1f2a3b4c5";
pub const FAIL_ACCOUNT: &str = "FAIL0001";
pub const TIMEOUT_ACCOUNT: &str = "TIMEOUT01";
pub const RECIPIENT_PHONE: &str = "0712345678";

pub struct TestApp {
    server: Option<Running>,
    pub base: String,
    pub store: Arc<Store>,
    pub admin: String,
    pub sender: String,
    pub other_sender: String,
    pub recipient: String,
    pub agent: String,
    pub agent_id: String,
    pub dir: tempfile::TempDir,
    agent_http: ureq::Agent,
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub request_id: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn spawn_app() -> TestApp {
    spawn_app_with(|_| {})
}

pub fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().join("remit.db"));
    config.addr = "127.0.0.1:0".into();
    config.key_hex = Some(crate::support::TEST_KEY.into());
    config.workers = 8;
    config.sim_delay_ms = 0;
    config.sim_fail_accounts = vec![FAIL_ACCOUNT.into()];
    config.sim_timeout_accounts = vec![TIMEOUT_ACCOUNT.into()];
    config.stripe_webhook_secret = Some(STRIPE_SECRET.into());
    config.mpesa_callback_token = Some(CALLBACK_TOKEN.into());
    configure(&mut config);
    let store = Arc::new(store::open(&config.open_options(true)).unwrap());
    let make = |role: Role, name: &str, phone: Option<&str>| -> (String, String) {
        let user = NewUser {
            role,
            name: name.into(),
            phone: phone.map(|p| KenyanPhone::parse("p", p).unwrap()),
        };
        let created = store
            .write(move |ctx| users::create(ctx, &Actor::system("test"), &user))
            .unwrap();
        (created.user.user_id.to_string(), created.token)
    };
    let (_, admin) = make(Role::Admin, "Admin", None);
    let (_, sender) = make(Role::Sender, "Amina", Some("0733000001"));
    let (_, other_sender) = make(Role::Sender, "Other", None);
    let (_, recipient) = make(Role::Recipient, "Wanjiru", Some(RECIPIENT_PHONE));
    let (agent_id, agent) = make(Role::Agent, "Kiosk", None);
    let server = remit::runtime::start(config, Arc::clone(&store)).unwrap();
    let base = format!("http://{}", server.addr);
    let agent_http = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build(),
    );
    TestApp {
        server: Some(server),
        base,
        store,
        admin,
        sender,
        other_sender,
        recipient,
        agent,
        agent_id,
        dir,
        agent_http,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
    }
}

impl TestApp {
    /// The lag of each replication cycle's oldest change, in milliseconds (with
    /// `REMIT_REPLICATE_TO`).
    pub fn replication_lags_ms(&self) -> Vec<f64> {
        self.server
            .as_ref()
            .and_then(|s| s.replication())
            .map(|status| status.cycle_lags_ms())
            .unwrap_or_default()
    }

    /// Replication cycles since start, and those that read only the rows the change log listed.
    pub fn replication_cycles_listed(&self) -> (u64, u64) {
        self.server
            .as_ref()
            .and_then(|s| s.replication())
            .map(|status| status.cycles_listed())
            .unwrap_or_default()
    }

    pub fn shutdown(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
    }

    /// A payout worker over this server's store and result URL, driven by hand with
    /// `gateway`.
    pub fn worker(&self, gateway: Arc<dyn Gateway>) -> Worker {
        Worker {
            store: Arc::clone(&self.store),
            gateway,
            urls: CallbackUrls::under(&self.base, CALLBACK_TOKEN),
            wakeup: Arc::default(),
            status_after_s: 120,
            float_every: None,
            not_sent: Default::default(),
            calls: Arc::default(),
        }
    }

    /// Another user of this role; returns its token.
    pub fn new_user(&self, role: Role, name: &str, phone: Option<&str>) -> String {
        let user = NewUser {
            role,
            name: name.into(),
            phone: phone.map(|p| KenyanPhone::parse("p", p).unwrap()),
        };
        self.store
            .write(move |ctx| users::create(ctx, &Actor::system("test"), &user))
            .unwrap()
            .token
    }

    /// Runs one SQL statement on the database, as someone with the file could (to move a
    /// clock, or to tamper).
    pub fn sql(&self, sql: &str, params: &[&str]) {
        let (sql, params): (String, Vec<String>) = (
            sql.to_string(),
            params.iter().map(|p| p.to_string()).collect(),
        );
        self.store
            .write(move |ctx| {
                ctx.conn
                    .execute(&sql, rusqlite::params_from_iter(params.iter()))?;
                Ok(())
            })
            .unwrap();
    }

    pub fn token(&self, role: &str) -> &str {
        match role {
            "admin" => &self.admin,
            "sender" => &self.sender,
            "recipient" => &self.recipient,
            "agent" => &self.agent,
            "other_sender" => &self.other_sender,
            _ => "",
        }
    }

    /// Any request: method, path, optional token, optional raw body with content type, extra
    /// headers. A `503 busy` (refused before it ran: a caller over its share of the workers whose
    /// body came a moment after its head, as a loaded machine makes it) is sent again, as the
    /// contract tells clients to, for up to 10 s; no test here means to see one through this.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, &[u8])>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let r = self.raw_once(method, path, token, body, headers);
            if r.status != 503 || r.body["code"] != "busy" || std::time::Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// One attempt of `raw`, for a test that means to see a `503 busy`.
    pub fn raw_once(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, &[u8])>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let url = format!("{}{}", self.base, path);
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(t) = token {
            builder = builder.header("Authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let result = match body {
            Some((content_type, bytes)) => {
                let request = builder
                    .header("Content-Type", content_type)
                    .body(bytes.to_vec())
                    .unwrap();
                self.agent_http.run(request)
            }
            None => {
                let request = builder.body(()).unwrap();
                self.agent_http.run(request)
            }
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response
            .body_mut()
            .with_config()
            .limit(16 * 1024 * 1024)
            .read_to_string()
            .unwrap_or_default();
        let content_type = headers
            .iter()
            .find(|(name, _)| name == "content-type")
            .map(|(_, value)| value.as_str());
        super::conformance::check(method, path, status, content_type, &text);
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            body,
            text,
            request_id,
            headers,
        }
    }

    pub fn get(&self, path: &str, token: &str) -> Resp {
        self.raw("GET", path, Some(token), None, &[])
    }

    pub fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.raw(
            "POST",
            path,
            Some(token),
            Some(("application/json", body.to_string().as_bytes())),
            &[],
        )
    }

    /// A Daraja-shaped result to the M-Pesa result URL (with the test's path token).
    pub fn post_mpesa_result(&self, body: &Value) -> Resp {
        self.raw(
            "POST",
            &format!("/webhooks/payouts/{CALLBACK_TOKEN}"),
            None,
            Some(("application/json", body.to_string().as_bytes())),
            &[],
        )
    }

    /// A Stripe event, signed now with the test secret, to `POST /webhooks/stripe`.
    pub fn post_stripe(&self, event: &str) -> Resp {
        let header =
            remit::wire::stripe::sign(STRIPE_SECRET, remit::time::now_unix(), event.as_bytes());
        self.raw(
            "POST",
            "/webhooks/stripe",
            None,
            Some(("application/json", event.as_bytes())),
            &[("Stripe-Signature", &header)],
        )
    }

    pub fn post_with_key(&self, path: &str, token: &str, body: &Value, key: &str) -> Resp {
        self.raw(
            "POST",
            path,
            Some(token),
            Some(("application/json", body.to_string().as_bytes())),
            &[("Idempotency-Key", key)],
        )
    }

    /// Creates a funded escrow of `total_usd` (whole dollars) split over `categories`.
    pub fn active_escrow(&self, total_usd: i64, categories: &[&str]) -> String {
        self.active_escrow_limited(total_usd, categories, None)
    }

    /// An active escrow with a daily limit (its approvals write `daily_spend`).
    pub fn active_escrow_limited(
        &self,
        total_usd: i64,
        categories: &[&str],
        daily_limit_usd: Option<i64>,
    ) -> String {
        let id = self.pending_escrow(total_usd, categories, daily_limit_usd);
        let r = self.post(
            &format!("/escrows/{id}/deposits"),
            &self.agent,
            &json!({"amountUsd": total_usd, "reference": format!("cash-{id}")}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["escrowStatus"], "active");
        id
    }

    pub fn pending_escrow(
        &self,
        total_usd: i64,
        categories: &[&str],
        daily_limit_usd: Option<i64>,
    ) -> String {
        let mut body = json!({"recipientPhone": RECIPIENT_PHONE, "recipientName": "Wanjiru", "totalAmountUsd": total_usd, "categories": categories});
        if let Some(limit) = daily_limit_usd {
            body["dailyLimitUsd"] = json!(limit);
        }
        let r = self.post("/escrows", &self.sender, &body);
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["escrowId"].as_str().unwrap().to_string()
    }

    /// A payment request of `kes` whole shillings to a PayBill with this account reference.
    pub fn request(
        &self,
        escrow_id: &str,
        category: &str,
        kes: i64,
        account_reference: &str,
    ) -> String {
        self.request_by(&self.agent, escrow_id, category, kes, account_reference)
    }

    /// `request`, asked by `token`'s holder (the recipient, say) rather than the agent.
    pub fn request_by(
        &self,
        token: &str,
        escrow_id: &str,
        category: &str,
        kes: i64,
        account_reference: &str,
    ) -> String {
        let r = self.post(
            "/payment-requests",
            token,
            &json!({"escrowId": escrow_id, "category": category, "amountKes": kes, "merchantName": "Kenya Power",
                    "merchantAccount": {"type": "paybill", "number": "888880", "accountReference": account_reference}}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["paymentRequestId"].as_str().unwrap().to_string()
    }

    pub fn approve(&self, request_id: &str) -> Resp {
        self.post(
            &format!("/payment-requests/{request_id}/approve"),
            &self.sender,
            &json!({}),
        )
    }

    /// Polls a payment request until its status is one of `statuses` (bounded: 10 s).
    pub fn wait_for_status(&self, request_id: &str, statuses: &[&str]) -> Value {
        self.wait_for_status_within(request_id, statuses, Duration::from_secs(10))
    }

    /// The same, bounded by `within` (for payouts that go through retries with backoff).
    pub fn wait_for_status_within(
        &self,
        request_id: &str,
        statuses: &[&str],
        within: Duration,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let r = self.get(&format!("/payment-requests/{request_id}"), &self.admin);
            let status = r.body["status"].as_str().unwrap_or("").to_string();
            if statuses.contains(&status.as_str()) {
                return r.body;
            }
            assert!(
                Instant::now() < deadline,
                "request {request_id} stayed {status}, wanted {statuses:?}: {}",
                r.text
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls until the payout of this request is flagged.
    pub fn wait_for_payout_flag(&self, request_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.get(&format!("/payment-requests/{request_id}"), &self.admin);
            if r.body["payout"]["flagged"] == json!(true) {
                return r.body;
            }
            assert!(
                Instant::now() < deadline,
                "payout of {request_id} never flagged: {}",
                r.text
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn escrow(&self, id: &str) -> Value {
        let r = self.get(&format!("/escrows/{id}"), &self.admin);
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    /// The audit lines about one entity of an escrow (a request, a payout…), read through the
    /// escrow's audit as an admin.
    pub fn audit_lines_of(&self, escrow: &str, entity: &str) -> Vec<Value> {
        let r = self.get(&format!("/audit?entity={escrow}"), &self.admin);
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|line| line["entity"] == entity)
            .cloned()
            .collect()
    }

    pub fn assert_integrity(&self) {
        let r = self.get("/admin/integrity", &self.admin);
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["ok"], true, "integrity: {}", r.text);
    }

    /// The payout row's gateway ids, read from the database.
    pub fn payout_ids(&self, request_id: &str) -> (String, String, Option<String>) {
        let id = request_id.to_string();
        self.store
            .read(move |c, _| {
                Ok(c.query_row(
                    "SELECT id, originator_conversation_id, conversation_id FROM payouts WHERE payment_request_id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?)
            })
            .unwrap()
    }
}
