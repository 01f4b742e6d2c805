//! remit's integration tests, compiled as one binary. Every test uses a real SQLite file in a
//! temporary directory; the HTTP tests use the real server on a loopback port.

// The whole crate is tests: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod browser;
mod cli_commands;
mod cli_config;
mod contract;
mod http_api;
mod http_hostile;
mod http_limits;
mod http_roles;
mod kiosk_api;
mod ledger_core;
mod ledger_model;
mod money_flow;
mod notify_events;
mod notify_restart;
mod notify_retention;
mod notify_sms;
mod notify_webhooks;
mod ops_audit;
mod ops_backup;
mod ops_shutdown;
mod payouts_daraja;
mod privacy_expiry;
mod regressions;
mod replication;
mod store_files;
