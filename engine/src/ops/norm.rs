//! Layer normalisation over the trailing dimensions, with optional elementwise weight and
//! bias: one fused kernel forward and backward, and under `create_graph` the same backward
//! written with differentiable ops.

use crate::error::{Error, Result};
use crate::Tensor;
use backflow_kernels::{layer_norm, layer_norm_backward, numel, Element};

impl<T: Element> Tensor<T> {
    /// Layer normalisation over the last `normalized_dims` dimensions: each group of those
    /// elements is shifted to mean 0 and scaled to variance 1 (the biased variance, plus
    /// `eps`), then multiplied by `weight` and shifted by `bias`, which have the shape of
    /// those dimensions, when given (PyTorch's `layer_norm`).
    ///
    /// An `Error::Invalid` names `normalized_dims` outside `1..=rank` or an `eps` that is
    /// negative or NaN; an `Error::Shape` names a weight or bias of the wrong shape.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 10.0, 10.0, 10.0], &[2, 3]).unwrap();
    /// let w = Tensor::from_vec(vec![2.0, 2.0, 2.0], &[3]).unwrap();
    /// let y = x.layer_norm(1, Some(&w), None, 0.0).unwrap();
    /// let s = (2.0f64 / 3.0).sqrt();
    /// assert!((y.to_vec()[2] - 2.0 / s).abs() < 1e-12);
    /// assert_eq!(x.layer_norm(1, None, None, 1e-5).unwrap().to_vec()[3..], [0.0; 3]);
    /// ```
    #[track_caller]
    pub fn layer_norm(
        &self,
        normalized_dims: usize,
        weight: Option<&Tensor<T>>,
        bias: Option<&Tensor<T>>,
        eps: f64,
    ) -> Result<Tensor<T>> {
        let shape = self.shape().to_vec();
        if normalized_dims == 0 || normalized_dims > shape.len() {
            return Err(Error::Invalid {
                op: "layer_norm",
                message: format!(
                    "normalized_dims {normalized_dims} must be between 1 and the rank of shape \
                     {shape:?}"
                ),
            });
        }
        if eps.is_nan() || eps < 0.0 {
            return Err(Error::Invalid {
                op: "layer_norm",
                message: format!("eps must be non-negative, got {eps} (shape {shape:?})"),
            });
        }
        let norm_shape = shape[shape.len() - normalized_dims..].to_vec();
        for (what, p) in [("weight", weight), ("bias", bias)] {
            if let Some(p) = p.filter(|p| p.shape() != norm_shape) {
                return Err(Error::Shape {
                    op: "layer_norm",
                    lhs: shape.clone(),
                    rhs: p.shape().to_vec(),
                    reason: format!(
                        "the {what} must have the shape {norm_shape:?} of the last \
                         {normalized_dims} dimensions"
                    ),
                });
            }
        }
        let d = numel(&norm_shape);
        if d == 0 || self.numel() == 0 {
            // Nothing to normalise: an empty output, or rows of nothing.
            let scaled = self.affine(T::zero(), T::zero());
            return Ok(scaled);
        }
        let (eps_t, w, b) = (T::from_f64(eps), weight.cloned(), bias.cloned());
        let (y, saved) = layer_norm(
            self.data(),
            d,
            w.as_ref().map(|w| w.data()),
            b.as_ref().map(|b| b.data()),
            eps_t,
        );
        let mut inputs = vec![self];
        inputs.extend(weight);
        inputs.extend(bias);
        let x = self.clone();
        Ok(Tensor::from_op(
            "layer_norm",
            y,
            shape.clone(),
            &inputs,
            move |gy, ctx| {
                let (iw, ib) = (1, 1 + usize::from(w.is_some()));
                let (nx, nw, nb) = (
                    ctx.needs(0),
                    w.is_some() && ctx.needs(iw),
                    b.is_some() && ctx.needs(ib),
                );
                let (gx, gw, gb) = if ctx.create_graph {
                    recorded_backward(&x, w.as_ref(), gy, &norm_shape, eps_t, (nx, nw, nb))?
                } else {
                    let (gx, gw, gb) = layer_norm_backward(
                        &saved,
                        gy.data(),
                        d,
                        w.as_ref().map(|w| w.data()),
                        (nx, nw, nb),
                    );
                    (
                        gx.map(|g| Tensor::raw(g, shape.clone())),
                        gw.map(|g| Tensor::raw_with(g, &norm_shape)),
                        gb.map(|g| Tensor::raw_with(g, &norm_shape)),
                    )
                };
                let mut grads = vec![gx];
                if w.is_some() {
                    grads.push(gw);
                }
                if b.is_some() {
                    grads.push(gb);
                }
                Ok(grads)
            },
        ))
    }
}

/// The layer norm backward with recorded ops (see the kernel for the formulas), over rows
/// of the elements of `norm_shape`: `(∂L/∂x, ∂L/∂w, ∂L/∂b)`, each only if asked for.
#[allow(clippy::type_complexity)]
fn recorded_backward<T: Element>(
    x: &Tensor<T>,
    w: Option<&Tensor<T>>,
    gy: &Tensor<T>,
    norm_shape: &[usize],
    eps: T,
    (nx, nw, nb): (bool, bool, bool),
) -> Result<(Option<Tensor<T>>, Option<Tensor<T>>, Option<Tensor<T>>)> {
    let d = numel(norm_shape);
    let rows = x.numel() / d;
    let x2 = x.reshape(&[rows, d])?;
    let centred = &x2 - &x2.mean_dim(1, true)?;
    let var = (&centred * &centred).mean_dim(1, true)?;
    let rstd = (var + eps).powf(-0.5);
    let x_hat = &centred * &rstd;
    let gy2 = gy.reshape(&[rows, d])?;
    let gx = nx
        .then(|| -> Result<Tensor<T>> {
            let g = match w {
                Some(w) => &gy2 * &w.reshape(&[1, d])?,
                None => gy2.clone(),
            };
            let inner =
                &(&g - &g.mean_dim(1, true)?) - &(&x_hat * &(&g * &x_hat).mean_dim(1, true)?);
            (&rstd * &inner).reshape(x.shape())
        })
        .transpose()?;
    let gw = nw
        .then(|| (&gy2 * &x_hat).sum_dim(0, false)?.reshape(norm_shape))
        .transpose()?;
    let gb = nb
        .then(|| gy2.sum_dim(0, false)?.reshape(norm_shape))
        .transpose()?;
    Ok((gx, gw, gb))
}
