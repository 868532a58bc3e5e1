//! Comparison masks (`gt`, `lt`, `ge`, `le`, `eq_mask`) and `where_cond`: values with
//! broadcasting, no gradient through masks, gradients routed by the condition.

use crate::ops_common::*;
use backflow::{Error, Tensor};

#[test]
fn masks_broadcast_and_carry_no_gradient() {
    let x = t64(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).requires_grad();
    let col = t64(vec![2.0, 5.0], &[2, 1]);
    assert_eq!(
        x.gt(&col).unwrap().to_vec(),
        vec![0.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    );
    assert_eq!(
        x.lt(&col).unwrap().to_vec(),
        vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    );
    assert_eq!(
        x.ge(&col).unwrap().to_vec(),
        vec![0.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    );
    assert_eq!(
        x.le(&col).unwrap().to_vec(),
        vec![1.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    );
    assert_eq!(
        x.eq_mask(&col).unwrap().to_vec(),
        vec![0.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    );
    let m = x.gt(&col).unwrap();
    assert!(!m.needs_grad());
    assert_eq!(m.shape(), &[2, 3]);
    let nan = Tensor::scalar(f64::NAN);
    assert_eq!(x.ge(&nan).unwrap().sum().item(), 0.0);
}

#[test]
fn where_cond_picks_and_routes_gradients() {
    // y = where(c, a, b) with c = [1, 0, NaN, 0]: ∂L/∂a = w·c≠0, ∂L/∂b = w·(c == 0).
    let c = t64(vec![1.0, 0.0, f64::NAN, 0.0], &[4]);
    let w = t64(vec![1.0, 2.0, 3.0, 4.0], &[4]);
    for opts in schedulers() {
        let (a, b) = (
            normal(&[4], 1).requires_grad(),
            normal(&[], 2).requires_grad(),
        );
        let y = Tensor::where_cond(&c, &a, &b).unwrap();
        assert_eq!(y.data()[..3], [a.data()[0], b.data()[0], a.data()[2]]);
        (&y * &w).sum().backward_with(&opts).unwrap();
        assert_eq!(a.grad().unwrap().to_vec(), vec![1.0, 0.0, 3.0, 0.0]);
        assert_eq!(b.grad().unwrap().to_vec(), vec![6.0]); // broadcast: 2 + 4
    }
}

#[test]
fn where_cond_gradients_match_finite_differences() {
    let (a, b) = (normal(&[3, 4], 3), normal(&[3, 1], 4));
    let cond = normal(&[4], 5).gt(&Tensor::scalar(0.0)).unwrap();
    let c2 = cond.clone();
    check("where_cond", &[&a, &b], move |v| {
        Tensor::where_cond(&c2, &v[0], &v[1])
    });
    check_second("where_cond", &[&a, &b], move |v| {
        Tensor::where_cond(&cond, &v[0].sin(), &(&v[1] * &v[1]))
    });
    // A mask computed from the input itself: a piecewise function of x.
    let x = normal(&[2, 3], 6);
    check("relu by mask", &[&x], |v| {
        Tensor::where_cond(&v[0].gt(&Tensor::scalar(0.0))?, &v[0], &Tensor::scalar(0.0))
    });
}

#[test]
fn errors_name_the_op_and_shapes() {
    let (a, b) = (Tensor::<f32>::zeros(&[2, 3]), Tensor::<f32>::zeros(&[4]));
    for (op, e) in [
        ("gt", a.gt(&b).unwrap_err()),
        ("lt", a.lt(&b).unwrap_err()),
        ("ge", a.ge(&b).unwrap_err()),
        ("le", a.le(&b).unwrap_err()),
        ("eq_mask", a.eq_mask(&b).unwrap_err()),
    ] {
        assert!(matches!(e, Error::Shape { op: o, .. } if o == op), "{e}");
        assert_names(&e, &["[2, 3]", "[4]"]);
    }
    let e = Tensor::where_cond(&b, &a, &a).unwrap_err();
    assert_names(&e, &["where_cond", "[4]", "[2, 3]"]);
    let e = Tensor::where_cond(&a, &a, &b).unwrap_err();
    assert_names(&e, &["where_cond", "[2, 3]", "[4]"]);
}
