//! Parameter-free elementwise activations, as modules for [`Sequential`](super::Sequential).

use super::module::Module;
use crate::{Element, Result, Tensor};

macro_rules! activation {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        impl<T: Element> Module<T> for $name {
            fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
                Ok(x.$method())
            }
        }
    };
}

activation!(
    /// `tanh(x)`, elementwise.
    Tanh,
    tanh
);
activation!(
    /// `max(x, 0)`, elementwise.
    Relu,
    relu
);
activation!(
    /// `1 / (1 + e^-x)`, elementwise.
    Sigmoid,
    sigmoid
);
