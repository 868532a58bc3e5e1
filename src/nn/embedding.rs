//! `Embedding`: a learned table of vectors looked up by index (`index_select` on its rows,
//! whose backward scatter-adds into the rows that were read).

use super::module::Module;
use super::{normal_typed, Param};
use crate::{Element, Error, Result, Tensor};

/// A table of `count` learned vectors of `dim` values, initialised `N(0, 1)` as PyTorch's
/// `nn.Embedding`. Parameter: `weight`, `[count, dim]`.
///
/// ```
/// use backflow::nn::{Embedding, Module};
/// use backflow::Tensor;
/// let table = Embedding::new(10, 4, 0);
/// let v = table.lookup(&[3, 3, 7]).unwrap();
/// assert_eq!(v.shape(), &[3, 4]);
/// v.sum().backward().unwrap();
/// // Row 3 was read twice, row 7 once, the rest never.
/// let g = table.weight.grad().unwrap();
/// assert_eq!(&g.data()[12..16], &[2.0; 4]);
/// assert_eq!(&g.data()[28..32], &[1.0; 4]);
/// assert_eq!(&g.data()[0..4], &[0.0; 4]);
/// // As a module, the input holds the indices (whole numbers) in any shape.
/// let ids = Tensor::from_vec(vec![1.0, 2.0, 0.0, 9.0], &[2, 2]).unwrap();
/// assert_eq!(table.forward(&ids).unwrap().shape(), &[2, 2, 4]);
/// ```
#[derive(Clone, Debug)]
pub struct Embedding<T: Element = f32> {
    /// `[count, dim]`.
    pub weight: Param<T>,
}

impl Embedding {
    /// An f32 table of `count` vectors of `dim` values, drawn from `seed`.
    pub fn new(count: usize, dim: usize, seed: u64) -> Self {
        Self::new_typed(count, dim, seed)
    }
}

impl<T: Element> Embedding<T> {
    /// [`Embedding::new`] for any element type.
    pub fn new_typed(count: usize, dim: usize, seed: u64) -> Self {
        Self {
            weight: Param::from(normal_typed(&[count, dim], 1.0, seed)),
        }
    }

    /// The vectors at `ids`, `[ids.len(), dim]`; an index past the table is an error
    /// naming it.
    pub fn lookup(&self, ids: &[usize]) -> Result<Tensor<T>> {
        self.weight.get().index_select(0, ids)
    }
}

impl<T: Element> Module<T> for Embedding<T> {
    /// `x` holds whole-number indices in any shape; the result has that shape plus `dim`.
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let ids = x
            .data()
            .iter()
            .map(|&v| {
                let f = v.to_f64();
                (f >= 0.0 && f.fract() == 0.0 && f < usize::MAX as f64)
                    .then_some(f as usize)
                    .ok_or_else(|| Error::Invalid {
                        op: "Embedding",
                        message: format!("index {v} is not a whole number from 0"),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut shape = x.shape().to_vec();
        shape.push(self.weight.shape()[1]);
        self.lookup(&ids)?.reshape(&shape)
    }

    fn named_parameters(&self) -> Vec<(String, Param<T>)> {
        vec![("weight".to_string(), self.weight.clone())]
    }
}
