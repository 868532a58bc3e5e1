//! loom model of the executor's error path: on the diamond `0 -> {1, 2} -> 3`, a node's
//! backward panics or returns `Err`. Under every interleaving the real `execute` with
//! `Scheduler::Parallel` must return that error (first error wins when two nodes fail at
//! once) and every worker must finish: loom aborts the process on a deadlock and fails on a
//! thread left blocked. No node downstream of a failure may run.
//!
//! Run with `RUSTFLAGS="--cfg loom"` (see `.ci/loom.sh`).
#![cfg(loom)]

use crate::common::{check_exec, parallel, Count, Graph, DIAMOND};

use backflow_engine::exec::Accumulation;
use std::sync::Once;

/// What the faulty node does.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Panic,
    Err,
}

/// The marker of an injected panic, whose report is silenced.
const INJECTED: &str = "injected fault";

/// `node` and every node it reaches: none of them may run once `node` fails.
fn downstream(node: u32) -> Vec<u32> {
    let mut reached = vec![node];
    let mut i = 0;
    while let Some(&n) = reached.get(i) {
        for &s in DIAMOND[n as usize] {
            if !reached.contains(&s) {
                reached.push(s);
            }
        }
        i += 1;
    }
    reached
}

/// Silences the report of injected panics (they are caught by the executor); any other panic
/// is reported as usual.
fn quiet_injected_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !message.contains(INJECTED) {
                report(info);
            }
        }));
    });
}

/// The model: the nodes in `fail` fail as `fault` says (the others forward their gradient
/// and record a run), on `threads` workers.
fn fails(fail: &'static [u32], fault: Fault, threads: usize) {
    quiet_injected_panics();
    check_exec(move || {
        let (plan, graph) = Graph::new(&DIAMOND, move |id, grad: &Option<Count>| {
            if fail.contains(&id) {
                match fault {
                    Fault::Panic => panic!("{INJECTED} at n{id}"),
                    Fault::Err => return Err(format!("{INJECTED} at n{id}")),
                }
            }
            Ok(grad.clone())
        });
        let err = Graph::execute(
            &graph,
            plan,
            Count(1),
            &parallel(threads, Accumulation::Deterministic),
        )
        .expect_err("a failing node must make execute fail");
        let failed = graph.id(err.node);
        assert!(fail.contains(&failed), "{err}");
        assert_eq!(err.op, format!("n{failed}"));
        assert_eq!(err.panicked, matches!(fault, Fault::Panic));
        assert!(err.message.contains(INJECTED), "{err}");
        let seen = graph.seen();
        let blocked: Vec<u32> = fail.iter().flat_map(|&f| downstream(f)).collect();
        for (n, &(runs, _)) in seen.iter().enumerate() {
            assert!(
                runs == 0 || !blocked.contains(&(n as u32)),
                "n{n} ran although {fail:?} fail"
            );
            assert!(runs <= 1, "n{n} ran {runs} times");
        }
    });
}

#[test]
fn panic_in_a_branch_on_two_threads() {
    fails(&[1], Fault::Panic, 2);
}

#[test]
fn panic_in_a_branch_on_three_threads() {
    fails(&[1], Fault::Panic, 3);
}

#[test]
fn err_in_a_branch_on_three_threads() {
    fails(&[2], Fault::Err, 3);
}

#[test]
fn err_at_the_root_on_three_threads() {
    fails(&[0], Fault::Err, 3);
}

#[test]
fn panic_at_the_sink_on_three_threads() {
    fails(&[3], Fault::Panic, 3);
}

#[test]
fn both_branches_fail_at_once_on_three_threads() {
    fails(&[1, 2], Fault::Err, 3);
}
