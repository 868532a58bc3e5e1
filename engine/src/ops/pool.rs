//! Max and average pooling over NCHW with square windows, stride and padding.
//!
//! Max pooling's backward sends each window's gradient to its first maximum: a scatter-add
//! over the saved indices (recorded, with `gather` as its own backward). Average pooling's
//! backward spreads it over the window; that spreading is an op whose backward is average
//! pooling again (the two are adjoint), so both differentiate any number of times.

use crate::error::{Error, Result};
use crate::sync::Arc;
use crate::Tensor;
use backflow_kernels::{
    avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward, Element, Pool2dShape,
};

impl<T: Element> Tensor<T> {
    /// The maximum of each `kernel×kernel` window of every plane of this `[n, c, h, w]`
    /// tensor, windows `stride` apart over the input padded by `padding` (which is never
    /// the maximum); the result is `[n, c, (h + 2·padding - kernel)/stride + 1, …]`. The
    /// gradient goes to the first maximum of each window.
    ///
    /// An `Error::Invalid` names a zero kernel or stride, a padding above `kernel / 2` (as
    /// PyTorch requires), a rank other than 4, empty planes, a window larger than the
    /// padded input, or a kernel or padding so large that the padded size or the window's
    /// `kernel²` elements overflow `usize`.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec((0..16).map(|v| v as f32).collect(), &[1, 1, 4, 4]).unwrap();
    /// let y = x.max_pool2d(2, 2, 0).unwrap();
    /// assert_eq!((y.shape(), y.to_vec()), (&[1, 1, 2, 2][..], vec![5.0, 7.0, 13.0, 15.0]));
    /// ```
    #[track_caller]
    pub fn max_pool2d(&self, kernel: usize, stride: usize, padding: usize) -> Result<Tensor<T>> {
        let s = pool_shape("max_pool2d", self.shape(), kernel, stride, padding)?;
        let (values, index) = max_pool2d(self.data(), &s);
        let out_shape = pooled_shape(self.shape(), &s);
        let (in_shape, index) = (self.shape().to_vec(), Arc::<[usize]>::from(index));
        Ok(Tensor::from_op(
            "max_pool2d",
            values,
            out_shape,
            &[self],
            move |gy, ctx| {
                // ∂ max(window)/∂x = 1 at the window's first maximum: gy scattered to the indices
                if !ctx.create_graph {
                    let gx = max_pool2d_backward(gy.data(), &index, &s);
                    return Ok(vec![Some(Tensor::raw(gx, in_shape.clone()))]);
                }
                let (planes, hw, howo) = (s.planes, s.h * s.w, s.ho() * s.wo());
                let g = gy.reshape(&[planes, howo])?.scatter_add_into(
                    &[planes, hw],
                    1,
                    &index,
                    &[planes, howo],
                );
                Ok(vec![Some(g.reshape(&in_shape)?)])
            },
        ))
    }

    /// The mean of each `kernel×kernel` window of every plane of this `[n, c, h, w]`
    /// tensor, windows `stride` apart over the input padded with zeros by `padding`, which
    /// count in the mean (PyTorch's default `count_include_pad=True`). Errors as
    /// [`max_pool2d`](Self::max_pool2d), naming `avg_pool2d`.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::ones(&[1, 1, 2, 2]);
    /// let y = x.avg_pool2d(2, 2, 1).unwrap(); // each window holds one 1 and three zeros
    /// assert_eq!(y.to_vec(), vec![0.25; 4]);
    /// ```
    #[track_caller]
    pub fn avg_pool2d(&self, kernel: usize, stride: usize, padding: usize) -> Result<Tensor<T>> {
        let s = pool_shape("avg_pool2d", self.shape(), kernel, stride, padding)?;
        Ok(avg_pool(self, s))
    }
}

/// Average pooling, recorded, with [`avg_unpool`] as its backward.
fn avg_pool<T: Element>(x: &Tensor<T>, s: Pool2dShape) -> Tensor<T> {
    let shape = pooled_shape(x.shape(), &s);
    let in_shape = x.shape().to_vec();
    Tensor::from_op(
        "avg_pool2d",
        avg_pool2d(x.data(), &s),
        shape,
        &[x],
        move |gy, _| {
            // ∂ mean(window)/∂x = 1/k² inside the window
            Ok(vec![Some(avg_unpool(gy, &in_shape, s))])
        },
    )
}

/// Average pooling's gradient: each window's gradient spread over it, recorded, with
/// average pooling as its backward (the two are adjoint).
fn avg_unpool<T: Element>(gy: &Tensor<T>, in_shape: &[usize], s: Pool2dShape) -> Tensor<T> {
    let data = avg_pool2d_backward(gy.data(), &s);
    Tensor::from_op(
        "avg_pool2d_backward",
        data,
        in_shape.to_vec(),
        &[gy],
        move |g, _| {
            // linear, with avg_pool as its adjoint
            Ok(vec![Some(avg_pool(g, s))])
        },
    )
}

/// `[n, c, ho, wo]` for an `[n, c, h, w]` input.
fn pooled_shape(shape: &[usize], s: &Pool2dShape) -> Vec<usize> {
    vec![shape[0], shape[1], s.ho(), s.wo()]
}

/// The pooling's sizes, or an `Error::Invalid` naming `op` and what does not fit.
fn pool_shape(
    op: &'static str,
    shape: &[usize],
    k: usize,
    stride: usize,
    padding: usize,
) -> Result<Pool2dShape> {
    let invalid = |why: String| Error::Invalid {
        op,
        message: format!(
            "{why} (input shape {shape:?}, kernel {k}, stride {stride}, padding {padding})"
        ),
    };
    let &[n, c, h, w] = shape else {
        return Err(invalid("the input must be [n, c, h, w]".into()));
    };
    if h == 0 || w == 0 {
        return Err(invalid("the planes must not be empty".into()));
    }
    if k == 0 || stride == 0 {
        return Err(invalid(
            "the kernel and the stride must be at least 1".into(),
        ));
    }
    if padding > k / 2 {
        return Err(invalid(
            "the padding must be at most half the kernel".into(),
        ));
    }
    // Checked as conv2d does: the padded sizes, and the k² elements of a window (average
    // pooling divides by it), must not overflow, else the output size wraps (an index out of
    // bounds) or the divisor does (inf).
    let padded = |size: usize| padding.checked_mul(2).and_then(|p| p.checked_add(size));
    let (Some(padded_h), Some(padded_w)) = (padded(h), padded(w)) else {
        return Err(invalid("the padded input size overflows usize".into()));
    };
    if padded_h < k || padded_w < k {
        return Err(invalid("the window is larger than the padded input".into()));
    }
    if k.checked_mul(k).is_none() {
        return Err(invalid(
            "the window's kernel² elements overflow usize".into(),
        ));
    }
    let planes = n
        .checked_mul(c)
        .ok_or_else(|| invalid("too many planes".into()))?;
    Ok(Pool2dShape {
        planes,
        h,
        w,
        k,
        stride,
        padding,
    })
}
