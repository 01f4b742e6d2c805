//! Helpers of the notification tests: endpoints made through the API, the outbox read from the
//! file, waiting (bounded) for deliveries to settle.

#![allow(dead_code)]

use super::app::{Resp, TestApp};
use remit::store::Store;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Every event type of API.md, "Outgoing notifications".
pub const ALL_EVENTS: [&str; 13] = [
    "escrow.activated",
    "escrow.completed",
    "escrow.cancelled",
    "payment_request.created",
    "payment_request.approved",
    "payment_request.rejected",
    "payment_request.expired",
    "payment_request.paid",
    "payment_request.failed",
    "deposit.recorded",
    "deposit.flagged",
    "payout.stuck",
    "float.low",
];

/// An event as the outbox holds it.
#[derive(Clone, Debug)]
pub struct Event {
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub data: Value,
}

/// Every event in the outbox, in order.
pub fn events(app: &TestApp) -> Vec<Event> {
    app.store
        .read(|conn, _| {
            let mut stmt =
                conn.prepare("SELECT seq, id, type, data FROM outbox_events ORDER BY seq")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(Event {
                        seq: r.get(0)?,
                        id: r.get(1)?,
                        kind: r.get(2)?,
                        data: serde_json::from_str(&r.get::<_, String>(3)?).unwrap(),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .unwrap()
}

/// The types of the events after `seq` whose data names `id` (as any of its ids).
pub fn kinds_about(app: &TestApp, after_seq: i64, id: &str) -> Vec<String> {
    events(app)
        .into_iter()
        .filter(|e| e.seq > after_seq)
        .filter(|e| {
            e.data
                .as_object()
                .unwrap()
                .values()
                .any(|v| v.as_str() == Some(id))
        })
        .map(|e| e.kind)
        .collect()
}

/// The newest event's place.
pub fn last_seq(app: &TestApp) -> i64 {
    events(app).last().map_or(0, |e| e.seq)
}

/// `POST /webhook-endpoints` as the admin; returns the endpoint's id and secret.
pub fn create_endpoint(app: &TestApp, url: &str, events: &[&str]) -> (String, String) {
    let r = app.post(
        "/webhook-endpoints",
        &app.admin,
        &json!({"url": url, "events": events}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{}", r.text);
    (
        r.body["webhookEndpointId"].as_str().unwrap().to_string(),
        secret,
    )
}

/// `DELETE /webhook-endpoints/:id` as the admin.
pub fn delete_endpoint(app: &TestApp, endpoint_id: &str) -> Resp {
    app.raw(
        "DELETE",
        &format!("/webhook-endpoints/{endpoint_id}"),
        Some(&app.admin),
        None,
        &[],
    )
}

/// An endpoint's deliveries (newest first), as the API lists them.
pub fn deliveries(app: &TestApp, endpoint_id: &str) -> Vec<Value> {
    let r = app.get(
        &format!("/webhook-endpoints/{endpoint_id}/deliveries?limit=200"),
        &app.admin,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

/// Waits (bounded) until every delivery of an endpoint is out of `pending` and there are at
/// least `n`; returns them.
pub fn wait_settled(app: &TestApp, endpoint_id: &str, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let items = deliveries(app, endpoint_id);
        if items.len() >= n && items.iter().all(|d| d["status"] != "pending") {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "the deliveries of {endpoint_id} did not settle: {items:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A value of `/metrics` (0 when absent).
pub fn metric(app: &TestApp, name: &str) -> f64 {
    let r = app.raw("GET", "/metrics", None, None, &[]);
    r.text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Polls `check` (bounded) until it returns `Some`.
pub fn eventually<T>(within: Duration, what: &str, check: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "waited {within:?} in vain for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The document's schema of the body posted for an event type (`webhooks` of
/// `docs/openapi.json`), as a validator whose references resolve inside the document.
pub fn documented_event_schema(doc: &Value, kind: &str) -> jsonschema::Validator {
    let target = doc["webhooks"][kind]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("docs/openapi.json has no webhook for {kind}"));
    let mut root = doc.clone();
    root["$ref"] = json!(target);
    jsonschema::draft202012::new(&root).unwrap()
}

/// Every event in the outbox, as the body a receiver is posted (`wire::webhook::body`), is what
/// the OpenAPI document's `webhooks` says of its type.
pub fn assert_events_documented(store: &Store) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let events = store
        .read(|conn, _| remit::outbox::after(conn, 0, u32::MAX))
        .unwrap();
    assert!(!events.is_empty(), "no events to check");
    let mut validators = HashMap::new();
    for event in events {
        let kind = event.kind.as_str();
        let validator = validators
            .entry(kind)
            .or_insert_with(|| documented_event_schema(&doc, kind));
        let body: Value = serde_json::from_slice(&remit::wire::webhook::body(&event)).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{kind} is not as docs/openapi.json says: {errors:#?}\n{body:#}"
        );
    }
}
