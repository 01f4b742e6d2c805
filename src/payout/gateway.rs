//! The M-Pesa gateway a payout worker sends through: a trait, so that the simulator, the real
//! Daraja client and the tests' gateways are interchangeable.

use crate::service::payouts::PayoutJob;

/// Daraja's synchronous acknowledgement.
#[derive(Debug, Clone)]
pub struct Ack {
    /// `ConversationID` (`AG_…`).
    pub conversation_id: String,
}

/// Why a gateway call did not produce an acknowledgement.
#[derive(Debug, Clone)]
pub enum GatewayError {
    /// No answer or a transport error: outcome unknown, retry with the same id.
    Transport(String),
    /// A synchronous Daraja error: the request was refused, no money moved.
    Refused {
        /// `errorCode`.
        code: String,
        /// `errorMessage`.
        message: String,
    },
    /// `500.002.1001`: an earlier attempt with this id reached M-Pesa; wait for its result.
    Duplicate,
}

/// Where results go.
#[derive(Debug, Clone)]
pub struct CallbackUrls {
    /// `ResultURL`.
    pub result: String,
    /// `QueueTimeOutURL`.
    pub queue_timeout: String,
}

impl CallbackUrls {
    /// The result URLs under `base` (`https://kiosk.example.org`) with the secret path token.
    pub fn under(base: &str, token: &str) -> CallbackUrls {
        let result = format!("{base}/webhooks/payouts/{token}");
        CallbackUrls {
            queue_timeout: format!("{result}?timeout=1"),
            result,
        }
    }
}

/// An M-Pesa B2C/B2B API.
pub trait Gateway: Send + Sync {
    /// Sends one payout. Must be safe to call again with the same job after a transport error.
    fn send(&self, job: &PayoutJob, urls: &CallbackUrls) -> Result<Ack, GatewayError>;
}
