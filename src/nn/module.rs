//! The `Module` trait: a forward function plus the parameters it owns, by name.

use super::Param;
use crate::{Element, Result, Tensor};

/// A layer or model: maps an input batch to an output, and owns named parameters.
///
/// Names follow PyTorch's `state_dict`: a container prefixes its children's names with the
/// child's name and a dot (`branches.0.0.weight`).
///
/// Generic over the element type `T`, f32 unless named: `impl Module for MyModel` is a
/// module of f32 tensors.
///
/// A model of your own implements `forward` and `named_parameters` (naming its children's
/// parameters with [`prefixed`]); `parameters`, `zero_grad` and `num_parameters` come with
/// it, and optimisers and [`save_weights`](super::save_weights) take it like any layer:
///
/// ```
/// use backflow::nn::{prefixed, Adam, Linear, Module, Optimizer, Param};
/// use backflow::{Result, Tensor};
///
/// /// A two-layer perceptron: `tanh(x·W1ᵀ + b1)·W2ᵀ + b2`.
/// struct Mlp {
///     hidden: Linear,
///     out: Linear,
/// }
///
/// impl Module for Mlp {
///     fn forward(&self, x: &Tensor) -> Result<Tensor> {
///         self.out.forward(&self.hidden.forward(x)?.tanh())
///     }
///
///     fn named_parameters(&self) -> Vec<(String, Param)> {
///         let mut params = prefixed("hidden", self.hidden.named_parameters());
///         params.extend(prefixed("out", self.out.named_parameters()));
///         params
///     }
/// }
///
/// let mlp = Mlp { hidden: Linear::new(4, 8, 0), out: Linear::new(8, 2, 1) };
/// let names: Vec<String> = mlp.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]);
/// assert_eq!(mlp.num_parameters(), 4 * 8 + 8 + 8 * 2 + 2);
///
/// // One training step, as with any layer.
/// let mut opt = Adam::new(mlp.parameters(), 0.01);
/// let x = Tensor::randn(&[3, 4], 2);
/// let loss = mlp.forward(&x)?.powf(2.0).sum();
/// loss.backward()?;
/// let before = mlp.parameters()[0].get().to_vec();
/// opt.step()?;
/// assert_ne!(mlp.parameters()[0].get().to_vec(), before);
/// mlp.zero_grad();
/// assert!(mlp.parameters().iter().all(|p| p.grad().is_none()));
/// # Ok::<(), backflow::Error>(())
/// ```
pub trait Module<T: Element = f32>: Send + Sync {
    /// Applies the module to `x`.
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>>;

    /// The parameters with their dotted names, in a fixed order. None by default.
    fn named_parameters(&self) -> Vec<(String, Param<T>)> {
        Vec::new()
    }

    /// The parameters, in the order of [`named_parameters`](Self::named_parameters).
    fn parameters(&self) -> Vec<Param<T>> {
        self.named_parameters()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// Clears every parameter's gradient.
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }

    /// Total number of trainable values.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(Param::numel).sum()
    }

    /// State that is saved with the weights but not trained (PyTorch's buffers, such as
    /// [`BatchNorm2d`](super::BatchNorm2d)'s running statistics), with dotted names as
    /// [`named_parameters`](Self::named_parameters). Optimisers never see them. None by
    /// default; a container lists its children's.
    fn named_buffers(&self) -> Vec<(String, Param<T>)> {
        Vec::new()
    }

    /// Training mode (`true`, where every module starts) or evaluation mode (`false`), for
    /// the layers that behave differently in each ([`Dropout`](super::Dropout),
    /// [`BatchNorm2d`](super::BatchNorm2d)). A container passes it to every child; other
    /// modules ignore it by default.
    fn set_training(&self, training: bool) {
        let _ = training;
    }

    /// Training mode, as PyTorch's `module.train()`.
    ///
    /// ```
    /// use backflow::nn::{Dropout, Linear, Module, Sequential};
    /// use backflow::Tensor;
    /// let model = Sequential::new().push(Linear::new(4, 4, 0)).push(Dropout::new(0.5, 1));
    /// let x = Tensor::ones(&[2, 4]);
    /// model.eval(); // dropout off: the output is deterministic
    /// assert_eq!(model.forward(&x).unwrap().to_vec(), model.forward(&x).unwrap().to_vec());
    /// model.train(); // dropout on again
    /// assert!(model.forward(&x).unwrap().to_vec().iter().any(|&v| v == 0.0));
    /// ```
    fn train(&self) {
        self.set_training(true);
    }

    /// Evaluation mode, as PyTorch's `module.eval()`: see [`train`](Self::train).
    fn eval(&self) {
        self.set_training(false);
    }
}

impl<T: Element, M: Module<T> + ?Sized> Module<T> for Box<M> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        (**self).forward(x)
    }

    fn named_parameters(&self) -> Vec<(String, Param<T>)> {
        (**self).named_parameters()
    }

    fn named_buffers(&self) -> Vec<(String, Param<T>)> {
        (**self).named_buffers()
    }

    fn set_training(&self, training: bool) {
        (**self).set_training(training);
    }
}

/// Prefixes each of a child's parameter names with `prefix.`: how a module names its
/// children's parameters in [`Module::named_parameters`].
///
/// ```
/// use backflow::nn::{prefixed, Linear, Module};
/// let names: Vec<String> = prefixed("fc", Linear::new(2, 3, 0).named_parameters())
///     .into_iter()
///     .map(|(n, _)| n)
///     .collect();
/// assert_eq!(names, ["fc.weight", "fc.bias"]);
/// ```
pub fn prefixed<T: Element>(
    prefix: &str,
    params: Vec<(String, Param<T>)>,
) -> Vec<(String, Param<T>)> {
    params
        .into_iter()
        .map(|(name, p)| (format!("{prefix}.{name}"), p))
        .collect()
}
