//! User-defined ops: forward and backward given through the [`CustomOp`] trait and joined to
//! the graph by [`Tensor::apply_op`], built on [`Tensor::from_op`]. Such an op runs under
//! every scheduler like a built-in one, and with `create_graph` its backward is recorded when
//! written with tensor ops.

use super::grad_mode::no_grad;
use super::node::BackwardCtx;
use super::Tensor;
use crate::error::Result;
use backflow_kernels::Element;

/// An op defined outside the engine: its forward and its local chain rule.
///
/// ```
/// use backflow::{BackwardCtx, CustomOp, Result, Tensor};
///
/// /// y = x³, with dy/dx = 3x².
/// struct Cube;
///
/// impl CustomOp<f64> for Cube {
///     fn name(&self) -> &'static str {
///         "cube"
///     }
///     fn forward(&self, inputs: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
///         Ok(inputs[0].powf(3.0))
///     }
///     fn backward(
///         &self,
///         inputs: &[Tensor<f64>],
///         _output: &Tensor<f64>,
///         grad: &Tensor<f64>,
///         _ctx: &BackwardCtx,
///     ) -> Result<Vec<Option<Tensor<f64>>>> {
///         Ok(vec![Some(grad * &(&inputs[0].powf(2.0) * 3.0))])
///     }
/// }
///
/// let x = Tensor::<f64>::scalar(2.0).requires_grad();
/// let y = Tensor::apply_op(Cube, &[&x]).unwrap();
/// y.backward().unwrap();
/// assert_eq!(x.grad().unwrap().item(), 12.0);
/// ```
pub trait CustomOp<T: Element>: Send + Sync + 'static {
    /// The op's name, as errors, traces and graph exports show it.
    fn name(&self) -> &'static str;

    /// Computes the output from the inputs. It runs under [`no_grad`]: whatever tensor ops
    /// it uses are not recorded; the op is recorded as one node.
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>>;

    /// From `grad`, the gradient of the output, the gradient of each input (one entry per
    /// input, `None` where `ctx.needs(i)` is false or the gradient is zero). `inputs` and
    /// `output` are those of the forward call; each returned gradient must have the shape of
    /// its input. With `ctx.create_graph` the pass is recorded, so a backward written with
    /// tensor ops can be differentiated again.
    fn backward(
        &self,
        inputs: &[Tensor<T>],
        output: &Tensor<T>,
        grad: &Tensor<T>,
        ctx: &BackwardCtx,
    ) -> Result<Vec<Option<Tensor<T>>>>;
}

impl<T: Element> Tensor<T> {
    /// Applies the custom `op` to `inputs` and records it as one graph node (when recording
    /// is on and some input requires grad); the node's location is the caller's line.
    #[track_caller]
    pub fn apply_op(op: impl CustomOp<T>, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let out = no_grad(|| op.forward(inputs))?.detach();
        let saved: Vec<Tensor<T>> = inputs.iter().map(|&t| t.clone()).collect();
        // The output is saved detached: its node holds this closure, and a handle with the
        // node would be a cycle.
        let output = out.clone();
        let name = op.name();
        Ok(Tensor::record(
            name,
            out.shared_data(),
            out.shape().to_vec(),
            inputs,
            move |gy, ctx| op.backward(&saved, &output, gy, ctx),
        ))
    }
}
