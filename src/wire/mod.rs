//! The wire formats of the providers remit talks to, one module each: what their webhooks
//! send and how they are verified. No database, no HTTP server here.

pub mod daraja;
pub mod stripe;
