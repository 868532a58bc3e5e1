//! Seeded weight initialisation schemes (He et al. 2015; Glorot & Bengio 2010).

use crate::{Element, Tensor};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// How to draw a layer's initial weights from its fan-in and fan-out.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Init {
    /// `U(-b, b)` with `b = 1/√fan_in`: PyTorch's `nn.Linear` default (Kaiming uniform
    /// with `a = √5`). Works well with tanh.
    #[default]
    TorchDefault,
    /// Kaiming (He) uniform for ReLU: `U(-b, b)` with `b = √(6/fan_in)`.
    KaimingUniform,
    /// Kaiming (He) normal for ReLU: `N(0, 2/fan_in)`.
    KaimingNormal,
    /// Xavier (Glorot) uniform: `U(-b, b)` with `b = √(6/(fan_in + fan_out))`.
    XavierUniform,
    /// Xavier (Glorot) normal: `N(0, 2/(fan_in + fan_out))`.
    XavierNormal,
}

impl Init {
    /// A `shape` tensor (f32) drawn for a layer with the given fans, reproducibly from
    /// `seed`.
    pub fn sample(self, shape: &[usize], fan_in: usize, fan_out: usize, seed: u64) -> Tensor {
        self.sample_typed(shape, fan_in, fan_out, seed)
    }

    /// [`sample`](Self::sample) for any element type. Each draw is rounded to f32 first,
    /// so an f32 and an f64 layer from the same seed start from the same values.
    ///
    /// ```
    /// use backflow::nn::Init;
    /// let w = Init::KaimingUniform.sample_typed::<f64>(&[4, 3], 3, 4, 0);
    /// assert!(w.data().iter().all(|v| v.abs() <= 2f64.sqrt()));
    /// ```
    pub fn sample_typed<T: Element>(
        self,
        shape: &[usize],
        fan_in: usize,
        fan_out: usize,
        seed: u64,
    ) -> Tensor<T> {
        let (fi, fo) = (fan_in.max(1) as f64, fan_out.max(1) as f64);
        match self {
            Init::TorchDefault => uniform_typed(shape, 1.0 / fi.sqrt(), seed),
            Init::KaimingUniform => uniform_typed(shape, (6.0 / fi).sqrt(), seed),
            Init::XavierUniform => uniform_typed(shape, (6.0 / (fi + fo)).sqrt(), seed),
            Init::KaimingNormal => normal_typed(shape, (2.0 / fi).sqrt(), seed),
            Init::XavierNormal => normal_typed(shape, (2.0 / (fi + fo)).sqrt(), seed),
        }
    }
}

/// Samples (f32) of `U(-bound, bound)` from a generator seeded with `seed`.
pub fn uniform(shape: &[usize], bound: f64, seed: u64) -> Tensor {
    uniform_typed(shape, bound, seed)
}

/// [`uniform`] for any element type.
pub fn uniform_typed<T: Element>(shape: &[usize], bound: f64, seed: u64) -> Tensor<T> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    let data = (0..n)
        .map(|_| T::from_f64(f64::from(rng.random_range(-bound..=bound) as f32)))
        .collect();
    Tensor::from_vec(data, shape).expect("data fills the shape")
}

/// Samples (f32) of `N(0, std²)` from a generator seeded with `seed`.
pub fn normal(shape: &[usize], std: f64, seed: u64) -> Tensor {
    normal_typed(shape, std, seed)
}

/// [`normal`] for any element type.
pub fn normal_typed<T: Element>(shape: &[usize], std: f64, seed: u64) -> Tensor<T> {
    let data = Tensor::<f32>::randn(shape, seed)
        .data()
        .iter()
        .map(|&v| T::from_f64(f64::from(v * std as f32)))
        .collect();
    Tensor::from_vec(data, shape).expect("data fills the shape")
}
