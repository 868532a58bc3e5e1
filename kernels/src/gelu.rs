//! GELU with the tanh approximation (PyTorch's `approximate='tanh'`), beside its backward:
//! `gelu(x) = ½ x (1 + tanh(u))` with `u = √(2/π) (x + 0.044715 x³)`.

use crate::Element;

/// `√(2/π)`.
pub const GELU_SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of the tanh approximation.
pub const GELU_CUBIC: f64 = 0.044_715;

fn tanh_u<T: Element>(x: T) -> T {
    let (c, a) = (T::from_f64(GELU_SQRT_2_OVER_PI), T::from_f64(GELU_CUBIC));
    (c * (x + a * x * x * x)).tanh()
}

/// `½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))`, elementwise.
pub fn gelu<T: Element>(x: &[T]) -> Vec<T> {
    let half = T::from_f64(0.5);
    x.iter()
        .map(|&v| half * v * (T::one() + tanh_u(v)))
        .collect()
}

/// Gradient of [`gelu`] given the input `x` and upstream `gy`.
pub fn gelu_backward<T: Element>(x: &[T], gy: &[T]) -> Vec<T> {
    // With t = tanh(u): d/dx = ½(1 + t) + ½ x (1 - t²) √(2/π) (1 + 3·0.044715 x²)
    let (c, a3, half) = (
        T::from_f64(GELU_SQRT_2_OVER_PI),
        T::from_f64(3.0 * GELU_CUBIC),
        T::from_f64(0.5),
    );
    x.iter()
        .zip(gy)
        .map(|(&v, &g)| {
            let t = tanh_u(v);
            let d =
                half * (T::one() + t) + half * v * (T::one() - t * t) * c * (T::one() + a3 * v * v);
            g * d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, check_vjp, values};

    #[test]
    fn known_values_and_backward() {
        // torch.nn.functional.gelu(torch.tensor([-1., 0., 1., 3.]), approximate='tanh')
        let y = gelu(&[-1.0f64, 0.0, 1.0, 3.0]);
        assert_close(&y, &[-0.158_808, 0.0, 0.841_192, 2.996_363], 1e-6);
        let (x, gy) = (
            values(10, 1).iter().map(|v| 3.0 * v).collect::<Vec<_>>(),
            values(10, 2),
        );
        check_vjp(gelu, &x, &gy, &gelu_backward(&x, &gy));
    }
}
