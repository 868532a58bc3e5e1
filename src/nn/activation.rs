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

/// GELU, `x·Φ(x)`, in the tanh approximation that GPT-2 and BERT use (PyTorch's
/// `nn.GELU(approximate="tanh")`): `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`.
///
/// ```
/// use backflow::nn::{Gelu, Module};
/// use backflow::Tensor;
/// let y = Gelu.forward(&Tensor::from_vec(vec![-10.0, 0.0, 10.0], &[3]).unwrap()).unwrap();
/// assert_eq!(y.to_vec(), vec![0.0, 0.0, 10.0]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gelu;

impl<T: Element> Module<T> for Gelu {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let c = T::from_f64((2.0 / std::f64::consts::PI).sqrt());
        let inner = x.try_add(&(x.powf(3.0) * T::from_f64(0.044715)))? * c;
        (x * T::from_f64(0.5)).try_mul(&(inner.tanh() + T::one()))
    }
}
