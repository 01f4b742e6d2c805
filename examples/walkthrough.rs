//! A newcomer's tour: drives a running remit server through the whole flow, printing every
//! request and answer. Start the server first (`cargo run --release`), then:
//!
//! `cargo run --example walkthrough -- <admin token> [http://127.0.0.1:3000]`

use serde_json::{json, Value};
use std::time::{Duration, Instant};

struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        println!("\n> {method} {path}");
        if let Some(b) = &body {
            println!("{}", serde_json::to_string_pretty(b).unwrap_or_default());
        }
        let url = format!("{}{}", self.base, path);
        let builder = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json");
        let request = builder.body(body.map(|b| b.to_string()).unwrap_or_default());
        let mut response = match request
            .map_err(|e| e.to_string())
            .and_then(|r| self.agent.run(r).map_err(|e| e.to_string()))
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("cannot reach {url}: {e}\nIs the server running? Start it with `cargo run --release`.");
                std::process::exit(2);
            }
        };
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        println!(
            "< {status}\n{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        if status >= 400 {
            eprintln!("\nstopping: the server answered {status}");
            std::process::exit(1);
        }
        value
    }
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(admin) = args
        .first()
        .cloned()
        .or_else(|| std::env::var("REMIT_ADMIN_TOKEN").ok())
    else {
        eprintln!("usage: walkthrough <admin token> [base URL]   (the server printed the admin token at its first start)");
        std::process::exit(2);
    };
    let base = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:3000".into());
    let client = Client {
        base,
        agent: ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        ),
    };

    println!("== 1. The admin creates a sender (abroad) and a kiosk agent (in Kenya)");
    let sender = client.call(
        "POST",
        "/users",
        &admin,
        Some(json!({"role": "sender", "name": "Amina"})),
    );
    let agent = client.call(
        "POST",
        "/users",
        &admin,
        Some(json!({"role": "agent", "name": "Kiosk 7"})),
    );
    let (sender, agent) = (text(&sender, "token"), text(&agent, "token"));

    println!("\n== 2. The sender puts USD 500 in escrow for Wanjiru, split over three categories");
    let escrow = client.call(
        "POST",
        "/escrows",
        &sender,
        Some(json!({"recipientPhone": "0712345678", "recipientName": "Wanjiru", "totalAmountUsd": 500,
                    "categories": ["electricity", "water", "school_fees"], "dailyLimitUsd": 100})),
    );
    let escrow_id = text(&escrow, "escrowId");

    println!("\n== 3. The agent records the cash deposit at the kiosk; the escrow becomes active");
    client.call(
        "POST",
        &format!("/escrows/{escrow_id}/deposits"),
        &agent,
        Some(json!({"amountUsd": 500, "reference": format!("receipt-{escrow_id}")})),
    );

    println!("\n== 4. The agent asks for KES 1,500 of electricity for Wanjiru (USD fixed at today's rate)");
    let request = client.call(
        "POST",
        "/payment-requests",
        &agent,
        Some(json!({"escrowId": escrow_id, "category": "electricity", "amountKes": 1500, "merchantName": "Kenya Power",
                    "merchantAccount": {"type": "paybill", "number": "888880", "accountReference": "37194502618"},
                    "note": "November token"})),
    );
    let request_id = text(&request, "paymentRequestId");

    println!("\n== 5. The sender approves: the money is reserved and the M-Pesa payout is queued");
    client.call(
        "POST",
        &format!("/payment-requests/{request_id}/approve"),
        &sender,
        Some(json!({})),
    );

    println!("\n== 6. M-Pesa (the simulator) pays and calls back; we wait for the receipt");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = client.call(
            "GET",
            &format!("/payment-requests/{request_id}"),
            &sender,
            None,
        );
        let status = text(&r, "status");
        if status == "paid" || status == "failed" || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(1000));
    }

    println!("\n== 7. The balances: where every cent went");
    client.call("GET", &format!("/escrows/{escrow_id}"), &sender, None);
    client.call("GET", &format!("/audit?entity={escrow_id}"), &sender, None);
    println!(
        "\nDone. Try the web UI at {} with one of these tokens.",
        client.base
    );
}
