//! Every JSON answer the tests' servers give is held to `docs/openapi.json`: the schema the
//! document gives for its operation and status. The contract fuzzer holds the answers of
//! generated requests to it; this holds those of every flow the tests walk (a payout resolved by
//! hand, a flag cleared, a restore's ledger), which generated requests seldom reach. A success
//! (2xx) the document does not name for its operation fails; an error status it does not name
//! is left to the tests that mean it (a `405`, a `431`); a status it names with a JSON schema
//! must come as JSON and have that schema. (Tests that speak raw bytes over a socket, and
//! requests to paths the document does not have, are not checked.)

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    })
}

/// The document's path template that `path` (without its query) is, the one with the most
/// literal segments when several match (`/escrows/search` before `/escrows/{id}`).
fn template_of(path: &str) -> Option<&'static str> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    document()["paths"]
        .as_object()?
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') && part.ends_with('}') {
                    if segment.is_empty() {
                        return None;
                    }
                } else if part == segment {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, template.as_str()))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, template)| template)
}

/// The compiled schema of an operation's answer with `status` (JSON), if the document gives one.
fn validator(template: &str, method: &str, status: u16) -> Option<Arc<jsonschema::Validator>> {
    type Cache = Mutex<HashMap<(String, String, u16), Option<Arc<jsonschema::Validator>>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (template.to_string(), method.to_string(), status);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(found) = cache.lock().unwrap().get(&key) {
        return found.clone();
    }
    let doc = document();
    let mut response =
        &doc["paths"][template][method.to_ascii_lowercase()]["responses"][status.to_string()];
    // A response given by reference (`#/components/responses/…`).
    if let Some(reference) = response["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or_default();
        response = &doc["components"]["responses"][name];
    }
    let compiled = response["content"]["application/json"]["schema"]
        .as_object()
        .map(|schema| {
            // The schema, with the document's components beside it for its references.
            let mut root = Value::Object(schema.clone());
            root["components"] = doc["components"].clone();
            Arc::new(jsonschema::draft202012::new(&root).unwrap_or_else(|e| {
                panic!("the schema of {method} {template} {status} does not compile: {e}")
            }))
        });
    cache.lock().unwrap().insert(key, compiled.clone());
    compiled
}

/// Panics, naming every difference, when a JSON answer does not have the schema the document
/// gives for its operation and status.
pub fn check(method: &str, path: &str, status: u16, content_type: Option<&str>, text: &str) {
    let Some(template) = template_of(path) else {
        return;
    };
    let operation = &document()["paths"][template][method.to_ascii_lowercase()];
    if operation.is_null() {
        return;
    }
    // A success the document does not name is a drift of the document or of the server.
    assert!(
        !(200..300).contains(&status) || !operation["responses"][status.to_string()].is_null(),
        "{method} {path} → {status}: docs/openapi.json names no {status} for {method} {template}\n{text}"
    );
    let Some(validator) = validator(template, method, status) else {
        return;
    };
    assert!(
        content_type.is_some_and(|c| c.starts_with("application/json")),
        "{method} {path} → {status}: docs/openapi.json says JSON, the answer's type is {content_type:?}\n{text}"
    );
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        panic!("{method} {path} → {status}: an answer said to be JSON is not: {text}");
    };
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| format!("{e} (at {})", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} → {status}: the answer does not have the schema docs/openapi.json gives {method} {template} {status}: {errors:#?}\n{text}"
    );
}

#[test]
fn an_answer_unlike_its_schema_is_found_and_one_like_it_passes() {
    let body = r#"{"status": "ok", "db": "ok", "version": "1"}"#;
    check("GET", "/health", 200, Some("application/json"), body);
    let wrong = std::panic::catch_unwind(|| {
        check(
            "GET",
            "/health",
            200,
            Some("application/json"),
            r#"{"status": 7}"#,
        )
    });
    assert!(wrong.is_err(), "a wrong /health answer passed");
    let undocumented =
        std::panic::catch_unwind(|| check("GET", "/health", 201, Some("application/json"), body));
    assert!(
        undocumented.is_err(),
        "a success the document does not name passed"
    );
    let not_json =
        std::panic::catch_unwind(|| check("GET", "/health", 200, Some("text/plain"), body));
    assert!(
        not_json.is_err(),
        "a /health answer that is not JSON passed"
    );
    assert_eq!(template_of("/escrows/esc_1?x=1"), Some("/escrows/{id}"));
}
