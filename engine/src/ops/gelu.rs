//! GELU, exact and in the tanh approximation: a fused kernel forward and backward each, and
//! under `create_graph` the derivative written with differentiable ops.

use crate::Tensor;
use backflow_kernels::{
    gelu, gelu_backward, gelu_tanh, gelu_tanh_backward, Element, GELU_CUBIC, GELU_INV_SQRT_2PI,
    GELU_SQRT_2_OVER_PI, GELU_TANH_SATURATED,
};

impl<T: Element> Tensor<T> {
    /// Elementwise exact GELU, `x·Φ(x) = ½ x (1 + erf(x/√2))`, as PyTorch's default
    /// `torch.nn.functional.gelu(x)`. Its derivative is `Φ(x) + x·φ(x)`; under
    /// `create_graph` it is differentiable again. For the tanh approximation see
    /// [`gelu_tanh`](Self::gelu_tanh).
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f64>::from_vec(vec![-1.0, 0.0, 1.0], &[3]).unwrap().requires_grad();
    /// let y = x.gelu();
    /// assert!((y.to_vec()[2] - 0.841_344_746_068_543).abs() < 1e-12);
    /// y.sum().backward().unwrap();
    /// assert!((x.grad().unwrap().to_vec()[2] - 1.083_315_470_587_686).abs() < 1e-12);
    /// ```
    #[track_caller]
    pub fn gelu(&self) -> Tensor<T> {
        let x = self.clone();
        Tensor::from_op(
            "gelu",
            gelu(self.data()),
            self.shape().to_vec(),
            &[self],
            move |gy, ctx| {
                // d/dx x·Φ(x) = ½(1 + erf(x/√2)) + x·e^(-x²/2)/√(2π)
                let g = if ctx.create_graph {
                    let half = T::from_f64(0.5);
                    let cdf = ((&x * T::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erf()
                        + T::one())
                        * half;
                    let pdf = (&(&x * &x) * -half).exp() * T::from_f64(GELU_INV_SQRT_2PI);
                    gy * &(&cdf + &(&x * &pdf))
                } else {
                    Tensor::raw(gelu_backward(x.data(), gy.data()), x.shape().to_vec())
                };
                Ok(vec![Some(g)])
            },
        )
    }

    /// Elementwise GELU with the tanh approximation (PyTorch's `gelu(x, approximate='tanh')`,
    /// as GPT-2 and BERT use): `½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))`. It differs from
    /// the exact [`gelu`](Self::gelu) by less than 5e-4.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f64>::from_vec(vec![-1.0, 0.0, 1.0], &[3]).unwrap();
    /// let y = x.gelu_tanh().to_vec();
    /// assert!((y[2] - 0.841192).abs() < 1e-6 && y[1] == 0.0);
    /// ```
    #[track_caller]
    pub fn gelu_tanh(&self) -> Tensor<T> {
        let x = self.clone();
        Tensor::from_op(
            "gelu_tanh",
            gelu_tanh(self.data()),
            self.shape().to_vec(),
            &[self],
            move |gy, ctx| {
                // With t = tanh(u): d/dx = ½(1 + t) + ½ x (1 - t²) √(2/π) (1 + 3·0.044715 x²)
                let g = if ctx.create_graph {
                    // Past ±GELU_TANH_SATURATED the derivative is constant (1 or 0): taken
                    // at the bound, as the kernel does, x² stays finite and the second
                    // derivative there is 0.
                    let bound = T::from_f64(GELU_TANH_SATURATED);
                    let x = x.clamp(Some(-bound), Some(bound))?;
                    let (c, a) = (T::from_f64(GELU_SQRT_2_OVER_PI), T::from_f64(GELU_CUBIC));
                    let half = T::from_f64(0.5);
                    let x2 = &x * &x;
                    let t = (&x + &(&(&x2 * &x) * a)) * c;
                    let t = t.tanh();
                    let outer = (&t + T::one()) * half;
                    let slope =
                        &(-&(&t * &t) + T::one()) * &(&(&x2 * (T::from_f64(3.0) * a)) + T::one());
                    let d = &outer + &(&(&x * &slope) * (c * half));
                    gy * &d
                } else {
                    Tensor::raw(gelu_tanh_backward(x.data(), gy.data()), x.shape().to_vec())
                };
                Ok(vec![Some(g)])
            },
        )
    }
}
