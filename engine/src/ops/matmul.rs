//! The matrix product: of two 2-D tensors, or batched over leading dimensions that
//! broadcast (NumPy's `matmul` for operands of rank ≥ 2).

use crate::error::{Error, Result};
use crate::Tensor;
use backflow_kernels::{
    batched_matmul, batched_matmul_backward, broadcast_shapes, matmul, matmul_backward, BatchPlan,
    Element,
};

impl<T: Element> Tensor<T> {
    /// The matrix product `self · other`.
    ///
    /// Two 2-D tensors `[m, k]` and `[k, n]` give `[m, n]`. Operands of higher rank are
    /// batches of matrices over their last two dimensions: the leading (batch) dimensions
    /// broadcast under NumPy rules, so `[b, h, m, k]` times `[k, n]` or `[1, h, k, n]` gives
    /// `[b, h, m, n]`. An `Error::Shape` names both shapes when either operand has rank below
    /// 2, the inner dimensions differ, or the batch dimensions do not broadcast.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let a = Tensor::<f32>::ones(&[2, 3, 4]); // two 3×4 matrices
    /// let b = Tensor::<f32>::ones(&[4, 5]);    // one 4×5 matrix, shared by both
    /// let y = a.matmul(&b).unwrap();
    /// assert_eq!(y.shape(), &[2, 3, 5]);
    /// assert_eq!(y.to_vec()[0], 4.0);
    /// ```
    #[track_caller]
    pub fn matmul(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        let shape_error = |reason: &str| Error::Shape {
            op: "matmul",
            lhs: self.shape().to_vec(),
            rhs: other.shape().to_vec(),
            reason: reason.into(),
        };
        let (ra, rb) = (self.rank(), other.rank());
        if ra < 2 || rb < 2 {
            return Err(shape_error(
                "both operands must be 2-D matrices or batches of them (rank 2 or more)",
            ));
        }
        let (&[m, k], &[k2, n]) = (&self.shape()[ra - 2..], &other.shape()[rb - 2..]) else {
            unreachable!("both ranks are at least 2");
        };
        if k != k2 {
            return Err(shape_error(
                "the columns of the left operand must equal the rows of the right",
            ));
        }
        if ra == 2 && rb == 2 {
            return self.matmul_2d(other, m, k, n, shape_error);
        }
        let (batch_a, batch_b) = (&self.shape()[..ra - 2], &other.shape()[..rb - 2]);
        let Some(batch) = broadcast_shapes(batch_a, batch_b) else {
            return Err(shape_error(
                "the batch dimensions (all but the last two) must broadcast",
            ));
        };
        let mut out_shape = batch.clone();
        out_shape.extend([m, n]);
        if crate::tensor::checked_len::<T>("matmul", &out_shape).is_err() {
            return Err(shape_error(&format!(
                "the output {out_shape:?} has too many elements"
            )));
        }
        if out_shape.contains(&0) {
            // No products to compute (or differentiate): the gradients are zeros.
            let (sa, sb) = (self.shape().to_vec(), other.shape().to_vec());
            return Ok(Tensor::from_op(
                "matmul",
                Vec::new(),
                out_shape,
                &[self, other],
                move |_, ctx| {
                    Ok(vec![
                        ctx.needs(0).then(|| Tensor::zeros(&sa)),
                        ctx.needs(1).then(|| Tensor::zeros(&sb)),
                    ])
                },
            ));
        }
        let plan = BatchPlan::new(batch_a, batch_b, &batch, m * k, k * n);
        let data = batched_matmul(self.data(), other.data(), &plan, m, k, n);
        let (a, b) = (self.clone(), other.clone());
        Ok(Tensor::from_op(
            "matmul",
            data,
            out_shape,
            &[self, other],
            move |gy, ctx| {
                // y = a·b per batch entry, so ∂L/∂a = gy·bᵀ and ∂L/∂b = aᵀ·gy, each summed
                // over the batch dimensions its operand was broadcast along
                let (na, nb) = (ctx.needs(0), ctx.needs(1));
                if ctx.create_graph {
                    let last_two = |t: &Tensor<T>| t.transpose(t.rank() - 2, t.rank() - 1);
                    let ga = na
                        .then(|| gy.matmul(&last_two(&b)?)?.sum_to(a.shape()))
                        .transpose()?;
                    let gb = nb
                        .then(|| last_two(&a)?.matmul(gy)?.sum_to(b.shape()))
                        .transpose()?;
                    return Ok(vec![ga, gb]);
                }
                let (ga, gb) = batched_matmul_backward(
                    a.data(),
                    b.data(),
                    gy.data(),
                    &plan,
                    (m, k, n),
                    na,
                    nb,
                );
                Ok(vec![
                    ga.map(|g| Tensor::raw_with(g, a.shape())),
                    gb.map(|g| Tensor::raw_with(g, b.shape())),
                ])
            },
        ))
    }

    /// The product of an `[m, k]` and a `[k, n]` matrix: one gemm.
    #[track_caller]
    fn matmul_2d(
        &self,
        other: &Tensor<T>,
        m: usize,
        k: usize,
        n: usize,
        shape_error: impl Fn(&str) -> Error,
    ) -> Result<Tensor<T>> {
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
