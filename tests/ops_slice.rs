//! `narrow`, `split`, `chunk` and `stack`: values, errors, and first and second
//! derivatives against finite differences.

mod ops_common;
use backflow::{Error, Tensor};
use ops_common::*;

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
