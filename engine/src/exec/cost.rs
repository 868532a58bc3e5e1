//! Whether a pass is worth sharing between threads: its node count times the recent cost of
//! a node, learnt from the passes this process has run (an exponential moving average, as
//! TensorFlow's executor keeps per node). A pass estimated under [`ALONE_BELOW`] runs on
//! the calling thread alone, since waking helpers would cost more than it saves; a small
//! graph of expensive nodes (convolutions) is still shared, a small graph of cheap ones is
//! not. The estimate only picks a path: both give the same bits.

use crate::sync::{AtomicUsize, Ordering};
use std::time::Duration;

/// Passes estimated shorter than this run alone.
const ALONE_BELOW: Duration = Duration::from_micros(30);

/// The cost assumed before any pass has been measured: a node of light tensor work.
const FIRST_GUESS_NS: usize = 2_000;

/// Recent cost of a node, in nanoseconds (shared by every pass of the process).
static NS_PER_NODE: AtomicUsize = AtomicUsize::new(FIRST_GUESS_NS);

/// Whether a pass of `nodes` nodes is estimated too short to share.
pub(super) fn too_small_to_share(nodes: usize) -> bool {
    // Relaxed: a heuristic; a stale estimate only picks the other, equally correct, path.
    short(nodes, NS_PER_NODE.load(Ordering::Relaxed))
}

/// Whether `nodes` nodes of `per_node` ns each take less than [`ALONE_BELOW`].
fn short(nodes: usize, per_node: usize) -> bool {
    (nodes.saturating_mul(per_node) as u128) < ALONE_BELOW.as_nanos()
}

/// Folds one pass's measured time into the estimate (weight 1/8).
pub(super) fn record(nodes: usize, elapsed: Duration) {
    if nodes == 0 {
        return;
    }
    let measured = (elapsed.as_nanos() / nodes as u128).min(usize::MAX as u128) as usize;
    // Relaxed: see `too_small_to_share`; a lost update between two passes costs nothing.
    let old = NS_PER_NODE.load(Ordering::Relaxed);
    NS_PER_NODE.store(averaged(old, measured), Ordering::Relaxed);
}

/// The moving average after one more measurement (weight 1/8), at least 1 ns.
fn averaged(old: usize, measured: usize) -> usize {
    (old - old / 8 + measured / 8).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cheap_passes_run_alone_and_expensive_ones_are_shared() {
        // After many passes of 100 ns per node, a 64-node pass (6.4 µs) runs alone.
        let mut per_node = FIRST_GUESS_NS;
        for _ in 0..64 {
            per_node = averaged(per_node, 100);
        }
        assert!((100..200).contains(&per_node), "{per_node}");
        assert!(short(64, per_node));
        assert!(!short(10_000, per_node));
        // Then passes of 5 ms per node (convolutions): a 16-node pass is shared.
        for _ in 0..64 {
            per_node = averaged(per_node, 5_000_000);
        }
        assert!(!short(16, per_node));
        // Before any measurement, a 64-node pass is shared and a 7-node one is not.
        assert!(!short(64, FIRST_GUESS_NS) && short(7, FIRST_GUESS_NS));
    }
}
