//! Neural-network building blocks: layers, a multi-branch block, losses, optimisers, and
//! safetensors weights.
//!
//! Parameters are [`Param`]s: shared cells holding a leaf tensor. The forward pass reads
//! them; an optimiser step sets their new values, keeping each leaf (and its hooks).
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
mod branches;
mod init;
mod linear;
mod loss;
mod module;
pub mod optim;
mod param;
mod sequential;
mod weights;

pub use activation::{Relu, Sigmoid, Tanh};
pub use branches::{Branches, Merge};
pub use init::{normal, uniform, Init};
pub use linear::{linear, Linear};
pub use loss::{accuracy, cross_entropy, mse};
pub use module::Module;
pub use optim::{Adam, AdamState, Optimizer, Sgd};
pub use param::Param;
pub use sequential::Sequential;
pub use weights::{from_safetensors, load_weights, save_weights, to_safetensors};
