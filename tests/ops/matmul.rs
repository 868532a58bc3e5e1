//! Batched `matmul`: values against per-entry 2-D products, broadcasting of the batch
//! dimensions, errors, and first and second derivatives against finite differences.

use crate::ops_common::*;

/// The `[m, n]` product of entry `i` along the first batch dimension of a 3-D tensor.
fn entry(t: &T64, i: usize) -> T64 {
    let (r, c) = (t.shape()[1], t.shape()[2]);
    t64(t.data()[i * r * c..(i + 1) * r * c].to_vec(), &[r, c])
}

#[test]
fn each_batch_entry_is_the_2d_product() {
    let (a, b) = (normal(&[3, 2, 4], 1), normal(&[3, 4, 5], 2));
    let y = a.matmul(&b).unwrap();
    assert_eq!(y.shape(), &[3, 2, 5]);
    for i in 0..3 {
        let want = entry(&a, i).matmul(&entry(&b, i)).unwrap();
        assert_close(&entry(&y, i).to_vec(), &want.to_vec(), 1e-12);
    }
}

#[test]
fn batch_dimensions_broadcast() {
    // [2, 1, 3, 4] · [5, 4, 2] -> [2, 5, 3, 2]; a 2-D operand is shared by every entry.
    let (a, b) = (normal(&[2, 1, 3, 4], 3), normal(&[5, 4, 2], 4));
    let y = a.matmul(&b).unwrap();
    assert_eq!(y.shape(), &[2, 5, 3, 2]);
    let a1 = t64(a.data()[12..24].to_vec(), &[3, 4]);
    let b3 = t64(b.data()[3 * 8..4 * 8].to_vec(), &[4, 2]);
    let at = (5 + 3) * 6;
    assert_close(
        &y.data()[at..at + 6],
        &a1.matmul(&b3).unwrap().to_vec(),
        1e-12,
    );
    let w = normal(&[4, 2], 5);
    let shared = a.matmul(&w).unwrap();
    assert_eq!(shared.shape(), &[2, 1, 3, 2]);
    assert_close(
        &shared.data()[6..12],
        &a1.matmul(&w).unwrap().to_vec(),
        1e-12,
    );
}

#[test]
fn errors_name_the_shapes() {
    let e = normal(&[2, 3, 4], 1)
        .matmul(&normal(&[2, 5, 2], 2))
        .unwrap_err();
    assert_names(&e, &["matmul", "[2, 3, 4]", "[2, 5, 2]", "columns"]);
    let e = normal(&[2, 3, 4], 1)
        .matmul(&normal(&[3, 4, 2], 2))
        .unwrap_err();
    assert_names(&e, &["matmul", "[2, 3, 4]", "[3, 4, 2]", "broadcast"]);
    let e = normal(&[4], 1).matmul(&normal(&[2, 4, 2], 2)).unwrap_err();
    assert_names(&e, &["matmul", "[4]", "2-D"]);
}

#[test]
fn empty_batches_and_matrices() {
    let y = normal(&[0, 2, 3], 1).matmul(&normal(&[3, 4], 2)).unwrap();
    assert_eq!(y.shape(), &[0, 2, 4]);
    let a = normal(&[2, 3, 0], 3).requires_grad();
    let y = a.matmul(&normal(&[2, 0, 4], 4)).unwrap();
    assert_eq!(y.to_vec(), vec![0.0; 24]);
    y.sum().backward().unwrap();
    assert_eq!(a.grad().unwrap().shape(), &[2, 3, 0]);
}

#[test]
fn gradients_match_finite_differences() {
    let (a, b) = (normal(&[2, 3, 4], 10), normal(&[2, 4, 2], 11));
    check("batched", &[&a, &b], |v| v[0].matmul(&v[1]));
    let (a, b) = (normal(&[2, 1, 2, 3], 12), normal(&[3, 3, 2], 13));
    check("broadcast batches", &[&a, &b], |v| v[0].matmul(&v[1]));
    let (a, b) = (normal(&[3, 2, 3], 14), normal(&[3, 2], 15));
    check("batch times matrix", &[&a, &b], |v| v[0].matmul(&v[1]));
    check("matrix times batch", &[&b, &a], |v| v[0].matmul(&v[1]));
}

#[test]
fn second_derivatives_match_finite_differences() {
    let (a, b) = (normal(&[2, 2, 3], 20), normal(&[1, 3, 2], 21));
    check_second("batched matmul", &[&a, &b], |v| v[0].matmul(&v[1]));
    // Attention-like: softmax-free q·kᵀ·v over two heads.
    let q = normal(&[2, 3, 2], 22);
    check_second("q·qᵀ·q", &[&q], |v| {
        v[0].matmul(&v[0].transpose(1, 2)?)?.matmul(&v[0])
    });
}
