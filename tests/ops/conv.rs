//! `conv2d` over NCHW: values against a direct loop, stride, padding and groups, gradients
//! for input, weight and bias against finite differences (first and second order), errors.

use crate::ops_common::*;
use backflow::{Error, Tensor};

/// The convolution by its definition.
fn direct(x: &T64, w: &T64, stride: usize, pad: usize, groups: usize) -> Vec<f64> {
    let (&[n, c, h, wd], &[co, cg, kh, kw]) = (x.shape(), w.shape()) else {
        panic!()
    };
    let (ho, wo) = (
        (h + 2 * pad - kh) / stride + 1,
        (wd + 2 * pad - kw) / stride + 1,
    );
    let (xs, ws) = (x.data(), w.data());
    let mut y = vec![0.0; n * co * ho * wo];
    for b in 0..n {
        for o in 0..co {
            let g = o / (co / groups);
            for (i, j) in (0..ho).flat_map(|i| (0..wo).map(move |j| (i, j))) {
                let mut acc = 0.0;
                for (ci, p, q) in (0..cg)
                    .flat_map(|ci| (0..kh).flat_map(move |p| (0..kw).map(move |q| (ci, p, q))))
                {
                    let (r, s) = (
                        (i * stride + p) as isize - pad as isize,
                        (j * stride + q) as isize - pad as isize,
                    );
                    if r >= 0 && s >= 0 && (r as usize) < h && (s as usize) < wd {
                        let xv = xs[((b * c + g * cg + ci) * h + r as usize) * wd + s as usize];
                        acc += xv * ws[((o * cg + ci) * kh + p) * kw + q];
                    }
                }
                y[((b * co + o) * ho + i) * wo + j] = acc;
            }
        }
    }
    y
}

#[test]
fn values_match_the_definition() {
    for (stride, pad, groups, k) in [
        (1, 0, 1, 3),
        (1, 1, 1, 3),
        (2, 2, 1, 5),
        (1, 1, 2, 3),
        (2, 0, 4, 1),
    ] {
        let x = normal(&[2, 4, 6, 5], 1);
        let w = normal(&[8, 4 / groups, k, k], 2);
        let y = x.conv2d(&w, None, stride, pad, groups).unwrap();
        assert_close(&y.to_vec(), &direct(&x, &w, stride, pad, groups), 1e-12);
        let b = normal(&[8], 3);
        let yb = x.conv2d(&w, Some(&b), stride, pad, groups).unwrap();
        let plane = y.shape()[2] * y.shape()[3];
        for (i, (&u, &v)) in yb.data().iter().zip(y.data()).enumerate() {
            assert!((u - v - b.data()[(i / plane) % 8]).abs() < 1e-12);
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let x = normal(&[2, 2, 5, 4], 4);
    let (w, b) = (normal(&[3, 2, 3, 2], 5), normal(&[3], 6));
    check("conv2d", &[&x, &w, &b], |v| {
        v[0].conv2d(&v[1], Some(&v[2]), 1, 0, 1)
    });
    check("conv2d stride 2 padding 1", &[&x, &w, &b], |v| {
        v[0].conv2d(&v[1], Some(&v[2]), 2, 1, 1)
    });
    let wg = normal(&[4, 1, 3, 3], 7);
    check("conv2d 2 groups", &[&x, &wg], |v| {
        v[0].conv2d(&v[1], None, 1, 1, 2)
    });
    check("conv2d input only", &[&x], |v| {
        v[0].conv2d(&w, None, 1, 1, 1)
    });
    check("conv2d weight only", &[&w], |v| {
        x.conv2d(&v[0], None, 2, 0, 1)
    });
    let (x, w, b) = (
        normal(&[1, 2, 4, 4], 8),
        normal(&[2, 1, 3, 3], 9),
        normal(&[2], 10),
    );
    check_second("conv2d", &[&x, &w, &b], |v| {
        v[0].conv2d(&v[1], Some(&v[2]), 1, 1, 2)
    });
    let w2 = normal(&[2, 2, 3, 3], 11);
    check_second("conv2d·tanh·conv2d", &[&x, &w2], |v| {
        let h = v[0].conv2d(&v[1], None, 1, 1, 1)?.tanh();
        h.conv2d(&v[1].narrow(0, 0, 1)?, None, 2, 0, 1)
    });
}

#[test]
fn errors_name_the_op_and_shapes() {
    let x = Tensor::<f32>::zeros(&[1, 4, 5, 5]);
    let w = Tensor::<f32>::zeros(&[6, 4, 3, 3]);
    let e = x
        .conv2d(&Tensor::zeros(&[6, 3, 3, 3]), None, 1, 0, 1)
        .unwrap_err();
    assert!(matches!(e, Error::Shape { op: "conv2d", .. }));
    assert_names(&e, &["[1, 4, 5, 5]", "[6, 3, 3, 3]", "c_in/groups = 4"]);
    assert_names(
        &x.conv2d(&Tensor::zeros(&[6, 4, 3]), None, 1, 0, 1)
            .unwrap_err(),
        &["conv2d", "[6, 4, 3]"],
    );
    assert_names(
        &x.conv2d(&w, None, 0, 0, 1).unwrap_err(),
        &["conv2d", "stride (0)"],
    );
    assert_names(
        &x.conv2d(&w, None, 1, 0, 3).unwrap_err(),
        &["conv2d", "3 groups", "(4)"],
    );
    assert_names(
        &x.conv2d(&Tensor::zeros(&[6, 4, 9, 1]), None, 1, 1, 1)
            .unwrap_err(),
        &["conv2d", "9x1"],
    );
    assert_names(
        &x.conv2d(&w, Some(&Tensor::zeros(&[4])), 1, 0, 1)
            .unwrap_err(),
        &["conv2d", "bias", "[4]"],
    );
}

#[test]
fn empty_batch_and_channels() {
    let x = Tensor::<f32>::zeros(&[0, 2, 4, 4]).requires_grad();
    let w = Tensor::<f32>::ones(&[3, 2, 3, 3]).requires_grad();
    let b = Tensor::<f32>::ones(&[3]).requires_grad();
    let y = x.conv2d(&w, Some(&b), 1, 1, 1).unwrap();
    assert_eq!(y.shape(), &[0, 3, 4, 4]);
    y.sum().backward().unwrap();
    assert_eq!(w.grad().unwrap().to_vec(), vec![0.0; 54]);
    assert_eq!(b.grad().unwrap().to_vec(), vec![0.0; 3]);
    let y = Tensor::<f32>::ones(&[1, 2, 3, 3])
        .conv2d(&Tensor::zeros(&[0, 2, 1, 1]), None, 1, 0, 1)
        .unwrap();
    assert_eq!(y.shape(), &[1, 0, 3, 3]);
}
