//! GELU with the tanh approximation: a fused kernel forward and backward, and under
//! `create_graph` the derivative written with differentiable ops.

use crate::Tensor;
use backflow_kernels::{gelu, gelu_backward, Element, GELU_CUBIC, GELU_SQRT_2_OVER_PI};

impl<T: Element> Tensor<T> {
    /// Elementwise GELU with the tanh approximation (PyTorch's `gelu(x, approximate='tanh')`):
    /// `½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f64>::from_vec(vec![-1.0, 0.0, 1.0], &[3]).unwrap();
    /// let y = x.gelu().to_vec();
    /// assert!((y[2] - 0.841192).abs() < 1e-6 && y[1] == 0.0);
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
                // With t = tanh(u): d/dx = ½(1 + t) + ½ x (1 - t²) √(2/π) (1 + 3·0.044715 x²)
                let g = if ctx.create_graph {
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
                    Tensor::raw(gelu_backward(x.data(), gy.data()), x.shape().to_vec())
                };
                Ok(vec![Some(g)])
            },
        )
    }
}
