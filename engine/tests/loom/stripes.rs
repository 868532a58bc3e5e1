//! loom model of lock striping: two nodes that share a stripe receive contributions from the
//! same threads at once, through the real [`StripedBuffers`], and neither may lose, double or
//! misplace an update.
//!
//! Under loom `STRIPES` is 2, so of the three nodes 0 and 2 share stripe 0. Each thread feeds
//! both of them, in opposite orders, so one node's fold runs outside the lock while the other
//! node's deposits take that same lock.
//!
//! Run with `RUSTFLAGS="--cfg loom"` (see `.ci/loom.sh`).
#![cfg(loom)]

use crate::common::{check, operands, Expr};

use backflow_engine::exec::accumulate::STRIPES;
use backflow_engine::exec::{Accumulation, StripedBuffers};
use backflow_engine::sync::{Arc, AtomicU32, Ordering};

/// Nodes in the buffers; 0 and 2 share a stripe, 1 has the other to itself.
const NODES: usize = 3;
/// The two nodes the model feeds.
const SHARED: [u32; 2] = [0, 2];
/// Contributions each shared node waits for: one from each producer thread and the main thread.
const INDEGREE: u32 = 3;

/// Everything the threads of one iteration share.
struct Shared {
    buffers: StripedBuffers<Expr>,
    /// Per node: contributions not yet folded; the decrement that reaches zero releases it.
    indegree: [AtomicU32; NODES],
}

impl Shared {
    /// Deposits slot `slot` of `node` (operand `n{node}s{slot}`), as the executor's `deliver`
    /// does; returns the node and its sum if this released it.
    fn deliver(&self, node: u32, slot: u32) -> Option<(u32, Option<Expr>)> {
        let c = Expr(format!("n{node}s{slot}"));
        let folded = self.buffers.deposit(node, slot, Some(c));
        // AcqRel: as in the executor; loom/release.rs checks this ordering.
        let done = folded > 0
            && self.indegree[node as usize].fetch_sub(folded, Ordering::AcqRel) == folded;
        done.then(|| (node, self.buffers.take(node)))
    }
}

/// One iteration: producer `p` feeds slot `p` of both shared nodes, in an order that depends
/// on `p`; the main thread feeds the last slot of each. Returns each node's released sum.
fn feed_shared_stripe(mode: Accumulation) -> [Expr; 2] {
    assert_eq!(STRIPES, 2, "the model assumes loom's stripe count");
    assert_eq!(SHARED[0] as usize % STRIPES, SHARED[1] as usize % STRIPES);
    let shared = Arc::new(Shared {
        buffers: StripedBuffers::new(&[INDEGREE; NODES], mode),
        indegree: std::array::from_fn(|_| AtomicU32::new(INDEGREE)),
    });
    let handles: Vec<_> = (0..2u32)
        .map(|p| {
            let shared = Arc::clone(&shared);
            loom::thread::spawn(move || {
                let (first, second) = if p == 0 {
                    (SHARED[0], SHARED[1])
                } else {
                    (SHARED[1], SHARED[0])
                };
                [shared.deliver(first, p), shared.deliver(second, p)]
            })
        })
        .collect();
    let mut released = vec![
        shared.deliver(SHARED[0], INDEGREE - 1),
        shared.deliver(SHARED[1], INDEGREE - 1),
    ];
    for h in handles {
        released.extend(h.join().expect("producer panicked"));
    }
    let mut sums: [Option<Expr>; 2] = [None, None];
    for (node, sum) in released.into_iter().flatten() {
        let at = SHARED.iter().position(|&n| n == node).unwrap();
        assert!(sums[at].is_none(), "node {node} released twice");
        sums[at] = Some(sum.expect("a sum of present contributions"));
    }
    sums.map(|s| s.expect("a node was never released"))
}

#[test]
fn shared_stripe_loses_no_update_deterministic() {
    check(|| {
        let [a, b] = feed_shared_stripe(Accumulation::Deterministic);
        assert_eq!(a.0, "((n0s0+n0s1)+n0s2)");
        assert_eq!(b.0, "((n2s0+n2s1)+n2s2)");
    });
}

#[test]
fn shared_stripe_loses_no_update_fast() {
    check(|| {
        let [a, b] = feed_shared_stripe(Accumulation::Fast);
        assert_eq!(operands(&a), ["n0s0", "n0s1", "n0s2"], "{}", a.0);
        assert_eq!(operands(&b), ["n2s0", "n2s1", "n2s2"], "{}", b.0);
    });
}
