//! The concurrency stress harness: random DAGs, a differential oracle across schedulers,
//! thread counts and accumulation modes, fault injection, a watchdog, and concurrent
//! callers. `backflow stress` drives it; users can point it at their own graphs through
//! [`oracle::check_recipe`], [`exec_oracle::run_exec`] or [`watchdog::run_with_deadline`].
//!
//! - [`op`], [`recipe`]: the op vocabulary; the seeded generator (same seed, same graph) and its knobs, [`GraphSpec`];
//! - [`build`]: a recipe's tensors, with fault ops where asked;
//! - [`oracle`]: every configuration against the `Dfs` reference, bitwise or within a
//!   tolerance, plus f64 finite differences;
//! - [`exec_graph`], [`exec_oracle`]: the executor-level graph with its tracking task and
//!   the broken-accumulation mutation;
//! - [`faults`], [`callers`]: fault injection and concurrent callers on shared leaves;
//! - [`reentrant`]: graphs whose hooks, `on_grad_ready` callbacks and custom ops run
//!   nested backward passes; [`unequal`]: an independent caller that must progress while
//!   another's slow branch blocks;
//! - [`watchdog`]: deadlines and hang dumps; [`limits`]: a test re-run under a file-size
//!   limit; [`runner`], [`report`]: the whole run;
//! - [`user_graph`]: [`check_graph`], the same scrutiny for a graph of your own (custom
//!   ops included).
//!
//! ```
//! use backflow_stress::{run, StressConfig};
//! let cfg = StressConfig { graphs: 4, threads: vec![1, 2], jobs: 1, ..StressConfig::default() };
//! let summary = run(&cfg, &|_| {});
//! assert!(summary.passed(), "{summary}");
//! ```

pub mod build;
pub mod callers;
pub mod exec_graph;
pub mod exec_oracle;
pub mod faults;
pub mod limits;
pub mod op;
pub mod oracle;
pub mod recipe;
pub mod reentrant;
pub mod report;
pub mod runner;
pub mod unequal;
pub mod user_graph;
pub mod watchdog;

/// The generic executor, to drive graph types of your own (see [`exec_graph`]).
pub use backflow_engine::exec;
pub use oracle::{configs, RunConfig};
pub use recipe::{GraphSpec, OpMix, Recipe};
pub use report::{Failure, Summary};
pub use runner::{check_seed, run, StressConfig};
pub use user_graph::{check_graph, GraphStress, GraphStressReport};
pub use watchdog::{run_with_deadline, Hang, Watch, Watchdog};
