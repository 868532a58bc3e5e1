//! Weights round-trip through safetensors files: same predictions after loading, PyTorch
//! names, and strict loading.

use backflow::nn::{from_safetensors, load_weights, save_weights, to_safetensors, Linear, Module};
use backflow::{no_grad, Tensor};
use backflow_app::train::wide_model;
use safetensors::SafeTensors;

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "backflow-{}-{name}.safetensors",
        std::process::id()
    ))
}

#[test]
fn save_then_load_gives_identical_predictions() {
    let trained = wide_model(64, 3, 8, 10, 1);
    let x = Tensor::randn(&[5, 64], 3);
    let before = no_grad(|| trained.forward(&x)).unwrap();
    let path = temp_path("roundtrip");
    save_weights(&trained, &path).unwrap();
    let fresh = wide_model(64, 3, 8, 10, 2);
    assert_ne!(
        no_grad(|| fresh.forward(&x)).unwrap().to_vec(),
        before.to_vec()
    );
    load_weights(&fresh, &path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        no_grad(|| fresh.forward(&x)).unwrap().to_vec(),
        before.to_vec()
    );
}

#[test]
fn files_use_pytorch_names_shapes_and_dtype() {
    let bytes = to_safetensors(&wide_model(64, 2, 8, 10, 0)).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(
        names,
        [
            "branches.0.0.bias",
            "branches.0.0.weight",
            "branches.0.2.bias",
            "branches.0.2.weight",
            "branches.1.0.bias",
            "branches.1.0.weight",
            "branches.1.2.bias",
            "branches.1.2.weight",
            "head.bias",
            "head.weight"
        ]
    );
    let head = file.tensor("head.weight").unwrap();
    assert_eq!(head.shape(), &[10, 16]); // [out, in], as torch.nn.Linear
    assert_eq!(head.dtype(), safetensors::Dtype::F32);
}

#[test]
fn loading_is_strict_and_all_or_nothing() {
    let layer = Linear::new(3, 2, 0);
    let original = layer.weight.get().to_vec();
    let wrong_shape = to_safetensors(&Linear::new(4, 2, 1)).unwrap();
    let err = from_safetensors(&layer, &wrong_shape)
        .unwrap_err()
        .to_string();
    assert!(err.contains("weight") && err.contains("[2, 3]"), "{err}");
    assert_eq!(layer.weight.get().to_vec(), original);
    let extra = to_safetensors(&wide_model(3, 1, 2, 2, 0)).unwrap();
    assert!(from_safetensors(&layer, &extra).is_err());
    assert!(from_safetensors(&layer, b"not a safetensors file").is_err());
    assert!(load_weights(&layer, temp_path("does-not-exist")).is_err());
}
