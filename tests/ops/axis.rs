//! Ops along one axis: `softmax_axis`, `log_softmax_axis`, `sum_dim`, `mean_dim`,
//! `max_dim`, `min_dim` and `argmax`, and the whole-tensor `max` and `min`: values, shapes
//! with and without `keepdim`, errors, and first and second derivatives against finite
//! differences.

use crate::ops_common::*;
use backflow::{Error, Tensor};

#[test]
fn softmax_axis_equals_softmax_of_the_transpose() {
    let x = normal(&[2, 3, 4], 1);
    for axis in 0..3 {
        let via_t = x
            .transpose(axis, 2)
            .unwrap()
            .softmax()
            .transpose(axis, 2)
            .unwrap();
        assert_close(
            &x.softmax_axis(axis).unwrap().to_vec(),
            &via_t.to_vec(),
            1e-12,
        );
        let via_t = x
            .transpose(axis, 2)
            .unwrap()
            .log_softmax()
            .transpose(axis, 2)
            .unwrap();
        assert_close(
            &x.log_softmax_axis(axis).unwrap().to_vec(),
            &via_t.to_vec(),
            1e-12,
        );
    }
    // Lanes along axis 1 sum to 1.
    let s = x.softmax_axis(1).unwrap().sum_dim(1, false).unwrap();
    assert_close(&s.to_vec(), &[1.0; 8], 1e-12);
}

#[test]
fn softmax_axis_is_stable_for_large_logits() {
    let x = t64(vec![1000.0, -1000.0, 999.0, 0.0], &[2, 2]);
    let y = x.softmax_axis(0).unwrap();
    let e = (-1.0f64).exp();
    assert_close(
        &y.to_vec(),
        &[1.0 / (1.0 + e), 0.0, e / (1.0 + e), 1.0],
        1e-12,
    );
    assert!(x
        .log_softmax_axis(0)
        .unwrap()
        .data()
        .iter()
        .all(|v| v.is_finite()));
}

#[test]
fn softmaxes_gradients_match_finite_differences() {
    let x = normal(&[2, 3, 4], 2);
    for axis in 0..3 {
        check(&format!("softmax_axis {axis}"), &[&x], |v| {
            v[0].softmax_axis(axis)
        });
        check(&format!("log_softmax_axis {axis}"), &[&x], |v| {
            v[0].log_softmax_axis(axis)
        });
    }
    let x = normal(&[3, 2], 3);
    check_second("softmax_axis 0", &[&x], |v| v[0].softmax_axis(0));
    check_second("log_softmax_axis 0", &[&x], |v| v[0].log_softmax_axis(0));
}

#[test]
fn sum_and_mean_keep_or_drop_the_axis() {
    let x = t64((0..6).map(f64::from).collect(), &[2, 3]);
    let s = x.sum_dim(0, true).unwrap();
    assert_eq!((s.shape(), s.to_vec()), (&[1, 3][..], vec![3.0, 5.0, 7.0]));
    let m = x.mean_dim(1, false).unwrap();
    assert_eq!((m.shape(), m.to_vec()), (&[2][..], vec![1.0, 4.0]));
    assert_eq!(x.mean_dim(1, true).unwrap().shape(), &[2, 1]);
}

#[test]
fn reductions_gradients_match_finite_differences() {
    let x = normal(&[2, 3, 4], 4);
    for axis in 0..3 {
        for keepdim in [false, true] {
            let name = format!("axis {axis} keepdim {keepdim}");
            check(&format!("sum_dim {name}"), &[&x], |v| {
                v[0].sum_dim(axis, keepdim)
            });
            check(&format!("mean_dim {name}"), &[&x], |v| {
                v[0].mean_dim(axis, keepdim)
            });
            check(&format!("max_dim {name}"), &[&x], |v| {
                v[0].max_dim(axis, keepdim)
            });
            check(&format!("min_dim {name}"), &[&x], |v| {
                v[0].min_dim(axis, keepdim)
            });
        }
    }
    let x = normal(&[3, 2], 5);
    check_second("mean_dim", &[&x], |v| v[0].mean_dim(0, true));
    check_second("max_dim", &[&x], |v| v[0].max_dim(1, false));
    check_second("min_dim", &[&x], |v| v[0].min_dim(0, true));
    // max_dim inside a nonlinear function: its second derivative flows through the max.
    check_second("exp of max", &[&x], |v| Ok(v[0].max_dim(1, true)?.exp()));
}

#[test]
fn max_and_min_send_the_gradient_to_the_first_extremum() {
    // Ties in every lane: [3, 3, 1] and [0, 2, 2], and a column tie along axis 0.
    let x = t64(vec![3.0, 3.0, 1.0, 0.0, 2.0, 2.0], &[2, 3]);
    for opts in schedulers() {
        let leaf = x.detach().requires_grad();
        let w = t64(vec![10.0, 20.0], &[2]);
        (&leaf.max_dim(1, false).unwrap() * &w)
            .sum()
            .backward_with(&opts)
            .unwrap();
        assert_eq!(
            leaf.grad().unwrap().to_vec(),
            vec![10.0, 0.0, 0.0, 0.0, 20.0, 0.0]
        );
        let leaf = x.detach().requires_grad();
        leaf.min_dim(0, true)
            .unwrap()
            .sum()
            .backward_with(&opts)
            .unwrap();
        assert_eq!(
            leaf.grad().unwrap().to_vec(),
            vec![0.0, 0.0, 1.0, 1.0, 1.0, 0.0]
        );
    }
}

#[test]
fn whole_tensor_max_and_min_share_the_gradient_evenly_among_ties() {
    // PyTorch's max() and min() without a dimension: each of k tied extrema gets gy / k.
    let x = t64(vec![3.0, 1.0, 3.0, -2.0, 3.0, -2.0], &[2, 3]);
    for opts in schedulers() {
        let leaf = x.detach().requires_grad();
        let m = leaf.max().unwrap();
        assert_eq!((m.shape(), m.item()), (&[][..], 3.0));
        (&m * 6.0).backward_with(&opts).unwrap();
        assert_eq!(
            leaf.grad().unwrap().to_vec(),
            vec![2.0, 0.0, 2.0, 0.0, 2.0, 0.0]
        );
        let leaf = x.detach().requires_grad();
        let m = leaf.min().unwrap();
        assert_eq!(m.item(), -2.0);
        m.backward_with(&opts).unwrap();
        assert_eq!(
            leaf.grad().unwrap().to_vec(),
            vec![0.0, 0.0, 0.0, 0.5, 0.0, 0.5]
        );
    }
    // A NaN is the extremum, and the gradient goes to the NaNs.
    let leaf = t64(vec![1.0, f64::NAN, 5.0], &[3]).requires_grad();
    let m = leaf.max().unwrap();
    assert!(m.item().is_nan());
    m.backward().unwrap();
    assert_eq!(leaf.grad().unwrap().to_vec(), vec![0.0, 1.0, 0.0]);
    assert!(t64(vec![1.0, f64::NAN], &[2])
        .min()
        .unwrap()
        .item()
        .is_nan());
    // A single element, and a 0-D tensor.
    assert_eq!(T64::scalar(-4.0).max().unwrap().item(), -4.0);
    // Without ties the gradient is one-hot: finite differences, first and second order
    // (the second is 0 in x, as max is piecewise linear).
    let x = normal(&[3, 4], 70);
    check("max", &[&x], |v| v[0].max());
    check("min", &[&x], |v| v[0].min());
    check_second("max of sin", &[&x], |v| v[0].sin().max());
    check_second("min of x·x", &[&x], |v| (&v[0] * &v[0]).min());
    // The create_graph gradient shares ties evenly too.
    let leaf = x.detach().requires_grad();
    let tied = backflow::Tensor::concat(&[&leaf, &leaf], 0).unwrap();
    let g = backflow::grad(
        &[&tied.max().unwrap()],
        &[],
        &[&leaf],
        &backflow::BackwardOptions::new().create_graph(true),
    )
    .unwrap();
    // Each of the two copies of the maximum gets ½; both are the same leaf element, which
    // so gets 1 (2 if the ties were not shared).
    let total: f64 = g[0].as_ref().unwrap().data().iter().sum();
    assert!((total - 1.0).abs() < 1e-15, "{total}");
    assert_eq!(
        g[0].as_ref()
            .unwrap()
            .data()
            .iter()
            .filter(|&&v| v == 1.0)
            .count(),
        1
    );
}

#[test]
fn whole_tensor_max_and_min_reject_an_empty_tensor() {
    let x = Tensor::<f32>::zeros(&[2, 0]);
    assert_names(&x.max().unwrap_err(), &["max", "[2, 0]", "empty"]);
    assert_names(&x.min().unwrap_err(), &["min", "[2, 0]", "empty"]);
}

#[test]
fn argmax_indexes_the_remaining_dims_row_major() {
    let x = t64(
        vec![0.0, 9.0, 1.0, 4.0, 4.0, 2.0, 7.0, 7.0, 8.0, 1.0, 1.0, 1.0],
        &[2, 2, 3],
    );
    assert_eq!(x.argmax(2).unwrap(), vec![1, 0, 2, 0]);
    assert_eq!(x.argmax(1).unwrap(), vec![1, 0, 1, 0, 0, 0]);
    assert_eq!(x.argmax(0).unwrap(), vec![1, 0, 1, 0, 0, 0]);
    // argmax agrees with max_dim.
    let m = x.max_dim(2, false).unwrap();
    let picked: Vec<f64> = x
        .argmax(2)
        .unwrap()
        .iter()
        .enumerate()
        .map(|(l, &j)| x.data()[l * 3 + j])
        .collect();
    assert_eq!(picked, m.to_vec());
}

#[test]
fn errors_name_the_op_axis_and_shape() {
    let x = Tensor::<f32>::zeros(&[2, 3]);
    for (op, e) in [
        ("sum_dim", x.sum_dim(2, false).unwrap_err()),
        ("mean_dim", x.mean_dim(5, true).unwrap_err()),
        ("max_dim", x.max_dim(2, false).unwrap_err()),
        ("min_dim", x.min_dim(2, false).unwrap_err()),
        ("softmax_axis", x.softmax_axis(2).unwrap_err()),
        ("log_softmax_axis", x.log_softmax_axis(3).unwrap_err()),
        ("argmax", x.argmax(2).unwrap_err()),
    ] {
        assert!(matches!(e, Error::Axis { op: o, .. } if o == op), "{e}");
        assert_names(&e, &[op, "[2, 3]"]);
    }
    let empty = Tensor::<f32>::zeros(&[2, 0]);
    assert_names(
        &empty.max_dim(1, false).unwrap_err(),
        &["max_dim", "empty", "[2, 0]"],
    );
    assert_names(&empty.argmax(1).unwrap_err(), &["argmax", "empty"]);
    assert_eq!(empty.sum_dim(1, true).unwrap().to_vec(), vec![0.0, 0.0]);
}
