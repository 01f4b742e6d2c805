//! The vocabulary of remit: values that cannot hold a bad value, each built only through its
//! parser. Ids (`EscrowId`, …), states (`EscrowStatus`, …), phones, category names and bounded
//! text. Nothing here touches the database or HTTP.
//!
//! # Glossary
//!
//! One word per concept, the same in Rust, SQL, JSON and the UI:
//!
//! - **escrow**: USD a sender puts aside for a recipient, split into **categories**. States:
//!   `pending_deposit → active → completed | cancelled`.
//! - **deposit**: money in (cash at a kiosk, or a Stripe PaymentIntent); `applied`, or `flagged`
//!   for the operator when it cannot be applied.
//! - **payment request**: KES the recipient (or an agent) asks to pay a merchant. States:
//!   `pending_approval → approved → paid | failed`, or `rejected | cancelled`.
//! - **payout**: the M-Pesa transfer of an approved request. States: `queued → sent →
//!   succeeded | failed`. A payout *succeeds*; its request is then *paid*. A payout may be
//!   **flagged** (its outcome is unknown or contradicted) and is then **stuck** for the operator.
//! - **result**: what M-Pesa (or an operator) says became of a payout; recording it is
//!   *applying a result*.
//! - **rate**: KES per USD × 10⁴ (`rate_kes_per_usd_e4`); shown as `exchangeRate` on a request
//!   and `rate` on `/fx-rates`, as the API contract names it.
//! - **journal**: the double-entry record of every movement (`ledger_entries`); approve
//!   *reserves* (available → reserved), a succeeded payout *posts* (reserved → spent), a failed
//!   one *voids* (reserved → available).
//! - **audit log**: the HMAC-chained record of every state change and who made it.

mod ids;
mod merchant;
mod phone;
#[macro_use]
mod states;
mod codes;
mod failure;
mod text;
mod webhook_url;

pub use codes::{parse_code, random_code, unique_code, SHORT_REF_LEN};
pub use failure::FailureReason;
pub use ids::*;
pub use merchant::{mask_number, MerchantAccount, MerchantAccountView};
pub use phone::{holds_a_phone, long_numbers_masked, number_runs, KenyanPhone, NumberRun};
pub use states::*;
pub use text::{
    controls_replaced, not_personal, outside_words, parse_kept_reference, parse_reference,
    parse_text, refused_in_text, CategoryName,
};
pub use webhook_url::{
    classify, is_loopback_host, may_connect, require_secure_scheme, AddressKind, WebhookUrl,
};
