//! loom model of a nested pass: on the diamond `0 -> {1, 2} -> 3`, nodes 1 and 2 each run a
//! whole backward pass of their own (the chain `0 -> 1`, as a hook or a checkpoint does)
//! with the real `execute` and `Scheduler::Parallel` (three threads outside, two inside), on
//! whichever thread runs them: the
//! caller or a helper of the shared executor. Under every interleaving both inner passes and
//! the outer one finish, every node runs once, and node 3 gets both contributions.
//!
//! The negative control makes every pass's owner wait without running its jobs (the old
//! captive design): a helper that owns an inner pass then waits for a helper that never
//! comes, and loom must report the deadlock. A loom deadlock aborts its process, so the
//! control runs the model in a child process and checks that it fails for that reason.
//!
//! Run with `RUSTFLAGS="--cfg loom"` (see `.ci/loom.sh`).
#![cfg(loom)]

mod common;
use common::{child_failure, Count, CHAIN, DIAMOND};

use backflow_engine::exec::{
    execute, set_owner_helps, shutdown, Accumulation, ExecOptions, Plan, Scheduler, Task,
};
use backflow_engine::sync::{Arc, Mutex};

/// Forwards its gradient along `succ`, records each run, and (in the outer graph) runs the
/// inner pass from nodes 1 and 2.
struct Graph {
    succ: &'static [&'static [u32]],
    /// Original id of each dense index.
    ids: Vec<u32>,
    /// Per original id: runs, and the gradient received.
    seen: Mutex<Vec<(u32, Option<Count>)>>,
    /// The inner plan, when this is the outer graph.
    inner: Option<(Plan, Vec<u32>)>,
}

impl Graph {
    fn new(succ: &'static [&'static [u32]], nested: bool) -> Self {
        let (_, ids) = plan(succ);
        Self {
            succ,
            ids,
            seen: Mutex::new(vec![(0, None); succ.len()]),
            inner: nested.then(|| plan(&CHAIN)),
        }
    }
}

impl Task for Graph {
    type Grad = Count;

    fn run(
        &self,
        node: u32,
        grad: Option<Count>,
        out: &mut Vec<Option<Count>>,
    ) -> Result<(), String> {
        let id = self.ids[node as usize];
        if let (Some((plan, _)), 1 | 2) = (&self.inner, id) {
            let inner = Arc::new(Graph::new(&CHAIN, false));
            execute(
                Arc::new(plan.clone()),
                Arc::clone(&inner),
                vec![Some(Count(1))],
                &options(2),
            )
            .map_err(|e| e.to_string())?;
            let seen = inner.seen.lock().clone();
            assert_eq!(seen, vec![(1, Some(Count(1))), (1, Some(Count(1)))]);
        }
        out.extend(self.succ[id as usize].iter().map(|_| grad.clone()));
        let mut seen = self.seen.lock();
        seen[id as usize].0 += 1;
        seen[id as usize].1 = grad;
        Ok(())
    }

    fn describe(&self, node: u32) -> String {
        format!("n{}", self.ids[node as usize])
    }
}

/// The plan of `succ` from root 0, and the original id of each dense index.
fn plan(succ: &'static [&'static [u32]]) -> (Plan, Vec<u32>) {
    Plan::build(
        &[0u32],
        |&n| n,
        |&n, out| out.extend_from_slice(succ[n as usize]),
        None,
    )
}

/// `Parallel` on `threads` threads: the owner and up to `threads - 1` helpers.
fn options(threads: usize) -> ExecOptions {
    ExecOptions {
        scheduler: Scheduler::Parallel,
        threads,
        accumulation: Accumulation::Deterministic,
    }
}

/// The model: the outer diamond, with an inner pass in nodes 1 and 2.
fn nested(owner_helps: bool) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(3);
    builder.check(move || {
        set_owner_helps(owner_helps);
        let (plan, _) = plan(&DIAMOND);
        let outer = Arc::new(Graph::new(&DIAMOND, true));
        execute(
            Arc::new(plan),
            Arc::clone(&outer),
            vec![Some(Count(1))],
            &options(3),
        )
        .expect("no node fails");
        let seen = outer.seen.lock().clone();
        let ones = Some(Count(1));
        assert_eq!(
            seen,
            vec![
                (1, ones.clone()),
                (1, ones.clone()),
                (1, ones),
                (1, Some(Count(2)))
            ]
        );
        shutdown();
    });
}

#[test]
fn a_nested_pass_in_an_outer_pass_finishes() {
    nested(true);
}

#[test]
#[ignore = "negative control: run in a child process by owners_that_do_not_help_deadlock"]
fn owners_that_do_not_help_child() {
    nested(false);
}

#[test]
fn owners_that_do_not_help_deadlock() {
    let text = child_failure("owners_that_do_not_help_child");
    assert!(text.contains("deadlock; threads"), "{text}");
}
