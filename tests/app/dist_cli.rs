//! `backflow train --distributed` flags, in every build: without the `mpi` feature the flag
//! is a usage error saying how to rebuild; the distributed flags need `--distributed`
//! (`--checkpoint` and `--resume` serve one process too); bad values name the flag.
//! Nothing here starts MPI.

use std::process::{Command, Output};

fn train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backflow"))
        .arg("train")
        .args(args)
        .output()
        .expect("the backflow binary starts")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[cfg(not(feature = "mpi"))]
#[test]
fn distributed_without_the_feature_says_how_to_rebuild() {
    let o = train(&["--distributed", "--epochs", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("'--distributed'") && e.contains("--features mpi"),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
}

#[test]
fn distributed_flags_need_distributed() {
    for args in [
        &["--bucket-kib", "64"][..],
        &["--no-overlap"],
        &["--bucket-order", "registration"],
        &["--verify-replicas"],
        &["--allreduce-timeout", "5"],
    ] {
        let o = train(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("--distributed"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let o = train(&["--distributed", "--resume"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--checkpoint"), "{}", stderr(&o));
}

#[test]
fn bad_distributed_values_name_the_flag() {
    for (flag, value) in [
        ("--bucket-kib", "0"),
        ("--bucket-kib", "-1"),
        ("--bucket-kib", "nan"),
        ("--allreduce-timeout", "0"),
        ("--allreduce-timeout", "inf"),
        ("--inject-fault", "1:0:error"),
        ("--inject-fault", "x"),
        ("--bucket-order", "random"),
    ] {
        let o = train(&["--distributed", flag, value]);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(flag) && e.contains(value), "{flag} {value}: {e}");
    }
}
