//! The summation tree of a node with many contributions: a fixed shape, folded by many threads.
//!
//! A node with `n > BLOCK` contributions (in `Deterministic` mode) sums them as a tree whose
//! shape depends on `n` alone, never on arrival order or thread count:
//! - the leaves are blocks of [`BLOCK`] consecutive slots (the last one may be shorter), each
//!   a left fold in slot order;
//! - each level above adds the subtrees below it pairwise, `(s0 + s1), (s2 + s3), …`, and an
//!   odd last subtree passes up unchanged, until one sum is left.
//!
//! With `n <= BLOCK` the tree is one block: the plain left fold. [`canonical_sum`] computes
//! the same tree on one thread.
//!
//! Concurrently, each block is a [`Fold`] behind a lock of its own, folded by the threads that
//! deliver its slots (the combiner of `accumulate.rs`). The thread whose deposit completes a
//! block takes the block's sum and climbs. At each join of two subtrees it looks, under the
//! join's lock, for the sibling's sum: if it is there, it takes it, adds outside the lock (left
//! subtree first) and climbs on; if not, it leaves its own sum there for the sibling's thread
//! and stops. So the two halves of a join are added by whichever thread completes the second,
//! threads fold different blocks at once, and no lock is held while adding.
//!
//! A block's contributions are counted as delivered (against the node's in-degree counter)
//! all at once, by the thread that completed the block, after it has stopped climbing: so
//! when the counter reaches zero the root is stored and nobody holds a part of it, and the
//! counter, which every thread delivering into the node shares, takes one decrement per
//! block instead of one per contribution. Its Release still publishes every contribution of
//! the block: each was deposited under the block's lock before the completer took that lock.

use super::accumulate::{add, fold_behind, Accumulation, Fold, Gradient};
use crate::sync::{CachePadded, Mutex};

/// Contributions per leaf block of a summation tree, and the largest in-degree summed as one
/// left fold. Under loom it is small, so that a model of a few contributions has two blocks.
#[cfg(not(loom))]
pub const BLOCK: u32 = 32;
/// Contributions per leaf block of a summation tree, and the largest in-degree summed as one
/// left fold. Under loom it is small, so that a model of a few contributions has two blocks.
#[cfg(loom)]
pub const BLOCK: u32 = 3;

/// Deliberate flaws in the tree, for the loom models' negative controls (loom builds only).
#[cfg(loom)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flaw {
    /// The real tree.
    #[default]
    None,
    /// A join adds the subtree that completed first before the other (arrival order).
    JoinInCompletionOrder,
    /// A join looks for the sibling's sum and stores its own under two separate locks.
    JoinLookThenStore,
}

/// The concurrent summation tree of one node.
pub(super) struct FoldTree<G> {
    /// In-degree of the node: slots `0..n`.
    n: u32,
    /// Leaf `j` folds slots `j·BLOCK ..` in order; cache-padded, since different threads fold
    /// neighbouring blocks at once.
    blocks: Box<[CachePadded<Mutex<Fold<G>>>]>,
    /// One per subtree above the leaves, level by level (level 1 first): the sum of the child
    /// that completed first, waiting for the other child's thread. Only subtrees with two
    /// children use theirs.
    joins: Box<[Mutex<Option<Option<G>>>]>,
    /// Per level, from the leaves (level 0) to the root (width 1): its number of subtrees.
    widths: Box<[u32]>,
    /// Per level above the leaves, the index in `joins` of its first subtree (`starts[0]` is
    /// unused).
    starts: Box<[u32]>,
    /// The final sum, stored by the thread that completes the root.
    root: Mutex<Option<Option<G>>>,
    #[cfg(loom)]
    flaw: Flaw,
}

impl<G: Gradient> FoldTree<G> {
    /// An empty tree for a node with `n` contributions.
    pub(super) fn new(n: u32) -> Self {
        let leaves = n.div_ceil(BLOCK).max(1);
        let mut widths = vec![leaves];
        while let Some(&w) = widths.last().filter(|&&w| w > 1) {
            widths.push(w.div_ceil(2));
        }
        let mut starts = vec![0u32; widths.len()];
        for l in 1..widths.len() {
            starts[l] = if l == 1 {
                0
            } else {
                starts[l - 1] + widths[l - 1]
            };
        }
        let joins = widths[1..].iter().sum::<u32>();
        Self {
            n,
            blocks: (0..leaves)
                .map(|_| CachePadded::new(Mutex::new(Fold::default())))
                .collect(),
            joins: (0..joins).map(|_| Mutex::new(None)).collect(),
            widths: widths.into(),
            starts: starts.into(),
            root: Mutex::new(None),
            #[cfg(loom)]
            flaw: Flaw::None,
        }
    }

    /// The same tree with a deliberate flaw (loom's negative controls).
    #[cfg(loom)]
    pub(super) fn with_flaw(n: u32, flaw: Flaw) -> Self {
        Self {
            flaw,
            ..Self::new(n)
        }
    }

    /// Deposits contribution `c` for `slot`; returns how many contributions this call
    /// delivered: its block's, if it completed the block (counted after its climb), else 0.
    pub(super) fn deposit(&self, slot: u32, c: Option<G>) -> u32 {
        debug_assert!(
            slot < self.n,
            "slot {slot} of a node with {} contributions",
            self.n
        );
        let leaf = slot / BLOCK;
        let len = BLOCK.min(self.n - leaf * BLOCK);
        let block = &self.blocks[leaf as usize];
        let (_, sum) = fold_behind(
            block,
            |fold| fold,
            slot % BLOCK,
            c,
            Accumulation::Deterministic,
            len,
        );
        match sum {
            Some(sum) => {
                self.climb(leaf, sum);
                len
            }
            None => 0,
        }
    }

    /// Carries the sum of completed leaf `leaf` up the tree as far as the sibling subtrees are
    /// complete; stores it at the first join whose other half is still missing, or at the root.
    fn climb(&self, leaf: u32, mut sum: Option<G>) {
        let mut i = leaf;
        for level in 0..self.widths.len() - 1 {
            if (i ^ 1) < self.widths[level] {
                let join = &self.joins[(self.starts[level + 1] + i / 2) as usize];
                let Some((mine, other)) = self.meet(join, sum) else {
                    return;
                };
                sum = if self.goes_first(i) {
                    add(mine, other)
                } else {
                    add(other, mine)
                };
            }
            i /= 2;
        }
        *self.root.lock() = Some(sum);
    }

    /// At a join, under its lock: takes the sibling's sum if it waits there, returning
    /// `(sum, sibling's)`; else leaves `sum` there for the sibling's thread and returns `None`
    /// (this thread stops climbing).
    fn meet(
        &self,
        join: &Mutex<Option<Option<G>>>,
        sum: Option<G>,
    ) -> Option<(Option<G>, Option<G>)> {
        #[cfg(loom)]
        if self.flaw == Flaw::JoinLookThenStore {
            // Negative control: look, unlock, then store; two threads may miss each other.
            let waiting = join.lock().take();
            return match waiting {
                Some(other) => Some((sum, other)),
                None => {
                    *join.lock() = Some(sum);
                    None
                }
            };
        }
        let mut waiting = join.lock();
        match waiting.take() {
            Some(other) => Some((sum, other)),
            None => {
                *waiting = Some(sum);
                None
            }
        }
    }

    /// Whether the subtree at index `i` of its level comes first at its join: the left one.
    fn goes_first(&self, i: u32) -> bool {
        #[cfg(loom)]
        if self.flaw == Flaw::JoinInCompletionOrder {
            // Negative control: the subtree that completed first (the waiting one) goes first.
            return false;
        }
        i % 2 == 0
    }

    /// Takes the final sum once the node's counter has reached zero.
    pub(super) fn take(&self) -> Option<G> {
        let root = self.root.lock().take();
        debug_assert!(root.is_some(), "taken before final");
        root.flatten()
    }
}

/// The sum of `contributions`, given in slot order, in the canonical order every scheduler
/// sums a node's contributions in `Deterministic` mode: a left fold for up to [`BLOCK`] of
/// them, else the fixed tree described in this module (left folds of `BLOCK` consecutive
/// slots, added pairwise level by level). An absent contribution (`None`) adds nothing.
/// Users driving graph types of their own reach it as `backflow_stress::exec::canonical_sum`.
pub fn canonical_sum<G: Gradient>(contributions: Vec<Option<G>>) -> Option<G> {
    let mut level = Vec::with_capacity(contributions.len().div_ceil(BLOCK as usize));
    let mut it = contributions.into_iter().peekable();
    while it.peek().is_some() {
        level.push(it.by_ref().take(BLOCK as usize).fold(None, add));
    }
    while level.len() > 1 {
        let mut pairs = level.into_iter();
        let mut next = Vec::with_capacity(pairs.len().div_ceil(2));
        while let Some(left) = pairs.next() {
            next.push(match pairs.next() {
                Some(right) => add(left, right),
                None => left,
            });
        }
        level = next;
    }
    level.pop().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::exec::StripedBuffers;
    use crate::sync::{AtomicU32, Ordering};

    #[test]
    fn canonical_sum_is_a_left_fold_up_to_a_block_then_a_tree() {
        // Up to BLOCK contributions: the left fold, ((1 + 2) + 3).
        assert_eq!(
            canonical_sum(vec![Some(1.0f64), None, Some(2.0), Some(3.0)]),
            Some(6.0)
        );
        // More: a tree of left folds (exact here: small integers).
        let many: Vec<Option<f64>> = (0..3 * BLOCK + 2).map(|k| Some(f64::from(k))).collect();
        let n = f64::from(3 * BLOCK + 2);
        assert_eq!(canonical_sum(many), Some(n * (n - 1.0) / 2.0));
        assert_eq!(canonical_sum::<f64>(vec![None, None]), None);
    }

    /// A gradient that spells out its sum, so that a test sees the shape of the tree.
    #[derive(Clone, Debug, PartialEq)]
    struct Expr(String);

    impl Gradient for Expr {
        fn accumulate(self, later: Self) -> Self {
            Expr(format!("({}+{})", self.0, later.0))
        }
    }

    /// The left fold of `names`, spelled out.
    fn left_fold(names: &[String]) -> String {
        let mut it = names.iter();
        let first = it.next().expect("a name").clone();
        it.fold(first, |acc, n| format!("({acc}+{n})"))
    }

    fn names(range: std::ops::Range<u32>) -> Vec<String> {
        range.map(|k| format!("c{k}")).collect()
    }

    fn exprs(n: u32) -> Vec<Option<Expr>> {
        names(0..n).into_iter().map(|s| Some(Expr(s))).collect()
    }

    /// Contributions whose sum depends on the order and association of the additions: their
    /// magnitudes span 16 decades.
    fn values(n: u32) -> Vec<f64> {
        (0..n)
            .map(|k| (k as f64 * 0.37).sin() * 10f64.powi((k % 5) as i32 * 4))
            .collect()
    }

    /// Left folds of `BLOCK` consecutive slots, spelled out.
    fn leaves(n: u32) -> Vec<String> {
        (0..n.div_ceil(BLOCK))
            .map(|j| left_fold(&names(j * BLOCK..((j + 1) * BLOCK).min(n))))
            .collect()
    }

    #[test]
    fn up_to_a_block_the_canonical_sum_is_the_left_fold() {
        for n in [1, 2, BLOCK - 1, BLOCK] {
            let sum = canonical_sum(exprs(n)).expect("a sum");
            assert_eq!(sum.0, left_fold(&names(0..n)), "n = {n}");
        }
    }

    #[test]
    fn beyond_a_block_the_canonical_sum_is_a_fixed_tree_of_left_folds() {
        let l = leaves(BLOCK + 1);
        assert_eq!(
            canonical_sum(exprs(BLOCK + 1)).unwrap().0,
            format!("({}+{})", l[0], l[1])
        );
        // Four leaves, the last of two slots: a balanced tree.
        let l = leaves(3 * BLOCK + 2);
        assert_eq!(
            canonical_sum(exprs(3 * BLOCK + 2)).unwrap().0,
            format!("(({}+{})+({}+{}))", l[0], l[1], l[2], l[3])
        );
        // Five leaves: the odd last one passes up unchanged until the root.
        let l = leaves(4 * BLOCK + 1);
        assert_eq!(
            canonical_sum(exprs(4 * BLOCK + 1)).unwrap().0,
            format!("((({}+{})+({}+{}))+{})", l[0], l[1], l[2], l[3], l[4])
        );
    }

    #[test]
    fn absent_contributions_add_nothing() {
        let n = 2 * BLOCK + 1;
        // The whole first block absent, and one slot of the second.
        let c: Vec<Option<Expr>> = exprs(n)
            .into_iter()
            .enumerate()
            .map(|(k, c)| {
                (k as u32 >= BLOCK && k as u32 != BLOCK + 1)
                    .then_some(c)
                    .flatten()
            })
            .collect();
        let second: Vec<String> = names(BLOCK..2 * BLOCK)
            .into_iter()
            .filter(|s| *s != format!("c{}", BLOCK + 1))
            .collect();
        let want = format!("({}+c{})", left_fold(&second), 2 * BLOCK);
        assert_eq!(canonical_sum(c).unwrap().0, want);
        assert_eq!(canonical_sum::<Expr>(vec![None; n as usize]), None);
    }

    #[test]
    fn the_tree_differs_from_the_left_fold_in_floating_point() {
        // Otherwise the bitwise tests below could not tell the tree from the old left fold.
        let v = values(10_000);
        let tree = canonical_sum(v.iter().map(|&x| Some(x)).collect()).unwrap();
        let fold = v.iter().copied().reduce(|a, b| a + b).unwrap();
        assert_ne!(tree.to_bits(), fold.to_bits());
    }

    /// A deterministic shuffle of `0..n` (xorshift; the seed picks the permutation).
    fn shuffled(n: u32, seed: u64) -> Vec<u32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut v: Vec<u32> = (0..n).collect();
        for i in (1..v.len()).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            v.swap(i, (s % (i as u64 + 1)) as usize);
        }
        v
    }

    /// Deposits `contributions` into one node from `threads` threads, each delivering a
    /// shuffled share of the slots, with the executor's counter protocol; returns the sum
    /// taken by the thread whose decrement reached zero.
    fn concurrent_sum<G: Gradient + Clone + Sync>(
        contributions: &[Option<G>],
        threads: u32,
        seed: u64,
        mode: Accumulation,
    ) -> Option<G> {
        let n = contributions.len() as u32;
        let buffers = StripedBuffers::new(&[n], mode);
        let left = AtomicU32::new(n);
        let order = shuffled(n, seed);
        let released: Vec<Option<G>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (buffers, left, order) = (&buffers, &left, &order);
                    s.spawn(move || {
                        let mut released = Vec::new();
                        for &slot in order.iter().skip(t as usize).step_by(threads as usize) {
                            let c = contributions[slot as usize].clone();
                            let folded = buffers.deposit(0, slot, c);
                            // AcqRel: as in the executor's `deliver`.
                            if folded > 0 && left.fetch_sub(folded, Ordering::AcqRel) == folded {
                                released.push(buffers.take(0));
                            }
                        }
                        released
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(released.len(), 1, "released {} times", released.len());
        released.into_iter().next().unwrap()
    }

    #[test]
    fn concurrent_tree_sum_is_the_canonical_sum_bitwise() {
        for n in [1, 2, BLOCK, BLOCK + 1, 3 * BLOCK + 2, 1000, 10_000] {
            let c: Vec<Option<f64>> = values(n).into_iter().map(Some).collect();
            let want = canonical_sum(c.clone()).unwrap().to_bits();
            for threads in [1, 2, 3, 4, 8] {
                for seed in 0..3 {
                    let got = concurrent_sum(&c, threads, seed, Accumulation::Deterministic);
                    assert_eq!(got.unwrap().to_bits(), want, "n {n}, {threads} threads");
                }
            }
        }
    }

    #[test]
    fn concurrent_tree_has_the_canonical_shape() {
        for n in [BLOCK + 1, 3 * BLOCK + 2, 4 * BLOCK + 1] {
            let c = exprs(n);
            let want = canonical_sum(c.clone()).unwrap();
            for threads in [2, 3, 4] {
                for seed in 0..5 {
                    let got = concurrent_sum(&c, threads, seed, Accumulation::Deterministic);
                    assert_eq!(got.as_ref(), Some(&want), "n {n}, {threads} threads");
                }
            }
        }
    }

    #[test]
    fn concurrent_tree_skips_absent_contributions() {
        let n = 5 * BLOCK + 3;
        let c: Vec<Option<f64>> = values(n)
            .into_iter()
            .enumerate()
            .map(|(k, v)| {
                (k % 7 != 3 && !(2 * BLOCK..3 * BLOCK).contains(&(k as u32))).then_some(v)
            })
            .collect();
        let want = canonical_sum(c.clone()).unwrap().to_bits();
        for threads in [1, 2, 4] {
            let got = concurrent_sum(&c, threads, 1, Accumulation::Deterministic);
            assert_eq!(got.unwrap().to_bits(), want, "{threads} threads");
        }
        let none = vec![None::<f64>; n as usize];
        assert_eq!(
            concurrent_sum(&none, 3, 0, Accumulation::Deterministic),
            None
        );
    }

    #[test]
    fn fast_mode_sums_every_contribution_once() {
        // Fast mode keeps arrival order (no tree); integers make the sum exact in any order.
        let n = 3 * BLOCK + 2;
        let c: Vec<Option<f64>> = (0..n).map(|k| Some(k as f64)).collect();
        for threads in [1, 2, 4] {
            let got = concurrent_sum(&c, threads, 2, Accumulation::Fast);
            assert_eq!(got, Some((n * (n - 1) / 2) as f64), "{threads} threads");
        }
    }
}
