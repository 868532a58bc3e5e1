//! Helpers shared by the loom models (`engine/tests/loom/*.rs`): the gradient types they
//! sum, the small graphs they run (and the task that runs them), the results to expect, and
//! the model runners. Each model uses a part of it.
#![allow(dead_code)]

use backflow_engine::exec::{
    execute, Accumulation, ExecError, ExecOptions, Gradient, Plan, Scheduler, Task,
};
use backflow_engine::sync::{Arc, Mutex};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A gradient that spells out its sum: `accumulate` is neither commutative nor associative,
/// so the result shows which contributions were folded, in which order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr(pub String);

impl Gradient for Expr {
    fn accumulate(self, later: Self) -> Self {
        Expr(format!("({}+{})", self.0, later.0))
    }
}

/// A gradient that only counts the contributions it sums.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Count(pub u32);

impl Gradient for Count {
    fn accumulate(self, later: Self) -> Self {
        Count(self.0 + later.0)
    }
}

/// Successors of a diamond: 0 → {1, 2} → 3.
pub const DIAMOND: [&[u32]; 4] = [&[1, 2], &[3], &[3], &[]];

/// Successors of a two-node chain: 0 → 1.
pub const CHAIN: [&[u32]; 2] = [&[1], &[]];

/// What each node of [`DIAMOND`] records (runs, gradient received) when a seed of `Count(1)`
/// is forwarded unchanged: every node runs once, and node 3 sums both paths.
pub fn diamond_forwarded() -> Vec<(u32, Option<Count>)> {
    let one = Some(Count(1));
    vec![
        (1, one.clone()),
        (1, one.clone()),
        (1, one),
        (1, Some(Count(2))),
    ]
}

/// What each node of [`CHAIN`] records when a seed of `Count(1)` is forwarded unchanged.
pub fn chain_forwarded() -> Vec<(u32, Option<Count>)> {
    vec![(1, Some(Count(1))); CHAIN.len()]
}

/// The operands of an expression, sorted: what `Fast` accumulation must preserve.
pub fn operands(e: &Expr) -> Vec<String> {
    let mut ops: Vec<String> =
        e.0.split(['(', ')', '+'])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    ops.sort();
    ops
}

/// `Parallel` on `threads` threads (the owner and up to `threads - 1` helpers).
pub fn parallel(threads: usize, accumulation: Accumulation) -> ExecOptions {
    ExecOptions {
        scheduler: Scheduler::Parallel,
        threads,
        accumulation,
    }
}

/// What a [`Graph`] node does when it runs: given its original id and the gradient it
/// received, returns the contribution it sends to each of its successors, or fails.
type Body<G> = Box<dyn Fn(u32, &Option<G>) -> Result<Option<G>, String> + Send + Sync>;

/// A graph given by a successor table, run from root 0: each node runs its body, sends what
/// it returns to every successor, and records the run and the gradient it received.
pub struct Graph<G> {
    succ: &'static [&'static [u32]],
    /// Original id of each dense index.
    ids: Vec<u32>,
    /// Per original id: how many times it ran (and succeeded), and the gradient it received.
    seen: Mutex<Vec<(u32, Option<G>)>>,
    body: Body<G>,
}

impl<G: Gradient + Clone + 'static> Graph<G> {
    /// The graph of `succ` whose nodes run `body`, and its plan from root 0.
    pub fn new(
        succ: &'static [&'static [u32]],
        body: impl Fn(u32, &Option<G>) -> Result<Option<G>, String> + Send + Sync + 'static,
    ) -> (Plan, Arc<Self>) {
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
            body: Box::new(body),
        };
        (plan, Arc::new(graph))
    }

    /// The graph of `succ` whose nodes forward their gradient unchanged.
    pub fn forwarding(succ: &'static [&'static [u32]]) -> (Plan, Arc<Self>) {
        Self::new(succ, |_, grad| Ok(grad.clone()))
    }

    /// Runs the pass on this thread from `seed`; returns what each node (by original id)
    /// recorded.
    pub fn execute(
        graph: &Arc<Self>,
        plan: Plan,
        seed: G,
        opts: &ExecOptions,
    ) -> Result<Vec<(u32, Option<G>)>, ExecError> {
        execute(Arc::new(plan), Arc::clone(graph), vec![Some(seed)], opts)?;
        Ok(graph.seen())
    }

    /// The original id of dense index `node`.
    pub fn id(&self, node: u32) -> u32 {
        self.ids[node as usize]
    }

    /// What each node (by original id) has recorded so far.
    pub fn seen(&self) -> Vec<(u32, Option<G>)> {
        self.seen.lock().clone()
    }
}

impl<G: Gradient + Clone + 'static> Task for Graph<G> {
    type Grad = G;

    fn run(&self, node: u32, grad: Option<G>, out: &mut Vec<Option<G>>) -> Result<(), String> {
        let id = self.ids[node as usize];
        let sent = (self.body)(id, &grad)?;
        out.extend(self.succ[id as usize].iter().map(|_| sent.clone()));
        let mut seen = self.seen.lock();
        seen[id as usize].0 += 1;
        seen[id as usize].1 = grad;
        Ok(())
    }

    fn describe(&self, node: u32) -> String {
        format!("n{}", self.ids[node as usize])
    }
}

/// Runs `f` under loom; bounded to 3 preemptions unless `LOOM_MAX_PREEMPTIONS` says otherwise.
pub fn check(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(3);
    builder.check(f);
}

/// [`check`] for models that run the executor: its helper threads must finish before each
/// execution ends, as loom requires.
pub fn check_exec(f: impl Fn() + Sync + Send + 'static) {
    check(move || {
        f();
        backflow_engine::exec::shutdown();
    });
}

/// Runs a model expected to fail; returns loom's panic message.
pub fn check_fails(f: impl Fn() + Sync + Send + 'static) -> String {
    let payload = catch_unwind(AssertUnwindSafe(|| check(f)))
        .expect_err("loom found no interleaving that breaks the model");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Runs the ignored test `name` of this binary in a child process (a deadlock that loom
/// finds aborts its whole process); returns the child's output if it failed, and panics if
/// it passed.
pub fn child_failure(name: &str) -> String {
    // The models share one binary, a module each: the child's full name has the calling
    // test's module in front (`nested::…`), which the harness gives as the thread's name.
    let module = std::thread::current()
        .name()
        .and_then(|test| test.rsplit_once("::"))
        .map(|(module, _)| module.to_string());
    let name = &match module {
        Some(module) => format!("{module}::{name}"),
        None => name.to_string(),
    };
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            name,
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .output()
        .expect("run the child");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{name} passed:\n{text}");
    text
}

/// Runs the ignored test `name` of this binary in a child process and checks that loom
/// reported a deadlock in it.
pub fn assert_child_deadlocks(name: &str) {
    let text = child_failure(name);
    assert!(text.contains("deadlock; threads"), "{text}");
}
