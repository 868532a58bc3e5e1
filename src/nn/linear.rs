//! `Linear`: the affine layer `y = x·Wᵀ + b`, recorded as one fused node.
//!
//! One node instead of `transpose → matmul → broadcast add`: the forward is a single gemm
//! that reads `W` through swapped strides into an output pre-filled with the bias, and the
//! backward is two gemms and a column sum, as PyTorch's `addmm` does.

use super::module::Module;
use super::{Init, Param};
use crate::{Element, Error, Result, Tensor};

/// A fully connected layer `y = x·Wᵀ + b` on `[batch, in]` inputs.
///
/// The weight is stored `[out, in]` and the bias `[out]`, as in PyTorch's `nn.Linear`, so
/// saved weights load there unchanged.
///
/// ```
/// use backflow::nn::{Linear, Module};
/// use backflow::Tensor;
/// let layer = Linear::new(3, 2, 0);
/// let y = layer.forward(&Tensor::ones(&[4, 3])).unwrap();
/// assert_eq!(y.shape(), &[4, 2]);
/// ```
///
/// The element type is f32 unless named: `Linear::new` builds an f32 layer, as before
/// the layers were generic; `Linear::<f64>::new_typed` an f64 one.
///
/// ```
/// use backflow::nn::{Linear, Module};
/// use backflow::Tensor;
/// let layer = Linear::<f64>::new_typed(3, 2, 0);
/// let y = layer.forward(&Tensor::<f64>::ones(&[4, 3])).unwrap();
/// assert_eq!(y.shape(), &[4, 2]);
/// ```
#[derive(Clone, Debug)]
pub struct Linear<T: Element = f32> {
    /// `[out, in]`.
    pub weight: Param<T>,
    /// `[out]`, or `None` for a layer without bias.
    pub bias: Option<Param<T>>,
}

impl Linear {
    /// An f32 layer with PyTorch's default initialisation ([`Init::TorchDefault`]) and a
    /// bias, drawn reproducibly from `seed`.
    pub fn new(inputs: usize, outputs: usize, seed: u64) -> Self {
        Self::new_typed(inputs, outputs, seed)
    }

    /// An f32 layer with weights drawn by `init`; the bias (if any) is drawn as PyTorch
    /// does, from `U(-1/√in, 1/√in)`.
    pub fn with_init(inputs: usize, outputs: usize, init: Init, bias: bool, seed: u64) -> Self {
        Self::with_init_typed(inputs, outputs, init, bias, seed)
    }
}

impl<T: Element> Linear<T> {
    /// [`Linear::new`] for any element type.
    pub fn new_typed(inputs: usize, outputs: usize, seed: u64) -> Self {
        Self::with_init_typed(inputs, outputs, Init::default(), true, seed)
    }

    /// [`Linear::with_init`] for any element type.
    pub fn with_init_typed(
        inputs: usize,
        outputs: usize,
        init: Init,
        bias: bool,
        seed: u64,
    ) -> Self {
        let weight = init.sample_typed(&[outputs, inputs], inputs, outputs, seed);
        // A different stream for the bias than for the weight.
        let bias_seed = seed ^ 0x9E37_79B9_7F4A_7C15;
        let bias = bias.then(|| {
            Param::from(Init::TorchDefault.sample_typed(&[outputs], inputs, outputs, bias_seed))
        });
        Self {
            weight: Param::from(weight),
            bias,
        }
    }

    /// Number of input features.
    pub fn inputs(&self) -> usize {
        self.weight.shape()[1]
    }

    /// Number of output features.
    pub fn outputs(&self) -> usize {
        self.weight.shape()[0]
    }
}

impl<T: Element> Module<T> for Linear<T> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        linear(
            x,
            &self.weight.get(),
            self.bias.as_ref().map(Param::get).as_ref(),
        )
    }

    fn named_parameters(&self) -> Vec<(String, Param<T>)> {
        let mut params = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            params.push(("bias".to_string(), b.clone()));
        }
        params
    }
}

/// `x·wᵀ + b` for `x` of shape `[n, in]`, `w` of shape `[out, in]` and `b` of shape `[out]`,
/// as one recorded node. Errs, naming the shapes, when they do not fit.
///
/// ```
/// use backflow::{nn::linear, Tensor};
/// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2]).unwrap();
/// let w = Tensor::from_vec(vec![1.0f32, 0.0, 1.0, 1.0], &[2, 2]).unwrap();
/// let b = Tensor::from_vec(vec![0.5f32, -0.5], &[2]).unwrap();
/// assert_eq!(linear(&x, &w, Some(&b)).unwrap().to_vec(), vec![1.5, 2.5]);
/// ```
#[track_caller]
pub fn linear<T: Element>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    b: Option<&Tensor<T>>,
) -> Result<Tensor<T>> {
    let (&[n, k], &[out, k2]) = (x.shape(), w.shape()) else {
        return Err(shape_error(x, w, "x must be [batch, in] and w [out, in]"));
    };
    if k != k2 {
        return Err(shape_error(
            x,
            w,
            "x's columns must equal w's columns (w is [out, in])",
        ));
    }
    if let Some(b) = b {
        if b.shape() != [out] {
            return Err(Error::Shape {
                op: "linear",
                lhs: w.shape().to_vec(),
                rhs: b.shape().to_vec(),
                reason: format!("the bias must be [{out}] for a weight of shape [{out}, {k}]"),
            });
        }
    }
    // The output's length, in checked arithmetic: n * out can wrap to a small number, and
    // the gemm below writes n×out elements.
    let len = backflow_kernels::checked_numel(&[n, out])
        .filter(|&len| {
            len.checked_mul(std::mem::size_of::<T>())
                .is_some_and(|b| b <= isize::MAX as usize)
        })
        .ok_or_else(|| {
            shape_error(
                x,
                w,
                &format!("the output [{n}, {out}] has too many elements"),
            )
        })?;
    let mut y = match b {
        Some(b) => b.data().repeat(n),
        None => vec![T::zero(); len],
    };
    // y = x·wᵀ + y: wᵀ is [in, out], element (p, j) at w[j*k + p], so strides (1, k).
    let beta = if b.is_some() { T::one() } else { T::zero() };
    T::gemm(n, k, out, x.data(), (k, 1), w.data(), (1, k), &mut y, beta);
    let (xs, ws) = (x.clone(), w.clone());
    let mut inputs = vec![x, w];
    inputs.extend(b);
    Ok(Tensor::from_op(
        "linear",
        y,
        vec![n, out],
        &inputs,
        move |gy, ctx| {
            let need = |i: usize| ctx.needs(i);
            // y = x·wᵀ + b, so dx = gy·w, dw = gyᵀ·x, db = Σ_rows gy.
            let mut grads = if ctx.create_graph {
                vec![
                    need(0).then(|| gy.matmul(&ws)).transpose()?,
                    need(1).then(|| gy.t()?.matmul(&xs)).transpose()?,
                    need(2).then(|| gy.sum_axis(0)).transpose()?,
                ]
            } else {
                let g = gy.data();
                let gx = need(0).then(|| {
                    let mut gx = vec![T::zero(); n * k];
                    T::gemm(
                        n,
                        out,
                        k,
                        g,
                        (out, 1),
                        ws.data(),
                        (k, 1),
                        &mut gx,
                        T::zero(),
                    );
                    Tensor::from_vec(gx, &[n, k])
                });
                let gw = need(1).then(|| {
                    // gyᵀ is [out, n]: element (j, i) at gy[i*out + j], so strides (1, out).
                    let mut gw = vec![T::zero(); out * k];
                    T::gemm(
                        out,
                        n,
                        k,
                        g,
                        (1, out),
                        xs.data(),
                        (k, 1),
                        &mut gw,
                        T::zero(),
                    );
                    Tensor::from_vec(gw, &[out, k])
                });
                let gb = need(2).then(|| {
                    let mut gb = vec![T::zero(); out];
                    for row in g.chunks_exact(out.max(1)) {
                        gb.iter_mut().zip(row).for_each(|(s, &v)| *s = *s + v);
                    }
                    Tensor::from_vec(gb, &[out])
                });
                vec![gx.transpose()?, gw.transpose()?, gb.transpose()?]
            };
            grads.truncate(ctx.inputs());
            Ok(grads)
        },
    ))
}

fn shape_error<T: Element>(x: &Tensor<T>, w: &Tensor<T>, reason: &str) -> Error {
    Error::Shape {
        op: "linear",
        lhs: x.shape().to_vec(),
        rhs: w.shape().to_vec(),
        reason: reason.into(),
    }
}
