//! 2-D convolution over NCHW with stride, padding and groups (im2col with one gemm per
//! group, in the kernels).
//!
//! Its two backwards are ops of their own, so `create_graph` works: with `y = conv(x, w)`,
//! `∂L/∂x = conv_input_grad(gy, w)` and `∂L/∂w = conv_weight_grad(x, gy)`. Each of the three
//! is linear in each argument, and their adjoints close over the set: the gradient of
//! `conv_input_grad(gy, w)` is `conv(u, w)` for `gy` and `conv_weight_grad(u, gy)` for `w`;
//! that of `conv_weight_grad(x, gy)` is `conv_input_grad(gy, v)` for `x` and `conv(x, v)`
//! for `gy`.

use crate::error::{Error, Result};
use crate::Tensor;
use backflow_kernels::{
    conv2d, conv2d_bias_grad, conv2d_input_grad, conv2d_weight_grad, Conv2dShape, Element,
};

impl<T: Element> Tensor<T> {
    /// 2-D convolution (cross-correlation, as PyTorch's `conv2d`) of this `[n, c_in, h, w]`
    /// tensor with `weight` `[c_out, c_in/groups, kh, kw]`, plus `bias` `[c_out]` when given;
    /// the result is `[n, c_out, (h + 2·padding - kh)/stride + 1, (w + 2·padding -
    /// kw)/stride + 1]`. `groups` splits the channels into independent convolutions.
    ///
    /// An `Error::Shape` names the input and weight (or bias) shapes when they do not fit;
    /// an `Error::Invalid` names a zero stride or group count, or channels that the groups
    /// do not divide, or an output (and the kernel's scratch) whose bytes, given in the
    /// message, cannot be allocated (a huge `padding`).
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::ones(&[1, 1, 4, 4]);
    /// let w = Tensor::<f32>::ones(&[2, 1, 3, 3]);
    /// let b = Tensor::<f32>::from_vec(vec![0.0, 1.0], &[2]).unwrap();
    /// let y = x.conv2d(&w, Some(&b), 1, 1, 1).unwrap();
    /// assert_eq!(y.shape(), &[1, 2, 4, 4]);
    /// assert_eq!(y.to_vec()[..2], [4.0, 6.0]); // a corner window sees 4 ones
    /// assert_eq!(y.to_vec()[16 + 5], 10.0);    // an inner one sees 9, plus the bias
    /// ```
    #[track_caller]
    pub fn conv2d(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> Result<Tensor<T>> {
        let s = conv_shape(self.shape(), weight.shape(), stride, padding, groups)?;
        if let Some(b) = bias.filter(|b| b.shape() != [s.c_out]) {
            return Err(Error::Shape {
                op: "conv2d",
                lhs: weight.shape().to_vec(),
                rhs: b.shape().to_vec(),
                reason: format!(
                    "the bias must have shape [{}] (one per output channel)",
                    s.c_out
                ),
            });
        }
        let out_shape = vec![s.n, s.c_out, s.ho(), s.wo()];
        check_conv_alloc::<T>(&s, &out_shape)?;
        let data = conv2d(self.data(), weight.data(), bias.map(|b| b.data()), &s);
        let (x, w, has_bias) = (self.clone(), weight.clone(), bias.is_some());
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        Ok(Tensor::from_op(
            "conv2d",
            data,
            out_shape,
            &inputs,
            move |gy, ctx| {
                // y = conv(x, w) + b: ∂L/∂x = conv_input_grad(gy, w),
                // ∂L/∂w = conv_weight_grad(x, gy), ∂L/∂b = Σ_{n,h,w} gy
                let gx = ctx.needs(0).then(|| input_grad(gy, &w, s));
                let gw = ctx.needs(1).then(|| weight_grad(&x, gy, s));
                let mut grads = vec![gx, gw];
                if has_bias {
                    let gb = ctx
                        .needs(2)
                        .then(|| -> Result<Tensor<T>> {
                            if ctx.create_graph {
                                gy.sum_dim(3, false)?.sum_dim(2, false)?.sum_dim(0, false)
                            } else {
                                Ok(Tensor::raw(conv2d_bias_grad(gy.data(), &s), vec![s.c_out]))
                            }
                        })
                        .transpose()?;
                    grads.push(gb);
                }
                Ok(grads)
            },
        ))
    }
}

/// The convolution's sizes, or the error naming what does not fit.
fn conv_shape(
    x: &[usize],
    w: &[usize],
    stride: usize,
    padding: usize,
    groups: usize,
) -> Result<Conv2dShape> {
    let shape_error = |reason: String| Error::Shape {
        op: "conv2d",
        lhs: x.to_vec(),
        rhs: w.to_vec(),
        reason,
    };
    let (&[n, c_in, h, wd], &[c_out, cg, kh, kw]) = (x, w) else {
        return Err(shape_error(
            "the input must be [n, c_in, h, w] and the weight [c_out, c_in/groups, kh, kw]".into(),
        ));
    };
    if stride == 0 || groups == 0 {
        return Err(Error::Invalid {
            op: "conv2d",
            message: format!(
                "stride ({stride}) and groups ({groups}) must be at least 1 (input {x:?}, weight {w:?})"
            ),
        });
    }
    if c_in % groups != 0 || c_out % groups != 0 {
        return Err(Error::Invalid {
            op: "conv2d",
            message: format!(
                "{groups} groups must divide the input channels ({c_in}) and the output \
                 channels ({c_out}) (input {x:?}, weight {w:?})"
            ),
        });
    }
    if cg != c_in / groups {
        return Err(shape_error(format!(
            "the weight's second dimension must be c_in/groups = {}",
            c_in / groups
        )));
    }
    let fits = |size: usize, k: usize| {
        padding
            .checked_mul(2)
            .and_then(|p| p.checked_add(size))
            .is_some_and(|padded| padded >= k && k > 0)
    };
    if !fits(h, kh) || !fits(wd, kw) {
        return Err(shape_error(format!(
            "the kernel {kh}x{kw} must be non-empty and fit in the input padded by {padding}"
        )));
    }
    Ok(Conv2dShape {
        n,
        c_in,
        h,
        w: wd,
        c_out,
        kh,
        kw,
        stride,
        padding,
        groups,
    })
}

/// Checks that the kernel's buffers for `out_shape` can be allocated: the output, and per
/// group the im2col matrix and the gemm's output, all held at once. A padding that makes
/// them huge (but countable) is an `Error::Invalid` naming conv2d, the output shape and the
/// bytes, not an abort.
fn check_conv_alloc<T: Element>(s: &Conv2dShape, out_shape: &[usize]) -> Result<()> {
    let out = crate::tensor::checked_len::<T>("conv2d", out_shape)?;
    // rows = n·ho·wo (one per output position), each of k = c_in/groups·kh·kw im2col
    // values and c_out/groups gemm outputs.
    let rows = s.n.checked_mul(s.ho()).and_then(|r| r.checked_mul(s.wo()));
    let per_row = (s.c_in / s.groups)
        .checked_mul(s.kh * s.kw)
        .and_then(|k| k.checked_add(s.c_out / s.groups));
    let total = rows
        .zip(per_row)
        .and_then(|(rows, p)| rows.checked_mul(p))
        .and_then(|scratch| scratch.checked_add(out))
        .unwrap_or(usize::MAX);
    crate::tensor::check_alloc::<T>("conv2d", out_shape, total)
}

/// The convolution without bias, recorded: the adjoint of the two gradient ops below.
fn conv<T: Element>(x: &Tensor<T>, w: &Tensor<T>, s: Conv2dShape) -> Tensor<T> {
    let data = conv2d(x.data(), w.data(), None, &s);
    let (xc, wc) = (x.clone(), w.clone());
    let shape = vec![s.n, s.c_out, s.ho(), s.wo()];
    Tensor::from_op("conv2d", data, shape, &[x, w], move |gy, ctx| {
        // ∂L/∂x = conv_input_grad(gy, w), ∂L/∂w = conv_weight_grad(x, gy)
        Ok(vec![
            ctx.needs(0).then(|| input_grad(gy, &wc, s)),
            ctx.needs(1).then(|| weight_grad(&xc, gy, s)),
        ])
    })
}

/// `∂L/∂x` of the convolution from `gy` and `w`, recorded.
fn input_grad<T: Element>(gy: &Tensor<T>, w: &Tensor<T>, s: Conv2dShape) -> Tensor<T> {
    let data = conv2d_input_grad(gy.data(), w.data(), &s);
    let (gyc, wc) = (gy.clone(), w.clone());
    let shape = vec![s.n, s.c_in, s.h, s.w];
    Tensor::from_op("conv2d_input_grad", data, shape, &[gy, w], move |u, ctx| {
        // ⟨u, conv_input_grad(gy, w)⟩ = ⟨gy, conv(u, w)⟩: for gy, conv(u, w); for w,
        // conv_weight_grad(u, gy)
        Ok(vec![
            ctx.needs(0).then(|| conv(u, &wc, s)),
            ctx.needs(1).then(|| weight_grad(u, &gyc, s)),
        ])
    })
}

/// `∂L/∂w` of the convolution from `x` and `gy`, recorded.
fn weight_grad<T: Element>(x: &Tensor<T>, gy: &Tensor<T>, s: Conv2dShape) -> Tensor<T> {
    let data = conv2d_weight_grad(x.data(), gy.data(), &s);
    let (xc, gyc) = (x.clone(), gy.clone());
    let shape = vec![s.c_out, s.c_in / s.groups, s.kh, s.kw];
    Tensor::from_op(
        "conv2d_weight_grad",
        data,
        shape,
        &[x, gy],
        move |v, ctx| {
            // ⟨v, conv_weight_grad(x, gy)⟩ = ⟨gy, conv(x, v)⟩: for x, conv_input_grad(gy, v);
            // for gy, conv(x, v)
            Ok(vec![
                ctx.needs(0).then(|| input_grad(&gyc, v, s)),
                ctx.needs(1).then(|| conv(&xc, v, s)),
            ])
        },
    )
}
