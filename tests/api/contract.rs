//! The API as a document: `docs/openapi.json` is valid OpenAPI 3.1, the server serves it, and
//! `docs/api.md` names exactly its operations (the route table itself is held equal to the
//! document by a test inside the crate, `http::routes`). Below, the defects the contract fuzzer
//! (`tests/contract/run`) found, each with the test that guards against it.

use crate::support::app::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn document() -> Value {
    serde_json::from_str(&read("docs/openapi.json")).unwrap()
}

/// The official OpenAPI 3.1 schema (2022-10-07), kept in `tests/fixtures/`.
fn openapi_validator() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(&read("tests/fixtures/openapi-3.1-schema.json")).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

#[test]
fn the_openapi_document_is_valid_openapi_3_1() {
    let validator = openapi_validator();
    let doc = document();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "docs/openapi.json: {errors:#?}");
    // The validator does refuse what is not OpenAPI 3.1: a response without its description,
    // an operation whose parameter has no `in`, another version.
    let mut broken = doc.clone();
    broken["paths"]["/health"]["get"]["responses"]["200"]
        .as_object_mut()
        .unwrap()
        .remove("description");
    assert!(
        !validator.is_valid(&broken),
        "a response needs a description"
    );
    let mut broken = doc.clone();
    broken["components"]["parameters"]["Limit"]
        .as_object_mut()
        .unwrap()
        .remove("in");
    assert!(!validator.is_valid(&broken), "a parameter needs `in`");
    let mut broken = doc;
    broken["openapi"] = json!("3.0.3");
    assert!(!validator.is_valid(&broken), "3.0 is not 3.1");
}

#[test]
fn every_schema_reference_of_the_document_resolves() {
    fn walk(doc: &Value, value: &Value, missing: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    let pointer = r.trim_start_matches('#');
                    if doc.pointer(pointer).is_none() {
                        missing.push(r.clone());
                    }
                }
                map.values().for_each(|v| walk(doc, v, missing));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(doc, v, missing)),
            _ => {}
        }
    }
    let doc = document();
    let mut missing = Vec::new();
    walk(&doc, &doc, &mut missing);
    assert!(missing.is_empty(), "references to nothing: {missing:?}");
}

#[test]
fn the_server_serves_its_openapi_document_to_anyone() {
    let app = spawn_app();
    let r = app.raw("GET", "/openapi.json", None, None, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(
        r.body,
        document(),
        "the embedded document is docs/openapi.json"
    );
    assert!(r.request_id.is_some());
}

/// The answers any request may get, whatever its route: a malformed request (`400`), a head
/// over the limits (`431`, answered before any route is known), an internal error and a busy
/// server. The document listed no `431` anywhere.
#[test]
fn every_operation_documents_the_answers_any_request_may_get() {
    let doc = document();
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for status in ["400", "431", "500", "503"] {
                if op["responses"].get(status).is_none() {
                    missing.push(format!("{} {path}: {status}", method.to_uppercase()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "{missing:?}");
    let head = &doc["components"]["responses"]["HeadersTooLarge"];
    assert_eq!(
        head["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error"
    );
}

/// `METHOD /path/{param}` of every operation the document has.
fn documented_operations() -> BTreeSet<String> {
    let doc = document();
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    ops
}

/// Every `` `METHOD /path` `` that `docs/api.md` names (`:param` written as `{param}`, a query
/// left off).
fn operations_named_in(markdown: &str) -> BTreeSet<String> {
    let mut ops = BTreeSet::new();
    for code in markdown.split('`').skip(1).step_by(2) {
        let Some((method, path)) = code.split_once(' ') else {
            continue;
        };
        if !["GET", "POST", "PUT", "DELETE"].contains(&method) || !path.starts_with('/') {
            continue;
        }
        let path = path.split(['?', ' ']).next().unwrap_or(path);
        let path: Vec<String> = path
            .split('/')
            .map(|part| match part.strip_prefix(':') {
                Some(name) => format!("{{{name}}}"),
                None => part.to_string(),
            })
            .collect();
        ops.insert(format!("{method} {}", path.join("/")));
    }
    ops
}

#[test]
fn the_api_reference_names_exactly_the_documents_operations() {
    let named = operations_named_in(&read("docs/api.md"));
    let documented = documented_operations();
    let missing: Vec<_> = documented.difference(&named).collect();
    let extra: Vec<_> = named.difference(&documented).collect();
    assert!(missing.is_empty(), "docs/api.md does not name {missing:?}");
    assert!(
        extra.is_empty(),
        "docs/api.md names operations the document lacks: {extra:?}"
    );
}

#[test]
fn operations_are_read_from_markdown_code_spans() {
    let named = operations_named_in(
        "a `GET /escrows?status&ref` and `POST /escrows/:id/cancel`, not `GET` or `x /y`",
    );
    assert_eq!(
        named.into_iter().collect::<Vec<_>>(),
        vec!["GET /escrows", "POST /escrows/{id}/cancel"]
    );
}

/// The document's `webhooks` describe exactly the event types remit emits, each with the
/// `Remit-Signature` header, and its example of a delivery is one.
#[test]
fn the_document_describes_every_event_type_posted_to_receivers() {
    let doc = document();
    let documented: BTreeSet<String> = doc["webhooks"]
        .as_object()
        .expect("the document has webhooks")
        .keys()
        .cloned()
        .collect();
    let emitted: BTreeSet<String> = remit::domain::EventType::ALL
        .iter()
        .map(|e| e.as_str().to_string())
        .collect();
    assert_eq!(documented, emitted);
    for kind in &emitted {
        let op = &doc["webhooks"][kind]["post"];
        assert_eq!(
            op["parameters"][0]["$ref"], "#/components/parameters/RemitSignature",
            "{kind}"
        );
        let schema = crate::support::notify::documented_event_schema(&doc, kind);
        let mut wrong = json!({"id": "evt_01jd8x2m4k7q9p3r5t6v8w0y2z", "type": kind,
            "createdAt": "2026-12-01T09:30:00Z", "data": {}});
        assert!(!schema.is_valid(&wrong), "{kind} takes any data");
        wrong["data"] = json!({"recipientName": "Wanjiru"});
        assert!(!schema.is_valid(&wrong), "{kind} takes a name");
    }
    let paid = &doc["components"]["schemas"]["PaymentRequestPaidEvent"]["examples"][0];
    assert!(
        crate::support::notify::documented_event_schema(&doc, "payment_request.paid")
            .is_valid(paid)
    );
    // The signature's documented shape is the one remit makes.
    let header = remit::wire::webhook::sign("whsec_test", 1_764_581_400, b"{}");
    let pattern = doc["components"]["parameters"]["RemitSignature"]["schema"]["pattern"]
        .as_str()
        .unwrap();
    let shape = jsonschema::draft202012::new(&json!({"pattern": pattern})).unwrap();
    assert!(shape.is_valid(&json!(header)), "{header}");
}

// ---------------------------------------------------------------------------------------------
// Found by the contract fuzzer.

/// Guards against: a sender or recipient searching escrows by phone got `400 invalid_field`,
/// as if the request were malformed; a role that may never do something gets `403`.
#[test]
fn a_sender_or_recipient_searching_escrows_by_phone_is_forbidden() {
    let app = spawn_app();
    for token in [&app.sender, &app.recipient] {
        let r = app.get("/escrows?recipientPhone=0712345678", token);
        assert_eq!(r.status, 403, "{}", r.text);
        assert_eq!(r.body["code"], "forbidden");
    }
    let r = app.get("/escrows?recipientPhone=0712345678", &app.agent);
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Guards against: an amount in cents written as a JSON number with a zero fraction
/// (`28800.0`, as many JSON encoders write a float) was refused as "not a whole number of
/// cents", though JSON does not tell it from `28800` (and the document's `integer` admits it).
#[test]
fn cents_written_with_a_zero_fraction_are_whole_cents() {
    let app = spawn_app();
    let create = |cents: &str| {
        let body = format!(
            r#"{{"recipientPhone": "{RECIPIENT_PHONE}", "recipientName": "Wanjiru", "totalAmountUsdCents": {cents}, "categories": ["rent"]}}"#
        );
        app.raw(
            "POST",
            "/escrows",
            Some(&app.sender),
            Some(("application/json", body.as_bytes())),
            &[],
        )
    };
    let r = create("28800.0");
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["totalAmountUsdCents"], 28800);
    assert_eq!(create("28800.00").status, 201);
    for refused in ["28800.5", "\"28800.0\"", "2.88e4", "-28800.0"] {
        let r = create(refused);
        assert_eq!(r.status, 400, "{refused}: {}", r.text);
        assert_eq!(r.body["field"], "totalAmountUsdCents", "{refused}");
    }
}
