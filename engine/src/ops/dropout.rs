//! Dropout with a seeded mask and inverted scaling: kept elements are scaled by `1/(1-p)`
//! during training, so evaluation is the identity.

use crate::error::{Error, Result};
use crate::Tensor;
use backflow_kernels::Element;
use rand::{rngs::StdRng, Rng, SeedableRng};

impl<T: Element> Tensor<T> {
    /// Zeroes each element with probability `p` and scales the rest by `1/(1-p)`, drawing the
    /// mask from a generator seeded with `seed` (same seed, same mask). The identity when
    /// `training` is false or `p == 0`. The gradient is `gy` times the same mask. An
    /// `Error::Invalid` names a `p` outside `[0, 1)`.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::ones(&[1000]);
    /// let y = x.dropout(0.5, true, 7).unwrap();
    /// let kept = y.to_vec().iter().filter(|&&v| v == 2.0).count();
    /// assert!(kept > 400 && kept < 600);
    /// assert_eq!(y.to_vec(), x.dropout(0.5, true, 7).unwrap().to_vec());
    /// assert_eq!(x.dropout(0.5, false, 7).unwrap().to_vec(), x.to_vec());
    /// assert!(x.dropout(1.0, true, 7).is_err());
    /// ```
    #[track_caller]
    pub fn dropout(&self, p: f64, training: bool, seed: u64) -> Result<Tensor<T>> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::Invalid {
                op: "dropout",
                message: format!(
                    "the drop probability must be in [0, 1), got {p} (shape {:?})",
                    self.shape()
                ),
            });
        }
        if !training || p == 0.0 {
            return Ok(self.clone());
        }
        let scale = T::from_f64(1.0 / (1.0 - p));
        let mut rng = StdRng::seed_from_u64(seed);
        let mask: Vec<T> = (0..self.numel())
            .map(|_| {
                if rng.random::<f64>() < p {
                    T::zero()
                } else {
                    scale
                }
            })
            .collect();
        let data = self
            .data()
            .iter()
            .zip(&mask)
            .map(|(&x, &m)| x * m)
            .collect();
        let mask = Tensor::raw_with(mask, self.shape());
        Ok(Tensor::from_op(
            "dropout",
            data,
            self.shape().to_vec(),
            &[self],
            move |gy, _| {
                // y = x ⊙ m with a constant mask, so ∂L/∂x = gy ⊙ m (recorded under create_graph)
                Ok(vec![Some(gy * &mask)])
            },
        ))
    }
}
