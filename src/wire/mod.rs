//! The wire formats of the providers remit talks to, one module each: what their webhooks
//! send and how they are verified, and what remit sends them. No database, no HTTP server here.

pub mod africastalking;
pub mod daraja;
pub mod stripe;
pub mod webhook;
