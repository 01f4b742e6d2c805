//! The handlers, one module per resource. A handler parses the request into domain types,
//! authorises by role, calls one service function and shapes the reply. No SQL here.

pub mod admin;
pub mod assets;
pub mod escrows;
pub mod notifications;
pub mod requests;
pub mod users;
pub mod webhooks;

use super::body::Fields;
use super::request::Req;
use crate::app::App;
use crate::error::{Error, Result};
use crate::limits::{CURSOR_BYTES_MAX, PAGE_ROWS_DEFAULT, PAGE_ROWS_MAX};
use crate::money::UsdCents;
use crate::service::{require_role, Actor, Role};

/// The actor, refused unless their role is one of `roles` (admins always pass).
fn actor_with(app: &App, req: &Req, roles: &[Role]) -> Result<Actor> {
    let actor = req.actor(app)?;
    require_role(&actor, roles)?;
    Ok(actor)
}

/// `limit` (1–`PAGE_ROWS_MAX`, default `PAGE_ROWS_DEFAULT`) and `cursor` of a list; a cursor
/// must have the shape of the ones this list returns (`is_cursor`: the ids it is ordered by),
/// else `400`: a made-up cursor never quietly answers some other page.
fn page_params(req: &Req, is_cursor: fn(&str) -> bool) -> Result<(u32, Option<String>)> {
    let limit = limit_param(req, PAGE_ROWS_MAX, PAGE_ROWS_DEFAULT)?;
    let cursor = match req.query("cursor") {
        Some(c) if !c.is_empty() => {
            let ok = c.len() <= CURSOR_BYTES_MAX
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && is_cursor(c);
            if !ok {
                return Err(Error::invalid(
                    "cursor",
                    "is not a cursor this API returned",
                ));
            }
            Some(c.to_string())
        }
        _ => None,
    };
    Ok((limit, cursor))
}

/// A cursor that is a line's number (`seq`: the journal's and the audit log's), as those lists
/// return them: digits without a leading zero, from 1 (`0`, `01` and `+1` are no cursor).
fn seq_cursor(text: &str) -> Option<i64> {
    Some(text)
        .filter(|t| {
            (1..=18).contains(&t.len())
                && !t.starts_with('0')
                && t.bytes().all(|b| b.is_ascii_digit())
        })
        .and_then(|t| t.parse::<i64>().ok())
}

/// `limit`: a whole number from 1 to `max`; `default` when absent.
fn limit_param(req: &Req, max: u32, default: u32) -> Result<u32> {
    match req.query("limit") {
        // Digits only: `parse` alone would take `+5`, which no other number here takes.
        Some(text) => Some(text)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u32>().ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                Error::invalid("limit", format!("must be a whole number from 1 to {max}"))
            }),
        None => Ok(default),
    }
}

/// An optional `status=` filter of one of the state enums.
fn status_param<T>(req: &Req, parse: fn(&str, &str) -> Result<T>) -> Result<Option<T>> {
    req.query("status")
        .map(|text| parse("status", text))
        .transpose()
}

/// Reads `{field}` / `{field}Cents` from a body.
fn usd(fields: &mut Fields, field: &str, max: UsdCents) -> Result<UsdCents> {
    match opt_usd(fields, field, max)? {
        Some(amount) => Ok(amount),
        None => Err(fields.missing_one_of(field, &[field, &format!("{field}Cents")])),
    }
}

/// Reads an optional `{field}` / `{field}Cents`.
fn opt_usd(fields: &mut Fields, field: &str, max: UsdCents) -> Result<Option<UsdCents>> {
    let major = fields.take(field);
    let minor = fields.take(&format!("{field}Cents"));
    if major.is_none() && minor.is_none() {
        return Ok(None);
    }
    UsdCents::parse_either(
        &fields.field_name(field),
        major.as_ref(),
        minor.as_ref(),
        max,
    )
    .map(Some)
}
