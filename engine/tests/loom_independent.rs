//! loom model of two independent passes sharing the executor's helpers. Pass A (the diamond
//! `0 -> {1, 2} -> 3` on three threads, owned by the main thread) has two long branches:
//! nodes 1 and 2 block until pass B has finished. Pass B (the chain `0 -> 1` on two
//! threads) is owned by a second user thread, and starts once both of A's branches run (so
//! that two of A's threads are busy in them, whoever they are). With the real `execute` and
//! `Scheduler::Parallel`, under every interleaving B finishes while A's branches wait, then
//! A finishes: a caller never waits for another caller's branch.
//!
//! The negative control makes every pass's owner wait without running its jobs: then both
//! helpers are inside A's blocked branches and nobody runs B, and loom must report the
//! deadlock. A loom deadlock aborts its process, so the control runs the model in a child
//! process and checks that it fails for that reason.
//!
//! Run with `RUSTFLAGS="--cfg loom"` (see `.ci/loom.sh`).
#![cfg(loom)]

mod common;
use common::{child_failure, Count, CHAIN, DIAMOND};

use backflow_engine::exec::{
    execute, set_owner_helps, shutdown, Accumulation, ExecOptions, Plan, Scheduler, Task,
};
use backflow_engine::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A counter that threads wait on.
#[derive(Default)]
struct Signal {
    count: Mutex<u32>,
    wake: Condvar,
}

impl Signal {
    fn add(&self) {
        *self.count.lock() += 1;
        self.wake.notify_all();
    }

    fn wait_for(&self, n: u32) {
        let mut count = self.count.lock();
        while *count < n {
            count = self.wake.wait_for(count, Duration::from_secs(1));
        }
    }
}

/// How A's long branches and B meet: B starts once both branches run, and the branches end
/// once B has returned.
#[derive(Default)]
struct Done {
    /// A's branches that have started.
    entered: Signal,
    /// 1 once B has returned.
    done: Signal,
}

/// Forwards its gradient along `succ` and records each run; with `block`, nodes 1 and 2
/// first wait for pass B.
struct Graph {
    succ: &'static [&'static [u32]],
    ids: Vec<u32>,
    seen: Mutex<Vec<(u32, Option<Count>)>>,
    block: Option<Arc<Done>>,
}

impl Graph {
    fn new(succ: &'static [&'static [u32]], block: Option<Arc<Done>>) -> (Plan, Arc<Self>) {
        let (plan, ids) = Plan::build(
            &[0u32],
            |&n| n,
            |&n, out| out.extend_from_slice(succ[n as usize]),
            None,
        );
        let graph = Self {
            succ,
            ids,
            seen: Mutex::new(vec![(0, None); succ.len()]),
            block,
        };
        (plan, Arc::new(graph))
    }

    /// Runs the pass on this thread with `threads` threads; returns what each node saw.
    fn run(plan: Plan, graph: &Arc<Self>, threads: usize) -> Vec<(u32, Option<Count>)> {
        let opts = ExecOptions {
            scheduler: Scheduler::Parallel,
            threads,
            accumulation: Accumulation::Deterministic,
        };
        execute(
            Arc::new(plan),
            Arc::clone(graph),
            vec![Some(Count(1))],
            &opts,
        )
        .expect("no node fails");
        let seen = graph.seen.lock().clone();
        seen
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
        if let (Some(done), 1 | 2) = (&self.block, id) {
            done.entered.add();
            done.done.wait_for(1);
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

/// The model: A on the main thread, B on a second user thread.
fn independent(owner_helps: bool) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(3);
    builder.check(move || {
        set_owner_helps(owner_helps);
        let done = Arc::new(Done::default());
        let b = {
            let done = Arc::clone(&done);
            loom::thread::spawn(move || {
                done.entered.wait_for(2);
                let (plan, graph) = Graph::new(&CHAIN, None);
                let seen = Graph::run(plan, &graph, 2);
                done.done.add();
                seen
            })
        };
        let (plan, graph) = Graph::new(&DIAMOND, Some(done));
        let a = Graph::run(plan, &graph, 3);
        let b = b.join().expect("B's owner");
        let one = Some(Count(1));
        assert_eq!(b, vec![(1, one.clone()), (1, one.clone())]);
        assert_eq!(
            a,
            vec![
                (1, one.clone()),
                (1, one.clone()),
                (1, one),
                (1, Some(Count(2)))
            ]
        );
        shutdown();
    });
}

#[test]
fn independent_passes_both_finish() {
    independent(true);
}

#[test]
#[ignore = "negative control: run in a child process by owners_that_do_not_help_deadlock"]
fn owners_that_do_not_help_child() {
    independent(false);
}

#[test]
fn owners_that_do_not_help_deadlock() {
    let text = child_failure("owners_that_do_not_help_child");
    assert!(text.contains("deadlock; threads"), "{text}");
}
