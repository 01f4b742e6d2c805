//! The M-Pesa gateway a payout worker sends through: a trait, so that the simulator, the real
//! Daraja client and the tests' gateways are interchangeable.

use crate::domain::PayoutId;
use crate::service::payouts::PayoutJob;

/// Daraja's synchronous acknowledgement.
#[derive(Debug, Clone)]
pub struct Ack {
    /// `ConversationID` (`AG_…`): the result will carry it.
    pub conversation_id: String,
}

/// Why a gateway call did not produce an acknowledgement.
#[derive(Debug, Clone)]
pub enum GatewayError {
    /// No answer, a transport error, a refusal that may pass (spike arrest, quota, 5xx) or an
    /// answer that does not say whether the request was taken: the outcome is unknown; retry
    /// later with the same id.
    Transport(String),
    /// A clear synchronous refusal (a `4xx` with a `400.*` `errorCode`): the request was not
    /// accepted, no money moved.
    Refused {
        /// `errorCode` (`remit` for a request remit itself cannot make).
        code: String,
        /// `errorMessage`.
        message: String,
    },
    /// `500.002.1001`: an earlier attempt with this id reached M-Pesa; its outcome is unknown.
    Duplicate,
    /// The call provably never reached M-Pesa's processing: no access token could be had (so
    /// no payment call was made), the connection could not be opened, or Daraja's gateway
    /// turned the call away before processing it (its access token refused, spike arrest
    /// `500.003.02`, quota `500.003.03`). Nothing was paid: sent again later, and it counts as
    /// no attempt.
    NotSent(String),
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GatewayError::Transport(why) => write!(f, "no clear answer: {why}"),
            GatewayError::Refused { code, message } => write!(f, "refused, {code}: {message}"),
            GatewayError::Duplicate => {
                f.write_str("a duplicate of an earlier attempt (500.002.1001)")
            }
            GatewayError::NotSent(why) => write!(f, "not sent: {why}"),
        }
    }
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

/// What a Transaction Status query asks about.
#[derive(Debug, Clone)]
pub struct StatusQuery {
    /// The payout.
    pub payout_id: PayoutId,
    /// Its receipt, when a result named one.
    pub receipt: Option<String>,
}

impl StatusQuery {
    /// Our `OriginatorConversationID` of the payout.
    pub fn originator_conversation_id(&self) -> &str {
        self.payout_id.originator_conversation_id()
    }
}

/// An M-Pesa B2C/B2B API.
pub trait Gateway: Send + Sync {
    /// What it is: `simulator` or `daraja` (recorded with each payout it sends).
    fn name(&self) -> &'static str;

    /// Sends one payout. Must be safe to call again with the same job after a transport error
    /// when `refuses_repeats` says so for its command. `still_due` is asked before a second
    /// call within this send (Daraja's, after its first was turned away for its token): when
    /// it says no (a result settled the payout while the first was on its way), nothing more
    /// is sent, and the send reached nothing (`NotSent`).
    fn send(
        &self,
        job: &PayoutJob,
        urls: &CallbackUrls,
        still_due: &dyn Fn() -> bool,
    ) -> Result<Ack, GatewayError>;

    /// Does the gateway refuse a second request of a payout under its
    /// `OriginatorConversationID` (rather than pay it twice)? Then a call whose answer was lost
    /// is sent again under the same id; otherwise it is never sent again, and what became of
    /// it is asked (or left to the operator).
    fn refuses_repeats(&self, _command: crate::domain::PayoutCommand) -> bool {
        true
    }

    /// Can it ask what became of a payout (`query_status`)? When it cannot, an unknown outcome
    /// is left to the operator.
    fn can_query(&self) -> bool {
        false
    }

    /// Asks what became of a payout (Transaction Status); its result comes to the result URL.
    /// `None` when this gateway cannot ask.
    fn query_status(
        &self,
        _query: &StatusQuery,
        _urls: &CallbackUrls,
    ) -> Option<Result<Ack, GatewayError>> {
        None
    }

    /// Hands over, at start, the payouts this gateway accepted before the last stop whose result
    /// never came (with the `ConversationID` it gave each). A gateway that cannot be asked
    /// about them (`can_query` false) owes their results; one that can is asked as usual.
    fn resume(&self, _unanswered: Vec<(PayoutJob, String)>, _urls: &CallbackUrls) {}

    /// Asks for the account balances; the result comes to the result URL. `None` when this
    /// gateway cannot.
    fn query_balance(&self, _urls: &CallbackUrls) -> Option<Result<Ack, GatewayError>> {
        None
    }
}
