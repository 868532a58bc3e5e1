//! `BackwardOptions::trace(path)` writes Chrome/Perfetto trace-event JSON: one complete
//! event per node run, named by its op, on the thread that ran it, with µs timestamps.
//! Under every scheduler, `Parallel` at 2 and 4 threads.

use backflow::{BackwardOptions, BackwardStats, Scheduler, Tensor};
use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::common;
use crate::common::configs;

/// One complete event of the trace, read back from its line.
#[derive(Debug)]
struct Span {
    name: String,
    tid: u64,
    ts: f64,
    dur: f64,
}

/// The text after `"key":` up to the next `,` or `}`.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + key.len()
        + 3;
    let rest = &line[start..];
    &rest[..rest.find([',', '}']).unwrap()]
}

/// The complete events of the trace at `path` (the file has one event per line).
fn spans(path: &PathBuf) -> Vec<Span> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.starts_with('{') && text.trim_end().ends_with("]}"),
        "{text}"
    );
    assert!(text.contains("\"traceEvents\":["));
    text.lines()
        .filter(|l| l.contains("\"ph\":\"X\""))
        .map(|l| Span {
            name: field(l, "name").trim_matches('"').to_string(),
            tid: field(l, "tid").parse().unwrap(),
            ts: field(l, "ts").parse().unwrap(),
            dur: field(l, "dur").parse().unwrap(),
        })
        .collect()
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("backflow-trace-{}-{name}.json", std::process::id()))
}

/// 24 branches `tanh(x @ W).sum()` summed: 24 leaves, 24·3 ops, 23 adds.
fn wide() -> Tensor {
    let x = Tensor::<f32>::randn(&[16, 32], 0);
    let sums: Vec<Tensor> = (0..24)
        .map(|b| {
            let w = (&Tensor::randn(&[32, 32], 1 + b) * 0.2).requires_grad();
            x.matmul(&w).unwrap().tanh().sum()
        })
        .collect();
    sums.iter().skip(1).fold(sums[0].clone(), |acc, s| &acc + s)
}

#[test]
fn one_span_per_node_run_named_by_its_op() {
    for (k, opts) in configs().into_iter().enumerate() {
        let path = temp(&format!("wide{k}"));
        let stats = BackwardStats::new();
        wide()
            .backward_with(&opts.clone().stats(stats.clone()).trace(&path))
            .unwrap();
        let spans = spans(&path);
        assert_eq!(spans.len(), stats.nodes_run(), "{opts:?}");
        assert_eq!(spans.len(), 24 + 24 * 3 + 23);
        let count = |op: &str| spans.iter().filter(|s| s.name == op).count();
        assert_eq!(
            (
                count("leaf"),
                count("matmul"),
                count("tanh"),
                count("sum"),
                count("add")
            ),
            (24, 24, 24, 24, 23)
        );
        assert!(spans.iter().all(|s| s.ts >= 0.0 && s.dur >= 0.0));
        // The spans of one thread do not overlap: each thread runs one node at a time.
        let threads: BTreeSet<u64> = spans.iter().map(|s| s.tid).collect();
        for tid in &threads {
            let mut mine: Vec<&Span> = spans.iter().filter(|s| s.tid == *tid).collect();
            mine.sort_by(|a, b| a.ts.total_cmp(&b.ts));
            for pair in mine.windows(2) {
                assert!(
                    pair[0].ts + pair[0].dur <= pair[1].ts + 1e-3,
                    "{opts:?}: {pair:?}"
                );
            }
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for tid in &threads {
            assert!(
                text.contains(&format!("\"ph\":\"M\",\"pid\":1,\"tid\":{tid},")),
                "thread {tid} unnamed"
            );
        }
        if opts.get_scheduler() != Scheduler::Parallel {
            assert_eq!(
                threads.len(),
                1,
                "{opts:?}: a serial pass runs on the caller"
            );
        } else {
            // Helpers join and leave a pass, so over a pass more distinct threads than
            // `threads` may take part; at any moment at most `threads` run its nodes.
            let mut events: Vec<(f64, i32)> = spans
                .iter()
                .flat_map(|s| [(s.ts, 1), (s.ts + s.dur - 1e-3, -1)])
                .collect();
            // Ends before starts at the same instant, and ends less 1e-3 µs of rounding (as in
            // the per-thread check above): touching spans do not overlap.
            events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let (mut running, mut most) = (0, 0);
            for (_, step) in events {
                running += step;
                most = most.max(running);
            }
            assert!(
                most as usize <= opts.get_threads(),
                "{opts:?}: {most} nodes ran at once"
            );
        }
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn the_seed_graph_trace_follows_the_topological_order() {
    for (k, opts) in configs().into_iter().enumerate() {
        let path = temp(&format!("seed{k}"));
        let t1 = Tensor::<f32>::scalar(2.0).requires_grad();
        let t2 = Tensor::scalar(3.0).requires_grad();
        let t5 = Tensor::scalar(0.5).requires_grad();
        let l = ((&t1 + &t2) * (&t2 * &t5)).sin();
        l.backward_with(&opts.clone().trace(&path)).unwrap();
        let mut spans = spans(&path);
        spans.sort_by(|a, b| a.ts.total_cmp(&b.ts));
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), 7);
        assert_eq!(&names[..2], ["sin", "mul"], "{opts:?}");
        assert_eq!(names.iter().filter(|n| **n == "leaf").count(), 3);
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn an_unwritable_trace_path_is_an_error_before_the_pass() {
    let x = Tensor::<f32>::scalar(1.0).requires_grad();
    let path = std::env::temp_dir()
        .join("backflow-no-such-dir")
        .join("t.json");
    let err = x
        .sin()
        .backward_with(&BackwardOptions::new().trace(&path))
        .unwrap_err();
    assert!(err.to_string().contains("trace"), "{err}");
    // The file is opened before the pass: no gradient was written.
    assert!(x.grad().is_none());
}

#[test]
fn a_trace_write_that_fails_part_way_leaves_the_previous_trace_whole() {
    let name = "a_trace_write_that_fails_part_way_leaves_the_previous_trace_whole";
    if let Some(dir) = std::env::var_os(common::LIMITED_CHILD_DIR) {
        // The trace of `wide()` has 143 spans, some 20 KiB: past the child's limit.
        let path = std::path::Path::new(&dir).join("t.json");
        let err = wide()
            .backward_with(&BackwardOptions::new().trace(&path))
            .unwrap_err();
        assert!(err.to_string().contains("trace"), "{err}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("backflow-trace-limit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.json");
    wide()
        .backward_with(&BackwardOptions::new().trace(&path))
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    common::rerun_with_file_size_limit(name, &dir);
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the previous trace is unchanged, byte for byte"
    );
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["t.json"], "no temporary file is left");
    std::fs::remove_dir_all(&dir).unwrap();
}
