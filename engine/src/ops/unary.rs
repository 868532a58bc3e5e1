//! Elementwise functions: the forward and the fused backward come from the kernels'
//! table; under `create_graph` the derivative is rebuilt from differentiable ops.

use crate::error::Result;
use crate::sync::Arc;
use crate::Tensor;
use backflow_kernels::{unary_backward, unary_backward_in_place, unary_forward, Element, Unary};

impl<T: Element> Tensor<T> {
    #[track_caller]
    fn unary(&self, op: Unary) -> Tensor<T> {
        let y = Arc::new(unary_forward(op, self.data()));
        // The closure keeps the output's data, not the output (which owns the closure).
        let saved_y = Arc::clone(&y);
        let x = self.clone();
        Tensor::record_owned(
            op.name(),
            y,
            self.shape().to_vec(),
            &[self],
            move |mut gy, ctx, out| {
                let g = if ctx.create_graph {
                    recorded_derivative(op, &x, &gy)?
                } else if let Some(g) = gy.unique_data_mut() {
                    // The gradient's buffer is ours alone: write the result over it.
                    unary_backward_in_place(op, x.data(), &saved_y, g);
                    gy
                } else {
                    Tensor::raw(
                        unary_backward(op, x.data(), &saved_y, gy.data()),
                        x.shape().to_vec(),
                    )
                };
                out.push(Some(g));
                Ok(())
            },
        )
    }

    #[track_caller]
    pub(crate) fn neg_op(&self) -> Tensor<T> {
        self.unary(Unary::Neg)
    }

    /// Elementwise sine.
    #[track_caller]
    pub fn sin(&self) -> Tensor<T> {
        self.unary(Unary::Sin)
    }

    /// Elementwise cosine.
    #[track_caller]
    pub fn cos(&self) -> Tensor<T> {
        self.unary(Unary::Cos)
    }

    /// Elementwise `e^x`.
    #[track_caller]
    pub fn exp(&self) -> Tensor<T> {
        self.unary(Unary::Exp)
    }

    /// Elementwise natural logarithm.
    #[track_caller]
    pub fn ln(&self) -> Tensor<T> {
        self.unary(Unary::Ln)
    }

    /// Elementwise hyperbolic tangent.
    #[track_caller]
    pub fn tanh(&self) -> Tensor<T> {
        self.unary(Unary::Tanh)
    }

    /// Elementwise `max(x, 0)`; its derivative at 0 is taken as 0.
    #[track_caller]
    pub fn relu(&self) -> Tensor<T> {
        self.unary(Unary::Relu)
    }

    /// Elementwise logistic function `1 / (1 + e^-x)`.
    #[track_caller]
    pub fn sigmoid(&self) -> Tensor<T> {
        self.unary(Unary::Sigmoid)
    }

    /// Elementwise square root.
    #[track_caller]
    pub fn sqrt(&self) -> Tensor<T> {
        self.unary(Unary::Sqrt)
    }

    /// Elementwise `x^p`.
    #[track_caller]
    pub fn powf(&self, p: f64) -> Tensor<T> {
        self.unary(Unary::Powf(p))
    }

    /// Elementwise absolute value `|x|`. Its gradient is `sign(x)`, taken as 0 at `x = 0`
    /// as in PyTorch.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![-2.0, 0.0, 3.0], &[3]).unwrap().requires_grad();
    /// let y = x.abs();
    /// assert_eq!(y.to_vec(), vec![2.0, 0.0, 3.0]);
    /// y.sum().backward().unwrap();
    /// assert_eq!(x.grad().unwrap().to_vec(), vec![-1.0, 0.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn abs(&self) -> Tensor<T> {
        self.unary(Unary::Abs)
    }

    /// Elementwise error function `erf x = 2/√π ∫₀ˣ e^(-t²) dt` (within 1 ulp). Its
    /// derivative is `2/√π · e^(-x²)`.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f64>::from_vec(vec![0.0, 1.0], &[2]).unwrap();
    /// let y = x.erf().to_vec();
    /// assert!(y[0] == 0.0 && (y[1] - 0.842_700_792_949_715).abs() < 1e-15);
    /// ```
    #[track_caller]
    pub fn erf(&self) -> Tensor<T> {
        self.unary(Unary::Erf)
    }
}

/// `gy · f'(x)` written with recorded ops, so that it can be differentiated again.
fn recorded_derivative<T: Element>(op: Unary, x: &Tensor<T>, gy: &Tensor<T>) -> Result<Tensor<T>> {
    let one = T::one();
    Ok(match op {
        Unary::Neg => -gy,
        Unary::Sin => gy * &x.cos(),
        Unary::Cos => -&(gy * &x.sin()),
        Unary::Exp => gy * &x.exp(),
        Unary::Ln => gy / x,
        Unary::Tanh => {
            let t = x.tanh();
            gy * &(-&(&t * &t) + one)
        }
        Unary::Relu => {
            let mask = x
                .data()
                .iter()
                .map(|&v| if v > T::zero() { one } else { T::zero() })
                .collect();
            gy * &Tensor::raw(mask, x.shape().to_vec())
        }
        Unary::Sigmoid => {
            let s = x.sigmoid();
            gy * &(&s * &(-&s + one))
        }
        Unary::Sqrt => gy * &(x.sqrt().powf(-1.0) * T::from_f64(0.5)),
        // x^0 = 1 is constant: 0 everywhere, not 0·x^-1 (NaN at 0).
        Unary::Powf(0.0) => gy * T::zero(),
        Unary::Powf(p) => gy * &(x.powf(p - 1.0) * T::from_f64(p)),
        Unary::Abs => {
            // sign(x) is constant almost everywhere: a mask, as for relu
            let sign = x
                .data()
                .iter()
                .map(|&v| {
                    if v > T::zero() {
                        one
                    } else if v < T::zero() {
                        -one
                    } else {
                        v * T::zero()
                    }
                })
                .collect();
            gy * &Tensor::raw(sign, x.shape().to_vec())
        }
        Unary::Erf => {
            let c = T::from_f64(std::f64::consts::FRAC_2_SQRT_PI);
            gy * &((&(x * x) * -one).exp() * c)
        }
    })
}
