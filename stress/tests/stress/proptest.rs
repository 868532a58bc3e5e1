//! Property tests over arbitrary graphs, with shrinking: a failure is reported as a minimal
//! graph. Bounded by `ProptestConfig::cases` to keep CI short.

use backflow_stress::exec_graph::ExecGraph;
use backflow_stress::exec_oracle::run_exec;
use backflow_stress::oracle::check_recipe;
use backflow_stress::recipe::{LeafShape, Op, OpKind};
use backflow_stress::{configs, Recipe, RunConfig, Watch};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed, TestError, TestRunner};

fn kind() -> impl Strategy<Value = OpKind> {
    use OpKind::*;
    prop_oneof![
        Just(Add),
        Just(Mul),
        Just(Sub),
        Just(Div),
        Just(Tanh),
        Just(Sin),
        Just(Matmul),
        Just(Sum),
        Just(SumAxis),
        Just(Mean),
        Just(Reshape),
        Just(Transpose),
        Just(Concat),
        Just(Softmax),
        Just(LogSoftmax),
        Just(Exp),
        Just(Neg),
        Just(Sigmoid),
        (0.5f64..1.5, -1.0f64..1.0).prop_map(|(c, d)| Affine(c, d)),
        (0.5f64..2.0).prop_map(DivScalar),
    ]
}

/// Arbitrary recipes: up to 4 leaves and 60 ops, each input any earlier node; roots are
/// the sinks. Shrinking removes ops and moves inputs towards node 0.
fn recipe() -> impl Strategy<Value = Recipe> {
    let leaves = prop::collection::vec(prop::sample::select(LeafShape::ALL.to_vec()), 1..4);
    let ops = prop::collection::vec((kind(), any::<Index>(), any::<Index>()), 0..60);
    (leaves, ops, 1usize..4, any::<u64>()).prop_map(|(leaves, ops, dim, value_seed)| {
        let n = leaves.len();
        let ops = ops
            .into_iter()
            .enumerate()
            .map(|(i, (kind, a, b))| {
                let inputs = [a, b]
                    .iter()
                    .take(kind.arity())
                    .map(|x| x.index(n + i) as u32)
                    .collect();
                Op { kind, inputs }
            })
            .collect();
        let mut r = Recipe {
            dim,
            leaves,
            ops,
            roots: vec![],
            faults: vec![],
            value_seed,
        };
        r.roots = r.sinks();
        r
    })
}

/// Arbitrary executor-level graphs of up to 150 nodes (the parallel path starts at 64).
fn exec_graph() -> impl Strategy<Value = ExecGraph> {
    let edges = prop::collection::vec((any::<Index>(), -0.9f64..0.9), 0..4);
    prop::collection::vec(edges, 2..150).prop_map(|nodes| {
        let n = nodes.len();
        let succ: Vec<Vec<(u32, f64)>> = nodes
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                if i + 1 == n {
                    vec![]
                } else {
                    e.into_iter()
                        .map(|(t, w)| ((i + 1 + t.index(n - i - 1)) as u32, w))
                        .collect()
                }
            })
            .collect();
        let mut has_pred = vec![false; n];
        succ.iter()
            .flatten()
            .for_each(|&(t, _)| has_pred[t as usize] = true);
        let roots = (0..n as u32).filter(|&i| !has_pred[i as usize]).collect();
        ExecGraph { succ, roots }
    })
}

/// Checks `graph` under `configs` against its reference; `Err` describes a mismatch.
fn exec_property(
    graph: &ExecGraph,
    configs: &[RunConfig],
    drop_later: bool,
) -> Result<(), TestCaseError> {
    let want = graph.reference();
    let scale = want.iter().flatten().fold(1e-300f64, |m, v| m.max(v.abs()));
    for cfg in configs {
        let got = run_exec(graph, cfg, &[], drop_later, &Watch::none(), "proptest")
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            let ok = match (a, b) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * scale,
                (a, b) => a == b,
            };
            prop_assert!(ok, "{cfg}: node {i}: {a:?} vs {b:?}");
        }
    }
    Ok(())
}

proptest! {
    // A fixed seed keeps CI reproducible; failures print their minimal graph, and the
    // regressions file beside this test replays them first.
    #![proptest_config(ProptestConfig {
        cases: 256,
        rng_seed: RngSeed::Fixed(0x6261_636b_666c_6f77),
        ..ProptestConfig::default()
    })]

    #[test]
    fn tensor_graphs_agree_under_every_configuration(r in recipe()) {
        let check = check_recipe::<f32>(&r, &configs(&[1, 2, 8]), f32::EPSILON as f64, &Watch::none(), "proptest");
        prop_assert!(check.mismatches.is_empty(), "{:?}", check.mismatches);
    }

    #[test]
    fn exec_graphs_match_the_reference(g in exec_graph()) {
        exec_property(&g, &configs(&[1, 2, 4, 16]), false)?;
    }
}

#[test]
fn a_dropped_contribution_shrinks_to_a_minimal_graph() {
    let config = Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&exec_graph(), |g| {
        exec_property(&g, &configs(&[1, 4]), true)
    });
    let Err(TestError::Fail(_, minimal)) = result else {
        panic!("the mutation was not caught: {result:?}")
    };
    // The smallest graph with a dropped contribution: one root sending twice into one node.
    let edges: usize = minimal.succ.iter().map(Vec::len).sum();
    assert!(
        minimal.succ.len() <= 3 && edges <= 3,
        "not minimal: {minimal:?}"
    );
}
