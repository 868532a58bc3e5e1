//! Memory safety: shapes whose element count overflows `usize` are errors (or
//! documented panics naming the op and the shape), never a wrapped length that reaches a
//! kernel or GEMM.

use backflow::nn::linear;
use backflow::{Error, Tensor};
use std::panic::{catch_unwind, AssertUnwindSafe};

const BIG: usize = 1 << 32;

fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn assert_names(e: &Error, op: &str, shape: &str) {
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{op}:")),
        "`{msg}` does not name {op}"
    );
    assert!(msg.contains(shape), "`{msg}` does not name {shape}");
}

#[test]
fn matmul_whose_output_count_wraps_is_an_error_not_a_segfault() {
    let a = Tensor::<f32>::zeros(&[BIG, 0]);
    let b = Tensor::<f32>::zeros(&[0, BIG]);
    let e = a.matmul(&b).unwrap_err();
    assert_names(&e, "matmul", "[4294967296, 0]");
    assert!(e.to_string().contains("[0, 4294967296]"), "{e}");
}

#[test]
fn linear_whose_output_count_wraps_is_an_error_not_a_segfault() {
    let x = Tensor::<f32>::zeros(&[BIG, 0]);
    let w = Tensor::<f32>::zeros(&[BIG, 0]);
    let e = linear(&x, &w, None).unwrap_err();
    assert_names(&e, "linear", "[4294967296, 0]");
    assert!(e.to_string().contains("too many elements"), "{e}");
}

#[test]
fn matmul_and_linear_with_an_empty_inner_dimension_still_work() {
    let y = Tensor::<f32>::zeros(&[3, 0])
        .matmul(&Tensor::zeros(&[0, 2]))
        .unwrap();
    assert_eq!((y.shape(), y.to_vec()), (&[3, 2][..], vec![0.0; 6]));
    let b = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[2]).unwrap();
    let y = linear(&Tensor::zeros(&[2, 0]), &Tensor::zeros(&[2, 0]), Some(&b)).unwrap();
    assert_eq!(y.to_vec(), vec![1.0, 2.0, 1.0, 2.0]);
}

#[test]
fn try_zeros_of_an_overflowing_shape_is_an_error_naming_op_and_shape() {
    let e = Tensor::<f32>::try_zeros(&[BIG, BIG]).unwrap_err();
    assert_names(&e, "zeros", "[4294967296, 4294967296]");
    let e = Tensor::<f32>::try_zeros(&[usize::MAX, 2]).unwrap_err();
    assert_names(&e, "zeros", &format!("[{}, 2]", usize::MAX));
    // Fits usize as a count, but not as bytes of f32.
    let e = Tensor::<f32>::try_full(&[1 << 62], 1.0).unwrap_err();
    assert_names(&e, "full", "[4611686018427387904]");
}

#[test]
fn zeros_of_an_overflowing_shape_panics_naming_op_and_shape() {
    // Used to return a tensor with 0 elements for a shape of 2^64.
    let msg = panic_message(|| drop(Tensor::<f32>::zeros(&[BIG, BIG])));
    assert!(
        msg.starts_with("zeros: shape [4294967296, 4294967296]"),
        "{msg}"
    );
    // Used to panic with Vec's bare "capacity overflow".
    let msg = panic_message(|| drop(Tensor::<f32>::zeros(&[usize::MAX, 2])));
    assert!(msg.starts_with("zeros: shape ["), "{msg}");
    let msg = panic_message(|| drop(Tensor::<f64>::ones(&[BIG, BIG, 2])));
    assert!(msg.starts_with("ones: shape [4294967296"), "{msg}");
    let msg = panic_message(|| drop(Tensor::<f64>::randn(&[BIG, BIG], 1)));
    assert!(msg.starts_with("randn: shape [4294967296"), "{msg}");
}

#[test]
fn from_vec_rejects_a_shape_whose_count_wraps_to_the_data_length() {
    // 274177 * 67280421310721 = 2^64 + 1, which wrapped to 1.
    let e = Tensor::from_vec(vec![7.0f32], &[274_177, 67_280_421_310_721]).unwrap_err();
    assert_names(&e, "from_vec", "[274177, 67280421310721]");
}

#[test]
fn reshape_rejects_a_shape_whose_count_wraps() {
    let x = Tensor::<f32>::scalar(7.0).requires_grad();
    let e = x.reshape(&[274_177, 67_280_421_310_721]).unwrap_err();
    assert_names(&e, "reshape", "[274177, 67280421310721]");
}

#[test]
fn broadcasting_to_an_overflowing_shape_is_an_error() {
    let a = Tensor::<f32>::zeros(&[BIG, 1, 0]);
    let b = Tensor::<f32>::zeros(&[1, BIG, 1]);
    // [BIG, BIG, 0] has no elements: allowed.
    assert_eq!((&a + &b).numel(), 0);
    let a = Tensor::<f32>::ones(&[1]).reshape(&[1, 1]).unwrap();
    let e = a.broadcast_to(&[BIG, BIG]).unwrap_err();
    assert_names(&e, "broadcast_to", "[4294967296, 4294967296]");
    let col = Tensor::<f32>::zeros(&[BIG, 1, 0]).sum_axis(2).unwrap();
    let row = Tensor::<f32>::zeros(&[1, BIG, 0]).sum_axis(2);
    // The second sum has [1, BIG] (fits); an outer product of the two overflows.
    let e = col.try_mul(&row.unwrap()).unwrap_err();
    assert_names(&e, "mul", "[4294967296, 1]");
    assert!(e.to_string().contains("[4294967296, 4294967296]"), "{e}");
}

#[test]
fn reducing_an_empty_tensor_to_an_overflowing_shape_is_an_error() {
    let x = Tensor::<f32>::zeros(&[BIG, BIG, 0]);
    let e = x.sum_axis(2).unwrap_err();
    assert_names(&e, "sum_axis", "[4294967296, 4294967296]");
    assert_eq!(x.sum_axis(0).unwrap().shape(), &[BIG, 0]);
    assert_eq!(x.sum().item(), 0.0);
}

#[test]
fn concat_whose_axis_length_overflows_is_an_error() {
    let part = Tensor::<f32>::zeros(&[0, usize::MAX / 2 + 1]);
    let e = Tensor::concat(&[&part, &part], 1).unwrap_err();
    assert_names(&e, "concat", "overflow");
    let part = Tensor::<f32>::zeros(&[BIG, 0]);
    let both = Tensor::concat(&[&part, &part], 0).unwrap();
    assert_eq!(both.shape(), &[2 * BIG, 0]);
}

#[test]
fn concat_and_sum_axis_of_empty_tensors_with_huge_dimensions_return_at_once() {
    // No elements, but usize::MAX rows before the axis: concat and its backward used to
    // loop over every one of them (found by tests/api/fuzz_api.rs).
    let a = Tensor::<f64>::zeros(&[usize::MAX, 1, 0]).requires_grad();
    let b = Tensor::<f64>::zeros(&[usize::MAX, 2, 0]).requires_grad();
    let c = Tensor::concat(&[&a, &b], 1).unwrap();
    assert_eq!(c.shape(), &[usize::MAX, 3, 0]);
    let s = c.sum_axis(1).unwrap();
    assert_eq!(s.shape(), &[usize::MAX, 0]);
    s.sum().backward().unwrap();
    assert_eq!(a.grad().unwrap().shape(), &[usize::MAX, 1, 0]);
    assert_eq!(b.grad().unwrap().shape(), &[usize::MAX, 2, 0]);
}

#[test]
fn sum_axis_of_an_empty_tensor_whose_inner_block_count_wraps_is_empty() {
    // len * inner = 2^32 * 2^32 wrapped to 0: "chunk size must be non-zero" (found by
    // tests/api/fuzz_api.rs).
    let x = Tensor::<f32>::zeros(&[0, BIG, BIG]).requires_grad();
    let s = x.sum_axis(1).unwrap();
    assert_eq!((s.shape(), s.numel()), (&[0, BIG][..], 0));
    s.sum().backward().unwrap();
    assert_eq!(x.grad().unwrap().shape(), &[0, BIG, BIG]);
}

#[test]
fn flatten_of_an_empty_tensor_whose_merged_size_overflows_is_an_error() {
    // 0 elements, so the tensor exists; merging the two 2^40 axes would wrap to 0.
    let x = Tensor::<f32>::zeros(&[0, 1 << 40, 1 << 40]);
    let e = x.flatten(1, 2).unwrap_err();
    assert_names(&e, "flatten", "[0, 1099511627776, 1099511627776]");
    // Merging across the empty axis is fine: the product is 0.
    assert_eq!(x.flatten(0, 1).unwrap().shape(), &[0, 1 << 40]);
}
