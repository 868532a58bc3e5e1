//! Adam's state (step count and moment estimates), to checkpoint a run and resume it
//! exactly.

use super::Adam;
use crate::{Error, Result};

/// What an [`Adam`] has learnt besides the parameters: the steps taken and, per parameter,
/// the moment estimates `m` and `v` (none before the first step).
///
/// ```
/// use backflow::nn::{Adam, Optimizer, Param};
/// use backflow::Tensor;
/// let p = Param::new(Tensor::scalar(1.0));
/// let mut opt = Adam::new(vec![p.clone()], 0.1);
/// (&p.get() * &p.get()).backward().unwrap();
/// opt.step().unwrap();
/// let saved = opt.state();
/// assert_eq!((saved.steps, saved.moments.len()), (1, 1));
/// let mut resumed = Adam::new(vec![p.clone()], 0.1);
/// resumed.load_state(saved.clone()).unwrap();
/// assert_eq!(resumed.state(), saved);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdamState {
    /// Steps taken.
    pub steps: u32,
    /// Per parameter, in the optimiser's order: `(m, v)`, each of the parameter's length;
    /// empty before the first step.
    pub moments: Vec<(Vec<f32>, Vec<f32>)>,
}

impl Adam {
    /// A copy of the step count and moment estimates.
    pub fn state(&self) -> AdamState {
        AdamState {
            steps: self.t.max(0) as u32,
            moments: self
                .state
                .iter()
                .map(|[m, v]| (m.clone(), v.clone()))
                .collect(),
        }
    }

    /// Continues from `state` (from [`state`](Self::state) of an Adam over parameters of
    /// the same shapes). Errs, changing nothing, if the moments do not fit the parameters.
    pub fn load_state(&mut self, state: AdamState) -> Result<()> {
        let fits = state.moments.is_empty()
            || (state.moments.len() == self.params.len()
                && state
                    .moments
                    .iter()
                    .zip(&self.params)
                    .all(|((m, v), p)| m.len() == p.numel() && v.len() == p.numel()));
        if !fits || state.steps > i32::MAX as u32 {
            return Err(Error::Invalid {
                op: "Adam::load_state",
                message: format!(
                    "moments for {} parameters ({} steps) do not fit this optimiser's {} \
                     parameters",
                    state.moments.len(),
                    state.steps,
                    self.params.len()
                ),
            });
        }
        self.t = state.steps as i32;
        self.state = state.moments.into_iter().map(|(m, v)| [m, v]).collect();
        Ok(())
    }
}
