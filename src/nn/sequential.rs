//! `Sequential`: modules applied one after another.

use super::module::{prefixed, Module};
use super::Param;
use crate::{Element, Result, Tensor};

/// Modules applied in order, each to the previous one's output.
///
/// A child added with [`push`](Self::push) is named by its position (`0`, `1`, …), as in
/// PyTorch's `nn.Sequential`; [`push_named`](Self::push_named) gives it a name.
///
/// ```
/// use backflow::nn::{Linear, Module, Sequential, Tanh};
/// use backflow::Tensor;
/// let mlp = Sequential::new().push(Linear::new(4, 8, 0)).push(Tanh).push(Linear::new(8, 2, 1));
/// assert_eq!(mlp.forward(&Tensor::ones(&[3, 4])).unwrap().shape(), &[3, 2]);
/// let names: Vec<String> = mlp.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
/// ```
///
/// `Sequential::new()` holds f32 modules; `Sequential::<f64>::default()` f64 ones.
pub struct Sequential<T: Element = f32> {
    children: Vec<(String, Box<dyn Module<T>>)>,
}

impl<T: Element> Default for Sequential<T> {
    fn default() -> Self {
        Self {
            children: Vec::new(),
        }
    }
}

impl Sequential {
    /// An empty sequence of f32 modules: the identity.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<T: Element> Sequential<T> {
    /// Appends `module`, named by its position.
    pub fn push(self, module: impl Module<T> + 'static) -> Self {
        let name = self.children.len().to_string();
        self.push_named(name, module)
    }

    /// Appends `module` under `name`.
    pub fn push_named(mut self, name: impl Into<String>, module: impl Module<T> + 'static) -> Self {
        self.children.push((name.into(), Box::new(module)));
        self
    }

    /// Number of children.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Whether there are no children.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }
}

impl<T: Element> Module<T> for Sequential<T> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let mut h = x.clone();
        for (_, m) in &self.children {
            h = m.forward(&h)?;
        }
        Ok(h)
    }

    fn named_parameters(&self) -> Vec<(String, Param<T>)> {
        self.children
            .iter()
            .flat_map(|(name, m)| prefixed(name, m.named_parameters()))
            .collect()
    }

    fn named_buffers(&self) -> Vec<(String, Param<T>)> {
        self.children
            .iter()
            .flat_map(|(name, m)| prefixed(name, m.named_buffers()))
            .collect()
    }

    fn set_training(&self, training: bool) {
        for (_, m) in &self.children {
            m.set_training(training);
        }
    }
}
