//! A seeded randomized model test: thousands of operations from several threads across many
//! escrows. Afterwards no balance is negative, the integrity check finds nothing, and every
//! failed operation changed nothing (the ledger's fingerprint before and after is the same).

use crate::support::*;
use remit::service::payouts::{self, PayoutResult};
use remit::service::{escrows, requests, Actor, Role};
use std::sync::Arc;

/// A small deterministic PRNG (SplitMix64) so that a seed replays the same operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Everything that money or state touches, as one string: a failed command must leave it
/// exactly as it was.
fn fingerprint(t: &TestStore, escrow_id: &str) -> String {
    let id = escrow_id.to_string();
    t.store
        .read(move |c, _| {
            let e: String = c.query_row(
                "SELECT status || deposited_usd_cents || '/' || remaining_usd_cents || '/' || reserved_usd_cents || '/'
                 || spent_usd_cents || '/' || refunded_usd_cents FROM escrows WHERE id = ?1",
                [&id],
                |r| r.get(0),
            )?;
            let counts: String = c.query_row(
                "SELECT (SELECT COUNT(*) FROM ledger_entries WHERE escrow_id = ?1) || '/' ||
                        COALESCE((SELECT group_concat(status) FROM (SELECT status FROM payment_requests WHERE escrow_id = ?1 ORDER BY id)), '') || '/' ||
                        COALESCE((SELECT group_concat(status) FROM (SELECT status FROM payouts WHERE escrow_id = ?1 ORDER BY id)), '') || '/' ||
                        (SELECT COALESCE(SUM(approved_usd_cents), 0) FROM daily_spend WHERE escrow_id = ?1)",
                [&id],
                |r| r.get(0),
            )?;
            Ok(format!("{e}|{counts}"))
        })
        .unwrap()
}

fn run_worker(
    t: Arc<TestStore>,
    seed: u64,
    sender: Actor,
    agent: Actor,
    escrow_ids: Vec<String>,
    ops: usize,
) -> usize {
    let mut rng = Rng(seed);
    let mut failures_checked = 0;
    for _ in 0..ops {
        // Each worker owns its escrows, so "before" and "after" of a failed command are only
        // disturbed by that worker's own commands.
        let escrow_id = escrow_ids[rng.below(escrow_ids.len() as u64) as usize].clone();
        let before = fingerprint(&t, &escrow_id);
        let op = rng.below(100);
        let result: remit::Result<()> = match op {
            0..=9 => {
                let id = escrow_id.clone();
                let due: i64 = t
                    .store
                    .read(move |c, _| Ok(c.query_row("SELECT total_usd_cents - deposited_usd_cents FROM escrows WHERE id = ?1", [id], |r| r.get(0))?))
                    .unwrap();
                // Half the time exactly what is due (so escrows activate), else anything.
                let amount = if rng.below(2) == 0 && due > 0 {
                    due
                } else {
                    1 + rng.below(40_000) as i64
                };
                t.deposit(&agent, &escrow_id, &format!("d{}", rng.next()), amount)
                    .map(|_| ())
            }
            10..=44 => {
                let category = ["a", "b", "c"][rng.below(3) as usize];
                let kes = (1 + rng.below(30_000) as i64) * 100;
                t.request(&agent, &escrow_id, category, kes).map(|_| ())
            }
            45..=89 => {
                let pick = pick_row(
                    &t,
                    &escrow_id,
                    "SELECT id FROM payment_requests WHERE escrow_id = ?1",
                    &mut rng,
                );
                match pick {
                    Some(id) => match rng.below(6) {
                        0 => {
                            let (s, i) = (sender.clone(), id);
                            t.store.write(move |ctx| {
                                requests::reject(ctx, &s, &request_id(&i), Some("no")).map(|_| ())
                            })
                        }
                        1 => {
                            let (a, i) = (agent.clone(), id);
                            t.store.write(move |ctx| {
                                requests::cancel(ctx, &a, &request_id(&i)).map(|_| ())
                            })
                        }
                        _ => t.approve(&sender, &id).map(|_| ()),
                    },
                    None => Ok(()),
                }
            }
            90..=97 => {
                let pick = pick_row(
                    &t,
                    &escrow_id,
                    "SELECT id FROM payouts WHERE escrow_id = ?1",
                    &mut rng,
                );
                match pick {
                    Some(id) => {
                        let result = if rng.below(3) == 0 {
                            PayoutResult::Failed {
                                code: "1".into(),
                                desc: "insufficient".into(),
                            }
                        } else {
                            PayoutResult::Succeeded {
                                receipt: format!("R{}", rng.next() % 10_000_000_000),
                            }
                        };
                        t.store.write(move |ctx| {
                            payouts::apply_result(
                                ctx,
                                &Actor::system("model"),
                                &remit::domain::PayoutId::parse(&id).unwrap(),
                                &result,
                                payouts::Reported::NotCarried,
                            )
                            .map(|_| ())
                        })
                    }
                    None => Ok(()),
                }
            }
            _ => {
                let (s, i) = (sender.clone(), escrow_id.clone());
                t.store.write(move |ctx| {
                    escrows::cancel(ctx, &s, &crate::support::escrow_id(&i)).map(|_| ())
                })
            }
        };
        if let Err(e) = result {
            assert!(
                !matches!(e, remit::Error::Internal(_)),
                "seed {seed}: internal error {e:?}"
            );
            let after = fingerprint(&t, &escrow_id);
            assert_eq!(
                before, after,
                "seed {seed}: op {op} failed with {e:?} but changed the ledger"
            );
            failures_checked += 1;
        }
    }
    failures_checked
}

fn pick_row(t: &TestStore, escrow_id: &str, sql: &str, rng: &mut Rng) -> Option<String> {
    let (id, sql) = (escrow_id.to_string(), sql.to_string());
    let rows: Vec<String> = t
        .store
        .read(move |c, _| {
            Ok(c.prepare(&sql)?
                .query_map([&id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?)
        })
        .unwrap();
    if rows.is_empty() {
        None
    } else {
        Some(rows[rng.below(rows.len() as u64) as usize].clone())
    }
}

#[test]
fn a_randomized_run_keeps_every_invariant_and_failures_change_nothing() {
    let seed: u64 = std::env::var("REMIT_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("model test seed: {seed} (replay with REMIT_MODEL_SEED={seed})");
    let t = Arc::new(TestStore::new());
    let sender = t.user(Role::Sender, "S", None);
    let agent = t.user(Role::Agent, "A", None);
    const THREADS: u64 = 4;
    const ESCROWS_PER_THREAD: usize = 5;
    const OPS_PER_THREAD: usize = 600;
    let mut handles = Vec::new();
    for w in 0..THREADS {
        let mut escrow_ids = Vec::new();
        for e in 0..ESCROWS_PER_THREAD {
            let phone = format!("07{:02}{:06}", w, e);
            let daily = if e % 2 == 0 { Some(30_000) } else { None };
            let escrow = t
                .escrow(
                    &sender,
                    &phone,
                    60_000 + e as i64 * 7,
                    &["a", "b", "c"],
                    daily,
                )
                .unwrap();
            escrow_ids.push(escrow["escrowId"].as_str().unwrap().to_string());
        }
        let (t, sender, agent) = (Arc::clone(&t), sender.clone(), agent.clone());
        handles.push(std::thread::spawn(move || {
            run_worker(
                t,
                seed.wrapping_add(w),
                sender,
                agent,
                escrow_ids,
                OPS_PER_THREAD,
            )
        }));
    }
    let failures: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    eprintln!("model test: {failures} failed operations checked to have changed nothing");
    assert!(
        failures > 0,
        "seed {seed}: the run should exercise refusals"
    );
    let report = t.integrity();
    assert!(
        report.is_clean(),
        "seed {seed}:\n{}",
        report.mismatches.join("\n")
    );
    let paid: i64 = t
        .store
        .read(|c, _| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM payouts WHERE status = 'succeeded'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert!(paid > 0, "seed {seed}: the run should pay something");
}
