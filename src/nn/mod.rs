//! Neural-network building blocks: layers, a multi-branch block, losses, optimisers, and
//! safetensors weights.
//!
//! Parameters are [`Param`]s: shared cells holding a leaf tensor. The forward pass reads
//! them; an optimiser step sets their new values, keeping each leaf (and its hooks).
//!
//! Everything is generic over the element type `T` (`f32` or `f64`), with `f32` as the
//! default type parameter, so `Linear`, `Module` and `Adam` written bare mean f32. The
//! constructors and losses under their plain names (`Linear::new`, `Sequential::new`,
//! `cross_entropy`) take or build f32, so code that never names a type stays f32; their
//! `_typed` forms take any element type (`Linear::<f64>::new_typed`,
//! `cross_entropy_typed`), and containers of another type start from `default()`.
//!
//! ```
//! use backflow::nn::{cross_entropy, Adam, Branches, Linear, Merge, Module, Optimizer, Sequential, Tanh};
//! use backflow::Tensor;
//! // Two branches on the same input, concatenated, then a classifier head.
//! let model = Sequential::new()
//!     .push_named("branches", Branches::from_fn(Merge::Concat, 2, |i| {
//!         Sequential::new().push(Linear::new(4, 8, i as u64)).push(Tanh)
//!     }))
//!     .push_named("head", Linear::new(16, 3, 99));
//! let mut opt = Adam::new(model.parameters(), 1e-2);
//! let x = Tensor::randn(&[5, 4], 7);
//! let loss = cross_entropy(&model.forward(&x).unwrap(), &[0, 1, 2, 0, 1]).unwrap();
//! loss.backward().unwrap();
//! opt.step().unwrap();
//! assert_eq!(model.named_parameters()[0].0, "branches.0.0.weight");
//! ```

mod activation;
mod attention;
mod batchnorm;
mod branches;
mod conv;
mod conv1d;
mod embedding;
mod init;
mod linear;
mod loss;
mod module;
mod moe;
mod norm;
pub mod optim;
mod param;
mod sequential;
mod weights;

pub use activation::{Dropout, Gelu, Relu, Sigmoid, Tanh};
pub use attention::MultiHeadAttention;
pub use batchnorm::BatchNorm2d;
pub use branches::{Branches, Merge};
pub use conv::{AvgPool2d, Conv2d, MaxPool2d};
pub use conv1d::Conv1d;
pub use embedding::Embedding;
pub use init::{normal, normal_typed, uniform, uniform_typed, Init};
pub use linear::{linear, Linear};
pub use loss::{accuracy, accuracy_typed, cross_entropy, cross_entropy_typed, mse, mse_typed};
pub use module::{prefixed, Module};
pub use moe::{MoE, Routed};
pub use norm::LayerNorm;
pub use optim::{
    clip_grad_norm, Adam, AdamState, AdamW, Constant, CosineLr, LrSchedule, LrScheduler, Optimizer,
    Sgd, StepLr, Warmup,
};
pub use param::Param;
pub use sequential::Sequential;
pub use weights::{from_safetensors, load_weights, save_weights, to_safetensors};
