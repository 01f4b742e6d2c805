//! The ledger core through its services: the Fastify edition's own cases and the rules of
//! DESIGN.md, on a real SQLite file.

use crate::support::*;
use remit::domain::PayoutId;
use remit::error::Error;
use remit::service::deposits::DepositOutcome;
use remit::service::payouts::{self, PayoutResult, ResultOutcome};
use remit::service::requests::MerchantAccount;
use remit::service::{Actor, Role};
use std::sync::Arc;

const PHONE: &str = "0712345678";

fn parties(t: &TestStore) -> (Actor, Actor) {
    (
        t.user(Role::Sender, "Amina", Some("+254700000001")),
        t.user(Role::Agent, "Kiosk 7", None),
    )
}

#[test]
fn creating_an_escrow_with_two_categories_stores_the_total() {
    let t = TestStore::new();
    let (sender, _) = parties(&t);
    let escrow = t
        .escrow(&sender, PHONE, 50_000, &["electricity", "water"], None)
        .unwrap();
    assert_eq!(escrow["status"], "pending_deposit");
    assert_eq!(cents(&escrow["totalAmountUsdCents"]), 50_000);
    assert_eq!(escrow["totalAmountUsd"].to_string(), "500.0");
    let allocated: Vec<i64> = escrow["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| cents(&c["allocatedUsdCents"]))
        .collect();
    assert_eq!(allocated, vec![25_000, 25_000]);
    let total: i64 = t
        .store
        .read(|c, _| Ok(c.query_row("SELECT total_usd_cents FROM escrows", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(total, 50_000);
    t.assert_integrity();
}

#[test]
fn even_split_of_100_over_3_gives_the_remainder_to_the_first() {
    let t = TestStore::new();
    let (sender, _) = parties(&t);
    let escrow = t
        .escrow(&sender, PHONE, 10_000, &["a", "b", "c"], None)
        .unwrap();
    let allocated: Vec<i64> = escrow["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| cents(&c["allocatedUsdCents"]))
        .collect();
    assert_eq!(allocated, vec![3334, 3333, 3333]);
}

#[test]
fn allocations_that_do_not_sum_are_rejected_and_nothing_is_written() {
    use remit::domain::{CategoryName, KenyanPhone};
    use remit::money::UsdCents;
    use remit::service::escrows::{self, Categories, NewEscrow};
    let t = TestStore::new();
    let (sender, _) = parties(&t);
    let input = NewEscrow {
        recipient_phone: KenyanPhone::parse("p", PHONE).unwrap(),
        recipient_name: "W".into(),
        total: UsdCents::new(50_000).unwrap(),
        categories: Categories::Amounts(vec![(
            CategoryName::parse("c", "electricity").unwrap(),
            UsdCents::new(20_000).unwrap(),
        )]),
        daily_limit: None,
        recipient_language: remit::domain::Language::En,
    };
    let err = t
        .store
        .write(move |ctx| escrows::create(ctx, &sender, &input))
        .unwrap_err();
    assert!(err.to_string().contains("must equal total amount"), "{err}");
    let escrows: i64 = t
        .store
        .read(|c, _| Ok(c.query_row("SELECT COUNT(*) FROM escrows", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(escrows, 0);
}

#[test]
fn approving_10000_of_50000_leaves_40000_in_the_escrow_and_the_category() {
    let t = TestStore::new();
    let (sender, agent) = parties(&t);
    let escrow_id = t.active_escrow(&sender, &agent, PHONE, 50_000, &["electricity"], None);
    let request = t
        .request(&agent, &escrow_id, "electricity", kes_for_usd_cents(10_000))
        .unwrap();
    assert_eq!(cents(&request["amountUsdCents"]), 10_000);
    let approved = t
        .approve(&sender, request["paymentRequestId"].as_str().unwrap())
        .unwrap();
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["payout"]["status"], "queued");
    let view = t.escrow_view(&escrow_id);
    assert_eq!(cents(&view["remainingUsdCents"]), 40_000);
    assert_eq!(cents(&view["reservedUsdCents"]), 10_000);
    assert_eq!(cents(&view["categories"][0]["remainingUsdCents"]), 40_000);
    t.assert_integrity();
}

/// The approval answers with the view it read before its change, brought up to date by hand:
/// it must be, field for field, what a read of the committed request shows the approver (the
/// sender, or an admin, who sees Daraja's ids), and its event and audit line must be the text
/// they always were.
#[test]
fn the_approvals_answer_is_the_committed_request_as_its_approver_reads_it() {
    let t = TestStore::new();
    let (sender, agent) = parties(&t);
    let admin = t.user(Role::Admin, "Operator", None);
    let escrow_id = t.active_escrow(
        &sender,
        &agent,
        PHONE,
        50_000,
        &["electricity"],
        Some(40_000),
    );
    let paybill = || MerchantAccount::Paybill {
        number: "888880".into(),
        account_reference: "12345678".into(),
    };
    let phone =
        || MerchantAccount::Phone(remit::domain::KenyanPhone::parse("n", "0712345678").unwrap());
    for (approver, account) in [
        (&sender, paybill()),
        (&sender, phone()),
        (&admin, paybill()),
    ] {
        let request = t
            .request_to(
                &agent,
                &escrow_id,
                "electricity",
                kes_for_usd_cents(5_000),
                account,
            )
            .unwrap();
        let id = request["paymentRequestId"].as_str().unwrap().to_string();
        // Made a while ago, so that a field the approval changes cannot keep its value by
        // chance of the same second.
        let made = request_id(&id);
        t.store
            .write(move |ctx| {
                ctx.conn.execute(
                    "UPDATE payment_requests SET created_at = '2026-01-02T03:04:05Z',
                     updated_at = '2026-01-02T03:04:05Z' WHERE id = ?1",
                    [&made],
                )?;
                Ok(())
            })
            .unwrap();
        let approved = t.approve(approver, &id).unwrap();
        let (viewer, request_id) = (approver.clone(), request_id(&id));
        let (read, event, details) = t
            .store
            .read(|conn, keys| {
                let view =
                    remit::service::views::payment_request(conn, keys, &viewer, &request_id)?;
                let event: String = conn.query_row(
                    "SELECT data FROM outbox_events WHERE type = 'payment_request.approved'
                     ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )?;
                let details: String = conn.query_row(
                    "SELECT details FROM audit_log WHERE action = 'payment_request.approved'
                     AND entity = ?1",
                    [&request_id],
                    |r| r.get(0),
                )?;
                Ok((view, event, details))
            })
            .unwrap();
        let read = json(read);
        assert_eq!(approved, read);
        assert_eq!(
            (
                approved["status"].as_str(),
                approved["payout"]["status"].as_str(),
                approved["merchantName"].as_str(),
                approved["decidedBy"].as_str(),
            ),
            (
                Some("approved"),
                Some("queued"),
                Some("Kenya Power"),
                Some(approver.id.as_str())
            )
        );
        // Daraja's ids are for admins.
        assert_eq!(
            approved["payout"].get("originatorConversationId").is_some(),
            approver.role == Role::Admin
        );
        let payout_id = &approved["payout"]["payoutId"];
        assert_eq!(
            event,
            serde_json::json!({
                "paymentRequestId": id, "escrowId": escrow_id, "payoutId": payout_id,
                "status": "approved", "amountKes": approved["amountKes"],
                "amountKesCents": approved["amountKesCents"], "amountUsd": approved["amountUsd"],
                "amountUsdCents": approved["amountUsdCents"],
            })
            .to_string()
        );
        // The day its escrow's daily limit counted it against, as the request keeps it.
        let day: String = t
            .store
            .read({
                let id = request_id.clone();
                move |conn, _| {
                    Ok(conn.query_row(
                        "SELECT approved_day FROM payment_requests WHERE id = ?1",
                        [&id],
                        |r| r.get(0),
                    )?)
                }
            })
            .unwrap();
        assert_eq!(
            details,
            serde_json::json!({"amountUsdCents": approved["amountUsdCents"], "payoutId": payout_id,
                               "approvedDay": day})
            .to_string()
        );
    }
    t.assert_integrity();
}

#[test]
fn the_usd_price_is_fixed_at_the_rate_rounding_up() {
    let t = TestStore::new();
    let (sender, agent) = parties(&t);
    let escrow_id = t.active_escrow(&sender, &agent, PHONE, 50_000, &["water"], None);
    let request = t.request(&agent, &escrow_id, "water", 10_000).unwrap();
    assert_eq!(
        cents(&request["amountUsdCents"]),
        67,
        "KES 100.00 at 150 costs 67 US cents"
    );
    assert_eq!(request["exchangeRate"].to_string(), "150.0");
}

#[test]
fn ten_threads_approving_10000_against_50000_make_exactly_five_succeed() {
    let t = TestStore::new();
    let (sender, agent) = parties(&t);
    let escrow_id = t.active_escrow(&sender, &agent, PHONE, 50_000, &["school_fees"], None);
    let ids: Vec<String> = (0..10)
        .map(|_| {
            t.request(&agent, &escrow_id, "school_fees", kes_for_usd_cents(10_000))
                .unwrap()["paymentRequestId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let barrier = Arc::new(std::sync::Barrier::new(ids.len()));
    let handles: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let (store, sender, barrier) =
                (Arc::clone(&t.store), sender.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                store.write(move |ctx| {
                    remit::service::requests::approve(
                        ctx,
                        &sender,
                        &crate::support::request_id(&id),
                    )
                })
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let insufficient = results
        .iter()
        .filter(|r| matches!(r, Err(Error::InsufficientBalance { .. })))
        .count();
    assert_eq!((ok, insufficient), (5, 5), "{results:?}");
    let view = t.escrow_view(&escrow_id);
    assert_eq!(cents(&view["remainingUsdCents"]), 0);
    assert_eq!(cents(&view["reservedUsdCents"]), 50_000);
    t.assert_integrity();
}

#[test]
fn the_category_balance_refuses_before_the_escrow_does() {
    let t = TestStore::new();
    let (sender, agent) = parties(&t);
    let escrow_id = t.active_escrow(&sender, &agent, PHONE, 20_000, &["water", "food"], None);
    let request = t
        .request(&agent, &escrow_id, "water", kes_for_usd_cents(15_000))
        .unwrap();
    let err = t
        .approve(&sender, request["paymentRequestId"].as_str().unwrap())
        .unwrap_err();
    match &err {
        Error::InsufficientCategoryBalance {
            category,
            available,
            needed,
        } => {
            assert_eq!(
                (category.as_str(), available.get(), needed.get()),
                ("water", 10_000, 15_000)
            );
        }
        other => panic!("expected InsufficientCategoryBalance, got {other:?}"),
    }
    assert_eq!(
        cents(&t.escrow_view(&escrow_id)["remainingUsdCents"]),
        20_000,
        "nothing moved"
    );
    t.assert_integrity();
}

/// An escrow of USD 500 with a daily limit of USD 100, USD 80 of it approved today, and a
/// request of USD 30 more waiting: (the sender, the escrow, the approved request, the waiting).
fn most_of_a_days_limit_approved(t: &TestStore) -> (Actor, String, String, serde_json::Value) {
    let (sender, agent) = parties(t);
    let escrow_id = t.active_escrow(&sender, &agent, PHONE, 50_000, &["food"], Some(10_000));
    let first = t
        .request(&agent, &escrow_id, "food", kes_for_usd_cents(8_000))
        .unwrap();
    let second = t
        .request(&agent, &escrow_id, "food", kes_for_usd_cents(3_000))
        .unwrap();
    let first_id = first["paymentRequestId"].as_str().unwrap().to_string();
    t.approve(&sender, &first_id).unwrap();
    (sender, escrow_id, first_id, second)
}

#[test]
fn the_daily_limit_is_enforced_and_a_failed_payout_gives_it_back() {
    let t = TestStore::new();
    let (sender, escrow_id, first_id, second) = most_of_a_days_limit_approved(&t);
    let first_id = first_id.as_str();
    let err = t
        .approve(&sender, second["paymentRequestId"].as_str().unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::DailyLimitExceeded { .. }), "{err:?}");
    assert!(
        err.to_string().contains("USD 80.00 already approved today"),
        "{err}"
    );
    // The first payout fails: its money and its share of the day come back.
    let payout_id = t.payout_id_of(first_id);
    let result = PayoutResult::Failed {
        code: "2001".into(),
        desc: "The initiator information is invalid.".into(),
    };
    let settled = t
        .store
        .write(move |ctx| {
            payouts::apply_result(
                ctx,
                &Actor::system("test"),
                &PayoutId::parse(&payout_id).unwrap(),
                &result,
                payouts::Reported::NotCarried,
            )
        })
        .unwrap();
    assert_eq!(settled, ResultOutcome::Applied);
    t.approve(&sender, second["paymentRequestId"].as_str().unwrap())
        .unwrap();
    let view = t.escrow_view(&escrow_id);
    assert_eq!(cents(&view["approvedTodayUsdCents"]), 3_000);
    assert_eq!(cents(&view["remainingUsdCents"]), 47_000);
    t.assert_integrity();
}

/// Guards against: approvals counted against the clock's day alone, so that a clock set back
/// across Nairobi's midnight (by hand, or NTP correcting a kiosk that ran ahead) gave an escrow a
/// second day's limit within the same real hour (twice the limit approved, each day under its
/// own, and `remit check` clean). Approvals made while the clock read tomorrow are made here by
/// moving an approval's day forward, as that clock would have recorded it.
#[test]
fn a_clock_set_back_gives_no_second_days_limit() {
    let t = TestStore::new();
    let (sender, escrow_id, _, second) = most_of_a_days_limit_approved(&t);
    // The escrow's approvals as a clock `days_ahead` would have counted them.
    let counted_days_ahead = |days_ahead: i64| {
        let escrow = escrow_id.clone();
        let day = remit::time::nairobi_day(remit::time::now_unix() + days_ahead * 86_400);
        t.store
            .write(move |ctx| {
                ctx.conn.execute(
                    "UPDATE daily_spend SET day = ?2 WHERE escrow_id = ?1",
                    [&escrow, &day],
                )?;
                ctx.conn.execute(
                    "UPDATE payment_requests SET approved_day = ?2 WHERE escrow_id = ?1 AND approved_day IS NOT NULL",
                    [&escrow, &day],
                )?;
                Ok(())
            })
            .unwrap();
    };
    counted_days_ahead(1);
    // The clock now reads today again: the day approvals count against is still tomorrow.
    let view = t.escrow_view(&escrow_id);
    assert_eq!(cents(&view["approvedTodayUsdCents"]), 8_000);
    let err = t
        .approve(&sender, second["paymentRequestId"].as_str().unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::DailyLimitExceeded { .. }), "{err:?}");
    assert!(
        err.to_string().contains("USD 80.00 already approved today"),
        "{err}"
    );
    // Approvals made on a clock days ahead do not hold the escrow to that day until it comes:
    // tomorrow at most is counted against.
    counted_days_ahead(3);
    assert_eq!(
        cents(&t.escrow_view(&escrow_id)["approvedTodayUsdCents"]),
        0
    );
    t.approve(&sender, second["paymentRequestId"].as_str().unwrap())
        .unwrap();
    // The ledger holds but for the days moved by hand: the approvals' lines say the day this
    // clock read, as the file's editor would have had to hide.
    let report = t.integrity();
    assert!(
        !report.mismatches.is_empty()
            && report
                .mismatches
                .iter()
                .all(|m| m.contains("counts against") && m.contains("but audit line")),
        "{:?}",
        report.mismatches
    );
}

#[test]
fn settling_moves_reserved_to_spent_once_and_flags_a_conflicting_result() {
    let t = TestStore::new();
    let (sender, agent) = parties(&t);
    let escrow_id = t.active_escrow(&sender, &agent, PHONE, 10_000, &["rent"], None);
    let request = t
        .request(&agent, &escrow_id, "rent", kes_for_usd_cents(10_000))
        .unwrap();
    let request_id = request["paymentRequestId"].as_str().unwrap().to_string();
    t.approve(&sender, &request_id).unwrap();
    let payout_id = t.payout_id_of(&request_id);
    let settle = |result: PayoutResult| {
        let id = payout_id.clone();
        t.store
            .write(move |ctx| {
                payouts::apply_result(
                    ctx,
                    &Actor::system("test"),
                    &PayoutId::parse(&id).unwrap(),
                    &result,
                    payouts::Reported::NotCarried,
                )
            })
            .unwrap()
    };
    let paid = PayoutResult::Succeeded {
        receipt: "TCE4K7PQ2M".into(),
    };
    assert_eq!(settle(paid.clone()), ResultOutcome::Applied);
    assert_eq!(settle(paid), ResultOutcome::AlreadyApplied);
    assert!(matches!(
        settle(PayoutResult::Failed {
            code: "1".into(),
            desc: "x".into()
        }),
        ResultOutcome::Flagged(_)
    ));
    let view = t.escrow_view(&escrow_id);
    assert_eq!(
        view["status"], "completed",
        "nothing remaining, nothing reserved"
    );
    assert_eq!(cents(&view["spentUsdCents"]), 10_000);
    let request = t
        .store
        .read(|c, k| {
            remit::service::views::payment_request(
                c,
                k,
                &Actor::system("t"),
                &crate::support::request_id(&request_id),
            )
        })
        .map(json)
        .unwrap();
    assert_eq!(request["status"], "paid");
    assert_eq!(request["payout"]["mpesaReceipt"], "TCE4K7PQ2M");
    assert_eq!(request["payout"]["flagged"], true);
    t.assert_integrity();
}

#[test]
fn deposits_are_idempotent_activate_at_the_total_and_refuse_too_much() {
    let t = TestStore::new();
    let (sender, agent) = parties(&t);
    let escrow = t.escrow(&sender, PHONE, 50_000, &["a", "b"], None).unwrap();
    let id = escrow["escrowId"].as_str().unwrap();
    let (_, outcome) = t.deposit(&agent, id, "receipt-1", 20_000).unwrap();
    assert_eq!(outcome, DepositOutcome::Applied);
    let (_, outcome) = t.deposit(&agent, id, "receipt-1", 20_000).unwrap();
    assert_eq!(outcome, DepositOutcome::Duplicate);
    assert!(
        matches!(
            t.deposit(&agent, id, "receipt-1", 5_000),
            Err(Error::Validation { .. })
        ),
        "same reference, other amount"
    );
    assert!(
        matches!(
            t.deposit(&agent, id, "receipt-2", 30_001),
            Err(Error::Validation { .. })
        ),
        "more than is due"
    );
    assert_eq!(t.escrow_view(id)["status"], "pending_deposit");
    let (deposit, _) = t.deposit(&agent, id, "receipt-2", 30_000).unwrap();
    assert_eq!(deposit["escrowStatus"], "active");
    let view = t.escrow_view(id);
    assert_eq!(cents(&view["remainingUsdCents"]), 50_000);
    assert_eq!(cents(&view["categories"][1]["remainingUsdCents"]), 25_000);
    assert!(
        matches!(
            t.deposit(&agent, id, "receipt-3", 100),
            Err(Error::InvalidState { .. })
        ),
        "already active"
    );
    t.assert_integrity();
}

#[test]
fn cancelling_refunds_what_is_left_and_is_refused_while_a_payout_is_in_flight() {
    let t = TestStore::new();
    let (sender, agent) = parties(&t);
    let escrow_id = t.active_escrow(&sender, &agent, PHONE, 30_000, &["a", "b"], None);
    let request = t
        .request(&agent, &escrow_id, "a", kes_for_usd_cents(5_000))
        .unwrap();
    let request_id = request["paymentRequestId"].as_str().unwrap().to_string();
    t.approve(&sender, &request_id).unwrap();
    let pending = t
        .request(&agent, &escrow_id, "b", kes_for_usd_cents(1_000))
        .unwrap();
    let cancel = |who: &Actor| {
        let (who, id) = (who.clone(), escrow_id.clone());
        t.store
            .write(move |ctx| {
                remit::service::escrows::cancel(ctx, &who, &crate::support::escrow_id(&id))
            })
            .map(json)
    };
    // Not now (it can once the payout settles): a refusal an Idempotency-Key does not keep.
    assert!(matches!(cancel(&sender), Err(Error::NotNow(_))));
    let payout_id = t.payout_id_of(&request_id);
    t.store
        .write(move |ctx| {
            payouts::apply_result(
                ctx,
                &Actor::system("t"),
                &PayoutId::parse(&payout_id).unwrap(),
                &PayoutResult::Succeeded {
                    receipt: "R1".into(),
                },
                payouts::Reported::NotCarried,
            )
        })
        .unwrap();
    let other_sender = t.user(Role::Sender, "Other", None);
    assert!(
        matches!(cancel(&other_sender), Err(Error::NotFound { .. })),
        "someone else's escrow is not found"
    );
    assert!(matches!(cancel(&agent), Err(Error::Forbidden)));
    let view = cancel(&sender).unwrap();
    assert_eq!(view["status"], "cancelled");
    assert_eq!(cents(&view["refundedUsdCents"]), 25_000);
    assert_eq!(cents(&view["spentUsdCents"]), 5_000);
    let pending_id = pending["paymentRequestId"].as_str().unwrap().to_string();
    let pending = t
        .store
        .read(|c, k| {
            remit::service::views::payment_request(
                c,
                k,
                &Actor::system("t"),
                &crate::support::request_id(&pending_id),
            )
        })
        .map(json)
        .unwrap();
    assert_eq!(pending["status"], "cancelled");
    t.assert_integrity();
}

#[test]
fn cancelling_a_pending_escrow_refunds_its_partial_deposits() {
    let t = TestStore::new();
    let (sender, agent) = parties(&t);
    let escrow = t.escrow(&sender, PHONE, 50_000, &["a"], None).unwrap();
    let id = escrow["escrowId"].as_str().unwrap().to_string();
    t.deposit(&agent, &id, "part", 12_345).unwrap();
    let (s, i) = (sender.clone(), id.clone());
    let view = t
        .store
        .write(move |ctx| remit::service::escrows::cancel(ctx, &s, &crate::support::escrow_id(&i)))
        .map(json)
        .unwrap();
    assert_eq!(view["status"], "cancelled");
    assert_eq!(cents(&view["refundedUsdCents"]), 12_345);
    t.assert_integrity();
}

#[test]
fn requests_need_an_active_escrow_an_existing_category_and_the_right_party() {
    let t = TestStore::new();
    let (sender, agent) = parties(&t);
    let pending = t.escrow(&sender, PHONE, 10_000, &["a"], None).unwrap();
    let pending_id = pending["escrowId"].as_str().unwrap();
    let waiting = t.request(&agent, pending_id, "a", 10_000);
    assert!(
        matches!(&waiting, Err(e @ Error::NotFoundAmong { .. })
            if e.to_string().starts_with("active escrow not found: this escrow is pending_deposit")),
        "{waiting:?}"
    );
    let escrow_id = t.active_escrow(&sender, &agent, "0711000111", 10_000, &["a"], None);
    // A category not the escrow's: 404, saying the escrow's (its caller sees them).
    let unknown = t.request(&agent, &escrow_id, "nope", 10_000);
    assert!(
        matches!(&unknown, Err(e @ Error::NotFoundAmong { .. })
            if e.to_string() == "category not found: this escrow's categories are a"),
        "{unknown:?}"
    );
    assert!(matches!(
        t.request(&sender, &escrow_id, "a", 10_000),
        Err(Error::Forbidden)
    ));
    let stranger = t.user(Role::Recipient, "Stranger", Some("0799999999"));
    assert!(matches!(
        t.request(&stranger, &escrow_id, "a", 10_000),
        Err(Error::NotFound { .. })
    ));
    assert!(
        matches!(
            t.request(&agent, &escrow_id, "a", 10_050),
            Err(Error::Validation { .. })
        ),
        "whole shillings only"
    );
    let phone =
        MerchantAccount::Phone(remit::domain::KenyanPhone::parse("n", "0722000000").unwrap());
    assert!(
        matches!(
            t.request_to(&agent, &escrow_id, "a", 900, phone.clone()),
            Err(Error::Validation { .. })
        ),
        "B2C minimum KES 10"
    );
    assert!(t.request_to(&agent, &escrow_id, "a", 1_000, phone).is_ok());
    // The recipient may ask too; the sender decides, nobody else.
    let recipient_id: remit::domain::UserId = t
        .store
        .read(|c, _| {
            Ok(c.query_row(
                "SELECT recipient_id FROM escrows WHERE id = ?1",
                [&escrow_id],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    let recipient = Actor::user(&recipient_id, Role::Recipient);
    let request = t.request(&recipient, &escrow_id, "a", 10_000).unwrap();
    let id = request["paymentRequestId"].as_str().unwrap();
    assert!(matches!(t.approve(&recipient, id), Err(Error::Forbidden)));
    assert!(matches!(t.approve(&agent, id), Err(Error::Forbidden)));
    t.approve(&sender, id).unwrap();
    assert!(
        matches!(t.approve(&sender, id), Err(Error::InvalidState { .. })),
        "approving twice"
    );
    t.assert_integrity();
}

#[test]
fn the_recipient_is_found_by_phone_in_any_spelling() {
    let t = TestStore::new();
    let (sender, _) = parties(&t);
    let a = t
        .escrow(&sender, "0712345678", 1_000, &["a"], None)
        .unwrap();
    let b = t
        .escrow(&sender, "+254 712 345 678", 1_000, &["a"], None)
        .unwrap();
    let (a_id, b_id) = (
        a["escrowId"].as_str().unwrap(),
        b["escrowId"].as_str().unwrap(),
    );
    let recipient = |id: &str| t.escrow_view(id)["recipient"]["userId"].clone();
    assert!(recipient(a_id).is_string());
    assert_eq!(
        recipient(a_id),
        recipient(b_id),
        "one recipient, found by phone"
    );
    assert_eq!(
        a["recipient"]["phone"], "+254 7** *** 678",
        "masked for a sender"
    );
    let err = t
        .escrow(&sender, "+254700000001", 1_000, &["a"], None)
        .unwrap_err();
    assert!(
        matches!(err, Error::Validation { .. }),
        "a sender's own phone is not a recipient's"
    );
}

#[test]
fn a_failed_commit_answers_its_whole_batch_with_an_error_and_applies_none_of_it() {
    // Regression guard for the group commit: a COMMIT that fails (here a deferred foreign key,
    // standing in for a full disk) must not leave any command of its batch half-applied, and
    // must not answer any of them with success.
    let t = TestStore::new();
    let (sender, agent) = parties(&t);
    let escrow_id = t.active_escrow(&sender, &agent, PHONE, 100_000, &["a"], None);
    let ids: Vec<String> = (0..40)
        .map(|_| {
            t.request(&agent, &escrow_id, "a", kes_for_usd_cents(100))
                .unwrap()["paymentRequestId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let barrier = Arc::new(std::sync::Barrier::new(ids.len() + 1));
    let mut handles = Vec::new();
    for id in ids.clone() {
        let (store, sender, barrier) = (Arc::clone(&t.store), sender.clone(), Arc::clone(&barrier));
        handles.push(std::thread::spawn(move || {
            barrier.wait();
            store
                .write(move |ctx| {
                    remit::service::requests::approve(
                        ctx,
                        &sender,
                        &crate::support::request_id(&id),
                    )
                })
                .is_ok()
        }));
    }
    let store = Arc::clone(&t.store);
    let poison = std::thread::spawn(move || {
        barrier.wait();
        store.write(|ctx| {
            ctx.conn.execute_batch("PRAGMA defer_foreign_keys = ON")?;
            ctx.conn.execute(
                "INSERT INTO api_tokens (token_hash, prefix, user_id, created_at) VALUES (zeroblob(32), 'rmt_poison', 'usr_missing', 'x')",
                [],
            )?;
            Ok(())
        })
    });
    let answered_ok: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        poison.join().unwrap().is_err(),
        "the batch with the bad row cannot commit"
    );
    for (id, ok) in ids.iter().zip(answered_ok) {
        let status: String = t
            .store
            .read(|c, _| {
                Ok(c.query_row(
                    "SELECT status FROM payment_requests WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(
            status == "approved",
            ok,
            "{id}: answered ok={ok} but stored {status}"
        );
    }
    let tokens: i64 = t
        .store
        .read(|c, _| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM api_tokens WHERE prefix = 'rmt_poison'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(tokens, 0);
    t.assert_integrity();
}

/// The list of requests waiting for a decision (the admin's and the kiosk's screens) reads the
/// waiting requests, not every request: two waiting under 1,500 newer decided ones are found in
/// fewer of SQLite's steps than there are requests (a walk of every request from the newest
/// takes several per request).
#[test]
fn the_waiting_list_reads_only_the_waiting_requests() {
    use remit::domain::RequestStatus;
    use std::sync::atomic::{AtomicU64, Ordering};
    let t = TestStore::new();
    let (sender, agent) = parties(&t);
    let admin = t.user(Role::Admin, "Operator", None);
    let escrow = t.active_escrow(&sender, &agent, PHONE, 5_000_000, &["rent"], None);
    let waiting: Vec<String> = (0..2)
        .map(|_| {
            t.request(&agent, &escrow, "rent", 15_000).unwrap()["paymentRequestId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let (id, by, decider) = (escrow.clone(), agent.clone(), sender.clone());
    t.store
        .write(move |ctx| {
            for _ in 0..1_500 {
                let input = remit::service::requests::NewPaymentRequest {
                    escrow_id: escrow_id(&id),
                    category: remit::domain::CategoryName::parse("c", "rent").unwrap(),
                    amount: remit::money::KesCents::new(15_000).unwrap(),
                    merchant_name: "Kenya Power".into(),
                    merchant_account: MerchantAccount::Paybill {
                        number: "888880".into(),
                        account_reference: "12345678".into(),
                    },
                    note: None,
                };
                let view = remit::service::requests::create(ctx, &by, &input, 3600)?;
                remit::service::requests::reject(ctx, &decider, &view.payment_request_id, None)?;
            }
            Ok(())
        })
        .unwrap();

    let reader = t.store.reader().unwrap();
    let steps = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&steps);
    reader
        .progress_handler(
            1,
            Some(move || {
                counted.fetch_add(1, Ordering::Relaxed);
                false
            }),
        )
        .unwrap();
    let page = remit::service::views::payment_requests(
        &reader,
        t.store.keys(),
        &admin,
        None,
        Some(RequestStatus::PendingApproval),
        100,
        None,
    )
    .unwrap();
    let listed: Vec<String> = page
        .items
        .iter()
        .map(|r| r.payment_request_id.to_string())
        .collect();
    // Newest first: by id (two made in the same millisecond sort by their random part).
    let mut newest_first = waiting;
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(listed, newest_first);
    let steps = steps.load(Ordering::Relaxed);
    assert!(steps < 1_500, "{steps} steps for 2 waiting requests");
}
