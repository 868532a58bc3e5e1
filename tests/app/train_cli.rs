//! `backflow train` and `eval` as a user runs them: progress on a pipe, `--checkpoint` and
//! `--resume` in one process, and `eval` on the split stored by `train --save`.

use crate::scratch::{s, scratch};
use safetensors::SafeTensors;
use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary with `args` (stdout and stderr piped, so never a terminal).
fn backflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backflow"))
        .args(args)
        .output()
        .expect("the backflow binary starts")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and checks success; returns stdout.
fn ok(args: &[&str]) -> String {
    let o = backflow(args);
    assert!(o.status.success(), "{args:?}: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// The value after `prefix` on the line that starts with it.
fn field(output: &str, prefix: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line `{prefix}` in:\n{output}"))
        .trim()
        .to_string()
}

/// A small T1 run: 2 branches of 8, 2 threads.
const SMALL: [&str; 7] = [
    "train",
    "--branches",
    "2",
    "--hidden",
    "8",
    "--threads",
    "2",
];

fn small(extra: &[&str]) -> Vec<String> {
    SMALL.iter().chain(extra).map(|a| a.to_string()).collect()
}

fn ok_small(extra: &[&str]) -> String {
    let args = small(extra);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn piped_train_prints_a_line_per_epoch_with_the_mean_loss() {
    let out = ok_small(&["--epochs", "3"]);
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("epoch ")).collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (n, line) in lines.iter().enumerate() {
        assert!(line.starts_with(&format!("epoch   {}/3", n + 1)), "{line}");
        assert!(line.contains(" loss ") && line.ends_with(" s)"), "{line}");
    }
    // The last epoch's line shows its mean loss, which the summary prints too.
    let loss = lines[2]
        .split(" loss ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert_eq!(
        field(&out, "final loss    :"),
        format!("{loss} (mean of the last epoch)")
    );
}

/// The tensors of a safetensors file, by name, as bytes.
fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut all: Vec<(String, Vec<u8>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.data().to_vec()))
        .collect();
    all.sort();
    all
}

#[test]
fn resume_from_a_checkpoint_ends_as_the_straight_run() {
    let dir = scratch("resume");
    let (ckpt, resumed_w, straight_w) = (
        dir.join("run.ckpt"),
        dir.join("resumed.safetensors"),
        dir.join("straight.safetensors"),
    );
    let first = ok_small(&["--epochs", "2", "--checkpoint", s(&ckpt)]);
    assert_eq!(field(&first, "checkpoint    :"), s(&ckpt));
    assert!(ckpt.is_file());
    let resumed = ok_small(&[
        "--epochs",
        "4",
        "--checkpoint",
        s(&ckpt),
        "--resume",
        "--save",
        s(&resumed_w),
    ]);
    assert_eq!(field(&resumed, "resumed at    :"), "epoch 3");
    // Two epochs of 1,437 rows in batches of 64.
    assert!(
        field(&resumed, "training time :").contains("(46 steps)"),
        "{resumed}"
    );
    let epochs: Vec<&str> = resumed
        .lines()
        .filter(|l| l.starts_with("epoch "))
        .collect();
    assert!(
        epochs.len() == 2 && epochs[0].starts_with("epoch   3/4"),
        "{resumed}"
    );
    let straight = ok_small(&["--epochs", "4", "--save", s(&straight_w)]);
    for line in ["final loss    :", "test accuracy :"] {
        assert_eq!(field(&resumed, line), field(&straight, line), "{line}");
    }
    assert!(
        tensors(&resumed_w) == tensors(&straight_w),
        "the resumed weights are bitwise the straight run's"
    );
    // Resuming past the end says so.
    let o = backflow(
        &small(&["--epochs", "4", "--checkpoint", s(&ckpt), "--resume"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already holds 4 epochs"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_checkpoint_is_a_clear_error() {
    let dir = scratch("badckpt");
    let ckpt = dir.join("t1.ckpt");
    ok_small(&["--epochs", "1", "--checkpoint", s(&ckpt)]);
    // Another model's checkpoint: an error naming the file, before any step.
    let o = backflow(&[
        "train",
        "--model",
        "moe",
        "--epochs",
        "2",
        "--threads",
        "1",
        "--checkpoint",
        s(&ckpt),
        "--resume",
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("--resume")
            && e.contains("t1.ckpt")
            && e.contains("not a checkpoint of this model"),
        "{e}"
    );
    assert!(!stdout(&o).contains("epoch "), "{}", stdout(&o));
    // A T1 of another size.
    let o = backflow(&[
        "train",
        "--branches",
        "3",
        "--hidden",
        "8",
        "--epochs",
        "2",
        "--checkpoint",
        s(&ckpt),
        "--resume",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("t1.ckpt"), "{}", stderr(&o));
    // Another seed.
    let o = backflow(
        &small(&[
            "--epochs",
            "2",
            "--seed",
            "9",
            "--checkpoint",
            s(&ckpt),
            "--resume",
        ])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--seed 0, not 9"), "{}", stderr(&o));
    // Weights, not a checkpoint.
    let weights = dir.join("w.safetensors");
    ok_small(&["--epochs", "1", "--save", s(&weights)]);
    let o = backflow(
        &small(&["--epochs", "2", "--checkpoint", s(&weights), "--resume"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not a training checkpoint"),
        "{}",
        stderr(&o)
    );
    // Paths that cannot work: usage errors naming the flag, before any work.
    for (path, resume) in [
        (dir.join("no/such/folder/x.ckpt"), false),
        (dir.clone(), true),
        (dir.clone(), false),
    ] {
        let mut args = small(&["--epochs", "1", "--checkpoint", s(&path)]);
        if resume {
            args.push("--resume".into());
        }
        let o = backflow(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("'--checkpoint'"), "{}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    }
    // --resume needs --checkpoint.
    let o = backflow(&["train", "--resume"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--checkpoint"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_uses_the_seed_stored_by_train_save() {
    let dir = scratch("evalseed");
    let weights = dir.join("t1.safetensors");
    let trained = ok_small(&["--epochs", "2", "--seed", "5", "--save", s(&weights)]);
    // No --seed: the stored one, silently.
    let o = backflow(&["eval", "--load", s(&weights)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("test split of seed 5 (360 rows)"), "{out}");
    assert_eq!(
        field(&out, "test accuracy :"),
        field(&trained, "test accuracy :")
    );
    assert_eq!(
        field(&out, "trained with  :"),
        "t1, 2 branches x hidden 8, 2 epochs, batch 64, Adam lr 0.01, seed 5"
    );
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    // The same seed given: no warning.
    let o = backflow(&["eval", "--load", s(&weights), "--seed", "5"]);
    assert!(
        o.status.success() && stderr(&o).is_empty(),
        "{}",
        stderr(&o)
    );
    // Another seed: used, with a warning on stderr.
    let o = backflow(&["eval", "--load", s(&weights), "--seed", "6"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("test split of seed 6"),
        "{}",
        stdout(&o)
    );
    let e = stderr(&o);
    assert!(
        e.starts_with("warning:") && e.contains("--seed 6 overrides the seed 5"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_of_weights_without_metadata_keeps_the_old_behaviour() {
    use backflow_app::train::{train_digits, TrainConfig};
    let dir = scratch("evalplain");
    let weights = dir.join("plain.safetensors");
    let config = TrainConfig {
        branches: 2,
        hidden: 8,
        epochs: 1,
        threads: 1,
        ..TrainConfig::default()
    };
    let (model, _) = train_digits(&config, |_| {}).unwrap();
    backflow::nn::save_weights(&model, &weights).unwrap();
    for (seed, shown) in [(None, "0"), (Some("4"), "4")] {
        let mut args = vec!["eval", "--load", s(&weights)];
        args.extend(seed.map(|v| ["--seed", v]).into_iter().flatten());
        let o = backflow(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.contains(&format!("test split of seed {shown} ")),
            "{out}"
        );
        assert!(!out.contains("trained with"), "{out}");
        assert!(stderr(&o).is_empty(), "no warning: {}", stderr(&o));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
