//! `BatchNorm2d` (Ioffe & Szegedy 2015): each channel of an NCHW batch normalised by the
//! batch's statistics in training, by running averages of them in evaluation.

use super::module::Module;
use super::Param;
use crate::{Element, Error, Result, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Batch normalisation over `[batch, channels, height, width]` inputs, as PyTorch's
/// `nn.BatchNorm2d(channels)`: `(x − mean) / √(var + ε) · weight + bias` per channel.
///
/// In training mode (where it starts) `mean` and `var` are the batch's, over the batch
/// and both spatial dimensions (`var` biased), and each forward pass updates the running
/// averages: `running ← (1 − momentum)·running + momentum·batch`, with the batch's
/// unbiased variance for `running_var`. In evaluation mode ([`Module::eval`]) the running
/// averages are used instead. `ε = 1e-5`, `momentum = 0.1`.
///
/// Parameters: `weight` (ones) and `bias` (zeros), `[channels]`. Buffers, saved with the
/// weights: `running_mean` (zeros) and `running_var` (ones), `[channels]`.
///
/// ```
/// use backflow::nn::{BatchNorm2d, Module};
/// use backflow::Tensor;
/// let bn = BatchNorm2d::new(2);
/// // Channel 0 holds 1, 2, 3, 4 and channel 1 holds 10 everywhere (batch 2, 1×2 images).
/// let x = Tensor::from_vec(vec![1.0, 2.0, 10.0, 10.0, 3.0, 4.0, 10.0, 10.0], &[2, 2, 1, 2]).unwrap();
/// let y = bn.forward(&x).unwrap();
/// let s = (1.25f32 + 1e-5).sqrt(); // channel 0: mean 2.5, biased variance 1.25
/// let want = [-1.5 / s, -0.5 / s, 0.0, 0.0, 0.5 / s, 1.5 / s, 0.0, 0.0];
/// assert!(y.to_vec().iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6));
/// // The running averages moved a tenth of the way, with the unbiased variance 5/3.
/// assert_eq!(bn.running_mean.get().to_vec(), vec![0.25, 1.0]);
/// assert!((bn.running_var.get().to_vec()[0] - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-6);
/// bn.eval(); // now normalised by the running averages
/// let y = bn.forward(&x).unwrap();
/// assert!((y.to_vec()[0] - (1.0 - 0.25) / (0.9f32 + 0.5 / 3.0 + 1e-5).sqrt()).abs() < 1e-6);
/// ```
#[derive(Debug)]
pub struct BatchNorm2d<T: Element = f32> {
    /// `[channels]`, initially ones.
    pub weight: Param<T>,
    /// `[channels]`, initially zeros.
    pub bias: Param<T>,
    /// `[channels]`, initially zeros: a buffer, never trained (its leaf is never used in
    /// a graph).
    pub running_mean: Param<T>,
    /// `[channels]`, initially ones: a buffer, as `running_mean`.
    pub running_var: Param<T>,
    eps: f64,
    momentum: f64,
    training: AtomicBool,
    /// Held while the running averages are read and replaced, so that concurrent forward
    /// passes lose no update.
    update: Mutex<()>,
}

impl BatchNorm2d {
    /// f32 batch normalisation of `channels` channels.
    pub fn new(channels: usize) -> Self {
        Self::new_typed(channels)
    }
}

impl<T: Element> BatchNorm2d<T> {
    /// [`BatchNorm2d::new`] for any element type.
    pub fn new_typed(channels: usize) -> Self {
        Self {
            weight: Param::from(Tensor::ones(&[channels])),
            bias: Param::from(Tensor::zeros(&[channels])),
            running_mean: Param::from(Tensor::zeros(&[channels])),
            running_var: Param::from(Tensor::ones(&[channels])),
            eps: 1e-5,
            momentum: 0.1,
            training: AtomicBool::new(true),
            update: Mutex::new(()),
        }
    }

    /// Sets `ε`, added to the variance.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets the running averages' momentum (the weight of each new batch).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Whether the layer is in training mode.
    pub fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    /// Folds one batch's per-channel mean and biased variance (over `n` values each) into
    /// the running averages.
    fn track(&self, mean: &[T], var: &[T], n: usize) -> Result<()> {
        let _guard = self.update.lock().unwrap_or_else(|e| e.into_inner());
        let m = self.momentum;
        let blend = |running: &Param<T>, batch: &[T], scale: f64| {
            let old = running.get().to_vec();
            let new = old
                .iter()
                .zip(batch)
                .map(|(&r, &b)| T::from_f64((1.0 - m) * r.to_f64() + m * b.to_f64() * scale))
                .collect();
            running.set_data(new)
        };
        blend(&self.running_mean, mean, 1.0)?;
        blend(&self.running_var, var, n as f64 / (n - 1) as f64)
    }
}

/// The per-channel mean of an NCHW tensor, as `[1, C, 1, 1]`.
fn channel_mean<T: Element>(x: &Tensor<T>) -> Result<Tensor<T>> {
    x.mean_dim(0, true)?.mean_dim(2, true)?.mean_dim(3, true)
}

impl<T: Element> Module<T> for BatchNorm2d<T> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let channels = self.weight.numel();
        let shape = x.shape().to_vec();
        if shape.len() != 4 || shape[1] != channels {
            return Err(Error::Invalid {
                op: "BatchNorm2d",
                message: format!(
                    "input of shape {shape:?}: needs [batch, {channels}, height, width]"
                ),
            });
        }
        let per_channel = [1, channels, 1, 1];
        let (centred, var) = if self.is_training() {
            let n = shape[0] * shape[2] * shape[3];
            if n < 2 {
                return Err(Error::Invalid {
                    op: "BatchNorm2d",
                    message: format!(
                        "input of shape {shape:?} has {n} value per channel; training needs \
                         more than 1"
                    ),
                });
            }
            let mean = channel_mean(x)?;
            let centred = x.try_sub(&mean)?;
            let var = channel_mean(&centred.try_mul(&centred)?)?;
            self.track(mean.data(), var.data(), n)?;
            (centred, var)
        } else {
            let mean = self.running_mean.get().detach().reshape(&per_channel)?;
            let var = self.running_var.get().detach().reshape(&per_channel)?;
            (x.try_sub(&mean)?, var)
        };
        let std = var.affine(T::one(), T::from_f64(self.eps)).sqrt();
        centred
            .try_div(&std)?
            .try_mul(&self.weight.get().reshape(&per_channel)?)?
            .try_add(&self.bias.get().reshape(&per_channel)?)
    }

    fn named_parameters(&self) -> Vec<(String, Param<T>)> {
        vec![
            ("weight".to_string(), self.weight.clone()),
            ("bias".to_string(), self.bias.clone()),
        ]
    }

    fn named_buffers(&self) -> Vec<(String, Param<T>)> {
        vec![
            ("running_mean".to_string(), self.running_mean.clone()),
            ("running_var".to_string(), self.running_var.clone()),
        ]
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }
}
