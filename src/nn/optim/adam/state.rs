//! Adam's state (per-parameter step counts and moment estimates), to checkpoint a run and
//! resume it exactly.

use super::Adam;
use crate::{Error, Result};

/// What an [`Adam`] has learnt besides the parameters: per parameter, the steps that
/// updated it and the moment estimates `m` and `v` (none before the first step).
///
/// ```
/// use backflow::nn::{Adam, Optimizer, Param};
/// use backflow::Tensor;
/// let (p, q) = (Param::new(Tensor::scalar(1.0)), Param::new(Tensor::scalar(2.0)));
/// let mut opt = Adam::new(vec![p.clone(), q.clone()], 0.1);
/// (&p.get() * &p.get()).backward().unwrap(); // q gets no gradient: its count stays 0
/// opt.step().unwrap();
/// let saved = opt.state();
/// assert_eq!((saved.steps.clone(), saved.moments.len()), (vec![1, 0], 2));
/// let mut resumed = Adam::new(vec![p.clone(), q.clone()], 0.1);
/// resumed.load_state(saved.clone()).unwrap();
/// assert_eq!(resumed.state(), saved);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdamState {
    /// Per parameter, in the optimiser's order: the steps that updated it (a step at which
    /// the parameter had no gradient does not count, as in PyTorch); empty before the
    /// first step.
    pub steps: Vec<u64>,
    /// Per parameter, in the optimiser's order: `(m, v)`, each of the parameter's length;
    /// empty before the first step.
    pub moments: Vec<(Vec<f32>, Vec<f32>)>,
}

impl Adam {
    /// A copy of the step counts and moment estimates.
    pub fn state(&self) -> AdamState {
        AdamState {
            steps: self.steps.clone(),
            moments: self
                .state
                .iter()
                .map(|[m, v]| (m.clone(), v.clone()))
                .collect(),
        }
    }

    /// Continues from `state` (from [`state`](Self::state) of an Adam over parameters of
    /// the same shapes). Errs, changing nothing, if the step counts or moments do not fit
    /// the parameters.
    pub fn load_state(&mut self, state: AdamState) -> Result<()> {
        let n = self.params.len();
        let empty = state.moments.is_empty() && state.steps.is_empty();
        let fits = empty
            || (state.moments.len() == n
                && state.steps.len() == n
                && state
                    .moments
                    .iter()
                    .zip(&self.params)
                    .all(|((m, v), p)| m.len() == p.numel() && v.len() == p.numel()));
        if !fits {
            return Err(Error::Invalid {
                op: "Adam::load_state",
                message: format!(
                    "moments for {} parameters and step counts for {} do not fit this \
                     optimiser's {n} parameters (of {:?} values)",
                    state.moments.len(),
                    state.steps.len(),
                    self.params.iter().map(|p| p.numel()).collect::<Vec<_>>()
                ),
            });
        }
        self.steps = state.steps;
        self.state = state.moments.into_iter().map(|(m, v)| [m, v]).collect();
        Ok(())
    }
}
