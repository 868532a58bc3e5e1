//! `backflow train` and `eval` misused: one file for --save and --checkpoint, a resume
//! with another --batch or --lr, a --resume checkpoint that cannot be written again, and
//! weights whose stored recipe contradicts their tensors.

use crate::scratch::{s, scratch};
use safetensors::tensor::TensorView;
use safetensors::SafeTensors;
use std::path::Path;
use std::process::{Command, Output};

/// Runs a small T1 (2 branches of 8, 2 threads) `train` with `extra`, or `eval` where
/// `extra` starts with it; stdout and stderr piped.
fn backflow(extra: &[&str]) -> Output {
    let small = [
        "train",
        "--branches",
        "2",
        "--hidden",
        "8",
        "--threads",
        "2",
    ];
    let args: Vec<&str> = if extra.first() == Some(&"eval") {
        extra.to_vec()
    } else {
        small.iter().chain(extra).copied().collect()
    };
    Command::new(env!("CARGO_BIN_EXE_backflow"))
        .args(&args)
        .output()
        .expect("the backflow binary starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs and checks success.
fn ok(extra: &[&str]) {
    let o = backflow(extra);
    assert!(o.status.success(), "{extra:?}: {}", text(&o.stderr));
}

/// Runs, checks the exit status, that no epoch ran, and that stderr holds every one of
/// `needles`.
fn fails(extra: &[&str], code: i32, needles: &[&str]) {
    let o = backflow(extra);
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{extra:?}: {e}");
    for n in needles {
        assert!(e.contains(n), "{extra:?}: `{n}` not in: {e}");
    }
    assert!(!text(&o.stdout).contains("epoch "), "{}", text(&o.stdout));
}

#[test]
fn save_and_checkpoint_on_one_file_is_a_usage_error() {
    let dir = scratch("samefile");
    let ckpt = dir.join("run.st");
    // The same file spelled two ways.
    let other_spelling = dir.join(".").join("run.st");
    fails(
        &[
            "--epochs",
            "1",
            "--checkpoint",
            s(&ckpt),
            "--save",
            s(&other_spelling),
        ],
        2,
        &["'--save'", "--checkpoint", "run.st"],
    );
    assert!(!ckpt.exists(), "nothing is written");
    // Two files: fine.
    ok(&[
        "--epochs",
        "1",
        "--checkpoint",
        s(&ckpt),
        "--save",
        s(&dir.join("w.st")),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resume_with_another_batch_or_lr_is_refused() {
    let dir = scratch("recipe");
    let ckpt = dir.join("run.st");
    ok(&["--epochs", "1", "--checkpoint", s(&ckpt)]);
    let before = std::fs::read(&ckpt).unwrap();
    let resume = ["--epochs", "3", "--checkpoint", s(&ckpt), "--resume"];
    for (flag, value, needle) in [
        ("--batch", "32", "--batch 64, not 32"),
        ("--lr", "0.02", "--lr 0.01, not 0.02"),
    ] {
        let args: Vec<&str> = resume.iter().copied().chain([flag, value]).collect();
        fails(&args, 1, &["--resume", "run.st", needle]);
    }
    assert!(
        std::fs::read(&ckpt).unwrap() == before,
        "the checkpoint is unchanged"
    );
    // The same recipe, given explicitly, resumes.
    ok(&[&resume[..], &["--batch", "64", "--lr", "0.01"]].concat());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn a_resumed_checkpoint_that_cannot_be_written_is_a_usage_error_before_training() {
    // A file that exists and reads, but that no one (root included) can replace: the
    // run would train an epoch and then fail to save it.
    fails(
        &["--epochs", "2", "--checkpoint", "/proc/version", "--resume"],
        2,
        &["'--checkpoint'", "/proc/version", "cannot write there"],
    );
}

/// Rewrites the metadata of the safetensors file `from` into `to`, setting `key` to
/// `value`.
fn with_metadata(from: &Path, to: &Path, key: &str, value: &str) {
    let bytes = std::fs::read(from).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    meta.insert(key.into(), value.into());
    let tensors: Vec<(String, TensorView)> = file.tensors();
    std::fs::write(to, safetensors::serialize(tensors, Some(meta)).unwrap()).unwrap();
}

#[test]
fn eval_refuses_a_recipe_that_contradicts_the_weights() {
    let dir = scratch("tampered");
    let weights = dir.join("w.st");
    ok(&["--epochs", "1", "--seed", "5", "--save", s(&weights)]);
    let tampered = dir.join("t.st");
    for (key, value, needle) in [
        ("model", "moe", "`moe`"),
        ("branches", "16", "16 branches x hidden 8"),
        ("hidden", "64", "2 branches x hidden 64"),
        ("lr", "NaN", "`lr`"),
        ("lr", "-5", "`lr`"),
        ("epochs", "0", "`epochs`"),
        ("batch", "0", "`batch`"),
    ] {
        with_metadata(&weights, &tampered, key, value);
        let o = backflow(&["eval", "--load", s(&tampered)]);
        let e = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{key}={value}: {e}");
        assert!(
            e.contains("t.st") && e.contains(needle),
            "{key}={value}: {e}"
        );
        assert!(o.stdout.is_empty(), "{key}={value}: {}", text(&o.stdout));
    }
    // The untouched file evaluates.
    let o = backflow(&["eval", "--load", s(&weights)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_of_a_checkpoint_says_what_the_file_is() {
    let dir = scratch("evalckpt");
    let ckpt = dir.join("run.ckpt");
    ok(&["--epochs", "1", "--checkpoint", s(&ckpt)]);
    let o = backflow(&["eval", "--load", s(&ckpt)]);
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("run.ckpt") && e.contains("training checkpoint") && e.contains("--save"),
        "{e}"
    );
    // One short line, not every tensor name of the file.
    assert!(!e.contains("adam.m.") && e.lines().count() == 1, "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_closed_pipe_ends_train_quietly() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    // As `backflow train | head -1`: the reader goes after the first epoch's line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_backflow"))
        .args([
            "train",
            "--branches",
            "2",
            "--hidden",
            "8",
            "--threads",
            "1",
        ])
        .args(["--epochs", "200"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("epoch "), "{first}");
    // The reader is dropped here: the next line goes to a closed pipe.
    let o = child.wait_with_output().unwrap();
    let e = text(&o.stderr);
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGPIPE),
        "{:?}: {e}",
        o.status
    );
}

#[test]
fn train_labels_the_thread_count_that_ran() {
    let o = Command::new(env!("CARGO_BIN_EXE_backflow"))
        .args(["train", "--branches", "2", "--hidden", "8", "--epochs", "1"])
        .args(["--threads", "1024"])
        .output()
        .expect("the backflow binary starts");
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let max = backflow::max_threads();
    if max < 1024 {
        assert!(
            out.contains(&format!("note: --threads 1024 run as {max} threads")),
            "{out}"
        );
    }
    assert!(out.contains(&format!("threads       : {max}\n")), "{out}");
}

#[test]
fn resume_without_a_checkpoint_yet_says_it_starts_afresh() {
    let dir = scratch("resume-fresh");
    let path = dir.join("typo.safetensors");
    let o = backflow(&["--epochs", "1", "--checkpoint", s(&path), "--resume"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("no checkpoint at") && err.contains("typo.safetensors"),
        "{err}"
    );
    // The run wrote it: resuming again is silent.
    assert!(path.is_file());
    let o = backflow(&["--epochs", "1", "--checkpoint", s(&path), "--resume"]);
    assert!(
        !text(&o.stderr).contains("no checkpoint at"),
        "{}",
        text(&o.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
