//! Gradient accumulation: the canonical fold and the lock-striped buffers that hold it.
//!
//! A node with several consumers receives one contribution per incoming edge, each tagged
//! with its canonical slot (see [`super::plan`]). In [`Accumulation::Deterministic`] mode the
//! contributions are summed in a canonical order that depends only on the node's in-degree,
//! whatever order they arrive in: up to [`BLOCK`] of them as the left fold
//! `((c0 + c1) + c2) + …` in slot order, more as a tree of such folds (see
//! `fold_tree.rs`). Each in-order prefix is folded as soon as it is complete, and only
//! out-of-order arrivals wait, parked. In [`Accumulation::Fast`] mode they are added in
//! arrival order.
//!
//! The left fold of node `i` lives in stripe `i % stripes`, a cache-padded mutex; a tree has
//! a lock per block. Additions never run under a lock: the thread that finds the next
//! contribution(s) foldable marks the fold busy, takes the running sum out, adds outside the
//! lock, and puts it back (a combiner). Contributions arriving meanwhile are parked and picked
//! up by that same thread before it lets go. A contribution counts as delivered, for the
//! in-degree counter, once it is folded (for a tree: once its block is complete and carried
//! as far up the tree as it goes); so when the counter reaches zero, the sum is final and
//! nobody holds it.

pub use super::fold_tree::{canonical_sum, BLOCK};

#[cfg(loom)]
pub use super::fold_tree::Flaw;
use super::fold_tree::FoldTree;
use crate::sync::{CachePadded, Mutex};
use std::collections::BTreeMap;

/// How contributions to a node with several consumers are summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Accumulation {
    /// Sum in a canonical order fixed by the slots and the in-degree alone (see
    /// [`canonical_sum`]): bitwise identical across schedulers, thread counts and runs.
    #[default]
    Deterministic,
    /// Sum in arrival order, in place: no parking, results vary in the last bits.
    Fast,
}

/// A gradient value the executor can sum.
pub trait Gradient: Send + Sized {
    /// Returns `self + later`, where `later` comes after `self` in summation order.
    fn accumulate(self, later: Self) -> Self;
}

impl Gradient for f64 {
    fn accumulate(self, later: f64) -> f64 {
        self + later
    }
}

impl Gradient for f32 {
    fn accumulate(self, later: f32) -> f32 {
        self + later
    }
}

/// Adds an optional contribution to an optional running sum (an absent one adds nothing).
pub(super) fn add<G: Gradient>(acc: Option<G>, c: Option<G>) -> Option<G> {
    match (acc, c) {
        (Some(a), Some(c)) => Some(a.accumulate(c)),
        (a, None) => a,
        (None, c) => c,
    }
}

/// The accumulation state of one node.
pub struct Fold<G> {
    /// Running sum of the contributions folded so far.
    acc: Option<G>,
    /// Next slot to fold (Deterministic mode); in Fast mode, contributions folded so far,
    /// which keys the parked ones in arrival order.
    next: u32,
    /// A thread holds `acc` outside the lock and will fold everything parked before letting go.
    busy: bool,
    /// Arrived but not yet folded, by slot (Deterministic) or arrival order (Fast). Only
    /// contributions that arrive out of turn or while another thread adds are parked.
    parked: BTreeMap<u32, Option<G>>,
}

impl<G> Default for Fold<G> {
    fn default() -> Self {
        Self {
            acc: None,
            next: 0,
            busy: false,
            parked: BTreeMap::new(),
        }
    }
}

/// What a deposit asks its caller to do next, decided under the lock.
enum Step<G> {
    /// Nothing more: the contributions were folded or parked; this call folded `folded`.
    Done { folded: u32 },
    /// Add `c` to `acc` outside the lock, then call [`Fold::resume`]; this call had folded
    /// `folded` before `c`.
    Add {
        acc: Option<G>,
        c: Option<G>,
        folded: u32,
    },
}

impl<G: Gradient> Fold<G> {
    /// Records contribution `c` for `slot` and decides what to fold. In the common case (the
    /// next slot in order, or any slot in `Fast` mode, with nobody folding) it is folded at
    /// once, without being parked.
    fn deposit(&mut self, slot: u32, c: Option<G>, mode: Accumulation) -> Step<G> {
        let in_turn = match mode {
            Accumulation::Fast => true,
            Accumulation::Deterministic => slot == self.next,
        };
        if self.busy || !in_turn {
            // Fast mode keys by arrival, so that parked contributions keep their order.
            let key = match mode {
                Accumulation::Fast => self.next + self.parked.len() as u32,
                Accumulation::Deterministic => slot,
            };
            self.parked.insert(key, c);
            return Step::Done { folded: 0 };
        }
        self.fold_or_hand_out(c, 0)
    }

    /// Folds `c`, the contribution of slot `next`, under the lock when that is a move, and
    /// then whatever parked contributions follow it; hands the first real addition out.
    fn fold_or_hand_out(&mut self, c: Option<G>, folded: u32) -> Step<G> {
        self.next += 1;
        if self.acc.is_none() || c.is_none() {
            // A move, not an addition: cheap enough to do under the lock.
            self.acc = add(self.acc.take(), c);
            return self.take_ready(folded + 1);
        }
        self.busy = true;
        Step::Add {
            acc: self.acc.take(),
            c,
            folded,
        }
    }

    /// Takes the next foldable parked contribution, if any; `folded` were already folded by
    /// the calling thread.
    fn take_ready(&mut self, folded: u32) -> Step<G> {
        match self.parked.remove(&self.next) {
            Some(c) => self.fold_or_hand_out(c, folded),
            None => {
                self.busy = false;
                Step::Done { folded }
            }
        }
    }

    /// Puts back the sum a busy thread computed and looks for more work.
    fn resume(&mut self, acc: Option<G>, folded: u32) -> Step<G> {
        self.acc = acc;
        self.take_ready(folded)
    }
}

/// Deposits contribution `c` for `slot` into the fold that `at` picks out of what `lock`
/// guards; returns how many contributions this call folded (its own and others' parked ones)
/// and, if this call folded the last of `len` slots, the fold's final sum, taken out. Never
/// adds under the lock.
pub(super) fn fold_behind<X, G: Gradient>(
    lock: &Mutex<X>,
    at: impl Fn(&mut X) -> &mut Fold<G>,
    slot: u32,
    c: Option<G>,
    mode: Accumulation,
    len: u32,
) -> (u32, Option<Option<G>>) {
    let mut guard = lock.lock();
    let mut step = at(&mut guard).deposit(slot, c, mode);
    loop {
        match step {
            Step::Done { folded } => {
                // Only the thread that folds the last slot sees `next == len` with `folded > 0`:
                // a thread that parks leaves its own slot unfolded.
                let fold = at(&mut guard);
                let complete = folded > 0 && fold.next == len;
                return (folded, complete.then(|| fold.acc.take()));
            }
            Step::Add { acc, c, folded } => {
                // NOTE: the lock is released here; `busy` keeps other threads off `acc`.
                drop(guard);
                let acc = add(acc, c);
                guard = lock.lock();
                step = at(&mut guard).resume(acc, folded + 1);
            }
        }
    }
}

/// One stripe: the folds of nodes `s, s + S, s + 2S, …`, at index `i / S`.
type Stripe<G> = CachePadded<Mutex<Vec<Fold<G>>>>;

/// Per-node accumulation state: left folds behind a fixed array of cache-padded stripe locks,
/// and a summation tree for each node with more than [`BLOCK`] contributions (in
/// `Deterministic` mode).
pub struct StripedBuffers<G> {
    stripes: Box<[Stripe<G>]>,
    /// Per node, its summation tree if it has one; such a node's stripe entry stays unused.
    trees: Box<[Option<Box<FoldTree<G>>>]>,
    mode: Accumulation,
}

/// Number of stripes; small under loom so that models share stripes and stay tractable.
#[cfg(not(loom))]
pub const STRIPES: usize = 64;
/// Number of stripes; small under loom so that models share stripes and stay tractable.
#[cfg(loom)]
pub const STRIPES: usize = 2;

impl<G: Gradient> StripedBuffers<G> {
    /// Creates empty buffers for nodes `0..indegrees.len()`, node `i` awaiting `indegrees[i]`
    /// contributions (slots `0..indegrees[i]`).
    pub fn new(indegrees: &[u32], mode: Accumulation) -> Self {
        Self::build(indegrees, mode, |n| FoldTree::new(n))
    }

    /// [`new`](Self::new) with a deliberate flaw in every summation tree (the loom models'
    /// negative controls).
    #[cfg(loom)]
    pub fn with_flaw(indegrees: &[u32], mode: Accumulation, flaw: Flaw) -> Self {
        Self::build(indegrees, mode, |n| FoldTree::with_flaw(n, flaw))
    }

    fn build(indegrees: &[u32], mode: Accumulation, tree: impl Fn(u32) -> FoldTree<G>) -> Self {
        let nodes = indegrees.len();
        let stripes = STRIPES.min(nodes.max(1));
        let stripes = (0..stripes)
            .map(|s| {
                let count = (nodes + stripes - 1 - s) / stripes;
                CachePadded::new(Mutex::new((0..count).map(|_| Fold::default()).collect()))
            })
            .collect();
        let trees = indegrees
            .iter()
            .map(|&n| (mode == Accumulation::Deterministic && n > BLOCK).then(|| Box::new(tree(n))))
            .collect();
        Self {
            stripes,
            trees,
            mode,
        }
    }

    fn locate(&self, node: u32) -> (&Mutex<Vec<Fold<G>>>, usize) {
        let s = self.stripes.len();
        (&self.stripes[node as usize % s], node as usize / s)
    }

    /// Deposits contribution `c` for `slot` of `node`. Returns how many contributions this
    /// call delivered (folded, its own and others'; for a tree, the contributions of the block
    /// it completed), which the caller then subtracts from the node's in-degree counter. Never
    /// adds under a lock.
    pub fn deposit(&self, node: u32, slot: u32, c: Option<G>) -> u32 {
        if let Some(tree) = &self.trees[node as usize] {
            return tree.deposit(slot, c);
        }
        let (stripe, at) = self.locate(node);
        // `u32::MAX` slots: completion is the caller's counter's business.
        fold_behind(stripe, |folds| &mut folds[at], slot, c, self.mode, u32::MAX).0
    }

    /// Takes the final sum of `node` once its in-degree counter has reached zero.
    pub fn take(&self, node: u32) -> Option<G> {
        if let Some(tree) = &self.trees[node as usize] {
            return tree.take();
        }
        let (stripe, at) = self.locate(node);
        let mut guard = stripe.lock();
        let fold = &mut guard[at];
        debug_assert!(!fold.busy && fold.parked.is_empty(), "taken before final");
        fold.acc.take()
    }
}
