//! loom model of the summation tree of a node with more contributions than a block holds:
//! producers deposit into one node through the real [`StripedBuffers`] (whose blocks hold
//! `BLOCK = 3` slots under loom), and under every interleaving the node must be released once,
//! with the canonical tree sum: left folds of the blocks, added pairwise, left block first.
//!
//! The gradient is an expression string, so "equal" means the same operands in the same order
//! and the same association (the bitwise contract for floats). Two negative controls run the
//! same models on deliberately flawed trees and must be caught: one adds the two halves of a
//! join in the order they completed, the other looks for the sibling's sum and stores its own
//! under two separate locks (so two threads can both miss each other and the root is lost).
//!
//! A block's contributions are subtracted from the node's counter at once, by the thread that
//! completes the block; a further model checks that the releasing thread still sees what
//! every producer wrote before depositing (a producer whose deposit completes nothing never
//! touches the counter).
//!
//! Run with `RUSTFLAGS="--cfg loom"` (see `.ci/loom.sh`).
#![cfg(loom)]

use crate::common::{check, check_fails, Expr};

use backflow_engine::exec::accumulate::Flaw;
use backflow_engine::exec::{Accumulation, StripedBuffers, BLOCK};
use backflow_engine::sync::{Arc, AtomicU32, Ordering};
use loom::cell::UnsafeCell;

/// One iteration: thread `t` deposits the slots `plan[t]`, in that order, into one node of
/// in-degree `n` (operand `c{slot}`) and decrements the counter by what each deposit folded,
/// as the executor's `deliver` does. Returns the sum taken by the one releasing thread.
fn fan_in(n: u32, plan: &'static [&'static [u32]], flaw: Flaw) -> Option<Expr> {
    assert!(n > BLOCK, "the model must use a tree");
    let buffers = match flaw {
        Flaw::None => StripedBuffers::new(&[n], Accumulation::Deterministic),
        flaw => StripedBuffers::with_flaw(&[n], Accumulation::Deterministic, flaw),
    };
    let shared = Arc::new((buffers, AtomicU32::new(n)));
    let handles: Vec<_> = plan
        .iter()
        .map(|&slots| {
            let shared = Arc::clone(&shared);
            loom::thread::spawn(move || {
                let (buffers, indegree) = &*shared;
                let mut released = Vec::new();
                for &slot in slots {
                    let folded = buffers.deposit(0, slot, Some(Expr(format!("c{slot}"))));
                    // AcqRel: as in the executor; loom/release.rs checks this ordering.
                    if folded > 0 && indegree.fetch_sub(folded, Ordering::AcqRel) == folded {
                        released.push(buffers.take(0));
                    }
                }
                released
            })
        })
        .collect();
    let mut released: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("producer panicked"))
        .collect();
    assert_eq!(released.len(), 1, "released {} times", released.len());
    released.pop().unwrap()
}

/// Five contributions: blocks `c0 c1 c2` and `c3 c4`.
const FIVE: &str = "(((c0+c1)+c2)+(c3+c4))";

/// Two threads; each fills part of both blocks, one of them out of turn.
const TWO_THREADS: &[&[u32]] = &[&[0, 4], &[3, 2, 1]];

/// Three threads; block 0 is completed by whoever delivers its last missing slot.
const THREE_THREADS: &[&[u32]] = &[&[0, 4], &[2, 3], &[1]];

fn assert_canonical(sum: Option<Expr>, want: &str) {
    let got = sum.map(|e| e.0);
    assert_eq!(got.as_deref(), Some(want), "not the canonical tree");
}

#[test]
fn tree_sum_is_canonical_with_two_threads() {
    check(|| assert_canonical(fan_in(5, TWO_THREADS, Flaw::None), FIVE));
}

#[test]
fn tree_sum_is_canonical_with_three_threads() {
    check(|| assert_canonical(fan_in(5, THREE_THREADS, Flaw::None), FIVE));
}

#[test]
fn tree_sum_with_a_one_slot_block_is_canonical() {
    // Four contributions: the second block is `c3` alone, complete on arrival.
    check(|| {
        let sum = fan_in(4, &[&[3, 1], &[2, 0]], Flaw::None);
        assert_canonical(sum, "(((c0+c1)+c2)+c3)");
    });
}

#[test]
fn join_in_completion_order_is_caught() {
    let message =
        check_fails(|| assert_canonical(fan_in(5, TWO_THREADS, Flaw::JoinInCompletionOrder), FIVE));
    assert!(message.contains("not the canonical tree"), "{message}");
}

#[test]
fn join_that_looks_then_stores_is_caught() {
    let message =
        check_fails(|| assert_canonical(fan_in(5, TWO_THREADS, Flaw::JoinLookThenStore), FIVE));
    assert!(
        message.contains("not the canonical tree") || message.contains("taken before final"),
        "{message}"
    );
}

/// Plain data each producer thread writes before its deposits: one cell per thread.
struct Written([UnsafeCell<u32>; 3]);

// SAFETY: the cells are accessed through loom's `UnsafeCell`, which reports any pair of
// accesses not ordered by happens-before; finding those is the point of the model.
unsafe impl Sync for Written {}

/// One iteration: the three threads of [`THREE_THREADS`] each write their cell, then deposit,
/// decrementing the counter with `ordering`; the releaser reads every cell before it takes
/// the sum.
fn publish(ordering: Ordering) {
    {
        let n = 5;
        let shared = Arc::new((
            StripedBuffers::new(&[n], Accumulation::Deterministic),
            AtomicU32::new(n),
            Written(std::array::from_fn(|_| UnsafeCell::new(0))),
        ));
        let handles: Vec<_> = THREE_THREADS
            .iter()
            .enumerate()
            .map(|(t, &slots)| {
                let shared = Arc::clone(&shared);
                loom::thread::spawn(move || {
                    let (buffers, indegree, written) = &*shared;
                    written.0[t].with_mut(|cell| {
                        // SAFETY: only thread `t` writes cell `t`; readers are checked by loom.
                        unsafe { *cell = t as u32 + 1 }
                    });
                    let mut seen = None;
                    for &slot in slots {
                        let folded = buffers.deposit(0, slot, Some(Expr(format!("c{slot}"))));
                        if folded > 0 && indegree.fetch_sub(folded, ordering) == folded {
                            let cells: Vec<u32> = written
                                .0
                                .iter()
                                // SAFETY: writers wrote before depositing; loom checks the order.
                                .map(|cell| cell.with(|v| unsafe { *v }))
                                .collect();
                            seen = Some((cells, buffers.take(0)));
                        }
                    }
                    seen
                })
            })
            .collect();
        let released: Vec<_> = handles
            .into_iter()
            .filter_map(|h| h.join().expect("producer panicked"))
            .collect();
        assert_eq!(released.len(), 1, "released {} times", released.len());
        let (cells, sum) = &released[0];
        assert_eq!(cells, &[1, 2, 3], "the releaser missed a producer's writes");
        assert_canonical(sum.clone(), FIVE);
    }
}

#[test]
fn releaser_sees_every_producers_writes() {
    // AcqRel: as in the executor's `deliver`.
    check(|| publish(Ordering::AcqRel));
}

#[test]
fn relaxed_decrement_is_caught_in_a_tree() {
    let message = check_fails(|| publish(Ordering::Relaxed));
    assert!(message.contains("Causality violation"), "{message}");
}
