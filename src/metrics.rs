//! Counters for `GET /metrics` (Prometheus text format): requests by route and status, request
//! latency, the writer's batches and commits, gauges read from the database, and replication's
//! lag.

use crate::store::Store;
use rusqlite::OptionalExtension;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the latency histogram, in seconds.
const LATENCY_BUCKETS_S: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Request counters and the latency histogram.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_S.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    /// HTTP workers waiting now for request bodies still arriving (`http::server::Gates`).
    pub body_waits: AtomicU64,
    /// Requests refused `503` because their client's share of such workers was full and their
    /// body did not come in its grace.
    pub body_waits_refused: AtomicU64,
    /// What the payout worker's calls to M-Pesa came to (the worker holds the same).
    pub payout_calls: std::sync::Arc<crate::payout::CallStats>,
}

impl Metrics {
    /// A request whose handler panicked (answered 500 by the connection): its method and route
    /// went with the handler, so it is counted as `method="-",route="panicked"`, without a time.
    pub fn observe_panicked(&self) {
        if let Ok(mut map) = self.requests.lock() {
            *map.entry(("-", "panicked", 500)).or_insert(0) += 1;
        }
    }

    /// Counts one request.
    pub fn observe(&self, method: &'static str, route: &'static str, status: u16, micros: u64) {
        if let Ok(mut map) = self.requests.lock() {
            *map.entry((method, route, status)).or_insert(0) += 1;
        }
        let seconds = micros as f64 / 1e6;
        for (i, bound) in LATENCY_BUCKETS_S.iter().enumerate() {
            if seconds <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The whole exposition, including gauges read from the database now; the M-Pesa float's
    /// balances only for an admin (`admin`), as `GET /admin/float`.
    pub fn render(
        &self,
        store: &Store,
        payout_timeout_s: i64,
        notify: &crate::notify::Hub,
        replication: Option<&crate::replicate::Status>,
        admin: bool,
        threads_ended: usize,
    ) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str(
            "# HELP remit_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE remit_http_requests_total counter\n");
        if let Ok(map) = self.requests.lock() {
            for ((method, route, status), n) in map.iter() {
                let _ = writeln!(out, "remit_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}");
            }
        }
        // Refused by the HTTP layer before a route was known (no method or route to count
        // them under above): a header flood or a smuggling probe is counted, not only logged.
        out.push_str("# HELP remit_http_refused_before_routing_total HTTP requests refused before they reached a route (a malformed request line or header, too many or too long headers, a request smuggling probe, an HTTP version not served), by status; not in remit_http_requests_total.\n");
        out.push_str("# TYPE remit_http_refused_before_routing_total counter\n");
        for (status, n) in tiny_http::refused_before_routing() {
            let _ = writeln!(
                out,
                "remit_http_refused_before_routing_total{{status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP remit_http_request_duration_seconds Time from request to response.\n");
        out.push_str("# TYPE remit_http_request_duration_seconds histogram\n");
        for (i, bound) in LATENCY_BUCKETS_S.iter().enumerate() {
            let _ = writeln!(
                out,
                "remit_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                self.latency_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "remit_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "remit_http_request_duration_seconds_sum {}",
            self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "remit_http_request_duration_seconds_count {count}");
        one(
            &mut out,
            "gauge",
            "remit_background_threads_ended",
            "Background threads (payouts, housekeeping, notifications, replication) that ended before the stop: a fault, in the log; /health answers 503 while it is above 0.",
            threads_ended,
        );
        one(
            &mut out,
            "gauge",
            "remit_http_body_waits",
            "HTTP workers waiting now for request bodies still arriving (at most half of them).",
            self.body_waits.load(Ordering::Relaxed),
        );
        one(
            &mut out,
            "counter",
            "remit_http_body_waits_refused_total",
            "Requests refused 503 because their client's share of the workers waiting for slow bodies was full.",
            self.body_waits_refused.load(Ordering::Relaxed),
        );

        let stats = &store.stats;
        one(
            &mut out,
            "counter",
            "remit_writer_batches_total",
            "Writer transactions (group commits).",
            stats.batches.load(Ordering::Relaxed),
        );
        one(
            &mut out,
            "counter",
            "remit_writer_commands_total",
            "Writer commands run.",
            stats.commands.load(Ordering::Relaxed),
        );
        out.push_str("# HELP remit_writer_batch_size Commands per group commit.\n# TYPE remit_writer_batch_size histogram\n");
        let mut cumulative = 0;
        for (bucket, le) in stats
            .batch_size_buckets
            .iter()
            .zip(["1", "4", "16", "64", "256"])
        {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "remit_writer_batch_size_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "remit_writer_batch_size_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(out, "remit_writer_batch_size_count {cumulative}");
        let _ = writeln!(
            out,
            "remit_writer_batch_size_sum {}",
            stats.commands.load(Ordering::Relaxed)
        );
        one(
            &mut out,
            "counter",
            "remit_writer_commit_seconds_total",
            "Time spent in COMMIT (fsync).",
            stats.commit_micros_total.load(Ordering::Relaxed) as f64 / 1e6,
        );
        one(
            &mut out,
            "gauge",
            "remit_writer_queue_depth",
            "Commands waiting for the writer.",
            stats.queue_depth.load(Ordering::Relaxed),
        );

        let gauges = store.read(|conn, _| {
            let by_status = |sql: &str| -> crate::Result<Vec<(String, i64)>> {
                Ok(conn
                    .prepare_cached(sql)?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?)
            };
            // Kept by triggers (schema 6): a few rows, whatever the size of the ledger.
            let escrows = by_status(
                "SELECT status, n FROM state_counts WHERE entity = 'escrow' AND n > 0 ORDER BY status",
            )?;
            let payouts = by_status(
                "SELECT status, n FROM state_counts WHERE entity = 'payout' AND n > 0 ORDER BY status",
            )?;
            let reversed = by_status(
                "SELECT reversal, COUNT(*) FROM deposits WHERE reversal IS NOT NULL GROUP BY reversal",
            )?;
            let balances: Vec<(String, i64)> = conn
                // In shillings only: an account reported in another currency is not a KES figure.
                .prepare_cached("SELECT account, available_kes_cents FROM mpesa_balances WHERE upper(currency) = 'KES' ORDER BY account")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let flagged_escrows: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM escrows WHERE flag_reason IS NOT NULL")?
                .query_row([], |r| r.get(0))?;
            let stuck = crate::service::payouts::stuck_count(
                conn,
                payout_timeout_s,
                crate::time::now_unix(),
            )?;
            let flagged_settled = crate::service::payouts::flagged_with_result_count(conn)?;
            // The oldest payout M-Pesa has not taken yet (ids are in time order: one step of
            // the status index), so that a gateway that takes nothing (an OAuth outage, wrong
            // credentials) is seen before anyone asks why a payment has not come.
            // Payouts held with their flagged escrow (a card deposit refunded or disputed) wait
            // for the operator, not for M-Pesa: counted apart.
            let oldest_queued: Option<String> = conn
                .prepare_cached(concat!(
                    "SELECT created_at FROM payouts WHERE status = 'queued' AND NOT ",
                    crate::service::payouts::held_with_escrow!("payouts"),
                    " ORDER BY id LIMIT 1"
                ))?
                .query_row([], |r| r.get(0))
                .optional()?;
            let held = crate::service::payouts::held_count(conn)?;
            let queued_for = oldest_queued
                .as_deref()
                .and_then(crate::time::parse_rfc3339)
                .map_or(0, |at| (crate::time::now_unix() - at).max(0));
            Ok(LedgerGauges {
                escrows,
                payouts,
                stuck,
                queued_for,
                flagged_settled,
                held,
                reversed,
                flagged_escrows,
                balances,
            })
        });
        let mut unread = gauges.as_ref().err().map(|e| e.logged().to_string());
        if let Ok(LedgerGauges {
            escrows,
            payouts,
            stuck,
            queued_for,
            flagged_settled,
            held,
            reversed,
            flagged_escrows,
            balances,
        }) = gauges
        {
            if admin {
                out.push_str("# HELP remit_mpesa_balance_kes M-Pesa account balances last reported (Daraja), in KES (with an admin's token only).\n# TYPE remit_mpesa_balance_kes gauge\n");
                for (account, cents) in balances {
                    let amount = serde_json::to_string(&crate::money::Decimal::of_minor(cents, 2))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "remit_mpesa_balance_kes{{account=\"{}\"}} {amount}",
                        label_value(&account)
                    );
                }
            }
            out.push_str("# HELP remit_deposits_reversed Deposits refunded or disputed at Stripe (applied ones, and flagged ones: never applied), by their reversal (disputed once disputed).\n# TYPE remit_deposits_reversed gauge\n");
            for (reversal, n) in reversed {
                let _ = writeln!(
                    out,
                    "remit_deposits_reversed{{reversal=\"{reversal}\"}} {n}"
                );
            }
            one(
                &mut out,
                "gauge",
                "remit_escrows_flagged",
                "Escrows flagged for the operator.",
                flagged_escrows,
            );
            out.push_str("# HELP remit_escrows Escrows by status.\n# TYPE remit_escrows gauge\n");
            for (status, n) in escrows {
                let _ = writeln!(out, "remit_escrows{{status=\"{status}\"}} {n}");
            }
            out.push_str("# HELP remit_payouts Payouts by status.\n# TYPE remit_payouts gauge\n");
            for (status, n) in payouts {
                let _ = writeln!(out, "remit_payouts{{status=\"{status}\"}} {n}");
            }
            one(
                &mut out,
                "gauge",
                "remit_payouts_stuck",
                "Payouts with no result past the timeout, or flagged while without one.",
                stuck,
            );
            one(
                &mut out,
                "gauge",
                "remit_payouts_flagged_with_result",
                "Payouts flagged after their result (another outcome reported, a receipt of another payment): the operator's to confirm; a failed one holds its escrow.",
                flagged_settled,
            );
            one(
                &mut out,
                "gauge",
                "remit_payouts_queued_oldest_seconds",
                "How long the oldest payout not yet taken by M-Pesa has waited, in seconds (0: none); payouts held with their flagged escrow are not counted.",
                queued_for,
            );
            one(
                &mut out,
                "counter",
                "remit_payout_calls_not_sent_total",
                "Payout calls that reached nothing (no access token from M-Pesa, no connection, turned away before processing); each is sent again.",
                self.payout_calls.not_sent.load(Ordering::Relaxed),
            );
            one(
                &mut out,
                "gauge",
                "remit_payout_gateway_unreachable_seconds",
                "How long every payout call has reached nothing, in seconds (0: the last call reached M-Pesa).",
                self.payout_calls.unreachable_for_s(),
            );
            one(
                &mut out,
                "gauge",
                "remit_payouts_held",
                "Payouts queued and held, their escrow flagged (a card deposit refunded or disputed at Stripe) until an admin clears it.",
                held,
            );
        }
        if let Err(e) = render_notify(&mut out, store, notify) {
            unread.get_or_insert(e.logged().to_string());
        }
        // Gauges that could not be read are left out of the page: said by this one, so that
        // an alert on a gauge left out (`remit_payouts_stuck > 0`) is not silent for it.
        if let Some(why) = &unread {
            crate::error::warn_every_10s!(
                "/metrics: the ledger's gauges could not be read and are left out of the page: {why}"
            );
        }
        one(
            &mut out,
            "gauge",
            "remit_ledger_gauges_read",
            "1 when the gauges read from the ledger (escrows, payouts, notifications waiting) are on this page; 0 when reading them failed: they are left out, and the log says why.",
            u8::from(unread.is_none()),
        );
        let size = |suffix: &str| {
            let mut name = store.path().as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(name).map(|m| m.len()).unwrap_or(0)
        };
        one(
            &mut out,
            "gauge",
            "remit_database_bytes",
            "Size of the database file.",
            size(""),
        );
        one(
            &mut out,
            "gauge",
            "remit_disk_free_bytes",
            "Space left for remit on the disk that holds the database (writes are refused when it is gone).",
            crate::store::disk_free_bytes(store.path()).unwrap_or(0),
        );
        one(
            &mut out,
            "gauge",
            "remit_wal_bytes",
            "Size of the write-ahead log file (it keeps its blocks when the log restarts).",
            size("-wal"),
        );
        let stats = &store.stats;
        one(
            &mut out,
            "gauge",
            "remit_wal_in_use_bytes",
            "What the write-ahead log holds since it last restarted, as of the last commit.",
            stats.wal_in_use_bytes.load(Ordering::Relaxed),
        );
        one(
            &mut out,
            "counter",
            "remit_writer_shared_savepoints_undone_total",
            "Runs of approvals that shared a savepoint and were undone and run again because one of them failed after changing rows.",
            stats.shared_savepoints_undone.load(Ordering::Relaxed),
        );
        one(
            &mut out,
            "counter",
            "remit_writer_journals_outgrown_total",
            "Batches rolled back and run again with their journals in memory because SQLite could not write (a command journaled more than 4 MiB, or the disk is full).",
            stats.journals_outgrown.load(Ordering::Relaxed),
        );
        one(
            &mut out,
            "counter",
            "remit_wal_resets_total",
            "Times the write-ahead log neared its bound and was checkpointed and restarted.",
            stats.wal_resets.load(Ordering::Relaxed),
        );
        one(
            &mut out,
            "counter",
            "remit_wal_reset_failures_total",
            "Times the writer tried to restart the write-ahead log and a reader or a checkpoint held it (tried again after the next batch).",
            stats.wal_reset_failures.load(Ordering::Relaxed),
        );
        one(
            &mut out,
            "counter",
            "remit_wal_reset_seconds_total",
            "Time the writer spent in those checkpoints and in the attempts that failed, all together.",
            format!(
                "{:.6}",
                stats.wal_reset_micros_total.load(Ordering::Relaxed) as f64 / 1e6
            ),
        );
        one(
            &mut out,
            "gauge",
            "remit_wal_reset_seconds_max",
            "The longest of those checkpoints (the writer waits for it).",
            format!(
                "{:.6}",
                stats.wal_reset_micros_max.load(Ordering::Relaxed) as f64 / 1e6
            ),
        );
        if let Some(status) = replication {
            let view = status.view();
            one(
                &mut out,
                "gauge",
                "remit_replication_lag_seconds",
                "How long the oldest change not yet in PostgreSQL has waited (0: none).",
                format!("{:.3}", view.lag_seconds),
            );
            one(
                &mut out,
                "gauge",
                "remit_replication_lag_changes",
                "Committed transactions not yet in PostgreSQL.",
                view.lag_changes,
            );
            one(
                &mut out,
                "gauge",
                "remit_replication_connected",
                "1 while PostgreSQL answers, 0 while it does not.",
                u8::from(view.connected),
            );
            one(
                &mut out,
                "counter",
                "remit_replication_rows_total",
                "Rows written to PostgreSQL since start.",
                view.rows,
            );
        }
        out
    }
}

/// One metric of one value: its `HELP` and `TYPE` lines (`kind`: counter or gauge), then it.
/// The ledger's gauges, read in one snapshot.
struct LedgerGauges {
    /// Escrows by status.
    escrows: Vec<(String, i64)>,
    /// Payouts by status.
    payouts: Vec<(String, i64)>,
    stuck: i64,
    /// Seconds the oldest payout M-Pesa has not taken has waited (held ones aside).
    queued_for: i64,
    /// Flagged after their result.
    flagged_settled: i64,
    /// Queued and held with their flagged escrow.
    held: i64,
    /// Deposits by reversal.
    reversed: Vec<(String, i64)>,
    flagged_escrows: i64,
    /// M-Pesa balances by account, in KES cents.
    balances: Vec<(String, i64)>,
}

/// A label's value as the text format wants it: `\`, `"` and a line break escaped (an account's
/// name is M-Pesa's text; one holding a quote broke the whole page for the scraper).
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn one(out: &mut String, kind: &str, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// Outgoing notifications: counters since the start, and what waits, read from the database
/// (each through a small partial index).
fn render_notify(
    out: &mut String,
    store: &Store,
    notify: &crate::notify::Hub,
) -> crate::Result<()> {
    let stats = &notify.stats;
    let counter = |out: &mut String, name: &str, help: &str, value: &AtomicU64| {
        one(out, "counter", name, help, value.load(Ordering::Relaxed));
    };
    counter(
        out,
        "remit_webhook_attempts_total",
        "Webhook delivery attempts made since the start.",
        &stats.attempts,
    );
    counter(
        out,
        "remit_webhook_attempts_failed_total",
        "Webhook attempts without a 2xx answer (an error status, or no answer in time).",
        &stats.attempts_failed,
    );
    counter(
        out,
        "remit_webhook_deliveries_delivered_total",
        "Webhook deliveries a receiver took (2xx) since the start.",
        &stats.delivered,
    );
    counter(
        out,
        "remit_webhook_deliveries_failed_total",
        "Webhook deliveries that ended failed since the start: their retries ran out, or an admin's retry of a failed one failed again (counted again).",
        &stats.failed,
    );
    counter(
        out,
        "remit_notify_rests_total",
        "Stints of notification work (the fan-out of events, a webhook endpoint's deliveries) followed by a rest, to yield to a busy ledger, since the start.",
        &notify.pace.rests,
    );
    counter(
        out,
        "remit_sms_sent_total",
        "SMS the gateway took since the start.",
        &stats.sms_sent,
    );
    counter(
        out,
        "remit_sms_failed_total",
        "SMS refused by the gateway, or out of tries, since the start.",
        &stats.sms_failed,
    );
    let gauges = store.read(|conn, _| {
        let count = |sql: &str| -> crate::Result<i64> {
            Ok(conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?)
        };
        Ok((
            count("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'")?,
            count("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'failed'")?,
            count("SELECT COUNT(*) FROM sms_messages WHERE status = 'pending'")?,
            crate::service::fanout::backlog(conn)?,
        ))
    });
    let (pending, failed, sms_pending, backlog) = gauges?;
    {
        let gauge = |out: &mut String, name: &str, help: &str, value: i64| {
            one(out, "gauge", name, help, value);
        };
        gauge(
            out,
            "remit_webhook_deliveries_pending",
            "Webhook deliveries waiting for their next attempt.",
            pending,
        );
        gauge(
            out,
            "remit_webhook_deliveries_failed_kept",
            "Webhook deliveries marked failed (their retries ran out, or their endpoint was deleted), while kept (REMIT_NOTIFICATIONS_KEEP_DAYS after they failed).",
            failed,
        );
        gauge(
            out,
            "remit_sms_pending",
            "SMS waiting to be sent.",
            sms_pending,
        );
        gauge(
            out,
            "remit_outbox_backlog",
            "Events not yet fanned out to webhooks and SMS.",
            backlog,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_value_escapes_what_the_text_format_would_misread() {
        assert_eq!(label_value("Utility Account"), "Utility Account");
        assert_eq!(
            label_value("a \"quoted\"\\ name\nnext"),
            "a \\\"quoted\\\"\\\\ name\\nnext"
        );
    }
}
