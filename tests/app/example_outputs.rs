//! Each example's header shows the output it prints; this test runs the built example and
//! compares, so a change that moves an example's output fails here until its header is
//! updated. Lines that the header marks as varying (times, a parallel visit order) are
//! left out of the comparison, and the system's temporary directory is written as `/tmp`.
//!
//! `cargo test` builds the examples beside the test binaries (`target/<profile>/examples`),
//! which is where this test finds them.

use std::path::PathBuf;
use std::process::Command;

/// The lines of the first ```` ```text ```` block after "Expected output" in an example's
/// header comment.
fn expected_output(source: &str) -> Vec<String> {
    let header: Vec<&str> = source
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
        .collect();
    let start = header
        .iter()
        .position(|l| l.contains("xpected output"))
        .expect("the header has no \"Expected output\"");
    let open = start
        + header[start..]
            .iter()
            .position(|l| l.starts_with("```text"))
            .expect("no ```text block after \"Expected output\"");
    header[open + 1..]
        .iter()
        .take_while(|l| !l.starts_with("```"))
        .map(|l| l.to_string())
        .collect()
}

/// The example binary that `cargo test` built beside this test's own binary.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run this test through `cargo test`, which builds the examples",
        bin.display()
    );
    bin
}

/// Runs `name`, and compares its output with its header's, leaving out lines that start
/// with one of `varying`.
fn check(name: &str, varying: &[&str]) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let source = std::fs::read_to_string(root.join("examples").join(format!("{name}.rs")))
        .unwrap_or_else(|e| panic!("examples/{name}.rs: {e}"));
    let keep = |l: &String| !varying.iter().any(|v| l.starts_with(v));
    let expected: Vec<String> = expected_output(&source).into_iter().filter(keep).collect();
    let out = Command::new(example_binary(name))
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    assert!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tmp = std::env::temp_dir();
    let tmp = tmp.to_string_lossy();
    let tmp = tmp.trim_end_matches('/');
    let printed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.replace(tmp, "/tmp"))
        .filter(keep)
        .collect();
    assert_eq!(
        printed, expected,
        "examples/{name}.rs prints other lines than its header shows; update the header"
    );
}

#[test]
fn seed_graph_prints_its_documented_output() {
    // The parallel visit order may differ between the two independent branches.
    check("seed_graph", &["parallel"]);
}

#[test]
fn custom_op_prints_its_documented_output() {
    // The root package's example: `cargo test --workspace` builds it into the same folder.
    check("custom_op", &[]);
}

#[test]
fn wide_model_prints_its_documented_output() {
    check("wide_model", &[]);
}

#[test]
fn moe_digits_prints_its_documented_output() {
    check("moe_digits", &[]);
}

#[test]
fn attention_digits_prints_its_documented_output() {
    check("attention_digits", &[]);
}

#[test]
fn inception_digits_prints_its_documented_output() {
    check("inception_digits", &[]);
}
