//! loom model of the in-degree release: k = 3 producers deposit into one node through the
//! real [`StripedBuffers`] and decrement its counter by what each deposit folded, as the
//! parallel executor's `deliver` does. The node must be taken exactly once, after every
//! contribution, and its taker must see every producer's earlier writes.
//!
//! Each producer also writes a plain (loom-tracked) cell before depositing, and the taker reads
//! all cells as soon as its decrement reaches zero, before it takes the lock again. So the
//! model checks the counter's ordering itself, not just the stripe lock. The negative controls
//! run the same protocol with a `Relaxed` or `Release`-only decrement and must be caught.
//!
//! Run with `RUSTFLAGS="--cfg loom"` (see `.ci/loom.sh`).
#![cfg(loom)]

use crate::common::{check, check_fails, Expr};

use backflow_engine::exec::{Accumulation, StripedBuffers};
use backflow_engine::sync::{fence, Arc, AtomicU32, Ordering};
use loom::cell::UnsafeCell;

/// Producers fanning in to the node.
const K: u32 = 3;
/// The node they feed; 0, so a single-node buffer has one stripe.
const NODE: u32 = 0;

/// How a producer publishes its decrement, and how the taker acquires.
#[derive(Clone, Copy, Debug)]
enum Decrement {
    /// `fetch_sub(AcqRel)`, as the executor does.
    AcqRel,
    /// `fetch_sub(Release)` then `fence(Acquire)` in the taker, as `Arc::drop` does.
    ReleaseFence,
    /// Negative control: `fetch_sub(Relaxed)`.
    Relaxed,
    /// Negative control: `fetch_sub(Release)` without the taker's acquire.
    ReleaseOnly,
}

/// Plain data a producer writes before it deposits: one cell per producer.
struct Written([UnsafeCell<u32>; K as usize]);

// SAFETY: the cells are accessed through loom's `UnsafeCell`, which reports any pair of
// accesses not ordered by happens-before; finding those is the point of the model.
unsafe impl Sync for Written {}

/// Everything the threads of one iteration share.
struct FanIn {
    buffers: StripedBuffers<Expr>,
    /// Contributions not yet folded; the decrement that reaches zero releases the node.
    indegree: AtomicU32,
    written: Written,
}

/// Producer `p`: write its cell, deposit slot `p`, decrement by what it folded. Returns the
/// node's gradient if this thread released it, with the cell values it read at release.
fn produce(fan: &FanIn, p: u32, order: Decrement) -> Option<(Option<Expr>, Vec<u32>)> {
    fan.written.0[p as usize].with_mut(|cell| {
        // SAFETY: only producer `p` writes cell `p`; readers are checked by loom.
        unsafe { *cell = p + 1 }
    });
    let folded = fan.buffers.deposit(NODE, p, Some(Expr(format!("c{p}"))));
    if folded == 0 {
        return None;
    }
    let ordering = match order {
        Decrement::AcqRel => Ordering::AcqRel,
        Decrement::ReleaseFence | Decrement::ReleaseOnly => Ordering::Release,
        Decrement::Relaxed => Ordering::Relaxed,
    };
    let before = fan.indegree.fetch_sub(folded, ordering);
    assert!(before >= folded, "node over-released: {before} < {folded}");
    if before != folded {
        return None;
    }
    if let Decrement::ReleaseFence = order {
        // Acquire: pairs with every producer's Release decrement.
        fence(Ordering::Acquire);
    }
    let seen = fan
        .written
        .0
        .iter()
        .map(|cell| {
            // SAFETY: producers wrote before their decrement; loom checks the ordering.
            cell.with(|v| unsafe { *v })
        })
        .collect();
    Some((fan.buffers.take(NODE), seen))
}

/// One iteration: K producer threads, the main thread joins them and checks the outcome.
fn fan_in(order: Decrement) {
    let fan = Arc::new(FanIn {
        buffers: StripedBuffers::new(&[K], Accumulation::Deterministic),
        indegree: AtomicU32::new(K),
        written: Written(std::array::from_fn(|_| UnsafeCell::new(0))),
    });
    let handles: Vec<_> = (0..K)
        .map(|p| {
            let fan = Arc::clone(&fan);
            loom::thread::spawn(move || produce(&fan, p, order))
        })
        .collect();
    let released: Vec<_> = handles
        .into_iter()
        .filter_map(|h| h.join().expect("producer panicked"))
        .collect();
    assert_eq!(released.len(), 1, "released {} times", released.len());
    let (grad, seen) = &released[0];
    assert_eq!(
        grad.as_ref().map(|g| g.0.as_str()),
        Some("((c0+c1)+c2)"),
        "released before all contributions were folded"
    );
    assert_eq!(seen, &[1, 2, 3], "the releaser missed a producer's writes");
    assert_eq!(fan.indegree.load(Ordering::Relaxed), 0);
}

#[test]
fn node_released_once_after_all_contributions() {
    check(|| fan_in(Decrement::AcqRel));
}

#[test]
fn release_then_acquire_fence_also_publishes() {
    check(|| fan_in(Decrement::ReleaseFence));
}

#[test]
fn relaxed_decrement_is_caught() {
    let message = check_fails(|| fan_in(Decrement::Relaxed));
    assert!(message.contains("Causality violation"), "{message}");
}

#[test]
fn release_only_decrement_is_caught() {
    let message = check_fails(|| fan_in(Decrement::ReleaseOnly));
    assert!(message.contains("Causality violation"), "{message}");
}
