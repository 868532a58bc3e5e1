//! `Conv1d`: a 1-D convolution over `[batch, channels, length]` inputs, computed as a 2-D
//! convolution of unit height (the padding added along the length only).

use super::conv::{conv_weights, weight_and_bias};
use super::module::Module;
use super::Param;
use crate::{Element, Error, Result, Tensor};

/// A 1-D convolution over `[batch, channels, length]` inputs, as PyTorch's `nn.Conv1d`:
/// weight `[out, in / groups, k]`, bias `[out]`, both drawn from
/// `U(-1/√fan_in, 1/√fan_in)` with `fan_in = in / groups · k` (PyTorch's default). Stride 1
/// and padding 0 unless set; the output length is `(length + 2·padding − k) / stride + 1`.
///
/// ```
/// use backflow::nn::{Conv1d, Module};
/// use backflow::Tensor;
/// // A "same" convolution of width 3 from 2 to 4 channels over sequences of 10.
/// let conv = Conv1d::new(2, 4, 3, 0).padding(1);
/// assert_eq!(conv.weight.shape(), &[4, 2, 3]);
/// let y = conv.forward(&Tensor::randn(&[5, 2, 10], 1)).unwrap();
/// assert_eq!(y.shape(), &[5, 4, 10]);
/// // A moving sum: one channel, weights 1, no bias.
/// let mut sum = Conv1d::new(1, 1, 2, 0);
/// sum.weight.set(Tensor::ones(&[1, 1, 2])).unwrap();
/// sum.bias = None;
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 4]).unwrap();
/// assert_eq!(sum.forward(&x).unwrap().to_vec(), vec![3.0, 5.0, 7.0]);
/// assert!(sum.forward(&Tensor::ones(&[1, 2, 4])).is_err()); // 2 channels, not 1
/// ```
#[derive(Clone, Debug)]
pub struct Conv1d<T: Element = f32> {
    /// `[out, in / groups, k]`.
    pub weight: Param<T>,
    /// `[out]`, or `None` for a layer without bias.
    pub bias: Option<Param<T>>,
    stride: usize,
    padding: usize,
    groups: usize,
}

impl Conv1d {
    /// An f32 convolution from `inputs` to `outputs` channels with a window of `kernel`,
    /// weights drawn from `seed`.
    pub fn new(inputs: usize, outputs: usize, kernel: usize, seed: u64) -> Self {
        Self::grouped_typed(inputs, outputs, kernel, 1, seed)
    }

    /// An f32 convolution whose channels are split into `groups` independent groups.
    ///
    /// # Panics
    ///
    /// If `groups` is 0 or does not divide both channel counts.
    pub fn grouped(inputs: usize, outputs: usize, kernel: usize, groups: usize, seed: u64) -> Self {
        Self::grouped_typed(inputs, outputs, kernel, groups, seed)
    }
}

impl<T: Element> Conv1d<T> {
    /// [`Conv1d::new`] for any element type.
    pub fn new_typed(inputs: usize, outputs: usize, kernel: usize, seed: u64) -> Self {
        Self::grouped_typed(inputs, outputs, kernel, 1, seed)
    }

    /// [`Conv1d::grouped`] for any element type.
    pub fn grouped_typed(
        inputs: usize,
        outputs: usize,
        kernel: usize,
        groups: usize,
        seed: u64,
    ) -> Self {
        let (weight, bias) = conv_weights("Conv1d", inputs, outputs, groups, &[kernel], seed);
        Self {
            weight,
            bias,
            stride: 1,
            padding: 0,
            groups,
        }
    }

    /// Sets the step between windows.
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }

    /// Sets the zeros added at each end.
    pub fn padding(mut self, padding: usize) -> Self {
        self.padding = padding;
        self
    }
}

impl<T: Element> Module<T> for Conv1d<T> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let w = self.weight.get();
        let &[c_out, cg, k] = w.shape() else {
            unreachable!("a parameter keeps its shape [out, in / groups, k]")
        };
        let c_in = cg * self.groups;
        let (n, len) = match *x.shape() {
            [n, c, len] if c == c_in => (n, len),
            _ => {
                return Err(Error::Invalid {
                    op: "Conv1d",
                    message: format!(
                        "input of shape {:?}: needs [batch, {c_in}, length] (weight {:?})",
                        x.shape(),
                        w.shape()
                    ),
                })
            }
        };
        let p = self.padding;
        let padded_len = p.checked_mul(2).and_then(|p2| p2.checked_add(len));
        if self.stride == 0 || padded_len.is_none_or(|l| l < k) {
            return Err(Error::Invalid {
                op: "Conv1d",
                message: format!(
                    "input of shape {:?} padded by {p} must hold the kernel of {k}, and the \
                     stride ({}) must be at least 1",
                    x.shape(),
                    self.stride
                ),
            });
        }
        let x = if p > 0 {
            let zeros = Tensor::try_zeros(&[n, c_in, p]).map_err(|e| Error::Invalid {
                op: "Conv1d",
                message: format!("input of shape {:?} padded by {p}: {e}", x.shape()),
            })?;
            Tensor::concat(&[&zeros, x, &zeros], 2)?
        } else {
            x.clone()
        };
        let padded_len = x.shape()[2];
        let bias = self.bias.as_ref().map(Param::get);
        let y = x.reshape(&[n, c_in, 1, padded_len])?.conv2d(
            &w.reshape(&[c_out, cg, 1, k])?,
            bias.as_ref(),
            self.stride,
            0,
            self.groups,
        )?;
        let out_len = y.shape()[3];
        y.reshape(&[n, c_out, out_len])
    }

    fn named_parameters(&self) -> Vec<(String, Param<T>)> {
        weight_and_bias(&self.weight, self.bias.as_ref())
    }
}
