//! `gradcheck`: a function's analytic gradients, from a backward pass, against central
//! finite differences, in `f64`.

use super::{grad_mode, BackwardOptions, Tensor};
use crate::error::{Error, Result};
use backflow_kernels::numeric_gradient;

/// Tolerances and step of [`gradcheck`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradcheckTolerance {
    /// Finite-difference step.
    pub step: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Tolerance relative to the numeric gradient's magnitude.
    pub rtol: f64,
}

impl Default for GradcheckTolerance {
    /// Step `1e-6`, `atol = 1e-5`, `rtol = 1e-4`: loose enough for the O(h²) error and
    /// rounding of smooth functions of O(1) values, tight enough to catch a wrong formula.
    fn default() -> Self {
        Self {
            step: 1e-6,
            atol: 1e-5,
            rtol: 1e-4,
        }
    }
}

/// Checks the gradient of the one-element function `f` at `inputs`: the gradient that a
/// backward pass with `opts` puts into each input against central finite differences of
/// `f` (computed under [`no_grad`](crate::no_grad)). `f` is called on fresh leaves that
/// require grad; it must reduce to one element (for example with `.sum()`, or a weighted
/// sum to check a vector-Jacobian product).
///
/// Returns the analytic gradients, or an [`Error::Invalid`] (op `gradcheck`) naming the
/// first input and element that disagree, with both values.
///
/// ```
/// use backflow::{gradcheck, BackwardOptions, GradcheckTolerance, Tensor};
/// let x = Tensor::<f64>::from_vec(vec![0.5, -1.0, 2.0], &[3]).unwrap();
/// let grads = gradcheck(
///     |v| Ok((&v[0].sin() * &v[0]).sum()),
///     &[&x],
///     &BackwardOptions::new(),
///     GradcheckTolerance::default(),
/// )
/// .unwrap();
/// assert_eq!(grads[0].len(), 3);
/// ```
pub fn gradcheck(
    f: impl Fn(&[Tensor<f64>]) -> Result<Tensor<f64>>,
    inputs: &[&Tensor<f64>],
    opts: &BackwardOptions,
    tol: GradcheckTolerance,
) -> Result<Vec<Vec<f64>>> {
    let leaves: Vec<Tensor<f64>> = inputs.iter().map(|t| t.detach().requires_grad()).collect();
    let out = f(&leaves)?;
    if out.numel() != 1 {
        return Err(not_one_element(out.shape()));
    }
    out.backward_with(opts)?;
    let analytic: Vec<Vec<f64>> = leaves
        .iter()
        .map(|l| {
            l.grad()
                .map_or_else(|| vec![0.0; l.numel()], |g| g.to_vec())
        })
        .collect();
    let numeric = numeric_grads(&f, inputs, tol.step)?;
    for (i, (a, n)) in analytic.iter().zip(&numeric).enumerate() {
        for (j, (&a, &n)) in a.iter().zip(n).enumerate() {
            // A NaN on either side counts as a disagreement.
            let within = (a - n).abs() <= tol.atol + tol.rtol * n.abs();
            if !within {
                return Err(Error::Invalid {
                    op: "gradcheck",
                    message: format!(
                        "input {i} (shape {:?}) element {j}: backward gives {a}, finite \
                         differences give {n}",
                        inputs[i].shape()
                    ),
                });
            }
        }
    }
    Ok(analytic)
}

/// Central finite differences of the one-element `f` with respect to each input, one
/// element at a time, with no graph recorded.
pub fn numeric_grads(
    f: impl Fn(&[Tensor<f64>]) -> Result<Tensor<f64>>,
    inputs: &[&Tensor<f64>],
    step: f64,
) -> Result<Vec<Vec<f64>>> {
    grad_mode::no_grad(|| {
        let mut failure = None;
        let grads = (0..inputs.len())
            .map(|i| {
                numeric_gradient(
                    |probe| {
                        let mut xs: Vec<Tensor<f64>> = inputs.iter().map(|&t| t.clone()).collect();
                        xs[i] = Tensor::raw_with(probe.to_vec(), inputs[i].shape());
                        match f(&xs) {
                            Ok(y) if y.numel() == 1 => y.item(),
                            Ok(y) => {
                                failure.get_or_insert(not_one_element(y.shape()));
                                f64::NAN
                            }
                            Err(e) => {
                                failure.get_or_insert(e);
                                f64::NAN
                            }
                        }
                    },
                    inputs[i].data(),
                    step,
                )
            })
            .collect();
        match failure {
            Some(e) => Err(e),
            None => Ok(grads),
        }
    })
}

/// The error for a checked function that does not reduce to one element.
fn not_one_element(shape: &[usize]) -> Error {
    Error::Invalid {
        op: "gradcheck",
        message: format!("the function returned shape {shape:?}; it must reduce to one element"),
    }
}
