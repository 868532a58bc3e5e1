//! The matrix product of two 2-D tensors.

use crate::error::{Error, Result};
use crate::Tensor;
use backflow_kernels::{matmul, matmul_backward, Element};

impl<T: Element> Tensor<T> {
    /// The matrix product `self · other` of an `[m, k]` and a `[k, n]` tensor, of shape
    /// `[m, n]`. An `Error::Shape` names both shapes when either is not 2-D or the inner
    /// dimensions differ.
    #[track_caller]
    pub fn matmul(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        let shape_error = |reason: &str| Error::Shape {
            op: "matmul",
            lhs: self.shape().to_vec(),
            rhs: other.shape().to_vec(),
            reason: reason.into(),
        };
        let (&[m, k], &[k2, n]) = (self.shape(), other.shape()) else {
            return Err(shape_error("both operands must be 2-D"));
        };
        if k != k2 {
            return Err(shape_error(
                "the columns of the left operand must equal the rows of the right",
            ));
        }
        if crate::tensor::checked_len::<T>("matmul", &[m, n]).is_err() {
            return Err(shape_error(&format!(
                "the output [{m}, {n}] has too many elements"
            )));
        }
        let data = matmul(self.data(), other.data(), m, k, n);
        let (a, b) = (self.clone(), other.clone());
        Ok(Tensor::from_op(
            "matmul",
            data,
            vec![m, n],
            &[self, other],
            move |gy, ctx| {
                // y = a·b, so ∂L/∂a = gy·bᵀ and ∂L/∂b = aᵀ·gy
                let (na, nb) = (ctx.needs[0], ctx.needs[1]);
                if ctx.create_graph {
                    let ga = na.then(|| gy.matmul(&b.t()?)).transpose()?;
                    let gb = nb.then(|| a.t()?.matmul(gy)).transpose()?;
                    return Ok(vec![ga, gb]);
                }
                let (ga, gb) = matmul_backward(a.data(), b.data(), gy.data(), m, k, n, na, nb);
                Ok(vec![
                    ga.map(|g| Tensor::raw(g, vec![m, k])),
                    gb.map(|g| Tensor::raw(g, vec![k, n])),
                ])
            },
        ))
    }
}
