//! Losses: cross-entropy from logits and mean squared error, plus classification accuracy.
//!
//! Each takes f32 tensors under its plain name and any element type under its `_typed`
//! name, so a call on a tensor whose type is not yet inferred stays f32.

use crate::{Element, Error, Result, Tensor};

/// Mean cross-entropy of `logits` (`[batch, classes]`) against integer `labels`.
///
/// Stable for large logits: it is `-mean_rows(log_softmax(logits)[row, label])`, and
/// `log_softmax` shifts each row by its maximum, so nothing overflows. It picks each row's
/// target entry instead of multiplying by a one-hot mask, so a `-inf` logit on another
/// class (a masked-out class) costs nothing and its gradient is 0, not `0·(-inf)` = NaN.
/// Recorded as one node; its backward is `(softmax(logits) - onehot) / batch`.
///
/// ```
/// use backflow::{nn::cross_entropy, Tensor};
/// let logits = Tensor::from_vec(vec![f32::NEG_INFINITY, 0.0, 0.0, 0.0], &[2, 2])
///     .unwrap()
///     .requires_grad();
/// let loss = cross_entropy(&logits, &[1, 0]).unwrap();
/// assert!((loss.item() - 2f32.ln() / 2.0).abs() < 1e-6); // (0 + ln 2) / 2
/// loss.backward().unwrap();
/// assert!(logits.grad().unwrap().data().iter().all(|g| g.is_finite()));
/// ```
///
/// ```
/// use backflow::{nn::cross_entropy, Tensor};
/// // Uniform logits over 4 classes: the loss is ln 4 whatever the label.
/// let loss = cross_entropy(&Tensor::zeros(&[2, 4]), &[0, 3]).unwrap();
/// assert!((loss.item() - 4f32.ln()).abs() < 1e-6);
/// ```
pub fn cross_entropy(logits: &Tensor, labels: &[usize]) -> Result<Tensor> {
    cross_entropy_typed(logits, labels)
}

/// [`cross_entropy`] for any element type.
///
/// ```
/// use backflow::{nn::cross_entropy_typed, Tensor};
/// let loss = cross_entropy_typed(&Tensor::<f64>::zeros(&[1, 2]), &[1]).unwrap();
/// assert!((loss.item() - 2f64.ln()).abs() < 1e-12);
/// ```
pub fn cross_entropy_typed<T: Element>(logits: &Tensor<T>, labels: &[usize]) -> Result<Tensor<T>> {
    let &[batch, classes] = logits.shape() else {
        return Err(Error::Invalid {
            op: "cross_entropy",
            message: format!("logits must be [batch, classes], not {:?}", logits.shape()),
        });
    };
    if labels.len() != batch || batch == 0 {
        return Err(Error::Invalid {
            op: "cross_entropy",
            message: format!(
                "{} labels for logits of shape {:?}: need one per row, at least one",
                labels.len(),
                logits.shape()
            ),
        });
    }
    let mut onehot = vec![T::zero(); logits.numel()];
    for (row, &label) in labels.iter().enumerate() {
        if label >= classes {
            return Err(Error::Invalid {
                op: "cross_entropy",
                message: format!(
                    "label {label} out of range for {classes} classes (logits {:?})",
                    logits.shape()
                ),
            });
        }
        onehot[row * classes + label] = T::one();
    }
    let log_probs = backflow_kernels::log_softmax(logits.data(), classes);
    let picked: T = labels
        .iter()
        .enumerate()
        .map(|(row, &label)| log_probs[row * classes + label])
        .sum();
    let scale = T::one() / T::from_f64(batch as f64);
    let mask = Tensor::from_vec(onehot, logits.shape())?;
    let saved = logits.clone();
    Ok(Tensor::from_op(
        "cross_entropy",
        vec![-picked * scale],
        vec![],
        &[logits],
        move |gy, ctx| {
            // L = -(1/B) Σ_r log_softmax(x)[r, t_r], and d log_softmax(x)[r, t]/dx_rc =
            // [c = t] - softmax(x)_rc, so dL/dx = (softmax(x) - onehot) / B.
            if ctx.create_graph {
                let diff = saved.softmax().try_sub(&mask)?;
                return Ok(vec![Some(&diff.try_mul(gy)? * scale)]);
            }
            let g = gy.item() * scale;
            let probs = backflow_kernels::softmax(saved.data(), classes);
            let grad = probs
                .iter()
                .zip(mask.data())
                .map(|(&p, &m)| (p - m) * g)
                .collect();
            Ok(vec![Some(Tensor::from_vec(grad, saved.shape())?)])
        },
    ))
}

/// Mean squared error `mean((prediction - target)²)`; the shapes must broadcast.
///
/// ```
/// use backflow::{nn::mse, Tensor};
/// let p = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
/// let t = Tensor::from_vec(vec![0.0f32, 4.0], &[2]).unwrap();
/// assert_eq!(mse(&p, &t).unwrap().item(), 2.5); // (1 + 4) / 2
/// ```
pub fn mse(prediction: &Tensor, target: &Tensor) -> Result<Tensor> {
    mse_typed(prediction, target)
}

/// [`mse`] for any element type.
pub fn mse_typed<T: Element>(prediction: &Tensor<T>, target: &Tensor<T>) -> Result<Tensor<T>> {
    let diff = prediction.try_sub(target)?;
    Ok((&diff * &diff).mean())
}

/// Fraction of rows of `logits` (`[batch, classes]`) whose largest entry is at the label.
pub fn accuracy(logits: &Tensor, labels: &[usize]) -> f64 {
    accuracy_typed(logits, labels)
}

/// [`accuracy`] for any element type.
pub fn accuracy_typed<T: Element>(logits: &Tensor<T>, labels: &[usize]) -> f64 {
    let classes = logits.shape().last().copied().unwrap_or(1).max(1);
    let correct = logits
        .data()
        .chunks(classes)
        .zip(labels)
        .filter(|(row, &label)| argmax(row) == label)
        .count();
    correct as f64 / labels.len().max(1) as f64
}

/// Index of the largest value (the first one on ties).
fn argmax<T: Element>(row: &[T]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, T::neg_infinity()), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}
