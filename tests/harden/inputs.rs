//! Other inputs: duplicate parameter names in safetensors, `from_op` data that
//! does not fill its shape, and `requires_grad` on an intermediate result.

use crate::common;

use backflow::nn::{from_safetensors, save_weights, to_safetensors, Linear, Module, Sequential};
use backflow::Tensor;
use std::panic::{catch_unwind, AssertUnwindSafe};

fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn assert_names(e: &backflow::Error, op: &str, shape: &str) {
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{op}:")),
        "`{msg}` does not name {op}"
    );
    assert!(msg.contains(shape), "`{msg}` does not name {shape}");
}

fn twice() -> Sequential {
    Sequential::new()
        .push_named("fc", Linear::new(3, 2, 0))
        .push_named("fc", Linear::new(2, 2, 1))
}

#[test]
fn saving_duplicate_parameter_names_is_an_error_naming_the_duplicate() {
    let model = twice();
    // Used to panic inside safetensors.
    let e = to_safetensors(&model).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("save_weights: two parameters are named `fc.weight`"),
        "{msg}"
    );
    assert!(msg.contains("[2, 2]"), "{msg}");
    let path = std::env::temp_dir().join(format!("harden_dup_{}.safetensors", std::process::id()));
    let e = save_weights(&model, &path).unwrap_err();
    assert!(e.to_string().contains("`fc.weight`"), "{e}");
    assert!(!path.exists());
}

#[test]
fn loading_into_duplicate_parameter_names_is_an_error_naming_the_duplicate() {
    let one = Sequential::new().push_named("fc", Linear::new(2, 2, 0));
    let bytes = to_safetensors(&one).unwrap();
    let model = Sequential::new()
        .push_named("fc", Linear::new(2, 2, 3))
        .push_named("fc", Linear::new(2, 2, 4));
    let before: Vec<Vec<f32>> = model
        .named_parameters()
        .iter()
        .map(|(_, p)| p.get().to_vec())
        .collect();
    let e = from_safetensors(&model, &bytes).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("load_weights: two parameters are named `fc.weight`"),
        "{e}"
    );
    let after: Vec<Vec<f32>> = model
        .named_parameters()
        .iter()
        .map(|(_, p)| p.get().to_vec())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn distinct_names_still_round_trip() {
    let model = Sequential::new()
        .push_named("a", Linear::new(3, 2, 0))
        .push_named("b", Linear::new(2, 2, 1));
    let bytes = to_safetensors(&model).unwrap();
    let other = Sequential::new()
        .push_named("a", Linear::new(3, 2, 5))
        .push_named("b", Linear::new(2, 2, 6));
    from_safetensors(&other, &bytes).unwrap();
    let values = |m: &Sequential| -> Vec<Vec<f32>> {
        m.named_parameters()
            .iter()
            .map(|(_, p)| p.get().to_vec())
            .collect()
    };
    assert_eq!(values(&model), values(&other));
}

#[test]
fn requires_grad_on_an_intermediate_keeps_the_graph() {
    for opts in common::configs() {
        let x = Tensor::<f64>::scalar(2.0).requires_grad();
        let h = (&x * 3.0).requires_grad();
        assert!(!h.is_leaf());
        (&h * &h).backward_with(&opts).unwrap();
        // d(9x²)/dx = 18x = 36; used to be None (h had become a new leaf).
        assert_eq!(x.grad().map(|g| g.item()), Some(36.0), "{opts:?}");
        assert!(h.grad().is_none());
    }
}

#[test]
fn requires_grad_on_a_leaf_keeps_its_gradient() {
    let x = Tensor::<f64>::scalar(2.0).requires_grad();
    (&x * &x).backward().unwrap();
    let again = x.clone().requires_grad();
    assert_eq!(again.grad().map(|g| g.item()), Some(4.0));
    (&again * 1.0).backward().unwrap();
    assert_eq!(x.grad().map(|g| g.item()), Some(5.0));
    // A fresh leaf from a computed value still comes from detach().
    let fresh = (&x * 3.0).detach().requires_grad();
    assert!(fresh.is_leaf() && fresh.needs_grad());
    (&fresh * 2.0).backward().unwrap();
    assert_eq!(fresh.grad().map(|g| g.item()), Some(2.0));
    assert_eq!(x.grad().map(|g| g.item()), Some(5.0));
}

#[test]
fn from_op_data_that_does_not_fill_its_shape_is_an_error_with_try_from_op() {
    let x = Tensor::<f32>::zeros(&[2]).requires_grad();
    let e = Tensor::try_from_op("short", vec![1.0], vec![2], &[&x], |gy, _| {
        Ok(vec![Some(gy.clone())])
    })
    .unwrap_err();
    assert_names(&e, "short", "[2]");
    let e = Tensor::try_from_op(
        "wrapped",
        vec![1.0],
        vec![274_177, 67_280_421_310_721],
        &[&x],
        |gy, _| Ok(vec![Some(gy.clone())]),
    )
    .unwrap_err();
    assert_names(&e, "wrapped", "[274177, 67280421310721]");
    let msg = panic_message(|| {
        Tensor::from_op("short", vec![1.0], vec![2], &[&x], |gy, _| {
            Ok(vec![Some(gy.clone())])
        });
    });
    assert!(
        msg.starts_with("short: 1 values do not fill the output shape [2]"),
        "{msg}"
    );
}
