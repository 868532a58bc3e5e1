//! Optimisers: they read each parameter's gradient, compute its new values on raw data
//! (nothing is recorded), and set them into the [`super::Param`], whose leaf keeps its
//! hooks across steps. Also here: [`clip_grad_norm`] and learning-rate schedules
//! ([`LrScheduler`]).

mod adam;
mod adamw;
mod clip;
mod schedule;
mod sgd;

pub use adam::{Adam, AdamState};
pub use adamw::AdamW;
pub use clip::clip_grad_norm;
pub use schedule::{Constant, CosineLr, LrSchedule, LrScheduler, StepLr, Warmup};
pub use sgd::Sgd;

use super::Param;
use crate::{Element, Result};

/// Updates parameters from their gradients.
///
/// Generic over the parameters' element type, f32 unless named.
pub trait Optimizer<T: Element = f32> {
    /// Applies one update to every parameter that has a gradient. Each updated parameter's
    /// gradient is cleared, so it starts empty for the next pass; its hooks stay.
    fn step(&mut self) -> Result<()>;

    /// The parameters being optimised.
    fn params(&self) -> &[Param<T>];

    /// The learning rate the next [`step`](Self::step) uses.
    fn lr(&self) -> T;

    /// Sets the learning rate for the following steps (what an [`LrScheduler`] does).
    fn set_lr(&mut self, lr: T);

    /// Clears every parameter's gradient (needed only when a pass is not followed by a
    /// step, since a step starts each parameter afresh).
    fn zero_grad(&self) {
        for p in self.params() {
            p.zero_grad();
        }
    }
}

/// Runs `update(index, values, grad, slot)` for each parameter with a gradient and stores
/// the result; `slot` is per-parameter optimiser state, created zeroed on first use.
pub(crate) fn update_each<T: Element, const S: usize>(
    params: &[Param<T>],
    state: &mut Vec<[Vec<T>; S]>,
    mut update: impl FnMut(usize, &mut [T], &[T], &mut [Vec<T>; S]),
) -> Result<()> {
    if state.len() != params.len() {
        *state = params
            .iter()
            .map(|p| std::array::from_fn(|_| vec![T::zero(); p.numel()]))
            .collect();
    }
    for (i, (p, slot)) in params.iter().zip(state.iter_mut()).enumerate() {
        let current = p.get();
        let Some(grad) = current.grad() else { continue };
        let mut values = current.to_vec();
        update(i, &mut values, grad.data(), slot);
        p.set_data(values)?;
    }
    Ok(())
}
