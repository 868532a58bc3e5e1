//! Reductions: `sum` over all elements, `sum_axis`, `mean`.

use crate::Tensor;
use backflow_kernels::{sum_all, Element};

impl<T: Element> Tensor<T> {
    /// The sum of all elements, as a zero-dimensional tensor.
    #[track_caller]
    pub fn sum(&self) -> Tensor<T> {
        let total = sum_all(self.data());
        let shape = self.shape().to_vec();
        Tensor::from_op("sum", vec![total], vec![], &[self], move |gy, ctx| {
            // d/dx_i Σ x = 1: gy repeated to the input's shape
            let g = if ctx.create_graph {
                gy.broadcast_to(&shape)?
            } else {
                Tensor::full(&shape, gy.item())
            };
            Ok(vec![Some(g)])
        })
    }
}
