//! `index_select` and `gather`: values against PyTorch's semantics, scatter-add gradients
//! (repeated indices sum) in closed form and against finite differences, errors.

use crate::ops_common::*;
use backflow::{Error, Tensor};

#[test]
fn index_select_repeats_and_reorders() {
    let x = t64((0..12).map(f64::from).collect(), &[3, 4]);
    let y = x.index_select(0, &[2, 2, 0]).unwrap();
    assert_eq!(y.shape(), &[3, 4]);
    assert_eq!(y.data()[..8], [8.0, 9.0, 10.0, 11.0, 8.0, 9.0, 10.0, 11.0]);
    let y = x.index_select(1, &[3, 1]).unwrap();
    assert_eq!(y.to_vec(), vec![3.0, 1.0, 7.0, 5.0, 11.0, 9.0]);
    assert_eq!(x.index_select(1, &[]).unwrap().shape(), &[3, 0]);
}

#[test]
fn index_select_gradient_sums_repeated_indices() {
    // y = x[[1, 1, 0]] along axis 0, L = Σ w ⊙ y: dL/dx_1 = w_0 + w_1, dL/dx_0 = w_2.
    for opts in schedulers() {
        let x = normal(&[3, 2], 1).requires_grad();
        let w = t64(vec![1.0, 2.0, 10.0, 20.0, 100.0, 200.0], &[3, 2]);
        let y = x.index_select(0, &[1, 1, 0]).unwrap();
        (&y * &w).sum().backward_with(&opts).unwrap();
        assert_eq!(
            x.grad().unwrap().to_vec(),
            vec![100.0, 200.0, 11.0, 22.0, 0.0, 0.0]
        );
    }
}

#[test]
fn gather_follows_pytorch() {
    // torch.gather(x, 1, [[0, 0], [1, 0]]) on [[1, 2], [3, 4]] = [[1, 1], [4, 3]].
    let x = t64(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    assert_eq!(
        x.gather(1, &[0, 0, 1, 0], &[2, 2]).unwrap().to_vec(),
        vec![1.0, 1.0, 4.0, 3.0]
    );
    // Along axis 0: y[i][j] = x[index[i][j]][j].
    assert_eq!(
        x.gather(0, &[1, 0, 1, 1], &[2, 2]).unwrap().to_vec(),
        vec![3.0, 2.0, 3.0, 4.0]
    );
    // Picking one class per row, as a loss does: index shape [2, 1].
    let logits = t64(vec![0.1, 0.7, 0.2, 0.5, 0.3, 0.2], &[2, 3]);
    assert_eq!(
        logits.gather(1, &[1, 0], &[2, 1]).unwrap().to_vec(),
        vec![0.7, 0.5]
    );
}

#[test]
fn gradients_match_finite_differences() {
    let x = normal(&[4, 3, 2], 2);
    check("index_select axis 0", &[&x], |v| {
        v[0].index_select(0, &[3, 0, 3, 1, 3])
    });
    check("index_select axis 1", &[&x], |v| {
        v[0].index_select(1, &[2, 2])
    });
    check("index_select axis 2", &[&x], |v| {
        v[0].index_select(2, &[1, 0, 1])
    });
    let index = [0, 2, 2, 1, 0, 0, 1, 1, 2, 2, 0, 1];
    check("gather axis 1", &[&x], |v| {
        v[0].gather(1, &index, &[3, 2, 2])
    });
    check("gather axis 0 with repeats", &[&x], |v| {
        v[0].gather(0, &[3, 3, 0, 3], &[2, 1, 2])
    });
    check_second("index_select", &[&x], |v| v[0].index_select(0, &[3, 0, 3]));
    check_second("gather", &[&x], |v| v[0].gather(1, &index, &[3, 2, 2]));
    // An embedding followed by a softmax over the picked rows.
    let table = normal(&[5, 3], 3);
    check_second("embedding·softmax", &[&table], |v| {
        v[0].index_select(0, &[4, 1, 4])?.softmax_axis(0)
    });
}

#[test]
fn errors_name_the_op_index_and_shape() {
    let x = Tensor::<f32>::zeros(&[3, 2]);
    assert!(matches!(
        x.index_select(2, &[0]),
        Err(Error::Axis {
            op: "index_select",
            ..
        })
    ));
    assert_names(
        &x.index_select(0, &[1, 3]).unwrap_err(),
        &["index_select", "index 3", "[3, 2]"],
    );
    assert!(matches!(
        x.gather(2, &[0], &[1, 1]),
        Err(Error::Axis { op: "gather", .. })
    ));
    assert_names(
        &x.gather(0, &[0; 2], &[2]).unwrap_err(),
        &["gather", "[3, 2]", "[2]"],
    );
    assert_names(
        &x.gather(0, &[0; 3], &[1, 3]).unwrap_err(),
        &["gather", "[1, 3]"],
    );
    assert_names(
        &x.gather(0, &[0; 3], &[2, 2]).unwrap_err(),
        &["gather", "3 indices", "[2, 2]"],
    );
    assert_names(
        &x.gather(0, &[0, 5], &[2, 1]).unwrap_err(),
        &["gather", "index 5", "[3, 2]"],
    );
}
