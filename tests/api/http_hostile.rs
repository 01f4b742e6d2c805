//! Hostile input on every POST: the right 4xx, never a 500 or a crash, and `/health` still
//! answers afterwards.

use crate::support::app::*;
use crate::support::{addr, exchange, status_of};
use serde_json::{json, Value};

/// Every POST route with a valid body for it, and the token that may call it.
fn post_routes(app: &TestApp) -> Vec<(String, &'static str, Value)> {
    let escrow = app.active_escrow(100, &["a"]);
    let pending = app.pending_escrow(100, &["a"], None);
    let request = app.request(&escrow, "a", 150, "A");
    vec![
        (
            "/escrows".into(),
            "sender",
            json!({"recipientPhone": RECIPIENT_PHONE, "recipientName": "W", "totalAmountUsd": 10, "categories": ["a"]}),
        ),
        (
            format!("/escrows/{pending}/deposits"),
            "agent",
            json!({"amountUsd": 1, "reference": "r"}),
        ),
        (format!("/escrows/{pending}/cancel"), "sender", json!({})),
        (
            "/payment-requests".into(),
            "agent",
            json!({"escrowId": escrow, "category": "a", "amountKes": 150, "merchantName": "M",
            "merchantAccount": {"type": "till", "number": "123456"}}),
        ),
        (
            format!("/payment-requests/{request}/approve"),
            "sender",
            json!({}),
        ),
        (
            format!("/payment-requests/{request}/reject"),
            "sender",
            json!({"reason": "no"}),
        ),
        (
            format!("/payment-requests/{request}/cancel"),
            "agent",
            json!({}),
        ),
        (
            "/users".into(),
            "admin",
            json!({"role": "agent", "name": "K"}),
        ),
        (
            format!("/users/{}/tokens", app.agent_id),
            "admin",
            json!({}),
        ),
        (
            "/payouts/po_01m8862jc729qf18f97az6kebb/resolve".into(),
            "admin",
            json!({"outcome": "failed"}),
        ),
    ]
}

#[test]
fn json_declared_utf_8_in_any_spelling_is_read() {
    let app = spawn_app();
    let token = Some(app.token("admin"));
    for (i, content_type) in [
        "application/json",
        "application/json; charset=UTF-8",
        "Application/JSON;charset=\"utf-8\"",
        "application/json; charset=utf8; foo=bar",
        "application/json; charset=csUTF8",
        "application/json; charset=US-ASCII",
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"role": "agent", "name": format!("Kiosk {i}")}).to_string();
        let r = app.raw(
            "POST",
            "/users",
            token,
            Some((content_type, body.as_bytes())),
            &[],
        );
        assert_eq!(r.status, 201, "{content_type}: {}", r.text);
    }
    // `identity`, no coding, is a body as it is.
    let body = json!({"role": "agent", "name": "Kiosk identity"}).to_string();
    let r = app.raw(
        "POST",
        "/users",
        token,
        Some(("application/json", body.as_bytes())),
        &[("Content-Encoding", "identity")],
    );
    assert_eq!(r.status, 201, "{}", r.text);
}

#[test]
fn wrong_content_type_oversized_bodies_bad_json_and_unknown_fields_are_refused_on_every_post() {
    let app = spawn_app();
    for (path, role, body) in post_routes(&app) {
        let token = Some(app.token(role));
        let text = body.to_string();
        // JSON is UTF-8: a body declared in another charset is not read as if it were.
        for content_type in [
            "text/plain",
            "application/json; charset=latin1",
            "application/json;charset=\"ISO-8859-1\"",
            "application/json; charset=utf-16",
        ] {
            let r = app.raw(
                "POST",
                &path,
                token,
                Some((content_type, text.as_bytes())),
                &[],
            );
            assert_eq!(
                (r.status, r.body["code"].as_str()),
                (415, Some("unsupported_media_type")),
                "{path} as {content_type}: {}",
                r.text
            );
        }
        // A body said to be compressed is not read as it is (RFC 9110 8.4): plain JSON sent
        // under `Content-Encoding: gzip` made an escrow, where a proxy before remit would have
        // read something else.
        for coding in ["gzip", "identity, br", "x-custom"] {
            let r = app.raw(
                "POST",
                &path,
                token,
                Some(("application/json", text.as_bytes())),
                &[("Content-Encoding", coding)],
            );
            assert_eq!(
                (r.status, r.body["code"].as_str()),
                (415, Some("unsupported_media_type")),
                "{path} with Content-Encoding {coding}: {}",
                r.text
            );
            assert!(
                r.body["error"]
                    .as_str()
                    .unwrap()
                    .contains("Content-Encoding"),
                "{}",
                r.text
            );
        }
        let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(65 * 1024));
        let r = app.raw(
            "POST",
            &path,
            token,
            Some(("application/json", huge.as_bytes())),
            &[],
        );
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (413, Some("body_too_large")),
            "{path}: {}",
            r.text
        );
        let r = app.raw(
            "POST",
            &path,
            token,
            Some(("application/json", b"{\"a\": ")),
            &[],
        );
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some("invalid_json")),
            "{path}: {}",
            r.text
        );
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let r = app.raw(
            "POST",
            &path,
            token,
            Some(("application/json", deep.as_bytes())),
            &[],
        );
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some("invalid_json")),
            "{path}: {}",
            r.text
        );
        let mut typo = body.clone();
        typo["ammountKes"] = json!(5);
        let r = app.raw(
            "POST",
            &path,
            token,
            Some(("application/json", typo.to_string().as_bytes())),
            &[],
        );
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some("unknown_field")),
            "{path}: {}",
            r.text
        );
        assert!(
            r.body["error"].as_str().unwrap().contains("ammountKes"),
            "{path}: {}",
            r.text
        );
    }
    assert_eq!(app.raw("GET", "/health", None, None, &[]).status, 200);
}

/// A field whose name is misspelt (`ammountKes` for `amountKes`) is what the client got wrong:
/// every POST reports it as `unknown_field`, naming it and the field it was meant to be, even
/// when the field meant is required and so also missing.
#[test]
fn a_misspelt_field_is_reported_as_unknown_naming_the_field_meant() {
    let app = spawn_app();
    let misspell = |key: &str| format!("{}{}", &key[..2], &key[1..]);
    let refused = |method: &str, path: &str, role: &str, body: &Value, typo: &str| {
        let r = app.raw(
            method,
            path,
            Some(app.token(role)),
            Some(("application/json", body.to_string().as_bytes())),
            &[],
        );
        assert_eq!(
            (r.status, r.body["code"].as_str(), r.body["field"].as_str()),
            (400, Some("unknown_field"), Some(typo)),
            "{path} {body}: {}",
            r.text
        );
        r.body["error"].as_str().unwrap().to_string()
    };
    // Every field of every POST, misspelt: refused, and a field it is taken for is the right one.
    for (path, role, body) in post_routes(&app) {
        for key in body.as_object().unwrap().keys() {
            let mut sent = body.as_object().unwrap().clone();
            let value = sent.remove(key).unwrap();
            sent.insert(misspell(key), value);
            let error = refused("POST", &path, role, &Value::Object(sent), &misspell(key));
            assert!(
                !error.contains("did you mean") || error.contains(&format!("did you mean {key}?")),
                "{path}: {error}"
            );
        }
    }
    // Required fields, misspelt in each way the check knows, name the field meant.
    let mut cases: Vec<(&str, String, &str, Value, &str, &str)> = Vec::new();
    let escrow = app.active_escrow(100, &["a"]);
    cases.push((
        "POST",
        "/payment-requests".into(),
        "agent",
        json!({"escrowId": escrow, "category": "a", "ammountKes": 150, "merchantName": "M",
            "merchantAccount": {"type": "till", "number": "123456"}}),
        "ammountKes",
        "amountKes",
    ));
    cases.push((
        "POST",
        "/payment-requests".into(),
        "agent",
        json!({"escrowId": escrow, "category": "a", "amount_kes": 150, "merchantName": "M",
            "merchantAccount": {"type": "till", "number": "123456"}}),
        "amount_kes",
        "amountKes",
    ));
    cases.push((
        "POST",
        "/payment-requests".into(),
        "agent",
        json!({"escrowId": escrow, "category": "a", "amountKes": 150, "merchantName": "M",
            "merchantAccount": {"type": "till", "numbr": "123456"}}),
        "merchantAccount.numbr",
        "merchantAccount.number",
    ));
    cases.push((
        "POST",
        "/escrows".into(),
        "sender",
        json!({"recipientPhone": RECIPIENT_PHONE, "recipientName": "W", "totalAmountUsd": 10,
            "categories": [{"name": "a", "amountUSD": 10}]}),
        "categories[0].amountUSD",
        "categories[0].amountUsd",
    ));
    cases.push((
        "POST",
        format!("/escrows/{escrow}/deposits"),
        "agent",
        json!({"amount_usd_cents": 100, "reference": "typo"}),
        "amount_usd_cents",
        "amountUsdCents",
    ));
    cases.push((
        "POST",
        format!("/escrows/{escrow}/deposits"),
        "agent",
        json!({"ammountKes": 150, "reference": "typo-kes"}),
        "ammountKes",
        "amountKes",
    ));
    cases.push((
        "PUT",
        "/fx-rates/USD-KES".into(),
        "admin",
        json!({"rat": 130}),
        "rat",
        "rate",
    ));
    for (method, path, role, body, typo, meant) in cases {
        let error = refused(method, &path, role, &body, typo);
        assert!(
            error.contains(&format!("did you mean {meant}?")),
            "{path} {body}: {error}"
        );
    }
    // A field that is missing and nothing like it sent is still missing.
    let r = app.post(
        "/payment-requests",
        app.token("agent"),
        &json!({"escrowId": escrow, "category": "a", "merchantName": "M", "colour": "red",
            "merchantAccount": {"type": "till", "number": "123456"}}),
    );
    assert_eq!(
        (r.status, r.body["code"].as_str(), r.body["field"].as_str()),
        (400, Some("missing_field"), Some("amountKes")),
        "{}",
        r.text
    );
}

/// `NaN` and `Infinity` are not JSON, but some writers make them of a float (Python's `json`
/// does): the answer names the field they were sent for, as for `"NaN"` in a string.
#[test]
fn a_bare_nan_or_infinity_names_its_field() {
    let app = spawn_app();
    for value in ["NaN", "Infinity", "-Infinity"] {
        let body = format!(
            r#"{{"recipientPhone": "{RECIPIENT_PHONE}", "recipientName": "W", "categories": ["a"], "totalAmountUsd": {value}}}"#
        );
        let r = app.raw(
            "POST",
            "/escrows",
            Some(&app.sender),
            Some(("application/json", body.as_bytes())),
            &[],
        );
        assert_eq!(
            (r.status, r.body["code"].as_str(), r.body["field"].as_str()),
            (400, Some("invalid_field"), Some("totalAmountUsd")),
            "{value}: {}",
            r.text
        );
    }
}

#[test]
fn bad_amounts_phones_and_names_get_400_naming_the_field() {
    let app = spawn_app();
    let base = json!({"recipientPhone": RECIPIENT_PHONE, "recipientName": "W", "totalAmountUsd": 10, "categories": ["a"]});
    let big = || serde_json::from_str::<Value>("1e30").unwrap();
    let two63 = || serde_json::from_str::<Value>("9223372036854775808").unwrap();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("totalAmountUsd", json!(-5), "totalAmountUsd"),
        ("totalAmountUsd", json!(0), "totalAmountUsd"),
        ("totalAmountUsd", json!("1.005"), "totalAmountUsd"),
        ("totalAmountUsd", big(), "totalAmountUsd"),
        ("totalAmountUsd", two63(), "totalAmountUsd"),
        ("totalAmountUsd", json!("abc"), "totalAmountUsd"),
        ("totalAmountUsd", json!("NaN"), "totalAmountUsd"),
        ("totalAmountUsd", json!(10_000.01), "totalAmountUsd"),
        ("totalAmountUsd", json!(true), "totalAmountUsd"),
        ("recipientPhone", json!("+255712345678"), "recipientPhone"),
        ("recipientPhone", json!("07123"), "recipientPhone"),
        ("recipientPhone", json!(712345678), "recipientPhone"),
        (
            "categories",
            json!(["x'); DROP TABLE escrows;--"]),
            "categories[0]",
        ),
        (
            "categories",
            json!(["<script>alert(1)</script>"]),
            "categories[0]",
        ),
        ("categories", json!([]), "categories"),
        ("categories", json!(["a", "a"]), "categories"),
        ("categories", json!("a"), "categories"),
        ("recipientName", json!(""), "recipientName"),
        ("recipientName", json!("x".repeat(500)), "recipientName"),
        ("dailyLimitUsd", json!(-1), "dailyLimitUsd"),
        // Over the total (USD 10), named as it was sent, in dollars or in cents.
        ("dailyLimitUsd", json!(11), "dailyLimitUsd"),
        ("dailyLimitUsdCents", json!(1001), "dailyLimitUsdCents"),
        // Cents are a JSON number: text is the decimal spelling's alone (API.md).
        ("totalAmountUsdCents", json!("1000"), "totalAmountUsdCents"),
        ("dailyLimitUsdCents", json!("500"), "dailyLimitUsdCents"),
    ];
    for (field, value, named) in cases {
        let mut body = base.clone();
        if field == "totalAmountUsdCents" {
            body.as_object_mut().unwrap().remove("totalAmountUsd");
        }
        body[field] = value.clone();
        let r = app.post("/escrows", &app.sender, &body);
        assert_eq!(r.status, 400, "{field}={value}: {}", r.text);
        assert_eq!(r.body["field"], named, "{field}={value}: {}", r.text);
        assert!(
            r.body["error"].as_str().unwrap().starts_with(named),
            "{field}={value}: {}",
            r.text
        );
    }
    let mut both = base.clone();
    both["totalAmountUsdCents"] = json!(1000);
    assert_eq!(
        app.post("/escrows", &app.sender, &both).status,
        400,
        "both spellings at once"
    );
    let mut missing = base.clone();
    missing.as_object_mut().unwrap().remove("totalAmountUsd");
    let r = app.post("/escrows", &app.sender, &missing);
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("missing_field"))
    );
    assert_eq!(app.raw("GET", "/health", None, None, &[]).status, 200);
    app.assert_integrity();
}

#[test]
fn static_paths_cannot_escape_the_embedded_ui() {
    let app = spawn_app();
    for path in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc/passwd",
        "/ui/../Cargo.toml",
        "/.env",
        "/remit.db",
        "/%00",
    ] {
        let r = app.raw("GET", path, None, None, &[]);
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert!(!r.text.contains("root:"), "{path} leaked a file");
    }
    let r = app.raw("GET", "/", None, None, &[]);
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Type").unwrap().starts_with("text/html"));
}

#[test]
fn a_path_is_routed_as_written_never_normalised_into_another() {
    let app = spawn_app();
    // An extra leading slash, or none, names no route and no page: `//users` is not `/users`
    // (a proxy's rule for `/users` must not be walked around), `health` is not `/health`.
    for target in [
        "//users",
        "//health",
        "health",
        "users",
        "/users/",
        "//",
        "//index.html",
    ] {
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            app.admin
        );
        let (answer, _) = exchange(addr(&app), request.as_bytes());
        assert_eq!(status_of(&answer), 404, "{target}: {answer}");
        assert!(answer.contains("not_found"), "{target}: {answer}");
    }
    let r = app.raw("GET", "/users", Some(&app.admin), None, &[]);
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn tokens_that_are_missing_malformed_or_unknown_are_401() {
    let app = spawn_app();
    for header in [
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer rmt_00000000000000000000000000000000000000",
        &format!("Bearer {}", "x".repeat(5000)),
    ] {
        let headers: Vec<(&str, &str)> = if header.is_empty() {
            vec![]
        } else {
            vec![("Authorization", header)]
        };
        let r = app.raw("GET", "/escrows", None, None, &headers);
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (401, Some("unauthenticated")),
            "{header:.40}: {}",
            r.text
        );
        assert!(!r.text.contains("rmt_"), "never echo a token");
    }
}

/// Who asks comes before what they asked: a query the route does not take is `401` without a
/// valid token and `403` for a role that may never call the route, as a body would be; only a
/// caller who may call it is told of the query.
#[test]
fn the_caller_is_known_before_the_query_is_judged() {
    let app = spawn_app();
    for path in ["/users?x=1", "/admin/integrity?x=1", "/escrows?x=1"] {
        let r = app.raw("GET", path, None, None, &[]);
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (401, Some("unauthenticated")),
            "{path}: {}",
            r.text
        );
    }
    let r = app.get("/users?x=1", &app.recipient);
    assert_eq!(r.status, 403, "{}", r.text);
    let r = app.get("/users?x=1", &app.admin);
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("unknown_field")),
        "{}",
        r.text
    );
}

/// Guards against: with so few open files allowed that the server cannot run (`ulimit -n 12`),
/// the start said only "unable to open database file", again and again for seconds, and left
/// the ledger's files made.
#[test]
fn too_few_open_files_to_serve_is_said_at_once_with_what_to_raise() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new("/usr/bin/prlimit");
    cmd.current_dir(dir.path())
        .env_clear()
        .env("ENCRYPTION_KEY", crate::support::TEST_KEY)
        .arg("--nofile=12")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_remit"))
        .args(["serve", "--addr", "127.0.0.1:0", "--db", "./remit.db"]);
    let ran = crate::support::process::run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr
            .contains("may open only 12 files (ulimit -n), and the server needs at least 144")
            && ran.stderr.contains("LimitNOFILE="),
        "{ran}"
    );
    assert!(!ran.stderr.contains("unable to open"), "{ran}");
    assert!(!dir.path().join("remit.db").exists(), "nothing made");
}

/// Guards against: with fewer open files allowed (`ulimit -n`, 1,024 in many shells) than the
/// connection cap (1,024) and the server's own, the cap was never reached: the server ran out of
/// descriptors first, so the kernel refused every new client rather than the server closing
/// the connection idle the longest, one client holding idle sockets locked everyone out, and
/// the failed accepts were logged a hundred times a second.
#[test]
fn a_client_holding_more_sockets_than_the_open_files_allowed_does_not_lock_others_out() {
    use crate::support::process::Server;
    use crate::support::TEST_KEY;
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("remit.db"), dir.path().join("remit.log"));
    let server = Server::start_with_open_files(&db, TEST_KEY, &log, 256);
    let address = server.base.trim_start_matches("http://").to_string();
    // More idle connections than the server may open files; the tests' own process, whose
    // other tests hold files too, may open as many as it is allowed.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
    let held: Vec<std::net::TcpStream> = (0..300)
        .map(|_| std::net::TcpStream::connect(&address).unwrap())
        .collect();
    for _ in 0..3 {
        let health = server.get("/health", "");
        assert_eq!(health.status, 200, "{}", health.text);
    }
    drop(held);
    let text = server.log();
    assert!(
        text.contains("this process may open 256 files (ulimit -n), too few for 1024 connections")
            && text.contains("at most 128 connections here"),
        "{text}"
    );
    assert!(
        text.matches("Error accepting new client").count() <= 1,
        "{text}"
    );
}

/// Guards against: the listening socket kept Rust's queue of 128 connections not yet accepted,
/// and a burst of new connections past it made the kernel drop honest clients' handshakes
/// (each retried a second later: up to 5 s to connect). `ss` shows a listening socket's queue
/// length as its Send-Q.
#[test]
fn the_listening_socket_queues_a_thousand_connections_not_yet_accepted() {
    use crate::support::process::Server;
    use crate::support::TEST_KEY;
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("remit.db"), dir.path().join("remit.log"));
    let server = Server::start(&db, TEST_KEY, &log, &[]);
    let port = server.base.rsplit(':').next().unwrap().to_string();
    let out = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2, which .ci/run installs)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let queue: Vec<u32> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect();
    assert_eq!(queue, vec![1024], "{text}");
}

/// Guards against: requests refused by the HTTP layer before a route was known (a malformed
/// request line, an HTTP version not served, a header flood) were in the access log only, not in
/// `/metrics`, which says it counts every request: a flood of them was invisible to a dashboard.
#[test]
fn requests_refused_before_routing_are_counted_in_metrics() {
    use crate::support::process::Server;
    use crate::support::TEST_KEY;
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("remit.db"), dir.path().join("remit.log"));
    let server = Server::start(&db, TEST_KEY, &log, &[]);
    let at: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let refused = |bytes: &[u8]| status_of(&exchange(at, bytes).0);
    let flood: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let sent = [
        refused(b"X\"Y /escrows HTTP/1.1\r\nHost: a\r\n\r\n"),
        refused(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
        refused(format!("GET /health HTTP/1.1\r\nHost: a\r\n{flood}\r\n").as_bytes()),
        refused(b"GARBAGE\r\n\r\n"),
    ];
    let metrics = server.get("/metrics", "").text;
    let mut expected = std::collections::BTreeMap::new();
    for status in sent {
        assert!(status >= 400, "{sent:?}");
        *expected.entry(status).or_insert(0u64) += 1;
    }
    for (status, n) in expected {
        let line = format!("remit_http_refused_before_routing_total{{status=\"{status}\"}} {n}");
        assert!(metrics.contains(&line), "{line} not in:\n{metrics}");
    }
}
