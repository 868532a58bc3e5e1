//! Convolution and pooling layers over NCHW images: `Conv2d` (grouped, strided, padded),
//! `MaxPool2d` and `AvgPool2d`.

use super::module::Module;
use super::{Init, Param};
use crate::{Element, Result, Tensor};

/// A 2-D convolution over `[batch, channels, height, width]` inputs, as PyTorch's
/// `nn.Conv2d`: weight `[out, in / groups, k, k]`, bias `[out]`, both drawn from
/// `U(-1/√fan_in, 1/√fan_in)` with `fan_in = in / groups · k · k` (PyTorch's default).
/// Stride 1 and padding 0 unless set.
///
/// ```
/// use backflow::nn::{Conv2d, Module};
/// use backflow::Tensor;
/// // 3×3 "same" convolution from 2 to 4 channels.
/// let conv = Conv2d::new(2, 4, 3, 0).padding(1);
/// let y = conv.forward(&Tensor::randn(&[5, 2, 8, 8], 1)).unwrap();
/// assert_eq!(y.shape(), &[5, 4, 8, 8]);
/// // Strided, and grouped: each of 2 groups maps 1 channel to 2.
/// let conv = Conv2d::grouped(2, 4, 3, 2, 0).stride(2);
/// assert_eq!(conv.weight.shape(), &[4, 1, 3, 3]);
/// assert_eq!(conv.forward(&Tensor::randn(&[1, 2, 7, 7], 1)).unwrap().shape(), &[1, 4, 3, 3]);
/// ```
#[derive(Clone, Debug)]
pub struct Conv2d<T: Element = f32> {
    /// `[out, in / groups, k, k]`.
    pub weight: Param<T>,
    /// `[out]`, or `None` for a layer without bias.
    pub bias: Option<Param<T>>,
    stride: usize,
    padding: usize,
    groups: usize,
}

impl Conv2d {
    /// An f32 convolution from `inputs` to `outputs` channels with a `kernel`×`kernel`
    /// window, weights drawn from `seed`.
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

impl<T: Element> Conv2d<T> {
    /// [`Conv2d::new`] for any element type.
    pub fn new_typed(inputs: usize, outputs: usize, kernel: usize, seed: u64) -> Self {
        Self::grouped_typed(inputs, outputs, kernel, 1, seed)
    }

    /// [`Conv2d::grouped`] for any element type.
    pub fn grouped_typed(
        inputs: usize,
        outputs: usize,
        kernel: usize,
        groups: usize,
        seed: u64,
    ) -> Self {
        let (weight, bias) =
            conv_weights("Conv2d", inputs, outputs, groups, &[kernel, kernel], seed);
        Self {
            weight,
            bias,
            stride: 1,
            padding: 0,
            groups,
        }
    }

    /// Sets the step between windows (both directions).
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }

    /// Sets the zeros added on every side.
    pub fn padding(mut self, padding: usize) -> Self {
        self.padding = padding;
        self
    }
}

impl<T: Element> Module<T> for Conv2d<T> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let bias = self.bias.as_ref().map(Param::get);
        x.conv2d(
            &self.weight.get(),
            bias.as_ref(),
            self.stride,
            self.padding,
            self.groups,
        )
    }

    fn named_parameters(&self) -> Vec<(String, Param<T>)> {
        weight_and_bias(&self.weight, self.bias.as_ref())
    }
}

/// A convolution's weight `[outputs, inputs / groups, kernel…]` and bias `[outputs]`, drawn
/// as PyTorch initialises them (uniform in ±1/√fan_in); `layer` names the layer in the
/// panic when `groups` does not divide both channel counts. Shared by `Conv2d` and `Conv1d`.
pub(super) fn conv_weights<T: Element>(
    layer: &str,
    inputs: usize,
    outputs: usize,
    groups: usize,
    kernel: &[usize],
    seed: u64,
) -> (Param<T>, Option<Param<T>>) {
    assert!(
        groups > 0 && inputs % groups == 0 && outputs % groups == 0,
        "{layer}: groups {groups} must divide the {inputs} input and {outputs} output channels"
    );
    let fan_in = inputs / groups * kernel.iter().product::<usize>();
    let mut shape = vec![outputs, inputs / groups];
    shape.extend_from_slice(kernel);
    let weight = Init::TorchDefault.sample_typed(&shape, fan_in, outputs, seed);
    let bias =
        Init::TorchDefault.sample_typed(&[outputs], fan_in, outputs, seed ^ 0x9E37_79B9_7F4A_7C15);
    (Param::from(weight), Some(Param::from(bias)))
}

/// `weight`, then `bias` if there is one, under those names.
pub(super) fn weight_and_bias<T: Element>(
    weight: &Param<T>,
    bias: Option<&Param<T>>,
) -> Vec<(String, Param<T>)> {
    let mut params = vec![("weight".to_string(), weight.clone())];
    params.extend(bias.map(|b| ("bias".to_string(), b.clone())));
    params
}

macro_rules! pool {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            /// Window size (square).
            pub kernel: usize,
            /// Step between windows.
            pub stride: usize,
            /// Padding on every side.
            pub padding: usize,
        }

        impl $name {
            /// A `kernel`×`kernel` window moved by `stride`, over input padded by `padding`.
            pub fn new(kernel: usize, stride: usize, padding: usize) -> Self {
                Self { kernel, stride, padding }
            }
        }

        impl<T: Element> Module<T> for $name {
            fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
                x.$method(self.kernel, self.stride, self.padding)
            }
        }
    };
}

pool!(
    /// Max pooling over NCHW inputs, as PyTorch's `nn.MaxPool2d` (padding counts as −∞).
    ///
    /// ```
    /// use backflow::nn::{MaxPool2d, Module};
    /// use backflow::Tensor;
    /// let x = Tensor::from_vec((0..16).map(|v| v as f32).collect(), &[1, 1, 4, 4]).unwrap();
    /// let y = MaxPool2d::new(2, 2, 0).forward(&x).unwrap();
    /// assert_eq!(y.to_vec(), vec![5.0, 7.0, 13.0, 15.0]);
    /// ```
    MaxPool2d,
    max_pool2d
);
pool!(
    /// Average pooling over NCHW inputs, as PyTorch's `nn.AvgPool2d` (padding counts as
    /// zeros: every window divides by `kernel²`).
    ///
    /// ```
    /// use backflow::nn::{AvgPool2d, Module};
    /// use backflow::Tensor;
    /// let x = Tensor::from_vec((0..16).map(|v| v as f32).collect(), &[1, 1, 4, 4]).unwrap();
    /// let y = AvgPool2d::new(2, 2, 0).forward(&x).unwrap();
    /// assert_eq!(y.to_vec(), vec![2.5, 4.5, 10.5, 12.5]);
    /// ```
    AvgPool2d,
    avg_pool2d
);
