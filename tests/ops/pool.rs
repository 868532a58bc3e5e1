//! `max_pool2d` and `avg_pool2d`: values with stride and padding against a direct loop,
//! gradients against closed forms and finite differences (first and second order), errors.

use crate::ops_common::*;
use backflow::Tensor;

/// Pooling by its definition: `max` ignores the padding, the mean counts it as zeros.
fn direct(x: &T64, k: usize, stride: usize, pad: usize, max: bool) -> Vec<f64> {
    let &[n, c, h, w] = x.shape() else { panic!() };
    let (ho, wo) = (
        (h + 2 * pad - k) / stride + 1,
        (w + 2 * pad - k) / stride + 1,
    );
    let mut y = Vec::new();
    for plane in x.data().chunks(h * w).take(n * c) {
        for (i, j) in (0..ho).flat_map(|i| (0..wo).map(move |j| (i, j))) {
            let mut seen = Vec::new();
            for (p, q) in (0..k).flat_map(|p| (0..k).map(move |q| (p, q))) {
                let (r, s) = (
                    (i * stride + p) as isize - pad as isize,
                    (j * stride + q) as isize - pad as isize,
                );
                if r >= 0 && s >= 0 && (r as usize) < h && (s as usize) < w {
                    seen.push(plane[r as usize * w + s as usize]);
                }
            }
            y.push(if max {
                seen.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            } else {
                seen.iter().sum::<f64>() / (k * k) as f64
            });
        }
    }
    y
}

#[test]
fn values_match_the_definition() {
    let x = normal(&[2, 3, 7, 6], 1);
    for (k, stride, pad) in [
        (2, 2, 0),
        (3, 1, 1),
        (3, 2, 1),
        (5, 3, 2),
        (1, 1, 0),
        (2, 1, 1),
    ] {
        let y = x.max_pool2d(k, stride, pad).unwrap();
        assert_close(&y.to_vec(), &direct(&x, k, stride, pad, true), 0.0);
        let y = x.avg_pool2d(k, stride, pad).unwrap();
        assert_close(&y.to_vec(), &direct(&x, k, stride, pad, false), 1e-12);
        assert_eq!(y.shape()[2], (7 + 2 * pad - k) / stride + 1);
    }
}

#[test]
fn gradients_in_closed_form() {
    // max over [[1, 9], [9, 2]]: gradient to the first 9. avg with k = 2: 1/4 each.
    for opts in schedulers() {
        let x = t64(vec![1.0, 9.0, 9.0, 2.0], &[1, 1, 2, 2]).requires_grad();
        x.max_pool2d(2, 1, 0)
            .unwrap()
            .sum()
            .backward_with(&opts)
            .unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![0.0, 1.0, 0.0, 0.0]);
        let x = t64(vec![1.0, 9.0, 9.0, 2.0], &[1, 1, 2, 2]).requires_grad();
        x.avg_pool2d(2, 1, 0)
            .unwrap()
            .sum()
            .backward_with(&opts)
            .unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![0.25; 4]);
    }
}

#[test]
fn gradients_match_finite_differences() {
    let x = normal(&[2, 2, 5, 4], 2);
    for (k, stride, pad) in [(2, 2, 0), (3, 1, 1), (3, 2, 1)] {
        let name = format!("k {k} stride {stride} padding {pad}");
        check(&format!("max_pool2d {name}"), &[&x], |v| {
            v[0].max_pool2d(k, stride, pad)
        });
        check(&format!("avg_pool2d {name}"), &[&x], |v| {
            v[0].avg_pool2d(k, stride, pad)
        });
    }
    let x = normal(&[1, 2, 4, 4], 3);
    check_second("max_pool2d", &[&x], |v| v[0].max_pool2d(2, 1, 1));
    check_second("avg_pool2d", &[&x], |v| v[0].avg_pool2d(3, 1, 1));
    check_second("avg_pool2d of tanh", &[&x], |v| {
        v[0].tanh().avg_pool2d(2, 2, 0)
    });
}

#[test]
fn errors_name_the_op_and_sizes() {
    let x = Tensor::<f32>::zeros(&[1, 1, 4, 4]);
    assert_names(
        &x.max_pool2d(0, 1, 0).unwrap_err(),
        &["max_pool2d", "kernel 0"],
    );
    assert_names(
        &x.avg_pool2d(2, 0, 0).unwrap_err(),
        &["avg_pool2d", "stride 0"],
    );
    assert_names(
        &x.max_pool2d(3, 1, 2).unwrap_err(),
        &["max_pool2d", "half", "padding 2"],
    );
    assert_names(
        &x.avg_pool2d(5, 1, 0).unwrap_err(),
        &["avg_pool2d", "larger", "[1, 1, 4, 4]"],
    );
    assert_names(
        &Tensor::<f32>::zeros(&[4, 4])
            .max_pool2d(2, 2, 0)
            .unwrap_err(),
        &["max_pool2d", "[4, 4]"],
    );
}
