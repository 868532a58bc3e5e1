//! `backflow train --save` then `backflow eval --load`: the saved weights, evaluated on the
//! same seed's test split, give the accuracy training printed; and the library's loader
//! rebuilds the model's shape from the file.

use backflow_app::train::{
    digits_test_split, evaluate, load_wide_model, train_digits, TrainConfig,
};
use std::process::Command;

/// The percentage printed on the `test accuracy :` line.
fn accuracy_line(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("test accuracy : "))
        .unwrap_or_else(|| panic!("no accuracy line in:\n{stdout}"))
        .trim()
        .to_string()
}

#[test]
fn eval_reproduces_the_accuracy_of_saved_weights() {
    let dir = std::env::temp_dir().join(format!("backflow-train-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let weights = dir.join("t1-small.safetensors");
    let bin = env!("CARGO_BIN_EXE_backflow");
    let train = Command::new(bin)
        .args([
            "train",
            "--branches",
            "3",
            "--hidden",
            "16",
            "--epochs",
            "2",
        ])
        .args(["--threads", "2", "--seed", "5", "--save"])
        .arg(&weights)
        .output()
        .unwrap();
    let train_out = String::from_utf8_lossy(&train.stdout);
    assert!(
        train.status.success(),
        "{train_out}{}",
        String::from_utf8_lossy(&train.stderr)
    );
    assert!(weights.is_file());

    let eval = Command::new(bin)
        .args(["eval", "--seed", "5", "--load"])
        .arg(&weights)
        .output()
        .unwrap();
    let eval_out = String::from_utf8_lossy(&eval.stdout);
    assert!(
        eval.status.success(),
        "{eval_out}{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    assert_eq!(accuracy_line(&eval_out), accuracy_line(&train_out));
    assert!(
        eval_out.contains("test split of seed 5 (360 rows)"),
        "{eval_out}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_loader_reads_the_shape_from_the_file() {
    let config = TrainConfig {
        branches: 2,
        hidden: 8,
        epochs: 1,
        threads: 1,
        seed: 3,
        ..TrainConfig::default()
    };
    let (model, report) = train_digits(&config, |_| {}).unwrap();
    let path = std::env::temp_dir().join(format!("backflow-loader-{}.st", std::process::id()));
    backflow::nn::save_weights(&model, &path).unwrap();
    let loaded = load_wide_model(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(
        backflow::nn::Module::num_parameters(&loaded),
        backflow::nn::Module::num_parameters(&model)
    );
    let test = digits_test_split(3).unwrap();
    assert_eq!(evaluate(&loaded, &test).unwrap(), report.test_accuracy);
    assert!(load_wide_model(std::path::Path::new("Cargo.toml")).is_err());
}

/// A safetensors file holding only T1's head and first branch layer, of the shapes a T1
/// model of `branches` branches of `hidden` units would have.
fn t1_claim(path: &std::path::Path, branches: usize, hidden: usize) {
    use safetensors::tensor::{Dtype, TensorView};
    let head = vec![0u8; 10 * branches * hidden * 4];
    let first = vec![0u8; hidden * 64 * 4];
    let views = [
        (
            "head.weight",
            TensorView::new(Dtype::F32, vec![10, branches * hidden], &head).unwrap(),
        ),
        (
            "branches.0.0.weight",
            TensorView::new(Dtype::F32, vec![hidden, 64], &first).unwrap(),
        ),
    ];
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn a_file_claiming_a_model_larger_than_train_allows_is_refused_before_building_it() {
    let path = std::env::temp_dir().join(format!("backflow-claim-{}.st", std::process::id()));
    for (branches, hidden, claim) in [
        (262_144, 1, "262144 branches"),
        (1, 513, "513 hidden units per layer"),
    ] {
        t1_claim(&path, branches, hidden);
        for e in [
            load_wide_model(&path).err().expect("refused").to_string(),
            backflow_app::models::load_model(&path)
                .err()
                .expect("refused")
                .to_string(),
        ] {
            assert!(
                e.contains(claim) && e.contains("at most") && e.contains("backflow-claim"),
                "{e}"
            );
        }
    }
    // At the caps the size is accepted; the file then fails as incomplete.
    t1_claim(&path, 256, 2);
    let e = load_wide_model(&path).err().expect("refused").to_string();
    assert!(
        !e.contains("at most") && e.contains("missing tensor"),
        "{e}"
    );
    std::fs::remove_file(&path).ok();
}

#[test]
fn two_runs_with_one_seed_save_the_same_bytes() {
    // Training is deterministic, and the file's header (the recipe's metadata included)
    // is written in sorted order, so the two files are equal byte for byte.
    let dir = std::env::temp_dir().join(format!("backflow-same-bytes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let save = |name: &str, threads: &str| {
        let path = dir.join(name);
        let o = Command::new(env!("CARGO_BIN_EXE_backflow"))
            .args(["train", "--branches", "3", "--hidden", "8", "--epochs", "1"])
            .args(["--seed", "9", "--threads", threads, "--save"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(path).unwrap()
    };
    let first = save("a.safetensors", "1");
    assert!(first == save("b.safetensors", "2"), "files differ");
    std::fs::remove_dir_all(&dir).ok();
}
