//! Why a payout failed, in words a sender or a kiosk agent reads: M-Pesa's result codes (and
//! remit's own: a synchronous refusal, a failure Transaction Status confirmed, an operator's
//! resolution) grouped into a few reasons, each with one plain sentence. The raw code and text
//! stay on the payout for the operator.

string_enum! {
    /// The reason a payout failed.
    pub enum FailureReason {
        /// The M-Pesa account that pays (Utility for phones, Working for B2B) was short.
        MpesaFloatLow = "mpesa_float_low",
        /// Above or below an M-Pesa limit (per transaction, per day, the receiver's balance).
        OverLimit = "over_limit",
        /// The phone is not registered for M-Pesa, or cannot receive this payment.
        RecipientNotOnMpesa = "recipient_not_on_mpesa",
        /// Our M-Pesa setup (initiator, credential, shortcode permissions) was refused.
        GatewaySetup = "gateway_setup",
        /// M-Pesa refused the request as sent (a field it would not take).
        Refused = "refused",
        /// M-Pesa's Transaction Status said the payment did not complete.
        NotCompleted = "not_completed",
        /// An operator recorded it as failed after checking with M-Pesa.
        ResolvedFailed = "resolved_failed",
        /// Anything else.
        Other = "other",
    }
}

impl FailureReason {
    /// The reason for a failure result code (`ResultCode`, a synchronous `errorCode`, or remit's
    /// own `status` / `manual`).
    pub fn of_code(code: &str) -> FailureReason {
        match code.trim() {
            "1" => FailureReason::MpesaFloatLow,
            "2" | "3" | "4" | "8" => FailureReason::OverLimit,
            "2040" | "SFC_IC0003" | "2006" => FailureReason::RecipientNotOnMpesa,
            "11" | "18" | "20" | "21" | "22" | "2001" | "2028" | "8006" => {
                FailureReason::GatewaySetup
            }
            "status" => FailureReason::NotCompleted,
            "manual" => FailureReason::ResolvedFailed,
            c if c.starts_with("400.") => FailureReason::Refused,
            _ => FailureReason::Other,
        }
    }

    /// One plain sentence for the person who asked for the payment. Each says the money is
    /// back: a failed payout always returns its money to the escrow.
    pub fn text(self) -> &'static str {
        match self {
            FailureReason::MpesaFloatLow => "The kiosk's M-Pesa account did not hold enough money for this payment. The money is back in the escrow; try again later.",
            FailureReason::OverLimit => "The amount is outside what M-Pesa allows for this payment (too small, too large, or over a daily limit). The money is back in the escrow.",
            FailureReason::RecipientNotOnMpesa => "The number being paid cannot receive M-Pesa payments (not registered, or not allowed). Check the number. The money is back in the escrow.",
            FailureReason::GatewaySetup => "M-Pesa refused the service's payment settings; the operator has to fix them (nothing was wrong with this request). The money is back in the escrow.",
            FailureReason::Refused => "M-Pesa refused the payment details (for example the number or the account). Check them and ask again. The money is back in the escrow.",
            FailureReason::NotCompleted => "M-Pesa reports that the payment did not go through. The money is back in the escrow.",
            FailureReason::ResolvedFailed => "The operator checked with M-Pesa: the payment was not made. The money is back in the escrow.",
            FailureReason::Other => "M-Pesa could not make the payment. The money is back in the escrow.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_reasons() {
        for (code, reason) in [
            ("1", FailureReason::MpesaFloatLow),
            ("2040", FailureReason::RecipientNotOnMpesa),
            ("SFC_IC0003", FailureReason::RecipientNotOnMpesa),
            ("2001", FailureReason::GatewaySetup),
            ("400.002.02", FailureReason::Refused),
            ("status", FailureReason::NotCompleted),
            ("manual", FailureReason::ResolvedFailed),
            ("4", FailureReason::OverLimit),
            ("9999", FailureReason::Other),
        ] {
            assert_eq!(FailureReason::of_code(code), reason, "{code}");
        }
        for reason in FailureReason::ALL {
            assert!(
                reason.text().ends_with("The money is back in the escrow.")
                    || reason.text().contains("back in the escrow")
            );
        }
    }
}
