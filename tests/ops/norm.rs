//! `layer_norm`: values against the formula written with basic ops, gradients for the
//! input, weight and bias against finite differences (first and second order), errors.

use crate::ops_common::*;
use backflow::Tensor;

/// Layer norm over the last `k` dims written with basic ops: the reference.
fn reference(x: &T64, k: usize, w: Option<&T64>, b: Option<&T64>, eps: f64) -> T64 {
    let d: usize = x.shape()[x.rank() - k..].iter().product();
    let rows = x.numel() / d;
    let x2 = x.reshape(&[rows, d]).unwrap();
    let c = &x2 - &x2.mean_dim(1, true).unwrap();
    let var = (&c * &c).mean_dim(1, true).unwrap();
    let mut y = (&c / &(var + eps).sqrt()).reshape(x.shape()).unwrap();
    if let Some(w) = w {
        y = &y * w;
    }
    if let Some(b) = b {
        y = &y + b;
    }
    y
}

#[test]
fn values_match_the_formula() {
    let x = normal(&[2, 3, 4], 1);
    let (w, b) = (normal(&[3, 4], 2), normal(&[3, 4], 3));
    let y = x.layer_norm(2, Some(&w), Some(&b), 1e-5).unwrap();
    assert_close(
        &y.to_vec(),
        &reference(&x, 2, Some(&w), Some(&b), 1e-5).to_vec(),
        1e-12,
    );
    let (w, b) = (normal(&[4], 4), normal(&[4], 5));
    let y = x.layer_norm(1, Some(&w), Some(&b), 1e-5).unwrap();
    assert_close(
        &y.to_vec(),
        &reference(&x, 1, Some(&w), Some(&b), 1e-5).to_vec(),
        1e-12,
    );
    // Without weight and bias each row has mean 0 and (biased) variance 1.
    let y = x.layer_norm(1, None, None, 0.0).unwrap();
    let m = y.mean_dim(2, false).unwrap();
    assert_close(&m.to_vec(), &[0.0; 6], 1e-12);
    let v = (&y * &y).mean_dim(2, false).unwrap();
    assert_close(&v.to_vec(), &[1.0; 6], 1e-12);
}

#[test]
fn gradients_match_finite_differences() {
    let x = normal(&[3, 4], 6);
    let (w, b) = (normal(&[4], 7), normal(&[4], 8));
    check("x, w, b", &[&x, &w, &b], |v| {
        v[0].layer_norm(1, Some(&v[1]), Some(&v[2]), 1e-5)
    });
    check("x only", &[&x], |v| v[0].layer_norm(1, None, None, 1e-5));
    check("x and w", &[&x, &w], |v| {
        v[0].layer_norm(1, Some(&v[1]), None, 1e-5)
    });
    check("x and b", &[&x, &b], |v| {
        v[0].layer_norm(1, None, Some(&v[1]), 1e-5)
    });
    let x3 = normal(&[2, 2, 3], 9);
    let w2 = normal(&[2, 3], 10);
    check("two normalised dims", &[&x3, &w2], |v| {
        v[0].layer_norm(2, Some(&v[1]), None, 1e-3)
    });
    check("all dims", &[&x3], |v| v[0].layer_norm(3, None, None, 1e-3));
    let (x, w, b) = (normal(&[2, 3], 11), normal(&[3], 12), normal(&[3], 13));
    check_second("layer_norm", &[&x, &w, &b], |v| {
        v[0].layer_norm(1, Some(&v[1]), Some(&v[2]), 1e-3)
    });
    check_second("layer_norm without affine", &[&x], |v| {
        v[0].layer_norm(1, None, None, 1e-3)
    });
}

#[test]
fn errors_name_the_op_and_shapes() {
    let x = Tensor::<f32>::zeros(&[2, 3]);
    let w = Tensor::<f32>::ones(&[2]);
    assert_names(
        &x.layer_norm(0, None, None, 1e-5).unwrap_err(),
        &["layer_norm", "0", "[2, 3]"],
    );
    assert_names(
        &x.layer_norm(3, None, None, 1e-5).unwrap_err(),
        &["layer_norm", "3", "[2, 3]"],
    );
    assert_names(
        &x.layer_norm(1, Some(&w), None, 1e-5).unwrap_err(),
        &["layer_norm", "weight", "[2]", "[3]"],
    );
    assert_names(
        &x.layer_norm(1, None, Some(&w), 1e-5).unwrap_err(),
        &["layer_norm", "bias", "[2]"],
    );
    assert_names(
        &x.layer_norm(1, None, None, -1.0).unwrap_err(),
        &["layer_norm", "eps", "-1"],
    );
    assert_eq!(
        Tensor::<f32>::zeros(&[0, 3])
            .layer_norm(1, None, None, 1e-5)
            .unwrap()
            .shape(),
        &[0, 3]
    );
}
