//! loom model of the deterministic fold: three producers deposit into one node through the
//! real [`StripedBuffers`], and under every interleaving the released sum must equal the
//! canonical left fold in slot order, `((c0 + c1) + c2)`, exactly.
//!
//! The gradient is an expression string, so "equal" means the same operands in the same order
//! and the same association, the bitwise-identity contract for floats. `Fast` mode need only
//! hold every contribution once. The negative control folds in arrival order instead and must
//! be caught by the same check.
//!
//! Run with `RUSTFLAGS="--cfg loom"` (see `.ci/loom.sh`).
#![cfg(loom)]

use crate::common::{check, check_fails, operands, Expr};

use backflow_engine::exec::{Accumulation, Gradient, StripedBuffers};
use backflow_engine::sync::{Arc, AtomicU32, Mutex, Ordering};

/// Producers fanning in to the node.
const K: u32 = 3;

/// Where contributions to node 0 meet: the real buffers, or the arrival-order toy.
trait Accumulator: Send + Sync + 'static {
    /// Deposits `c` for `slot`; returns how many contributions this call folded.
    fn deposit(&self, slot: u32, c: Option<Expr>) -> u32;
    /// Takes the final sum once the counter has reached zero.
    fn take(&self) -> Option<Expr>;
}

impl Accumulator for StripedBuffers<Expr> {
    fn deposit(&self, slot: u32, c: Option<Expr>) -> u32 {
        StripedBuffers::deposit(self, 0, slot, c)
    }
    fn take(&self) -> Option<Expr> {
        StripedBuffers::take(self, 0)
    }
}

/// Negative control: folds each contribution as it arrives, ignoring its slot.
#[derive(Default)]
struct ArrivalOrder(Mutex<Option<Expr>>);

impl Accumulator for ArrivalOrder {
    fn deposit(&self, _slot: u32, c: Option<Expr>) -> u32 {
        let mut acc = self.0.lock();
        *acc = match (acc.take(), c) {
            (Some(a), Some(c)) => Some(a.accumulate(c)),
            (a, None) => a,
            (None, c) => c,
        };
        1
    }
    fn take(&self) -> Option<Expr> {
        self.0.lock().take()
    }
}

/// One iteration: producer `p` deposits `contributions[p]` into slot `p` and decrements the
/// counter by what it folded, as the executor's `deliver` does; the releaser's sum is returned.
fn fan_in<A: Accumulator>(acc: A, contributions: [Option<&'static str>; K as usize]) -> Expr {
    let shared = Arc::new((acc, AtomicU32::new(K)));
    let handles: Vec<_> = (0..K)
        .map(|p| {
            let shared = Arc::clone(&shared);
            loom::thread::spawn(move || {
                let (acc, indegree) = &*shared;
                let c = contributions[p as usize].map(|s| Expr(s.to_string()));
                let folded = acc.deposit(p, c);
                // AcqRel: as in the executor; loom/release.rs checks this ordering.
                let done = folded > 0 && indegree.fetch_sub(folded, Ordering::AcqRel) == folded;
                done.then(|| acc.take())
            })
        })
        .collect();
    let mut released: Vec<_> = handles
        .into_iter()
        .filter_map(|h| h.join().expect("producer panicked"))
        .collect();
    assert_eq!(released.len(), 1, "released {} times", released.len());
    released
        .pop()
        .unwrap()
        .expect("a sum of present contributions")
}

const ALL: [Option<&str>; K as usize] = [Some("a"), Some("b"), Some("c")];

#[test]
fn deterministic_fold_is_canonical_under_every_interleaving() {
    check(|| {
        let buffers = StripedBuffers::new(&[K], Accumulation::Deterministic);
        let sum = fan_in(buffers, ALL);
        assert_eq!(sum.0, "((a+b)+c)", "not the canonical fold");
    });
}

#[test]
fn deterministic_fold_skips_an_absent_middle_contribution() {
    check(|| {
        let buffers = StripedBuffers::new(&[K], Accumulation::Deterministic);
        let sum = fan_in(buffers, [Some("a"), None, Some("c")]);
        assert_eq!(sum.0, "(a+c)", "not the canonical fold");
    });
}

#[test]
fn deterministic_fold_skips_an_absent_first_contribution() {
    check(|| {
        let buffers = StripedBuffers::new(&[K], Accumulation::Deterministic);
        let sum = fan_in(buffers, [None, Some("b"), Some("c")]);
        assert_eq!(sum.0, "(b+c)", "not the canonical fold");
    });
}

#[test]
fn fast_fold_sums_every_contribution_once() {
    check(|| {
        let buffers = StripedBuffers::new(&[K], Accumulation::Fast);
        let sum = fan_in(buffers, ALL);
        assert_eq!(
            operands(&sum),
            ["a", "b", "c"],
            "lost or doubled: {}",
            sum.0
        );
    });
}

#[test]
fn arrival_order_fold_is_caught() {
    let message = check_fails(|| {
        let sum = fan_in(ArrivalOrder::default(), ALL);
        // The toy never loses a contribution, it only reorders them.
        assert_eq!(operands(&sum), ["a", "b", "c"], "{}", sum.0);
        assert_eq!(sum.0, "((a+b)+c)", "not the canonical fold");
    });
    assert!(message.contains("not the canonical fold"), "{message}");
}
