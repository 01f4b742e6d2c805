//! remit: an escrowed remittance ledger on one SQLite file.
//!
//! A sender puts USD into an escrow earmarked into spending categories for a recipient in
//! Kenya; payment requests in KES are approved by the sender and paid out through M-Pesa.
//! `ARCHITECTURE.md` maps the modules; `README.md` states the invariants and the API.

pub(crate) mod app;
pub(crate) mod audit;
pub(crate) mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub(crate) mod housekeeping;
pub(crate) mod http;
pub mod integrity;
pub(crate) mod ledger;
pub(crate) mod limits;
pub(crate) mod metrics;
pub mod money;
pub mod notify;
pub(crate) mod ops;
pub mod outbox;
pub mod paths;
pub mod payout;
pub mod replicate;
pub mod runtime;
pub mod service;
pub mod store;
pub mod time;
pub mod wakeup;
pub mod wire;

pub use error::{Error, Result};
