//! `clip_grad_norm`: rescales gradients whose joint norm is too large, as PyTorch's
//! `nn.utils.clip_grad_norm_`.

use crate::nn::Param;
use crate::{Element, Error, Result, Tensor};

/// Scales the gradients of `params` so that their total 2-norm (over every element of
/// every gradient, as if concatenated) is at most `max_norm`, and returns that norm as it
/// was before scaling. As PyTorch's `clip_grad_norm_`: when the norm exceeds `max_norm`,
/// each gradient is multiplied by `max_norm / (norm + 1e-6)`; parameters without a
/// gradient are skipped.
///
/// Errs, changing no gradient, if `max_norm` is negative or NaN, or if the norm is not
/// finite (an infinite or NaN gradient), which PyTorch would scale into NaNs.
///
/// ```
/// use backflow::nn::{clip_grad_norm, Param};
/// use backflow::Tensor;
/// let p = Param::new(Tensor::zeros(&[2]));
/// let q = Param::new(Tensor::zeros(&[1]));
/// let x = Tensor::from_vec(vec![3.0, 0.0], &[2]).unwrap();
/// (&(&p.get() * &x).sum() + &(&q.get() * 4.0).sum()).backward().unwrap(); // grads 3, 0 and 4
/// let norm = clip_grad_norm(&[p.clone(), q.clone()], 1.0).unwrap();
/// assert!((norm - 5.0).abs() < 1e-12);
/// let g = p.grad().unwrap().to_vec();
/// assert!((g[0] - 0.6).abs() < 1e-6 && g[1] == 0.0);
/// assert!((q.grad().unwrap().item() - 0.8).abs() < 1e-6);
/// ```
pub fn clip_grad_norm<T: Element>(params: &[Param<T>], max_norm: f64) -> Result<f64> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(Error::Invalid {
            op: "clip_grad_norm",
            message: format!("max_norm is {max_norm}; it must be 0 or more"),
        });
    }
    let leaves: Vec<(Tensor<T>, Tensor<T>)> = params
        .iter()
        .filter_map(|p| {
            let leaf = p.get();
            leaf.grad().map(|g| (leaf, g))
        })
        .collect();
    // Scaled by the largest magnitude so that squares of large f64 gradients (past 1e154)
    // do not overflow a finite norm to infinity; a NaN anywhere makes the norm NaN.
    let values = || {
        leaves
            .iter()
            .flat_map(|(_, g)| g.data())
            .map(|&v| v.to_f64())
    };
    let scale = values().fold(0.0f64, |m, v| {
        if m.is_nan() || v.is_nan() {
            f64::NAN
        } else {
            m.max(v.abs())
        }
    });
    let total = if scale == 0.0 || !scale.is_finite() {
        scale
    } else {
        scale
            * values()
                .map(|v| (v / scale) * (v / scale))
                .sum::<f64>()
                .sqrt()
    };
    if !total.is_finite() {
        return Err(Error::Invalid {
            op: "clip_grad_norm",
            message: format!(
                "the gradients' total norm is {total} (a gradient holds an infinity or NaN); \
                 no gradient was scaled"
            ),
        });
    }
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        let c = T::from_f64(coef);
        for (leaf, g) in &leaves {
            let scaled = g.data().iter().map(|&v| v * c).collect();
            leaf.set_grad(Some(Tensor::from_vec(scaled, g.shape())?))?;
        }
    }
    Ok(total)
}
