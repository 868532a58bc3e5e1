//! The command line's validation rule, swept over every subcommand and numeric flag: each
//! run of the built `backflow` binary with a zero, negative, NaN, infinite, huge, empty or
//! non-numeric value, or an output path that cannot be written, exits 0, 1 or 2 (never 101,
//! never a signal), under a time limit; a usage error (2) is one line on stderr naming the
//! flag and the value, printed before any work.
//!
//! The base arguments keep the valid runs cheap (a tiny model, one epoch, small graphs).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A run that has not finished after this long is killed and fails the test (it would
/// otherwise hang the suite); it is a limit, not a timing assertion.
const LIMIT: Duration = Duration::from_secs(120);

/// Odd values tried on every numeric flag.
const ODD_VALUES: &[&str] = &[
    "0",
    "-1",
    "-0.5",
    "nan",
    "inf",
    "1e30",
    "18446744073709551615",
    "18446744073709551616",
    "x",
    "",
];

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary with `args` in `dir`, killing it after [`LIMIT`].
fn run_in(dir: &Path, args: &[String]) -> Outcome {
    let mut child = Command::new(env!("CARGO_BIN_EXE_backflow"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the backflow binary starts");
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for backflow") {
            break status;
        }
        if start.elapsed() > LIMIT {
            child.kill().ok();
            child.wait().ok();
            panic!("`backflow {}` did not finish; killed", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    let code = status.code().unwrap_or_else(|| {
        panic!(
            "`backflow {}` ended by a signal ({status}); stderr:\n{stderr}",
            args.join(" ")
        )
    });
    Outcome {
        code,
        stdout,
        stderr,
    }
}

/// A scratch folder of this test, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("backflow-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `subcommand` with `base` flags, `flag` (replacing its base value) set to `value`.
fn line(subcommand: &str, base: &[(&str, &str)], flag: &str, value: &str) -> Vec<String> {
    let mut args = vec![subcommand.to_string()];
    for (f, v) in base.iter().filter(|(f, _)| *f != flag) {
        args.push(format!("{f}={v}"));
    }
    args.push(format!("{flag}={value}"));
    args
}

/// Checks the rule on one run; returns its exit status.
fn check(dir: &Path, args: &[String], flag: &str, value: &str) -> i32 {
    let o = run_in(dir, args);
    let shown = args.join(" ");
    assert!(
        matches!(o.code, 0..=2),
        "`backflow {shown}` exited {}; stderr:\n{}",
        o.code,
        o.stderr
    );
    if o.code == 2 {
        let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "`backflow {shown}`: a usage error is one line:\n{}",
            o.stderr
        );
        assert!(
            lines[0].contains(flag) && lines[0].contains(value),
            "`backflow {shown}`: the error names neither `{flag}` nor `{value}`: {}",
            lines[0]
        );
        assert!(
            o.stdout.trim().is_empty(),
            "`backflow {shown}`: a usage error comes before any work, but stdout has:\n{}",
            o.stdout
        );
    }
    o.code
}

/// Every odd value on every flag of `subcommand`; returns how many runs were usage errors.
fn sweep(dir: &Path, subcommand: &str, base: &[(&str, &str)], flags: &[&str]) -> usize {
    let mut usage_errors = 0;
    for flag in flags {
        for value in ODD_VALUES {
            let args = line(subcommand, base, flag, value);
            if check(dir, &args, flag, value) == 2 {
                usage_errors += 1;
            }
        }
    }
    usage_errors
}

const TRAIN_BASE: &[(&str, &str)] = &[
    ("--branches", "1"),
    ("--hidden", "2"),
    ("--epochs", "1"),
    ("--batch", "256"),
    ("--threads", "1"),
];

#[test]
fn train_flags_follow_the_rule() {
    let dir = scratch("train");
    let flags = [
        "--branches",
        "--hidden",
        "--epochs",
        "--batch",
        "--lr",
        "--threads",
        "--seed",
    ];
    let errors = sweep(&dir, "train", TRAIN_BASE, &flags);
    assert!(errors >= flags.len() * 6, "{errors} usage errors");
    // Bad values the issue named: each a usage error, not a run.
    for (flag, value) in [
        ("--batch", "0"),
        ("--epochs", "0"),
        ("--lr", "nan"),
        ("--lr", "0"),
        ("--threads", "-1"),
    ] {
        let args = line("train", TRAIN_BASE, flag, value);
        assert_eq!(check(&dir, &args, flag, value), 2, "train {flag}={value}");
    }
}

#[test]
fn threads_zero_means_all_cores() {
    let dir = scratch("threads0");
    let o = run_in(&dir, &line("train", TRAIN_BASE, "--threads", "0"));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let threads = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("threads       : "))
        .expect("train prints its threads");
    let threads: usize = threads.trim().parse().unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(threads, cores, "threads 0 is all cores");

    let stress = [
        "stress",
        "--graphs=2",
        "--nodes=8",
        "--threads=0",
        "--jobs=0",
    ];
    let o = run_in(&dir, &stress.map(String::from));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(!o.stdout.contains("parallel/0"), "{}", o.stdout);
    assert!(
        o.stdout.contains(&format!("parallel/{cores}/")),
        "{}",
        o.stdout
    );
}

const STRESS_BASE: &[(&str, &str)] = &[
    ("--graphs", "2"),
    ("--nodes", "8"),
    ("--threads", "1,2"),
    ("--jobs", "1"),
    ("--duration", "2s"),
    ("--f64-every", "0"),
    ("--callers-every", "0"),
    ("--reentrant-every", "0"),
    ("--unequal-every", "0"),
];

#[test]
fn stress_flags_follow_the_rule() {
    let dir = scratch("stress");
    let flags = [
        "--graphs",
        "--duration",
        "--threads",
        "--seed",
        "--nodes",
        "--width",
        "--leaves",
        "--hubs",
        "--hub-share",
        "--fault-rate",
        "--jobs",
        "--deadline",
        "--f64-every",
        "--callers-every",
        "--reentrant-every",
        "--reentrant-depth",
        "--unequal-every",
    ];
    let errors = sweep(&dir, "stress", STRESS_BASE, &flags);
    assert!(errors >= flags.len() * 5, "{errors} usage errors");
    // The values that used to panic a worker or the main thread, or hang the run.
    for (flag, value) in [
        ("--deadline", "-1"),
        ("--deadline", "nan"),
        ("--duration", "-5"),
        ("--duration", "1e30"),
        ("--hub-share", "nan"),
        ("--fault-rate", "nan"),
        ("--nodes", "18446744073709551615"),
        ("--reentrant-depth", "0"),
        ("--reentrant-depth", "9"),
    ] {
        let args = line("stress", STRESS_BASE, flag, value);
        assert_eq!(check(&dir, &args, flag, value), 2, "stress {flag}={value}");
    }
}

const SCALE_BASE: &[(&str, &str)] = &[
    ("--workload", "w1"),
    ("--reps", "1"),
    ("--threads", "1"),
    ("--json", ""),
    ("--svg", ""),
];

#[test]
fn scale_and_graph_flags_follow_the_rule() {
    let dir = scratch("scale");
    let errors = sweep(
        &dir,
        "scale",
        SCALE_BASE,
        &["--reps", "--threads", "--workload"],
    );
    assert!(errors >= 3 * 6, "{errors} usage errors");
    let graph = [("--model", "t1"), ("--format", "dot")];
    let errors = sweep(&dir, "graph", &graph, &["--branches"]);
    assert!(errors >= 6, "{errors} usage errors");
}

#[test]
fn eval_flags_follow_the_rule() {
    let dir = scratch("eval");
    let o = run_in(&dir, &line("train", TRAIN_BASE, "--save", "m.safetensors"));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let base = [("--load", "m.safetensors")];
    sweep(&dir, "eval", &base, &["--seed"]);
    for value in ["missing.safetensors", ".", ""] {
        let args = line("eval", &base, "--load", value);
        assert_eq!(
            check(&dir, &args, "--load", value),
            2,
            "eval --load={value}"
        );
    }
    // A file that is there but is not a model: a failed run (1), on one line.
    std::fs::write(dir.join("junk"), "not a model").unwrap();
    let o = run_in(&dir, &line("eval", &base, "--load", "junk"));
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert_eq!(o.stderr.trim().lines().count(), 1, "{}", o.stderr);
    assert!(o.stderr.contains("--load"), "{}", o.stderr);
}

#[test]
fn unwritable_outputs_are_usage_errors_before_the_run() {
    let dir = scratch("outputs");
    let missing = "no-such-folder/out";
    let folder = ".";
    for value in [missing, folder] {
        let args = line("train", TRAIN_BASE, "--save", value);
        assert_eq!(check(&dir, &args, "--save", value), 2, "--save={value}");
        for flag in ["--json", "--svg"] {
            let args = line("scale", SCALE_BASE, flag, value);
            assert_eq!(check(&dir, &args, flag, value), 2, "scale {flag}={value}");
        }
    }
    let args = line("train", TRAIN_BASE, "--save", "");
    assert_eq!(check(&dir, &args, "--save", ""), 2);
    // A file that opens for writing in a folder that takes no new files (procfs): the
    // save's temporary file cannot be created beside it, so it is refused before training.
    let proc_file = "/proc/version";
    let args = line("train", TRAIN_BASE, "--save", proc_file);
    assert_eq!(
        check(&dir, &args, "--save", proc_file),
        2,
        "--save={proc_file}"
    );
    let o = run_in(&dir, &args);
    assert!(
        o.stderr
            .contains("cannot create a file in its folder '/proc'"),
        "{}",
        o.stderr
    );
    for flag in ["--json", "--svg"] {
        let args = line("scale", SCALE_BASE, flag, proc_file);
        assert_eq!(
            check(&dir, &args, flag, proc_file),
            2,
            "scale {flag}={proc_file}"
        );
    }
    // A writable path is left as it was found: no probe file remains.
    let args = line("scale", SCALE_BASE, "--json", "fresh.json");
    assert_eq!(check(&dir, &args, "--json", "fresh.json"), 0);
    assert!(dir.join("fresh.json").is_file(), "scale wrote its JSON");
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["fresh.json"], "no probe or temporary file remains");
}

#[test]
fn scale_labels_and_divides_by_the_thread_count_that_ran() {
    let dir = scratch("scale-clamp");
    let ran = backflow::clamp_threads(64);
    let args = [
        "scale",
        "--workload=w3",
        "--reps=1",
        "--threads=64",
        "--json=out.json",
        "--svg=",
    ]
    .map(String::from);
    let o = run_in(&dir, &args);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out.json")).unwrap()).unwrap();
    let parallel: Vec<&serde_json::Value> = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["scheduler"] == "parallel")
        .collect();
    let threads: Vec<u64> = parallel
        .iter()
        .map(|r| r["threads"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = if ran > 1 {
        vec![1, ran as u64]
    } else {
        vec![1]
    };
    assert_eq!(threads, expected, "{}", o.stdout);
    let row = parallel.last().unwrap();
    let (speedup, efficiency) = (row["speedup"].as_f64(), row["efficiency"].as_f64());
    if let (Some(s), Some(e)) = (speedup, efficiency) {
        assert!(
            (e * ran as f64 - s).abs() <= 1e-9 * s.abs().max(1.0),
            "{row}"
        );
    }
    // The table has no row of 64 threads, and the clamp is said once.
    let table_threads: Vec<&str> = o
        .stdout
        .lines()
        .filter(|l| l.starts_with("w3") && l.contains("parallel"))
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(table_threads.len(), expected.len(), "{}", o.stdout);
    assert!(!table_threads.contains(&"64"), "{}", o.stdout);
    if ran != 64 {
        assert_eq!(
            o.stdout.matches("note: --threads 64 run as").count(),
            1,
            "{}",
            o.stdout
        );
    }
}

#[test]
fn negative_numbers_after_a_space_name_the_flag() {
    let dir = scratch("space");
    for (sub, flag) in [
        ("train", "--threads"),
        ("train", "--lr"),
        ("stress", "--deadline"),
        ("scale", "--reps"),
    ] {
        let args = [sub, flag, "-1"].map(String::from);
        assert_eq!(check(&dir, &args, flag, "-1"), 2, "{sub} {flag} -1");
    }
}

#[test]
fn no_arguments_print_the_multi_line_help_with_exit_2() {
    let dir = scratch("no-arguments");
    let o = run_in(&dir, &[]);
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
    let help = format!("{}{}", o.stdout, o.stderr);
    let lines: Vec<&str> = help.lines().map(str::trim_end).collect();
    for start in [
        "Usage: backflow",
        "Commands:",
        "  train",
        "  scale",
        "Workloads",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(start)),
            "a line starts with `{start}`:\n{help}"
        );
    }
    assert!(lines.len() > 20, "the help keeps its lines:\n{help}");
}

#[test]
fn help_explains_the_workloads_and_thread_zero() {
    let dir = scratch("help");
    for sub in ["train", "eval", "scale", "stress", "graph"] {
        let o = run_in(&dir, &[sub.to_string(), "--help".into()]);
        assert_eq!(o.code, 0, "{sub} --help: {}", o.stderr);
        assert!(
            o.stdout.contains("WORKLOADS.md") || sub == "stress",
            "{sub} --help points to benches/WORKLOADS.md:\n{}",
            o.stdout
        );
        if matches!(sub, "train" | "scale" | "stress") {
            assert!(
                o.stdout.contains("0 means all cores"),
                "{sub} --help says what 0 threads means:\n{}",
                o.stdout
            );
        }
    }
    let o = run_in(&dir, &["--help".to_string()]);
    assert_eq!(o.code, 0);
    for w in ["W1", "W4", "W6", "T1", "WORKLOADS.md", "all cores"] {
        assert!(
            o.stdout.contains(w),
            "backflow --help mentions {w}:\n{}",
            o.stdout
        );
    }
}

#[test]
fn a_panicking_stress_check_fails_the_run_with_a_reproducer() {
    let dir = scratch("panic");
    let args = [
        "stress",
        "--graphs=3",
        "--nodes=8",
        "--threads=1,2",
        "--jobs=2",
        "--seed=7",
        "--mutate=panic",
    ]
    .map(String::from);
    let o = run_in(&dir, &args);
    assert_eq!(o.code, 1, "stdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("[panic]"), "{}", o.stdout);
    assert!(
        o.stdout
            .contains("reproduce with:\n  cargo run --release -- stress --seed 7 --graphs 1"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("--mutate panic"), "{}", o.stdout);
    let last = o.stderr.lines().last().unwrap_or("");
    assert!(last.starts_with("error: 3 failures"), "{}", o.stderr);
}
