//! HTTP: the server (`server`), what a request and a reply are (`request`, `reply`), the route
//! table (`routes`) and the handlers, one module per resource (`handlers`). Errors become HTTP
//! in exactly one place (`reply::error_reply`). Nothing below this module imports from it.

pub mod body;
mod handlers;
mod idempotency;
pub mod reply;
pub mod request;
pub mod routes;
mod server;

pub use server::{enough_open_files, start, HttpServer};
