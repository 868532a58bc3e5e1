//! `Branches`: a multi-branch block (Inception, mixture-of-experts shapes).
//!
//! Every branch reads the same input, so the backward pass sees independent subgraphs that
//! meet only at the merge and at the input: the shape the parallel executor runs
//! concurrently. The forward runs the branches concurrently too, on the executor's threads
//! ([`parallel_map`](crate::parallel_map); [`with_threads`](crate::with_threads) bounds them).

use super::module::{prefixed, Module};
use super::Param;
use crate::{parallel_map, Element, Error, Result, Tensor};

/// How a [`Branches`] block combines its branches' outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Merge {
    /// Concatenated along the last axis.
    #[default]
    Concat,
    /// Concatenated along the given axis (1: the channels of NCHW images, as Inception
    /// joins its branches).
    ConcatAxis(usize),
    /// Summed elementwise; every branch must give the same shape (mixture of experts).
    Sum,
}

/// Branches applied to the same input, their outputs merged by [`Merge`].
/// Branch `i`'s parameters are named `i.<name>`.
///
/// ```
/// use backflow::nn::{Branches, Linear, Merge, Module};
/// use backflow::Tensor;
/// let block = Branches::new(Merge::Concat).push(Linear::new(4, 3, 0)).push(Linear::new(4, 5, 1));
/// assert_eq!(block.forward(&Tensor::ones(&[2, 4])).unwrap().shape(), &[2, 8]);
/// ```
pub struct Branches<T: Element = f32> {
    merge: Merge,
    branches: Vec<Box<dyn Module<T>>>,
}

impl Branches {
    /// A block of f32 branches, with no branches yet.
    pub fn new(merge: Merge) -> Self {
        Self::new_typed(merge)
    }
}

impl<T: Element> Branches<T> {
    /// [`Branches::new`] for any element type.
    pub fn new_typed(merge: Merge) -> Self {
        Self {
            merge,
            branches: Vec::new(),
        }
    }

    /// `n` branches made by `make(i)`.
    pub fn from_fn<M: Module<T> + 'static>(
        merge: Merge,
        n: usize,
        make: impl FnMut(usize) -> M,
    ) -> Self {
        (0..n).map(make).fold(Self::new_typed(merge), Self::push)
    }

    /// Appends a branch.
    pub fn push(mut self, branch: impl Module<T> + 'static) -> Self {
        self.branches.push(Box::new(branch));
        self
    }

    /// Number of branches.
    pub fn len(&self) -> usize {
        self.branches.len()
    }

    /// Whether there are no branches.
    pub fn is_empty(&self) -> bool {
        self.branches.is_empty()
    }
}

impl<T: Element> Module<T> for Branches<T> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        if self.branches.is_empty() {
            return Err(Error::Invalid {
                op: "Branches",
                message: "a block needs at least one branch".into(),
            });
        }
        let outs = par_map(&self.branches, |b| b.forward(x))?;
        match self.merge {
            Merge::Concat => {
                let axis = outs[0].rank().saturating_sub(1);
                Tensor::concat(&outs.iter().collect::<Vec<_>>(), axis)
            }
            Merge::ConcatAxis(axis) => Tensor::concat(&outs.iter().collect::<Vec<_>>(), axis),
            Merge::Sum => outs[1..]
                .iter()
                .try_fold(outs[0].clone(), |acc, o| acc.try_add(o)),
        }
    }

    fn named_parameters(&self) -> Vec<(String, Param<T>)> {
        self.branches
            .iter()
            .enumerate()
            .flat_map(|(i, b)| prefixed(&i.to_string(), b.named_parameters()))
            .collect()
    }

    fn named_buffers(&self) -> Vec<(String, Param<T>)> {
        self.branches
            .iter()
            .enumerate()
            .flat_map(|(i, b)| prefixed(&i.to_string(), b.named_buffers()))
            .collect()
    }

    fn set_training(&self, training: bool) {
        for b in &self.branches {
            b.set_training(training);
        }
    }
}

/// `f` applied to each item concurrently on the executor's threads, results in order; the
/// first error (by item) wins. Branch-parallel modules (this block, attention heads,
/// experts) run their forward passes through it.
pub(crate) fn par_map<I: Sync, R: Send>(
    items: &[I],
    f: impl Fn(&I) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    parallel_map(items, f).into_iter().collect()
}
