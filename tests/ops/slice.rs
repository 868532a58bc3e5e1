//! `narrow`, `split`, `chunk`, `stack`, and the axis ops `unsqueeze`, `squeeze`,
//! `squeeze_all`, `flatten` and `permute`: values, errors, and first and second derivatives
//! against finite differences.

use crate::ops_common::*;
use backflow::{Error, Tensor};

fn iota(shape: &[usize]) -> T64 {
    let n = shape.iter().product::<usize>();
    t64((0..n).map(|v| v as f64).collect(), shape)
}

#[test]
fn narrow_split_and_chunk_pick_the_right_elements() {
    let x = iota(&[2, 5]);
    assert_eq!(
        x.narrow(1, 3, 2).unwrap().to_vec(),
        vec![3.0, 4.0, 8.0, 9.0]
    );
    assert_eq!(
        x.narrow(0, 1, 1).unwrap().to_vec(),
        vec![5.0, 6.0, 7.0, 8.0, 9.0]
    );
    let parts = x.split(1, &[1, 0, 4]).unwrap();
    assert_eq!(parts[0].to_vec(), vec![0.0, 5.0]);
    assert_eq!(parts[1].shape(), &[2, 0]);
    assert_eq!(
        parts[2].to_vec(),
        vec![1.0, 2.0, 3.0, 4.0, 6.0, 7.0, 8.0, 9.0]
    );
    let chunks = x.chunk(2, 1).unwrap();
    let shapes: Vec<&[usize]> = chunks.iter().map(|c| c.shape()).collect();
    assert_eq!(shapes, vec![&[2, 3][..], &[2, 2][..]]);
    // More chunks than elements: one element each (PyTorch's chunk).
    assert_eq!(x.chunk(9, 1).unwrap().len(), 5);
    assert_eq!(x.chunk(3, 0).unwrap().len(), 2);
    // Re-joining the pieces gives the tensor back.
    let refs: Vec<&T64> = chunks.iter().collect();
    assert_eq!(Tensor::concat(&refs, 1).unwrap().to_vec(), x.to_vec());
}

#[test]
fn stack_adds_an_axis() {
    let (a, b) = (iota(&[2, 2]), &iota(&[2, 2]) + 10.0);
    let s0 = Tensor::stack(&[&a, &b], 0).unwrap();
    assert_eq!(s0.shape(), &[2, 2, 2]);
    assert_eq!(
        s0.to_vec(),
        vec![0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0]
    );
    let s2 = Tensor::stack(&[&a, &b], 2).unwrap();
    assert_eq!(
        s2.to_vec(),
        vec![0.0, 10.0, 1.0, 11.0, 2.0, 12.0, 3.0, 13.0]
    );
    let s1 = Tensor::stack(&[&a, &b, &a], 1).unwrap();
    assert_eq!(s1.shape(), &[2, 3, 2]);
    assert_eq!(
        s1.narrow(1, 1, 1).unwrap().to_vec(),
        vec![10.0, 11.0, 12.0, 13.0]
    );
}

#[test]
fn gradients_match_finite_differences() {
    let x = normal(&[3, 4, 2], 1);
    check("narrow axis 1", &[&x], |v| v[0].narrow(1, 1, 2));
    check("narrow axis 0", &[&x], |v| v[0].narrow(0, 2, 1));
    check("narrow last axis", &[&x], |v| v[0].narrow(2, 1, 1));
    // Pieces recombined non-linearly, so each piece's gradient is distinct.
    check("split", &[&x], |v| {
        let p = v[0].split(1, &[1, 3])?;
        Ok(&p[0].exp() * &p[1].sum_dim(1, true)?)
    });
    check("chunk", &[&x], |v| {
        let p = v[0].chunk(2, 0)?;
        Ok(&p[0] * &p[1].sin().broadcast_to(&[2, 4, 2])?)
    });
    let (a, b) = (normal(&[2, 3], 2), normal(&[2, 3], 3));
    for axis in 0..3 {
        check(&format!("stack axis {axis}"), &[&a, &b], |v| {
            Tensor::stack(&[&v[0], &v[1], &v[0]], axis)
        });
    }
    check_second("narrow", &[&x], |v| v[0].narrow(1, 1, 2));
    check_second("stack·split", &[&a, &b], |v| {
        let s = Tensor::stack(&[&v[0], &v[1]], 1)?;
        let p = s.split(2, &[2, 1])?;
        Ok(&p[0].sum_dim(2, true)? * &p[1])
    });
}

#[test]
fn errors_name_the_op_and_shape() {
    let x = Tensor::<f32>::zeros(&[2, 3]);
    assert!(matches!(
        x.narrow(2, 0, 1),
        Err(Error::Axis { op: "narrow", .. })
    ));
    assert_names(
        &x.narrow(1, 2, 2).unwrap_err(),
        &["narrow", "axis 1", "[2, 3]"],
    );
    assert_names(
        &x.narrow(1, usize::MAX, 2).unwrap_err(),
        &["narrow", "[2, 3]"],
    );
    assert_names(
        &x.split(1, &[1, 1]).unwrap_err(),
        &["split", "[1, 1]", "[2, 3]"],
    );
    assert_names(
        &x.split(1, &[usize::MAX, 4]).unwrap_err(),
        &["split", "[2, 3]"],
    );
    assert_names(&x.chunk(0, 1).unwrap_err(), &["chunk", "0", "[2, 3]"]);
    assert!(matches!(
        x.chunk(1, 2),
        Err(Error::Axis { op: "chunk", .. })
    ));
    let y = Tensor::<f32>::zeros(&[3, 2]);
    assert_names(
        &Tensor::stack(&[&x, &y], 0).unwrap_err(),
        &["stack", "[2, 3]", "[3, 2]"],
    );
    assert!(matches!(
        Tensor::stack(&[&x], 3),
        Err(Error::Axis {
            op: "stack",
            axis: 3,
            ..
        })
    ));
    assert_names(
        &Tensor::<f32>::stack(&[], 0).unwrap_err(),
        &["stack", "at least one"],
    );
}

#[test]
fn unsqueeze_squeeze_and_flatten_keep_the_data_and_change_the_shape() {
    let x = iota(&[2, 1, 3]);
    let cases: Vec<(T64, &[usize])> = vec![
        (x.unsqueeze(0).unwrap(), &[1, 2, 1, 3]),
        (x.unsqueeze(3).unwrap(), &[2, 1, 3, 1]),
        (x.squeeze(1).unwrap(), &[2, 3]),
        // A dimension whose size is not 1 stays, as in PyTorch.
        (x.squeeze(0).unwrap(), &[2, 1, 3]),
        (iota(&[1, 2, 1]).squeeze_all(), &[2]),
        (x.flatten(0, 1).unwrap(), &[2, 3]),
        (x.flatten(1, 2).unwrap(), &[2, 3]),
        (x.flatten(0, 2).unwrap(), &[6]),
        (x.flatten(1, 1).unwrap(), &[2, 1, 3]),
        (T64::scalar(4.0).flatten(0, 0).unwrap(), &[1]),
        (T64::scalar(4.0).unsqueeze(0).unwrap(), &[1]),
    ];
    for (y, shape) in cases {
        assert_eq!(y.shape(), shape);
    }
    assert_eq!(x.flatten(0, 2).unwrap().to_vec(), x.to_vec());
    let x = normal(&[2, 1, 3], 40);
    check("unsqueeze", &[&x], |v| v[0].unsqueeze(1));
    check("squeeze", &[&x], |v| v[0].squeeze(1));
    check("squeeze_all", &[&x], |v| Ok(v[0].squeeze_all()));
    check("flatten", &[&x], |v| v[0].flatten(0, 2));
    check_second("flatten·sin", &[&x], |v| Ok(v[0].flatten(1, 2)?.sin()));
    check_second("unsqueeze·squeeze·sin", &[&x], |v| {
        Ok(v[0].unsqueeze(0)?.squeeze(2)?.sin())
    });
}

#[test]
fn permute_moves_axes_and_its_gradient_moves_them_back() {
    let x = iota(&[2, 3, 4]);
    let y = x.permute(&[2, 0, 1]).unwrap();
    assert_eq!(y.shape(), &[4, 2, 3]);
    // y[k][i][j] = x[i][j][k] = 12i + 4j + k.
    for k in 0..4 {
        for i in 0..2 {
            for j in 0..3 {
                assert_eq!(y.data()[k * 6 + i * 3 + j], (12 * i + 4 * j + k) as f64);
            }
        }
    }
    // Two axes swapped is the transpose.
    assert_eq!(
        x.permute(&[0, 2, 1]).unwrap().to_vec(),
        x.transpose(1, 2).unwrap().to_vec()
    );
    // The gradient of a weighted sum is the weights moved back by the inverse permutation.
    let leaf = x.detach().requires_grad();
    let w = iota(&[4, 2, 3]);
    (&leaf.permute(&[2, 0, 1]).unwrap() * &w)
        .sum()
        .backward()
        .unwrap();
    assert_eq!(
        leaf.grad().unwrap().to_vec(),
        w.permute(&[1, 2, 0]).unwrap().to_vec()
    );
    let x = normal(&[2, 3, 4], 41);
    check("permute", &[&x], |v| v[0].permute(&[2, 0, 1]));
    check("permute 4-d", &[&normal(&[2, 1, 3, 2], 42)], |v| {
        v[0].permute(&[3, 1, 0, 2])
    });
    check_second("permute·sin", &[&x], |v| {
        Ok(v[0].permute(&[1, 2, 0])?.sin())
    });
}

#[test]
fn axis_ops_reject_bad_axes_naming_op_and_shape() {
    let x = Tensor::<f32>::zeros(&[2, 3]);
    assert!(matches!(
        x.unsqueeze(3),
        Err(Error::Axis {
            op: "unsqueeze",
            axis: 3,
            ..
        })
    ));
    assert!(matches!(
        x.squeeze(2),
        Err(Error::Axis {
            op: "squeeze",
            axis: 2,
            ..
        })
    ));
    assert!(matches!(
        x.flatten(0, 2),
        Err(Error::Axis {
            op: "flatten",
            axis: 2,
            ..
        })
    ));
    assert_names(
        &x.flatten(1, 0).unwrap_err(),
        &["flatten", "1", "0", "[2, 3]"],
    );
    for dims in [&[0, 0][..], &[1], &[0, 1, 2], &[0, 2], &[]] {
        assert_names(
            &x.permute(dims).unwrap_err(),
            &["permute", &format!("{dims:?}"), "[2, 3]"],
        );
    }
}
