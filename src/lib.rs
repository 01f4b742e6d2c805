//! remit: an escrowed remittance ledger on one SQLite file.
//!
//! A sender puts USD into an escrow earmarked into spending categories for a recipient in
//! Kenya; payment requests in KES are approved by the sender and paid out through M-Pesa.
//! `ARCHITECTURE.md` maps the modules; `README.md` states the invariants and the API.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod housekeeping;
pub mod http;
pub mod integrity;
pub mod ledger;
pub mod limits;
pub mod metrics;
pub mod money;
pub mod ops;
pub mod payout;
pub mod runtime;
pub mod service;
pub mod store;
pub mod time;
pub mod wire;

pub use error::{Error, Result};
