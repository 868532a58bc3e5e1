//! Unit tests of the generic executor on small hand-made and random scalar graphs.

use super::*;
use crate::sync::Mutex;

/// Node `i` sends `g * w` along each successor edge, and records the gradient it received.
struct Scalar {
    succ: Vec<Vec<(u32, f64)>>,
    seen: Mutex<Vec<Option<f64>>>,
    ran: Mutex<Vec<u32>>,
    fail_at: Option<u32>,
}

impl Scalar {
    fn new(succ: Vec<Vec<(u32, f64)>>) -> Self {
        let n = succ.len();
        Self {
            succ,
            seen: Mutex::new(vec![None; n]),
            ran: Mutex::new(Vec::new()),
            fail_at: None,
        }
    }
}

impl Task for Scalar {
    type Grad = f64;
    fn run(&self, node: u32, grad: Option<f64>, out: &mut Vec<Option<f64>>) -> Result<(), String> {
        if self.fail_at == Some(node) {
            panic!("injected fault at {node}");
        }
        self.ran.lock().push(node);
        self.seen.lock()[node as usize] = grad;
        for &(_, w) in &self.succ[node as usize] {
            out.push(grad.map(|g| (g * w).sin() + g));
        }
        Ok(())
    }
    fn describe(&self, node: u32) -> String {
        format!("scalar{node}")
    }
}

/// Runs `graph` from root 0 and returns the gradients indexed by original node id.
fn run(
    graph: &[Vec<(u32, f64)>],
    opts: &ExecOptions,
    fail_at: Option<u32>,
) -> Result<Vec<Option<f64>>, ExecError> {
    let roots = [0u32];
    let (plan, nodes) = Plan::build(
        &roots,
        |&n| n,
        |&n, out| out.extend(graph[n as usize].iter().map(|e| e.0)),
        None,
    );
    // Re-index the graph densely.
    let mut dense = vec![0u32; graph.len()];
    for (i, &n) in nodes.iter().enumerate() {
        dense[n as usize] = i as u32;
    }
    let succ = nodes
        .iter()
        .map(|&n| {
            graph[n as usize]
                .iter()
                .map(|&(t, w)| (dense[t as usize], w))
                .collect()
        })
        .collect();
    let mut task = Scalar::new(succ);
    task.fail_at = fail_at.map(|f| dense[f as usize]);
    let task = Arc::new(task);
    execute(Arc::new(plan), Arc::clone(&task), vec![Some(1.0)], opts)?;
    let seen = task.seen.lock();
    let mut out = vec![None; graph.len()];
    for (i, &n) in nodes.iter().enumerate() {
        out[n as usize] = seen[i];
    }
    Ok(out)
}

/// A random layered DAG: node i feeds only nodes > i, many share a few hubs.
fn random_dag(seed: u64, n: usize) -> Vec<Vec<(u32, f64)>> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    (0..n)
        .map(|i| {
            if i + 1 == n {
                return vec![];
            }
            let k = 1 + (next() % 3) as usize;
            (0..k)
                .map(|_| {
                    let hub = next() % 4 == 0;
                    let t = if hub {
                        n - 1 - (next() % 3) as usize
                    } else {
                        i + 1 + (next() as usize % (n - i - 1))
                    };
                    let t = t.max(i + 1);
                    (t as u32, (next() % 1000) as f64 / 997.0 - 0.4)
                })
                .collect()
        })
        .collect()
}

fn opts(scheduler: Scheduler, threads: usize, accumulation: Accumulation) -> ExecOptions {
    ExecOptions {
        scheduler,
        threads,
        accumulation,
    }
}

#[test]
fn diamond_sums_both_paths() {
    // 0 -> 1, 0 -> 2, 1 -> 3, 2 -> 3
    let g = vec![
        vec![(1, 1.0), (2, 1.0)],
        vec![(3, 1.0)],
        vec![(3, 1.0)],
        vec![],
    ];
    for s in Scheduler::ALL {
        let got = run(&g, &opts(s, 2, Accumulation::Deterministic), None).unwrap();
        let one = (1.0f64).sin() + 1.0;
        let two = (one).sin() + one;
        assert_eq!(got[3], Some(two + two), "{s:?}");
    }
}

#[test]
fn schedulers_agree_bitwise_on_random_dags() {
    for seed in 0..300 {
        let g = random_dag(seed, 40 + (seed as usize % 90));
        let reference = run(
            &g,
            &opts(Scheduler::Dfs, 1, Accumulation::Deterministic),
            None,
        )
        .unwrap();
        for s in Scheduler::ALL {
            for threads in [1, 2, 3, 4, 8] {
                let got = run(&g, &opts(s, threads, Accumulation::Deterministic), None).unwrap();
                let bits =
                    |v: &[Option<f64>]| v.iter().map(|x| x.map(f64::to_bits)).collect::<Vec<_>>();
                assert_eq!(
                    bits(&got),
                    bits(&reference),
                    "seed {seed} {s:?} threads {threads}"
                );
                let fast = run(&g, &opts(s, threads, Accumulation::Fast), None).unwrap();
                for (a, b) in fast.iter().zip(&reference) {
                    match (a, b) {
                        (Some(a), Some(b)) => {
                            assert!(
                                (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
                                "seed {seed}: {a} vs {b}"
                            )
                        }
                        _ => assert_eq!(a.is_some(), b.is_some(), "seed {seed}"),
                    }
                }
            }
        }
    }
}

/// Node 0 feeds nodes `1..=n` (edge weights varied), which all feed node `n + 1`: a fan-in
/// of in-degree `n`.
fn fan_in(n: u32) -> Vec<Vec<(u32, f64)>> {
    let mut g = vec![(1..=n)
        .map(|k| {
            (
                k,
                1.0 + (k as f64 * 0.37).sin() * 10f64.powi((k % 5) as i32 * 4),
            )
        })
        .collect::<Vec<_>>()];
    g.extend((1..=n).map(|k| vec![(n + 1, 0.5 + k as f64 * 1e-3)]));
    g.push(vec![]);
    g
}

#[test]
fn every_scheduler_sums_a_wide_fan_in_as_the_canonical_tree() {
    for n in [1, BLOCK, BLOCK + 1, 3 * BLOCK + 2, 10_000] {
        let g = fan_in(n);
        let (plan, nodes) = Plan::build(
            &[0u32],
            |&n| n,
            |&n, out| out.extend(g[n as usize].iter().map(|e| e.0)),
            None,
        );
        // What consumer k sends, by the slot of its edge (as `Scalar::run` computes it).
        let mut by_slot = vec![None; n as usize];
        for (i, &k) in nodes.iter().enumerate() {
            if (1..=n).contains(&k) {
                let slot = plan.edges(i as u32)[0].slot as usize;
                let g0 = (1.0 * g[0][k as usize - 1].1).sin() + 1.0;
                let w = g[k as usize][0].1;
                by_slot[slot] = Some((g0 * w).sin() + g0);
            }
        }
        let want = canonical_sum(by_slot).map(f64::to_bits);
        for s in Scheduler::ALL {
            for threads in [1, 2, 3, 8] {
                let got = run(&g, &opts(s, threads, Accumulation::Deterministic), None).unwrap();
                assert_eq!(
                    got[n as usize + 1].map(f64::to_bits),
                    want,
                    "n {n}, {s:?} at {threads} threads"
                );
            }
        }
    }
}

#[test]
fn a_panic_becomes_an_error_and_the_pool_survives() {
    let g = random_dag(7, 200);
    for s in Scheduler::ALL {
        let err = run(&g, &opts(s, 4, Accumulation::Deterministic), Some(17)).unwrap_err();
        assert!(err.panicked);
        assert_eq!(err.op, format!("scalar{}", err.node));
        assert!(err.message.contains("injected fault at"), "{err}");
        run(&g, &opts(s, 4, Accumulation::Deterministic), None).unwrap();
    }
}

#[test]
fn pruning_keeps_only_paths_to_the_inputs() {
    // 0 -> 1 -> 3, 0 -> 2 (dead end). Keep only node 3.
    let g = [vec![1u32, 2], vec![3], vec![], vec![]];
    let keep = |n: &u32| *n == 3;
    let (plan, nodes) = Plan::build(
        &[0u32],
        |&n| n,
        |&n, out| out.extend(&g[n as usize]),
        Some(&keep),
    );
    assert_eq!(nodes, vec![0, 1, 3]);
    assert_eq!(
        plan.edges(0),
        &[Edge {
            target: 1,
            slot: 0,
            position: 0
        }]
    );
    assert_eq!(plan.indegree(2), 1);
}

#[test]
fn a_deep_chain_plans_without_recursion() {
    let n = 200_000u32;
    let (plan, _) = Plan::build(
        &[0u32],
        |&n| n,
        |&i, out| {
            if i + 1 < n {
                out.push(i + 1)
            }
        },
        None,
    );
    assert_eq!(plan.len(), n as usize);
    assert_eq!(plan.order().first(), Some(&0));
    assert!(plan.is_chain());
}

#[test]
fn only_a_single_seeded_path_is_a_chain() {
    let build = |g: &[Vec<u32>], roots: &[u32]| {
        Plan::build(roots, |&n| n, |&n, out| out.extend(&g[n as usize]), None).0
    };
    let path = [vec![1u32], vec![2], vec![]];
    assert!(build(&path, &[0]).is_chain());
    // Two seeds on one path: node 0 gets two contributions.
    assert!(!build(&path, &[0, 0]).is_chain());
    // Two roots, two independent paths: they can run side by side.
    let two = [vec![2u32], vec![3], vec![], vec![]];
    assert!(!build(&two, &[0, 1]).is_chain());
    // A fork (0 -> 1, 0 -> 2) and a join (diamond) are not chains.
    assert!(!build(&[vec![1u32, 2], vec![], vec![]], &[0]).is_chain());
    assert!(!build(&[vec![1u32, 2], vec![3], vec![3], vec![]], &[0]).is_chain());
}

/// A gradient whose sum panics: a panic outside the nodes' callbacks.
#[derive(Clone, Debug)]
struct Boom;

impl Gradient for Boom {
    fn accumulate(self, _later: Boom) -> Boom {
        panic!("accumulate failed");
    }
}

/// Node 0 fans out to 1..=80, which all feed node 81.
struct FanIn;

impl Task for FanIn {
    type Grad = Boom;
    fn run(
        &self,
        node: u32,
        grad: Option<Boom>,
        out: &mut Vec<Option<Boom>>,
    ) -> Result<(), String> {
        match node {
            0 => out.extend((1..=80).map(|_| grad.clone())),
            1..=80 => out.push(grad),
            _ => {}
        }
        Ok(())
    }
    fn describe(&self, node: u32) -> String {
        format!("fan{node}")
    }
}

#[test]
fn a_panic_outside_the_callbacks_ends_the_pass_instead_of_hanging_it() {
    let (plan, _) = Plan::build(
        &[0u32],
        |&n| n,
        |&n, out| match n {
            0 => out.extend(1..=80),
            1..=80 => out.push(81),
            _ => {}
        },
        None,
    );
    let plan = Arc::new(plan);
    for threads in [2, 4, 8] {
        let (tx, rx) = std::sync::mpsc::channel();
        let plan = Arc::clone(&plan);
        std::thread::spawn(move || {
            let opts = ExecOptions {
                scheduler: Scheduler::Parallel,
                threads,
                accumulation: Accumulation::Deterministic,
            };
            let result = catch_unwind(AssertUnwindSafe(|| {
                execute(plan, Arc::new(FanIn), vec![Some(Boom)], &opts)
            }));
            // Either the owner's own panic, or a helper's turned into the pass's error.
            let ended = match result {
                Ok(Err(e)) => e.panicked && e.message.contains("accumulate failed"),
                Ok(Ok(())) => false,
                Err(_) => true,
            };
            let _ = tx.send(ended);
        });
        let ended = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the pass hung");
        assert!(ended, "{threads} threads");
    }
}
